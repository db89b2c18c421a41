//! `fieldmesh bench`: the dissemination benchmark of `bench-spec.md`, run with the
//! real node. N nodes start in this process, each with its own identity, sled store
//! (in one temporary directory), TCP listener on 127.0.0.1 and the production stack
//! (Noise, yamux, gossipsub, signed envelopes validated at every hop, TTL, receipts,
//! catch-up sync); mDNS is off and nodes connect only along the edges of the spec's
//! seeded graph, the lower index dialling the higher. After every gossip mesh has
//! formed, warm-up messages and then M measured messages go out from seeded-random
//! publishers; a message counts as fully disseminated when the last of the other
//! N−1 nodes has delivered it to the application (`NodeEvent::Delivered`).
//!
//! This module owns the testbed and the measurement; [`graph`] the topology,
//! [`report`] the result fields. The CLI parses flags and prints the report.

mod coordinator;
pub mod flooder;
pub mod graph;
mod meter;
pub mod report;

use crate::config::{NodeConfig, STORE_DIR};
use crate::gossip::envelope::ChannelName;
use crate::identity::{Identity, Passphrase};
use crate::node::{Node, NodeEvent, NodeHandle, NodeTask};
use crate::progress::Progress;
use crate::store::Store;
use coordinator::{Coordinator, Delivery};
use graph::{Graph, Mulberry32};
use libp2p::Multiaddr;
use report::Report;
use std::time::{Duration, Instant};
use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;

/// The channel every bench node publishes on and follows: triage, where P1 goes.
pub const BENCH_CHANNEL: &str = "triage";
/// Deliveries queued from the nodes' event forwarders to the coordinator at most; a
/// full queue makes the forwarders wait (their broadcast receivers then buffer).
const DELIVERY_CHANNEL_CAPACITY: usize = 64 * 1024;
/// How often the testbed polls every node while waiting for connections and meshes.
const POLL_INTERVAL: Duration = Duration::from_millis(50);
/// How long stopping the nodes (store flush included) may take after a run.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(10);
/// How long bench messages live: far beyond any run, so none expires mid-run.
const MESSAGE_TTL: Duration = Duration::from_secs(3600);

/// What to run; the defaults are the spec's (and the reference peers').
#[derive(Debug, Clone)]
pub struct Params {
    /// Nodes (at least 2).
    pub n: usize,
    /// Measured messages.
    pub m: usize,
    /// Payload bytes per message (at least 12: id and send time).
    pub s: usize,
    /// Window mode: messages not yet fully disseminated at most.
    pub window: usize,
    /// Paced mode when set: messages per second, open loop.
    pub rate: Option<f64>,
    /// Seed of the graph, the filler bytes and the publishers.
    pub seed: u32,
    /// Mean degree of the graph.
    pub degree: usize,
    /// Unmeasured messages sent first.
    pub warmup: usize,
    /// A message not complete after this gives its window slot back.
    pub msg_timeout: Duration,
    /// Waiting for connections and meshes fails after this.
    pub mesh_timeout: Duration,
    /// After the last send, how long to wait for stragglers.
    pub drain: Duration,
    /// The whole run fails with an error report after this.
    pub timeout: Duration,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            n: 20,
            m: 1000,
            s: 512,
            window: 8,
            rate: None,
            seed: 1,
            degree: 4,
            warmup: 50,
            msg_timeout: Duration::from_secs(5),
            mesh_timeout: Duration::from_secs(30),
            drain: Duration::from_secs(10),
            timeout: Duration::from_secs(300),
        }
    }
}

