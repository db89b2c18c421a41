//! Catch-up benchmark (issue 4): node A holds 10 000 messages of 512 B, node B
//! starts empty and connects; we time connect → first message stored at B, connect →
//! all stored, and count the bytes on the wire (all TCP bytes, Noise and yamux
//! included, through a counting proxy). Full stack: signatures verified, sled on.
//! Prints one JSON line per run and a summary with medians.
//!
//! `cargo bench --bench catchup [-- RUNS [MESSAGES]]`

use fieldmesh::config::NodeConfig;
use fieldmesh::gossip::envelope::{ChannelName, Draft, Envelope, DEFAULT_HOP_LIMIT};
use fieldmesh::gossip::priority::Priority;
use fieldmesh::identity::{Identity, Passphrase};
use fieldmesh::node::{Node, NodeEvent};
use fieldmesh::store::{now_ms, Store};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

const BODY_BYTES: usize = 512;
/// Reference measured on this machine type (issue 4): Secure Scuttlebutt
/// (ssb-db2 + ssb-ebt), 10 000 messages: 2.77 s total, first after ~0.5 s, 867 B/message.
const SSB_TOTAL_S: f64 = 2.77;
const SSB_FIRST_S: f64 = 0.5;
const SSB_BYTES_PER_MSG: f64 = 867.0;
const HARD_TIMEOUT: Duration = Duration::from_secs(60);

struct Run {
    first_ms: f64,
    total_ms: f64,
    wire_bytes: u64,
    /// Reconciliation bytes (reconcile and fetch-by-id messages) / payload bytes, %.
    reconcile_pct: f64,
}

fn config(dir: &std::path::Path) -> NodeConfig {
    let mut c = NodeConfig::new(dir);
    c.listen = vec!["/ip4/127.0.0.1/tcp/0".parse().expect("literal")];
    c.mdns = false;
    c
}

/// Forwards TCP connections to `target`, counting bytes both ways as they pass. It
/// runs on its own thread and runtime, so the nodes' CPU-heavy moments never delay it.
async fn counting_proxy(
    target: std::net::SocketAddr,
    counter: Arc<AtomicU64>,
) -> anyhow::Result<u16> {
    let std_listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    std_listener.set_nonblocking(true)?;
    let port = std_listener.local_addr()?.port();
    std::thread::spawn(move || {
        let Ok(rt) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            return;
        };
        rt.block_on(async move {
            let Ok(listener) = TcpListener::from_std(std_listener) else {
                return;
            };
            while let Ok((inbound, _)) = listener.accept().await {
                let Ok(outbound) = TcpStream::connect(target).await else {
                    continue;
                };
                // As the nodes do: no Nagle delay on either leg of the proxy.
                let _ = inbound.set_nodelay(true);
                let _ = outbound.set_nodelay(true);
                let (ri, wi) = inbound.into_split();
                let (ro, wo) = outbound.into_split();
                tokio::spawn(pump(ri, wo, counter.clone()));
                tokio::spawn(pump(ro, wi, counter.clone()));
            }
        });
    });
    Ok(port)
}

async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    counter: Arc<AtomicU64>,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buf = vec![0u8; 64 * 1024];
    while let Ok(n) = from.read(&mut buf).await {
        if n == 0 || to.write_all(&buf[..n]).await.is_err() {
            break;
        }
        counter.fetch_add(n as u64, Ordering::Relaxed);
    }
}

