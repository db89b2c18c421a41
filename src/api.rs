//! The local API: request and reply types of the control protocol (JSON Lines over a
//! local socket, specified in `proto/control.md`) and the views it prints.

pub mod control;
pub mod delivery;
pub mod export;
pub mod local_socket;
pub mod metrics;
pub mod notify;
pub mod web;

use crate::gossip::envelope::Envelope;
use crate::gossip::priority::Priority;
use crate::gossip::report::{split_exercise, Body, Redaction, Report};
use serde::{Deserialize, Serialize};
use std::time::{Duration, UNIX_EPOCH};

/// One request line: an `id` the reply echoes, and the operation.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Request {
    /// Correlates the reply (and follow events) with this request.
    pub id: u64,
    /// What to do.
    #[serde(flatten)]
    pub op: Op,
}

/// Operations of the control protocol.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Op {
    /// Publish a text message.
    Send {
        /// Channel name.
        channel: String,
        /// UTF-8 text.
        text: String,
        /// Time to live in ms; the node default when absent.
        ttl_ms: Option<u64>,
        /// Triage priority; P3 when absent.
        priority: Option<Priority>,
        /// What the sender believes it sends; refused when the team is the other
        /// kind (`exercise_mismatch`). Absent: the team's kind.
        #[serde(default)]
        mode: Option<Mode>,
    },
    /// Send an end-to-end encrypted direct message.
    Dm {
        /// Recipient peer id.
        peer: String,
        /// UTF-8 text.
        text: String,
        /// Time to live in ms; the node default when absent.
        ttl_ms: Option<u64>,
        /// Triage priority; P3 when absent.
        priority: Option<Priority>,
    },
    /// List unexpired messages of a channel, oldest first. On `dm`: only the
    /// direct messages addressed to this node, decrypted.
    Read {
        /// Channel name.
        channel: String,
        /// At most this many (default and cap: [`control::MAX_READ`]).
        limit: Option<usize>,
        /// Show patient-identifiable fields of reports (hidden by default).
        #[serde(default)]
        show_identifiable: bool,
    },
    /// Reply once, then stream `message` events of a channel until the client leaves.
    Follow {
        /// Channel name.
        channel: String,
        /// Show patient-identifiable fields of reports (hidden by default).
        #[serde(default)]
        show_identifiable: bool,
    },
    /// Publish a structured report (METHANE or casualty update, `proto/bodies.md`).
    Report {
        /// Channel name; `triage` when absent.
        channel: Option<String>,
        /// The report.
        report: Report,
        /// Time to live in ms; the node default when absent.
        ttl_ms: Option<u64>,
        /// Triage priority; by default P1 for METHANE, the triage category for a
        /// casualty (dead: P4).
        priority: Option<Priority>,
        /// As for `send`.
        #[serde(default)]
        mode: Option<Mode>,
    },
    /// Connected peers.
    Peers,
    /// An invite code for the node's running team (admin only), with its newest key.
    TeamInvite {
        /// Team name or id; must be the team the node runs.
        team: String,
        /// Expiry, Unix ms.
        expires_at_ms: u64,
    },
    /// Remove a member from the node's team and rotate the key (admin only).
    TeamRemove {
        /// The member's peer id.
        peer: String,
    },
    /// Order the node's team to stand down at `at_ms` (admin only): every device
    /// then deletes the team's messages and keys.
    TeamStandDown {
        /// Stand-down time, Unix ms.
        at_ms: u64,
    },
    /// Revoke a lost device: remove it, rotate the key and publish a signed
    /// revocation; with `wipe`, the device deletes the team's data if it gets it.
    TeamRevoke {
        /// The device's peer id.
        peer: String,
        /// Ask the device to delete the team's data and keys.
        #[serde(default)]
        wipe: bool,
    },
    /// Export a message for the medical record, then delete it everywhere.
    Transcribe {
        /// Message id (64 hex).
        message: String,
        /// `json` (default) or `fhir`.
        format: Option<export::ExportFormat>,
    },
    /// Team members not known to hold a message (from receipts).
    Roster {
        /// Message id (64 hex).
        message: String,
    },
    /// Forget the data key: nothing readable until `unlock`.
    Lock,
    /// Restore the data key from the vault.
    Unlock {
        /// The passphrase (empty for a drill-mode vault). Sent only over the 0600
        /// local socket; never logged.
        passphrase: String,
    },
    /// Node status.
    Status,
    /// The audit log's file and newest durable record (`proto/audit.md` §6).
    Audit,
}

