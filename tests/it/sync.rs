use crate::harness::{chain, wait_for, Daemon, Opts, TEN_SECS};
use fieldmesh::api::Op;
use std::collections::HashSet;
use std::time::Duration;

const LONG: Duration = Duration::from_secs(3600);

/// Sends `n` messages through one control connection; returns their ids.
async fn send_many(d: &Daemon, tag: &str, n: usize) -> HashSet<String> {
    let mut client = d.client().await;
    let mut ids = HashSet::new();
    for i in 0..n {
        let res = client
            .request(Op::Send {
                channel: "triage".into(),
                text: format!("{tag} {i}"),
                ttl_ms: Some(LONG.as_millis() as u64),
                priority: Some(["p1", "p2", "p3", "p4"][i % 4].parse().unwrap()),
                mode: None,
            })
            .await
            .unwrap();
        ids.insert(res["message"]["id"].as_str().unwrap().to_owned());
    }
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitioned_groups_converge_after_heal() {
    let left = chain(vec![]).await;
    let right = chain(vec![]).await;
    // Short-lived messages that expire while the mesh is split must never resurface.
    let mut doomed = HashSet::new();
    for i in 0..5 {
        doomed.insert(
            left[0]
                .send(
                    "triage",
                    &format!("short {i}"),
                    Duration::from_secs(1),
                    "p2",
                )
                .await,
        );
    }
    let mut all = send_many(&left[0], "left", 100).await;
    all.extend(send_many(&left[2], "left-far", 100).await);
    all.extend(send_many(&right[1], "right", 200).await);
    assert_eq!(all.len(), 400);
    wait_for(TEN_SECS, "short messages to expire", || async {
        let ids: HashSet<String> = left[0]
            .read("triage")
            .await
            .into_iter()
            .map(|m| m.id)
            .collect();
        ids.is_disjoint(&doomed).then_some(())
    })
    .await;
    // Heal: a bridging node joins with one static peer on each side.
    let bridge = Daemon::spawn(Opts {
        peers: vec![left[2].addr(), right[2].addr()],
        ..Opts::default()
    })
    .await;
    for d in left.iter().chain(&right).chain([&bridge]) {
        d.wait_exactly("triage", &all, TEN_SECS * 3).await;
    }
    let st = bridge.status().await;
    assert!(
        st.counters.get("synced").copied().unwrap_or(0) >= 400,
        "{:?}",
        st.counters
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_joiner_receives_the_whole_backlog() {
    let a = Daemon::spawn(Opts::default()).await;
    let all = send_many(&a, "backlog", 1000).await;
    let late = Daemon::spawn(Opts {
        peers: vec![a.addr()],
        ..Opts::default()
    })
    .await;
    late.wait_exactly("triage", &all, TEN_SECS * 3).await;
    let msgs = late.read("triage").await;
    assert!(
        msgs.iter().all(|m| m.hops == 1),
        "catch-up counts one relay hop"
    );
    let st = late.status().await;
    let overhead = st.counters["sync_overhead_bytes"];
    let payload = st.counters["sync_payload_bytes"];
    assert!(
        overhead * 20 < payload,
        "overhead {overhead} B vs payload {payload} B (over 5 %)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_loses_no_acknowledged_message() {
    let mut d = Daemon::spawn(Opts::default()).await;
    let keep_dir = d.take_dir();
    let acked = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    // A sender keeps publishing until the node dies under it.
    let sender = {
        let acked = acked.clone();
        let mut client = d.client().await;
        tokio::spawn(async move {
            for i in 0.. {
                let res = client
                    .request(Op::Send {
                        channel: "triage".into(),
                        text: format!("crash {i}"),
                        ttl_ms: Some(LONG.as_millis() as u64),
                        priority: None,
                        mode: None,
                    })
                    .await;
                match res {
                    Ok(v) => acked
                        .lock()
                        .unwrap()
                        .push(v["message"]["id"].as_str().unwrap().to_owned()),
                    Err(_) => return i,
                }
            }
            unreachable!()
        })
    };
    wait_for(TEN_SECS, "50 acknowledged sends", || async {
        (acked.lock().unwrap().len() >= 50).then_some(())
    })
    .await;
    let data = d.kill9().await;
    let attempts = tokio::time::timeout(TEN_SECS, sender)
        .await
        .unwrap()
        .unwrap();
    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() >= 50 && attempts as usize >= acked.len());
    // The store opens after the crash and holds every acknowledged message.
    let d = Daemon::spawn(Opts {
        data: Some(data),
        ..Opts::default()
    })
    .await;
    let got: HashSet<String> = d.read("triage").await.into_iter().map(|m| m.id).collect();
    let lost: Vec<&String> = acked.iter().filter(|id| !got.contains(*id)).collect();
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged messages lost",
        lost.len(),
        acked.len()
    );
    drop(keep_dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_never_carries_one_teams_channel_into_another_team() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("fire");
    let out = crate::harness::cli(&data, &["team", "create", "fire"]);
    assert!(out.status.success(), "{out:?}");
    let fire = Daemon::spawn(Opts {
        team: Some("fire".into()),
        data: Some(data),
        ..Opts::default()
    })
    .await;
    fire.send("triage", "fire team only", LONG, "p1").await;
    let drill = Daemon::spawn(Opts {
        peers: vec![fire.addr()],
        ..Opts::default()
    })
    .await;
    // Whichever side starts sync on connect, one session completes (answered
    // "not followed" for the other team's topic).
    wait_for(TEN_SECS, "a completed sync session", || async {
        let n =
            |s: fieldmesh::node::StatusView| s.counters.get("sync_sessions").copied().unwrap_or(0);
        (n(fire.status().await) + n(drill.status().await) >= 1).then_some(())
    })
    .await;
    assert!(drill.read("triage").await.is_empty());
    assert_eq!(fire.read("triage").await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_batch_bytes_bounds_each_catch_up_batch() {
    // Out of range: refused before anything starts.
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_fieldmesh"))
        .args(["--data", dir.path().to_str().unwrap(), "up", "--no-mdns"])
        .args(["--sync-batch-bytes", "1K"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--sync-batch-bytes must be between"));

    let a = Daemon::spawn(Opts {
        extra: vec!["--sync-batch-bytes".into(), "32K".into()],
        ..Opts::default()
    })
    .await;
    // 300 envelopes of about 1 KB: about 300 KB to catch up.
    let filler = "x".repeat(900);
    let mut all = HashSet::new();
    for i in 0..300 {
        all.insert(a.send("triage", &format!("{i} {filler}"), LONG, "p3").await);
    }
    let late = Daemon::spawn(Opts {
        peers: vec![a.addr()],
        ..Opts::default()
    })
    .await;
    late.wait_exactly("triage", &all, TEN_SECS * 3).await;
    let st = a.status().await;
    let batches = st.counters.get("sync_batches_sent").copied().unwrap_or(0);
    let bytes = st.counters["sync_payload_bytes"];
    assert!(bytes >= 300 * 900, "{bytes} payload bytes");
    // At most 32 KiB each: at least 300 KB / 32 KiB batches (the default 512 KiB
    // would carry it in two).
    assert!(
        batches >= bytes / (32 << 10),
        "{batches} batches for {bytes} B"
    );
}
