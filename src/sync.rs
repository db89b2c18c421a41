//! Catch-up sync (`proto/sync.md`): the `/fieldmesh/sync/1` request and response
//! types and a pure range-based set reconciliation (RBSR, after Negentropy and
//! Aljoscha Meyer's work) over the time-ordered `(created_at, id)` items of one
//! channel. No I/O here: callers pass sorted item snapshots.

pub mod codec;

use crate::gossip::envelope::MessageId;
use serde::{Deserialize, Serialize};

/// libp2p protocol id of catch-up sync.
pub const PROTOCOL: &str = "/fieldmesh/sync/1";
/// Sub-ranges a mismatched range is split into.
pub const BRANCHING: usize = 16;
/// A side holding at most this many items in a mismatched range lists them instead of splitting.
pub const LIST_THRESHOLD: usize = 8;
/// Ranges at most per reconcile message; more wait for the next round. Chosen so the
/// largest possible reply (every range answered with 64 items) stays under the 1 MiB
/// decode limit of [`crate::wire`].
pub const MAX_RANGES: usize = 256;
/// Ids at most per fetch request.
pub const MAX_FETCH_IDS: usize = 1024;
/// Envelope bytes at most per fetch reply or push request (512 KiB): under the 1 MiB
/// decode limit, and small enough that the first messages arrive quickly.
pub const MAX_BATCH_BYTES: usize = 512 << 10;
/// Envelope bytes at most in the first batch of a transfer (first page of a range,
/// first push of a channel): the most urgent messages arrive without waiting for a
/// full batch to be read, sent and verified.
pub const FIRST_BATCH_BYTES: usize = 32 << 10;

/// One element of a channel's set: ordered by time, then id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Item {
    /// `created_at_ms` of the message.
    pub ts: u64,
    /// Message id.
    pub id: MessageId,
}

/// An item with the priority that decides transfer order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemInfo {
    /// `created_at_ms`.
    pub ts: u64,
    /// Message id bytes.
    pub id: [u8; 32],
    /// Priority byte 1..=4.
    pub priority: u8,
}

impl From<crate::store::IndexEntry> for ItemInfo {
    fn from(e: crate::store::IndexEntry) -> Self {
        ItemInfo {
            ts: e.ts,
            id: e.id.0,
            priority: e.priority,
        }
    }
}

impl ItemInfo {
    /// The ordering key.
    pub fn item(&self) -> Item {
        Item {
            ts: self.ts,
            id: MessageId(self.id),
        }
    }
}

/// Exclusive upper bound of a range: items `< (ts, id_prefix‖0…)` are inside.
/// The id prefix is only as long as needed to separate two neighbours.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bound {
    /// Timestamp part.
    pub ts: u64,
    /// Shortest id prefix that separates the neighbours (often empty).
    pub id_prefix: Vec<u8>,
}

impl Bound {
    /// The bound above every item.
    pub fn max() -> Bound {
        Bound {
            ts: u64::MAX,
            id_prefix: vec![0xff; 32],
        }
    }

    /// Whether `item` lies below this bound.
    pub fn above(&self, item: &Item) -> bool {
        match item.ts.cmp(&self.ts) {
            std::cmp::Ordering::Less => true,
            std::cmp::Ordering::Greater => false,
            std::cmp::Ordering::Equal => item.id.0[..] < self.padded()[..],
        }
    }

    fn padded(&self) -> [u8; 32] {
        let mut p = [0u8; 32];
        let n = self.id_prefix.len().min(32);
        p[..n].copy_from_slice(&self.id_prefix[..n]);
        p
    }

    /// Smallest bound separating `prev` (below) from `next` (at or above).
    fn between(prev: &Item, next: &Item) -> Bound {
        if prev.ts != next.ts {
            return Bound {
                ts: next.ts,
                id_prefix: Vec::new(),
            };
        }
        let common = prev
            .id
            .0
            .iter()
            .zip(next.id.0.iter())
            .take_while(|(a, b)| a == b)
            .count();
        Bound {
            ts: next.ts,
            id_prefix: next.id.0[..(common + 1).min(32)].to_vec(),
        }
    }
}

/// 16-byte fingerprint of a set of items: BLAKE3 over (sum of ids mod 2^128, count).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Fingerprint(pub [u8; 16]);

/// Fingerprint of `items`.
pub fn fingerprint(items: &[Item]) -> Fingerprint {
    let mut sum: u128 = 0;
    for it in items {
        let mut lo = [0u8; 16];
        lo.copy_from_slice(&it.id.0[..16]);
        sum = sum.wrapping_add(u128::from_le_bytes(lo));
    }
    let mut h = blake3::Hasher::new();
    h.update(&sum.to_le_bytes());
    h.update(&(items.len() as u64).to_le_bytes());
    let mut out = [0u8; 16];
    out.copy_from_slice(&h.finalize().as_bytes()[..16]);
    Fingerprint(out)
}

/// A range `[lower, upper)` with the sender's fingerprint and count of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RangeFp {
    /// Inclusive lower bound (`None` = from the start).
    pub lower: Option<Bound>,
    /// Exclusive upper bound.
    pub upper: Bound,
    /// Sender's fingerprint of its items in the range.
    pub fingerprint: Fingerprint,
    /// Sender's item count in the range.
    pub count: u32,
}

