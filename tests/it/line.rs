use crate::harness::{line, wait_for, Daemon, Opts, TEN_SECS};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn message_sent_at_a_is_read_at_c_through_b() {
    let [a, b, c] = line("triage").await;
    // C only knows B: A's message must be relayed.
    assert!(!c.peers().await.iter().any(|p| p.peer_id == a.peer_id));
    let id = a
        .send("triage", "P1 bay 4 airway", Duration::from_secs(600), "p1")
        .await;
    let m = c.wait_message("triage", &id).await;
    assert_eq!(m.text, "P1 bay 4 airway");
    assert_eq!(m.author, a.peer_id);
    assert_eq!(m.priority.to_string(), "P1");
    assert!(m.remaining_ms > 590_000 && m.remaining_ms <= 600_000);
    // Delivered exactly once at every node.
    for d in [&a, &b, &c] {
        let msgs = d.read("triage").await;
        assert_eq!(msgs.iter().filter(|m| m.id == id).count(), 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn message_with_short_ttl_disappears_from_every_read() {
    let [a, b, c] = line("triage").await;
    let keep = a
        .send("triage", "stays", Duration::from_secs(600), "p3")
        .await;
    let gone = a.send("triage", "goes", Duration::from_secs(2), "p2").await;
    c.wait_message("triage", &gone).await;
    c.wait_message("triage", &keep).await;
    for d in [&a, &b, &c] {
        wait_for(TEN_SECS, "2 s message to expire", || async {
            let msgs = d.read("triage").await;
            (!msgs.iter().any(|m| m.id == gone)).then_some(())
        })
        .await;
        // Swept from the store, not just hidden, and the long-lived one is untouched.
        wait_for(TEN_SECS, "sweeper to delete it", || async {
            (d.status().await.counters.get("swept").copied().unwrap_or(0) >= 1).then_some(())
        })
        .await;
        assert!(d.read("triage").await.iter().any(|m| m.id == keep));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarted_node_keeps_its_unexpired_history() {
    let [a, b, mut c] = line("triage").await;
    let id = a
        .send("triage", "before restart", Duration::from_secs(600), "p2")
        .await;
    c.wait_message("triage", &id).await;
    let dir = c.take_dir();
    let (data, status) = c.stop().await;
    assert!(status.success(), "Ctrl-C path exits cleanly: {status:?}");
    let c = Daemon::spawn(Opts {
        peers: vec![b.addr()],
        data: Some(data),
        ..Opts::default()
    })
    .await;
    let msgs = c.read("triage").await;
    assert_eq!(msgs.len(), 1);
    assert_eq!(msgs[0].id, id);
    assert_eq!(msgs[0].text, "before restart");
    // And it is back on the mesh: a new message still reaches it.
    c.wait_subscribed(&b, "triage").await;
    b.wait_subscribed(&c, "triage").await;
    let id2 = a
        .send("triage", "after restart", Duration::from_secs(600), "p2")
        .await;
    c.wait_message("triage", &id2).await;
    drop(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_talk_over_quic() {
    let quic = Opts {
        listen: vec!["/ip4/127.0.0.1/udp/0/quic-v1".into()],
        ..Opts::default()
    };
    let a = Daemon::spawn(quic.clone()).await;
    assert!(a.listen[0].contains("quic-v1"), "{:?}", a.listen);
    let b = Daemon::spawn(Opts {
        peers: vec![a.addr()],
        ..quic
    })
    .await;
    b.wait_subscribed(&a, "triage").await;
    a.wait_subscribed(&b, "triage").await;
    let peers = b.peers().await;
    assert_eq!(peers[0].transports, vec!["quic".to_owned()]);
    let id = a
        .send("triage", "over quic", Duration::from_secs(60), "p2")
        .await;
    b.wait_message("triage", &id).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_static_peer_is_redialled_after_it_restarts() {
    let mut b = Daemon::spawn(Opts::default()).await;
    let a = Daemon::spawn(Opts {
        peers: vec![b.addr()],
        ..Opts::default()
    })
    .await;
    a.wait_subscribed(&b, "triage").await;
    let b_listen = b.listen[0].clone();
    let b_dir = b.take_dir();
    let (data, _) = b.stop().await;
    wait_for(TEN_SECS, "A to notice B is gone", || async {
        a.peers().await.is_empty().then_some(())
    })
    .await;
    // B comes back on the same address; A redials it on its own (backoff from 0.5 s).
    let b = Daemon::spawn(Opts {
        data: Some(data),
        listen: vec![b_listen],
        ..Opts::default()
    })
    .await;
    a.wait_subscribed(&b, "triage").await;
    assert!(a.log().contains("peer connected"));
    drop(b_dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receipts_count_every_member_that_holds_a_message() {
    let [a, b, c] = line("triage").await;
    let id = a
        .send("triage", "who has this?", Duration::from_secs(600), "p1")
        .await;
    c.wait_message("triage", &id).await;
    for d in [&a, &b, &c] {
        let held = wait_for(TEN_SECS, "receipts from all three", || async {
            let m = d.read("triage").await.into_iter().find(|m| m.id == id)?;
            (m.held_by.len() == 3).then_some(m.held_by)
        })
        .await;
        for x in [&a, &b, &c] {
            assert!(held.contains(&x.peer_id), "{} missing", x.peer_id);
        }
    }
    // Aggregated: one receipt per node per interval, not one per member per message.
    let receipts = a.read("receipts").await;
    assert!(
        receipts.len() <= 6,
        "{} receipts for one message",
        receipts.len()
    );
}
