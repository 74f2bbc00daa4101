//! At most one log line per interval for a condition that can repeat on
//! every request (a missing client address, a full memory table): a flood
//! must not flood the logs too, and each line says how many went unreported.

use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug)]
pub(crate) struct LogThrottle {
    interval_secs: u64,
    /// Seconds (on the caller's clock) before which nothing is logged.
    next_at: AtomicU64,
    /// Occurrences since the last line.
    quiet: AtomicU64,
}

impl LogThrottle {
    pub(crate) const fn new(interval_secs: u64) -> Self {
        Self {
            interval_secs,
            next_at: AtomicU64::new(0),
            quiet: AtomicU64::new(0),
        }
    }

    /// `Some(occurrences since the last line)` when a line is due at
    /// `now_secs`; `None` (and the occurrence counted) otherwise.
    pub(crate) fn due(&self, now_secs: u64) -> Option<u64> {
        let next = self.next_at.load(Ordering::Relaxed);
        if now_secs < next
            || self
                .next_at
                .compare_exchange(
                    next,
                    now_secs.saturating_add(self.interval_secs),
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                )
                .is_err()
        {
            self.quiet.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        Some(self.quiet.swap(0, Ordering::Relaxed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_interval_with_the_count() {
        let log = LogThrottle::new(60);
        assert_eq!(log.due(1_000), Some(0), "the first one is logged at once");
        assert_eq!(log.due(1_000), None);
        assert_eq!(log.due(1_059), None);
        assert_eq!(log.due(1_060), Some(2), "then one a minute, with the count");
        assert_eq!(log.due(1_061), None);
        assert_eq!(log.due(5_000), Some(1));
    }

    #[test]
    fn the_first_line_at_time_zero_is_logged() {
        // The memory store counts from its own start: its first second is 0.
        let log = LogThrottle::new(10);
        assert_eq!(log.due(0), Some(0));
        assert_eq!(log.due(9), None);
        assert_eq!(log.due(10), Some(1));
    }
}
