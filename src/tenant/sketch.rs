//! [`LatencySketch`]: a mergeable latency quantile sketch with 1 % relative
//! accuracy (DDSketch's log-bucketed histogram), whose buckets are counter
//! fields, so instances merge it in the store by adding counters.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

/// The sketch's relative accuracy α: every quantile estimate is within
/// α × the true value (see [`LatencySketch`]).
pub const RELATIVE_ACCURACY: f64 = 0.01;

/// ln γ with γ = (1 + α) / (1 − α), i.e. 2 atanh(α): one bucket's width on
/// a log scale. A literal so every instance buckets a value alike (a test
/// checks it against the formula).
const LN_GAMMA: f64 = 0.020_000_666_706_669_525;

/// The field of the zero bucket (values under 1 µs).
const ZERO_FIELD: &str = "lz";

/// Prefix of every bucket field.
const PREFIX: char = 'l';

/// The rank of the nearest-rank `q`-quantile of `n` values: the
/// `k`-th smallest of them (1-based), with `k = ⌈q·n⌉` computed in `f64`,
/// and at least 1. `None` when `n` is 0 or `q` is outside `[0, 1]`.
///
/// ```
/// use tower_otp::tenant::nearest_rank;
///
/// assert_eq!(nearest_rank(0.5, 100), Some(50));
/// assert_eq!(nearest_rank(0.99, 100), Some(99));
/// assert_eq!(nearest_rank(0.0, 7), Some(1));
/// assert_eq!(nearest_rank(1.0, 7), Some(7));
/// assert_eq!(nearest_rank(0.5, 0), None);
/// ```
pub fn nearest_rank(q: f64, n: u64) -> Option<u64> {
    if n == 0 || !(0.0..=1.0).contains(&q) {
        return None;
    }
    // `as` saturates; the clamp keeps f64 rounding of q·n inside 1..=n.
    let k = (q * n as f64).ceil() as u64;
    Some(k.clamp(1, n))
}

/// A latency distribution in a few hundred counters, for quantiles with a
/// guaranteed 1 % relative error, that merges exactly.
///
/// Values are whole microseconds (a [`Duration`] is truncated to them;
/// sub-microsecond ones count in a zero bucket that estimates 0). A value
/// `v ≥ 1 µs` counts in bucket `i = ⌈log_γ v⌉`, γ = (1 + α)/(1 − α) with
/// α = [`RELATIVE_ACCURACY`] = 0.01, which holds exactly the values in
/// `(γ^(i−1), γ^i]`; the bucket's estimate is `2γ^i / (γ + 1) = (1 − α)·γ^i`.
///
/// # Error bound
///
/// For any `q` in `[0, 1]`, [`quantile(q)`](Self::quantile) lies within
/// α = 1 % relative error of the true nearest-rank quantile of the recorded
/// (microsecond) values: `|estimate − x_k| ≤ α·x_k + 0.5 ns`, where `x_k`
/// is the `k`-th smallest recorded value and `k` is
/// [`nearest_rank(q, count)`](nearest_rank); the 0.5 ns is the estimate's
/// rounding to a [`Duration`] (at most 0.05 % of a 1 µs value). Why: bucket
/// indexes grow with the value, so the bucket where the cumulative count
/// first reaches `k` is the bucket of `x_k`, and every value of bucket `i`
/// is within α of `(1 − α)·γ^i`. This holds whatever the distribution and
/// after any number of [`merge`](Self::merge)s; the only other slack is
/// `f64` rounding of the bucket index for a value within ~10⁻¹⁴ (relative)
/// of a bucket boundary, which may add 10⁻¹² to α. Zero-bucket values
/// (under 1 µs) are estimated as exactly 0.
///
/// # Size
///
/// One counter per non-empty bucket. The whole microseconds from 1 µs to
/// 100 s fall in 776 buckets (indexes 0–922: below 50 µs not every index
/// holds an integer; a unit test counts them), and any `u64` of
/// microseconds in one of at most 2 220 (indexes 0–2 218, plus the zero
/// bucket), so a sketch never grows past that whatever is recorded.
///
/// # Encoding
///
/// [`fields`](Self::fields) gives each non-empty bucket as a counter field,
/// `l<i>` (the index in decimal) and `lz` for the zero bucket, with its
/// count. Adding two sketches' fields counter by counter (a Redis `HINCRBY`)
/// gives the fields of their merge, so instances merge sketches in a
/// [`TenantStore`](crate::store::TenantStore) with
/// [`add_counters`](crate::store::TenantStore::add_counters).
/// The encoding is tied to α = 1 %.
///
/// ```
/// use std::time::Duration;
/// use tower_otp::tenant::LatencySketch;
///
/// let mut a = LatencySketch::new();
/// let mut b = LatencySketch::new();
/// for ms in 1..=100_u64 {
///     let sketch = if ms.is_multiple_of(2) { &mut a } else { &mut b };
///     sketch.record(Duration::from_millis(ms));
/// }
/// a.merge(&b);
/// let p95 = a.quantile(0.95).unwrap().as_secs_f64() * 1e3;
/// assert!((p95 - 95.0).abs() <= 0.95, "{p95}");
///
/// let stored: Vec<(String, u64)> = a.fields().collect();
/// let again = LatencySketch::from_fields(stored.iter().map(|(f, n)| (f.as_str(), *n as i64)))?;
/// assert_eq!(again, a);
/// # Ok::<(), tower_otp::tenant::SketchFieldError>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LatencySketch {
    /// Count per bucket index; only non-empty buckets are present.
    buckets: BTreeMap<i32, u64>,
    /// Values under 1 µs.
    zero: u64,
    /// Every value recorded.
    count: u64,
}

