//! Bluetooth LE: two in-process nodes whose only link is the in-memory L2CAP
//! network (Noise, yamux, gossipsub, identify and sync over the BLE transport's
//! framing), P1 first over a slow BLE link, and `fieldmesh up` on a machine without
//! an adapter, the default or one named with `--bt-adapter` (one log line, IP works).

use crate::harness::{wait_for, Daemon, Opts, TEN_SECS};
use fieldmesh::config::{Bluetooth, NodeConfig, STORE_DIR};
use fieldmesh::gossip::envelope::ChannelName;
use fieldmesh::gossip::priority::Priority;
use fieldmesh::gossip::TeamTag;
use fieldmesh::identity::{Identity, Passphrase};
use fieldmesh::node::{Node, NodeEvent, NodeHandle, NodeTask, Outgoing};
use fieldmesh::store::Store;
use fieldmesh::transport::ble::memory::{MemoryAdapter, MemoryNet};
use fieldmesh::transport::ble::{self, BleAddr};
use libp2p::Multiaddr;
use std::time::Duration;
use tempfile::TempDir;
use tokio_util::sync::CancellationToken;

/// The smallest LE CoC MTU a controller may offer: the framing's worst case.
const SMALL_MTU: usize = 23;

struct BleNode {
    handle: NodeHandle,
    task: NodeTask,
    stop: CancellationToken,
    _dir: TempDir,
}

impl BleNode {
    /// A node listening only on BLE (no TCP, no QUIC, no mDNS).
    async fn spawn(adapter: MemoryAdapter, peers: Vec<Multiaddr>) -> BleNode {
        Self::spawn_on(adapter, peers, vec![], "drill").await
    }

    /// A node of `team` listening on BLE and on `ip` listen addresses.
    async fn spawn_on(
        adapter: MemoryAdapter,
        peers: Vec<Multiaddr>,
        ip: Vec<Multiaddr>,
        team: &str,
    ) -> BleNode {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("d");
        std::fs::create_dir_all(&data).unwrap();
        let unlocked = Identity::unlock_or_create(&data, &Passphrase::Drill).unwrap();
        let store = Store::open(&data.join(STORE_DIR), unlocked.data_key).unwrap();
        let mut config = NodeConfig::new(&data);
        config.listen = vec!["/dns/00-00-00-00-00-00.le-public.psm-00.ble.invalid"
            .parse()
            .unwrap()];
        config.listen.extend(ip);
        config.mdns = false;
        config.peers = peers;
        config.bluetooth = Bluetooth::Memory(adapter);
        config.team = TeamTag::new(team).unwrap();
        let stop = CancellationToken::new();
        let (handle, task) = Node::spawn(config, unlocked.identity, store, stop.clone())
            .await
            .unwrap();
        BleNode {
            handle,
            task,
            stop,
            _dir: dir,
        }
    }

    async fn shut_down(self) {
        self.stop.cancel();
        self.task.await.unwrap();
    }
}

/// A and B on one in-memory BLE network, B dialling A's BLE listen address.
async fn pair(mtu: usize, rate: Option<u64>) -> (BleNode, BleNode) {
    let net = MemoryNet::default();
    let a = BleNode::spawn(net.adapter(ble::Mac([0xa; 6]), mtu, rate), vec![]).await;
    let a_addr = a.handle.listen_addrs()[0].clone();
    let parsed = BleAddr::from_multiaddr(&a_addr).unwrap();
    assert!(
        parsed.is_dialable(),
        "A listens on a real address: {a_addr}"
    );
    let b = BleNode::spawn(net.adapter(ble::Mac([0xb; 6]), mtu, rate), vec![a_addr]).await;
    let general = ChannelName::new("general").unwrap();
    wait_for(TEN_SECS, "A to see B subscribed over BLE", || async {
        (a.handle.mesh(general.clone()).await.unwrap().subscribers >= 1).then_some(())
    })
    .await;
    (a, b)
}

