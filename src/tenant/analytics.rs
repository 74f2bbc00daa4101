//! [`Analytics`]: per-tenant request counts, outcomes and latency quantiles
//! over a recent window (the admin API's `GET /admin/tenants/{id}/analytics`),
//! aggregated in memory on each instance and merged in the store.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

use serde::Serialize;
use tokio::task::JoinHandle;

use super::sketch::LatencySketch;
use super::usage::{self, Day, USAGE_FIELDS, UsageField};
use crate::clock::{Clock, SystemClock, ceil_secs, unix_secs};
use crate::error::ConfigError;
use crate::store::{CounterAdd, StoreError, TenantStore};

/// The length of one slot: a counter group per tenant and minute.
pub const SLOT_SECS: u64 = 60;

/// The longest window a report covers unless configured (one hour).
pub const DEFAULT_MAX_WINDOW: Duration = Duration::from_secs(3600);

/// How many tenants may have unwritten records unless configured.
pub const DEFAULT_MAX_TENANTS: usize = 10_000;

/// The longest window that can be configured (a day: 1 440 groups read per
/// report).
const MAX_WINDOW_LIMIT: Duration = Duration::from_secs(86_400);

/// Kept beyond the window: flush delay and clock skew between instances.
const TTL_MARGIN: Duration = Duration::from_secs(120);

/// Distinct problem codes per tenant and slot; further ones count as `other`.
const MAX_CODES: usize = 32;

/// What an unknown or malformed problem code counts as.
const OTHER: &str = "other";

/// Counter fields of a slot group (besides the sketch's `l…` fields).
const REQUESTS: &str = "requests";
const OK: &str = "ok";
const ERROR_PREFIX: &str = "e:";

/// Request analytics of many tenants: each instance aggregates what it
/// serves in memory and [`flush`](Self::flush)es it to a [`TenantStore`] as
/// counters, so a [`report`](Self::report) merges every instance's share.
///
/// For each tenant and one-minute slot (`unix_secs / 60`, on the
/// configured [`Clock`]), the counter group `a:<slot>` holds `requests`,
/// `ok`, `e:<code>` per problem code, and the `l<i>` buckets of a
/// [`LatencySketch`]: adding counters is an exact merge, so any number of
/// instances write into one group. A record goes into the slot of the time
/// it is recorded, so a minute's share is never split or moved.
///
/// A report covers the last n = ⌈window / 60 s⌉ slots, the current
/// (partial) one included: between n − 1 and n minutes of history, and
/// `window_secs` says n × 60. It has this instance's records up to the
/// moment (it flushes first) and the other instances' up to their last
/// flush: at most one [flusher](Self::spawn_flusher) interval behind.
///
/// ```
/// # #[cfg(feature = "moka")] {
/// use std::time::Duration;
/// use tower_otp::clock::ManualClock;
/// use tower_otp::store::MemoryStore;
/// use tower_otp::tenant::Analytics;
///
/// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
/// let analytics = Analytics::builder(MemoryStore::new())
///     .clock(ManualClock::default())
///     .build()?;
/// analytics.record("acme", Duration::from_millis(12), Ok(()));
/// analytics.record("acme", Duration::from_millis(30), Err("rate_limited"));
/// let report = analytics.report("acme", Duration::from_secs(3600)).await?;
/// assert_eq!(report.requests, 2);
/// assert_eq!(report.success_rate, 0.5);
/// assert_eq!(report.errors["rate_limited"], 1);
/// assert_eq!(
///     serde_json::to_value(&report)?["latency_ms"]["p99"].as_f64().unwrap().round(),
///     30.0
/// );
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// # }
/// ```
///
/// # Bounded memory, and what can be lost
///
/// Records wait in memory until the next flush (run one with
/// [`spawn_flusher`](Self::spawn_flusher), and call `flush` before
/// shutting down: dropping the last clone drops what is unwritten). At most
/// `max_tenants` tenants (default 10 000) have unwritten records at a time,
/// those of a flush under way included; a record for one more tenant is
/// dropped and counted in [`dropped`](Self::dropped) and the metric
/// `tower_otp_analytics_dropped_total{reason="tenants"}` — `record` stays
/// synchronous and never waits for the store. A pending tenant has at most
/// one aggregate per slot of the longest window, plus one (older slots are
/// dropped at flush, below), of at most 2 220 sketch buckets (a few hundred
/// for real latencies) and 33 error codes.
///
/// A flush that fails keeps everything it did not write, to be written by
/// the next one, and counts `tower_otp_analytics_flush_errors_total`. Each
/// tenant's slots are written in one atomic
/// [`add_counters`](TenantStore::add_counters); a call that fails after the
/// store applied it (a Redis timeout at the wrong moment) is written again,
/// so such a tenant's minute can count twice: delivery is at least once.
/// A slot older than the longest window is dropped at flush instead of
/// written, since no report can include it any more (`reason="stale"`);
/// so is what the store refuses as [`StoreError::Invalid`] (a tenant id it
/// cannot hold: `reason="invalid"`), which no retry could write.
pub struct Analytics<S> {
    inner: Arc<Inner<S>>,
}

