//! Receipts (`proto/receipt.md`): every node tells its team which messages it holds,
//! aggregated — one signed receipt per node every few seconds listing the ids it
//! stored since its last one — so `read` can show how many and which members hold
//! each message without one gossip message per member per message.

use crate::gossip::envelope::MessageId;
use crate::wire;
use serde::{Deserialize, Serialize};

/// The reserved channel of receipts.
pub const RECEIPT_CHANNEL: &str = "receipts";
/// Version of [`Receipt`].
pub const RECEIPT_VERSION: u8 = 1;
/// Ids at most in one receipt (32 KiB of ids).
pub const MAX_RECEIPT_IDS: usize = 1024;

/// The body of an envelope on the `receipts` channel; its author is the holder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    /// [`RECEIPT_VERSION`].
    pub version: u8,
    /// Messages the author stored.
    pub ids: Vec<[u8; 32]>,
}

/// A receipt body that does not decode or is over the limit.
#[derive(Debug, thiserror::Error)]
#[error("malformed receipt")]
pub struct BadReceipt;

impl Receipt {
    /// A receipt for `ids` (at most [`MAX_RECEIPT_IDS`]; the caller splits).
    pub fn new(ids: &[MessageId]) -> Receipt {
        Receipt {
            version: RECEIPT_VERSION,
            ids: ids.iter().take(MAX_RECEIPT_IDS).map(|i| i.0).collect(),
        }
    }

    /// Wire bytes.
    pub fn encode(&self) -> Vec<u8> {
        wire::encode(self).unwrap_or_default()
    }

    /// Decodes a receipt body.
    pub fn decode(bytes: &[u8]) -> Result<Receipt, BadReceipt> {
        let r: Receipt = wire::decode(bytes).map_err(|_| BadReceipt)?;
        if r.version != RECEIPT_VERSION || r.ids.len() > MAX_RECEIPT_IDS {
            return Err(BadReceipt);
        }
        Ok(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_garbage() {
        let r = Receipt::new(&[MessageId([1; 32]), MessageId([2; 32])]);
        let b = r.encode();
        assert_eq!(b.len(), 1 + 8 + 64);
        assert_eq!(Receipt::decode(&b).unwrap(), r);
        assert!(Receipt::decode(&b[..5]).is_err());
        let many = Receipt {
            version: 1,
            ids: vec![[0; 32]; MAX_RECEIPT_IDS + 1],
        };
        assert!(Receipt::decode(&many.encode()).is_err());
    }
}
