use crate::harness::{Daemon, Opts};
use fieldmesh::api::{FollowEvent, Op};
use fieldmesh::gossip::priority::Priority;
use std::collections::HashSet;
use std::time::Duration;

/// Backlog the P1 has to overtake.
const BACKLOG: usize = 5_000;

/// `up` flag capping every TCP connection at 50 kB/s each way.
fn slow_link() -> Vec<String> {
    vec!["--emulate-link".to_owned(), "rate=50k".to_owned()]
}

/// Sends `n` 2 kB P3 messages and then one P1 on triage through `d`'s control
/// socket; returns the P3 ids and the P1 id.
async fn backlog_then_p1(d: &Daemon, n: usize) -> (HashSet<String>, String) {
    let mut sender = d.client().await;
    let send = |text: String, priority| Op::Send {
        channel: "triage".into(),
        text,
        ttl_ms: Some(3_600_000),
        priority: Some(priority),
        mode: None,
    };
    let mut backlog = HashSet::new();
    for i in 0..n {
        let text = format!("routine update {i} {}", "-".repeat(2_000));
        let res = sender.request(send(text, Priority::P3)).await.unwrap();
        backlog.insert(res["message"]["id"].as_str().unwrap().to_owned());
    }
    let res = sender
        .request(send("cardiac arrest, tent 2".into(), Priority::P1))
        .await
        .unwrap();
    (backlog, res["message"]["id"].as_str().unwrap().to_owned())
}

/// Reads `follow` events until `p1` arrives; returns how many of `backlog` came
/// before it.
async fn arrivals_before(
    follow: &mut fieldmesh::api::control::Client,
    backlog: &HashSet<String>,
    p1: &str,
) -> usize {
    let mut arrived = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let reply = tokio::time::timeout_at(deadline, follow.next_reply())
            .await
            .unwrap_or_else(|_| panic!("no P1 after 60 s ({arrived} P3 arrived)"))
            .unwrap();
        match reply.event {
            Some(FollowEvent::Message(m)) if m.id == p1 => return arrived,
            Some(FollowEvent::Message(m)) if backlog.contains(&m.id) => arrived += 1,
            Some(FollowEvent::Lagged { missed }) => panic!("follow lagged by {missed}"),
            _ => {}
        }
    }
}

/// A follow client on `d`'s triage channel.
async fn follow_triage(d: &Daemon) -> fieldmesh::api::control::Client {
    let mut follow = d.client().await;
    follow
        .request(Op::Follow {
            channel: "triage".into(),
            show_identifiable: false,
        })
        .await
        .unwrap();
    follow
}

/// Both ends of the A–B link are capped at 50 kB/s (emulated in-process by the
/// transport): 5 000 P3 messages of 2 kB take minutes to cross it, but are queued
/// at A in seconds. A P1 sent after them must arrive at B before at least 90 % of
/// them; the test stops there (the rest still wait at A, so they arrive after it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn p1_overtakes_a_p3_backlog_behind_a_slow_link() {
    let a = Daemon::spawn(Opts {
        extra: slow_link(),
        ..Opts::default()
    })
    .await;
    let b = Daemon::spawn(Opts {
        peers: vec![a.addr()],
        extra: slow_link(),
        ..Opts::default()
    })
    .await;
    a.wait_subscribed(&b, "triage").await;
    b.wait_subscribed(&a, "triage").await;
    let mut follow = follow_triage(&b).await;
    let (backlog, p1) = backlog_then_p1(&a, BACKLOG).await;
    let before_p1 = arrivals_before(&mut follow, &backlog, &p1).await;
    eprintln!("gossip: P1 arrived after {before_p1} of {BACKLOG} P3 messages");
    assert!(
        before_p1 * 10 <= BACKLOG,
        "the P1 arrived after {before_p1} of {BACKLOG} P3 messages (allowed: 10 %)"
    );
    // The backlog still waits at A, in its outbound queue, not dropped.
    let queued = a.status().await.outbound_queued;
    assert!(queued > BACKLOG / 2, "A's outbound queue holds {queued}");
}

/// A control client that stops reading its `follow` stream (a frozen UI) while
/// 2 000 P3 messages and then a P1 arrive: when it reads again, the P1 comes before
/// at least 90 % of them (only what already sat in the socket buffer is ahead).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_follow_client_is_given_the_p1_first() {
    const STALLED: usize = 2_000;
    let a = Daemon::spawn(Opts::default()).await;
    let mut follow = follow_triage(&a).await;
    let (_, p1) = backlog_then_p1(&a, STALLED).await;
    let mut ahead = 0;
    loop {
        let reply = tokio::time::timeout(Duration::from_secs(30), follow.next_reply())
            .await
            .expect("follow stream stalled")
            .unwrap();
        match reply.event {
            Some(FollowEvent::Message(m)) if m.id == p1 => break,
            Some(FollowEvent::Message(_)) => ahead += 1,
            other => panic!("unexpected event {other:?}"),
        }
    }
    eprintln!("control: P1 written after {ahead} of {STALLED} P3 messages");
    assert!(
        ahead * 10 <= STALLED,
        "{ahead} P3 messages came before the P1"
    );
}

/// Catch-up sync over a slow link serves the most urgent first: B was away while A
/// stored 2 000 P3 messages and then a P1; when B reconnects over a 50 kB/s link,
/// the P1 reaches it before at least 90 % of the backlog.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catch_up_over_a_slow_link_brings_the_p1_first() {
    const AWAY: usize = 2_000;
    let mut a = Daemon::spawn(Opts::default()).await;
    let (backlog, p1) = backlog_then_p1(&a, AWAY).await;
    let _dir = a.take_dir();
    let (data, _) = a.stop().await;
    let b = Daemon::spawn(Opts {
        extra: slow_link(),
        ..Opts::default()
    })
    .await;
    let mut follow = follow_triage(&b).await;
    let _a = Daemon::spawn(Opts {
        data: Some(data),
        peers: vec![b.addr()],
        extra: slow_link(),
        ..Opts::default()
    })
    .await;
    let before_p1 = arrivals_before(&mut follow, &backlog, &p1).await;
    eprintln!("sync: P1 arrived after {before_p1} of {AWAY} P3 messages");
    assert!(before_p1 * 10 <= AWAY, "{before_p1} P3 messages came first");
}