impl<S: fmt::Debug> fmt::Debug for Analytics<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.fmt(f)
    }
}

impl<S> Clone for Analytics<S> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

/// Settings of an [`Analytics`], from [`Analytics::builder`].
#[derive(Debug)]
#[must_use]
pub struct AnalyticsBuilder<S> {
    store: S,
    clock: Arc<dyn Clock>,
    max_window: Duration,
    max_tenants: usize,
}

impl<S: TenantStore> AnalyticsBuilder<S> {
    /// The clock that decides slots and windows (default: the system clock).
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// The longest window a report covers, 60 s – 24 h (default one hour):
    /// slot groups are kept that long, plus two minutes. A report asked for
    /// more covers this much.
    pub fn max_window(mut self, window: Duration) -> Self {
        self.max_window = window;
        self
    }

    /// How many tenants may have unwritten records at a time (default
    /// 10 000, at least 1).
    pub fn max_tenants(mut self, n: usize) -> Self {
        self.max_tenants = n;
        self
    }

    /// Checks the settings.
    pub fn build(self) -> Result<Analytics<S>, ConfigError> {
        if !(Duration::from_secs(SLOT_SECS)..=MAX_WINDOW_LIMIT).contains(&self.max_window) {
            return Err(ConfigError::new(
                "analytics max_window",
                "must be between 60 seconds and 24 hours",
            ));
        }
        if self.max_tenants == 0 {
            return Err(ConfigError::new(
                "analytics max_tenants",
                "must be at least 1",
            ));
        }
        Ok(self.finish())
    }

    fn finish(self) -> Analytics<S> {
        Analytics {
            inner: Arc::new(Inner {
                store: self.store,
                clock: self.clock,
                window_slots: window_slots(self.max_window),
                max_tenants: self.max_tenants,
                pending: Mutex::default(),
                dropped: AtomicU64::new(0),
            }),
        }
    }
}

struct Inner<S> {
    store: S,
    clock: Arc<dyn Clock>,
    /// Slots in the longest window.
    window_slots: u64,
    max_tenants: usize,
    pending: Mutex<Pending>,
    /// Requests left out (see `dropped`).
    dropped: AtomicU64,
}

impl<S: fmt::Debug> fmt::Debug for Inner<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Not the pending aggregates: thousands of them.
        let pending = lock(&self.pending);
        f.debug_struct("Analytics")
            .field("store", &self.store)
            .field("clock", &self.clock)
            .field("window_slots", &self.window_slots)
            .field("max_tenants", &self.max_tenants)
            .field("pending_tenants", &pending.tenants.len())
            .field("in_flight", &pending.in_flight)
            .field("dropped", &self.dropped.load(Ordering::Relaxed))
            .finish()
    }
}

/// What waits for the next flush.
#[derive(Debug, Default)]
struct Pending {
    /// Per tenant, its slots with unwritten records (usually one, two
    /// around a minute's turn, more while the store fails).
    tenants: HashMap<String, TenantPending>,
    /// Tenants taken by flushes under way: they count against the bound,
    /// so putting back what a flush failed to write never exceeds it.
    in_flight: usize,
}

/// One tenant's unwritten records: request aggregates per slot, and usage
/// counter changes per UTC day (see [`Analytics::count_usage`]).
#[derive(Debug, Default)]
struct TenantPending {
    slots: Vec<(u64, Aggregate)>,
    usage: Vec<(Day, [i64; USAGE_FIELDS.len()])>,
}

impl TenantPending {
    /// Requests in it (what dropping it loses from the analytics).
    fn requests(&self) -> u64 {
        self.slots.iter().map(|(_, a)| a.requests).sum()
    }

