//! TTL sweeper timer: sleeps until the next expiry deadline in the store, and is
//! pulled earlier when a message that expires sooner is inserted.

use std::pin::Pin;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::time::{Instant, Sleep};

/// How long the sweeper sleeps when nothing is stored: a safety net only, since
/// every insert pulls the deadline in.
const IDLE_RECHECK: Duration = Duration::from_secs(60);

/// Current wall-clock time in Unix milliseconds (0 if the clock is before 1970).
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// The sweep deadline owned by the node event loop.
pub struct Sweeper {
    sleep: Pin<Box<Sleep>>,
    deadline_ms: Option<u64>,
}

impl Default for Sweeper {
    fn default() -> Self {
        Sweeper {
            sleep: Box::pin(tokio::time::sleep(IDLE_RECHECK)),
            deadline_ms: None,
        }
    }
}

impl Sweeper {
    /// Waits for the deadline. Cancel-safe: the sleep lives in `self`.
    pub async fn tick(&mut self) {
        self.sleep.as_mut().await;
    }

    /// Sets the deadline to the store's next expiry (after a sweep), or idles.
    pub fn reset(&mut self, next_expiry_ms: Option<u64>, now_ms: u64) {
        self.deadline_ms = next_expiry_ms;
        let wait = next_expiry_ms
            .map(|t| Duration::from_millis(t.saturating_sub(now_ms)))
            .unwrap_or(IDLE_RECHECK);
        self.sleep.as_mut().reset(Instant::now() + wait);
    }

    /// Pulls the deadline in if a newly stored message expires sooner.
    pub fn note_expiry(&mut self, expires_at_ms: u64, now_ms: u64) {
        if self.deadline_ms.is_none_or(|d| expires_at_ms < d) {
            self.reset(Some(expires_at_ms), now_ms);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn wakes_at_the_earliest_noted_expiry() {
        let mut s = Sweeper::default();
        let start = Instant::now();
        s.note_expiry(10_000, 0);
        s.note_expiry(2_000, 0);
        s.note_expiry(5_000, 0); // later than the current deadline: ignored
        s.tick().await;
        assert_eq!(start.elapsed(), Duration::from_secs(2));
    }
}
