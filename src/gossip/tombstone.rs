//! Tombstones (`proto/tombstone.md`): after a message is transcribed into the medical
//! record, a signed tombstone on the reserved `tombstone` channel deletes it from
//! every store it reaches. The tombstone lives only as long as the message would
//! have, so nothing outlives the original TTL.

use crate::gossip::envelope::MessageId;
use crate::wire;
use serde::{Deserialize, Serialize};

/// The reserved channel of tombstones.
pub const TOMBSTONE_CHANNEL: &str = "tombstone";
/// Version of [`Tombstone`].
pub const TOMBSTONE_VERSION: u8 = 1;

/// The body of an envelope on the `tombstone` channel. Its author (the envelope
/// signer) is the transcriber.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tombstone {
    /// [`TOMBSTONE_VERSION`].
    pub version: u8,
    /// The transcribed message.
    pub target: [u8; 32],
    /// When the target would have expired, Unix ms: the tombstone's own end.
    pub target_expires_at_ms: u64,
}

/// A tombstone body that does not decode.
#[derive(Debug, thiserror::Error)]
#[error("malformed tombstone")]
pub struct BadTombstone;

impl Tombstone {
    /// A tombstone for `target`, which expires at `target_expires_at_ms`.
    pub fn new(target: MessageId, target_expires_at_ms: u64) -> Tombstone {
        Tombstone {
            version: TOMBSTONE_VERSION,
            target: target.0,
            target_expires_at_ms,
        }
    }

    /// Wire bytes.
    pub fn encode(&self) -> Vec<u8> {
        wire::encode(self).unwrap_or_default()
    }

    /// Decodes a tombstone body.
    pub fn decode(bytes: &[u8]) -> Result<Tombstone, BadTombstone> {
        let t: Tombstone = wire::decode(bytes).map_err(|_| BadTombstone)?;
        if t.version != TOMBSTONE_VERSION {
            return Err(BadTombstone);
        }
        Ok(t)
    }

    /// The target's id.
    pub fn target_id(&self) -> MessageId {
        MessageId(self.target)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_garbage() {
        let t = Tombstone::new(MessageId([7; 32]), 1234);
        let bytes = t.encode();
        assert_eq!(bytes.len(), 1 + 32 + 8);
        assert_eq!(Tombstone::decode(&bytes).unwrap(), t);
        assert!(Tombstone::decode(&bytes[..10]).is_err());
        let mut v2 = bytes.clone();
        v2[0] = 2;
        assert!(Tombstone::decode(&v2).is_err());
    }
}