    fn add_usage(&mut self, day: Day, field: UsageField, delta: i64) {
        let i = USAGE_FIELDS.iter().position(|f| *f == field).unwrap_or(0);
        match self.usage.iter_mut().find(|(d, _)| *d == day) {
            Some((_, counts)) => counts[i] = counts[i].saturating_add(delta),
            None => {
                let mut counts = [0; USAGE_FIELDS.len()];
                counts[i] = delta;
                self.usage.push((day, counts));
            }
        }
    }
}

impl Pending {
    /// Merges `taken` of `tenant` back in (after a failed write).
    fn put_back(&mut self, tenant: String, taken: TenantPending) {
        let mine = self.tenants.entry(tenant).or_default();
        for (slot, aggregate) in taken.slots {
            match mine.slots.iter_mut().find(|(s, _)| *s == slot) {
                Some((_, kept)) => kept.merge(aggregate),
                None => mine.slots.push((slot, aggregate)),
            }
        }
        for (day, counts) in taken.usage {
            for (field, delta) in USAGE_FIELDS.iter().zip(counts) {
                mine.add_usage(day, *field, delta);
            }
        }
    }
}

/// Counts of one tenant and slot.
#[derive(Clone, Debug, Default, PartialEq)]
struct Aggregate {
    requests: u64,
    ok: u64,
    /// By problem code.
    errors: BTreeMap<String, u64>,
    latency: LatencySketch,
}

impl Aggregate {
    fn record(&mut self, latency: Duration, outcome: Result<(), &str>) {
        self.requests = self.requests.saturating_add(1);
        self.latency.record(latency);
        match outcome {
            Ok(()) => self.ok = self.ok.saturating_add(1),
            Err(code) => self.add_error(problem_code(code), 1),
        }
    }

    /// Counts `n` errors of `code`, as `other` once [`MAX_CODES`] codes are
    /// taken.
    fn add_error(&mut self, code: &str, n: u64) {
        let code = if self.errors.len() >= MAX_CODES && !self.errors.contains_key(code) {
            OTHER
        } else {
            code
        };
        match self.errors.get_mut(code) {
            Some(count) => *count = count.saturating_add(n),
            None => {
                self.errors.insert(code.to_owned(), n);
            }
        }
    }

    fn merge(&mut self, other: Self) {
        self.requests = self.requests.saturating_add(other.requests);
        self.ok = self.ok.saturating_add(other.ok);
        for (code, n) in &other.errors {
            self.add_error(code, *n);
        }
        self.latency.merge(&other.latency);
    }

    /// The counter fields of this aggregate, with their deltas.
    fn fields(&self) -> Vec<(String, i64)> {
        let delta = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        let mut fields = vec![(REQUESTS.to_owned(), delta(self.requests))];
        if self.ok > 0 {
            fields.push((OK.to_owned(), delta(self.ok)));
        }
        fields.extend(
            self.errors
                .iter()
                .map(|(code, n)| (format!("{ERROR_PREFIX}{code}"), delta(*n))),
        );
        fields.extend(self.latency.fields().map(|(f, n)| (f, delta(n))));
        fields
    }

    /// Adds a slot group as the store holds it. Unknown fields are skipped
    /// (a later version's); error codes are not capped here, a report shows
    /// them all.
    fn add_stored(&mut self, group: &[(String, i64)]) -> Result<(), StoreError> {
        for (field, n) in group {
            let n = || {
                u64::try_from(*n)
                    .map_err(|_| StoreError::Corrupt(format!("analytics counter {field} = {n}")))
            };
            if field == REQUESTS {
                self.requests = self.requests.saturating_add(n()?);
            } else if field == OK {
                self.ok = self.ok.saturating_add(n()?);
            } else if let Some(code) = field.strip_prefix(ERROR_PREFIX) {
                let count = self.errors.entry(code.to_owned()).or_default();
                *count = count.saturating_add(n()?);
            }
        }
        let sketch = LatencySketch::from_fields(group.iter().map(|(f, n)| (f.as_str(), *n)))
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        self.latency.merge(&sketch);
        Ok(())
    }
}

