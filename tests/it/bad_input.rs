use crate::harness::{wait_for, Daemon, Opts, TEN_SECS};
use fieldmesh::bench::flooder::Flooder;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// A bare gossipsub peer (a "test client speaking the wire protocol") connected to `d`
/// and subscribed to `topic`, once `d` has seen the subscription.
pub(crate) async fn raw_gossip_peer(d: &Daemon, topic: &str) -> Flooder {
    Flooder::connect(d.addr().parse().unwrap(), topic, TEN_SECS)
        .await
        .unwrap()
}

/// Publishes `data` and keeps the peer polled until it has been written out.
pub(crate) async fn publish(peer: &mut Flooder, data: Vec<u8>) {
    peer.send(data, Duration::from_millis(300)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_envelopes_are_rejected_and_nothing_is_lost() {
    let d = Daemon::spawn(Opts::default()).await;
    let before = d
        .send("triage", "stored before", Duration::from_secs(600), "p1")
        .await;
    let mut peer = raw_gossip_peer(&d, "fieldmesh/1/drill/triage").await;

    publish(&mut peer, b"\x01not an envelope at all".to_vec()).await;
    publish(&mut peer, vec![9; 200]).await;
    // A well-formed envelope whose signature no longer matches its body.
    let env = crate::harness::outside_envelope("triage", b"forged");
    let mut forged = env.as_bytes().to_vec();
    let n = forged.len();
    forged[n - 70] ^= 1;
    publish(&mut peer, forged).await;

    let status = wait_for(TEN_SECS, "three typed rejections", || async {
        let s = d.status().await;
        (s.rejected.values().sum::<u64>() >= 3).then_some(s)
    })
    .await;
    assert_eq!(
        status.rejected.get("unknown_version"),
        Some(&1),
        "{:?}",
        status.rejected
    );
    assert!(status.rejected.contains_key("malformed") || status.rejected.contains_key("truncated"));
    assert_eq!(status.rejected.get("bad_signature"), Some(&1));
    let log = d.log();
    assert!(
        log.contains("rejected envelope") && log.contains("bad_signature"),
        "{log}"
    );

    // Still running, nothing lost, nothing forged stored; valid traffic still flows.
    let msgs = d.read("triage").await;
    assert_eq!(msgs.len(), 1);
    assert_eq!(msgs[0].id, before);
    publish(&mut peer, env.as_bytes().to_vec()).await;
    d.wait_message("triage", &env.id.to_hex()).await;
    assert_eq!(d.read("triage").await.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_on_the_control_socket_gets_typed_errors() {
    let d = Daemon::spawn(Opts::default()).await;
    let id = d
        .send("triage", "keep me", Duration::from_secs(600), "p2")
        .await;
    let stream = tokio::net::UnixStream::connect(d.data.join("control.sock"))
        .await
        .unwrap();
    let (rd, mut wr) = stream.into_split();
    let mut lines = BufReader::new(rd).lines();
    let mut ask = async |line: Vec<u8>| -> serde_json::Value {
        wr.write_all(&line).await.unwrap();
        let reply = tokio::time::timeout(TEN_SECS, lines.next_line())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        serde_json::from_str(&reply).unwrap()
    };
    let r = ask(b"garbage\n".to_vec()).await;
    assert_eq!(r["error"]["code"], "bad_request");
    assert!(r["id"].is_null());
    let r = ask(br#"{"id":7,"op":"launch_missiles"}"#.iter().chain(b"\n").copied().collect()).await;
    assert_eq!(r["error"]["code"], "bad_request");
    let r = ask(
        br#"{"id":8,"op":"read","channel":"NOT VALID"}"#.iter().chain(b"\n").copied().collect(),
    )
    .await;
    assert_eq!(r["id"], 8);
    assert_eq!(r["error"]["code"], "bad_channel");
    // The same connection still serves a valid request.
    let r =
        ask(br#"{"id":9,"op":"read","channel":"triage"}"#.iter().chain(b"\n").copied().collect())
            .await;
    assert_eq!(r["id"], 9);
    assert_eq!(r["result"][0]["id"], id.as_str());
    // An over-long line gets a typed error, then that connection is closed.
    let mut long = vec![b'x'; 600 * 1024];
    long.push(b'\n');
    let r = ask(long).await;
    assert_eq!(r["error"]["code"], "line_too_long");
    // Invalid UTF-8 on a fresh connection: typed error, connection closed, node fine.
    let stream = tokio::net::UnixStream::connect(d.data.join("control.sock"))
        .await
        .unwrap();
    let (rd, mut wr) = stream.into_split();
    let mut lines = BufReader::new(rd).lines();
    wr.write_all(b"\xff\xfe\n").await.unwrap();
    let reply = tokio::time::timeout(TEN_SECS, lines.next_line())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(reply.contains("bad_request"), "{reply}");
    assert_eq!(d.read("triage").await.len(), 1);
    assert!(d.log().contains("control request rejected"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_envelope_is_delivered_once_and_counted() {
    let d = Daemon::spawn(Opts::default()).await;
    let mut peer = raw_gossip_peer(&d, "fieldmesh/1/drill/triage").await;
    let env = crate::harness::outside_envelope("triage", b"once");
    publish(&mut peer, env.as_bytes().to_vec()).await;
    d.wait_message("triage", &env.id.to_hex()).await;
    // The replay changes only the unsigned hop byte, so gossipsub sees a new message
    // and hands it to validation: same id, already stored.
    let mut replay = env.as_bytes().to_vec();
    *replay.last_mut().unwrap() = 1;
    publish(&mut peer, replay).await;
    let st = wait_for(TEN_SECS, "the replay to be counted", || async {
        let s = d.status().await;
        (s.counters.get("duplicate").copied().unwrap_or(0) >= 1).then_some(s)
    })
    .await;
    assert_eq!(st.counters.get("delivered"), Some(&1), "{:?}", st.counters);
    assert_eq!(d.read("triage").await.len(), 1);
}