/// Why a run produced no report.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BenchError {
    /// The parameters make no run.
    #[error("invalid parameters: {0}")]
    Params(&'static str),
    /// The seeded graph is not connected (cannot happen with the spec's recipe).
    #[error("graph not connected")]
    Disconnected,
    /// The temporary directory could not be made.
    #[error("temporary directory")]
    TempDir(#[source] std::io::Error),
    /// A node's identity could not be created.
    #[error("node {node}: identity")]
    Identity {
        /// Node index.
        node: usize,
        /// The cause.
        #[source]
        source: crate::identity::IdentityError,
    },
    /// A node's store could not be opened.
    #[error("node {node}: store")]
    Store {
        /// Node index.
        node: usize,
        /// The cause.
        #[source]
        source: crate::store::StoreError,
    },
    /// A node did not start.
    #[error("node {node}: start")]
    Spawn {
        /// Node index.
        node: usize,
        /// The cause.
        #[source]
        source: crate::node::SpawnError,
    },
    /// Graph edges or gossip meshes were not all up in time.
    #[error("{what} not ready within {timeout:?} ({short})")]
    NotReady {
        /// `connections` or `gossip mesh`.
        what: &'static str,
        /// The limit.
        timeout: Duration,
        /// The first nodes still short, and of what.
        short: String,
    },
    /// A node stopped during the run.
    #[error("a node stopped during the run")]
    NodeStopped,
    /// The hard timeout fired.
    #[error("hard timeout after {0:?}")]
    HardTimeout(Duration),
}

/// Runs the benchmark; progress goes to stderr. Everything, node shutdown included,
/// ends within `params.timeout` plus [`SHUTDOWN_TIMEOUT`].
pub async fn run(params: &Params) -> Result<Report, BenchError> {
    if params.n < 2 {
        return Err(BenchError::Params("--n must be at least 2"));
    }
    if params.s < coordinator::HEADER_BYTES {
        return Err(BenchError::Params(
            "--s must be at least 12 (message id and send time)",
        ));
    }
    if params.rate.is_none() && params.window == 0 {
        return Err(BenchError::Params("--window must be at least 1"));
    }
    let dir = tempfile::tempdir().map_err(BenchError::TempDir)?;
    let shutdown = CancellationToken::new();
    let mut nodes = Vec::with_capacity(params.n);
    let outcome = tokio::time::timeout(
        params.timeout,
        run_on(params, dir.path(), &shutdown, &mut nodes),
    )
    .await
    .unwrap_or(Err(BenchError::HardTimeout(params.timeout)));
    // Stop the nodes one at a time, each flushing its store before the directory
    // goes away: sled deadlocks when dozens of databases close at once (its shared
    // I/O thread pool runs dry).
    shutdown.cancel();
    let stop_all = async {
        for (stop, task) in nodes {
            stop.cancel();
            let _ = task.await;
        }
    };
    let _ = tokio::time::timeout(SHUTDOWN_TIMEOUT, stop_all).await;
    outcome
}

async fn run_on(
    params: &Params,
    dir: &std::path::Path,
    shutdown: &CancellationToken,
    nodes: &mut Vec<(CancellationToken, NodeTask)>,
) -> Result<Report, BenchError> {
    let mut rng = Mulberry32::new(params.seed);
    let graph = Graph::build(&mut rng, params.n, params.degree.min(params.n - 1));
    let stats = graph.stats().ok_or(BenchError::Disconnected)?;
    let total = params.warmup + params.m;
    let progress = Progress::new(total as u64, "messages");
    progress.phase(&format!(
        "graph: {} edges, degree {}/{}/{}, diameter {}",
        stats.edges, stats.degree_min, stats.degree_mean, stats.degree_max, stats.diameter_hops
    ));
    let channel = ChannelName::new(BENCH_CHANNEL).map_err(|_| BenchError::Params("channel"))?;
    let (delivery_tx, delivery_rx) = mpsc::channel(DELIVERY_CHANNEL_CAPACITY);
    let started = Instant::now();
    let handles = start_nodes(&graph, dir, shutdown, nodes, &channel, &delivery_tx).await?;
    drop(delivery_tx);
    progress.phase(&format!(
        "started {} nodes in {} ms",
        params.n,
        started.elapsed().as_millis()
    ));
    wait_until(params.mesh_timeout, "connections", || {
        connections_short(&handles, &graph)
    })
    .await?;
    let edges_up = Instant::now();
    let dlo = crate::gossip::config(crate::gossip::envelope::DEFAULT_MAX_BODY_BYTES)
        .map_or(1, |c| c.mesh_n_low());
    wait_until(params.mesh_timeout, "gossip mesh", || {
        mesh_short(&handles, &graph, &channel, dlo)
    })
    .await?;
    let mesh_form = edges_up.elapsed();
    progress.phase(&format!(
        "mesh formed {} ms after the last edge connected",
        mesh_form.as_millis()
    ));
    let filler: Vec<u8> = (0..params.s).map(|_| rng.below(256) as u8).collect();
    let publishers: Vec<usize> = (0..total).map(|_| rng.below(params.n)).collect();
    let coordinator = Coordinator::new(params, handles, channel, filler, publishers);
    let measured = coordinator.run(delivery_rx, &progress).await?;
    progress.finish();
    Ok(measured.report(params, stats, mesh_form, stack()))
}

/// Starts the nodes from the highest index down, so that each node's higher
/// neighbours are listening when it starts and dials them (as static peers).
async fn start_nodes(
    graph: &Graph,
    dir: &std::path::Path,
    shutdown: &CancellationToken,
    nodes: &mut Vec<(CancellationToken, NodeTask)>,
    channel: &ChannelName,
    delivery_tx: &mpsc::Sender<Delivery>,
) -> Result<Vec<NodeHandle>, BenchError> {
    let n = graph.len();
    let mut handles: Vec<Option<NodeHandle>> = vec![None; n];
    let mut addrs: Vec<Option<Multiaddr>> = vec![None; n];
    for node in (0..n).rev() {
        let data_dir = dir.join(format!("node{node}"));
        std::fs::create_dir_all(&data_dir).map_err(BenchError::TempDir)?;
        let unlocked = Identity::unlock_or_create(&data_dir, &Passphrase::Drill)
            .map_err(|source| BenchError::Identity { node, source })?;
        let store = Store::open(&data_dir.join(STORE_DIR), unlocked.data_key)
            .map_err(|source| BenchError::Store { node, source })?;
        let mut config = NodeConfig::new(&data_dir);
        config.listen = vec![loopback_tcp()];
        config.mdns = false;
        config.peers = graph
            .neighbours(node)
            .iter()
            .filter(|&&b| b > node)
            .filter_map(|&b| addrs[b].clone())
            .collect();
        // Forwarders stop with the run's token; each node with its own child token.
        let stop = CancellationToken::new();
        let (handle, task) = Node::spawn(config, unlocked.identity, store, stop.clone())
            .await
            .map_err(|source| BenchError::Spawn { node, source })?;
        nodes.push((stop, task));
        addrs[node] = handle.listen_addrs().first().cloned();
        tokio::spawn(forward_deliveries(
            node,
            handle.events(),
            handle.peer_id(),
            channel.clone(),
            delivery_tx.clone(),
            shutdown.clone(),
        ));
        handles[node] = Some(handle);
    }
    Ok(handles.into_iter().flatten().collect())
}

fn loopback_tcp() -> Multiaddr {
    Multiaddr::empty()
        .with(libp2p::multiaddr::Protocol::Ip4([127, 0, 0, 1].into()))
        .with(libp2p::multiaddr::Protocol::Tcp(0))
}

/// Turns one node's deliveries of bench messages from other authors into
/// [`Delivery`] records, time-stamped as they come off the node's event stream.
/// Ends with the node (closed stream) or the run (token).
async fn forward_deliveries(
    node: usize,
    mut events: broadcast::Receiver<NodeEvent>,
    me: libp2p::PeerId,
    channel: ChannelName,
    tx: mpsc::Sender<Delivery>,
    shutdown: CancellationToken,
) {
    loop {
        let ev = tokio::select! {
            () = shutdown.cancelled() => return,
            ev = events.recv() => ev,
        };
        let delivery = match ev {
            Ok(NodeEvent::Delivered(env)) if env.channel == channel => {
                let Some(id) = coordinator::message_index(&env.body) else {
                    continue;
                };
                if env.author_peer_id() == me {
                    continue; // the publisher's own copy is not a delivery
                }
                Delivery::Message {
                    id,
                    node,
                    at: Instant::now(),
                }
            }
            Ok(_) => continue,
            Err(broadcast::error::RecvError::Lagged(missed)) => Delivery::Lagged(missed),
            Err(broadcast::error::RecvError::Closed) => return,
        };
        if tx.send(delivery).await.is_err() {
            return; // the coordinator finished
        }
    }
}

/// Polls `short` every [`POLL_INTERVAL`] until it reports nothing missing.
async fn wait_until<F, Fut>(
    timeout: Duration,
    what: &'static str,
    mut short: F,
) -> Result<(), BenchError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Vec<String>, BenchError>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        let missing = short().await?;
        if missing.is_empty() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(BenchError::NotReady {
                what,
                timeout,
                short: missing.into_iter().take(5).collect::<Vec<_>>().join("; "),
            });
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

/// Nodes with fewer connected peers than graph neighbours.
async fn connections_short(
    handles: &[NodeHandle],
    graph: &Graph,
) -> Result<Vec<String>, BenchError> {
    let mut short = Vec::new();
    for (node, h) in handles.iter().enumerate() {
        let peers = h.peers().await.map_err(|_| BenchError::NodeStopped)?.len();
        let degree = graph.neighbours(node).len();
        if peers < degree {
            short.push(format!("node {node}: {peers} of {degree} peers"));
        }
    }
    Ok(short)
}

/// Nodes that do not yet see every neighbour subscribed, or whose mesh is below
/// `min(Dlo, degree)` (the reference peers' criterion).
async fn mesh_short(
    handles: &[NodeHandle],
    graph: &Graph,
    channel: &ChannelName,
    dlo: usize,
) -> Result<Vec<String>, BenchError> {
    let mut short = Vec::new();
    for (node, h) in handles.iter().enumerate() {
        let mesh = h
            .mesh(channel.clone())
            .await
            .map_err(|_| BenchError::NodeStopped)?;
        let degree = graph.neighbours(node).len();
        if mesh.subscribers < degree || mesh.mesh_peers < dlo.min(degree) {
            short.push(format!(
                "node {node}: degree {degree}, subscribers {}, mesh {}",
                mesh.subscribers, mesh.mesh_peers
            ));
        }
    }
    Ok(short)
}

/// What was on, for the report.
fn stack() -> String {
    let gossip = crate::gossip::config(crate::gossip::envelope::DEFAULT_MAX_BODY_BYTES).map_or_else(
        |e| format!("gossipsub config error: {e}"),
        |c| {
            format!(
                "gossipsub D={} Dlo={} Dhi={} heartbeat {} ms, anonymous mode, message id = envelope id",
                c.mesh_n(),
                c.mesh_n_low(),
                c.mesh_n_high(),
                c.heartbeat_interval().as_millis()
            )
        },
    );
    format!(
        "tcp(nodelay)+noise+yamux+identify+{gossip}; ed25519-signed envelopes validated at every hop \
         (decode, signature, channel, TTL, hops); sled store with at-rest AES-GCM, flushed per publish; \
         receipts and catch-up sync on; drill team (bodies not team-encrypted); mDNS off; \
         wire bytes = bytes written to TCP sockets below Noise"
    )
}
