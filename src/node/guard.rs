//! Flood protection, per connected peer: a message rate limit (token bucket) and a
//! fault budget. Messages over the rate are dropped unvalidated (cheap) and cost a
//! little of the budget; invalid envelopes cost more. A peer's spent budget becomes
//! a negative gossipsub application score (the mesh prunes it, then ignores it),
//! and a peer whose budget runs out is banned: disconnected, blacklisted and
//! refused for [`BAN`]. Budgets refill over time, so an honest peer's occasional
//! bad message or burst is forgiven.

use libp2p::PeerId;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Default sustained gossip messages per second accepted from one peer: above what
/// a 50-node site forwards even under the benchmark's load (600 msg/s reach a node
/// over a few peers), and well below what a node can validate and store (several
/// thousand a second in a release build), so a flood shows as a rate.
pub const DEFAULT_MAX_PEER_RATE: u32 = 1_000;
/// Faults a peer may commit before it is banned.
pub const FAULT_BUDGET: f64 = 100.0;
/// Fault budget regained per second.
const FAULT_REFILL_PER_SEC: f64 = 1.0;
/// Cost of an invalid envelope (bad signature, malformed, not a member, ...).
const INVALID_COST: f64 = 1.0;
/// Cost of one message over the rate limit: a peer at five times the rate is
/// banned within a second; a short burst over it is forgiven.
const OVER_RATE_COST: f64 = 0.05;
/// How long a banned peer is refused.
pub const BAN: Duration = Duration::from_secs(600);
/// Rejections logged as warnings per peer (the rest at debug level, so that a
/// flood does not flood the log too).
pub const WARN_FAULTS: f64 = 10.0;

/// What to do with a peer's message or fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Go on.
    Pass,
    /// Over the rate: drop the message unvalidated.
    Drop,
    /// The budget is spent: ban the peer now.
    Ban,
}

struct Budget {
    tokens: f64,
    faults_left: f64,
    at: Instant,
}

/// Rate limits, fault budgets and bans of every peer.
pub struct Guard {
    rate: f64,
    budgets: HashMap<PeerId, Budget>,
    bans: HashMap<PeerId, Instant>,
}

impl Guard {
    /// A guard allowing `max_rate` messages per second per peer (bursts of one
    /// second's worth).
    pub fn new(max_rate: u32) -> Guard {
        Guard {
            rate: f64::from(max_rate.max(1)),
            budgets: HashMap::new(),
            bans: HashMap::new(),
        }
    }

    fn budget(&mut self, peer: PeerId, now: Instant) -> &mut Budget {
        let burst = self.rate;
        let rate = self.rate;
        let b = self.budgets.entry(peer).or_insert(Budget {
            tokens: burst,
            faults_left: FAULT_BUDGET,
            at: now,
        });
        let secs = now.saturating_duration_since(b.at).as_secs_f64();
        b.tokens = (b.tokens + secs * rate).min(burst);
        b.faults_left = (b.faults_left + secs * FAULT_REFILL_PER_SEC).min(FAULT_BUDGET);
        b.at = now;
        b
    }

    fn fault(&mut self, peer: PeerId, cost: f64, now: Instant) -> Verdict {
        let b = self.budget(peer, now);
        b.faults_left -= cost;
        if b.faults_left <= 0.0 {
            Verdict::Ban
        } else {
            Verdict::Pass
        }
    }