impl LatencySketch {
    /// An empty sketch.
    pub fn new() -> Self {
        Self::default()
    }

    /// Counts one value.
    pub fn record(&mut self, latency: Duration) {
        let us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.add(bucket_of(us), 1);
    }

    /// Adds every value of `other`, exactly as if they had been recorded
    /// here.
    pub fn merge(&mut self, other: &Self) {
        self.add(None, other.zero);
        for (&i, &n) in &other.buckets {
            self.add(Some(i), n);
        }
    }

    /// How many values were recorded.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// How many buckets are non-empty: the number of counter fields.
    pub fn bucket_count(&self) -> usize {
        self.buckets.len() + usize::from(self.zero > 0)
    }

    /// The estimated nearest-rank `q`-quantile (`q` in `[0, 1]`, e.g. 0.99
    /// for p99), within 1 % of the true one (see the [error
    /// bound](Self#error-bound)); `None` when the sketch is empty or `q` is
    /// outside `[0, 1]`.
    pub fn quantile(&self, q: f64) -> Option<Duration> {
        let k = nearest_rank(q, self.count)?;
        if k <= self.zero {
            return Some(Duration::ZERO);
        }
        let mut seen = self.zero;
        for (&i, &n) in &self.buckets {
            seen = seen.saturating_add(n);
            if seen >= k {
                return Some(estimate(i));
            }
        }
        // Only reachable if counts saturated: the largest bucket.
        self.buckets.keys().next_back().map(|&i| estimate(i))
    }

