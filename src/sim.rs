//! `fieldmesh sim`: a drill rehearsal without hardware. N real nodes run in this
//! process (each with its own identity, sled store and TCP listener on 127.0.0.1),
//! linked as a [`Topology`] over emulated poor links ([`LinkProfile`]: segment loss
//! with retransmission delay, one-way delay). Nodes publish at a steady rate from
//! random laptops while `churn` of them are stopped and restarted (their data dir
//! kept, as a laptop that sleeps or reboots). After the traffic every node is up and
//! the run drains; the report says what fraction of deliveries happened within the
//! TTL, the latency percentiles over time, and which messages some node never got.
//!
//! This module owns the run and its report; [`topology`] the links, [`plot`] the SVG.

pub mod plot;
pub mod topology;

pub use topology::Topology;

use crate::bench::graph::Mulberry32;
use crate::bench::report::Latency;
use crate::config::{NodeConfig, STORE_DIR};
use crate::gossip::envelope::ChannelName;
use crate::gossip::priority::Priority;
use crate::identity::{Identity, Passphrase};
use crate::node::{Node, NodeEvent, NodeHandle, NodeTask, Outgoing};
use crate::store::Store;
use crate::transport::LinkProfile;
use libp2p::multiaddr::Protocol;
use libp2p::Multiaddr;
use serde::Serialize;
use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;
use tokio::sync::{broadcast, mpsc};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Channel the simulation talks on.
pub const SIM_CHANNEL: &str = "sim";
/// How long a stopped node stays down, at most (at least a fifth of it).
const MAX_DOWN: Duration = Duration::from_secs(5);
/// How long a node may take to stop and flush.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// Intervals the timeline is cut into.
const BUCKETS: u32 = 12;
/// Deliveries waiting to be tallied at most (the run drains them as it goes).
const DELIVERY_CAPACITY: usize = 1 << 16;

/// What to simulate.
#[derive(Debug, Clone)]
pub struct Params {
    /// Nodes (at least 2).
    pub nodes: usize,
    /// How they are linked.
    pub topology: Topology,
    /// Link emulation on every connection.
    pub link: LinkProfile,
    /// Fraction of nodes stopped and restarted during the traffic (0..=1; each
    /// restart picks a random node that is up).
    pub churn: f64,
    /// How long messages are sent.
    pub duration: Duration,
    /// Messages per second, from random live nodes.
    pub rate: f64,
    /// Message time to live.
    pub ttl: Duration,
    /// After the traffic, how long to wait for every node to get every message.
    pub drain: Duration,
    /// Seed of the topology, the publishers and the churn.
    pub seed: u32,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            nodes: 20,
            topology: Topology::Rooms,
            link: LinkProfile::default(),
            churn: 0.0,
            duration: Duration::from_secs(30),
            rate: 2.0,
            ttl: Duration::from_secs(600),
            drain: Duration::from_secs(60),
            seed: 1,
        }
    }
}

/// One interval of the timeline, by message send time.
#[derive(Debug, Clone, Serialize)]
pub struct Bucket {
    /// Middle of the interval, seconds since the traffic started.
    pub t_s: f64,
    /// Messages sent in it.
    pub sent: usize,
    /// Deliveries within TTL / deliveries due for them.
    pub delivered_fraction: f64,
    /// Median delivery latency, ms.
    pub p50_ms: Option<f64>,
    /// 99th percentile delivery latency, ms.
    pub p99_ms: Option<f64>,
}

impl Bucket {
    /// Median latency (for plotting).
    pub fn p50(&self) -> Option<f64> {
        self.p50_ms
    }

    /// 99th percentile latency (for plotting).
    pub fn p99(&self) -> Option<f64> {
        self.p99_ms
    }
}

/// What a simulation found.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Nodes.
    pub nodes: usize,
    /// Topology name.
    pub topology: String,
    /// Links between nodes.
    pub links: usize,
    /// Segment loss probability on every link.
    pub loss: f64,
    /// One-way delay on every link, ms.
    pub delay_ms: u64,
    /// Churn fraction asked for.
    pub churn: f64,
    /// Node restarts that happened.
    pub restarts: usize,
    /// Seconds of traffic.
    pub duration_s: f64,
    /// Messages sent.
    pub messages_sent: usize,
    /// Deliveries due: every message to every node but its sender.
    pub deliveries_due: usize,
    /// Deliveries within TTL.
    pub deliveries: usize,
    /// `deliveries / deliveries_due`.
    pub delivered_fraction: f64,
    /// Messages some node never got within TTL.
    pub messages_lost: usize,
    /// Latency of every delivery, ms.
    pub latency_ms: Latency,
    /// The same over time.
    pub timeline: Vec<Bucket>,
}

