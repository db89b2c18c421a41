//! The delivery-latency histogram of P1 messages: how long an immediate-priority
//! message took from its author's clock (`created_at_ms`) to this node's store.
//! `status` reports it and `/metrics` exports it as a Prometheus histogram.

use serde::{Deserialize, Serialize};

/// Upper bounds of the buckets, milliseconds: from a LAN hop (50 ms) to a
/// catch-up sync after a long partition (30 min); slower ones count only in the
/// total, as the implicit `+Inf` bucket.
pub const LATENCY_BOUNDS_MS: [u64; 12] = [
    50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 30_000, 60_000, 300_000, 1_800_000,
];

/// A latency histogram with the fixed [`LATENCY_BOUNDS_MS`] buckets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LatencyHistogram {
    /// Cumulative counts: `buckets[i]` observations took at most
    /// `LATENCY_BOUNDS_MS[i]` ms (Prometheus `le` semantics).
    pub buckets: Vec<LatencyBucket>,
    /// Observations in all.
    pub count: u64,
    /// Sum of all observations, milliseconds.
    pub sum_ms: u64,
}

/// One cumulative bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LatencyBucket {
    /// Upper bound, milliseconds.
    pub le_ms: u64,
    /// Observations at most `le_ms`.
    pub count: u64,
}

impl Default for LatencyHistogram {
    fn default() -> Self {
        LatencyHistogram {
            buckets: LATENCY_BOUNDS_MS
                .iter()
                .map(|&le_ms| LatencyBucket { le_ms, count: 0 })
                .collect(),
            count: 0,
            sum_ms: 0,
        }
    }
}

impl LatencyHistogram {
    /// Records one latency. An author's clock ahead of ours gives 0 ms, not a
    /// negative value.
    pub fn observe_ms(&mut self, latency_ms: u64) {
        for b in self.buckets.iter_mut().filter(|b| latency_ms <= b.le_ms) {
            b.count += 1;
        }
        self.count += 1;
        self.sum_ms = self.sum_ms.saturating_add(latency_ms);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_cumulative_and_slow_ones_count_only_in_the_total() {
        let mut h = LatencyHistogram::default();
        h.observe_ms(40);
        h.observe_ms(700);
        h.observe_ms(3_600_000);
        assert_eq!(h.buckets[0].count, 1);
        assert_eq!(
            h.buckets[4],
            LatencyBucket {
                le_ms: 1_000,
                count: 2
            }
        );
        assert_eq!(h.buckets.last().map(|b| b.count), Some(2));
        assert_eq!((h.count, h.sum_ms), (3, 3_600_740));
    }
}
