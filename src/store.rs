//! The local message store over `sled` 0.34: messages by id, a per-channel time
//! index, an expiry index and the set of subscribed channels. Knows nothing of the
//! network. Every message record is sealed with the data key (AES-256-GCM, the
//! message id as associated data); the indexes hold ids, times, channel names and
//! priorities in clear. On-disk layout: `proto/store.md`.

mod anchor;
mod capacity;
mod held;
mod mirror;
mod sweep;

use capacity::footprint;
pub use capacity::DEFAULT_MAX_STORE_BYTES;
pub use sweep::{now_ms, Sweeper};

use crate::crypto::at_rest::{open, seal, Key};
use crate::gossip::envelope::{ChannelName, Envelope, MessageId};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// sled reported an I/O or corruption error.
    #[error("store i/o")]
    Sled(#[from] sled::Error),
    /// The store is locked (`fieldmesh lock`): records cannot be read or written.
    #[error("store is locked")]
    Locked,
    /// The flush task ended without an answer (the runtime is shutting down).
    #[error("store flush aborted")]
    FlushAborted,
    /// A stored record failed to decode: the entry is skipped, never deleted.
    #[error("stored record {key} does not decode")]
    Corrupt {
        /// Hex of the key of the bad record.
        key: String,
    },
}

/// One entry of a channel's time index, as catch-up sync needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexEntry {
    /// `created_at_ms`.
    pub ts: u64,
    /// Message id.
    pub id: MessageId,
    /// Priority byte 1..=4.
    pub priority: u8,
}

/// Whether an insert added a new message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inserted {
    /// The message was new and is now stored.
    New,
    /// The message was already stored; nothing changed.
    Duplicate,
    /// Not stored: the store is at its size limit and holds nothing it may evict
    /// for this message (only more urgent, or P1, unexpired messages).
    Full,
}

/// Clone handle over the sled trees. All methods are short single-key or
/// single-range operations; no lock is held across an await.
#[derive(Clone)]
pub struct Store {
    /// The data key while unlocked; `None` while locked.
    key: Arc<RwLock<Option<Key>>>,
    db: sled::Db,
    messages: sled::Tree,
    by_channel: sled::Tree,
    expiry: sled::Tree,
    channels: sled::Tree,
    /// Transcribed-and-deleted message ids → until when to refuse them (big-endian ms).
    tombstones: sled::Tree,
    /// Receipts: what each member holds per bucket (`store/held.rs`).
    held: sled::Tree,
    /// Size limit of messages and their index entries, in bytes.
    capacity: u64,
    /// Bytes of messages and index entries now stored.
    used: Arc<AtomicU64>,
    /// Ids removed to make room, not yet reported by the node.
    evicted: Arc<Mutex<Vec<MessageId>>>,
    /// In-memory copy of `by_channel` for the channels read (`store/mirror.rs`).
    mirror: Arc<mirror::Mirror>,
}

/// Key in `by_channel`: channel, a 0 byte, created-at (big endian) and id, so a
/// prefix scan yields a channel's messages oldest first.
fn channel_key(channel: &ChannelName, created_at_ms: u64, id: &MessageId) -> Vec<u8> {
    let mut k = Vec::with_capacity(channel.as_str().len() + 1 + 8 + 32);
    k.extend_from_slice(channel.as_str().as_bytes());
    k.push(0);
    k.extend_from_slice(&created_at_ms.to_be_bytes());
    k.extend_from_slice(&id.0);
    k
}

/// Value in `by_channel`: expires-at (big endian) and the priority byte, so sync
/// can list a channel's unexpired items from the index alone.
fn channel_value(expires_at_ms: u64, priority: u8) -> [u8; 9] {
    let mut v = [0u8; 9];
    v[..8].copy_from_slice(&expires_at_ms.to_be_bytes());
    v[8] = priority;
    v
}