/// Why a simulation could not run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SimError {
    /// The parameters make no run.
    #[error("invalid parameters: {0}")]
    Params(&'static str),
    /// A node's data dir, identity or store failed.
    #[error("node {node}: {what}")]
    Setup {
        /// Node index.
        node: usize,
        /// What failed, with its cause.
        what: String,
    },
}

fn setup(node: usize, what: &str, e: impl std::fmt::Display) -> SimError {
    SimError::Setup {
        node,
        what: format!("{what}: {e}"),
    }
}

/// A first delivery: message index, node, when.
struct Delivery {
    msg: u32,
    node: usize,
    at: Instant,
}

/// One simulated laptop: its data dir, fixed port, and the running node if up.
struct Laptop {
    dir: PathBuf,
    listen: Multiaddr,
    peers: Vec<Multiaddr>,
    running: Option<(NodeHandle, NodeTask, CancellationToken)>,
}

impl Laptop {
    async fn start(
        &mut self,
        node: usize,
        link: LinkProfile,
        deliveries: &mpsc::Sender<Delivery>,
    ) -> Result<(), SimError> {
        std::fs::create_dir_all(&self.dir).map_err(|e| setup(node, "data dir", e))?;
        let unlocked = Identity::unlock_or_create(&self.dir, &Passphrase::Drill)
            .map_err(|e| setup(node, "identity", e))?;
        let store = Store::open(&self.dir.join(STORE_DIR), unlocked.data_key)
            .map_err(|e| setup(node, "store", e))?;
        let mut config = NodeConfig::new(&self.dir);
        config.listen = vec![self.listen.clone()];
        config.peers = self.peers.clone();
        config.mdns = false;
        config.link = Some(link);
        config
            .channels
            .push(ChannelName::new(SIM_CHANNEL).map_err(|e| setup(node, "channel", e))?);
        let token = CancellationToken::new();
        let (handle, task) = Node::spawn(config, unlocked.identity, store, token.clone())
            .await
            .map_err(|e| setup(node, "start", e))?;
        // Keep the port across restarts, so that peers' redials find it again.
        if let Some(a) = handle.listen_addrs().first() {
            self.listen = a.clone();
        }
        tokio::spawn(forward(
            node,
            handle.events(),
            handle.peer_id(),
            token.clone(),
            deliveries.clone(),
        ));
        self.running = Some((handle, task, token));
        Ok(())
    }

    /// Stops the node and waits until its store is flushed and closed.
    async fn stop(&mut self) {
        if let Some((handle, task, token)) = self.running.take() {
            token.cancel();
            drop(handle);
            let _ = tokio::time::timeout(STOP_TIMEOUT, task).await;
        }
    }
}

