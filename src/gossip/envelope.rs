//! The gossip envelope (`proto/envelope.md`): encode, decode, sign, verify and the
//! validation rules. Pure: every time-dependent check takes `now_ms`.

use super::priority::Priority;
use crate::wire;
use libp2p::identity::{ed25519, PeerId, PublicKey};
use serde::{Deserialize, Serialize};
use std::{fmt, str::FromStr, time::Duration};

/// Envelope format version; the first byte on the wire.
pub const VERSION: u8 = 1;
/// Domain-separation prefix of the signature input.
pub const SIGNING_DOMAIN: &[u8] = b"fieldmesh/envelope/sig/v1";
/// Domain-separation prefix of the message id hash.
pub const ID_DOMAIN: &[u8] = b"fieldmesh/envelope/id/v1";
/// Bytes after the signed part: 64-byte signature then the 1-byte hop counter.
const TRAILER_LEN: usize = 64 + 1;
/// Longest channel name in bytes.
pub const MAX_CHANNEL_LEN: usize = 64;
/// Default cap on the body (64 KiB), configurable per node.
pub const DEFAULT_MAX_BODY_BYTES: usize = 64 * 1024;
/// How far in the future `created_at` may lie (sender clock ahead of ours).
pub const CLOCK_SKEW_ALLOWANCE: Duration = Duration::from_secs(30);
/// Longest TTL any envelope may carry (7 days): bounds how long data lingers.
pub const MAX_TTL: Duration = Duration::from_secs(7 * 24 * 3600);
/// Hop limit given to new messages unless the sender asks otherwise.
pub const DEFAULT_HOP_LIMIT: u8 = 16;

/// 32-byte message id: BLAKE3 of the envelope bytes without the hop counter.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MessageId(pub [u8; 32]);

impl MessageId {
    /// Lower-case hex, 64 characters.
    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }
}

impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MessageId({})", &self.to_hex()[..12])
    }
}

impl FromStr for MessageId {
    type Err = ParseIdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.len() != 64 || !s.is_ascii() {
            return Err(ParseIdError);
        }
        let mut out = [0u8; 32];
        for (i, byte) in out.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).map_err(|_| ParseIdError)?;
        }
        Ok(MessageId(out))
    }
}

/// A message id that is not 64 hex characters.
#[derive(Debug, thiserror::Error)]
#[error("message id must be 64 hex characters")]
pub struct ParseIdError;

/// A validated channel name: 1..=64 bytes of `a-z 0-9 . _ -`.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ChannelName(String);

impl ChannelName {
    /// Checks and wraps a channel name.
    pub fn new(name: &str) -> Result<Self, BadChannel> {
        let ok = !name.is_empty()
            && name.len() <= MAX_CHANNEL_LEN
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b));
        if ok {
            Ok(ChannelName(name.to_owned()))
        } else {
            Err(BadChannel)
        }
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ChannelName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for ChannelName {
    type Error = BadChannel;
    fn try_from(s: String) -> Result<Self, BadChannel> {
        ChannelName::new(&s)
    }
}

impl From<ChannelName> for String {
    fn from(c: ChannelName) -> String {
        c.0
    }
}

/// A channel name outside the allowed alphabet or length.
#[derive(Debug, thiserror::Error, Clone, Copy, PartialEq, Eq)]
#[error("channel names are 1 to 64 characters of a-z, 0-9, '.', '_', '-'")]
pub struct BadChannel;

/// The signed part of an envelope, in wire order (see `proto/envelope.md`).
#[derive(Serialize, Deserialize)]
struct SignedPart {
    version: u8,
    author: [u8; 32],
    channel: String,
    created_at_ms: u64,
    ttl_ms: u64,
    hop_limit: u8,
    priority: u8,
    // Same bytes on the wire as a plain Vec<u8>; serde_bytes only skips the
    // element-by-element (de)serialisation.
    #[serde(with = "serde_bytes")]
    body: Vec<u8>,
}