/// A `by_channel` entry after its channel prefix: created-at, id, and from the value
/// expires-at and priority. `None` for an entry too short (layout 1, damage).
fn parse_channel_entry(rest: &[u8], value: &[u8]) -> Option<(u64, [u8; 32], u64, u8)> {
    let be = |b: &[u8]| b.try_into().ok().map(u64::from_be_bytes);
    Some((
        be(rest.get(..8)?)?,
        rest.get(8..40)?.try_into().ok()?,
        be(value.get(..8)?)?,
        *value.get(8)?,
    ))
}

/// Key in `expiry`: expires-at (big endian) then id, so the first key is the next deadline.
fn expiry_key(expires_at_ms: u64, id: &MessageId) -> [u8; 40] {
    let mut k = [0u8; 40];
    k[..8].copy_from_slice(&expires_at_ms.to_be_bytes());
    k[8..].copy_from_slice(&id.0);
    k
}

impl Store {
    /// Opens (or creates) the store in `dir`, unlocked with `key`. Fails if another
    /// process holds it.
    pub fn open(dir: &Path, key: Key) -> Result<Store, StoreError> {
        let db = sled::Config::new()
            .path(dir)
            .flush_every_ms(Some(200))
            .open()?;
        let store = Store {
            key: Arc::new(RwLock::new(Some(key))),
            messages: db.open_tree("messages")?,
            by_channel: db.open_tree("by_channel")?,
            expiry: db.open_tree("expiry")?,
            channels: db.open_tree("channels")?,
            tombstones: db.open_tree("tombstones")?,
            held: db.open_tree("held")?,
            db,
            capacity: DEFAULT_MAX_STORE_BYTES,
            used: Arc::new(AtomicU64::new(0)),
            evicted: Arc::new(Mutex::new(Vec::new())),
            mirror: Arc::default(),
        };
        store.used.store(store.measure()?, Ordering::Relaxed);
        // Per-message holder rows of receipts version 1 (before bucket receipts).
        store.db.drop_tree("holders")?;
        Ok(store)
    }

    /// Forgets the data key: records can no longer be read or written.
    pub fn lock(&self) {
        *self.key.write().unwrap_or_else(|p| p.into_inner()) = None;
    }

    /// Sets the data key again.
    pub fn unlock(&self, key: Key) {
        *self.key.write().unwrap_or_else(|p| p.into_inner()) = Some(key);
    }

    /// Whether the store is locked.
    pub fn is_locked(&self) -> bool {
        self.key.read().unwrap_or_else(|p| p.into_inner()).is_none()
    }

    fn data_key(&self) -> Result<Key, StoreError> {
        self.key
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .ok_or(StoreError::Locked)
    }

    /// Stores a validated envelope and its index entries.
    ///
    /// No sled transaction (see `Store::put`): the expiry entry goes first, the
    /// record is claimed with a compare-and-swap (so a message inserted twice at
    /// once is new only once), the channel index entry last.
    pub fn insert(&self, env: &Envelope) -> Result<Inserted, StoreError> {
        let key = self.data_key()?;
        let sealed = seal(&key, &env.id.0, env.as_bytes());
        let size = footprint(sealed.len(), env.channel.as_str().len());
        if !self.make_room(size, env.priority.to_wire(), &env.id)? {
            return Ok(Inserted::Full);
        }
        let res = self.put(env, sealed)?;
        if res == Inserted::New {
            self.used.fetch_add(size, Ordering::Relaxed);
        }
        Ok(res)
    }

