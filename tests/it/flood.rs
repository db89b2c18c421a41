use crate::harness::{wait_for, Daemon, Opts, TEN_SECS};
use fieldmesh::bench::flooder::Flooder;
use std::time::Duration;

/// Two flooders connect to B, one sending valid but spam envelopes and one garbage,
/// each at 10 000 messages a second. Both are cut off; meanwhile A and B keep
/// exchanging P1 messages; B still holds every one of them.
///
/// B's limit is 300 messages a second per peer rather than the default 1 000: a
/// debug build validates and stores only a few thousand a second, and a flood is
/// seen as a rate only if the node reads faster than the limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flooding_peers_are_cut_off_and_p1_traffic_gets_through() {
    let b = Daemon::spawn(Opts {
        extra: vec!["--max-peer-rate".into(), "300".into()],
        ..Opts::default()
    })
    .await;
    let a = Daemon::spawn(Opts {
        peers: vec![b.addr()],
        ..Opts::default()
    })
    .await;
    a.wait_subscribed(&b, "triage").await;
    b.wait_subscribed(&a, "triage").await;

    let spam: Vec<Vec<u8>> = (0..20_000u32)
        .map(|i| {
            crate::harness::outside_envelope("triage", &i.to_be_bytes())
                .as_bytes()
                .to_vec()
        })
        .collect();
    let garbage: Vec<Vec<u8>> = (0..20_000u32)
        .map(|i| [b"\x01garbage".as_slice(), &i.to_be_bytes()].concat())
        .collect();
    let topic = "fieldmesh/1/drill/triage";
    let spammer = Flooder::connect(b.addr().parse().unwrap(), topic, TEN_SECS)
        .await
        .unwrap();
    let vandal = Flooder::connect(b.addr().parse().unwrap(), topic, TEN_SECS)
        .await
        .unwrap();
    let spammer_id = spammer.peer_id().to_string();
    let vandal_id = vandal.peer_id().to_string();
    // 10 000 messages a second each.
    let spam = tokio::spawn(spammer.flood(spam, 10, TEN_SECS));
    let vandalism = tokio::spawn(vandal.flood(garbage, 10, TEN_SECS));

    // P1 traffic both ways while the floods run and after.
    for i in 0..6 {
        let (from, to) = if i % 2 == 0 { (&a, &b) } else { (&b, &a) };
        let id = from
            .send("triage", &format!("P1 {i}"), Duration::from_secs(600), "p1")
            .await;
        wait_for(TEN_SECS * 3, &format!("P1 {i} across"), || async {
            to.read("triage")
                .await
                .iter()
                .any(|m| m.id == id)
                .then_some(())
        })
        .await;
    }

    let spam = spam.await.unwrap();
    let vandalism = vandalism.await.unwrap();
    let status = b.status().await;
    assert!(
        spam.cut_off,
        "spammer not cut off ({} sent): {status:?}",
        spam.sent
    );
    assert!(
        vandalism.cut_off,
        "vandal not cut off ({} sent)",
        vandalism.sent
    );
    assert!(
        status.counters.get("banned").copied().unwrap_or(0) >= 2,
        "{status:?}"
    );
    assert!(status.counters.get("rate_limited").copied().unwrap_or(0) > 0);
    let peers: Vec<String> = b.peers().await.into_iter().map(|p| p.peer_id).collect();
    assert!(!peers.contains(&spammer_id) && !peers.contains(&vandal_id));
    assert!(peers.contains(&a.peer_id), "the good peer stays connected");
    // Only the spam that came within the rate (a burst) was stored, not the flood.
    assert!(status.stored < 2_000, "{} stored", status.stored);
}