/// Passes a node's first deliveries of simulation messages (not its own) on.
async fn forward(
    node: usize,
    mut events: broadcast::Receiver<NodeEvent>,
    me: libp2p::PeerId,
    stop: CancellationToken,
    tx: mpsc::Sender<Delivery>,
) {
    loop {
        let ev = tokio::select! {
            () = stop.cancelled() => return,
            ev = events.recv() => ev,
        };
        match ev {
            Ok(NodeEvent::Delivered(env))
                if env.channel.as_str() == SIM_CHANNEL && env.author_peer_id() != me =>
            {
                if let Some(msg) = env.body.get(..4).and_then(|b| b.try_into().ok()) {
                    let d = Delivery {
                        msg: u32::from_be_bytes(msg),
                        node,
                        at: Instant::now(),
                    };
                    if tx.send(d).await.is_err() {
                        return;
                    }
                }
            }
            Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}

/// What happens next in the run.
enum Step {
    Send,
    Stop(usize),
    Start(usize),
}

/// Runs the simulation; `progress` is told the seconds of traffic done.
pub async fn run(params: &Params, mut progress: impl FnMut(&str)) -> Result<Report, SimError> {
    if params.nodes < 2 {
        return Err(SimError::Params("--nodes must be at least 2"));
    }
    if !(0.0..=1.0).contains(&params.churn) {
        return Err(SimError::Params("--churn must be between 0 and 1"));
    }
    if params.rate <= 0.0 || params.duration.is_zero() {
        return Err(SimError::Params("--rate and --duration must be positive"));
    }
    let channel = ChannelName::new(SIM_CHANNEL).map_err(|_| SimError::Params("channel"))?;
    let dir = tempfile::tempdir().map_err(|e| setup(0, "temporary directory", e))?;
    let adj = params.topology.links(params.nodes, params.seed);
    let links = adj.iter().map(Vec::len).sum::<usize>() / 2;
    let (tx, mut rx) = mpsc::channel(DELIVERY_CAPACITY);
    let mut laptops: Vec<Laptop> = (0..params.nodes)
        .map(|i| Laptop {
            dir: dir.path().join(format!("node{i}")),
            listen: Multiaddr::empty()
                .with(Protocol::Ip4([127, 0, 0, 1].into()))
                .with(Protocol::Tcp(0)),
            peers: Vec::new(),
            running: None,
        })
        .collect();
    // Highest first, so every node can dial its higher neighbours at start.
    for i in (0..params.nodes).rev() {
        laptops[i].peers = adj[i]
            .iter()
            .filter(|&&j| j > i)
            .map(|&j| laptops[j].listen.clone())
            .collect();
        laptops[i].start(i, params.link, &tx).await?;
    }
    progress(&format!(
        "{} nodes up, {} links ({}); traffic for {:?}",
        params.nodes, links, params.topology, params.duration
    ));

    // The plan: sends at the rate, restarts spread over the middle of the run.
    let mut rng = Mulberry32::new(params.seed ^ 0x5eed);
    let mut plan: Vec<(Duration, Step)> = Vec::new();
    let sends = (params.duration.as_secs_f64() * params.rate)
        .round()
        .max(1.0) as usize;
    for k in 0..sends {
        plan.push((Duration::from_secs_f64(k as f64 / params.rate), Step::Send));
    }
    let restarts = (params.churn * params.nodes as f64).round() as usize;
    for _ in 0..restarts {
        let at = params.duration.mul_f64(0.1 + 0.7 * rng.next_f64());
        let down = MAX_DOWN.mul_f64(0.2 + 0.8 * rng.next_f64());
        let node = rng.below(params.nodes);
        plan.push((at, Step::Stop(node)));
        plan.push((at + down, Step::Start(node)));
    }
    plan.sort_by_key(|(at, _)| *at);

    let start = Instant::now();
    let mut sent: Vec<(Instant, usize)> = Vec::new();
    let mut restarted = 0;
    let mut reported = 0;
    let mut arrived: Vec<Delivery> = Vec::new();
    for (at, step) in plan {
        // Tally deliveries while waiting for the next step.
        let next = tokio::time::sleep_until(start + at);
        tokio::pin!(next);
        loop {
            tokio::select! {
                () = &mut next => break,
                Some(d) = rx.recv() => arrived.push(d),
            }
        }
        match step {
            Step::Send => {
                let up: Vec<usize> = (0..params.nodes)
                    .filter(|&i| laptops[i].running.is_some())
                    .collect();
                let from = up[rng.below(up.len())];
                let Some((handle, ..)) = &laptops[from].running else {
                    continue;
                };
                let mut body = (sent.len() as u32).to_be_bytes().to_vec();
                body.extend_from_slice(b" drill traffic");
                let msg = Outgoing {
                    channel: channel.clone(),
                    body,
                    ttl: params.ttl,
                    priority: Priority::P2,
                };
                if handle.publish(msg).await.is_ok() {
                    sent.push((Instant::now(), from));
                }
            }
            // A node may be picked twice; the second stop of a stopped node is
            // nothing, and at least one node always stays up.
            Step::Stop(i) => {
                let up = laptops.iter().filter(|l| l.running.is_some()).count();
                if laptops[i].running.is_some() && up > 1 {
                    laptops[i].stop().await;
                }
            }
            Step::Start(i) => {
                if laptops[i].running.is_none() {
                    laptops[i].start(i, params.link, &tx).await?;
                    restarted += 1;
                }
            }
        }
        let secs = start.elapsed().as_secs();
        if secs >= reported + 5 {
            reported = secs;
            progress(&format!(
                "{secs} s: {} sent, {restarted} restarts",
                sent.len()
            ));
        }
    }
    for (i, l) in laptops.iter_mut().enumerate() {
        if l.running.is_none() {
            l.start(i, params.link, &tx).await?;
        }
    }
    let traffic = start.elapsed();

    // Drain: until every node has every message, or the drain time is up.
    let due = sent.len() * (params.nodes - 1);
    let mut first: HashMap<(u32, usize), Instant> = HashMap::new();
    let tally = |first: &mut HashMap<(u32, usize), Instant>, d: Delivery| {
        let sender = sent.get(d.msg as usize).map(|s| s.1);
        if sender.is_some() && sender != Some(d.node) {
            first.entry((d.msg, d.node)).or_insert(d.at);
        }
    };
    for d in arrived {
        tally(&mut first, d);
    }
    let deadline = Instant::now() + params.drain;
    progress(&format!("{} messages sent; draining", sent.len()));
    while first.len() < due {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(d)) => tally(&mut first, d),
            _ => break,
        }
    }
    for l in &mut laptops {
        l.stop().await;
    }
    Ok(report(params, links, restarted, traffic, &sent, &first))
}