/// One sub-range of a split: its upper bound, fingerprint and count. The lower
/// bound is the previous sub-range's upper (or the split range's lower).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubRange {
    /// Exclusive upper bound.
    pub upper: Bound,
    /// Responder's fingerprint.
    pub fingerprint: Fingerprint,
    /// Responder's count.
    pub count: u32,
}

/// The responder's answer to one range, in request order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum RangeReply {
    /// Same fingerprint: nothing to do.
    Match,
    /// Every item the responder holds in the range.
    Items(Vec<ItemInfo>),
    /// The responder's items split into sub-ranges covering the range.
    Split(Vec<SubRange>),
    /// The requester has nothing here and the responder has `count` items: fetch
    /// the range whole instead of listing ids.
    All {
        /// Responder's item count in the range.
        count: u32,
    },
}

/// A request of `/fieldmesh/sync/1`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SyncRequest {
    /// Compare these ranges of a channel.
    Reconcile {
        /// Channel name.
        channel: String,
        /// Ranges with the requester's fingerprints.
        ranges: Vec<RangeFp>,
    },
    /// Send these messages.
    Fetch {
        /// Channel name.
        channel: String,
        /// Wanted ids, most urgent first.
        ids: Vec<[u8; 32]>,
    },
    /// Send the messages of a range, most urgent first then newest, skipping the
    /// first `skip` of that order (already received).
    FetchRange {
        /// Channel name.
        channel: String,
        /// Inclusive lower bound (`None` = from the start).
        lower: Option<Bound>,
        /// Exclusive upper bound.
        upper: Bound,
        /// Envelopes of this range already received (position in transfer order).
        skip: u32,
        /// Envelopes at most in the reply (capped at [`MAX_FETCH_IDS`]).
        max: u32,
    },
    /// Store these messages (each validated like gossip).
    Push {
        /// Channel name.
        channel: String,
        /// Envelope wire bytes.
        #[serde(with = "bytes_list")]
        envelopes: Vec<Vec<u8>>,
    },
}

/// A response of `/fieldmesh/sync/1`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SyncResponse {
    /// One reply per requested range.
    Reconcile(Vec<RangeReply>),
    /// Envelopes, most urgent first then newest; may be fewer than asked (size cap,
    /// expired, unknown).
    Envelopes(#[serde(with = "bytes_list")] Vec<Vec<u8>>),
    /// How many pushed envelopes were new and stored.
    Pushed {
        /// New messages stored.
        stored: u32,
    },
    /// The responder does not follow this channel.
    NotFollowed,
    /// The request broke a rule (too many ranges or ids, bad channel).
    Refused {
        /// Stable reason code.
        code: String,
    },
}

/// A list of byte strings with the same encoding as `Vec<Vec<u8>>` (u64 count, then
/// each as u64 length and raw bytes), (de)serialised as bytes rather than element by
/// element: catch-up moves megabytes through this.
mod bytes_list {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use serde_bytes::{ByteBuf, Bytes};

    pub(super) fn serialize<S: Serializer>(v: &[Vec<u8>], s: S) -> Result<S::Ok, S::Error> {
        let refs: Vec<&Bytes> = v.iter().map(|b| Bytes::new(b)).collect();
        refs.serialize(s)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Vec<u8>>, D::Error> {
        let bufs: Vec<ByteBuf> = Vec::deserialize(d)?;
        Ok(bufs.into_iter().map(ByteBuf::into_vec).collect())
    }
}

/// Items of `items` (sorted) inside `[lower, upper)`.
pub fn slice<'a, T>(
    items: &'a [T],
    key: impl Fn(&T) -> Item,
    lower: Option<&Bound>,
    upper: &Bound,
) -> &'a [T] {
    let start = match lower {
        None => 0,
        Some(b) => items.partition_point(|t| b.above(&key(t))),
    };
    let end = items.partition_point(|t| upper.above(&key(t)));
    &items[start..end.max(start)]
}

fn items_of(infos: &[ItemInfo]) -> Vec<Item> {
    infos.iter().map(ItemInfo::item).collect()
}

/// Splits `items` (all inside `[lower, upper)`) into at most [`BRANCHING`] sub-ranges.
fn split(items: &[Item], upper: &Bound) -> Vec<SubRange> {
    let n = items.len();
    let parts = BRANCHING.min(n.max(1));
    let mut out = Vec::with_capacity(parts);
    let mut start = 0;
    for p in 0..parts {
        let end = if p + 1 == parts {
            n
        } else {
            (n * (p + 1)) / parts
        };
        let chunk = &items[start..end];
        let ub = if p + 1 == parts || end >= n {
            upper.clone()
        } else {
            Bound::between(&items[end - 1], &items[end])
        };
        out.push(SubRange {
            upper: ub,
            fingerprint: fingerprint(chunk),
            count: chunk.len() as u32,
        });
        start = end;
    }
    out
}