/// `code` if it is a problem code (`[a-z_]{1,40}`), else `other`: field
/// names stay short and few whatever callers pass.
fn problem_code(code: &str) -> &str {
    let valid =
        (1..=40).contains(&code.len()) && code.bytes().all(|b| b.is_ascii_lowercase() || b == b'_');
    if valid { code } else { OTHER }
}

/// Counts a request in its slot's aggregate among a tenant's `slots`.
fn record_in(
    slots: &mut Vec<(u64, Aggregate)>,
    slot: u64,
    latency: Duration,
    outcome: Result<(), &str>,
) {
    let i = match slots.iter().position(|(s, _)| *s == slot) {
        Some(i) => i,
        None => {
            slots.push((slot, Aggregate::default()));
            slots.len() - 1
        }
    };
    slots[i].1.record(latency, outcome);
}

fn slot_of(now: SystemTime) -> u64 {
    unix_secs(now) / SLOT_SECS
}

/// Slots a window covers: ⌈window / 60 s⌉, at least one.
fn window_slots(window: Duration) -> u64 {
    ceil_secs(window).div_ceil(SLOT_SECS).max(1)
}

fn group_name(slot: u64) -> String {
    format!("a:{slot}")
}

fn lock(pending: &Mutex<Pending>) -> MutexGuard<'_, Pending> {
    // Counts stay consistent even if a holder panicked: keep going.
    pending.lock().unwrap_or_else(PoisonError::into_inner)
}

fn count_dropped(dropped: &AtomicU64, reason: &'static str, requests: u64) {
    dropped.fetch_add(requests, Ordering::Relaxed);
    metrics::counter!("tower_otp_analytics_dropped_total", "reason" => reason).increment(requests);
}

/// What a flush took and has not written yet: put back on drop, so an
/// error, or the flush future being dropped, loses nothing.
struct Unwritten<'a> {
    pending: &'a Mutex<Pending>,
    rest: VecDeque<(String, TenantPending)>,
    taken: usize,
}

impl Drop for Unwritten<'_> {
    fn drop(&mut self) {
        let mut pending = lock(self.pending);
        pending.in_flight = pending.in_flight.saturating_sub(self.taken);
        for (tenant, slots) in self.rest.drain(..) {
            pending.put_back(tenant, slots);
        }
    }
}

impl<S: TenantStore> Analytics<S> {
    /// Analytics over `store` with the defaults: the system clock, a one-hour
    /// window, 10 000 pending tenants.
    pub fn new(store: S) -> Self {
        // The defaults need no checking.
        Self::builder(store).finish()
    }

    /// Settings beyond the defaults of [`new`](Self::new).
    pub fn builder(store: S) -> AnalyticsBuilder<S> {
        AnalyticsBuilder {
            store,
            clock: Arc::new(SystemClock),
            max_window: DEFAULT_MAX_WINDOW,
            max_tenants: DEFAULT_MAX_TENANTS,
        }
    }

    /// Counts one request of `tenant` that took `latency`: `Ok(())` when it
    /// succeeded, else `Err(code)` with its problem code (anything but
    /// `[a-z_]{1,40}` counts as `other`). Synchronous and cheap: a lock, a
    /// map lookup and a logarithm; nothing waits for the store.
    pub fn record(&self, tenant: &str, latency: Duration, outcome: Result<(), &str>) {
        let slot = slot_of(self.inner.clock.now());
        let mut pending = lock(&self.inner.pending);
        let Pending { tenants, in_flight } = &mut *pending;
        if let Some(mine) = tenants.get_mut(tenant) {
            record_in(&mut mine.slots, slot, latency, outcome);
        } else if tenants.len() + *in_flight < self.inner.max_tenants {
            let mine = tenants.entry(tenant.to_owned()).or_default();
            record_in(&mut mine.slots, slot, latency, outcome);
        } else {
            drop(pending);
            count_dropped(&self.inner.dropped, "tenants", 1);
        }
    }

