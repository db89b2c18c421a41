//! Receipts (`proto/receipt.md`): every node tells its team which messages it holds,
//! aggregated and without naming them one by one. Messages are grouped into
//! buckets (a channel and one second of `created_at_ms`); a receipt carries, for each
//! bucket that changed at its author since the last one, the count and fingerprint
//! of the messages the author holds there. A receiver compares that with its own
//! bucket: equal means the author holds every message it holds there. The bytes on
//! the wire per message therefore do not grow with the team size.

use crate::gossip::envelope::ChannelName;
use crate::wire;
use serde::{Deserialize, Serialize};

/// The reserved channel of receipts.
pub const RECEIPT_CHANNEL: &str = "receipts";
/// Version of [`Receipt`] (1 listed message ids; 2 lists bucket fingerprints).
pub const RECEIPT_VERSION: u8 = 2;
/// Buckets at most in one receipt (about 52 KiB with 16-byte channel names, under
/// the default 64 KiB body cap).
pub const MAX_RECEIPT_BUCKETS: usize = 1024;
/// Width of a bucket in milliseconds of `created_at_ms`: narrow enough that one
/// differing message leaves few others uncounted, wide enough that a busy channel
/// needs one entry for many messages.
pub const BUCKET_MS: u64 = 1000;

/// The bucket of a message created at `created_at_ms`.
pub fn bucket_of(created_at_ms: u64) -> u64 {
    created_at_ms / BUCKET_MS
}

/// What the author holds in one bucket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Held {
    /// The channel.
    pub channel: ChannelName,
    /// `created_at_ms / BUCKET_MS` of the messages.
    pub bucket: u64,
    /// How many unexpired messages of the bucket the author holds.
    pub count: u32,
    /// `sync::fingerprint` of those messages.
    pub fingerprint: [u8; 16],
}

/// The body of an envelope on the `receipts` channel; its author is the holder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    /// [`RECEIPT_VERSION`].
    pub version: u8,
    /// The buckets that changed at the author since its previous receipt.
    pub held: Vec<Held>,
}

/// A receipt body that does not decode or is over the limit.
#[derive(Debug, thiserror::Error)]
#[error("malformed receipt")]
pub struct BadReceipt;

impl Receipt {
    /// A receipt for `held` (at most [`MAX_RECEIPT_BUCKETS`]; the caller splits).
    pub fn new(held: &[Held]) -> Receipt {
        Receipt {
            version: RECEIPT_VERSION,
            held: held.iter().take(MAX_RECEIPT_BUCKETS).cloned().collect(),
        }
    }

    /// Messages the receipt says its author holds, over all buckets.
    pub fn message_count(&self) -> u64 {
        self.held.iter().map(|h| u64::from(h.count)).sum()
    }

    /// Whether `body` is a version-1 receipt (a list of ids, from a node before
    /// bucket receipts): stored and relayed, not applied, never a fault of the
    /// peer that relays or syncs it (`proto/receipt.md` K12).
    pub fn is_legacy(body: &[u8]) -> bool {
        body.first() == Some(&1)
    }

    /// Wire bytes.
    pub fn encode(&self) -> Vec<u8> {
        wire::encode(self).unwrap_or_default()
    }

    /// Decodes a receipt body.
    pub fn decode(bytes: &[u8]) -> Result<Receipt, BadReceipt> {
        let r: Receipt = wire::decode(bytes).map_err(|_| BadReceipt)?;
        if r.version != RECEIPT_VERSION || r.held.len() > MAX_RECEIPT_BUCKETS {
            return Err(BadReceipt);
        }
        Ok(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held(channel: &str, bucket: u64) -> Held {
        Held {
            channel: ChannelName::new(channel).unwrap(),
            bucket,
            count: 3,
            fingerprint: [7; 16],
        }
    }

    #[test]
    fn round_trips_and_refuses_garbage() {
        let r = Receipt::new(&[held("triage", 1), held("general", 2)]);
        let b = r.encode();
        // version, count, then per bucket: name (u64 length + bytes), u64, u32, 16 bytes.
        assert_eq!(b.len(), 1 + 8 + (8 + 6 + 8 + 4 + 16) + (8 + 7 + 8 + 4 + 16));
        assert_eq!(Receipt::decode(&b).unwrap(), r);
        assert_eq!(r.message_count(), 6);
        assert!(Receipt::decode(&b[..5]).is_err());
        let many = Receipt {
            version: RECEIPT_VERSION,
            held: vec![held("a", 0); MAX_RECEIPT_BUCKETS + 1],
        };
        assert!(Receipt::decode(&many.encode()).is_err());
    }

    #[test]
    fn refuses_version_1_and_bad_channel_names() {
        let mut r = Receipt::new(&[held("triage", 1)]);
        r.version = 1;
        assert!(Receipt::decode(&r.encode()).is_err());
        assert!(Receipt::is_legacy(&r.encode()));
        assert!(!Receipt::is_legacy(&Receipt::new(&[]).encode()));
        assert!(!Receipt::is_legacy(&[]));
        let mut b = Receipt::new(&[held("triage", 1)]).encode();
        b[9 + 8] = b'T'; // "Triage": upper case is not a channel name
        assert!(Receipt::decode(&b).is_err());
    }

    #[test]
    fn buckets_are_whole_seconds() {
        assert_eq!(bucket_of(0), 0);
        assert_eq!(bucket_of(999), 0);
        assert_eq!(bucket_of(1000), 1);
        assert_eq!(bucket_of(1_764_000_123_456), 1_764_000_123);
    }
}
