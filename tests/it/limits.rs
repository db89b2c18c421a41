use crate::harness::{wait_for, Daemon, Opts, TEN_SECS};
use std::collections::HashSet;
use std::time::Duration;

/// A node whose store holds about 40 kB: 20 P1 messages stay, 200 P3 messages
/// sent afterwards are all accepted by evicting the oldest P3s, every P1 is still
/// there at the end, and evictions are counted and reported to followers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_store_evicts_routine_messages_and_keeps_every_p1() {
    let a = Daemon::spawn(Opts {
        extra: vec!["--max-store-bytes".into(), "40K".into()],
        ..Opts::default()
    })
    .await;
    let ttl = Duration::from_secs(3600);
    let filler = "-".repeat(300);
    let mut p1s = HashSet::new();
    for i in 0..20 {
        p1s.insert(
            a.send("triage", &format!("P1 {i} {filler}"), ttl, "p1")
                .await,
        );
    }
    for i in 0..200 {
        a.send("triage", &format!("routine {i} {filler}"), ttl, "p3")
            .await;
    }
    let held = a.read("triage").await;
    let held_ids: HashSet<String> = held.iter().map(|m| m.id.clone()).collect();
    assert!(p1s.is_subset(&held_ids), "a P1 was evicted");
    let p3_held = held.len() - p1s.len();
    assert!(p3_held > 0 && p3_held < 200, "{p3_held} P3 held");
    // The newest P3 is kept: the oldest went first.
    assert!(held.iter().any(|m| m.text.starts_with("routine 199 ")));
    assert!(!held.iter().any(|m| m.text.starts_with("routine 0 ")));
    let status = a.status().await;
    assert!(status.store_bytes <= status.store_capacity);
    assert!(status.counters.get("evicted").copied().unwrap_or(0) >= 200 - p3_held as u64);
}

/// When only P1 messages fill the store, a further send is refused with a clear
/// error and nothing stored is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_full_of_p1_refuses_more_with_a_clear_error() {
    let a = Daemon::spawn(Opts {
        extra: vec!["--max-store-bytes".into(), "8K".into()],
        ..Opts::default()
    })
    .await;
    let filler = "-".repeat(300);
    let mut sent = 0;
    let err = loop {
        let out = a.cli(&[
            "send",
            "triage",
            &format!("P1 {sent} {filler}"),
            "--priority",
            "p1",
        ]);
        if !out.status.success() {
            break String::from_utf8_lossy(&out.stderr).into_owned();
        }
        sent += 1;
        assert!(sent < 100, "an 8 KiB store took 100 messages");
    };
    assert!(err.contains("store is full"), "{err}");
    assert_eq!(a.read("triage").await.len(), sent);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_peers_turns_away_a_peer_over_the_limit() {
    let a = Daemon::spawn(Opts {
        extra: vec!["--max-peers".into(), "1".into()],
        ..Opts::default()
    })
    .await;
    let b = Daemon::spawn(Opts {
        peers: vec![a.addr()],
        ..Opts::default()
    })
    .await;
    wait_for(TEN_SECS, "B connected to A", || async {
        (a.peers().await.len() == 1).then_some(())
    })
    .await;
    let _c = Daemon::spawn(Opts {
        peers: vec![a.addr()],
        ..Opts::default()
    })
    .await;
    wait_for(TEN_SECS, "A to turn C away", || async {
        a.status()
            .await
            .counters
            .get("peer_limit")
            .copied()
            .filter(|n| *n >= 1)
    })
    .await;
    let peers = a.peers().await;
    assert_eq!(peers.len(), 1, "one peer at most");
    assert_eq!(peers[0].peer_id, b.peer_id, "the first peer stays");
}
