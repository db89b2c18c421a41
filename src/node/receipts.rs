//! The node's side of receipts (`proto/receipt.md` §3–§4): the buckets that changed
//! here since the last receipt, what this node holds in a bucket, and which members
//! hold a message (those whose newest claim about its bucket equals this node's).

use super::jitter::jittered;
use crate::gossip::envelope::{ChannelName, Envelope, MessageId};
use crate::gossip::receipt::{bucket_of, Held, MAX_RECEIPT_BUCKETS};
use crate::store::{Store, StoreError};
use crate::sync::{fingerprint, Item};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

/// How often a node of a small site publishes a receipt (when it stored something).
pub(super) const RECEIPT_INTERVAL: Duration = Duration::from_secs(3);
/// Members a site may have before receipts slow down: up to it, every node sends one
/// every [`RECEIPT_INTERVAL`]; above it the interval grows with the square of the
/// members heard, so the site's receipt deliveries per second (members² ÷ interval)
/// stay those of a site this size.
const PACED_FROM_MEMBERS: f64 = 20.0;
/// The slowest pace (reached at 490 members).
const MAX_RECEIPT_INTERVAL: Duration = Duration::from_secs(1800);
/// A member counts towards the site's size for this long after its last receipt:
/// longer than the slowest pace, so that a big site does not look small between
/// two rounds of receipts.
const MEMBER_MEMORY: Duration = Duration::from_secs(3600);
/// Receipt authors remembered at most (a bound against forged floods of authors;
/// past it the site counts as this big, which only slows our receipts down).
const MAX_MEMBERS_HEARD: usize = 4096;

/// When this node's next receipt may go out: its pace follows the number of members
/// whose receipts it has heard lately (`proto/receipt.md` §3). Each gap is the
/// interval times a random factor (`jitter`, 0.75–1.25), so nodes that sent their
/// first receipts together drift apart instead of sending every receipt together.
#[derive(Debug)]
pub(super) struct ReceiptPace {
    heard: HashMap<[u8; 32], Instant>,
    last_sent: Option<Instant>,
    /// Draws the phase and the factor of each gap.
    rng: StdRng,
    /// The factor of the gap after `last_sent` (a draw in 0..1, see `jittered`).
    gap: f64,
    /// When the first receipt became due (something stored, none sent yet).
    first_due: Option<Instant>,
    /// Where in the interval this node's first receipt falls, 0.0 ..= 1.0: drawn at
    /// random so that a site whose nodes all store their first messages at once does
    /// not send every first receipt in the same second. Each receipt heard meanwhile
    /// lengthens the interval, so on a big site most first receipts wait.
    phase: f64,
}

impl Default for ReceiptPace {
    fn default() -> ReceiptPace {
        ReceiptPace::from_rng(StdRng::from_entropy())
    }
}

impl ReceiptPace {
    fn from_rng(mut rng: StdRng) -> ReceiptPace {
        let phase = rng.gen::<f64>();
        ReceiptPace {
            heard: HashMap::new(),
            last_sent: None,
            first_due: None,
            gap: rng.gen::<f64>(),
            rng,
            phase,
        }
    }

    /// Notes a receipt from `author` (another member) heard at `now`.
    pub(super) fn heard(&mut self, author: [u8; 32], now: Instant) {
        if self.heard.len() >= MAX_MEMBERS_HEARD && !self.heard.contains_key(&author) {
            self.forget_old(now);
            if self.heard.len() >= MAX_MEMBERS_HEARD {
                return;
            }
        }
        self.heard.insert(author, now);
    }

    fn forget_old(&mut self, now: Instant) {
        self.heard
            .retain(|_, t| now.saturating_duration_since(*t) < MEMBER_MEMORY);
    }

    /// The interval between two receipts of this node at the site's size now.
    pub(super) fn interval(&mut self, now: Instant) -> Duration {
        self.forget_old(now);
        let members = (self.heard.len() + 1) as f64;
        let factor = (members / PACED_FROM_MEMBERS).powi(2).max(1.0);
        RECEIPT_INTERVAL.mul_f64(factor).min(MAX_RECEIPT_INTERVAL)
    }