    /// The non-empty buckets as counter fields and counts (zero bucket
    /// first, then by index): the [encoding](Self#encoding).
    pub fn fields(&self) -> impl Iterator<Item = (String, u64)> + '_ {
        let zero = (self.zero > 0).then(|| (ZERO_FIELD.to_owned(), self.zero));
        zero.into_iter().chain(
            self.buckets
                .iter()
                .map(|(&i, &n)| (format!("{PREFIX}{i}"), n)),
        )
    }

    /// The sketch whose [`fields`](Self::fields) are `fields`, read back
    /// from a counter group.
    ///
    /// A field that does not start with `l` is skipped, so a group may hold
    /// other counters beside a sketch (a count of 0 is skipped too). A
    /// field that starts with `l` but is not a bucket, or a negative count,
    /// is an error: the group is not what this version wrote.
    pub fn from_fields<F, I>(fields: I) -> Result<Self, SketchFieldError>
    where
        F: AsRef<str>,
        I: IntoIterator<Item = (F, i64)>,
    {
        let mut sketch = Self::new();
        for (field, n) in fields {
            let field = field.as_ref();
            let Some(index) = field.strip_prefix(PREFIX) else {
                continue;
            };
            let bucket = match index {
                "z" => None,
                _ => Some(
                    index
                        .parse::<i32>()
                        .map_err(|_| SketchFieldError::new(field, n))?,
                ),
            };
            let n = u64::try_from(n).map_err(|_| SketchFieldError::new(field, n))?;
            sketch.add(bucket, n);
        }
        Ok(sketch)
    }

    /// Adds `n` values to bucket `bucket` (`None`: the zero bucket).
    fn add(&mut self, bucket: Option<i32>, n: u64) {
        if n == 0 {
            return;
        }
        let slot = match bucket {
            Some(i) => self.buckets.entry(i).or_default(),
            None => &mut self.zero,
        };
        *slot = slot.saturating_add(n);
        self.count = self.count.saturating_add(n);
    }
}

/// The bucket of `us` microseconds, `None` for the zero bucket.
fn bucket_of(us: u64) -> Option<i32> {
    // `as` saturates; log_γ of u64::MAX is about 2 218.
    (us > 0).then(|| ((us as f64).ln() / LN_GAMMA).ceil() as i32)
}

/// The estimate of bucket `i`: `(1 − α)·γ^i` microseconds, the point of
/// `(γ^(i−1), γ^i]` within α of both ends.
fn estimate(i: i32) -> Duration {
    let ns = (1.0 - RELATIVE_ACCURACY) * (f64::from(i) * LN_GAMMA).exp() * 1e3;
    // To the nearest nanosecond, Duration's resolution (`as` saturates).
    if ns < u64::MAX as f64 {
        Duration::from_nanos(ns.round() as u64)
    } else {
        Duration::try_from_secs_f64(ns / 1e9).unwrap_or(Duration::MAX)
    }
}

/// A counter field that [`LatencySketch::from_fields`] cannot read: an
/// `l…` field that is not a bucket, or a negative count.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SketchFieldError {
    /// The field.
    pub field: String,
    /// Its count.
    pub count: i64,
}

impl SketchFieldError {
    fn new(field: &str, count: i64) -> Self {
        Self {
            field: field.to_owned(),
            count,
        }
    }
}

impl fmt::Display for SketchFieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "not a latency sketch bucket: field {:?} = {}",
            self.field, self.count
        )
    }
}

