//! The store's size limit and what gives way when it is reached: expired messages
//! first, then the least urgent oldest. A P1 is never evicted before it expires,
//! nor is a message evicted for a less urgent one; team records and tombstones are
//! never evicted (losing them would lose keys, membership or a deletion).

use super::{expiry_key, parse_channel_entry, Store, StoreError};
use crate::gossip::envelope::MessageId;
use crate::gossip::tombstone::TOMBSTONE_CHANNEL;
use crate::store::now_ms;
use std::sync::atomic::Ordering;

/// Default size limit: 1 GiB of messages and index entries, about a million
/// typical messages — far more than a shift at a field hospital produces.
pub const DEFAULT_MAX_STORE_BYTES: u64 = 1 << 30;
/// Channels never evicted: team records (keys, roster) and tombstones (deletions).
const PROTECTED: [&str; 2] = ["team", TOMBSTONE_CHANNEL];
/// Eviction frees down to this fraction of the limit (in 1/100), so that it runs
/// once per burst and not on every insert.
const LOW_WATER_PERCENT: u64 = 95;

/// Bytes a message occupies: its `messages` entry (id key, sealed value), its
/// `by_channel` entry (channel ‖ 0 ‖ time ‖ id → 9 bytes) and its `expiry` entry
/// (time ‖ id → channel).
pub(super) fn footprint(sealed_len: usize, channel_len: usize) -> u64 {
    (32 + sealed_len + (channel_len + 41 + 9) + (40 + channel_len)) as u64
}

/// A message that may be evicted, from the channel index alone.
struct Candidate {
    priority: u8,
    ts: u64,
    expires: u64,
    id: MessageId,
    by_channel_key: Vec<u8>,
    channel_len: usize,
}

impl Store {
    /// Sets the size limit (bytes of messages and index entries); a store over it
    /// evicts on the next insert.
    pub fn with_capacity(mut self, max_bytes: u64) -> Store {
        self.capacity = max_bytes;
        self
    }

    /// Bytes of messages and index entries now stored.
    pub fn used_bytes(&self) -> u64 {
        self.used.load(Ordering::Relaxed)
    }

    /// The size limit.
    pub fn capacity(&self) -> u64 {
        self.capacity
    }

    /// Ids removed to make room since the last call (the node reports them as
    /// expired to its clients).
    pub fn take_evicted(&self) -> Vec<MessageId> {
        std::mem::take(&mut *self.evicted.lock().unwrap_or_else(|p| p.into_inner()))
    }

    pub(super) fn fits(&self, size: u64) -> bool {
        self.used_bytes().saturating_add(size) <= self.capacity
    }

