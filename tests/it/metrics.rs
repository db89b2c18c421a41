use crate::harness::{wait_for, Daemon, Opts, TEN_SECS};
use prometheus_parse::{Sample, Scrape, Value};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// `GET /metrics` over a plain TCP connection; returns the parsed body.
async fn scrape(d: &Daemon) -> Scrape {
    let addr = d.ready["metrics"]
        .as_str()
        .expect("metrics address in the ready line");
    let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
    conn.write_all(b"GET /metrics HTTP/1.1\r\nHost: fieldmesh\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut raw = String::new();
    conn.read_to_string(&mut raw).await.unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        head.to_lowercase()
            .contains("content-type: application/openmetrics-text"),
        "{head}"
    );
    Scrape::parse(body.lines().map(|l| Ok(l.to_owned()))).unwrap()
}

fn value(s: &Scrape, name: &str, label: Option<(&str, &str)>) -> f64 {
    let found: Vec<&Sample> = s
        .samples
        .iter()
        .filter(|x| x.metric == name)
        .filter(|x| label.is_none_or(|(k, v)| x.labels.get(k) == Some(v)))
        .collect();
    match found.first().map(|x| &x.value) {
        Some(Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v)) => *v,
        Some(Value::Histogram(h)) => h.iter().map(|b| b.count).fold(0.0, f64::max),
        other => panic!("{name} {label:?}: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_parse_and_counters_move_with_traffic() {
    let a = Daemon::spawn(Opts {
        extra: vec!["--metrics".into(), "127.0.0.1:0".into()],
        ..Opts::default()
    })
    .await;
    let b = Daemon::spawn(Opts {
        peers: vec![a.addr()],
        ..Opts::default()
    })
    .await;
    a.wait_subscribed(&b, "triage").await;
    b.wait_subscribed(&a, "triage").await;

    let before = scrape(&a).await;
    assert_eq!(
        value(&before, "fieldmesh_peers", Some(("transport", "tcp"))),
        1.0
    );
    assert_eq!(
        value(&before, "fieldmesh_peers", Some(("transport", "quic"))),
        0.0
    );
    for name in [
        "fieldmesh_store_bytes",
        "fieldmesh_store_capacity_bytes",
        "fieldmesh_store_messages",
        "fieldmesh_sync_backlog_messages",
        "fieldmesh_sync_sessions",
        "fieldmesh_outbound_queued_messages",
    ] {
        value(&before, name, None);
    }
    let out0 = value(&before, "fieldmesh_messages_out_total", None);

    // One out from a, one P1 in from b.
    let sent = a
        .send("general", "out", Duration::from_secs(600), "p3")
        .await;
    b.wait_message("general", &sent).await;
    let p1 = b.send("triage", "in", Duration::from_secs(600), "p1").await;
    a.wait_message("triage", &p1).await;

    let after = wait_for(TEN_SECS, "counters to move", || async {
        let s = scrape(&a).await;
        (value(&s, "fieldmesh_messages_in_total", Some(("via", "gossip"))) >= 1.0
            || value(&s, "fieldmesh_messages_in_total", Some(("via", "sync"))) >= 1.0)
            .then_some(s)
    })
    .await;
    assert_eq!(
        value(&after, "fieldmesh_messages_out_total", None),
        out0 + 1.0
    );
    assert_eq!(
        value(&after, "fieldmesh_p1_latency_seconds_count", None),
        1.0
    );
    assert!(value(&after, "fieldmesh_store_messages", None) >= 2.0);
    assert!(
        value(&after, "fieldmesh_store_bytes", None)
            > value(&before, "fieldmesh_store_bytes", None)
    );

    // `status --json` carries the same figures.
    let st = a.status().await;
    assert_eq!(st.p1_latency.count, 1);
    assert_eq!(st.peers_by_transport.get("tcp"), Some(&1));
    assert_eq!(st.counters.get("published"), Some(&(out0 as u64 + 1)));

    // A peer's garbage is counted under its reason.
    let mut peer = crate::bad_input::raw_gossip_peer(&a, "fieldmesh/1/drill/triage").await;
    crate::bad_input::publish(&mut peer, vec![9; 200]).await;
    let rejected = wait_for(TEN_SECS, "a rejection in /metrics", || async {
        let s = scrape(&a).await;
        s.samples
            .iter()
            .any(|x| x.metric == "fieldmesh_messages_rejected_total")
            .then_some(s)
    })
    .await;
    assert_eq!(
        value(
            &rejected,
            "fieldmesh_messages_rejected_total",
            Some(("reason", "unknown_version"))
        ),
        1.0
    );
}
