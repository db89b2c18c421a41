//! Jittered periodic timers: each wait is drawn at random around its period, so
//! that nodes started in the same second (a drill, a site coming back after a power
//! cut) do not run their periodic work in the same instant, every period, for ever.
//! Aligned rounds made every node of a 50-node site send its receipt on the same
//! tick: 2 500 deliveries and their store writes at once, which stalled the site's
//! messages for up to 0.7 s every 21 s (issue 7, README hazard H33).

use rand::Rng;
use std::pin::Pin;
use std::time::Duration;
use tokio::time::{Instant, Sleep};

/// How far a wait may stray from its period, as a share of it: waits are uniform
/// in period × [1 − SPREAD, 1 + SPREAD), so the mean stays the period.
pub(super) const SPREAD: f64 = 0.25;

/// `period` scaled by a factor in [1 − SPREAD, 1 + SPREAD), picked by `u` in [0, 1).
pub(super) fn jittered(period: Duration, u: f64) -> Duration {
    period.mul_f64(1.0 - SPREAD + 2.0 * SPREAD * u.clamp(0.0, 1.0))
}

/// A timer that first fires at a random point of its first period, then after
/// [`jittered`] waits measured from each fire (a late fire delays the next one).
#[derive(Debug)]
pub(super) struct Jittered {
    period: Duration,
    sleep: Pin<Box<Sleep>>,
}

impl Jittered {
    /// A timer of `period`; its first fire falls uniformly in [0, period).
    pub(super) fn new(period: Duration) -> Jittered {
        let first = period.mul_f64(rand::thread_rng().gen::<f64>());
        Jittered {
            period,
            sleep: Box::pin(tokio::time::sleep(first)),
        }
    }

    /// Waits for the next fire. Cancel-safe: a wait dropped in a `select!` keeps
    /// its deadline, and the next deadline is set in the same poll as the fire.
    pub(super) async fn tick(&mut self) {
        self.sleep.as_mut().await;
        let wait = jittered(self.period, rand::thread_rng().gen::<f64>());
        self.sleep.as_mut().reset(Instant::now() + wait);
    }
}

/// The most of `times` (offsets from one start) that fall within any `window`:
/// how bunched up a set of fires is. For the tests of spreading.
#[cfg(test)]
pub(super) fn most_within(times: &[Duration], window: Duration) -> usize {
    times
        .iter()
        .map(|a| {
            times
                .iter()
                .filter(|b| **b >= *a && **b - *a < window)
                .count()
        })
        .max()
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_stay_within_the_spread_and_average_the_period() {
        let p = Duration::from_secs(10);
        assert_eq!(jittered(p, 0.0), p.mul_f64(1.0 - SPREAD));
        assert_eq!(jittered(p, 0.5), p);
        assert_eq!(jittered(p, 1.0), p.mul_f64(1.0 + SPREAD));
        assert_eq!(
            jittered(p, 7.0),
            jittered(p, 1.0),
            "out of range is clamped"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn timers_started_together_fire_apart_and_keep_their_mean_period() {
        let period = Duration::from_secs(10);
        let start = Instant::now();
        // Twenty timers started in the same instant, driven side by side.
        let fires: Vec<Vec<Duration>> = futures::future::join_all((0..20).map(|_| {
            let mut t = Jittered::new(period);
            async move {
                let mut at = Vec::new();
                for _ in 0..10 {
                    t.tick().await;
                    at.push(Instant::now() - start);
                }
                at
            }
        }))
        .await;
        for at in &fires {
            assert!(at[0] < period, "first fire within the first period: {at:?}");
            // tokio's timer rounds a deadline up to the next millisecond.
            let tick = Duration::from_millis(1);
            for w in at.windows(2) {
                let gap = w[1] - w[0];
                assert!(gap >= period.mul_f64(1.0 - SPREAD), "{gap:?}");
                assert!(gap < period.mul_f64(1.0 + SPREAD) + tick, "{gap:?}");
            }
        }
        // Their tenth fires are spread out (an unjittered interval fires all twenty
        // in the same instant).
        let tenth: Vec<Duration> = fires.iter().map(|at| at[9]).collect();
        let most_in_one_second = most_within(&tenth, Duration::from_secs(1));
        assert!(most_in_one_second <= 8, "{tenth:?}");
        let mean = tenth.iter().sum::<Duration>() / 20;
        assert!(mean > period * 8 && mean < period * 11, "{mean:?}");
    }
}