/// Live or exercise: what a sender believes its message is (`proto/bodies.md` §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Real patients, real incident.
    Live,
    /// A drill: every listing, export and notification says EXERCISE first.
    Exercise,
}

/// A stored message as the API shows it. The body is shown as text only to the local
/// user over the 0600 socket; it is never logged.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct MessageView {
    /// Message id, 64 hex characters.
    pub id: String,
    /// Author peer id.
    pub author: String,
    /// Channel.
    pub channel: String,
    /// Sent time, RFC 3339 UTC with milliseconds.
    pub sent_at: String,
    /// Sent time, Unix ms.
    pub sent_at_ms: u64,
    /// Time to live, ms.
    pub ttl_ms: u64,
    /// Expiry, Unix ms.
    pub expires_at_ms: u64,
    /// Time left at the moment of the reply, ms.
    pub remaining_ms: u64,
    /// Triage priority.
    pub priority: Priority,
    /// Relays so far.
    pub hops: u8,
    /// Body as UTF-8 (invalid sequences replaced); for a report, its table with
    /// identifiable fields hidden unless asked for.
    pub text: String,
    /// Marked EXERCISE by its author (every message of an exercise team is).
    #[serde(default)]
    pub exercise: bool,
    /// The structured report, if the body is one (identifiable fields as `text`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report: Option<serde_json::Value>,
    /// Peers known from receipts to hold this message (this node included).
    #[serde(default)]
    pub held_by: Vec<String>,
}

impl MessageView {
    /// `P1`..`P4`, as shown to people.
    pub fn priority_label(&self) -> String {
        self.priority.to_string()
    }

    /// Builds the view of `env` at `now_ms`.
    pub fn new(env: &Envelope, now_ms: u64) -> MessageView {
        let sent = UNIX_EPOCH + Duration::from_millis(env.created_at_ms);
        MessageView {
            id: env.id.to_hex(),
            author: env.author_peer_id().to_string(),
            channel: env.channel.to_string(),
            sent_at: humantime::format_rfc3339_millis(sent).to_string(),
            sent_at_ms: env.created_at_ms,
            ttl_ms: env.ttl_ms,
            expires_at_ms: env.expires_at_ms(),
            remaining_ms: env.expires_at_ms().saturating_sub(now_ms),
            priority: env.priority,
            hops: env.hops,
            text: String::from_utf8_lossy(&env.body).into_owned(),
            exercise: false,
            report: None,
            held_by: Vec::new(),
        }
    }

    /// Sets `text` (and `report`) from the plaintext body this node could open.
    pub fn set_body(&mut self, plaintext: &[u8], redaction: Redaction) {
        let (exercise, plaintext) = split_exercise(plaintext);
        self.exercise = exercise;
        match Body::decode(plaintext) {
            Ok(Body::Text(t)) => self.text = t,
            Ok(Body::Report(r)) => {
                self.text = r.render(redaction);
                self.report = Some(r.to_json(redaction));
            }
            Err(e) => self.text = format!("[unreadable report: {e}]"),
        }
    }
}

/// An error reply: a stable `code` clients match on, and a human message.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    /// Stable code, listed in `proto/control.md`.
    pub code: String,
    /// One-line explanation.
    pub message: String,
}

impl ApiError {
    /// An error with `code` and `message`.
    pub fn new(code: &str, message: impl std::fmt::Display) -> ApiError {
        ApiError {
            code: code.to_owned(),
            message: message.to_string(),
        }
    }
}

/// One reply line. Exactly one of `result`, `error`, `event` is present.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Reply {
    /// The request id, or `null` if the request could not be parsed.
    pub id: Option<u64>,
    /// Success payload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<serde_json::Value>,
    /// Failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ApiError>,
    /// A streamed event of a `follow` request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<FollowEvent>,
}

/// Events streamed after a `follow` request.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum FollowEvent {
    /// A new message in the followed channel.
    Message(MessageView),
    /// Messages were transcribed and deleted (ids in hex).
    Deleted {
        /// Their ids.
        ids: Vec<String>,
    },
    /// Messages expired and were removed (ids in hex).
    Expired {
        /// Their ids.
        ids: Vec<String>,
    },
    /// The client fell behind and missed events: re-read the channel.
    Lagged {
        /// How many events were missed.
        missed: u64,
    },
}