    /// Whether a receipt may go out at `now` (the caller has one to send); if so,
    /// counts it as sent.
    pub(super) fn take_turn(&mut self, now: Instant) -> bool {
        let interval = self.interval(now);
        let due = match self.last_sent {
            Some(t) => now.saturating_duration_since(t) >= jittered(interval, self.gap),
            None => {
                let since = *self.first_due.get_or_insert(now);
                now.saturating_duration_since(since) >= interval.mul_f64(self.phase)
            }
        };
        if due {
            self.last_sent = Some(now);
            self.gap = self.rng.gen::<f64>();
        }
        due
    }
}

/// Changed buckets waiting for the next receipt at most: four receipts' worth.
/// Beyond it the oldest is dropped; it is reported again when it next changes.
const MAX_PENDING_BUCKETS: usize = 4 * MAX_RECEIPT_BUCKETS;

/// Buckets that changed here since the last receipt.
#[derive(Debug, Default)]
pub(super) struct PendingBuckets(BTreeSet<(u64, ChannelName)>);

impl PendingBuckets {
    /// Notes that this node now holds `env` (a message of an ordinary channel).
    pub(super) fn touch(&mut self, env: &Envelope) {
        self.0
            .insert((bucket_of(env.created_at_ms), env.channel.clone()));
        while self.0.len() > MAX_PENDING_BUCKETS {
            self.0.pop_first();
        }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// What this node holds now in every pending bucket (empty buckets left out),
    /// oldest first; clears the set.
    pub(super) fn take(&mut self, store: &Store, now_ms: u64) -> Vec<Held> {
        std::mem::take(&mut self.0)
            .into_iter()
            .filter_map(|(bucket, channel)| own_held(store, channel, bucket, now_ms).ok())
            .filter(|h| h.count > 0)
            .collect()
    }
}

/// Count and fingerprint of what this node holds in a bucket.
fn own_held(
    store: &Store,
    channel: ChannelName,
    bucket: u64,
    now_ms: u64,
) -> Result<Held, StoreError> {
    let items: Vec<Item> = store
        .bucket_entries(&channel, bucket, now_ms)?
        .into_iter()
        .map(|e| Item { ts: e.ts, id: e.id })
        .collect();
    Ok(Held {
        count: u32::try_from(items.len()).unwrap_or(u32::MAX),
        fingerprint: fingerprint(&items).0,
        channel,
        bucket,
    })
}

/// Members (ed25519 keys, this node's `me` first) that hold every message this node
/// holds in the bucket of `channel` and `created_at_ms`: their newest receipt for it
/// has the same count and fingerprint as this node's bucket. Empty if this node
/// holds nothing there.
pub(crate) fn bucket_holders(
    store: &Store,
    me: [u8; 32],
    channel: &ChannelName,
    created_at_ms: u64,
    now_ms: u64,
) -> Result<(Vec<MessageId>, Vec<[u8; 32]>), StoreError> {
    let bucket = bucket_of(created_at_ms);
    let mine = own_held(store, channel.clone(), bucket, now_ms)?;
    if mine.count == 0 {
        return Ok((Vec::new(), Vec::new()));
    }
    let ids = store
        .bucket_entries(channel, bucket, now_ms)?
        .into_iter()
        .map(|e| e.id)
        .collect();
    let mut holders = vec![me];
    holders.extend(
        store
            .claims(channel, bucket, now_ms)?
            .into_iter()
            .filter(|c| c.member != me && c.count == mine.count)
            .filter(|c| c.fingerprint == mine.fingerprint)
            .map(|c| c.member),
    );
    Ok((ids, holders))
}

#[cfg(test)]
mod tests {
    use super::super::jitter::{most_within, SPREAD};
    use super::*;
    use crate::crypto::at_rest::Key;
    use crate::gossip::envelope::{Draft, DEFAULT_HOP_LIMIT};
    use crate::gossip::priority::Priority;
    use libp2p::identity::ed25519;
    use std::time::Duration;

