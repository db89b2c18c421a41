//! The event loop: the only owner of the swarm. One biased `select!` over shutdown,
//! commands, discovery, the swarm, the redial timer and the TTL sweeper. Handlers are
//! plain functions; nothing here awaits I/O except the final store flush.

use super::behaviour::{Behaviour, BehaviourEvent, IDENTIFY_PROTOCOL};
use super::bluetooth::{self, BleLink, SIGHTING_CHANNEL_CAPACITY};
use super::command::{Command, NodeEvent, PeerView, StatusView};
use super::guard::{Guard, Verdict, BAN, WARN_FAULTS};
use super::jitter::Jittered;
use super::sync_driver::{SyncScope, SyncSession};
use super::team_state::TEAM_CHANNEL;
use super::{SharedTeam, SpawnError};
use crate::audit::{AuditLog, Event, Fact};
use crate::config::NodeConfig;
use crate::discovery::{Announcement, Discovery, DiscoveryEvent, DISCOVERY_CHANNEL_CAPACITY};
use crate::gossip::envelope::{ChannelName, Envelope, EnvelopeError, Limits};
use crate::gossip::outbound::Outbound;
use crate::gossip::receipt::{Receipt, MAX_RECEIPT_BUCKETS, RECEIPT_CHANNEL};
use crate::gossip::tombstone::{Tombstone, TOMBSTONE_CHANNEL};
use crate::gossip::{self, TeamTag};
use crate::identity::Identity;
use crate::store::{now_ms, Inserted, Store, StoreError, Sweeper};
use crate::transport::ble::{self, BleAddr, Sighting};
use futures::StreamExt;
use libp2p::core::ConnectedPoint;
use libp2p::multiaddr::Protocol;
use libp2p::request_response::{self, ProtocolSupport};
use libp2p::swarm::dial_opts::{DialOpts, PeerCondition};
use libp2p::swarm::{ConnectionId, SwarmEvent};
use libp2p::{connection_limits, gossipsub, identify, Multiaddr, PeerId, StreamProtocol, Swarm};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};
use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

/// How long start-up waits for every listener to report an address.
const LISTEN_TIMEOUT: Duration = Duration::from_secs(10);
/// First redial delay for a static peer; doubles per failure up to the max.
const REDIAL_INITIAL: Duration = Duration::from_millis(500);
/// Longest redial delay: a responder walking back into range reconnects within this.
const REDIAL_MAX: Duration = Duration::from_secs(30);
/// How often static peers are checked for a due redial (and a due re-sync).
const REDIAL_TICK: Duration = Duration::from_millis(100);
/// How often the outbound queue is offered to the links while messages wait in it.
const OUTBOUND_TICK: Duration = Duration::from_millis(5);
/// How often every connected peer is reconciled: cheap when sets match (one round
/// trip per channel), and the backstop for anything gossip missed. The mean wait:
/// each is drawn from 7.5–12.5 s (`jitter`), the first from 0–10 s.
const SYNC_INTERVAL: Duration = Duration::from_secs(10);
/// How long receipts live (at most the team maximum).
const RECEIPT_TTL: Duration = Duration::from_secs(12 * 3600);
/// Other teams' topics relayed at most: enough for every agency on a site, and a
/// bound against a peer that subscribes to thousands of topics.
const MAX_FOREIGN_TOPICS: usize = 64;
/// A new BLE link is kept at least this long before it is closed for another link:
/// gossipsub sends its first control messages (the subscription list) on the first
/// connection, and closing it before they leave loses them for good. Two seconds is
/// ample for a few hundred bytes even over BLE.
const BLE_GRACE: Duration = Duration::from_secs(2);
/// Peers whose BLE sightings are counted at most (a busy site's radio range); beyond
/// it the counts start again, which only delays a fallback dial.
const MAX_BLE_SEEN: usize = 256;

/// What [`EventLoop::store_new`] did with a message.
pub(super) enum Stored {
    New,
    Duplicate,
    /// The store is locked: not stored.
    Locked,
    /// The store is full of more urgent unexpired messages: not stored.
    Full,
    /// The store failed (logged).
    Failed,
}

/// A `--peer` address kept connected.
struct StaticPeer {
    addr: Multiaddr,
    /// Learned on first connection.
    peer: Option<PeerId>,
    dialing: Option<ConnectionId>,
    next_attempt: Option<Instant>,
    backoff: Duration,
}

/// What we know about a connected peer.
#[derive(Default)]
struct PeerState {
    connections: HashMap<ConnectionId, Multiaddr>,
    agent: Option<String>,
}

pub(super) struct EventLoop {
    pub(super) swarm: Swarm<Behaviour>,
    pub(super) store: Store,
    /// The team we run in (membership, keys); `None` in the drill team.
    team_state: SharedTeam,
    /// Other teams' topics we subscribed to only to relay their ciphertext.
    foreign_topics: HashSet<gossipsub::TopicHash>,
    pub(super) team: TeamTag,
    /// Longest TTL accepted from peers (the team's maximum).
    max_ttl: Duration,
    /// Distinct connected peers at most (`--max-peers`).
    max_peers: usize,
    /// Envelope bytes at most per catch-up batch sent (`--sync-batch-bytes`).
    pub(super) sync_batch_bytes: usize,
    /// Signs receipts.
    identity: Identity,
    /// Buckets that changed here since our last receipt.
    pending_receipts: super::receipts::PendingBuckets,
    /// When the next receipt may go out (slower on big sites).
    receipt_pace: super::receipts::ReceiptPace,
    name: Option<String>,
    limits: Limits,
    cmd_rx: mpsc::Receiver<Command>,
    pub(super) events_tx: broadcast::Sender<NodeEvent>,
    discovery_rx: mpsc::Receiver<DiscoveryEvent>,
    discovery: Option<Discovery>,
    /// Fieldmesh advertisements seen over Bluetooth LE (empty without an adapter).
    ble_rx: mpsc::Receiver<Sighting>,
    /// BLE addresses being dialled, so a repeated sighting does not dial again.
    ble_dialing: HashMap<ConnectionId, ble::Mac>,
    /// Unconnected sightings of peers (by peer hint) that should dial us first.
    ble_seen: HashMap<[u8; 4], u8>,
    /// When each open BLE connection was established (for [`BLE_GRACE`]).
    ble_opened: HashMap<ConnectionId, Instant>,
    /// Peers whose BLE link closed while another link to them stays open (closed
    /// for an IP link, or a duplicate BLE link). gossipsub 0.50 queues a peer's
    /// messages for all its connections, but a later connection's handler opens its
    /// stream only when it is polled while messages wait, and nothing wakes it once
    /// the first connection is gone: gossip to that peer would wait for the next
    /// sync round. Our next publish is followed by an identify push to these peers,
    /// which polls that handler while the message waits.
    gossip_kick: HashSet<PeerId>,
    shutdown: CancellationToken,
    sweeper: Sweeper,
    statics: Vec<StaticPeer>,
    peers: HashMap<PeerId, PeerState>,
    pub(super) channels: HashSet<ChannelName>,
    listen: Vec<Multiaddr>,
    pub(super) counters: BTreeMap<&'static str, u64>,
    rejected: BTreeMap<&'static str, u64>,
    /// Delivery latency of P1 messages stored from peers.
    p1_latency: super::latency::LatencyHistogram,
    started: Instant,
    /// Initiator sync sessions, at most one per peer.
    pub(super) sessions: HashMap<PeerId, SyncSession>,
    /// When to re-sync every peer after new messages arrived by sync.
    pub(super) resync_at: Option<Instant>,
    /// Own messages waiting for the links, most urgent first.
    outbound: Outbound,
    /// When the outbound queue was last offered to the links.
    last_pump: Instant,
    /// Per-peer rate limits, fault budgets and bans.
    guard: Guard,
    /// Where what happens to messages and members is recorded (`proto/audit.md`).
    pub(super) audit: Option<AuditLog>,
}