/// A decoded envelope. Construct with [`Envelope::sign`] or [`Envelope::decode`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Envelope {
    /// Message id, derived from the bytes (never trusted from a peer).
    pub id: MessageId,
    /// Author's ed25519 public key.
    pub author: [u8; 32],
    /// Channel the message belongs to.
    pub channel: ChannelName,
    /// Author's clock at creation, Unix milliseconds.
    pub created_at_ms: u64,
    /// Time to live from `created_at_ms`, milliseconds.
    pub ttl_ms: u64,
    /// Relays allowed before the message stops travelling.
    pub hop_limit: u8,
    /// Relays so far (not signed; see `proto/envelope.md`).
    pub hops: u8,
    /// Triage priority.
    pub priority: Priority,
    /// Application payload (UTF-8 text for plain channel messages).
    pub body: Vec<u8>,
    /// ed25519 signature over the domain prefix and the signed part.
    pub signature: [u8; 64],
    /// The exact wire bytes, kept so that relays forward what the author signed.
    bytes: Vec<u8>,
    /// Peer id derived from `author` at decode time.
    author_id: PeerId,
}

/// What a new message says; [`Envelope::sign`] turns it into an envelope.
#[derive(Clone, Debug)]
pub struct Draft {
    /// Channel to post to.
    pub channel: ChannelName,
    /// Creation time, Unix milliseconds.
    pub created_at_ms: u64,
    /// Time to live.
    pub ttl: Duration,
    /// Hop limit.
    pub hop_limit: u8,
    /// Triage priority.
    pub priority: Priority,
    /// Payload.
    pub body: Vec<u8>,
}

/// Limits a receiver applies; all configurable per node.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Largest body accepted.
    pub max_body_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
        }
    }
}

/// Why an envelope was refused. Every variant is a typed, counted rejection reason.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum EnvelopeError {
    /// Fewer bytes than the smallest possible envelope.
    #[error("envelope truncated: {len} bytes")]
    Truncated {
        /// Bytes received.
        len: usize,
    },
    /// First byte is not a version this node understands.
    #[error("unknown envelope version {version}")]
    UnknownVersion {
        /// The version byte received.
        version: u8,
    },
    /// The signed part does not decode.
    #[error("malformed envelope")]
    Malformed,
    /// Whole envelope larger than the node accepts.
    #[error("envelope body of {len} bytes exceeds the {max} byte limit")]
    TooLarge {
        /// Body length.
        len: usize,
        /// The configured cap.
        max: usize,
    },
    /// Channel name outside the allowed alphabet or length.
    #[error("bad channel name")]
    BadChannel,
    /// Priority byte outside 1..=4.
    #[error("bad priority byte {byte}")]
    BadPriority {
        /// The byte received.
        byte: u8,
    },
    /// TTL of zero or above [`MAX_TTL`].
    #[error("ttl of {ttl_ms} ms is outside 1 ms ..= 7 days")]
    BadTtl {
        /// TTL received.
        ttl_ms: u64,
    },
    /// The author key is not a valid ed25519 point.
    #[error("bad author key")]
    BadAuthor,
    /// Signature does not verify.
    #[error("bad signature")]
    BadSignature,
    /// No hops left.
    #[error("hop limit exhausted ({hops} of {hop_limit})")]
    HopLimitExhausted {
        /// Hops so far.
        hops: u8,
        /// Hop limit.
        hop_limit: u8,
    },
    /// `created_at + ttl` is not after `now`.
    #[error("expired at {expires_at_ms} ms, now {now_ms} ms")]
    Expired {
        /// When it expired.
        expires_at_ms: u64,
        /// The receiver's clock.
        now_ms: u64,
    },
    /// Created further in the future than the clock-skew allowance.
    #[error("created {ahead_ms} ms in the future")]
    FromFuture {
        /// How far ahead of our clock.
        ahead_ms: u64,
    },
    /// Arrived on a gossip topic of another channel.
    #[error("envelope for another channel on this topic")]
    ChannelMismatch,
    /// The author is not admitted to the team (not on the roster, no valid join
    /// certificate, or removed).
    #[error("author is not a member of this team")]
    NotMember,
    /// A member's message breaks the team's mode: unmarked in an exercise team,
    /// or marked EXERCISE in a live team (`proto/bodies.md` §6).
    #[error("exercise and live messages never mix: the message's mark does not match the team")]
    ExerciseMismatch,
    /// TTL longer than this node's (the team's) maximum.
    #[error("ttl of {ttl_ms} ms is over the maximum of {max_ms} ms")]
    TtlOverMax {
        /// TTL received.
        ttl_ms: u64,
        /// The maximum.
        max_ms: u64,
    },
    /// A body on the `receipts` channel is not a receipt.
    #[error("malformed receipt")]
    BadReceipt,
    /// A body on the `tombstone` channel is not a tombstone.
    #[error("malformed tombstone")]
    BadTombstone,
    /// A record on the team channel did not verify (bad signature, wrong team, ...).
    #[error("invalid team record: {0}")]
    TeamRecord(&'static str),
}