    /// Changes `tenant`'s usage counter `field` by `delta` for today (UTC,
    /// on the configured clock), with the next flush: the day's and the
    /// month's counters then change in the same atomic store call as the
    /// tenant's analytics. Synchronous, like [`record`](Self::record); the
    /// same bound on pending tenants applies (a change past it is dropped
    /// and counted, `reason="tenants"`). Counters that must be exact at
    /// once — a quota's — are changed in the store directly instead
    /// ([`usage::reserve_message`](super::usage::reserve_message)).
    pub fn count_usage(&self, tenant: &str, field: UsageField, delta: i64) {
        let day = Day::of(self.inner.clock.now());
        let mut pending = lock(&self.inner.pending);
        let Pending { tenants, in_flight } = &mut *pending;
        if let Some(mine) = tenants.get_mut(tenant) {
            mine.add_usage(day, field, delta);
        } else if tenants.len() + *in_flight < self.inner.max_tenants {
            tenants
                .entry(tenant.to_owned())
                .or_default()
                .add_usage(day, field, delta);
        } else {
            drop(pending);
            metrics::counter!("tower_otp_analytics_dropped_total", "reason" => "usage")
                .increment(1);
        }
    }

    /// Writes every pending aggregate to the store, one
    /// [`add_counters`](TenantStore::add_counters) per tenant. On an error,
    /// what was not written stays pending (nothing is lost) and the error
    /// is returned; a tenant the store refuses as invalid is dropped and
    /// the flush goes on.
    pub async fn flush(&self) -> Result<(), StoreError> {
        self.inner.flush().await
    }

    /// `tenant`'s analytics over the last `window` (at most the configured
    /// longest window; rounded up to whole minutes, see [`Analytics`]):
    /// flushes first, so this instance's latest records count, then reads
    /// the window's slot groups in one [`counters`](TenantStore::counters)
    /// call and merges them. A failed flush fails the report (the store is
    /// out either way); what it did not write stays pending.
    pub async fn report(
        &self,
        tenant: &str,
        window: Duration,
    ) -> Result<AnalyticsReport, StoreError> {
        self.flush().await?;
        let inner = &self.inner;
        let now = inner.clock.now();
        let slots = window_slots(window).min(inner.window_slots);
        let current = slot_of(now);
        let names: Vec<String> = (current.saturating_sub(slots - 1)..=current)
            .map(group_name)
            .collect();
        let groups: Vec<&str> = names.iter().map(String::as_str).collect();
        let stored = inner.store.counters(tenant, &groups, now).await?;
        let mut total = Aggregate::default();
        for group in &stored {
            total.add_stored(group)?;
        }
        Ok(AnalyticsReport::new(slots * SLOT_SECS, &total))
    }

    /// Starts a task on the current tokio runtime that flushes every
    /// `every` and ends at its first tick after the last clone of this
    /// `Analytics` is dropped (it holds only a weak reference). A failed
    /// flush is logged at warn level and retried at the next tick. Errors
    /// outside a runtime or for a zero interval.
    pub fn spawn_flusher(&self, every: Duration) -> Result<JoinHandle<()>, ConfigError> {
        if every.is_zero() {
            return Err(ConfigError::new(
                "analytics flush interval",
                "must be more than zero",
            ));
        }
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| {
            ConfigError::new(
                "analytics flusher",
                "must be started inside a tokio runtime",
            )
        })?;
        let weak = Arc::downgrade(&self.inner);
        Ok(runtime.spawn(async move {
            let mut ticks = tokio::time::interval(every);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            // The first tick is immediate: there is nothing to write yet.
            ticks.tick().await;
            loop {
                ticks.tick().await;
                let Some(inner) = weak.upgrade() else { break };
                if let Err(e) = inner.flush().await {
                    tracing::warn!(error = %e, "analytics flush failed; kept for the next one");
                }
            }
        }))
    }

    /// Requests left out of the analytics so far: recorded while
    /// `max_tenants` other tenants were pending, in a slot that aged out of
    /// the window before it could be written, or for a tenant id the store
    /// refuses.
    pub fn dropped(&self) -> u64 {
        self.inner.dropped.load(Ordering::Relaxed)
    }
}

impl<S: TenantStore> Inner<S> {
    async fn flush(&self) -> Result<(), StoreError> {
        let now = self.clock.now();
        let mut unwritten = {
            let mut pending = lock(&self.pending);
            let taken = std::mem::take(&mut pending.tenants);
            pending.in_flight += taken.len();
            Unwritten {
                pending: &self.pending,
                taken: taken.len(),
                rest: taken.into_iter().collect(),
            }
        };
        // Slots no report can include any more are not written.
        let oldest = slot_of(now).saturating_sub(self.window_slots - 1);
        for (_, mine) in &mut unwritten.rest {
            mine.slots.retain(|(slot, aggregate)| {
                let keep = *slot >= oldest;
                if !keep {
                    count_dropped(&self.dropped, "stale", aggregate.requests);
                }
                keep
            });
        }
        while let Some((tenant, mine)) = unwritten.rest.front() {
            match self.write(tenant, mine, now).await {
                Ok(()) => {}
                // Never writable (a tenant id the store refuses): retrying
                // would fail every flush from now on.
                Err(StoreError::Invalid(why)) => {
                    count_dropped(&self.dropped, "invalid", mine.requests());
                    tracing::warn!(tenant = ?tenant, why, "analytics the store refuses, dropped");
                }
                Err(e) => {
                    metrics::counter!("tower_otp_analytics_flush_errors_total").increment(1);
                    return Err(e);
                }
            }
            unwritten.rest.pop_front();
        }
        Ok(())
    }