    /// Writes one sealed record and its index entries in the order that keeps a
    /// crash harmless (`proto/store.md` S17). sled recovers a prefix of its log, so
    /// after a crash either nothing, the expiry entry, or expiry and record are
    /// there: the sweep removes both at the message's expiry, and a copy arriving
    /// again (sync offers it, since the index lacks it) restores the index entry.
    ///
    /// Transactions are avoided on purpose: the first sled transaction (or batch)
    /// in a process turns on a process-wide reader-writer lock that sled's flusher
    /// thread takes recursively, which can deadlock the process (hazard H30).
    fn put(&self, env: &Envelope, sealed: Vec<u8>) -> Result<Inserted, StoreError> {
        let ck = channel_key(&env.channel, env.created_at_ms, &env.id);
        let ek = expiry_key(env.expires_at_ms(), &env.id);
        let cv = channel_value(env.expires_at_ms(), env.priority.to_wire());
        self.expiry
            .insert(&ek[..], env.channel.as_str().as_bytes())?;
        let claimed = self
            .messages
            .compare_and_swap(env.id.0, None::<&[u8]>, Some(sealed))?
            .is_ok();
        let mut mirror = self.mirror.lock();
        if !claimed {
            // Held already; complete an index entry a crash may have left out.
            if !self.by_channel.contains_key(&ck)? {
                self.by_channel.insert(&ck, &cv[..])?;
                mirror.inserted(&ck, env.expires_at_ms(), env.priority.to_wire());
            }
            return Ok(Inserted::Duplicate);
        }
        self.by_channel.insert(&ck, &cv[..])?;
        mirror.inserted(&ck, env.expires_at_ms(), env.priority.to_wire());
        Ok(Inserted::New)
    }

    /// Stores many validated envelopes (sync batches); returns, per envelope,
    /// whether it was new. When the batch does not fit, each envelope is inserted
    /// on its own so that room is made (or refused) per message.
    pub fn insert_batch(&self, envs: &[Envelope]) -> Result<Vec<Inserted>, StoreError> {
        let key = self.data_key()?;
        let sealed: Vec<Vec<u8>> = envs
            .iter()
            .map(|env| seal(&key, &env.id.0, env.as_bytes()))
            .collect();
        let sizes: Vec<u64> = envs
            .iter()
            .zip(&sealed)
            .map(|(e, s)| footprint(s.len(), e.channel.as_str().len()))
            .collect();
        if !self.fits(sizes.iter().sum()) {
            return envs.iter().map(|e| self.insert(e)).collect();
        }
        let mut out = Vec::with_capacity(envs.len());
        for ((env, sealed), size) in envs.iter().zip(sealed).zip(sizes) {
            let res = self.put(env, sealed)?;
            if res == Inserted::New {
                self.used.fetch_add(size, Ordering::Relaxed);
            }
            out.push(res);
        }
        Ok(out)
    }

