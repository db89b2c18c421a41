//! Node configuration: every tunable with its default and the reason for it;
//! [`file`] reads the same settings from the TOML config file.

pub mod file;

use crate::gossip::envelope::{ChannelName, DEFAULT_MAX_BODY_BYTES};
use crate::gossip::TeamTag;
use libp2p::Multiaddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// What `--version` prints after the name: the package version and the wire
/// protocol versions, which decide who can talk to whom (gossip topics
/// `fieldmesh/1/…`, catch-up sync [`crate::sync::PROTOCOL`]).
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (protocol fieldmesh/1, sync /fieldmesh/sync/1)"
);

/// Team a node joins when none is given: the drill team, so that a fresh install
/// talks to other fresh installs during an exercise.
pub const DEFAULT_TEAM: &str = "drill";
/// Channels every node follows from first start: a drill needs somewhere to talk,
/// every node relays and keeps direct messages (`dm`, ciphertext only) and the
/// tombstones that delete transcribed messages (`tombstone`) and the receipts
/// that say who holds what (`receipts`).
pub const DEFAULT_CHANNELS: [&str; 5] = ["general", "triage", "dm", "tombstone", "receipts"];
/// TTL of a sent message when the user gives none: one shift.
pub const DEFAULT_TTL: Duration = Duration::from_secs(12 * 3600);
/// Connected peers at most: a 50-laptop field hospital plus relays, with headroom.
pub const DEFAULT_MAX_PEERS: u32 = 128;
/// A sync request unanswered for this long fails and ends the session: long enough
/// for a 512 KiB batch over a slow radio link.
pub const DEFAULT_SYNC_TIMEOUT: Duration = Duration::from_secs(30);
/// Name of the control socket inside the data dir.
pub const CONTROL_SOCKET: &str = "control.sock";
/// Name of the sled directory inside the data dir.
pub const STORE_DIR: &str = "store";

/// Everything `Node::spawn` needs besides the identity and the store.
#[derive(Clone)]
pub struct NodeConfig {
    /// Data directory (key, store, control socket).
    pub data_dir: PathBuf,
    /// Addresses to listen on.
    pub listen: Vec<Multiaddr>,
    /// Static peers, dialled at start and redialled with backoff.
    pub peers: Vec<Multiaddr>,
    /// Whether to announce and browse `_fieldmesh._udp.local.`.
    pub mdns: bool,
    /// Human name shown to peers in the identify agent string; never patient data.
    pub name: Option<String>,
    /// Team tag used in topics and discovery.
    pub team: TeamTag,
    /// Channels followed in addition to those remembered in the store.
    pub channels: Vec<ChannelName>,
    /// Largest envelope body accepted or sent.
    pub max_body_bytes: usize,
    /// Connected peers at most.
    pub max_peers: u32,
    /// Gossip messages per second accepted from one peer; beyond it messages are
    /// dropped and a persistent flooder is banned.
    pub max_peer_rate: u32,
    /// How long a catch-up sync request may go unanswered.
    pub sync_timeout: Duration,
    /// Envelope bytes at most in one catch-up batch this node sends (after the
    /// small first one), between [`crate::sync::FIRST_BATCH_BYTES`] and
    /// [`crate::sync::MAX_BATCH_BYTES`].
    pub sync_batch_bytes: usize,
    /// TTL rules: default, per-channel defaults and the maximum.
    pub ttl: TtlPolicy,
    /// The team to run in (its tag then is the team id); `None` runs the drill team
    /// `team`, whose channels are not team-encrypted.
    pub team_entry: Option<crate::identity::TeamEntry>,
    /// Emulated poor link on every TCP connection (tests and drills only; `None` in
    /// the field).
    pub link: Option<crate::transport::LinkProfile>,
    /// Where the Bluetooth LE transport gets its L2CAP channels.
    pub bluetooth: Bluetooth,
    /// The audit log to append to (`proto/audit.md`); `None` keeps none (in-process
    /// nodes of the bench and the simulator).
    pub audit_log: Option<PathBuf>,
}

/// Where the Bluetooth LE transport gets its L2CAP channels (`proto/bluetooth.md`).
#[derive(Clone, Default)]
pub enum Bluetooth {
    /// No Bluetooth: in-process nodes of tests, the bench and the simulator.
    #[default]
    Off,
    /// A BlueZ adapter of this machine (`fieldmesh up`): the one named
    /// (`--bt-adapter hci1`), or BlueZ's default when `None`. Without it the node
    /// logs one line and carries on over IP.
    System(Option<crate::transport::ble::AdapterName>),
    /// An adapter on an in-memory L2CAP network (tests and simulations).
    Memory(crate::transport::ble::memory::MemoryAdapter),
}

