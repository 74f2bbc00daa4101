//! What a full bounded table of the memory store does: it refuses the write
//! (fail closed), counts the refusal in a metric and warns — at most once
//! every ten seconds per table, so a flood cannot flood the logs too.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::StoreError;

/// Least time between two warnings of one table.
const WARN_EVERY: Duration = Duration::from_secs(10);

pub(crate) struct FullAlarm {
    table: &'static str,
    base: Instant,
    /// When the last warning went out: ns since `base`, plus one (0 = never).
    last: AtomicU64,
}

impl FullAlarm {
    pub(crate) fn new(table: &'static str) -> Self {
        Self {
            table,
            base: Instant::now(),
            last: AtomicU64::new(0),
        }
    }

    /// Counts one refused write and returns its error.
    pub(crate) fn raise(&self, capacity: usize) -> StoreError {
        metrics::counter!("tower_otp_store_full_total", "table" => self.table).increment(1);
        let now = u64::try_from(self.base.elapsed().as_nanos())
            .unwrap_or(u64::MAX)
            .saturating_add(1);
        let last = self.last.load(Ordering::Relaxed);
        let due = last == 0 || now.saturating_sub(last) >= WARN_EVERY.as_nanos() as u64;
        if due
            && self
                .last
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            tracing::warn!(
                table = self.table,
                capacity,
                "memory store full: refusing new entries rather than evicting live ones \
                 (fail closed); raise the bound or use a shared store"
            );
        }
        StoreError::Full(self.table)
    }
}