/// Tallies the deliveries into the report.
fn report(
    params: &Params,
    links: usize,
    restarts: usize,
    traffic: Duration,
    sent: &[(Instant, usize)],
    first: &HashMap<(u32, usize), Instant>,
) -> Report {
    let start = sent.first().map(|s| s.0);
    let span = traffic.as_secs_f64().max(1e-3);
    let width = span / f64::from(BUCKETS);
    let mut per_bucket: Vec<(usize, usize, Vec<f64>)> = vec![(0, 0, Vec::new()); BUCKETS as usize];
    let mut all = Vec::new();
    let mut lost = 0;
    for (msg, (at, _)) in sent.iter().enumerate() {
        let b = start.map_or(0, |s| {
            ((at.duration_since(s).as_secs_f64() / width) as usize).min(BUCKETS as usize - 1)
        });
        per_bucket[b].0 += 1;
        let mut got = 0;
        for node in 0..params.nodes {
            if let Some(t) = first.get(&(msg as u32, node)) {
                let latency = t.duration_since(*at);
                if latency <= params.ttl {
                    got += 1;
                    let ms = latency.as_secs_f64() * 1e3;
                    per_bucket[b].2.push(ms);
                    all.push(ms);
                }
            }
        }
        per_bucket[b].1 += got;
        if got < params.nodes - 1 {
            lost += 1;
        }
    }
    let due = sent.len() * (params.nodes - 1);
    let timeline = per_bucket
        .into_iter()
        .enumerate()
        .filter(|(_, (n, ..))| *n > 0)
        .map(|(i, (n, got, lat))| {
            let l = Latency::of(&lat);
            Bucket {
                t_s: (i as f64 + 0.5) * width,
                sent: n,
                delivered_fraction: got as f64 / (n * (params.nodes - 1)) as f64,
                p50_ms: l.p50,
                p99_ms: l.p99,
            }
        })
        .collect();
    Report {
        nodes: params.nodes,
        topology: params.topology.to_string(),
        links,
        loss: params.link.loss,
        delay_ms: params.link.delay.as_millis() as u64,
        churn: params.churn,
        restarts,
        duration_s: span,
        messages_sent: sent.len(),
        deliveries_due: due,
        deliveries: all.len(),
        delivered_fraction: if due == 0 {
            1.0
        } else {
            all.len() as f64 / due as f64
        },
        messages_lost: lost,
        latency_ms: Latency::of(&all),
        timeline,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn three_nodes_on_a_line_deliver_everything() {
        let params = Params {
            nodes: 3,
            topology: Topology::Line,
            duration: Duration::from_secs(2),
            rate: 5.0,
            drain: Duration::from_secs(20),
            ..Params::default()
        };
        let r = run(&params, |_| {}).await.unwrap();
        assert_eq!(r.messages_sent, 10);
        assert_eq!(r.deliveries_due, 20);
        assert_eq!(r.deliveries, 20, "{r:?}");
        assert_eq!(r.messages_lost, 0);
        assert!(!r.timeline.is_empty());
        let svg = plot::svg(&r);
        assert!(svg.starts_with("<svg") && svg.contains("polyline"));
    }

    #[test]
    fn the_report_counts_late_and_missing_deliveries_as_lost() {
        let params = Params {
            nodes: 3,
            ttl: Duration::from_secs(1),
            ..Params::default()
        };
        let t0 = Instant::now();
        let sent = vec![(t0, 0), (t0 + Duration::from_millis(500), 1)];
        let mut first = HashMap::new();
        first.insert((0, 1), t0 + Duration::from_millis(10));
        first.insert((0, 2), t0 + Duration::from_millis(30));
        first.insert((1, 0), t0 + Duration::from_millis(600));
        first.insert((1, 2), t0 + Duration::from_secs(5)); // past the TTL
        let r = report(&params, 2, 0, Duration::from_secs(1), &sent, &first);
        assert_eq!(r.deliveries_due, 4);
        assert_eq!(r.deliveries, 3);
        assert_eq!(r.messages_lost, 1);
        assert!((r.delivered_fraction - 0.75).abs() < 1e-9);
        assert_eq!(r.latency_ms.max, Some(100.0));
    }
}