impl EventLoop {
    /// Builds the swarm, binds listeners, subscribes channels and starts discovery.
    pub(super) async fn start(
        config: &NodeConfig,
        identity: &Identity,
        store: Store,
        team_state: SharedTeam,
        cmd_rx: mpsc::Receiver<Command>,
        events_tx: broadcast::Sender<NodeEvent>,
        shutdown: CancellationToken,
    ) -> Result<(EventLoop, Vec<Multiaddr>), SpawnError> {
        let agent = match &config.name {
            Some(n) => format!("fieldmesh/{} ({n})", env!("CARGO_PKG_VERSION")),
            None => format!("fieldmesh/{}", env!("CARGO_PKG_VERSION")),
        };
        let max_body = config.max_body_bytes;
        let max_peers = config.max_peers;
        let ble_link = BleLink::open(&config.bluetooth).await;
        let ble_backend = ble_link.as_ref().map(|l| l.backend.clone());
        let mut swarm = crate::transport::build_swarm(
            identity.libp2p_keypair(),
            config.link,
            ble_backend,
            |key| {
                let gossip_config = gossip::config(max_body).map_err(|e| e.to_string())?;
                let gossipsub = gossipsub::Behaviour::new(
                    gossipsub::MessageAuthenticity::Anonymous,
                    gossip_config,
                )
                .map_err(str::to_owned)?;
                let identify = identify::Behaviour::new(
                    identify::Config::new(IDENTIFY_PROTOCOL.into(), key.public())
                        .with_agent_version(agent),
                );
                let limits = connection_limits::Behaviour::new(
                    connection_limits::ConnectionLimits::default()
                        .with_max_established(Some(max_peers * 2))
                        .with_max_established_per_peer(Some(2))
                        .with_max_pending_incoming(Some(32))
                        .with_max_pending_outgoing(Some(64)),
                );
                let sync = request_response::Behaviour::new(
                    [(
                        StreamProtocol::new(crate::sync::PROTOCOL),
                        ProtocolSupport::Full,
                    )],
                    request_response::Config::default().with_request_timeout(config.sync_timeout),
                );
                Ok::<_, String>(Behaviour {
                    limits,
                    gossipsub,
                    identify,
                    sync,
                })
            },
        )?;

        let mut pending = HashSet::new();
        for addr in &config.listen {
            let id = swarm
                .listen_on(addr.clone())
                .map_err(|source| SpawnError::Listen {
                    addr: addr.clone(),
                    source,
                })?;
            pending.insert(id);
        }
        // BLE beside the configured addresses; a radio that refuses to listen (no
        // permission, PSMs used up) leaves the node on IP, as with no adapter.
        if ble_link.is_some() && !config.listen.iter().any(ble::is_ble) {
            match swarm.listen_on(bluetooth::listen_any()) {
                Ok(id) => {
                    pending.insert(id);
                }
                Err(e) => warn!(error = %e, "bluetooth: cannot listen, carrying on over IP"),
            }
        }
        let mut listen = Vec::new();
        let deadline = tokio::time::sleep(LISTEN_TIMEOUT);
        tokio::pin!(deadline);
        while !pending.is_empty() {
            tokio::select! {
                () = &mut deadline => return Err(SpawnError::ListenTimeout(LISTEN_TIMEOUT)),
                ev = swarm.select_next_some() => match ev {
                    SwarmEvent::NewListenAddr { listener_id, address } => {
                        pending.remove(&listener_id);
                        listen.push(address);
                    }
                    SwarmEvent::ListenerClosed { reason: Err(source), .. }
                    | SwarmEvent::ListenerError { error: source, .. } => {
                        return Err(SpawnError::Listen {
                            addr: Multiaddr::empty(),
                            source: libp2p::TransportError::Other(source),
                        });
                    }
                    other => debug!(?other, "event before ready"),
                },
            }
        }

        let (discovery_tx, discovery_rx) = mpsc::channel(DISCOVERY_CHANNEL_CAPACITY);
        let discovery = if config.mdns {
            let port_of = |want_quic: bool| {
                listen.iter().find_map(|a| {
                    let mut port = None;
                    let mut quic = false;
                    for p in a.iter() {
                        match p {
                            Protocol::Tcp(p) if !want_quic => port = Some(p),
                            Protocol::Udp(p) if want_quic => port = Some(p),
                            Protocol::QuicV1 => quic = true,
                            _ => {}
                        }
                    }
                    port.filter(|_| quic == want_quic)
                })
            };
            let me = Announcement {
                peer: identity.peer_id(),
                team: config.team.clone(),
                tcp_port: port_of(false),
                quic_port: port_of(true),
            };
            Some(Discovery::start(&me, discovery_tx)?)
        } else {
            None
        };

        let (ble_tx, ble_rx) = mpsc::channel(SIGHTING_CHANNEL_CAPACITY);
        if let Some(link) = &ble_link {
            link.start_discovery(
                &listen,
                &config.team,
                &identity.peer_id(),
                ble_tx,
                shutdown.clone(),
            );
        }

        let now = Instant::now();
        let statics = config
            .peers
            .iter()
            .map(|addr| StaticPeer {
                addr: addr.clone(),
                peer: None,
                dialing: None,
                next_attempt: Some(now),
                backoff: REDIAL_INITIAL,
            })
            .collect();

        let mut event_loop = EventLoop {
            swarm,
            store,
            team_state,
            foreign_topics: HashSet::new(),
            max_ttl: config.ttl.max,
            sync_batch_bytes: config.sync_batch_bytes,
            max_peers: max_peers as usize,
            identity: identity.clone(),
            pending_receipts: Default::default(),
            receipt_pace: Default::default(),
            team: config.team.clone(),
            name: config.name.clone(),
            limits: Limits {
                max_body_bytes: config.max_body_bytes,
            },
            cmd_rx,
            events_tx,
            discovery_rx,
            discovery,
            ble_rx,
            ble_dialing: HashMap::new(),
            ble_seen: HashMap::new(),
            ble_opened: HashMap::new(),
            gossip_kick: HashSet::new(),
            shutdown,
            sweeper: Sweeper::default(),
            statics,
            peers: HashMap::new(),
            channels: HashSet::new(),
            listen: listen.clone(),
            counters: BTreeMap::new(),
            rejected: BTreeMap::new(),
            p1_latency: super::latency::LatencyHistogram::default(),
            started: now,
            sessions: HashMap::new(),
            resync_at: None,
            outbound: Outbound::default(),
            last_pump: now,
            guard: Guard::new(config.max_peer_rate),
            audit: None,
        };
        let mut channels = event_loop.store.channels()?;
        channels.extend(config.channels.iter().cloned());
        for channel in channels {
            event_loop.subscribe(channel);
        }
        let next = event_loop.store.next_expiry_ms()?;
        event_loop.sweeper.reset(next, now_ms());
        Ok((event_loop, listen))
    }

