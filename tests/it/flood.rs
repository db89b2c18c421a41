use crate::bad_input::raw_gossip_peer;
use crate::harness::{wait_for, Daemon, Opts, TEN_SECS};
use futures::StreamExt;
use libp2p::{gossipsub, swarm::SwarmEvent, Swarm};
use std::time::Duration;

/// What a flooder saw.
struct Flooded {
    /// Messages handed to its gossipsub.
    sent: usize,
    /// Whether the node closed the connection on it.
    cut_off: bool,
}

/// Publishes `msgs` at 10 000 a second (10 per millisecond) until the node closes
/// the connection; gives up 10 s after the messages ran out.
async fn flood(
    mut swarm: Swarm<gossipsub::Behaviour>,
    topic: gossipsub::IdentTopic,
    msgs: Vec<Vec<u8>>,
) -> Flooded {
    let mut tick = tokio::time::interval(Duration::from_millis(1));
    let mut msgs = msgs.into_iter();
    let mut sent = 0;
    let mut give_up = None;
    loop {
        tokio::select! {
            _ = tick.tick() => {
                if give_up.is_some_and(|t| tokio::time::Instant::now() > t) {
                    return Flooded { sent, cut_off: false };
                }
                for m in msgs.by_ref().take(10) {
                    // Queue-full errors are expected at this rate.
                    if swarm.behaviour_mut().publish(topic.clone(), m).is_ok() {
                        sent += 1;
                    }
                }
                if give_up.is_none() && msgs.len() == 0 {
                    give_up = Some(tokio::time::Instant::now() + TEN_SECS);
                }
            }
            ev = swarm.select_next_some() => {
                if let SwarmEvent::ConnectionClosed { num_established: 0, .. } = ev {
                    return Flooded { sent, cut_off: true };
                }
            }
        }
    }
}

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
    let (spammer, t1) = raw_gossip_peer(&b, "fieldmesh/1/drill/triage").await;
    let (vandal, t2) = raw_gossip_peer(&b, "fieldmesh/1/drill/triage").await;
    let spammer_id = spammer.local_peer_id().to_string();
    let vandal_id = vandal.local_peer_id().to_string();
    let spam = tokio::spawn(flood(spammer, t1, spam));
    let vandalism = tokio::spawn(flood(vandal, t2, garbage));

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
