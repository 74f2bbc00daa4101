//! Time source.
//!
//! Every expiry, window and token lifetime in `tower-otp` is computed from a
//! [`Clock`] passed in by the caller, never from a hidden `SystemTime::now()`.
//! Production code uses [`SystemClock`]; tests use [`ManualClock`] and move
//! time forward explicitly, so expiry is tested without sleeping.
//!
//! ```
//! use std::time::Duration;
//! use tower_otp::clock::{Clock, ManualClock};
//!
//! let clock = ManualClock::default();
//! let before = clock.now();
//! clock.advance(Duration::from_secs(600));
//! assert_eq!(clock.now().duration_since(before).unwrap(), Duration::from_secs(600));
//! ```

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A source of wall-clock time.
pub trait Clock: Send + Sync + fmt::Debug + 'static {
    /// The current time.
    fn now(&self) -> SystemTime;

    /// The current time in microseconds since the Unix epoch, what rate
    /// limits count in. A clock that can read it without going through
    /// `SystemTime` overrides this.
    fn now_us(&self) -> u64 {
        unix_micros(self.now())
    }
}

/// The system's wall clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// The system's wall clock as of the kernel's last timer tick: a few
/// nanoseconds to read instead of a few tens, at the resolution of one tick
/// ([`CoarseClock::resolution`], 1–10 ms on Linux).
///
/// Right wherever time is compared at a coarser grain than a tick: token
/// expiry (seconds) is [`JwtLayer`](crate::jwt::JwtLayer)'s default, and
/// [`RateLimitLayer`](crate::rate_limit::RateLimitLayer) uses it when every
/// policy's burst absorbs a tick's worth of requests. Reads
/// `CLOCK_REALTIME_COARSE` on Linux; elsewhere it is [`SystemClock`].
#[derive(Clone, Copy, Debug, Default)]
pub struct CoarseClock;

impl CoarseClock {
    /// How far behind the precise clock a reading may be.
    pub fn resolution() -> Duration {
        coarse::resolution()
    }
}

impl Clock for CoarseClock {
    fn now(&self) -> SystemTime {
        coarse::now()
    }

    fn now_us(&self) -> u64 {
        coarse::now_us()
    }
}

#[cfg(target_os = "linux")]
mod coarse {
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    use rustix::time::{ClockId, Timespec, clock_getres, clock_gettime};

    /// `None` for a time before the epoch.
    fn duration(ts: Timespec) -> Option<Duration> {
        Some(Duration::new(
            u64::try_from(ts.tv_sec).ok()?,
            u32::try_from(ts.tv_nsec).ok()?,
        ))
    }

    pub(super) fn now() -> SystemTime {
        duration(clock_gettime(ClockId::RealtimeCoarse))
            .and_then(|since_epoch| UNIX_EPOCH.checked_add(since_epoch))
            .unwrap_or_else(SystemTime::now)
    }

    /// Straight from the `timespec`: the round trip through `SystemTime`
    /// costs more than reading this clock.
    pub(super) fn now_us() -> u64 {
        let ts = clock_gettime(ClockId::RealtimeCoarse);
        match (u64::try_from(ts.tv_sec), u64::try_from(ts.tv_nsec)) {
            (Ok(secs), Ok(nanos)) => secs.saturating_mul(1_000_000).saturating_add(nanos / 1_000),
            _ => super::unix_micros(SystemTime::now()),
        }
    }

    pub(super) fn resolution() -> Duration {
        // Unknown: assume the coarsest common tick (HZ=100).
        duration(clock_getres(ClockId::RealtimeCoarse)).unwrap_or(Duration::from_millis(10))
    }
}

#[cfg(not(target_os = "linux"))]
mod coarse {
    use std::time::{Duration, SystemTime};

    pub(super) fn now() -> SystemTime {
        SystemTime::now()
    }

    pub(super) fn now_us() -> u64 {
        super::unix_micros(SystemTime::now())
    }

    pub(super) fn resolution() -> Duration {
        Duration::ZERO
    }
}

/// A clock that only moves when told to; clones share the same time.
///
/// Starts at 2025-01-01T00:00:00Z unless built with [`ManualClock::at`].
#[derive(Clone)]
pub struct ManualClock {
    micros: Arc<AtomicU64>,
}

impl ManualClock {
    /// A clock set to `time`.
    pub fn at(time: SystemTime) -> Self {
        Self {
            micros: Arc::new(AtomicU64::new(unix_micros(time))),
        }
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        let by = u64::try_from(by.as_micros()).unwrap_or(u64::MAX);
        self.micros.fetch_add(by, Ordering::SeqCst);
    }

