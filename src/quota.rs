//! Rate quotas and the GCRA decision every store makes atomically.
//!
//! A [`Quota`] is "`limit` requests per `period`, up to `burst` at once".
//! Stores keep one number per key — the theoretical arrival time (TAT) of the
//! next request — and [`gcra`] turns it into a [`RateDecision`]. The memory
//! store runs this function inside an atomic cell update; the Redis store runs
//! the same arithmetic in Lua; the store conformance suite checks that both
//! agree.

use std::time::Duration;

use crate::error::ConfigError;

/// `limit` requests per `period`, with at most `burst` back to back.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Quota {
    limit: u32,
    period: Duration,
    burst: u32,
    /// `period / limit` in µs (≥ 1), computed once: every decision needs it.
    interval_us: u64,
}

impl Quota {
    /// `limit` per `period`; the burst defaults to `limit`.
    pub const fn new(limit: u32, period: Duration) -> Self {
        // Saturating u64 maths, like `as_micros()` clamped to u64.
        let period_us = period
            .as_secs()
            .saturating_mul(1_000_000)
            .saturating_add(period.subsec_micros() as u64);
        let per = if limit == 0 { 1 } else { limit as u64 };
        let interval = period_us / per;
        Self {
            limit,
            period,
            burst: limit,
            interval_us: if interval == 0 { 1 } else { interval },
        }
    }

    /// `limit` per second.
    pub const fn per_second(limit: u32) -> Self {
        Self::new(limit, Duration::from_secs(1))
    }

    /// `limit` per minute.
    pub const fn per_minute(limit: u32) -> Self {
        Self::new(limit, Duration::from_secs(60))
    }

    /// `limit` per hour.
    pub const fn per_hour(limit: u32) -> Self {
        Self::new(limit, Duration::from_secs(3600))
    }

    /// Allows `burst` requests back to back (default: `limit`).
    #[must_use]
    pub const fn with_burst(mut self, burst: u32) -> Self {
        self.burst = burst;
        self
    }

    /// Requests per period.
    pub const fn limit(&self) -> u32 {
        self.limit
    }

    /// The period.
    pub const fn period(&self) -> Duration {
        self.period
    }

    /// Requests allowed back to back.
    pub const fn burst(&self) -> u32 {
        self.burst
    }

    /// Time between two requests at the sustained rate, in microseconds (≥ 1).
    pub fn emission_interval_us(&self) -> u64 {
        self.interval_us
    }

    /// Refuses a zero limit, zero burst or zero period (the builders that
    /// take a quota call it, naming their `setting`).
    pub(crate) fn validate(&self, setting: &'static str) -> Result<(), ConfigError> {
        if self.limit == 0 || self.burst == 0 {
            return Err(ConfigError::new(
                setting,
                "limit and burst must be at least 1",
            ));
        }
        if self.period.is_zero() {
            return Err(ConfigError::new(setting, "period must be longer than zero"));
        }
        Ok(())
    }
}

/// What a store answered for one request against one quota.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateDecision {
    /// Whether the request may proceed (and was counted).
    pub allowed: bool,
    /// Requests that would still be allowed right now.
    pub remaining: u32,
    /// When refused: how long until one request is allowed again.
    pub retry_after: Duration,
    /// How long until the quota is full again.
    pub reset_after: Duration,
}

/// One GCRA step in microseconds since the Unix epoch.
///
/// Given the stored TAT (`None` when the key is unknown or expired), returns
/// the TAT to store (`None` when refused: nothing changes) and the decision.
/// The stored entry may expire `reset_after` from now.
pub fn gcra(stored_tat: Option<u64>, now_us: u64, quota: &Quota) -> (Option<u64>, RateDecision) {
    let t = quota.emission_interval_us();
    let tau = t.saturating_mul(u64::from(quota.burst.max(1)));
    let tat = stored_tat.map_or(now_us, |s| s.max(now_us));
    let new_tat = tat.saturating_add(t);
    let wait = new_tat - now_us;
    if wait > tau {
        let decision = RateDecision {
            allowed: false,
            remaining: 0,
            retry_after: Duration::from_micros(wait - tau),
            reset_after: Duration::from_micros(tat - now_us),
        };
        (None, decision)
    } else {
        let remaining = u32::try_from((tau - wait) / t).unwrap_or(u32::MAX);
        let decision = RateDecision {
            allowed: true,
            remaining,
            retry_after: Duration::ZERO,
            reset_after: Duration::from_micros(wait),
        };
        (Some(new_tat), decision)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(quota: Quota, times_us: &[u64]) -> Vec<bool> {
        let mut tat = None;
        times_us
            .iter()
            .map(|&now| {
                let (next, d) = gcra(tat, now, &quota);
                if next.is_some() {
                    tat = next;
                }
                d.allowed
            })
            .collect()
    }

    #[test]
    fn burst_then_refuse() {
        let q = Quota::per_hour(3);
        assert_eq!(run(q, &[0, 1, 2, 3]), [true, true, true, false]);
    }

    #[test]
    fn refills_at_the_sustained_rate() {
        let q = Quota::per_hour(3); // one every 20 minutes
        let twenty_min = 20 * 60 * 1_000_000;
        assert_eq!(
            run(q, &[0, 0, 0, 0, twenty_min - 1, twenty_min]),
            [true, true, true, false, false, true]
        );
    }

    #[test]
    fn retry_after_and_remaining() {
        let q = Quota::per_minute(2);
        let (tat, d) = gcra(None, 0, &q);
        assert!(d.allowed);
        assert_eq!(d.remaining, 1);
        assert_eq!(d.reset_after, Duration::from_secs(30));
        let (tat, d) = gcra(tat, 0, &q);
        assert_eq!(d.remaining, 0);
        let (none, d) = gcra(tat, 10_000_000, &q);
        assert!(none.is_none());
        assert!(!d.allowed);
        assert_eq!(d.retry_after, Duration::from_secs(20));
    }

    #[test]
    fn emission_interval() {
        assert_eq!(Quota::per_hour(3).emission_interval_us(), 1_200_000_000);
        assert_eq!(Quota::per_second(u32::MAX).emission_interval_us(), 1);
        assert_eq!(
            Quota::new(0, Duration::from_millis(5)).emission_interval_us(),
            5_000
        );
        assert_eq!(
            Quota::new(1, Duration::MAX).emission_interval_us(),
            u64::MAX,
            "saturates like as_micros() clamped"
        );
        assert_eq!(
            Quota::per_minute(7).with_burst(1).emission_interval_us(),
            8_571_428
        );
    }

    #[test]
    fn validate_refuses_zero() {
        assert!(Quota::per_hour(0).validate("x").is_err());
        assert!(Quota::new(1, Duration::ZERO).validate("x").is_err());
        assert!(Quota::per_hour(1).with_burst(0).validate("x").is_err());
        assert!(Quota::per_hour(1).validate("x").is_ok());
    }
}