    /// One tenant's slots and usage changes, in one atomic store call.
    async fn write(
        &self,
        tenant: &str,
        mine: &TenantPending,
        now: SystemTime,
    ) -> Result<(), StoreError> {
        let slots = &mine.slots;
        let usage = usage::pending_adds(&mine.usage);
        if slots.is_empty() && usage.is_empty() {
            return Ok(());
        }
        // Slot groups live as long as the longest window, plus a margin.
        let ttl = Duration::from_secs(self.window_slots * SLOT_SECS) + TTL_MARGIN;
        let groups: Vec<(String, Vec<(String, i64)>)> = slots
            .iter()
            .map(|(slot, aggregate)| (group_name(*slot), aggregate.fields()))
            .collect();
        let adds: Vec<CounterAdd<'_>> = groups
            .iter()
            .flat_map(|(group, fields)| {
                fields.iter().map(move |(field, delta)| CounterAdd {
                    group,
                    field,
                    delta: *delta,
                    ttl,
                })
            })
            .chain(usage.iter().map(|c| c.add()))
            .collect();
        self.store.add_counters(tenant, &adds, now).await
    }
}

/// A tenant's analytics over a window, serialised as the admin API answers
/// it: `{"window_secs","requests","success_rate","latency_ms":{"p50","p95","p99"},"errors":{"<code>":n}}`.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[non_exhaustive]
pub struct AnalyticsReport {
    /// The window covered, in seconds (whole minutes).
    pub window_secs: u64,
    /// Requests recorded in the window.
    pub requests: u64,
    /// The fraction of them that succeeded, in `[0, 1]`; 0 when there were
    /// none (with `requests` 0 beside it, and no latency).
    pub success_rate: f64,
    /// Latency percentiles, `null` when there were no requests.
    pub latency_ms: Option<LatencyPercentiles>,
    /// Failed requests by problem code.
    pub errors: BTreeMap<String, u64>,
}

/// Latency percentiles in milliseconds, each within 1 % of the true
/// nearest-rank value of the window's requests (the exact bound:
/// [`LatencySketch`]).
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct LatencyPercentiles {
    /// The median.
    pub p50: f64,
    /// The 95th percentile.
    pub p95: f64,
    /// The 99th percentile.
    pub p99: f64,
}