    /// Sets the clock to `time`.
    pub fn set(&self, time: SystemTime) {
        self.micros.store(unix_micros(time), Ordering::SeqCst);
    }
}

impl Default for ManualClock {
    fn default() -> Self {
        Self::at(UNIX_EPOCH + Duration::from_secs(1_735_689_600))
    }
}

impl fmt::Debug for ManualClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ManualClock")
            .field("unix_micros", &self.micros.load(Ordering::SeqCst))
            .finish()
    }
}

impl Clock for ManualClock {
    fn now(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_micros(self.micros.load(Ordering::SeqCst))
    }

    fn now_us(&self) -> u64 {
        self.micros.load(Ordering::SeqCst)
    }
}

impl<C: Clock + ?Sized> Clock for Arc<C> {
    fn now(&self) -> SystemTime {
        (**self).now()
    }

    fn now_us(&self) -> u64 {
        (**self).now_us()
    }
}

/// Microseconds since the Unix epoch; times before it count as 0. What
/// [`Clock::now_us`] returns and [`gcra`](crate::quota::gcra) counts in, for
/// store backends.
pub fn unix_micros(time: SystemTime) -> u64 {
    // u64 arithmetic saturating at u64::MAX, like `as_micros()` clamped, but
    // without u128 maths: this runs on every rate-limit decision.
    time.duration_since(UNIX_EPOCH)
        .map(|d| {
            d.as_secs()
                .saturating_mul(1_000_000)
                .saturating_add(u64::from(d.subsec_micros()))
        })
        .unwrap_or(0)
}

/// Whole seconds since the Unix epoch; times before it count as 0.
pub(crate) fn unix_secs(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// `d` in whole seconds, rounded *up*: a client told to wait must never read
/// `0` while it is still refused.
pub(crate) fn ceil_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

/// Year, month, day of the `days`-th day after 1970-01-01 (proleptic
/// Gregorian; Howard Hinnant's `civil_from_days`).
pub(crate) fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

/// The day number (days after 1970-01-01) of a proleptic Gregorian date,
/// the inverse of [`civil_from_days`]; `None` for a date that does not
/// exist or lies before 1970.
pub(crate) fn days_from_civil(year: u64, month: u64, day: u64) -> Option<u64> {
    let leap = year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400));
    let month_days = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    let days_in_month = *month_days.get(usize::try_from(month.checked_sub(1)?).ok()?)?;
    if !(1970..=9999).contains(&year) || day == 0 || day > days_in_month {
        return None;
    }
    let y = if month <= 2 { year - 1 } else { year };
    let era = y / 400;
    let yoe = y % 400;
    let mp = if month > 2 { month - 3 } else { month + 9 };
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Some(era * 146_097 + doe - 719_468)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ceil_secs_rounds_up() {
        assert_eq!(ceil_secs(Duration::ZERO), 0);
        assert_eq!(ceil_secs(Duration::from_millis(1)), 1);
        assert_eq!(ceil_secs(Duration::from_secs(2)), 2);
        assert_eq!(ceil_secs(Duration::from_millis(2001)), 3);
    }

    #[test]
    fn manual_clock_clones_share_time() {
        let a = ManualClock::default();
        let b = a.clone();
        a.advance(Duration::from_secs(5));
        assert_eq!(a.now(), b.now());
        assert_eq!(unix_secs(b.now()), 1_735_689_605);
    }

    #[test]
    fn coarse_clock_trails_the_precise_one_by_at_most_a_tick() {
        let resolution = CoarseClock::resolution();
        assert!(resolution <= Duration::from_millis(100), "{resolution:?}");
        for _ in 0..1_000 {
            let before = SystemTime::now();
            let coarse = CoarseClock.now();
            let after = SystemTime::now();
            assert!(coarse <= after, "coarse clock ahead of the precise one");
            let behind = before.duration_since(coarse).unwrap_or_default();
            // A tick, plus slack for a descheduled test thread.
            assert!(
                behind <= resolution + Duration::from_millis(50),
                "{behind:?}"
            );
        }
    }

    #[test]
    fn now_us_agrees_with_now() {
        let manual = ManualClock::default();
        assert_eq!(manual.now_us(), unix_micros(manual.now()));
        let shared: Arc<dyn Clock> = Arc::new(manual.clone());
        manual.advance(Duration::from_micros(7));
        assert_eq!(shared.now_us(), unix_micros(manual.now()));
        for _ in 0..100 {
            let before = unix_micros(CoarseClock.now());
            let us = CoarseClock.now_us();
            let after = unix_micros(CoarseClock.now());
            assert!(before <= us && us <= after, "{before} {us} {after}");
        }
    }
}