    /// A gossip message from `peer` arrived.
    pub fn on_message(&mut self, peer: PeerId, now: Instant) -> Verdict {
        let b = self.budget(peer, now);
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            return Verdict::Pass;
        }
        match self.fault(peer, OVER_RATE_COST, now) {
            Verdict::Ban => Verdict::Ban,
            _ => Verdict::Drop,
        }
    }

    /// `peer` sent an invalid envelope.
    pub fn on_invalid(&mut self, peer: PeerId, now: Instant) -> Verdict {
        self.fault(peer, INVALID_COST, now)
    }

    /// Faults `peer` has committed and not yet been forgiven.
    pub fn faults(&self, peer: &PeerId) -> f64 {
        self.budgets
            .get(peer)
            .map_or(0.0, |b| FAULT_BUDGET - b.faults_left)
    }

    /// The gossipsub application score for `peer`: minus its unforgiven faults.
    pub fn score(&self, peer: &PeerId) -> f64 {
        -self.faults(peer)
    }

    /// Bans `peer` from `now` for [`BAN`].
    pub fn ban(&mut self, peer: PeerId, now: Instant) {
        self.budgets.remove(&peer);
        self.bans.insert(peer, now + BAN);
    }

    /// Whether `peer` is banned at `now`.
    pub fn is_banned(&self, peer: &PeerId, now: Instant) -> bool {
        self.bans.get(peer).is_some_and(|&until| until > now)
    }

    /// Peers whose ban ended by `now` (forgotten here; the caller lifts the rest).
    pub fn lift_expired(&mut self, now: Instant) -> Vec<PeerId> {
        let done: Vec<PeerId> = self
            .bans
            .iter()
            .filter(|(_, &until)| until <= now)
            .map(|(p, _)| *p)
            .collect();
        for p in &done {
            self.bans.remove(p);
        }
        done
    }

    /// Forgives faults for the time passed; returns the peers that had unforgiven
    /// faults, with their score now (0 once forgiven), for gossipsub.
    pub fn refresh(&mut self, now: Instant) -> Vec<(PeerId, f64)> {
        let owing: Vec<PeerId> = self
            .budgets
            .iter()
            .filter(|(_, b)| b.faults_left < FAULT_BUDGET)
            .map(|(p, _)| *p)
            .collect();
        owing
            .into_iter()
            .map(|p| {
                self.budget(p, now);
                (p, self.score(&p))
            })
            .collect()
    }

    /// Forgets a disconnected peer's budget once it is whole again (a peer that
    /// reconnects does not get a fresh budget while it still owes faults).
    pub fn forget(&mut self, peer: &PeerId, now: Instant) {
        if self.budget(*peer, now).faults_left >= FAULT_BUDGET {
            self.budgets.remove(peer);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_peer_within_the_rate_always_passes() {
        let mut g = Guard::new(100);
        let p = PeerId::random();
        let start = Instant::now();
        for i in 0..10_000u64 {
            // 100 per second exactly, for 100 seconds.
            let now = start + Duration::from_millis(i * 10);
            assert_eq!(g.on_message(p, now), Verdict::Pass, "message {i}");
        }
        assert_eq!(g.faults(&p), 0.0);
    }

    #[test]
    fn a_burst_is_dropped_beyond_the_bucket_and_forgiven() {
        let mut g = Guard::new(100);
        let p = PeerId::random();
        let now = Instant::now();
        let verdicts: Vec<_> = (0..400).map(|_| g.on_message(p, now)).collect();
        assert!(verdicts[..100].iter().all(|v| *v == Verdict::Pass));
        assert!(verdicts[100..].iter().all(|v| *v == Verdict::Drop));
        assert!(g.faults(&p) > 0.0 && g.score(&p) < 0.0);
        let later = now + Duration::from_secs(60);
        assert_eq!(g.refresh(later), [(p, 0.0)], "forgiven after a minute");
        assert!(g.refresh(later).is_empty());
        assert_eq!(g.on_message(p, later), Verdict::Pass);
    }

    #[test]
    fn a_flooder_is_banned_within_a_second_and_stays_banned() {
        let mut g = Guard::new(2_000);
        let p = PeerId::random();
        let start = Instant::now();
        let mut banned_at = None;
        // 10 000 messages a second.
        for i in 0..10_000u64 {
            let now = start + Duration::from_micros(i * 100);
            if g.on_message(p, now) == Verdict::Ban {
                banned_at = Some(now - start);
                g.ban(p, now);
                break;
            }
        }
        let after = banned_at.expect("never banned");
        assert!(after < Duration::from_secs(1), "{after:?}");
        assert!(g.is_banned(&p, start + Duration::from_secs(60)));
        assert!(g.lift_expired(start + Duration::from_secs(60)).is_empty());
        assert_eq!(g.lift_expired(start + BAN + Duration::from_secs(1)), [p]);
        assert!(!g.is_banned(&p, start + BAN + Duration::from_secs(1)));
    }

    #[test]
    fn invalid_envelopes_spend_the_budget() {
        let mut g = Guard::new(2_000);
        let p = PeerId::random();
        let now = Instant::now();
        for _ in 0..99 {
            assert_eq!(g.on_invalid(p, now), Verdict::Pass);
        }
        assert_eq!(g.on_invalid(p, now), Verdict::Ban);
        // A reconnecting peer keeps its debt.
        let q = PeerId::random();
        g.on_invalid(q, now);
        g.forget(&q, now);
        assert_eq!(g.faults(&q), 1.0);
    }
}