async fn one_run(n: usize) -> anyhow::Result<Run> {
    let dir_a = tempfile::tempdir()?;
    let dir_b = tempfile::tempdir()?;
    // Fill A's store directly (setup, not measured): signed envelopes, varied priority.
    let a = Identity::unlock_or_create(dir_a.path(), &Passphrase::Drill)?;
    let id_a = a.identity;
    let store_a = Store::open(&dir_a.path().join("store"), a.data_key)?;
    let channel = ChannelName::new("triage")?;
    let now = now_ms();
    for i in 0..n {
        let env = Envelope::sign(
            Draft {
                channel: channel.clone(),
                created_at_ms: now - (n - i) as u64,
                ttl: Duration::from_secs(3600),
                hop_limit: DEFAULT_HOP_LIMIT,
                priority: Priority::from_wire((i % 4) as u8 + 1).expect("1..=4"),
                body: vec![b'x'; BODY_BYTES],
            },
            id_a.signing_key(),
        )?;
        store_a.insert(&env)?;
    }
    store_a.flush().await?;

    let shutdown = CancellationToken::new();
    // B (empty) starts first and its events are watched before anyone dials it; A
    // then dials B through the counting proxy.
    let b = Identity::unlock_or_create(dir_b.path(), &Passphrase::Drill)?;
    let id_b = b.identity;
    let store_b = Store::open(&dir_b.path().join("store"), b.data_key)?;
    let (b, task_b) = Node::spawn(config(dir_b.path()), id_b, store_b, shutdown.clone()).await?;
    let b_port = b.listen_addrs()[0]
        .iter()
        .find_map(|p| match p {
            libp2p::multiaddr::Protocol::Tcp(port) => Some(port),
            _ => None,
        })
        .ok_or_else(|| anyhow::anyhow!("no tcp port"))?;
    // Watch B's events on a dedicated OS thread, so timestamps are taken when the
    // node emits them rather than when a busy runtime worker gets round to it.
    let mut events = b.events();
    let wire = Arc::new(AtomicU64::new(0));
    let proxy = counting_proxy(([127, 0, 0, 1], b_port).into(), wire.clone()).await?;
    let mut cfg_a = config(dir_a.path());
    let dial_port = if std::env::var_os("FM_BENCH_DIRECT").is_some() {
        b_port
    } else {
        proxy
    };
    cfg_a.peers = vec![format!("/ip4/127.0.0.1/tcp/{dial_port}").parse()?];
    let (_a, task_a) = Node::spawn(cfg_a, id_a, store_a, shutdown.clone()).await?;
    let watcher = std::thread::spawn(move || -> anyhow::Result<(Instant, Instant, Instant)> {
        let mut connected = None;
        let mut first = None;
        let mut stored = 0usize;
        let give_up = Instant::now() + HARD_TIMEOUT;
        while Instant::now() < give_up {
            match events.blocking_recv() {
                Ok(NodeEvent::PeerConnected(_)) if connected.is_none() => {
                    connected = Some(Instant::now())
                }
                Ok(NodeEvent::Delivered(_)) => {
                    stored += 1;
                    first.get_or_insert_with(Instant::now);
                    if stored == n {
                        let c = connected.ok_or_else(|| anyhow::anyhow!("never connected"))?;
                        let f = first.ok_or_else(|| anyhow::anyhow!("nothing stored"))?;
                        return Ok((c, f, Instant::now()));
                    }
                }
                Ok(_) => {}
                Err(e) => return Err(anyhow::anyhow!("event stream: {e} after {stored} of {n}")),
            }
        }
        Err(anyhow::anyhow!(
            "timed out after {HARD_TIMEOUT:?} with {stored} of {n}"
        ))
    });
    let (connected, first, done) = tokio::task::spawn_blocking(move || watcher.join())
        .await?
        .map_err(|_| anyhow::anyhow!("watcher panicked"))??;
    let status = b.status().await?;
    let wire_bytes = wire.load(Ordering::Relaxed);
    shutdown.cancel();
    let _ = task_a.await;
    let _ = task_b.await;
    Ok(Run {
        first_ms: (first - connected).as_secs_f64() * 1e3,
        total_ms: (done - connected).as_secs_f64() * 1e3,
        wire_bytes,
        reconcile_pct: status
            .counters
            .get("sync_overhead_bytes")
            .copied()
            .unwrap_or(0) as f64
            * 100.0
            / status
                .counters
                .get("sync_payload_bytes")
                .copied()
                .unwrap_or(1)
                .max(1) as f64,
    })
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let runs: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(3);
    let n: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let mut results = Vec::new();
    for i in 0..runs {
        eprintln!(
            "catch-up run {}/{runs}: {n} messages of {BODY_BYTES} B",
            i + 1
        );
        let r = one_run(n).await?;
        println!(
            "{}",
            serde_json::json!({"run": i + 1, "messages": n, "first_ms": r.first_ms, "total_ms": r.total_ms,
                "wire_bytes": r.wire_bytes, "wire_bytes_per_msg": r.wire_bytes as f64 / n as f64,
                "reconcile_overhead_pct": r.reconcile_pct})
        );
        results.push(r);
    }
    let first = median(results.iter().map(|r| r.first_ms).collect());
    let total = median(results.iter().map(|r| r.total_ms).collect());
    let per_msg = median(
        results
            .iter()
            .map(|r| r.wire_bytes as f64 / n as f64)
            .collect(),
    );
    let overhead = (per_msg - BODY_BYTES as f64) / BODY_BYTES as f64 * 100.0;
    let reconcile = median(results.iter().map(|r| r.reconcile_pct).collect());
    println!(
        "{}",
        serde_json::json!({"summary": true, "runs": runs, "messages": n, "median_first_ms": first,
            "median_total_ms": total, "median_wire_bytes_per_msg": per_msg,
            "wire_overhead_pct_of_body": overhead, "median_reconcile_overhead_pct": reconcile,
            "vs_ssb_total": total / 1e3 / SSB_TOTAL_S, "vs_ssb_first": first / 1e3 / SSB_FIRST_S,
            "vs_ssb_bytes": per_msg / SSB_BYTES_PER_MSG})
    );
    Ok(())
}