    pub(super) fn release(&self, size: u64) {
        // Saturating: a record whose index entries were already missing frees less.
        let _ = self
            .used
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |u| {
                Some(u.saturating_sub(size))
            });
    }

    /// Sums the bytes of every stored message and index entry (at open).
    pub(super) fn measure(&self) -> Result<u64, StoreError> {
        let mut total = 0u64;
        for tree in [&self.messages, &self.by_channel, &self.expiry] {
            for entry in tree.iter() {
                let (k, v) = entry?;
                total += (k.len() + v.len()) as u64;
            }
        }
        Ok(total)
    }

    /// Makes room for `size` bytes of a message of `priority` (wire byte) with id
    /// `id`; returns whether it now fits. Sweeps expired messages first, then
    /// evicts the least urgent oldest messages that are no more urgent than the
    /// new one, never a P1 and never a protected channel.
    pub(super) fn make_room(
        &self,
        size: u64,
        priority: u8,
        id: &MessageId,
    ) -> Result<bool, StoreError> {
        if self.fits(size) || self.messages.contains_key(id.0)? {
            return Ok(true);
        }
        let swept = self.sweep_expired(now_ms())?;
        self.evicted
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend(swept);
        if self.fits(size) {
            return Ok(true);
        }
        let target = (self.capacity / 100 * LOW_WATER_PERCENT).saturating_sub(size);
        let mut candidates = self.candidates(priority.max(2))?;
        // Least urgent first (highest priority byte), oldest first within it.
        candidates.sort_by(|a, b| b.priority.cmp(&a.priority).then(a.ts.cmp(&b.ts)));
        for c in candidates {
            if self.used_bytes() <= target {
                break;
            }
            self.evict(&c)?;
        }
        Ok(self.fits(size))
    }

    /// Unexpired messages of priority byte `min_priority` or less urgent, outside
    /// the protected channels.
    fn candidates(&self, min_priority: u8) -> Result<Vec<Candidate>, StoreError> {
        let now = now_ms();
        let mut out = Vec::new();
        for entry in self.by_channel.iter() {
            let (key, value) = entry?;
            let Some(sep) = key.iter().position(|&b| b == 0) else {
                continue;
            };
            let channel = &key[..sep];
            if PROTECTED.iter().any(|p| p.as_bytes() == channel) {
                continue;
            }
            let Some((ts, id, expires, priority)) = parse_channel_entry(&key[sep + 1..], &value)
            else {
                continue;
            };
            if priority >= min_priority && expires > now {
                out.push(Candidate {
                    priority,
                    ts,
                    expires,
                    id: MessageId(id),
                    by_channel_key: key.to_vec(),
                    channel_len: channel.len(),
                });
            }
        }
        Ok(out)
    }

    /// Removes one candidate with its index entries and receipts.
    fn evict(&self, c: &Candidate) -> Result<(), StoreError> {
        let sealed_len = self.messages.get(c.id.0)?.map_or(0, |v| v.len());
        let ek = expiry_key(c.expires, &c.id);
        self.remove_parts(&c.id, Some(&c.by_channel_key), &ek)?;
        self.release(footprint(sealed_len, c.channel_len));
        tracing::debug!(id = %c.id, priority = c.priority, "evicted to make room");
        self.evicted
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(c.id);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::at_rest::Key;
    use crate::gossip::envelope::{ChannelName, Draft, Envelope, DEFAULT_HOP_LIMIT};
    use crate::gossip::priority::Priority;
    use crate::store::Inserted;
    use libp2p::identity::ed25519;
    use std::time::Duration;

    fn env(channel: &str, priority: Priority, created_at_ms: u64, ttl_ms: u64) -> Envelope {
        Envelope::sign(
            Draft {
                channel: ChannelName::new(channel).unwrap(),
                created_at_ms,
                ttl: Duration::from_millis(ttl_ms),
                hop_limit: DEFAULT_HOP_LIMIT,
                priority,
                body: vec![b'x'; 200],
            },
            &ed25519::Keypair::generate(),
        )
        .unwrap()
    }

    /// Room for about ten 200-byte messages.
    fn small_store() -> (tempfile::TempDir, Store, u64) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), Key::from_bytes([9; 32])).unwrap();
        let one = {
            let e = env("triage", Priority::P3, 0, 1);
            footprint(e.as_bytes().len() + 28, "triage".len())
        };
        (dir, store.with_capacity(one * 10 + one / 2), one)
    }

    #[test]
    fn footprint_matches_what_is_measured() {
        let (_d, s, one) = small_store();
        let now = now_ms();
        s.insert(&env("triage", Priority::P3, now, 60_000)).unwrap();
        assert_eq!(s.used_bytes(), one);
        assert_eq!(s.measure().unwrap(), one);
    }

    #[test]
    fn full_store_evicts_expired_then_least_urgent_oldest_never_p1() {
        let (_d, s, _) = small_store();
        let now = now_ms();
        let expired = env("triage", Priority::P1, now - 10_000, 1);
        let p1s: Vec<_> = (0..5)
            .map(|i| env("triage", Priority::P1, now + i, 600_000))
            .collect();
        let old_p4 = env("general", Priority::P4, now - 5_000, 600_000);
        let p3s: Vec<_> = (0..3)
            .map(|i| env("general", Priority::P3, now - 4_000 + i, 600_000))
            .collect();
        for e in std::iter::once(&expired)
            .chain(&p1s)
            .chain([&old_p4])
            .chain(&p3s)
        {
            assert_eq!(s.insert(e).unwrap(), Inserted::New);
        }
        assert_eq!(s.len(), 10);
        // Full: a new P2 takes the expired one's place, then the P4's, then the oldest P3's.
        for i in 0..3 {
            let e = env("triage", Priority::P2, now + 100 + i, 600_000);
            assert_eq!(s.insert(&e).unwrap(), Inserted::New);
            assert!(s.used_bytes() <= s.capacity());
        }
        let gone = s.take_evicted();
        assert!(gone.contains(&expired.id) && gone.contains(&old_p4.id));
        assert!(gone.contains(&p3s[0].id), "oldest P3 before newer ones");
        for p1 in &p1s {
            assert!(s.get(&p1.id).unwrap().is_some(), "a P1 was evicted");
        }
        assert_eq!(s.measure().unwrap(), s.used_bytes());
    }

    #[test]
    fn nothing_is_evicted_for_a_less_urgent_message() {
        let (_d, s, _) = small_store();
        let now = now_ms();
        for i in 0..10 {
            let e = env("triage", Priority::P1, now + i, 600_000);
            assert_eq!(s.insert(&e).unwrap(), Inserted::New);
        }
        let p4 = env("general", Priority::P4, now, 600_000);
        assert_eq!(s.insert(&p4).unwrap(), Inserted::Full);
        let p1 = env("triage", Priority::P1, now + 50, 600_000);
        assert_eq!(
            s.insert(&p1).unwrap(),
            Inserted::Full,
            "P1s are never evicted"
        );
        assert_eq!(s.len(), 10);
        assert!(s.take_evicted().is_empty());
    }

    #[test]
    fn a_batch_that_does_not_fit_is_admitted_one_by_one() {
        let (_d, s, _) = small_store();
        let now = now_ms();
        for i in 0..10 {
            s.insert(&env("triage", Priority::P2, now + i, 600_000))
                .unwrap();
        }
        let batch = [
            env("triage", Priority::P4, now, 600_000),
            env("triage", Priority::P1, now + 20, 600_000),
        ];
        let res = s.insert_batch(&batch).unwrap();
        assert_eq!(res, [Inserted::Full, Inserted::New]);
        // The P1 evicted P2s down to the low-water mark: one or two of them.
        assert!((1..=2).contains(&s.take_evicted().len()));
    }

    #[test]
    fn protected_channels_are_never_evicted() {
        let (_d, s, _) = small_store();
        let now = now_ms();
        let tomb = env(TOMBSTONE_CHANNEL, Priority::P4, now - 1_000, 600_000);
        s.insert(&tomb).unwrap();
        for i in 0..12 {
            s.insert(&env("general", Priority::P4, now + i, 600_000))
                .unwrap();
        }
        assert!(s.get(&tomb.id).unwrap().is_some());
    }
}