impl std::error::Error for SketchFieldError {}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    const US: fn(u64) -> Duration = Duration::from_micros;

    /// The largest relative error of every percentile 0.0, 0.1, …, 100.0
    /// (p50, p95 and p99 among them) against the exact nearest-rank value
    /// of `samples`; panics above α.
    fn check(name: &str, samples: &mut [u64]) -> f64 {
        let mut sketch = LatencySketch::new();
        for &v in samples.iter() {
            sketch.record(US(v));
        }
        samples.sort_unstable();
        let n = samples.len() as u64;
        assert_eq!(sketch.count(), n);
        let mut worst: f64 = 0.0;
        for permille in 0..=1000 {
            let q = f64::from(permille) / 1000.0;
            let k = nearest_rank(q, n).unwrap();
            let exact = samples[usize::try_from(k - 1).unwrap()] as f64;
            let got = sketch.quantile(q).unwrap().as_secs_f64() * 1e6;
            if exact == 0.0 {
                assert_eq!(got, 0.0, "{name}: q={q}: the zero bucket is exact");
                continue;
            }
            let err = (got - exact).abs() / exact;
            // The stated bound: α·x + 0.5 ns (+ f64 slack).
            assert!(
                err <= RELATIVE_ACCURACY + 0.5e-3 / exact + 1e-12,
                "{name}: q={q} exact {exact} µs, sketch {got} µs, error {err}"
            );
            worst = worst.max(err);
        }
        let p = |q: f64| {
            let exact = samples[usize::try_from(nearest_rank(q, n).unwrap() - 1).unwrap()] as f64;
            let got = sketch.quantile(q).unwrap().as_secs_f64() * 1e6;
            format!("{exact}→{got:.1} ({:+.3} %)", (got - exact) / exact * 100.0)
        };
        eprintln!(
            "{name}: n={n}, {} buckets, p50 {}, p95 {}, p99 {}, worst error {:.4} %",
            sketch.bucket_count(),
            p(0.5),
            p(0.95),
            p(0.99),
            worst * 100.0
        );
        worst
    }

    /// Standard normal deviates (Box–Muller), from a fixed seed.
    fn normal(rng: &mut StdRng) -> f64 {
        let (u1, u2): (f64, f64) = (rng.random_range(f64::EPSILON..1.0), rng.random());
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }

    #[test]
    fn ln_gamma_is_the_formula() {
        let gamma: f64 = (1.0 + RELATIVE_ACCURACY) / (1.0 - RELATIVE_ACCURACY);
        assert!((LN_GAMMA - gamma.ln()).abs() < 1e-15);
        // The estimate is 2γ^i/(γ+1), DDSketch's midpoint.
        for i in [0, 1, 35, 460, 921] {
            let ddsketch = 2.0 * gamma.powi(i) / (gamma + 1.0);
            let ours = estimate(i).as_secs_f64() * 1e6;
            assert!((ours - ddsketch).abs() <= 0.5e-3 + 1e-12, "{i}");
        }
    }

    #[test]
    fn uniform_quantiles_within_one_percent() {
        let mut samples: Vec<u64> = (1..=100_000).collect();
        check("uniform 1..=100000 µs", &mut samples);
    }

    #[test]
    fn log_normal_quantiles_within_one_percent() {
        let mut rng = StdRng::seed_from_u64(7);
        // Median 40 ms, σ = 1: a long tail into seconds.
        let mut samples: Vec<u64> = (0..200_000)
            .map(|_| (40_000.0 * normal(&mut rng).exp()).max(1.0) as u64)
            .collect();
        check("log-normal median 40 ms", &mut samples);
    }

    #[test]
    fn bimodal_quantiles_within_one_percent() {
        let mut rng = StdRng::seed_from_u64(11);
        // 90 % fast answers around 3 ms, 10 % slow ones around 900 ms (an
        // SMS provider call), plus a few sub-microsecond ones.
        let mut samples: Vec<u64> = (0..100_000_u32)
            .map(|i| {
                if i.is_multiple_of(1000) {
                    return 0;
                }
                let (mean, sd) = if rng.random_bool(0.9) {
                    (3_000.0, 500.0)
                } else {
                    (900_000.0, 150_000.0)
                };
                (mean + sd * normal(&mut rng)).max(1.0) as u64
            })
            .collect();
        check("bimodal 3 ms / 900 ms", &mut samples);
    }

    #[test]
    fn zero_and_tiny_values() {
        let mut s = LatencySketch::new();
        s.record(Duration::from_nanos(999));
        s.record(Duration::ZERO);
        s.record(US(1));
        assert_eq!(s.count(), 3);
        assert_eq!(s.quantile(0.0), Some(Duration::ZERO));
        assert_eq!(s.quantile(0.66), Some(Duration::ZERO));
        let one = s.quantile(1.0).unwrap().as_secs_f64() * 1e6;
        assert!((one - 1.0).abs() <= 0.01, "{one}");
        assert_eq!(s.quantile(1.5), None);
        assert_eq!(s.quantile(f64::NAN), None);
        assert_eq!(LatencySketch::new().quantile(0.5), None);
        // The extremes of a Duration stay in range.
        let mut big = LatencySketch::new();
        big.record(Duration::MAX);
        assert!(big.quantile(0.5).unwrap() > Duration::from_secs(1 << 40));
        assert!(big.buckets.keys().all(|&i| i <= 2218));
    }

    #[test]
    fn merge_equals_recording_everything_in_one() {
        let mut rng = StdRng::seed_from_u64(3);
        let samples: Vec<u64> = (0..50_000)
            .map(|_| rng.random_range(0..5_000_000))
            .collect();
        let mut all = LatencySketch::new();
        let (mut a, mut b) = (LatencySketch::new(), LatencySketch::new());
        for (i, &v) in samples.iter().enumerate() {
            all.record(US(v));
            if i.is_multiple_of(3) { &mut a } else { &mut b }.record(US(v));
        }
        let mut merged = a.clone();
        merged.merge(&b);
        assert_eq!(merged, all);
        // Both orders, and merging an empty sketch changes nothing.
        b.merge(&a);
        assert_eq!(b, all);
        merged.merge(&LatencySketch::new());
        assert_eq!(merged, all);
    }

    #[test]
    fn fields_round_trip_and_add_like_counters() {
        let mut a = LatencySketch::new();
        let mut b = LatencySketch::new();
        for v in [0, 1, 2, 17, 1_000, 1_000, 250_000, 99_000_000] {
            a.record(US(v));
            b.record(US(v * 3));
        }
        let fields: Vec<(String, u64)> = a.fields().collect();
        assert_eq!(fields[0], ("lz".to_owned(), 1));
        assert!(fields.iter().all(|(f, _)| f.len() <= 12));
        let read = |f: &[(String, u64)]| {
            LatencySketch::from_fields(f.iter().map(|(k, n)| (k.as_str(), *n as i64))).unwrap()
        };
        assert_eq!(read(&fields), a);
        // Adding the two field lists as counters (what HINCRBY does) gives
        // the merge.
        let mut counters: BTreeMap<String, u64> = BTreeMap::new();
        for (f, n) in a.fields().chain(b.fields()) {
            *counters.entry(f).or_default() += n;
        }
        let summed: Vec<(String, u64)> = counters.into_iter().collect();
        let mut merged = a.clone();
        merged.merge(&b);
        assert_eq!(read(&summed), merged);
    }

    #[test]
    fn from_fields_skips_other_counters_and_refuses_bad_buckets() {
        let s = LatencySketch::from_fields([("requests", 9), ("ok", 7), ("e:x", 2), ("l3", 4)])
            .unwrap();
        assert_eq!(s.count(), 4);
        assert_eq!(
            LatencySketch::from_fields([("l0", 0), ("lz", 0)]).unwrap(),
            LatencySketch::new()
        );
        for bad in [
            ("latency", 1),
            ("l", 1),
            ("l1.5", 1),
            ("l3", -1),
            ("lzz", 1),
        ] {
            let err = LatencySketch::from_fields([bad]).unwrap_err();
            assert_eq!(err.field, bad.0);
        }
    }

    #[test]
    fn bucket_count_stays_small() {
        // Every microsecond from 1 µs to 100 s (1e8 values) would be slow;
        // the buckets' lower bounds are what matter: one value per distinct
        // bucket at each integer below 1 000 µs, then log-spaced steps of
        // 1/10 of a bucket cover every bucket.
        let mut s = LatencySketch::new();
        for v in 1..1_000 {
            s.record(US(v));
        }
        let mut v = 1_000.0_f64;
        while v <= 1e8 {
            s.record(US(v as u64));
            v *= 1.002;
        }
        s.record(US(100_000_000));
        let n = s.bucket_count();
        let last = *s.buckets.keys().next_back().unwrap();
        eprintln!("1 µs – 100 s: {n} buckets (indexes 0..={last})");
        assert_eq!(last, bucket_of(100_000_000).unwrap());
        assert_eq!(n, 776, "buckets for 1 µs – 100 s");
        assert_eq!(last, 922);
        // Every index from that of 1 000 µs up is present: nothing skipped.
        let from = bucket_of(1_000).unwrap();
        assert!((from..=last).all(|i| s.buckets.contains_key(&i)));
        assert_eq!(bucket_of(u64::MAX), Some(2218));
    }
}