impl EnvelopeError {
    /// Stable short code used in counters, logs and the control protocol.
    pub fn code(&self) -> &'static str {
        match self {
            EnvelopeError::Truncated { .. } => "truncated",
            EnvelopeError::UnknownVersion { .. } => "unknown_version",
            EnvelopeError::Malformed => "malformed",
            EnvelopeError::TooLarge { .. } => "too_large",
            EnvelopeError::BadChannel => "bad_channel",
            EnvelopeError::BadPriority { .. } => "bad_priority",
            EnvelopeError::BadTtl { .. } => "bad_ttl",
            EnvelopeError::BadAuthor => "bad_author",
            EnvelopeError::BadSignature => "bad_signature",
            EnvelopeError::HopLimitExhausted { .. } => "hop_limit",
            EnvelopeError::Expired { .. } => "expired",
            EnvelopeError::FromFuture { .. } => "from_future",
            EnvelopeError::ChannelMismatch => "channel_mismatch",
            EnvelopeError::NotMember => "not_member",
            EnvelopeError::ExerciseMismatch => "exercise_mismatch",
            EnvelopeError::TtlOverMax { .. } => "ttl_over_max",
            EnvelopeError::BadTombstone => "bad_tombstone",
            EnvelopeError::BadReceipt => "bad_receipt",
            EnvelopeError::TeamRecord(_) => "bad_team_record",
        }
    }
}

/// [`Envelope::relay_bytes`] without decoding: the bytes with the hop counter bumped,
/// or `None` if that would exhaust the hop limit or the bytes are not laid out as an
/// envelope. For bytes this node validated and stored.
pub fn relay_raw(bytes: &[u8]) -> Option<Vec<u8>> {
    // version, author, then the channel's u64 length prefix.
    let len_at = 1 + 32;
    let channel_len = u64::from_le_bytes(bytes.get(len_at..len_at + 8)?.try_into().ok()?);
    // channel bytes, created_at_ms and ttl_ms, then hop_limit.
    let hop_limit_at = usize::try_from(channel_len)
        .ok()?
        .checked_add(len_at + 8 + 16)?;
    let hop_limit = *bytes.get(hop_limit_at)?;
    let hops = *bytes.last()?;
    if bytes.len() < hop_limit_at + 1 + TRAILER_LEN {
        return None;
    }
    let bumped = hops.checked_add(1).filter(|h| *h < hop_limit)?;
    let mut out = bytes.to_vec();
    let last = out.len() - 1;
    out[last] = bumped;
    Some(out)
}

/// Computes the message id of raw envelope bytes without decoding them, as the
/// gossipsub message-id function needs. Any byte string has an id.
pub fn id_of_bytes(bytes: &[u8]) -> MessageId {
    let signed_and_sig = &bytes[..bytes.len().saturating_sub(1)];
    let mut h = blake3::Hasher::new();
    h.update(ID_DOMAIN);
    h.update(signed_and_sig);
    MessageId(*h.finalize().as_bytes())
}

