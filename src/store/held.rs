//! Receipt rows (`proto/store.md`, tree `held`): for each channel, bucket and team
//! member, the count and fingerprint of the messages that member said it holds in
//! that bucket, from its newest receipt. Whether the member holds a given message
//! is decided when asked, by comparing with this node's own bucket
//! (`node::receipts`), so a row never needs updating when this node's set changes.

use super::{channel_key, parse_channel_entry, IndexEntry, Store, StoreError};
use crate::gossip::envelope::{ChannelName, MessageId};
use crate::gossip::receipt::{Held, BUCKET_MS};

/// Key: channel, a 0 byte, bucket (big endian), member's ed25519 key.
fn held_key(channel: &ChannelName, bucket: u64, member: &[u8; 32]) -> Vec<u8> {
    let mut k = held_prefix(channel, bucket);
    k.extend_from_slice(member);
    k
}

fn held_prefix(channel: &ChannelName, bucket: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(channel.as_str().len() + 1 + 8 + 32);
    k.extend_from_slice(channel.as_str().as_bytes());
    k.push(0);
    k.extend_from_slice(&bucket.to_be_bytes());
    k
}

/// Value: receipt created-at and expires-at (big endian ms), count (big endian),
/// fingerprint.
const VALUE_LEN: usize = 8 + 8 + 4 + 16;

fn be_u64(b: &[u8], at: usize) -> Option<u64> {
    b.get(at..at + 8)?.try_into().ok().map(u64::from_be_bytes)
}

/// One member's claim about one bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Claim {
    /// The member's ed25519 key.
    pub member: [u8; 32],
    /// Messages it holds in the bucket.
    pub count: u32,
    /// Their fingerprint.
    pub fingerprint: [u8; 16],
}

impl Store {
    /// Records a receipt of `member` created at `sent_at_ms` and living until
    /// `expires_at_ms`; for each bucket, a newer receipt already recorded wins.
    pub fn record_held(
        &self,
        member: &[u8; 32],
        sent_at_ms: u64,
        expires_at_ms: u64,
        held: &[Held],
    ) -> Result<(), StoreError> {
        // Row by row, not a sled batch: see `Store::put` on sled's global lock.
        for h in held {
            let key = held_key(&h.channel, h.bucket, member);
            let newer = self
                .held
                .get(&key)?
                .and_then(|v| be_u64(&v, 0))
                .is_some_and(|t| t > sent_at_ms);
            if newer {
                continue;
            }
            let mut v = [0u8; VALUE_LEN];
            v[..8].copy_from_slice(&sent_at_ms.to_be_bytes());
            v[8..16].copy_from_slice(&expires_at_ms.to_be_bytes());
            v[16..20].copy_from_slice(&h.count.to_be_bytes());
            v[20..].copy_from_slice(&h.fingerprint);
            self.held.insert(key, &v[..])?;
        }
        Ok(())
    }

    /// Unexpired claims about one bucket, one per member.
    pub fn claims(
        &self,
        channel: &ChannelName,
        bucket: u64,
        now_ms: u64,
    ) -> Result<Vec<Claim>, StoreError> {
        let prefix = held_prefix(channel, bucket);
        let mut out = Vec::new();
        for entry in self.held.scan_prefix(&prefix) {
            let (k, v) = entry?;
            let member = k.get(prefix.len()..).and_then(|m| m.try_into().ok());
            let live = be_u64(&v, 8).is_some_and(|exp| exp > now_ms);
            match (member, v.get(16..20), v.get(20..VALUE_LEN)) {
                (Some(member), Some(count), Some(fp)) if live => out.push(Claim {
                    member,
                    count: u32::from_be_bytes(count.try_into().unwrap_or_default()),
                    fingerprint: fp.try_into().unwrap_or_default(),
                }),
                (Some(_), Some(_), Some(_)) => {}
                _ => tracing::warn!("skipping unreadable receipt row"),
            }
        }
        Ok(out)
    }

    /// This node's unexpired items of one bucket, from the channel index.
    pub fn bucket_entries(
        &self,
        channel: &ChannelName,
        bucket: u64,
        now_ms: u64,
    ) -> Result<Vec<IndexEntry>, StoreError> {
        let from_ms = bucket.saturating_mul(BUCKET_MS);
        let lo = channel_key(channel, from_ms, &MessageId([0; 32]));
        let hi = channel_key(
            channel,
            from_ms.saturating_add(BUCKET_MS),
            &MessageId([0; 32]),
        );
        let skip = channel.as_str().len() + 1;
        let mut out = Vec::new();
        for entry in self.by_channel.range(lo..hi) {
            let (key, value) = entry?;
            match key
                .get(skip..)
                .and_then(|rest| parse_channel_entry(rest, &value))
            {
                Some((ts, id, exp, priority)) if exp > now_ms => out.push(IndexEntry {
                    ts,
                    id: MessageId(id),
                    priority,
                }),
                Some(_) => {}
                None => tracing::warn!("skipping unreadable channel index entry"),
            }
        }
        Ok(out)
    }

    /// Drops receipt rows whose receipt has expired.
    pub(super) fn sweep_held(&self, now_ms: u64) -> Result<(), StoreError> {
        for entry in self.held.iter() {
            let (k, v) = entry?;
            if be_u64(&v, 8).is_none_or(|exp| exp <= now_ms) {
                self.held.remove(k)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::at_rest::Key;

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path(), Key::random()).unwrap();
        (dir, s)
    }

    fn held(bucket: u64, count: u32) -> Held {
        Held {
            channel: ChannelName::new("triage").unwrap(),
            bucket,
            count,
            fingerprint: [count as u8; 16],
        }
    }

    #[test]
    fn newest_receipt_wins_per_bucket_and_rows_expire() {
        let (_d, s) = store();
        let ch = ChannelName::new("triage").unwrap();
        s.record_held(&[1; 32], 100, 10_000, &[held(5, 2)]).unwrap();
        s.record_held(&[1; 32], 300, 10_000, &[held(5, 3)]).unwrap();
        // An older receipt arriving late (catch-up) does not overwrite.
        s.record_held(&[1; 32], 200, 10_000, &[held(5, 1)]).unwrap();
        s.record_held(&[2; 32], 100, 5_000, &[held(5, 3), held(6, 1)])
            .unwrap();
        let claims = s.claims(&ch, 5, 1_000).unwrap();
        assert_eq!(claims.len(), 2);
        assert!(claims.contains(&Claim {
            member: [1; 32],
            count: 3,
            fingerprint: [3; 16]
        }));
        assert_eq!(s.claims(&ch, 6, 1_000).unwrap().len(), 1);
        // Expired rows are not claims, and the sweep removes them.
        assert_eq!(s.claims(&ch, 5, 5_000).unwrap().len(), 1);
        s.sweep_expired(5_000).unwrap();
        assert!(s.claims(&ch, 6, 0).unwrap().is_empty());
        assert_eq!(s.claims(&ch, 5, 0).unwrap().len(), 1);
    }
}