    /// Runs until the shutdown token is cancelled, then flushes the store.
    pub(super) async fn run(mut self) {
        let mut redial = tokio::time::interval(REDIAL_TICK);
        redial.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // Jittered, not `interval`: nodes started together must not act together.
        let mut receipts = Jittered::new(super::receipts::RECEIPT_INTERVAL);
        let mut resync = Jittered::new(SYNC_INTERVAL);
        let mut pump = tokio::time::interval(OUTBOUND_TICK);
        pump.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                biased;
                () = self.shutdown.cancelled() => break,
                Some(cmd) = self.cmd_rx.recv() => self.on_command(cmd),
                Some(found) = self.discovery_rx.recv() => self.on_discovered(found),
                Some(seen) = self.ble_rx.recv() => self.on_ble_sighting(seen),
                ev = self.swarm.select_next_some() => self.on_swarm_event(ev),
                _ = redial.tick() => self.on_redial_tick(),
                () = receipts.tick() => self.on_receipt_tick(),
                () = resync.tick() => self.sync_all_peers(SyncScope::Settled),
                () = self.sweeper.tick() => self.on_sweep_tick(),
                _ = pump.tick(), if !self.outbound.is_empty() => self.pump_outbound(),
            }
        }
        // Ordered shutdown: stop announcing, refuse new commands (pending callers get
        // NodeStopped when their reply is dropped), then make the store durable.
        if let Some(d) = self.discovery.take() {
            d.shutdown();
        }
        self.cmd_rx.close();
        if let Err(e) = self.store.flush().await {
            warn!(error = %e, "store flush at shutdown failed");
        }
        info!("node stopped");
    }

    fn on_command(&mut self, cmd: Command) {
        // A send to a dropped `reply` is ignored everywhere below: the caller left.
        match cmd {
            Command::Publish { envelope, reply } => {
                self.report_evictions();
                self.apply_tombstone(&envelope);
                self.subscribe(envelope.channel.clone());
                self.sweeper.note_expiry(envelope.expires_at_ms(), now_ms());
                let sent_to = self.topic_peers(&envelope.channel);
                self.queue_out((*envelope).clone());
                self.on_holding(&envelope);
                if is_message_channel(&envelope.channel) {
                    self.audit(Fact::about(Event::Sent, &envelope));
                }
                debug!(id = %envelope.id, sent_to, "published");
                self.bump("delivered");
                self.bump("published");
                let _ = self.events_tx.send(NodeEvent::Delivered(envelope));
                let _ = reply.send(sent_to);
            }
            Command::Subscribe { channel, reply } => {
                self.subscribe(channel);
                let _ = reply.send(());
            }
            Command::SyncAll => self.sync_all_peers(SyncScope::Everything),
            Command::Peers { reply } => {
                let _ = reply.send(self.peer_views());
            }
            Command::Status { reply } => {
                let _ = reply.send(self.status_view());
            }
            Command::Mesh { channel, reply } => {
                let topic = gossip::topic(&self.team, &channel).hash();
                let g = &self.swarm.behaviour().gossipsub;
                let _ = reply.send(super::MeshView {
                    subscribers: g.all_peers().filter(|(_, t)| t.contains(&&topic)).count(),
                    mesh_peers: g.mesh_peers(&topic).count(),
                });
            }
        }
    }

    /// Connected peers subscribed to `channel`: where a message published on it goes.
    fn topic_peers(&self, channel: &ChannelName) -> usize {
        let topic = gossip::topic(&self.team, channel).hash();
        self.swarm
            .behaviour()
            .gossipsub
            .all_peers()
            .filter(|(_, t)| t.contains(&&topic))
            .count()
    }

    /// Queues a stored envelope of ours for gossip, most urgent first, and offers
    /// the queue to the links at once.
    fn queue_out(&mut self, envelope: Envelope) {
        if let Some(left) = self.outbound.push(envelope) {
            debug!(id = %left.id, "outbound queue full; left to catch-up sync");
            self.bump("outbound_overflow");
        }
        self.pump_outbound();
    }

    /// Hands gossipsub as many queued messages as the outbound window allows.
    fn pump_outbound(&mut self) {
        let now = Instant::now();
        let quic_open = self.peers.values().any(|p| {
            p.connections
                .values()
                .any(|a| a.iter().any(|x| matches!(x, Protocol::QuicV1)))
        });
        let mut quic_for = if quic_open {
            now.duration_since(self.last_pump)
        } else {
            Duration::ZERO
        };
        self.last_pump = now;
        let ble_wire = ble::bytes_written();
        let wire = crate::transport::wire_bytes_written() + ble_wire;
        while let Some(envelope) = self.outbound.next_ready(wire, quic_for, ble_wire) {
            quic_for = Duration::ZERO;
            if envelope.expires_at_ms() <= now_ms() {
                continue;
            }
            let recipients = self.gossip_out(&envelope);
            if recipients > 0 && !self.gossip_kick.is_empty() {
                let kick: Vec<PeerId> = self.gossip_kick.drain().collect();
                self.swarm.behaviour_mut().identify.push(kick);
            }
            let len = envelope.as_bytes().len() as u64;
            let ble_recipients = self.ble_only_topic_peers(&envelope.channel) as u64;
            self.outbound
                .sent(len * recipients as u64, len * ble_recipients);
        }
    }

    /// Peers subscribed to `channel` that are reachable only over BLE.
    fn ble_only_topic_peers(&self, channel: &ChannelName) -> usize {
        let topic = gossip::topic(&self.team, channel).hash();
        self.swarm
            .behaviour()
            .gossipsub
            .all_peers()
            .filter(|(p, t)| {
                t.contains(&&topic)
                    && self
                        .peers
                        .get(p)
                        .is_some_and(|s| bluetooth::ble_only(&s.connections))
            })
            .count()
    }

    /// Gossips a stored envelope of ours; returns how many peers it went to (0: kept
    /// in the store, delivered by catch-up later).
    fn gossip_out(&mut self, envelope: &Envelope) -> usize {
        let topic = gossip::topic(&self.team, &envelope.channel);
        let gossip = &mut self.swarm.behaviour_mut().gossipsub;
        match gossip.publish(topic, envelope.as_bytes().to_vec()) {
            Ok(_) => self.topic_peers(&envelope.channel),
            Err(gossipsub::PublishError::NoPeersSubscribedToTopic) => 0,
            Err(e) => {
                warn!(id = %envelope.id, error = %e, "gossip publish failed; message kept in store");
                0
            }
        }
    }

    /// Receipt bookkeeping for a message now held here: its bucket changed (and
    /// goes into our next receipt); a receipt records what its author holds.
    fn on_holding(&mut self, env: &Envelope) {
        let channel = env.channel.as_str();
        if channel == RECEIPT_CHANNEL {
            if let Ok(r) = Receipt::decode(&env.body) {
                if env.author != self.identity.signing_key().public().to_bytes() {
                    self.receipt_pace.heard(env.author, Instant::now());
                }
                let recorded = self.store.record_held(
                    &env.author,
                    env.created_at_ms,
                    env.expires_at_ms(),
                    &r.held,
                );
                if let Err(e) = recorded {
                    warn!(error = %e, "receipt not recorded");
                }
            }
            return;
        }
        if [
            TEAM_CHANNEL,
            TOMBSTONE_CHANNEL,
            crate::gossip::direct::DM_CHANNEL,
        ]
        .contains(&channel)
        {
            return;
        }
        self.pending_receipts.touch(env);
    }

    /// Publishes what this node holds in every bucket that changed since the last
    /// tick, [`MAX_RECEIPT_BUCKETS`] buckets per receipt.
    fn on_receipt_tick(&mut self) {
        if self.pending_receipts.is_empty()
            || self.store.is_locked()
            || !self.receipt_pace.take_turn(Instant::now())
        {
            return;
        }
        let held = self.pending_receipts.take(&self.store, now_ms());
        let Ok(channel) = ChannelName::new(RECEIPT_CHANNEL) else {
            return;
        };
        for part in held.chunks(MAX_RECEIPT_BUCKETS) {
            let signed = Envelope::sign(
                crate::gossip::envelope::Draft {
                    channel: channel.clone(),
                    created_at_ms: now_ms(),
                    ttl: self.max_ttl.min(RECEIPT_TTL),
                    hop_limit: crate::gossip::envelope::DEFAULT_HOP_LIMIT,
                    priority: crate::gossip::priority::Priority::P4,
                    body: Receipt::new(part).encode(),
                },
                self.identity.signing_key(),
            );
            match signed.map(|env| (self.store.insert(&env), env)) {
                Ok((Ok(Inserted::Full), _)) => self.bump("store_full"),
                Ok((Ok(_), env)) => {
                    self.sweeper.note_expiry(env.expires_at_ms(), now_ms());
                    self.queue_out(env);
                }
                Ok((Err(e), _)) => warn!(error = %e, "receipt not stored"),
                Err(e) => warn!(error = %e, "receipt not signed"),
            }
        }
    }

    fn subscribe(&mut self, channel: ChannelName) {
        if self.channels.contains(&channel) {
            return;
        }
        if let Err(e) = self.store.add_channel(&channel) {
            warn!(error = %e, "could not remember channel");
        }
        let topic = gossip::topic(&self.team, &channel);
        if let Err(e) = self.swarm.behaviour_mut().gossipsub.subscribe(&topic) {
            warn!(error = %e, "subscribe failed");
            return;
        }
        self.channels.insert(channel);
    }

    fn on_discovered(&mut self, found: DiscoveryEvent) {
        if self.swarm.is_connected(&found.peer) || self.guard.is_banned(&found.peer, Instant::now())
        {
            return;
        }
        debug!(peer = %found.peer, team = %found.team, "peer discovered");
        let opts = DialOpts::peer_id(found.peer)
            .addresses(found.addrs)
            .condition(PeerCondition::DisconnectedAndNotDialing)
            .build();
        if let Err(e) = self.swarm.dial(opts) {
            debug!(peer = %found.peer, error = %e, "not dialling discovered peer");
        }
    }

    /// A fieldmesh advertisement over BLE: dial it over L2CAP unless that peer is
    /// already connected (IP is preferred; a later IP link closes this one).
    fn on_ble_sighting(&mut self, seen: Sighting) {
        let me = *self.swarm.local_peer_id();
        let mac = seen.addr.mac;
        let static_peer = self
            .statics
            .iter()
            .any(|s| BleAddr::from_multiaddr(&s.addr).is_ok_and(|b| b.mac == mac));
        if !bluetooth::should_dial(&seen, &self.team, &me, self.peers.keys())
            || static_peer
            || self.ble_dialing.values().any(|m| *m == mac)
        {
            return;
        }
        if !bluetooth::dials_first(&me, &seen) {
            if self.ble_seen.len() >= MAX_BLE_SEEN {
                self.ble_seen.clear();
            }
            let n = self.ble_seen.entry(seen.advert.peer_hint).or_default();
            *n += 1;
            if *n < bluetooth::FALLBACK_SIGHTINGS {
                return;
            }
        }
        self.ble_seen.remove(&seen.advert.peer_hint);
        let opts = DialOpts::unknown_peer_id()
            .address(seen.addr.to_multiaddr())
            .build();
        let id = opts.connection_id();
        match self.swarm.dial(opts) {
            Ok(()) => {
                debug!(device = %seen.addr.mac, "dialling a peer seen over bluetooth");
                self.ble_dialing.insert(id, seen.addr.mac);
            }
            Err(e) => debug!(device = %seen.addr.mac, error = %e, "bluetooth dial refused"),
        }
    }

    /// Closes BLE connections to `peer` that duplicate another link to it, once they
    /// are [`BLE_GRACE`] old (younger ones are looked at again on the redial tick).
    fn prefer_ip(&mut self, peer: PeerId, now: Instant) {
        let Some(state) = self.peers.get(&peer) else {
            return;
        };
        let me = *self.swarm.local_peer_id();
        for id in bluetooth::redundant_ble(&me, &peer, &state.connections) {
            let due = self
                .ble_opened
                .get(&id)
                .is_none_or(|opened| *opened + BLE_GRACE <= now);
            if due && self.ble_opened.remove(&id).is_some() {
                debug!(%peer, "closing a redundant bluetooth connection");
                self.bump("ble_closed_redundant");
                self.swarm.close_connection(id);
            }
        }
    }

    /// Applies [`Self::prefer_ip`] to every peer with a BLE link beside another.
    fn prefer_ip_all(&mut self, now: Instant) {
        if self.ble_opened.is_empty() {
            return;
        }
        let doubled: Vec<PeerId> = self
            .peers
            .iter()
            .filter(|(_, st)| st.connections.len() > 1)
            .filter(|(_, st)| {
                st.connections
                    .keys()
                    .any(|c| self.ble_opened.contains_key(c))
            })
            .map(|(p, _)| *p)
            .collect();
        for peer in doubled {
            self.prefer_ip(peer, now);
        }
    }

    fn sync_all_peers(&mut self, scope: SyncScope) {
        // A locked node cannot store what it would fetch; it catches up after unlock.
        if self.store.is_locked() {
            return;
        }
        let peers: Vec<PeerId> = self.peers.keys().copied().collect();
        for peer in peers {
            self.start_sync(peer, scope);
        }
    }

    fn on_redial_tick(&mut self) {
        let now = Instant::now();
        self.prefer_ip_all(now);
        for peer in self.guard.lift_expired(now) {
            info!(%peer, "ban ended");
            self.swarm
                .behaviour_mut()
                .gossipsub
                .remove_blacklisted_peer(&peer);
        }
        for (peer, score) in self.guard.refresh(now) {
            self.swarm
                .behaviour_mut()
                .gossipsub
                .set_application_score(&peer, score);
        }
        if self.resync_at.is_some_and(|t| t <= now) {
            self.resync_at = None;
            // Over everything: what arrived by sync is not gossiped on (proto/sync.md
            // Y8), so this wave is the only way it travels further now.
            self.sync_all_peers(SyncScope::Everything);
        }
        for i in 0..self.statics.len() {
            let s = &self.statics[i];
            let due = s.dialing.is_none() && s.next_attempt.is_some_and(|t| t <= now);
            let connected = s.peer.is_some_and(|p| self.swarm.is_connected(&p));
            if !due || connected {
                continue;
            }
            let opts = match s.peer {
                Some(p) => DialOpts::peer_id(p)
                    .addresses(vec![s.addr.clone()])
                    .condition(PeerCondition::DisconnectedAndNotDialing)
                    .build(),
                None => DialOpts::unknown_peer_id().address(s.addr.clone()).build(),
            };
            let id = opts.connection_id();
            let s = &mut self.statics[i];
            s.next_attempt = None;
            match self.swarm.dial(opts) {
                Ok(()) => self.statics[i].dialing = Some(id),
                Err(e) => {
                    debug!(addr = %s.addr, error = %e, "static dial refused");
                    s.next_attempt = Some(now + s.backoff);
                    s.backoff = (s.backoff * 2).min(REDIAL_MAX);
                }
            }
        }
    }

    fn on_sweep_tick(&mut self) {
        let now = now_ms();
        match self.store.sweep_expired(now) {
            Ok(ids) if !ids.is_empty() => {
                debug!(count = ids.len(), "swept expired messages");
                *self.counters.entry("swept").or_default() += ids.len() as u64;
                self.audit(Fact::counting(Event::Expired, ids.len() as u64));
                let _ = self.events_tx.send(NodeEvent::Expired(ids));
            }
            Ok(_) => {}
            Err(e) => warn!(error = %e, "sweep failed"),
        }
        match self.store.next_expiry_ms() {
            Ok(next) => self.sweeper.reset(next, now),
            Err(e) => {
                warn!(error = %e, "cannot read next expiry");
                self.sweeper.reset(None, now);
            }
        }
    }

    fn on_swarm_event(&mut self, ev: SwarmEvent<BehaviourEvent>) {
        match ev {
            SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(gossipsub::Event::Message {
                propagation_source,
                message_id,
                message,
            })) => self.on_gossip_message(propagation_source, message_id, message),
            SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(gossipsub::Event::Subscribed {
                topic,
                ..
            })) => self.on_peer_subscribed(topic),
            SwarmEvent::Behaviour(BehaviourEvent::Identify(identify::Event::Received {
                peer_id,
                info,
                ..
            })) => {
                if let Some(p) = self.peers.get_mut(&peer_id) {
                    p.agent = Some(info.agent_version);
                }
            }
            SwarmEvent::Behaviour(BehaviourEvent::Sync(ev)) => self.on_sync_event(ev),
            SwarmEvent::Behaviour(_) => {}
            SwarmEvent::ConnectionEstablished {
                peer_id,
                connection_id,
                endpoint,
                num_established,
                ..
            } => {
                if self.guard.is_banned(&peer_id, Instant::now()) {
                    debug!(peer = %peer_id, "closing a connection from a banned peer");
                    self.swarm.close_connection(connection_id);
                    return;
                }
                // The connection limits count connections (two per peer: TCP and
                // QUIC); the peer limit is on distinct peers, checked here.
                if num_established.get() == 1
                    && self.swarm.connected_peers().count() > self.max_peers
                {
                    debug!(peer = %peer_id, "peer limit reached: closing");
                    self.bump("peer_limit");
                    self.swarm.close_connection(connection_id);
                    return;
                }
                let addr = match &endpoint {
                    ConnectedPoint::Dialer { address, .. } => address.clone(),
                    ConnectedPoint::Listener { send_back_addr, .. } => send_back_addr.clone(),
                };
                for s in &mut self.statics {
                    if s.dialing == Some(connection_id) {
                        s.dialing = None;
                        s.peer = Some(peer_id);
                        s.backoff = REDIAL_INITIAL;
                    }
                }
                self.ble_dialing.remove(&connection_id);
                if ble::is_ble(&addr) {
                    info!(peer = %peer_id, "connected over bluetooth");
                    self.ble_opened.insert(connection_id, Instant::now());
                }
                self.peers
                    .entry(peer_id)
                    .or_default()
                    .connections
                    .insert(connection_id, addr);
                self.prefer_ip(peer_id, Instant::now());
                if num_established.get() == 1 {
                    info!(peer = %peer_id, "peer connected");
                    let _ = self.events_tx.send(NodeEvent::PeerConnected(peer_id));
                    // One side starts catch-up at once (the lower peer id, so the two do
                    // not transfer the same backlog twice); the other follows on its timer.
                    if *self.swarm.local_peer_id() < peer_id && !self.store.is_locked() {
                        self.start_sync(peer_id, SyncScope::Everything);
                    }
                }
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                connection_id,
                num_established,
                ..
            } => {
                self.ble_opened.remove(&connection_id);
                let closed = self
                    .peers
                    .get_mut(&peer_id)
                    .and_then(|p| p.connections.remove(&connection_id));
                if num_established > 0 && closed.as_ref().is_some_and(ble::is_ble) {
                    // Another link took over: catch up on anything the switch held back.
                    self.gossip_kick.insert(peer_id);
                    if !self.store.is_locked() {
                        self.start_sync(peer_id, SyncScope::Everything);
                    }
                }
                if num_established == 0 && self.peers.remove(&peer_id).is_some() {
                    self.sessions.remove(&peer_id);
                    self.gossip_kick.remove(&peer_id);
                    info!(peer = %peer_id, "peer disconnected");
                    let _ = self.events_tx.send(NodeEvent::PeerDisconnected(peer_id));
                    let now = Instant::now();
                    self.guard.forget(&peer_id, now);
                    for s in &mut self.statics {
                        if s.peer == Some(peer_id) && s.dialing.is_none() {
                            s.next_attempt = Some(now + s.backoff);
                        }
                    }
                }
            }
            SwarmEvent::OutgoingConnectionError {
                connection_id,
                peer_id,
                error,
            } => {
                let now = Instant::now();
                self.ble_dialing.remove(&connection_id);
                for s in &mut self.statics {
                    if s.dialing == Some(connection_id) {
                        debug!(addr = %s.addr, error = %error, "static peer dial failed");
                        s.dialing = None;
                        s.next_attempt = Some(now + s.backoff);
                        s.backoff = (s.backoff * 2).min(REDIAL_MAX);
                    }
                }
                debug!(peer = ?peer_id, error = %error, "dial failed");
            }
            SwarmEvent::NewListenAddr { address, .. } => {
                info!(%address, "listening");
                if !self.listen.contains(&address) {
                    self.listen.push(address);
                }
            }
            SwarmEvent::ExpiredListenAddr { address, .. } => {
                self.listen.retain(|a| a != &address);
            }
            other => debug!(?other, "swarm event"),
        }
    }

    /// Validates a gossiped envelope, stores it and tells gossipsub whether to forward.
    fn on_gossip_message(
        &mut self,
        source: PeerId,
        msg_id: gossipsub::MessageId,
        message: gossipsub::Message,
    ) {
        let verdict = self.guard.on_message(source, Instant::now());
        if verdict != Verdict::Pass {
            self.bump("rate_limited");
            self.rescore(source);
            if verdict == Verdict::Ban {
                self.ban(source, "message rate");
            }
            // Dropped unvalidated; returns false if it already left the cache.
            let _ = self
                .swarm
                .behaviour_mut()
                .gossipsub
                .report_message_validation_result(
                    &msg_id,
                    &source,
                    gossipsub::MessageAcceptance::Ignore,
                );
            return;
        }
        let channel = gossip::channel_of_topic(&self.team, &message.topic);
        if channel.is_none() && self.foreign_topics.contains(&message.topic) {
            return self.relay_foreign(source, msg_id, &message.data);
        }
        let validated = self
            .validate_bytes(&message.data, channel.as_ref())
            .and_then(|env| self.admit(&env).map(|()| env));
        let acceptance = match validated {
            Ok(env) => match self.store_new(env, "delivered") {
                Stored::New => gossipsub::MessageAcceptance::Accept,
                // Locked: still relay the (validated) message for the mesh, unstored;
                // catch-up sync brings it back after unlock.
                Stored::Locked => {
                    self.bump("relayed_while_locked");
                    gossipsub::MessageAcceptance::Accept
                }
                // No room here: still relay it, so that nodes with room keep it.
                Stored::Full => gossipsub::MessageAcceptance::Accept,
                // Duplicate (already stored, e.g. via sync) or unstorable: don't forward.
                Stored::Duplicate | Stored::Failed => gossipsub::MessageAcceptance::Ignore,
            },
            Err(EnvelopeError::Expired { .. }) => {
                // Expired is not the sender's fault (clocks, slow links): no penalty.
                self.bump("expired_on_arrival");
                gossipsub::MessageAcceptance::Ignore
            }
            Err(e) => {
                self.count_rejection(source, &e);
                gossipsub::MessageAcceptance::Reject
            }
        };
        // Returns false if the message already left the cache; nothing to do then.
        let _ = self
            .swarm
            .behaviour_mut()
            .gossipsub
            .report_message_validation_result(&msg_id, &source, acceptance);
    }

    /// Team admission of a validated envelope: records on the `team` channel are
    /// applied (and must verify); other authors must be admitted; DMs pass (sealed
    /// to their recipient). Always `Ok` in the drill team.
    pub(super) fn admit(&self, env: &Envelope) -> Result<(), EnvelopeError> {
        let max_ms = u64::try_from(self.max_ttl.as_millis()).unwrap_or(u64::MAX);
        if env.ttl_ms > max_ms {
            return Err(EnvelopeError::TtlOverMax {
                ttl_ms: env.ttl_ms,
                max_ms,
            });
        }
        if env.channel.as_str() == TOMBSTONE_CHANNEL && Tombstone::decode(&env.body).is_err() {
            return Err(EnvelopeError::BadTombstone);
        }
        if env.channel.as_str() == RECEIPT_CHANNEL
            && Receipt::decode(&env.body).is_err()
            && !Receipt::is_legacy(&env.body)
        {
            return Err(EnvelopeError::BadReceipt);
        }
        let mut guard = self.team_state.write().unwrap_or_else(|p| p.into_inner());
        let Some(team) = guard.as_mut() else {
            return Ok(());
        };
        match env.channel.as_str() {
            TEAM_CHANNEL => {
                let before = team.members();
                team.apply(&env.author, &env.body)
                    .map_err(|e| EnvelopeError::TeamRecord(e.code()))?;
                super::team_state::membership_changes(&before, &team.members())
                    .into_iter()
                    .for_each(|f| self.audit(f));
                if let Some(wipe) = team.revoked() {
                    tracing::warn!(wipe, "this device was revoked from its team by the admin");
                    let _ = self.events_tx.send(NodeEvent::Revoked { wipe });
                }
                Ok(())
            }
            crate::gossip::direct::DM_CHANNEL => Ok(()),
            channel if team.admits(&env.author) => {
                if team.keeps_mode(channel, &env.author, &env.body) {
                    Ok(())
                } else {
                    Err(EnvelopeError::ExerciseMismatch)
                }
            }
            _ => Err(EnvelopeError::NotMember),
        }
    }

    /// Another team's message on a topic we joined only to relay: checked for
    /// shape, signature and time (we cannot read or judge membership), forwarded,
    /// not stored.
    fn relay_foreign(&mut self, source: PeerId, msg_id: gossipsub::MessageId, data: &[u8]) {
        let acceptance =
            match Envelope::decode(data, &self.limits).and_then(|e| e.check_time(now_ms())) {
                Ok(()) => {
                    self.bump("relayed_foreign");
                    gossipsub::MessageAcceptance::Accept
                }
                Err(EnvelopeError::Expired { .. }) => gossipsub::MessageAcceptance::Ignore,
                Err(e) => {
                    self.count_rejection(source, &e);
                    gossipsub::MessageAcceptance::Reject
                }
            };
        let _ = self
            .swarm
            .behaviour_mut()
            .gossipsub
            .report_message_validation_result(&msg_id, &source, acceptance);
    }

    /// A peer subscribed to a topic: if it is another team's fieldmesh topic, we
    /// subscribe too, so that their messages can cross us (cooperation between
    /// agencies); bounded by [`MAX_FOREIGN_TOPICS`].
    fn on_peer_subscribed(&mut self, topic: gossipsub::TopicHash) {
        let ours = gossip::channel_of_topic(&self.team, &topic).is_some();
        if ours
            || !topic.as_str().starts_with(gossip::TOPIC_PREFIX)
            || self.foreign_topics.contains(&topic)
            || self.foreign_topics.len() >= MAX_FOREIGN_TOPICS
        {
            return;
        }
        let relay = gossipsub::IdentTopic::new(topic.as_str());
        match self.swarm.behaviour_mut().gossipsub.subscribe(&relay) {
            Ok(_) => {
                debug!(topic = topic.as_str(), "relaying another team's topic");
                self.foreign_topics.insert(topic);
            }
            Err(e) => warn!(error = %e, "cannot subscribe to relay topic"),
        }
    }

    /// The one validation path for envelopes from peers (gossip and sync): decode,
    /// signature, limits, the channel it arrived for, and time.
    pub(super) fn validate_bytes(
        &self,
        bytes: &[u8],
        channel: Option<&ChannelName>,
    ) -> Result<Envelope, EnvelopeError> {
        validate(bytes, &self.limits, channel, now_ms())
    }

    /// Validates a batch from one peer, in order: one batched signature check per
    /// core (signature checks dominate catch-up), then channel and time.
    pub(super) fn validate_batch(
        &self,
        batch: &[Vec<u8>],
        channel: &ChannelName,
    ) -> Vec<Result<Envelope, EnvelopeError>> {
        let now = now_ms();
        let limits = self.limits;
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let decoded: Vec<Result<Envelope, EnvelopeError>> = if threads < 2 || batch.len() < 64 {
            Envelope::decode_batch(batch, &limits)
        } else {
            let chunk = batch.len().div_ceil(threads);
            std::thread::scope(|scope| {
                let workers: Vec<_> = batch
                    .chunks(chunk)
                    .map(|part| scope.spawn(move || Envelope::decode_batch(part, &limits)))
                    .collect();
                workers
                    .into_iter()
                    .flat_map(|w| w.join().unwrap_or_default())
                    .collect()
            })
        };
        decoded
            .into_iter()
            .map(|res| {
                let env = res?;
                if &env.channel != channel {
                    return Err(EnvelopeError::ChannelMismatch);
                }
                env.check_time(now)?;
                Ok(env)
            })
            .collect()
    }

    /// Stores a validated envelope; on a new message counts it under `counter`,
    /// arms the sweeper and broadcasts `Delivered`.
    pub(super) fn store_new(&mut self, env: Envelope, counter: &'static str) -> Stored {
        if self.store.is_tombstoned(&env.id).unwrap_or(false) {
            self.bump("tombstoned_refused");
            return Stored::Duplicate;
        }
        match self.store.insert(&env) {
            Ok(Inserted::New) => {
                self.on_stored(env, counter);
                Stored::New
            }
            Ok(Inserted::Duplicate) => {
                self.bump("duplicate");
                Stored::Duplicate
            }
            Ok(Inserted::Full) => {
                self.bump("store_full");
                Stored::Full
            }
            Err(StoreError::Locked) => Stored::Locked,
            Err(e) => {
                warn!(id = %env.id, error = %e, "store failed");
                Stored::Failed
            }
        }
    }

    /// Bookkeeping for a newly stored message: sweeper deadline, counter, event.
    pub(super) fn on_stored(&mut self, env: Envelope, counter: &'static str) {
        self.report_evictions();
        self.apply_tombstone(&env);
        self.on_holding(&env);
        if is_message_channel(&env.channel) {
            self.audit(Fact::about(Event::Received, &env));
        }
        self.sweeper.note_expiry(env.expires_at_ms(), now_ms());
        self.bump(counter);
        if env.priority == crate::gossip::priority::Priority::P1 {
            self.p1_latency
                .observe_ms(now_ms().saturating_sub(env.created_at_ms));
        }
        debug!(id = %env.id, via = counter, "stored");
        let _ = self.events_tx.send(NodeEvent::Delivered(Box::new(env)));
    }

    /// Tells clients about messages the store evicted to make room (as expired:
    /// they are gone from this node, not deleted for the team).
    pub(super) fn report_evictions(&mut self) {
        let gone = self.store.take_evicted();
        if !gone.is_empty() {
            *self.counters.entry("evicted").or_default() += gone.len() as u64;
            self.audit(Fact::counting(Event::Evicted, gone.len() as u64));
            let _ = self.events_tx.send(NodeEvent::Expired(gone));
        }
    }

    /// If `env` is a tombstone, deletes its target here and says so.
    pub(super) fn apply_tombstone(&mut self, env: &Envelope) {
        if env.channel.as_str() != TOMBSTONE_CHANNEL {
            return;
        }
        let Ok(t) = Tombstone::decode(&env.body) else {
            return; // refused at validation; stored bytes are ours
        };
        // Only ordinary messages are transcribed: team records, DMs, tombstones and
        // receipts are never deleted by a tombstone.
        let target = self.store.get(&t.target_id()).ok().flatten();
        if let Some(target) = &target {
            if [
                TEAM_CHANNEL,
                TOMBSTONE_CHANNEL,
                crate::gossip::direct::DM_CHANNEL,
                RECEIPT_CHANNEL,
            ]
            .contains(&target.channel.as_str())
            {
                warn!(target = %t.target_id(), "tombstone for a reserved channel ignored");
                return;
            }
        }
        match self
            .store
            .delete_for_tombstone(&t.target_id(), t.target_expires_at_ms)
        {
            Ok(held) => {
                debug!(target = %t.target_id(), held, "transcribed message deleted");
                if held {
                    // Who deleted it: the tombstone's author; what: the target.
                    let mut fact = Fact {
                        message: Some(t.target_id()),
                        peer: crate::audit::peer_of(&env.author),
                        ..Fact::new(Event::Deleted)
                    };
                    if let Some(target) = &target {
                        fact.channel = Some(target.channel.clone());
                        fact.priority = Some(target.priority);
                    }
                    self.audit(fact);
                }
                self.bump("deleted_by_tombstone");
                let _ = self.events_tx.send(NodeEvent::Deleted(t.target_id()));
            }
            Err(e) => warn!(error = %e, "tombstone could not be applied"),
        }
    }

    /// Logs and counts a typed rejection of a peer's envelope.
    /// Counts a rejected envelope and charges it to `peer`'s fault budget.
    pub(super) fn count_rejection(&mut self, peer: PeerId, e: &EnvelopeError) {
        let code = e.code();
        if self.guard.faults(&peer) < WARN_FAULTS {
            warn!(%peer, reason = code, error = %e, "rejected envelope");
        } else {
            debug!(%peer, reason = code, error = %e, "rejected envelope");
        }
        *self.rejected.entry(code).or_default() += 1;
        let _ = self.events_tx.send(NodeEvent::Rejected { peer, code });
        let verdict = self.guard.on_invalid(peer, Instant::now());
        self.rescore(peer);
        if verdict == Verdict::Ban {
            self.ban(peer, "invalid envelopes");
        }
    }

    /// Hands `peer`'s unforgiven faults to gossipsub as its application score.
    fn rescore(&mut self, peer: PeerId) {
        let score = self.guard.score(&peer);
        self.swarm
            .behaviour_mut()
            .gossipsub
            .set_application_score(&peer, score);
    }

    /// Disconnects `peer`, ignores its gossip and refuses it for [`BAN`].
    fn ban(&mut self, peer: PeerId, why: &'static str) {
        warn!(%peer, why, ban = ?BAN, "peer banned: disconnected and refused");
        self.guard.ban(peer, Instant::now());
        self.bump("banned");
        self.swarm.behaviour_mut().gossipsub.blacklist_peer(&peer);
        let _ = self.swarm.disconnect_peer_id(peer);
    }

    /// Queues an audit record; never waits (a full queue is counted as dropped).
    pub(super) fn audit(&self, fact: Fact) {
        if let Some(a) = &self.audit {
            a.record(fact);
        }
    }

    fn bump(&mut self, counter: &'static str) {
        *self.counters.entry(counter).or_default() += 1;
    }

    fn peer_views(&self) -> Vec<PeerView> {
        let gossip = &self.swarm.behaviour().gossipsub;
        let mut topics: HashMap<PeerId, Vec<String>> = HashMap::new();
        for (peer, hashes) in gossip.all_peers() {
            let chans = hashes
                .iter()
                .filter_map(|h| gossip::channel_of_topic(&self.team, h))
                .map(|c| c.to_string())
                .collect();
            topics.insert(*peer, chans);
        }
        let mut views: Vec<PeerView> = self
            .peers
            .iter()
            .map(|(id, st)| {
                let addrs: Vec<String> = st.connections.values().map(|a| a.to_string()).collect();
                let mut transports: Vec<String> = st
                    .connections
                    .values()
                    .map(|a| transport_of(a).to_owned())
                    .collect();
                transports.sort();
                transports.dedup();
                let mut channels = topics.remove(id).unwrap_or_default();
                channels.sort();
                PeerView {
                    peer_id: id.to_string(),
                    agent: st.agent.clone(),
                    addrs,
                    transports,
                    channels,
                }
            })
            .collect();
        views.sort_by(|a, b| a.peer_id.cmp(&b.peer_id));
        views
    }

    /// Connected peers by transport; a peer with a TCP and a QUIC connection
    /// counts under both.
    fn peers_by_transport(&self) -> BTreeMap<String, usize> {
        let mut by = BTreeMap::new();
        for st in self.peers.values() {
            let mut kinds: Vec<&str> = st.connections.values().map(transport_of).collect();
            kinds.sort_unstable();
            kinds.dedup();
            for k in kinds {
                *by.entry(k.to_owned()).or_default() += 1;
            }
        }
        by
    }

    fn status_view(&self) -> StatusView {
        let mut channels: Vec<String> = self.channels.iter().map(|c| c.to_string()).collect();
        channels.sort();
        StatusView {
            peer_id: self.swarm.local_peer_id().to_string(),
            name: self.name.clone(),
            team: self.team.as_str().to_owned(),
            listen: self.listen.iter().map(|a| a.to_string()).collect(),
            peers: self.peers.len(),
            channels,
            stored: self.store.len(),
            store_bytes: self.store.used_bytes(),
            store_capacity: self.store.capacity(),
            outbound_queued: self.outbound.len(),
            counters: self
                .counters
                .iter()
                .map(|(k, v)| (k.to_string(), *v))
                .collect(),
            rejected: self
                .rejected
                .iter()
                .map(|(k, v)| (k.to_string(), *v))
                .collect(),
            uptime_secs: self.started.elapsed().as_secs(),
            peers_by_transport: self.peers_by_transport(),
            sync_sessions: self.sessions.len(),
            sync_backlog: self.sync_backlog(),
            p1_latency: self.p1_latency.clone(),
        }
    }
}

/// Decodes and validates envelope bytes that arrived for `channel` (`None`: not a
/// topic of our team) at `now_ms`.
/// The transport a connection's remote address belongs to: `quic`, `ble` or `tcp`.
/// Whether `channel` carries messages people write and read (not team records,
/// tombstones or receipts): what `received`, `sent` and `deleted` records are for.
fn is_message_channel(channel: &ChannelName) -> bool {
    ![TEAM_CHANNEL, TOMBSTONE_CHANNEL, RECEIPT_CHANNEL].contains(&channel.as_str())
}

fn transport_of(addr: &Multiaddr) -> &'static str {
    if ble::is_ble(addr) {
        "ble"
    } else if addr.iter().any(|p| matches!(p, Protocol::QuicV1)) {
        "quic"
    } else {
        "tcp"
    }
}

fn validate(
    bytes: &[u8],
    limits: &Limits,
    channel: Option<&ChannelName>,
    now_ms: u64,
) -> Result<Envelope, EnvelopeError> {
    let env = Envelope::decode(bytes, limits)?;
    if channel != Some(&env.channel) {
        return Err(EnvelopeError::ChannelMismatch);
    }
    env.check_time(now_ms)?;
    Ok(env)
}