impl Envelope {
    /// Signs a draft with the author's key.
    pub fn sign(draft: Draft, key: &ed25519::Keypair) -> Result<Envelope, EnvelopeError> {
        let ttl_ms = u64::try_from(draft.ttl.as_millis()).unwrap_or(u64::MAX);
        let signed = SignedPart {
            version: VERSION,
            author: key.public().to_bytes(),
            channel: draft.channel.as_str().to_owned(),
            created_at_ms: draft.created_at_ms,
            ttl_ms,
            hop_limit: draft.hop_limit,
            priority: draft.priority.to_wire(),
            body: draft.body,
        };
        let mut bytes = wire::encode(&signed).map_err(|_| EnvelopeError::Malformed)?;
        let signature = key.sign(&signing_input(&bytes));
        bytes.extend_from_slice(&signature);
        bytes.push(0);
        Envelope::decode(
            &bytes,
            &Limits {
                max_body_bytes: usize::MAX,
            },
        )
    }

    /// Decodes and checks everything that does not depend on time or topic:
    /// version, layout, body size, channel, priority, TTL range, signature, hops.
    pub fn decode(bytes: &[u8], limits: &Limits) -> Result<Envelope, EnvelopeError> {
        Envelope::decode_inner(bytes, limits, true)
    }

    /// Decodes bytes this node validated before storing them: every check of
    /// [`Envelope::decode`] except the signature, which dominates the cost (the
    /// store is local to this node; issue 5 adds authenticated encryption at rest).
    pub fn decode_stored(bytes: &[u8]) -> Result<Envelope, EnvelopeError> {
        Envelope::decode_inner(
            bytes,
            &Limits {
                max_body_bytes: usize::MAX,
            },
            false,
        )
    }

    fn decode_inner(
        bytes: &[u8],
        limits: &Limits,
        verify: bool,
    ) -> Result<Envelope, EnvelopeError> {
        let Some(&version) = bytes.first() else {
            return Err(EnvelopeError::Truncated { len: 0 });
        };
        if version != VERSION {
            return Err(EnvelopeError::UnknownVersion { version });
        }
        if bytes.len() < 1 + TRAILER_LEN {
            return Err(EnvelopeError::Truncated { len: bytes.len() });
        }
        let split = bytes.len() - TRAILER_LEN;
        // Cheap size check before decoding: the body cannot exceed the signed part.
        if split > limits.max_body_bytes.saturating_add(256) {
            return Err(EnvelopeError::TooLarge {
                len: split,
                max: limits.max_body_bytes,
            });
        }
        let signed: SignedPart =
            wire::decode(&bytes[..split]).map_err(|_| EnvelopeError::Malformed)?;
        if signed.body.len() > limits.max_body_bytes {
            return Err(EnvelopeError::TooLarge {
                len: signed.body.len(),
                max: limits.max_body_bytes,
            });
        }
        let channel = ChannelName::new(&signed.channel).map_err(|_| EnvelopeError::BadChannel)?;
        let priority = Priority::from_wire(signed.priority).ok_or(EnvelopeError::BadPriority {
            byte: signed.priority,
        })?;
        if signed.ttl_ms == 0 || u128::from(signed.ttl_ms) > MAX_TTL.as_millis() {
            return Err(EnvelopeError::BadTtl {
                ttl_ms: signed.ttl_ms,
            });
        }
        let mut signature = [0u8; 64];
        signature.copy_from_slice(&bytes[split..split + 64]);
        let hops = bytes[bytes.len() - 1];
        if hops >= signed.hop_limit {
            return Err(EnvelopeError::HopLimitExhausted {
                hops,
                hop_limit: signed.hop_limit,
            });
        }
        let author = ed25519::PublicKey::try_from_bytes(&signed.author)
            .map_err(|_| EnvelopeError::BadAuthor)?;
        if verify && !author.verify(&signing_input(&bytes[..split]), &signature) {
            return Err(EnvelopeError::BadSignature);
        }
        Ok(Envelope {
            id: id_of_bytes(bytes),
            author: signed.author,
            channel,
            created_at_ms: signed.created_at_ms,
            ttl_ms: signed.ttl_ms,
            hop_limit: signed.hop_limit,
            hops,
            priority,
            body: signed.body,
            signature,
            bytes: bytes.to_vec(),
            author_id: PublicKey::from(author).to_peer_id(),
        })
    }

