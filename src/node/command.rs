//! Commands sent to the event loop (each carries its `reply`), the events it
//! broadcasts, and the views it answers with.

use crate::gossip::envelope::{ChannelName, Envelope, MessageId};
use libp2p::PeerId;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use tokio::sync::oneshot;

/// A request to the event loop.
#[derive(Debug)]
pub(super) enum Command {
    /// Gossip an envelope that is already signed and durably stored.
    Publish {
        /// The envelope.
        envelope: Box<Envelope>,
        /// Number of peers it was sent to.
        reply: oneshot::Sender<usize>,
    },
    /// Follow a channel (subscribe its topic).
    Subscribe {
        /// The channel.
        channel: ChannelName,
        /// Done.
        reply: oneshot::Sender<()>,
    },
    /// List connected peers.
    Peers {
        /// The list.
        reply: oneshot::Sender<Vec<PeerView>>,
    },
    /// Start catch-up with every connected peer now (after an unlock).
    SyncAll,
    /// Report node status.
    Status {
        /// The status.
        reply: oneshot::Sender<StatusView>,
    },
    /// Report the gossip mesh of a channel.
    Mesh {
        /// The channel.
        channel: ChannelName,
        /// Its subscribers and mesh peers.
        reply: oneshot::Sender<MeshView>,
    },
}

/// Something that happened in the node, broadcast to every subscriber.
#[derive(Debug, Clone)]
pub enum NodeEvent {
    /// A new message was stored (from this node or a peer).
    Delivered(Box<Envelope>),
    /// Messages expired and were deleted.
    Expired(Vec<MessageId>),
    /// A message was transcribed elsewhere (or here) and deleted by its tombstone.
    Deleted(MessageId),
    /// The team's admin revoked this device (`wipe`: delete the team's data and
    /// keys). Also readable at any time from [`super::NodeHandle::revoked`].
    Revoked {
        /// Whether the admin asked for a wipe.
        wipe: bool,
    },
    /// A peer connected.
    PeerConnected(PeerId),
    /// A peer's last connection closed.
    PeerDisconnected(PeerId),
    /// A catch-up sync session we started with a peer completed.
    SyncDone {
        /// The peer.
        peer: PeerId,
        /// New messages stored from it.
        stored: usize,
    },
    /// An envelope from a peer was rejected.
    Rejected {
        /// Who sent it.
        peer: PeerId,
        /// The typed reason code.
        code: &'static str,
    },
}

/// A connected peer, as `peers` shows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PeerView {
    /// Peer id.
    pub peer_id: String,
    /// Name the peer announced (identify agent), if known.
    pub agent: Option<String>,
    /// Remote addresses of its open connections.
    pub addrs: Vec<String>,
    /// Transports in use (`tcp`, `quic`, `ble`).
    pub transports: Vec<String>,
    /// Channels of our team the peer subscribes to.
    pub channels: Vec<String>,
}

/// The gossip mesh of one channel, as this node sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MeshView {
    /// Connected peers subscribed to the channel.
    pub subscribers: usize,
    /// Peers in this node's mesh for the channel (they get every message eagerly).
    pub mesh_peers: usize,
}

/// Node status, as `status` shows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StatusView {
    /// Our peer id.
    pub peer_id: String,
    /// Our name, if set.
    pub name: Option<String>,
    /// Our team tag.
    pub team: String,
    /// Addresses we listen on.
    pub listen: Vec<String>,
    /// Connected peers.
    pub peers: usize,
    /// Channels we follow.
    pub channels: Vec<String>,
    /// Messages in the store (expired-but-unswept included).
    pub stored: usize,
    /// Bytes of messages and indexes in the store.
    pub store_bytes: u64,
    /// The store's size limit in bytes (`up --max-store-bytes`).
    pub store_capacity: u64,
    /// Own messages waiting in the outbound queue for the links.
    pub outbound_queued: usize,
    /// Counters: delivered, duplicate, expired-on-arrival, swept.
    pub counters: BTreeMap<String, u64>,
    /// Rejected envelopes by reason code.
    pub rejected: BTreeMap<String, u64>,
    /// Seconds since start.
    pub uptime_secs: u64,
    /// Connected peers by transport (`tcp`, `quic`); a peer with both counts
    /// under each.
    #[serde(default)]
    pub peers_by_transport: BTreeMap<String, usize>,
    /// Catch-up sync sessions this node is running (one per peer at most).
    #[serde(default)]
    pub sync_sessions: usize,
    /// Messages those sessions know they still have to fetch or push (ranges
    /// not yet paged are not counted: their size is unknown until fetched).
    #[serde(default)]
    pub sync_backlog: usize,
    /// Delivery latency of P1 messages from peers (author's `created_at_ms` to
    /// stored here).
    #[serde(default)]
    pub p1_latency: super::latency::LatencyHistogram,
}
