//! An in-memory copy of the `by_channel` tree, per channel: filled from sled the
//! first time a channel's index is read, then kept in step by every write and
//! removal of an index entry, under one lock, so a read never sees a copy that
//! missed a write. Catch-up sync reads a channel's whole index for every request it
//! answers; walking sled for each cost a quarter of the CPU of a 500-node run
//! (issue 7). What sled holds stays the truth: the copy is rebuilt at every open.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard};

/// An item: `(created_at_ms, id)`, in the order of the sled key.
type Item = (u64, [u8; 32]);
/// A channel's entries: item → `(expires_at_ms, priority)`.
pub(super) type Entries = BTreeMap<Item, (u64, u8)>;

/// The copies of the channels read so far, by channel name bytes.
#[derive(Default)]
pub(super) struct Mirror(Mutex<HashMap<Vec<u8>, Entries>>);

impl Mirror {
    /// Takes the lock every index write and read goes through.
    pub(super) fn lock(&self) -> Guard<'_> {
        Guard(self.0.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

/// The held lock of a [`Mirror`].
pub(super) struct Guard<'a>(MutexGuard<'a, HashMap<Vec<u8>, Entries>>);

/// Splits a `by_channel` key into its channel and `(created_at_ms, id)`.
fn split_key(key: &[u8]) -> Option<(&[u8], Item)> {
    let sep = key.iter().position(|&b| b == 0)?;
    let rest = &key[sep + 1..];
    let ts = u64::from_be_bytes(rest.get(..8)?.try_into().ok()?);
    let id: [u8; 32] = rest.get(8..40)?.try_into().ok()?;
    Some((&key[..sep], (ts, id)))
}

impl Guard<'_> {
    /// The copy of `channel`, if it was loaded.
    pub(super) fn get(&self, channel: &[u8]) -> Option<&Entries> {
        self.0.get(channel)
    }

    /// Keeps `entries`, just read from sled under this lock, as `channel`'s copy.
    pub(super) fn load(&mut self, channel: &[u8], entries: Entries) -> &Entries {
        self.0.entry(channel.to_vec()).or_insert(entries)
    }

    /// Notes an entry written to sled (if its channel's copy is loaded).
    pub(super) fn inserted(&mut self, key: &[u8], expires_at_ms: u64, priority: u8) {
        if let Some((channel, item)) = split_key(key) {
            if let Some(entries) = self.0.get_mut(channel) {
                entries.insert(item, (expires_at_ms, priority));
            }
        }
    }

    /// Notes an entry removed from sled.
    pub(super) fn removed(&mut self, key: &[u8]) {
        if let Some((channel, item)) = split_key(key) {
            if let Some(entries) = self.0.get_mut(channel) {
                entries.remove(&item);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(channel: &str, ts: u64, id: u8) -> Vec<u8> {
        let mut k = channel.as_bytes().to_vec();
        k.push(0);
        k.extend_from_slice(&ts.to_be_bytes());
        k.extend_from_slice(&[id; 32]);
        k
    }

    #[test]
    fn only_loaded_channels_are_kept_in_step() {
        let m = Mirror::default();
        let mut g = m.lock();
        g.inserted(&key("triage", 1, 1), 10, 2);
        assert!(g.get(b"triage").is_none(), "not loaded: sled is read first");
        g.load(b"triage", Entries::new());
        g.inserted(&key("triage", 5, 2), 50, 1);
        g.inserted(&key("triage", 3, 3), 30, 4);
        g.inserted(&key("general", 3, 3), 30, 4);
        let got: Vec<_> = g.get(b"triage").unwrap().iter().collect();
        assert_eq!(
            got,
            vec![(&(3, [3; 32]), &(30, 4)), (&(5, [2; 32]), &(50, 1))]
        );
        g.removed(&key("triage", 3, 3));
        g.removed(&key("triage", 9, 9));
        assert_eq!(g.get(b"triage").unwrap().len(), 1);
        assert!(g.get(b"general").is_none());
    }

    #[test]
    fn short_or_unseparated_keys_are_ignored() {
        let m = Mirror::default();
        let mut g = m.lock();
        g.load(b"triage", Entries::new());
        g.inserted(b"triage", 1, 1);
        g.inserted(b"triage\0short", 1, 1);
        g.removed(b"");
        assert!(g.get(b"triage").unwrap().is_empty());
    }
}