    /// Checks the time-dependent rules: not expired, not too far in the future.
    pub fn check_time(&self, now_ms: u64) -> Result<(), EnvelopeError> {
        let expires_at_ms = self.expires_at_ms();
        if expires_at_ms <= now_ms {
            return Err(EnvelopeError::Expired {
                expires_at_ms,
                now_ms,
            });
        }
        let ahead_ms = self.created_at_ms.saturating_sub(now_ms);
        if u128::from(ahead_ms) > CLOCK_SKEW_ALLOWANCE.as_millis() {
            return Err(EnvelopeError::FromFuture { ahead_ms });
        }
        Ok(())
    }

    /// Unix milliseconds at which the message expires.
    pub fn expires_at_ms(&self) -> u64 {
        self.created_at_ms.saturating_add(self.ttl_ms)
    }

    /// Whether the message has expired at `now_ms`.
    pub fn is_expired(&self, now_ms: u64) -> bool {
        self.expires_at_ms() <= now_ms
    }

    /// The author's libp2p peer id.
    pub fn author_peer_id(&self) -> PeerId {
        self.author_id
    }

    /// The exact wire bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Decodes a batch from one peer, in order, exactly as [`Envelope::decode`] does
    /// each one, but decompressing each author's key once per batch (catch-up batches
    /// come from few authors, and decompression is a quarter of a signature check).
    /// Signatures are still checked one by one with the same cofactorless equation:
    /// ed25519-dalek's batch check is randomised and not cofactored, so it could
    /// accept a crafted signature that the single check refuses (found by the
    /// fuzzer: `fuzz/regressions/envelope/batch-accepts-torsion-signature`).
    pub fn decode_batch(
        batch: &[Vec<u8>],
        limits: &Limits,
    ) -> Vec<Result<Envelope, EnvelopeError>> {
        use ed25519_dalek::Verifier;
        let mut keys: std::collections::HashMap<[u8; 32], Option<ed25519_dalek::VerifyingKey>> =
            std::collections::HashMap::new();
        batch
            .iter()
            .map(|bytes| {
                let env = Envelope::decode_inner(bytes, limits, false)?;
                let key = *keys
                    .entry(env.author)
                    .or_insert_with(|| ed25519_dalek::VerifyingKey::from_bytes(&env.author).ok());
                let key = key.ok_or(EnvelopeError::BadAuthor)?;
                let signed = &env.bytes[..env.bytes.len() - TRAILER_LEN];
                let sig = ed25519_dalek::Signature::from_bytes(&env.signature);
                key.verify(&signing_input(signed), &sig)
                    .map_err(|_| EnvelopeError::BadSignature)?;
                Ok(env)
            })
            .collect()
    }

    /// The bytes to re-send from a store (one more relay): the hop counter is
    /// incremented; `None` if the receiver would reject it as hop-limit exhausted.
    pub fn relay_bytes(&self) -> Option<Vec<u8>> {
        let hops = self.hops.checked_add(1).filter(|h| *h < self.hop_limit)?;
        let mut bytes = self.bytes.clone();
        let last = bytes.len() - 1;
        bytes[last] = hops;
        Some(bytes)
    }
}

fn signing_input(signed: &[u8]) -> Vec<u8> {
    let mut input = Vec::with_capacity(SIGNING_DOMAIN.len() + signed.len());
    input.extend_from_slice(SIGNING_DOMAIN);
    input.extend_from_slice(signed);
    input
}

#[cfg(test)]
mod tests;