    /// Waits until everything written so far is durable on disk.
    ///
    /// On tokio's blocking pool, not sled's `flush_async`: that parks the wait on
    /// sled's own small I/O pool, and a few flushes at once (a burst of sends, or
    /// stores closing) fill it, so the log write they wait for never runs and the
    /// process hangs (hazard H31).
    pub async fn flush(&self) -> Result<(), StoreError> {
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || db.flush())
            .await
            .map_err(|_| StoreError::FlushAborted)??;
        Ok(())
    }

    /// The stored envelope with this id, if any (expired or not).
    pub fn get(&self, id: &MessageId) -> Result<Option<Envelope>, StoreError> {
        match self.get_raw(id)? {
            None => Ok(None),
            Some(bytes) => decode_stored(id, &bytes).map(Some),
        }
    }

    /// The stored bytes of a message, undecoded (for relaying as they are).
    pub fn get_raw(&self, id: &MessageId) -> Result<Option<Vec<u8>>, StoreError> {
        let Some(sealed) = self.messages.get(id.0)? else {
            return Ok(None);
        };
        let key = self.data_key()?;
        open(&key, &id.0, &sealed)
            .map(Some)
            .map_err(|_| StoreError::Corrupt { key: id.to_hex() })
    }

    /// Unexpired messages of `channel`, oldest first: the newest `limit` of them.
    pub fn read_channel(
        &self,
        channel: &ChannelName,
        now_ms: u64,
        limit: usize,
    ) -> Result<Vec<Envelope>, StoreError> {
        let mut prefix = channel.as_str().as_bytes().to_vec();
        prefix.push(0);
        if self.is_locked() {
            return Err(StoreError::Locked);
        }
        // Walk newest first so a limit keeps the most recent messages, then flip.
        let mut out = Vec::new();
        for entry in self.by_channel.scan_prefix(&prefix).rev() {
            if out.len() >= limit {
                break;
            }
            let (key, _) = entry?;
            let Some(id) = key
                .get(key.len().saturating_sub(32)..)
                .and_then(id_from_slice)
            else {
                continue;
            };
            match self.get(&id) {
                Ok(Some(env)) if !env.is_expired(now_ms) => out.push(env),
                Ok(_) => {}
                Err(e) => tracing::warn!(%id, error = %e, "skipping unreadable stored message"),
            }
        }
        out.reverse();
        Ok(out)
    }

    /// Unexpired items of `channel` sorted by `(created_at, id)`, from the index only.
    pub fn index_entries(
        &self,
        channel: &ChannelName,
        now_ms: u64,
    ) -> Result<Vec<IndexEntry>, StoreError> {
        let name = channel.as_str().as_bytes();
        let mut mirror = self.mirror.lock();
        let entries = match mirror.get(name) {
            Some(entries) => entries,
            None => {
                let loaded = self.read_index(channel)?;
                mirror.load(name, loaded)
            }
        };
        Ok(entries
            .iter()
            .filter(|(_, &(exp, _))| exp > now_ms)
            .map(|(&(ts, id), &(_, priority))| IndexEntry {
                ts,
                id: MessageId(id),
                priority,
            })
            .collect())
    }

    /// Every `by_channel` entry of `channel`, read from sled.
    fn read_index(&self, channel: &ChannelName) -> Result<mirror::Entries, StoreError> {
        let mut prefix = channel.as_str().as_bytes().to_vec();
        prefix.push(0);
        let mut out = mirror::Entries::new();
        for entry in self.by_channel.scan_prefix(&prefix) {
            let (key, value) = entry?;
            let Some((ts, id, exp, priority)) = parse_channel_entry(&key[prefix.len()..], &value)
            else {
                tracing::warn!("skipping unreadable channel index entry");
                continue;
            };
            out.insert((ts, id), (exp, priority));
        }
        Ok(out)
    }

    /// Number of stored messages (expired ones not yet swept included).
    pub fn len(&self) -> usize {
        self.messages.len()
    }

    /// Whether the store holds no message.
    pub fn is_empty(&self) -> bool {
        self.messages.is_empty()
    }

    /// Remembers that this node follows `channel` (survives restart).
    pub fn add_channel(&self, channel: &ChannelName) -> Result<bool, StoreError> {
        Ok(self
            .channels
            .insert(channel.as_str().as_bytes(), &[])?
            .is_none())
    }

    /// Channels this node follows.
    pub fn channels(&self) -> Result<Vec<ChannelName>, StoreError> {
        let mut out = Vec::new();
        for entry in self.channels.iter() {
            let (k, _) = entry?;
            match std::str::from_utf8(&k)
                .ok()
                .and_then(|s| ChannelName::new(s).ok())
            {
                Some(c) => out.push(c),
                None => tracing::warn!("skipping unreadable channel entry"),
            }
        }
        Ok(out)
    }

    /// Deletes message `id` (after transcription) and remembers until `until_ms` that
    /// it must not be stored again. Returns whether the message was held.
    pub fn delete_for_tombstone(&self, id: &MessageId, until_ms: u64) -> Result<bool, StoreError> {
        self.tombstones.insert(id.0, &until_ms.to_be_bytes())?;
        let Some(env) = self.get(id).ok().flatten() else {
            // Unreadable or absent: drop what there is without its details.
            let removed = self.messages.remove(id.0)?;
            if let Some(sealed) = &removed {
                self.release(32 + sealed.len() as u64);
            }
            return Ok(removed.is_some());
        };
        let sealed_len = self.messages.get(id.0)?.map_or(0, |v| v.len());
        let ck = channel_key(&env.channel, env.created_at_ms, id);
        let ek = expiry_key(env.expires_at_ms(), id);
        self.remove_parts(id, Some(&ck), &ek)?;
        self.release(footprint(sealed_len, env.channel.as_str().len()));
        Ok(true)
    }

    /// Removes a message in the order that keeps a crash harmless (S17): the index
    /// entry first (it disappears from reads and sync), the record, and the expiry
    /// entry last, so that whatever a crash leaves is still swept.
    pub(crate) fn remove_parts(
        &self,
        id: &MessageId,
        channel_key: Option<&[u8]>,
        expiry_key: &[u8],
    ) -> Result<(), StoreError> {
        if let Some(k) = channel_key {
            let mut mirror = self.mirror.lock();
            self.by_channel.remove(k)?;
            mirror.removed(k);
        }
        self.messages.remove(id.0)?;
        self.expiry.remove(expiry_key)?;
        Ok(())
    }

    /// Whether `id` was transcribed and deleted (and must not be stored again).
    pub fn is_tombstoned(&self, id: &MessageId) -> Result<bool, StoreError> {
        Ok(self.tombstones.contains_key(id.0)?)
    }

    /// Deletes every message whose expiry is at or before `now_ms`; returns their ids.
    /// Tombstone entries past their time go too.
    pub fn sweep_expired(&self, now_ms: u64) -> Result<Vec<MessageId>, StoreError> {
        for entry in self.tombstones.iter() {
            let (k, until) = entry?;
            let until = until
                .get(..8)
                .and_then(|b| b.try_into().ok())
                .map(u64::from_be_bytes);
            if until.is_none_or(|u| u <= now_ms) {
                self.tombstones.remove(k)?;
            }
        }
        let mut removed = Vec::new();
        let end = (now_ms.saturating_add(1)).to_be_bytes();
        for entry in self.expiry.range(..end.as_slice()) {
            let (key, channel) = entry?;
            let Some(id) = key.get(8..).and_then(id_from_slice) else {
                continue;
            };
            let channel_len = channel.len();
            let channel = std::str::from_utf8(&channel)
                .ok()
                .and_then(|c| ChannelName::new(c).ok());
            let sealed_len = self.messages.get(id.0)?.map_or(0, |v| v.len());
            // An expired record is deleted even if it no longer decodes: keeping it
            // would retain data past its TTL and stall every later sweep.
            let index_key = match self.get(&id) {
                Ok(env) => env.and_then(|e| {
                    channel
                        .as_ref()
                        .map(|c| channel_key(c, e.created_at_ms, &id))
                }),
                Err(_) => self.find_channel_key(channel.as_ref(), &id)?,
            };
            self.remove_parts(&id, index_key.as_deref(), &key)?;
            self.release(footprint(sealed_len, channel_len));
            removed.push(id);
        }
        self.sweep_held(now_ms)?;
        Ok(removed)
    }

    /// The channel-index key of `id` found by scanning (for unreadable records).
    fn find_channel_key(
        &self,
        channel: Option<&ChannelName>,
        id: &MessageId,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let Some(channel) = channel else {
            return Ok(None);
        };
        let mut prefix = channel.as_str().as_bytes().to_vec();
        prefix.push(0);
        for entry in self.by_channel.scan_prefix(&prefix) {
            let (k, _) = entry?;
            if k.ends_with(&id.0) {
                return Ok(Some(k.to_vec()));
            }
        }
        Ok(None)
    }

    /// Expiry time of the message that expires next, if any.
    pub fn next_expiry_ms(&self) -> Result<Option<u64>, StoreError> {
        Ok(self.expiry.first()?.and_then(|(k, _)| {
            let b: [u8; 8] = k.get(..8)?.try_into().ok()?;
            Some(u64::from_be_bytes(b))
        }))
    }
}

fn id_from_slice(s: &[u8]) -> Option<MessageId> {
    s.try_into().ok().map(MessageId)
}

/// Stored bytes were validated on the way in: no body limit (a node whose cap was
/// lowered still reads what it stored earlier) and no second signature check.
fn decode_stored(id: &MessageId, bytes: &[u8]) -> Result<Envelope, StoreError> {
    Envelope::decode_stored(bytes).map_err(|_| StoreError::Corrupt { key: id.to_hex() })
}

#[cfg(test)]
mod tests;