/// The responder side: answers each range against our sorted `mine`.
pub fn respond(mine: &[ItemInfo], ranges: &[RangeFp]) -> Vec<RangeReply> {
    ranges
        .iter()
        .map(|r| {
            let ours = slice(mine, ItemInfo::item, r.lower.as_ref(), &r.upper);
            let keys = items_of(ours);
            if fingerprint(&keys) == r.fingerprint {
                RangeReply::Match
            } else if r.count == 0 {
                RangeReply::All {
                    count: ours.len() as u32,
                }
            } else if ours.len() <= LIST_THRESHOLD
                || (r.count as usize <= LIST_THRESHOLD && ours.len() <= 4 * BRANCHING)
            {
                RangeReply::Items(ours.to_vec())
            } else {
                RangeReply::Split(split(&keys, &r.upper))
            }
        })
        .collect()
}

/// The initiator side of one channel's reconciliation.
#[derive(Debug)]
pub struct Reconciler {
    mine: Vec<ItemInfo>,
    queue: Vec<RangeFp>,
    sent: Vec<RangeFp>,
    /// Items the peer holds and we lack.
    pub need: Vec<ItemInfo>,
    /// Ranges where the peer holds items and we hold none: fetched whole.
    pub need_ranges: Vec<(Option<Bound>, Bound)>,
    /// Items we hold and the peer lacks.
    pub have: Vec<ItemInfo>,
}

impl Reconciler {
    /// Starts with one range over everything; `mine` must be sorted by [`Item`].
    pub fn new(mine: Vec<ItemInfo>) -> Reconciler {
        Reconciler::below(mine, Bound::max())
    }

    /// Starts with one range over the items below `upper` only (those of `mine` at
    /// or above it are left out); `mine` must be sorted by [`Item`].
    pub fn below(mut mine: Vec<ItemInfo>, upper: Bound) -> Reconciler {
        mine.truncate(mine.partition_point(|i| upper.above(&i.item())));
        let keys = items_of(&mine);
        let first = RangeFp {
            lower: None,
            upper,
            fingerprint: fingerprint(&keys),
            count: keys.len() as u32,
        };
        Reconciler {
            mine,
            queue: vec![first],
            sent: Vec::new(),
            need: Vec::new(),
            need_ranges: Vec::new(),
            have: Vec::new(),
        }
    }

    /// Ranges for the next reconcile request; `None` when reconciliation is complete.
    pub fn next_request(&mut self) -> Option<Vec<RangeFp>> {
        if self.queue.is_empty() {
            return None;
        }
        let take = self.queue.len().min(MAX_RANGES);
        self.sent = self.queue.drain(..take).collect();
        Some(self.sent.clone())
    }

    /// Processes the replies to the last request. Errors if the reply count differs.
    pub fn on_replies(&mut self, replies: Vec<RangeReply>) -> Result<(), ProtocolViolation> {
        if replies.len() != self.sent.len() {
            return Err(ProtocolViolation);
        }
        let sent = std::mem::take(&mut self.sent);
        for (range, reply) in sent.into_iter().zip(replies) {
            let ours = slice(
                &self.mine,
                ItemInfo::item,
                range.lower.as_ref(),
                &range.upper,
            );
            match reply {
                RangeReply::Match => {}
                RangeReply::All { count } => {
                    if !ours.is_empty() {
                        return Err(ProtocolViolation);
                    }
                    if count > 0 {
                        self.need_ranges
                            .push((range.lower.clone(), range.upper.clone()));
                    }
                }
                RangeReply::Items(theirs) => {
                    let their_keys: std::collections::HashSet<Item> =
                        theirs.iter().map(ItemInfo::item).collect();
                    let our_keys: std::collections::HashSet<Item> =
                        ours.iter().map(ItemInfo::item).collect();
                    self.need
                        .extend(theirs.iter().filter(|t| !our_keys.contains(&t.item())));
                    self.have
                        .extend(ours.iter().filter(|o| !their_keys.contains(&o.item())));
                }
                RangeReply::Split(subs) => {
                    if subs.is_empty() || subs.len() > BRANCHING {
                        return Err(ProtocolViolation);
                    }
                    let mut lower = range.lower.clone();
                    for sub in subs {
                        let mine = slice(&self.mine, ItemInfo::item, lower.as_ref(), &sub.upper);
                        let keys = items_of(mine);
                        let fp = fingerprint(&keys);
                        if fp != sub.fingerprint {
                            self.queue.push(RangeFp {
                                lower: lower.clone(),
                                upper: sub.upper.clone(),
                                fingerprint: fp,
                                count: keys.len() as u32,
                            });
                        }
                        lower = Some(sub.upper);
                    }
                }
            }
        }
        Ok(())
    }
}

/// The peer's reply does not fit the request (wrong count, empty or oversized split).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("sync protocol violation")]
pub struct ProtocolViolation;

/// Sorts items for transfer: most urgent first, then newest first.
pub fn transfer_order(items: &mut [ItemInfo]) {
    items.sort_by(|a, b| a.priority.cmp(&b.priority).then(b.ts.cmp(&a.ts)));
}

#[cfg(test)]
mod tests;