impl AnalyticsReport {
    fn new(window_secs: u64, total: &Aggregate) -> Self {
        let ms = |q| total.latency.quantile(q).map(|d| d.as_secs_f64() * 1e3);
        let latency_ms = match (ms(0.5), ms(0.95), ms(0.99)) {
            (Some(p50), Some(p95), Some(p99)) => Some(LatencyPercentiles { p50, p95, p99 }),
            _ => None,
        };
        let success_rate = if total.requests == 0 {
            0.0
        } else {
            (total.ok as f64 / total.requests as f64).clamp(0.0, 1.0)
        };
        Self {
            window_secs,
            requests: total.requests,
            success_rate,
            latency_ms,
            errors: total.errors.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problem_codes_are_bounded() {
        assert_eq!(problem_code("rate_limited"), "rate_limited");
        assert_eq!(problem_code(&"a".repeat(40)), "a".repeat(40));
        for bad in ["", "Rate", "rate-limited", "a b", "é", &"a".repeat(41)] {
            assert_eq!(problem_code(bad), OTHER, "{bad:?}");
        }
        let mut a = Aggregate::default();
        for i in 0..100 {
            let code = format!(
                "code_{}",
                char::from(b'a' + (i % 26) as u8)
                    .to_string()
                    .repeat(1 + i / 26)
            );
            a.record(Duration::from_millis(1), Err(&code));
        }
        assert_eq!(a.errors.len(), MAX_CODES + 1);
        assert_eq!(a.errors.values().sum::<u64>(), 100);
        assert_eq!(a.errors[OTHER], 100 - MAX_CODES as u64);
        // Every field is within the store's 64 bytes.
        assert!(a.fields().iter().all(|(f, _)| f.len() <= 64));
    }

    #[test]
    fn windows_round_up_to_slots() {
        assert_eq!(window_slots(Duration::ZERO), 1);
        assert_eq!(window_slots(Duration::from_secs(60)), 1);
        assert_eq!(window_slots(Duration::from_secs(61)), 2);
        assert_eq!(window_slots(Duration::from_millis(60_001)), 2);
        assert_eq!(window_slots(DEFAULT_MAX_WINDOW), 60);
    }

    #[test]
    fn fields_read_back_as_the_aggregate() {
        let mut a = Aggregate::default();
        a.record(Duration::from_micros(0), Ok(()));
        a.record(Duration::from_millis(3), Ok(()));
        a.record(Duration::from_millis(900), Err("delivery_failed"));
        a.record(Duration::from_millis(2), Err("Not A Code"));
        let mut back = Aggregate::default();
        back.add_stored(&a.fields()).unwrap();
        assert_eq!(back, a);
        assert!(matches!(
            back.add_stored(&[("ok".to_owned(), -1)]),
            Err(StoreError::Corrupt(_))
        ));
        assert!(matches!(
            back.add_stored(&[("lx".to_owned(), 1)]),
            Err(StoreError::Corrupt(_))
        ));
        // A later version's field is skipped.
        back.add_stored(&[("p:new".to_owned(), 5)]).unwrap();
    }

    /// A full store fails the flush; what it did not take stays pending,
    /// merged with what was recorded since, and counts against the bound
    /// only once.
    #[cfg(feature = "moka")]
    #[tokio::test]
    async fn a_failed_flush_puts_back_what_it_did_not_write() {
        use crate::clock::ManualClock;
        use crate::store::MemoryStore;

        // Room for one tenant's counter record.
        let store = MemoryStore::builder().max_records(1).build();
        let analytics = Analytics::builder(store)
            .clock(ManualClock::default())
            .max_tenants(2)
            .build()
            .unwrap();
        let ms = Duration::from_millis;
        analytics.record("t1", ms(1), Ok(()));
        analytics.flush().await.unwrap();
        for _ in 0..5 {
            analytics.record("t2", ms(2), Err("invalid_code"));
        }
        analytics.record("t1", ms(1), Ok(()));
        let err = analytics.flush().await.unwrap_err();
        assert!(matches!(err, StoreError::Full(_)), "{err:?}");
        analytics.record("t2", ms(2), Ok(()));
        let pending = |tenant: &str| {
            let p = lock(&analytics.inner.pending);
            assert_eq!(p.in_flight, 0);
            p.tenants.get(tenant).map(|mine| {
                assert_eq!(mine.slots.len(), 1);
                mine.slots[0].1.clone()
            })
        };
        // Tenants go in map order and a flush stops at its first error: t1
        // was written, or is still pending whole.
        assert!(pending("t1").is_none_or(|t1| t1.requests == 1));
        let t2 = pending("t2").unwrap();
        assert_eq!((t2.requests, t2.ok, t2.errors["invalid_code"]), (6, 1, 5));
        assert_eq!(t2.latency.count(), 6);
        // Still failing: nothing lost, nothing doubled.
        let t1 = pending("t1");
        assert!(analytics.flush().await.is_err());
        assert_eq!(pending("t2").unwrap(), t2);
        assert!(pending("t1").is_none_or(|again| Some(again) == t1));
        assert_eq!(analytics.dropped(), 0);
        let shown = format!("{analytics:?}");
        assert!(shown.contains("pending_tenants: "), "{shown}");
        assert!(!shown.contains("invalid_code"), "{shown}");
    }

    #[test]
    fn an_empty_report_has_no_latency_and_rate_zero() {
        let report = AnalyticsReport::new(3600, &Aggregate::default());
        assert_eq!(
            serde_json::to_value(&report).unwrap(),
            serde_json::json!({"window_secs": 3600, "requests": 0, "success_rate": 0.0,
                "latency_ms": null, "errors": {}})
        );
    }
}