    fn env(created_at_ms: u64) -> Envelope {
        Envelope::sign(
            Draft {
                channel: ChannelName::new("triage").unwrap(),
                created_at_ms,
                ttl: Duration::from_secs(60),
                hop_limit: DEFAULT_HOP_LIMIT,
                priority: Priority::P1,
                body: created_at_ms.to_be_bytes().to_vec(),
            },
            &ed25519::Keypair::generate(),
        )
        .unwrap()
    }

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path(), Key::random()).unwrap();
        (dir, s)
    }

    /// Notes receipts from members `ids` (numbered authors) at `t`.
    fn hear(pace: &mut ReceiptPace, ids: std::ops::Range<u32>, t: Instant) {
        for i in ids {
            let mut who = [0; 32];
            who[..4].copy_from_slice(&i.to_be_bytes());
            pace.heard(who, t);
        }
    }

    #[test]
    fn receipts_slow_down_with_the_square_of_the_members_heard() {
        let t0 = Instant::now();
        let mut pace = ReceiptPace::default();
        assert_eq!(pace.interval(t0), RECEIPT_INTERVAL);
        hear(&mut pace, 0..19, t0);
        assert_eq!(
            pace.interval(t0),
            RECEIPT_INTERVAL,
            "20 members: as a small site"
        );
        hear(&mut pace, 19..39, t0);
        assert_eq!(pace.interval(t0), RECEIPT_INTERVAL * 4, "40 members: 4x");
        hear(&mut pace, 39..99, t0);
        assert_eq!(pace.interval(t0), RECEIPT_INTERVAL * 25, "100 members: 25x");
        hear(&mut pace, 99..2000, t0);
        assert_eq!(pace.interval(t0), MAX_RECEIPT_INTERVAL);
        // Members not heard for a while no longer count.
        assert_eq!(pace.interval(t0 + MEMBER_MEMORY), RECEIPT_INTERVAL);
    }

    /// A pace with a fixed seed and the given phase.
    fn with_phase(phase: f64) -> ReceiptPace {
        let mut pace = ReceiptPace::from_rng(StdRng::seed_from_u64(7));
        pace.phase = phase;
        pace
    }

    #[test]
    fn a_receipt_goes_out_once_per_interval() {
        let t0 = Instant::now();
        let mut pace = with_phase(0.0);
        hear(&mut pace, 0..39, t0);
        assert!(
            pace.take_turn(t0),
            "phase 0: the first receipt is not held back"
        );
        // 40 members: 12 s, each gap drawn from 9-15 s.
        assert!(!pace.take_turn(t0 + RECEIPT_INTERVAL));
        assert!(!pace.take_turn(t0 + RECEIPT_INTERVAL * 2));
        assert!(pace.take_turn(t0 + RECEIPT_INTERVAL * 5));
        assert!(!pace.take_turn(t0 + RECEIPT_INTERVAL * 6));
        let mut at = t0 + RECEIPT_INTERVAL * 5;
        let mut gaps = Vec::new();
        for _ in 0..200 {
            let last = at;
            while !pace.take_turn(at) {
                at += Duration::from_millis(10);
            }
            gaps.push((at - last).as_secs_f64());
        }
        let (lo, hi) = (12.0 * (1.0 - SPREAD), 12.0 * (1.0 + SPREAD) + 0.01);
        assert!(gaps.iter().all(|g| (lo..=hi).contains(g)), "{gaps:?}");
        let mean = gaps.iter().sum::<f64>() / gaps.len() as f64;
        assert!((11.0..13.0).contains(&mean), "mean gap {mean}");
    }

    #[test]
    fn the_first_receipt_waits_for_its_phase_of_the_interval() {
        let t0 = Instant::now();
        let mut pace = with_phase(0.5);
        assert!(!pace.take_turn(t0));
        assert!(!pace.take_turn(t0 + RECEIPT_INTERVAL / 4));
        assert!(pace.take_turn(t0 + RECEIPT_INTERVAL / 2));
        // Receipts heard while waiting push the first one back (40 members: 4x).
        let mut late = with_phase(0.5);
        assert!(!late.take_turn(t0));
        hear(&mut late, 0..39, t0);
        assert!(!late.take_turn(t0 + RECEIPT_INTERVAL));
        assert!(late.take_turn(t0 + RECEIPT_INTERVAL * 2));
    }

    /// The most receipts sent within any `window` by a simulated site of `n` nodes
    /// started in the same instant, each hearing every receipt, after `settle`.
    fn busiest_window(n: usize, settle: Duration, window: Duration, span: Duration) -> usize {
        let t0 = Instant::now();
        let mut paces: Vec<ReceiptPace> = (0..n as u64)
            .map(|i| ReceiptPace::from_rng(StdRng::seed_from_u64(i)))
            .collect();
        let key = |i: usize| {
            let mut k = [0u8; 32];
            k[..8].copy_from_slice(&(i as u64).to_be_bytes());
            k
        };
        let mut sent = Vec::new();
        let step = Duration::from_millis(100);
        let mut now = t0;
        while now < t0 + span {
            let senders: Vec<usize> = (0..n).filter(|i| paces[*i].take_turn(now)).collect();
            for &s in &senders {
                for (i, pace) in paces.iter_mut().enumerate() {
                    if i != s {
                        pace.heard(key(s), now);
                    }
                }
                sent.push(now);
            }
            now += step;
        }
        let late: Vec<Duration> = sent
            .into_iter()
            .filter(|t| *t >= t0 + settle)
            .map(|t| t - t0)
            .collect();
        most_within(&late, window)
    }

    #[test]
    fn a_site_started_together_spreads_its_receipts_out() {
        // 50 nodes: 18.75 s between a node's receipts, so 2.7 receipts a second
        // when spread out. Without the random gaps, the first receipts (drawn over
        // the first 3 s, when nothing is heard yet) fixed every later round: all
        // 50 nodes sent within the same few seconds, every round (18 within one
        // second in this simulation; 7 with them).
        let busiest = busiest_window(
            50,
            Duration::from_secs(120),
            Duration::from_secs(1),
            Duration::from_secs(300),
        );
        assert!(busiest <= 10, "{busiest} receipts within one second");
    }

    #[test]
    fn members_heard_are_bounded() {
        let t0 = Instant::now();
        let mut pace = ReceiptPace::default();
        hear(&mut pace, 0..MAX_MEMBERS_HEARD as u32 + 100, t0);
        assert_eq!(pace.heard.len(), MAX_MEMBERS_HEARD);
        // Once the old ones are forgotten, new members are counted again.
        pace.heard([0xff; 32], t0 + MEMBER_MEMORY);
        assert_eq!(pace.heard.len(), 1);
    }

    #[test]
    fn a_member_holds_a_bucket_only_when_its_claim_matches_ours() {
        let now = 10_000;
        let (_a, here) = store();
        let (_b, there) = store();
        let (m1, m2, m3) = (env(5_100), env(5_900), env(6_000));
        for e in [&m1, &m2, &m3] {
            here.insert(e).unwrap();
        }
        // "there" holds m1 only, then also m2: its receipts after each step.
        there.insert(&m1).unwrap();
        let mut pending = PendingBuckets::default();
        pending.touch(&m1);
        let first = pending.take(&there, now);
        assert_eq!(first.len(), 1);
        assert_eq!(first[0].count, 1);
        here.record_held(&[2; 32], 1, 60_000, &first).unwrap();
        let ch = ChannelName::new("triage").unwrap();
        let (ids, who) = bucket_holders(&here, [1; 32], &ch, 5_100, now).unwrap();
        assert_eq!(ids.len(), 2, "m1 and m2 share bucket 5");
        assert_eq!(who, vec![[1; 32]], "a member missing m2 is not counted");

        there.insert(&m2).unwrap();
        pending.touch(&m2);
        assert!(!pending.is_empty());
        here.record_held(&[2; 32], 2, 60_000, &pending.take(&there, now))
            .unwrap();
        let (_, who) = bucket_holders(&here, [1; 32], &ch, 5_900, now).unwrap();
        assert_eq!(who, vec![[1; 32], [2; 32]]);
        // Bucket 6 (m3) was never claimed by the other member.
        let (ids, who) = bucket_holders(&here, [1; 32], &ch, 6_000, now).unwrap();
        assert_eq!((ids, who), (vec![m3.id], vec![[1; 32]]));
        // Nothing held in a bucket: no holders at all.
        assert_eq!(
            bucket_holders(&here, [1; 32], &ch, 9_000, now).unwrap().1,
            vec![] as Vec<[u8; 32]>
        );
    }
}