fn outgoing(text: &str, priority: Priority) -> Outgoing {
    Outgoing {
        channel: ChannelName::new("general").unwrap(),
        body: text.as_bytes().to_vec(),
        ttl: Duration::from_secs(600),
        priority,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_gossip_over_the_in_memory_ble_link_only() {
    let (a, b) = pair(SMALL_MTU, None).await;
    let peers = b.handle.peers().await.unwrap();
    assert_eq!(peers.len(), 1);
    assert_eq!(peers[0].transports, ["ble"], "{peers:?}");
    assert!(peers[0].agent.is_some(), "identify ran over BLE");

    let mut events = b.handle.events();
    let sent = a
        .handle
        .publish(outgoing("bay 4: airway", Priority::P1))
        .await
        .unwrap();
    assert!(sent.sent_to >= 1);
    let id = sent.envelope.id;
    let got = wait_for(TEN_SECS, "B to receive the message over BLE", || {
        let ev = events.try_recv();
        async move {
            match ev {
                Ok(NodeEvent::Delivered(env)) if env.id == id => Some(env),
                _ => None,
            }
        }
    })
    .await;
    assert_eq!(got.body, b"bay 4: airway");
    assert_eq!(got.priority, Priority::P1);
    b.shut_down().await;
    a.shut_down().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_a_slow_ble_link_a_p1_overtakes_a_p3_backlog() {
    // 20 kB/s: 100 P3 messages of 1 KiB take five seconds of radio time.
    let (a, b) = pair(247, Some(20_000)).await;
    let mut events = b.handle.events();
    let filler = "x".repeat(1024);
    for _ in 0..100 {
        a.handle
            .publish(outgoing(&filler, Priority::P3))
            .await
            .unwrap();
    }
    let p1 = a
        .handle
        .publish(outgoing("P1 bay 4", Priority::P1))
        .await
        .unwrap()
        .envelope
        .id;
    let mut p3_before = 0usize;
    wait_for(TEN_SECS, "B to receive the P1", || {
        let mut got_p1 = false;
        while let Ok(ev) = events.try_recv() {
            if let NodeEvent::Delivered(env) = ev {
                if env.id == p1 {
                    got_p1 = true;
                    break;
                }
                p3_before += usize::from(env.priority == Priority::P3);
            }
        }
        async move { got_p1.then_some(()) }
    })
    .await;
    // The 4 KiB BLE window lets 3-4 P3s through before the P1 (measured); the
    // 32 KiB window over all links alone lets 29 through.
    assert!(
        p3_before < 12,
        "the P1 waited behind {p3_before} of 100 P3 messages on the BLE link"
    );
    b.shut_down().await;
    a.shut_down().await;
}

/// What `up` logs, once, when it finds no Bluetooth adapter.
const NO_ADAPTER: &str = "bluetooth: no adapter, carrying on over IP";

/// The one "no adapter" line in `d`'s log (panics unless there is exactly one).
fn no_adapter_line(d: &Daemon) -> String {
    let log = d.log();
    let lines: Vec<&str> = log.lines().filter(|l| l.contains(NO_ADAPTER)).collect();
    assert_eq!(lines.len(), 1, "log:\n{log}");
    lines[0].to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn up_without_an_adapter_says_so_once_and_works_over_ip() {
    let a = Daemon::spawn(Opts::default()).await;
    // B has Bluetooth turned off: it does not look for an adapter at all.
    let b = Daemon::spawn(Opts {
        peers: vec![a.addr()],
        extra: vec!["--no-bluetooth".into()],
        ..Opts::default()
    })
    .await;
    b.wait_subscribed(&a, "general").await;
    let id = a
        .send("general", "over IP", Duration::from_secs(600), "p2")
        .await;
    assert_eq!(b.wait_message("general", &id).await.text, "over IP");
    let line = no_adapter_line(&a);
    assert!(line.contains("adapter=default"), "{line}");
    assert!(!b.log().contains("bluetooth:"), "log:\n{}", b.log());
    for d in [&a, &b] {
        assert!(
            d.peers().await.iter().all(|p| p.transports == ["tcp"]),
            "IP only"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn up_on_a_named_adapter_that_is_not_there_says_so_once_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("config.toml");
    std::fs::write(&file, "bt-adapter = \"hci8\"\n").unwrap();
    let config = || vec!["--config".to_owned(), file.display().to_string()];
    let from_file = Daemon::spawn(Opts {
        extra: config(),
        ..Opts::default()
    })
    .await;
    // The flag wins over the file.
    let from_flag = Daemon::spawn(Opts {
        peers: vec![from_file.addr()],
        extra: [config(), vec!["--bt-adapter".into(), "hci9".into()]].concat(),
        ..Opts::default()
    })
    .await;
    for (d, name) in [(&from_file, "hci8"), (&from_flag, "hci9")] {
        let line = no_adapter_line(d);
        assert!(line.contains(&format!("adapter={name}")), "{line}");
    }
    // Both run on over IP.
    from_flag.wait_subscribed(&from_file, "general").await;
    // A name BlueZ never gives, or an adapter with Bluetooth off (by flags, by the
    // file, or one of each), is refused before anything starts.
    let off = dir.path().join("off.toml");
    std::fs::write(&off, "bluetooth = false\nbt-adapter = \"hci1\"\n").unwrap();
    let off = off.display().to_string();
    let hci8 = file.display().to_string();
    let data = dir.path().join("refused");
    for (args, says) in [
        (
            &["up", "--bt-adapter", "bluetooth0"][..],
            "not a BlueZ adapter name",
        ),
        (
            &["up", "--no-bluetooth", "--bt-adapter", "hci1"][..],
            "cannot be used with",
        ),
        (&["up", "--config", &off][..], "Bluetooth is off"),
        (
            &["up", "--config", &hci8, "--no-bluetooth"][..],
            "Bluetooth is off",
        ),
    ] {
        let out = crate::harness::cli(&data, args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
    }
    assert!(!data.exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ble_link_beside_an_ip_link_is_closed_and_gossip_goes_over_ip() {
    let net = MemoryNet::default();
    let tcp: Multiaddr = "/ip4/127.0.0.1/tcp/0".parse().unwrap();
    let a = BleNode::spawn_on(
        net.adapter(ble::Mac([0xa; 6]), SMALL_MTU, None),
        vec![],
        vec![tcp],
        "drill",
    )
    .await;
    let addrs = a.handle.listen_addrs().to_vec();
    let a_ble = addrs.iter().find(|m| ble::is_ble(m)).unwrap().clone();
    let a_tcp = addrs.iter().find(|m| !ble::is_ble(m)).unwrap().clone();
    // B is told both ways to reach A: it dials both at once.
    let b = BleNode::spawn(
        net.adapter(ble::Mac([0xb; 6]), SMALL_MTU, None),
        vec![a_ble, a_tcp],
    )
    .await;
    // Whichever end closes it first, the BLE link goes (after a 2 s grace that lets
    // gossipsub's first messages on it leave) and the subscriptions survive.
    crate::harness::wait_until(TEN_SECS, "the BLE link beside TCP to be closed", || async {
        let mut closed = 0;
        for n in [&a, &b] {
            let status = n.handle.status().await.unwrap();
            closed += status
                .counters
                .get("ble_closed_redundant")
                .copied()
                .unwrap_or(0);
        }
        let peers = b.handle.peers().await.unwrap();
        let tcp_only = peers.len() == 1 && peers[0].transports == ["tcp"];
        if closed >= 1 && tcp_only && !peers[0].channels.is_empty() {
            Ok(())
        } else {
            Err(format!("closed {closed}, peers {peers:?}"))
        }
    })
    .await;
    let mut events = b.handle.events();
    let general = ChannelName::new("general").unwrap();
    wait_for(TEN_SECS, "A to see B subscribed", || async {
        (a.handle.mesh(general.clone()).await.unwrap().subscribers >= 1).then_some(())
    })
    .await;
    let id = a
        .handle
        .publish(outgoing("over IP", Priority::P2))
        .await
        .unwrap()
        .envelope
        .id;
    // Within 5 s: carried by gossip, not by the catch-up sync that runs every 10 s
    // (gossipsub's handler on the TCP connection is woken after the BLE one closed).
    wait_for(
        Duration::from_secs(5),
        "B to receive the message by gossip",
        || {
            let ev = events.try_recv();
            async move { matches!(ev, Ok(NodeEvent::Delivered(env)) if env.id == id).then_some(()) }
        },
    )
    .await;
    // A's view may lag B's: the wait above checked B's end of the closed link.
    crate::harness::wait_until(TEN_SECS, "A to hold the TCP link only", || async {
        let peers = a.handle.peers().await.unwrap();
        if peers.len() == 1 && peers[0].transports == ["tcp"] {
            Ok(())
        } else {
            Err(format!("{peers:?}"))
        }
    })
    .await;
    b.shut_down().await;
    a.shut_down().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn team_mates_in_range_find_each_other_by_ble_advertising_alone() {
    let net = MemoryNet::default();
    let adapter = |b: u8| net.adapter(ble::Mac([b; 6]), SMALL_MTU, None);
    // No static peers, no mDNS, no IP: only advertisements.
    let a = BleNode::spawn(adapter(0xa), vec![]).await;
    let b = BleNode::spawn(adapter(0xb), vec![]).await;
    let stranger = BleNode::spawn_on(adapter(0xc), vec![], vec![], "other-team").await;
    // Both may dial on seeing each other; every link between them is BLE.
    wait_for(TEN_SECS, "A and B connected over BLE", || async {
        let pa = a.handle.peers().await.unwrap();
        let pb = b.handle.peers().await.unwrap();
        let one = |p: &[fieldmesh::node::PeerView]| p.len() == 1 && p[0].transports == ["ble"];
        (one(&pa) && one(&pb)).then_some(())
    })
    .await;
    let general = ChannelName::new("general").unwrap();
    wait_for(TEN_SECS, "B to see A subscribed", || async {
        (b.handle.mesh(general.clone()).await.unwrap().subscribers >= 1).then_some(())
    })
    .await;
    let mut events = a.handle.events();
    let id = b
        .handle
        .publish(outgoing("found by advertising", Priority::P2))
        .await
        .unwrap()
        .envelope
        .id;
    wait_for(TEN_SECS, "A to receive B's message", || {
        let ev = events.try_recv();
        async move { matches!(ev, Ok(NodeEvent::Delivered(env)) if env.id == id).then_some(()) }
    })
    .await;
    // The other team's node heard both all along (scans every 200 ms) and dialled
    // neither: its team hint differs.
    assert!(stranger.handle.peers().await.unwrap().is_empty());
    assert_eq!(a.handle.peers().await.unwrap().len(), 1);
    stranger.shut_down().await;
    b.shut_down().await;
    a.shut_down().await;
}
