//! What a full bounded table of the memory store does: it refuses the write
//! (fail closed), counts the refusal in a metric and warns — at most once
//! every ten seconds per table, so a flood cannot flood the logs too.

use std::time::Instant;

use crate::log_throttle::LogThrottle;
use crate::store::StoreError;

/// Least seconds between two warnings of one table.
const WARN_EVERY_SECS: u64 = 10;

pub(crate) struct FullAlarm {
    table: &'static str,
    base: Instant,
    log: LogThrottle,
}

impl FullAlarm {
    pub(crate) fn new(table: &'static str) -> Self {
        Self {
            table,
            base: Instant::now(),
            log: LogThrottle::new(WARN_EVERY_SECS),
        }
    }

    /// Counts one refused write and returns its error.
    pub(crate) fn raise(&self, capacity: usize) -> StoreError {
        metrics::counter!("tower_otp_store_full_total", "table" => self.table).increment(1);
        if let Some(unreported) = self.log.due(self.base.elapsed().as_secs()) {
            tracing::warn!(
                table = self.table,
                capacity,
                unreported,
                "memory store full: refusing new entries rather than evicting live ones \
                 (fail closed); raise the bound or use a shared store"
            );
        }
        StoreError::Full(self.table)
    }
}