impl NodeConfig {
    /// Defaults for `data_dir`: TCP and QUIC on all interfaces, ephemeral ports,
    /// mDNS on, the drill team and its default channels.
    pub fn new(data_dir: &Path) -> NodeConfig {
        NodeConfig {
            data_dir: data_dir.to_owned(),
            listen: default_listen(),
            peers: Vec::new(),
            mdns: true,
            name: None,
            team: TeamTag::new(DEFAULT_TEAM).expect("invariant: default team tag is valid"),
            channels: DEFAULT_CHANNELS
                .iter()
                .map(|c| ChannelName::new(c).expect("invariant: default channels are valid"))
                .collect(),
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            max_peers: DEFAULT_MAX_PEERS,
            max_peer_rate: crate::node::guard::DEFAULT_MAX_PEER_RATE,
            sync_timeout: DEFAULT_SYNC_TIMEOUT,
            sync_batch_bytes: crate::sync::MAX_BATCH_BYTES,
            ttl: TtlPolicy::default(),
            team_entry: None,
            link: None,
            bluetooth: Bluetooth::Off,
            audit_log: None,
        }
    }

    /// Path of the control socket.
    pub fn control_socket(&self) -> PathBuf {
        self.data_dir.join(CONTROL_SOCKET)
    }
}

/// `/ip4/0.0.0.0/tcp/0` and `/ip4/0.0.0.0/udp/0/quic-v1`.
pub fn default_listen() -> Vec<Multiaddr> {
    ["/ip4/0.0.0.0/tcp/0", "/ip4/0.0.0.0/udp/0/quic-v1"]
        .iter()
        .map(|a| a.parse().expect("invariant: literal multiaddr"))
        .collect()
}

/// The data dir used when `--data` is not given: `$XDG_DATA_HOME/fieldmesh`.
pub fn default_data_dir() -> Option<PathBuf> {
    directories::ProjectDirs::from("org", "fieldmesh", "fieldmesh").map(|d| d.data_dir().to_owned())
}

/// How long messages live: a default, per-channel defaults, and a maximum that a
/// team sets on every node (`--max-ttl`): sends over it are refused, and so are
/// envelopes from peers over it.
#[derive(Clone, Debug)]
pub struct TtlPolicy {
    /// TTL of a send that names none, unless its channel has its own.
    pub default: Duration,
    /// Per-channel defaults.
    pub per_channel: std::collections::HashMap<ChannelName, Duration>,
    /// Longest TTL accepted (at most the protocol's 7 days).
    pub max: Duration,
}

impl Default for TtlPolicy {
    fn default() -> Self {
        TtlPolicy {
            default: DEFAULT_TTL,
            per_channel: std::collections::HashMap::new(),
            max: crate::gossip::envelope::MAX_TTL,
        }
    }
}

impl TtlPolicy {
    /// The TTL for a send on `channel` that asked for `requested`.
    pub fn resolve(
        &self,
        channel: &ChannelName,
        requested: Option<Duration>,
    ) -> Result<Duration, TtlError> {
        // A default never exceeds the maximum; an explicit request over it is refused.
        let ttl = requested.unwrap_or_else(|| {
            (*self.per_channel.get(channel).unwrap_or(&self.default)).min(self.max)
        });
        if ttl.is_zero() {
            return Err(TtlError::Zero);
        }
        if ttl > self.max {
            return Err(TtlError::OverMax { ttl, max: self.max });
        }
        Ok(ttl)
    }
}

/// A TTL the policy refuses.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TtlError {
    /// Zero.
    #[error("ttl must be at least 1 ms")]
    Zero,
    /// Longer than the team maximum.
    #[error("ttl {} is over this team's maximum of {}", humantime::format_duration(*.ttl), humantime::format_duration(*.max))]
    OverMax {
        /// Asked for.
        ttl: Duration,
        /// The maximum.
        max: Duration,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_names_the_protocols_in_use() {
        let topic_version = crate::gossip::TOPIC_PREFIX.trim_end_matches('/');
        assert!(VERSION.contains(&format!("protocol {topic_version},")));
        assert!(VERSION.contains(&format!("sync {})", crate::sync::PROTOCOL)));
    }

    #[test]
    fn ttl_policy_uses_channel_defaults_and_refuses_over_max() {
        let mut p = TtlPolicy {
            max: Duration::from_secs(3600),
            ..TtlPolicy::default()
        };
        let triage = ChannelName::new("triage").unwrap();
        p.per_channel
            .insert(triage.clone(), Duration::from_secs(300));
        assert_eq!(p.resolve(&triage, None), Ok(Duration::from_secs(300)));
        let general = ChannelName::new("general").unwrap();
        assert_eq!(
            p.resolve(&general, None),
            Ok(Duration::from_secs(3600)),
            "the 12 h default is capped at a 1 h maximum"
        );
        assert_eq!(
            p.resolve(&general, Some(Duration::from_secs(60))),
            Ok(Duration::from_secs(60))
        );
        assert!(p
            .resolve(&general, Some(Duration::from_secs(7200)))
            .unwrap_err()
            .to_string()
            .contains("over this team's maximum of 1h"));
        assert_eq!(
            p.resolve(&general, Some(Duration::ZERO)),
            Err(TtlError::Zero)
        );
    }
}
