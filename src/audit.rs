//! The audit trail (`proto/audit.md`): an append-only, hash-chained JSON Lines file
//! per team store that says what happened to which message, when and involving
//! whom — received, sent, read, transcribed, deleted, expired, members added and
//! removed — and never what a message said.
//!
//! This file owns the record, its canonical bytes and its hash; [`verify`] checks
//! a whole file (pure, fuzzed: the file may have been tampered with); [`writer`] is
//! the node's append task behind a bounded channel, so the event loop never waits
//! on the disk.

pub mod verify;
pub mod writer;

pub use verify::{verify, Broken, Verified};
pub use writer::{AuditLog, Head, Via};

use crate::gossip::envelope::{ChannelName, Envelope, MessageId};
use crate::gossip::priority::Priority;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Domain separation for the record hash: a hash of anything else never equals a
/// record hash.
pub const DOMAIN: &[u8] = b"fieldmesh/audit/v1";
/// `prev` of the first record of a chain: 64 zeros.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";
/// Longest line a record can take (the longest real one is about 420 bytes): a
/// verifier refuses longer lines before parsing them.
pub const MAX_LINE_BYTES: usize = 4096;
/// File name of the drill team's log in the data dir (a team's is
/// `audit-<team id>.jsonl`, next to its `store-<team id>`).
pub const DRILL_FILE: &str = "audit.jsonl";

/// File name of a team's log in the data dir, from the team id in hex.
pub fn team_file(team_id: &str) -> String {
    format!("audit-{team_id}.jsonl")
}

/// What happened. Serialised in `snake_case` (`member_added`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Event {
    /// The node started and opened the log (`peer`: this node).
    Started,
    /// A message from a peer was stored here for the first time (`peer`: author).
    Received,
    /// This node's user sent a message (`peer`: this node).
    Sent,
    /// A message was shown by a read request (`via`: control socket or web API).
    Read,
    /// This node's user transcribed a message and published its tombstone.
    Transcribed,
    /// A tombstone deleted a message held here (`peer`: who transcribed it).
    Deleted,
    /// The sweeper removed `count` messages whose TTL had passed.
    Expired,
    /// The store evicted `count` messages to make room (`--max-store-bytes`).
    Evicted,
    /// A member was admitted to the team, as this node learned it (`peer`).
    MemberAdded,
    /// A member was removed from the team, as this node learned it (`peer`).
    MemberRemoved,
    /// `count` audit records were lost because the writer's queue was full.
    Dropped,
    /// At start the file did not hold the record the store's sealed anchor names
    /// (`count`: its seq): the log was cut short or rewritten while the node was
    /// stopped. [`verify`] refuses a log holding one.
    AnchorMismatch,
}

/// What a record says, before it is numbered and chained.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fact {
    /// What happened.
    pub event: Event,
    /// The message concerned.
    pub message: Option<MessageId>,
    /// Its channel (an operational name such as `triage`, never patient data).
    pub channel: Option<ChannelName>,
    /// The peer involved (author, transcriber, member, or this node).
    pub peer: Option<String>,
    /// The message's triage priority.
    pub priority: Option<Priority>,
    /// How many (expired, evicted, dropped).
    pub count: Option<u64>,
    /// Which interface a read came through.
    pub via: Option<Via>,
}

impl Fact {
    /// A fact with only its event set.
    pub fn new(event: Event) -> Fact {
        Fact {
            event,
            message: None,
            channel: None,
            peer: None,
            priority: None,
            count: None,
            via: None,
        }
    }

    /// A fact about `env`: its id, channel, priority and author. The body is not
    /// looked at.
    pub fn about(event: Event, env: &Envelope) -> Fact {
        Fact {
            message: Some(env.id),
            channel: Some(env.channel.clone()),
            peer: peer_of(&env.author),
            priority: Some(env.priority),
            ..Fact::new(event)
        }
    }

    /// A fact counting `n` messages.
    pub fn counting(event: Event, n: u64) -> Fact {
        Fact {
            count: Some(n),
            ..Fact::new(event)
        }
    }
}

/// The libp2p peer id (base58) of an ed25519 public key; `None` if it is no key.
pub fn peer_of(key: &[u8; 32]) -> Option<String> {
    libp2p::identity::ed25519::PublicKey::try_from_bytes(key)
        .ok()
        .map(|k| {
            libp2p::identity::PublicKey::from(k)
                .to_peer_id()
                .to_string()
        })
}

/// One line of the log. Field order here is the order on disk and in the canonical
/// bytes; absent values are `null`, never omitted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Record {
    /// Position in the chain, from 0.
    pub seq: u64,
    /// When the node wrote it (Unix ms, the node's clock).
    pub at_ms: u64,
    /// What happened.
    pub event: Event,
    /// Message id, 64 lower-case hex digits.
    pub message: Option<String>,
    /// Channel name.
    pub channel: Option<String>,
    /// Peer id (base58).
    pub peer: Option<String>,
    /// `p1` … `p4`.
    pub priority: Option<Priority>,
    /// A count (expired, evicted, dropped).
    pub count: Option<u64>,
    /// `control` or `web` (reads).
    pub via: Option<Via>,
    /// `hash` of the previous record; [`GENESIS`] for the first.
    pub prev: String,
    /// SHA-256 of [`DOMAIN`] ‖ the canonical bytes, 64 lower-case hex digits.
    pub hash: String,
}

/// The record without its hash, borrowed: what the hash covers.
#[derive(Serialize)]
struct Canonical<'a> {
    seq: u64,
    at_ms: u64,
    event: Event,
    message: &'a Option<String>,
    channel: &'a Option<String>,
    peer: &'a Option<String>,
    priority: Option<Priority>,
    count: Option<u64>,
    via: Option<Via>,
    prev: &'a str,
}

impl Record {
    /// Numbers and chains `fact` after `prev` (a hash, or [`GENESIS`]).
    pub fn chain(fact: &Fact, seq: u64, at_ms: u64, prev: &str) -> Record {
        let mut r = Record {
            seq,
            at_ms,
            event: fact.event,
            message: fact.message.map(|m| m.to_hex()),
            channel: fact.channel.as_ref().map(|c| c.as_str().to_owned()),
            peer: fact.peer.clone(),
            priority: fact.priority,
            count: fact.count,
            via: fact.via,
            prev: prev.to_owned(),
            hash: String::new(),
        };
        r.hash = r.computed_hash();
        r
    }

    /// The canonical bytes: compact JSON (no spaces) of every field but `hash`, in
    /// declaration order, ending with `prev`.
    pub fn canonical_bytes(&self) -> Vec<u8> {
        let c = Canonical {
            seq: self.seq,
            at_ms: self.at_ms,
            event: self.event,
            message: &self.message,
            channel: &self.channel,
            peer: &self.peer,
            priority: self.priority,
            count: self.count,
            via: self.via,
            prev: &self.prev,
        };
        serde_json::to_vec(&c).expect("invariant: a struct of strings and numbers serialises")
    }

    /// What `hash` must be: hex SHA-256 of [`DOMAIN`] ‖ [`Record::canonical_bytes`].
    pub fn computed_hash(&self) -> String {
        let mut h = Sha256::new();
        h.update(DOMAIN);
        h.update(self.canonical_bytes());
        h.finalize().iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The line written to the file (canonical order, with `hash`, no newline).
    pub fn to_line(&self) -> String {
        serde_json::to_string(self).expect("invariant: a struct of strings and numbers serialises")
    }
}

#[cfg(test)]
mod tests;
