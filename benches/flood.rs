//! Flood benchmark (issue 9): the latency of P1 messages between two good nodes,
//! A → B, first unloaded, then while two flooders hit B with 10 000 messages a
//! second each (one valid-but-spam envelopes, one garbage). Full stack, default
//! limits (1 000 messages a second per peer, then the fault budget and a ban).
//! Latency is from `publish` at A (sign, store, fsync) to `Delivered` at B.
//! Prints one JSON line per run and the medians; the target is a flooded p50 within
//! 2× the unloaded p50.
//!
//! `cargo bench --bench flood [-- RUNS]`

use fieldmesh::bench::flooder::Flooder;
use fieldmesh::config::NodeConfig;
use fieldmesh::gossip::envelope::{ChannelName, Draft, Envelope, DEFAULT_HOP_LIMIT};
use fieldmesh::gossip::priority::Priority;
use fieldmesh::identity::{Identity, Passphrase};
use fieldmesh::node::{Node, NodeEvent, NodeHandle, Outgoing};
use fieldmesh::store::{now_ms, Store};
use std::time::{Duration, Instant};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

/// P1 messages timed per phase, one every [`GAP`].
const PROBES: usize = 40;
const GAP: Duration = Duration::from_millis(25);
/// Messages each flooder has ready (two seconds' worth at 10 000 a second).
const FLOOD: u32 = 20_000;
const WAIT: Duration = Duration::from_secs(10);

struct Run {
    unloaded: Vec<f64>,
    flooded: Vec<f64>,
    cut_off: usize,
}

fn median(v: &[f64]) -> f64 {
    percentile(v, 50.0)
}

fn percentile(v: &[f64], p: f64) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    if s.is_empty() {
        return f64::NAN;
    }
    s[((p / 100.0) * (s.len() - 1) as f64).round() as usize]
}

async fn node(
    dir: &std::path::Path,
    peers: Vec<libp2p::Multiaddr>,
    shutdown: &CancellationToken,
) -> anyhow::Result<NodeHandle> {
    std::fs::create_dir_all(dir)?;
    let unlocked = Identity::unlock_or_create(dir, &Passphrase::Drill)?;
    let store = Store::open(&dir.join("store"), unlocked.data_key)?;
    let mut c = NodeConfig::new(dir);
    c.listen = vec!["/ip4/127.0.0.1/tcp/0".parse()?];
    c.mdns = false;
    c.peers = peers;
    let (handle, _task) = Node::spawn(c, unlocked.identity, store, shutdown.clone()).await?;
    Ok(handle)
}

/// Sends `PROBES` P1 messages from `a`, one every `GAP`; returns each one's latency
/// to delivery at `b` (whose events are `events`), in ms.
async fn probe(
    a: &NodeHandle,
    events: &mut broadcast::Receiver<NodeEvent>,
) -> anyhow::Result<Vec<f64>> {
    let triage = ChannelName::new("triage")?;
    let mut out = Vec::with_capacity(PROBES);
    for i in 0..PROBES {
        let start = Instant::now();
        let sent = a
            .publish(Outgoing {
                channel: triage.clone(),
                body: format!("P1 probe {i}").into_bytes(),
                ttl: Duration::from_secs(600),
                priority: Priority::P1,
            })
            .await?;
        let id = sent.envelope.id;
        tokio::time::timeout(WAIT, async {
            loop {
                match events.recv().await {
                    Ok(NodeEvent::Delivered(env)) if env.id == id => return Ok(()),
                    Err(broadcast::error::RecvError::Closed) => {
                        anyhow::bail!("B stopped")
                    }
                    _ => {}
                }
            }
        })
        .await
        .map_err(|_| anyhow::anyhow!("probe {i} not delivered within {WAIT:?}"))??;
        out.push(start.elapsed().as_secs_f64() * 1e3);
        tokio::time::sleep(GAP).await;
    }
    Ok(out)
}

async fn run_once() -> anyhow::Result<Run> {
    let dir = tempfile::tempdir()?;
    let shutdown = CancellationToken::new();
    let b = node(&dir.path().join("b"), Vec::new(), &shutdown).await?;
    let b_addr = b.listen_addrs()[0].clone();
    let a = node(&dir.path().join("a"), vec![b_addr.clone()], &shutdown).await?;
    let b_id = b.peer_id().to_string();
    let deadline = Instant::now() + WAIT;
    while !a
        .peers()
        .await?
        .iter()
        .any(|p| p.peer_id == b_id && p.channels.iter().any(|c| c == "triage"))
    {
        anyhow::ensure!(Instant::now() < deadline, "A never saw B on triage");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut events = b.events();
    let unloaded = probe(&a, &mut events).await?;

    let key = libp2p::identity::ed25519::Keypair::generate();
    let spam: Vec<Vec<u8>> = (0..FLOOD)
        .map(|i| {
            Envelope::sign(
                Draft {
                    channel: ChannelName::new("triage").expect("literal"),
                    created_at_ms: now_ms(),
                    ttl: Duration::from_secs(60),
                    hop_limit: DEFAULT_HOP_LIMIT,
                    priority: Priority::P1,
                    body: i.to_be_bytes().to_vec(),
                },
                &key,
            )
            .map(|e| e.as_bytes().to_vec())
        })
        .collect::<Result<_, _>>()?;
    let garbage: Vec<Vec<u8>> = (0..FLOOD)
        .map(|i| [&b"\x01garbage"[..], &i.to_be_bytes()].concat())
        .collect();
    let topic = "fieldmesh/1/drill/triage";
    let spammer = Flooder::connect(b_addr.clone(), topic, WAIT).await?;
    let vandal = Flooder::connect(b_addr, topic, WAIT).await?;
    let floods = [
        tokio::spawn(spammer.flood(spam, 10, Duration::from_secs(2))),
        tokio::spawn(vandal.flood(garbage, 10, Duration::from_secs(2))),
    ];
    let flooded = probe(&a, &mut events).await?;
    let mut cut_off = 0;
    for f in floods {
        cut_off += usize::from(f.await?.cut_off);
    }
    shutdown.cancel();
    Ok(Run {
        unloaded,
        flooded,
        cut_off,
    })
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let runs: usize = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .and_then(|a| a.parse().ok())
        .unwrap_or(3);
    let mut unloaded_p50 = Vec::new();
    let mut flooded_p50 = Vec::new();
    for r in 0..runs {
        let run = run_once().await?;
        let line = serde_json::json!({
            "run": r,
            "unloaded_ms": {"p50": median(&run.unloaded), "p99": percentile(&run.unloaded, 99.0)},
            "flooded_ms": {"p50": median(&run.flooded), "p99": percentile(&run.flooded, 99.0)},
            "flooders_cut_off": run.cut_off,
        });
        println!("{line}");
        unloaded_p50.push(median(&run.unloaded));
        flooded_p50.push(median(&run.flooded));
    }
    let (u, f) = (median(&unloaded_p50), median(&flooded_p50));
    println!(
        "P1 latency A→B, median of {runs} runs: unloaded p50 {u:.2} ms, flooded p50 {f:.2} ms, ratio {:.2} (target ≤ 2)",
        f / u
    );
    Ok(())
}
