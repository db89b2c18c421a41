//! The audit log's anchor (`proto/audit.md` §5): the `seq` and `hash` of the newest
//! audit record, kept in the store's `audit` tree sealed with the data key, so that
//! a log cut short or rewritten while the node was stopped is found at the next
//! start; without the passphrase nobody can forge the anchor to match.

use super::{Store, StoreError};
use crate::crypto::at_rest::{open, seal};

/// The tree and its one key.
const TREE: &str = "audit";
const KEY: &[u8] = b"head";
/// Associated data of the sealed value: it opens only as an audit anchor.
const AAD: &[u8] = b"fieldmesh/audit-anchor/v1";
/// Plaintext: `seq` (u64 big endian) ‖ the record's hash as 64 hex characters.
const LEN: usize = 8 + 64;

impl Store {
    /// Records the newest durable audit record. Fails with `Locked` while locked.
    pub fn set_audit_anchor(&self, seq: u64, hash: &str) -> Result<(), StoreError> {
        let key = self.data_key()?;
        let mut plain = Vec::with_capacity(LEN);
        plain.extend_from_slice(&seq.to_be_bytes());
        plain.extend_from_slice(hash.as_bytes());
        self.db
            .open_tree(TREE)?
            .insert(KEY, seal(&key, AAD, &plain))?;
        Ok(())
    }

    /// The anchor, if one was ever set: `(seq, hash)`. `Corrupt` if it does not open
    /// (altered, or another data key).
    pub fn audit_anchor(&self) -> Result<Option<(u64, String)>, StoreError> {
        let Some(sealed) = self.db.open_tree(TREE)?.get(KEY)? else {
            return Ok(None);
        };
        let corrupt = || StoreError::Corrupt {
            key: "audit anchor".into(),
        };
        let plain = open(&self.data_key()?, AAD, &sealed).map_err(|_| corrupt())?;
        if plain.len() != LEN {
            return Err(corrupt());
        }
        let (seq, hash) = plain.split_at(8);
        let seq = u64::from_be_bytes(seq.try_into().map_err(|_| corrupt())?);
        let hash = String::from_utf8(hash.to_vec()).map_err(|_| corrupt())?;
        Ok(Some((seq, hash)))
    }
}
