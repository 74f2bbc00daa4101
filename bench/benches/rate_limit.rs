//! In-memory rate-limit decision: `MemoryStore` through `RateStore::hit`
//! (its future polled once: it is ready at once) side by side with
//! `governor`'s keyed limiter, same quota, same keys, same run.
//!
//! Per key count:
//! * `*_real_clock`: each side reads its own clock per decision —
//!   `SystemClock` for `MemoryStore` (`SystemTime::now()`), quanta's
//!   TSC clock for governor (its default).
//! * `*_coarse_clock`: `MemoryStore` reading `CoarseClock`, which
//!   `RateLimitLayer` uses when its policies' bursts allow (this quota's does).
//!   `RateLimitLayer` itself decides over `MemoryStore` without a future and
//!   with the time in µs (`Clock::now_us`), a crate-private path that skips
//!   the `SystemTime` this bench builds (13 ns of 61 at one key, measured
//!   before that path left the public API).
//! * `governor_with_state_info_*`: governor with `StateInformationMiddleware`
//!   and the remaining capacity read — the information `MemoryStore`'s
//!   decision carries and the `RateLimit` header needs (`tower_governor` uses
//!   this middleware when it sends headers).
//! * `*_given_time`: the decision alone — `MemoryStore` is handed a time read
//!   once, governor runs on its `FakeRelativeClock` (an atomic load).
//!
//! After criterion, an interleaved run (`SKIP_INTERLEAVED=1` to skip)
//! alternates `MemoryStore` (real clock) and governor in short batches and
//! prints the median per-round ratio, the robust figure on a busy machine.
//!
//! Run: `cargo bench --manifest-path bench/Cargo.toml --bench rate_limit`

// `criterion_group!` generates an undocumented public function.
#![allow(missing_docs)]

use std::future::Future;
use std::hint::black_box;
use std::num::NonZeroU32;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::{Instant, SystemTime};

use criterion::{Criterion, criterion_group};
use governor::clock::FakeRelativeClock;
use governor::middleware::StateInformationMiddleware;
use governor::{DefaultKeyedRateLimiter, Quota as GovQuota, RateLimiter};
use tower_otp::clock::{Clock, CoarseClock, SystemClock};
use tower_otp::quota::Quota;
use tower_otp::store::{MemoryStore, RateStore};

/// Generous enough that every decision in the run is "allowed" for both.
const PER_SECOND: u32 = 1_000_000_000;

fn keys(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            format!(
                "rl:ip:10.{}.{}.{}",
                (i >> 16) & 255,
                (i >> 8) & 255,
                i & 255
            )
        })
        .collect()
}

/// Polls a future that must be ready at once (the memory store never waits).
fn now_or_never<F: Future>(f: F) -> F::Output {
    let mut f = pin!(f);
    match f.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(out) => out,
        Poll::Pending => panic!("the memory store future was pending"),
    }
}

fn bench(c: &mut Criterion) {
    let quota = Quota::per_second(PER_SECOND);
    let gov_quota = GovQuota::per_second(NonZeroU32::new(PER_SECOND).expect("non-zero"));

    for n in [1usize, 100_000] {
        let keys = keys(n);
        let mut group = c.benchmark_group(format!("rate_limit/{n}_keys"));

        let store = MemoryStore::builder().max_rate_keys(1_000_000).build();
        let gov: DefaultKeyedRateLimiter<String> = RateLimiter::keyed(gov_quota);
        let gov_info =
            RateLimiter::keyed(gov_quota).with_middleware::<StateInformationMiddleware>();
        let fake = FakeRelativeClock::default();
        let gov_fake = RateLimiter::dashmap_with_clock(gov_quota, fake);
        // Warm the tables so every measured call finds its key.
        for k in &keys {
            assert!(now_or_never(store.hit(k, &quota, SystemClock.now())).is_ok_and(|d| d.allowed));
            assert!(gov.check_key(k).is_ok());
            assert!(gov_info.check_key(k).is_ok());
            assert!(gov_fake.check_key(k).is_ok());
        }

        let mut i = 0;
        group.bench_function("memory_store_hit_real_clock", |b| {
            b.iter(|| {
                i = (i + 1) % n;
                black_box(now_or_never(store.hit(
                    black_box(&keys[i]),
                    &quota,
                    SystemClock.now(),
                )))
            })
        });
        let mut i = 0;
        group.bench_function("memory_store_hit_coarse_clock", |b| {
            b.iter(|| {
                i = (i + 1) % n;
                black_box(now_or_never(store.hit(
                    black_box(&keys[i]),
                    &quota,
                    CoarseClock.now(),
                )))
            })
        });
        let mut i = 0;
        group.bench_function("governor_check_key_real_clock", |b| {
            b.iter(|| {
                i = (i + 1) % n;
                black_box(gov.check_key(black_box(&keys[i])).is_ok())
            })
        });
        let mut i = 0;
        group.bench_function("governor_with_state_info_real_clock", |b| {
            b.iter(|| {
                i = (i + 1) % n;
                black_box(
                    gov_info
                        .check_key(black_box(&keys[i]))
                        .map(|s| s.remaining_burst_capacity()),
                )
            })
        });
        let now = SystemTime::now();
        let mut i = 0;
        group.bench_function("memory_store_hit_given_time", |b| {
            b.iter(|| {
                i = (i + 1) % n;
                black_box(now_or_never(store.hit(
                    black_box(&keys[i]),
                    &quota,
                    black_box(now),
                )))
            })
        });
        let mut i = 0;
        group.bench_function("governor_check_key_given_time", |b| {
            b.iter(|| {
                i = (i + 1) % n;
                black_box(gov_fake.check_key(black_box(&keys[i])).is_ok())
            })
        });
        group.finish();
    }
}

/// Times `batch` calls of `f`, in ns per call.
fn per_call(batch: usize, mut f: impl FnMut(usize)) -> f64 {
    let start = Instant::now();
    for j in 0..batch {
        f(j);
    }
    start.elapsed().as_nanos() as f64 / batch as f64
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Interleaved comparison: on a shared, busy machine, load drifts between
/// criterion's back-to-back measurements. Here the two sides alternate in
/// short batches (order swapped every round) and the median of the per-round
/// ratios is reported, which cancels the drift.
fn interleaved() {
    const ROUNDS: usize = 41;
    const BATCH: usize = 20_000;
    let quota = Quota::per_second(PER_SECOND);
    let gov_quota = GovQuota::per_second(NonZeroU32::new(PER_SECOND).expect("non-zero"));
    println!("\ninterleaved: median over {ROUNDS} rounds of {BATCH} calls per side");
    for n in [1usize, 100_000] {
        let keys = keys(n);
        let store = MemoryStore::builder().max_rate_keys(1_000_000).build();
        let gov: DefaultKeyedRateLimiter<String> = RateLimiter::keyed(gov_quota);
        let gov_info =
            RateLimiter::keyed(gov_quota).with_middleware::<StateInformationMiddleware>();
        for k in &keys {
            let _ = now_or_never(store.hit(k, &quota, SystemClock.now()));
            let _ = gov.check_key(k);
            let _ = gov_info.check_key(k);
        }
        let mut ours = |j: usize| {
            let _ = black_box(now_or_never(store.hit(
                black_box(&keys[j % n]),
                &quota,
                SystemClock.now(),
            )));
        };
        let mut coarse = |j: usize| {
            let _ = black_box(now_or_never(store.hit(
                black_box(&keys[j % n]),
                &quota,
                CoarseClock.now(),
            )));
        };
        let mut plain = |j: usize| {
            black_box(gov.check_key(black_box(&keys[j % n])).is_ok());
        };
        let mut info = |j: usize| {
            let _ = black_box(
                gov_info
                    .check_key(black_box(&keys[j % n]))
                    .map(|s| s.remaining_burst_capacity()),
            );
        };
        let (mut a, mut b, mut c, mut d) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for round in 0..ROUNDS {
            if round % 2 == 0 {
                a.push(per_call(BATCH, &mut ours));
                d.push(per_call(BATCH, &mut coarse));
                b.push(per_call(BATCH, &mut plain));
                c.push(per_call(BATCH, &mut info));
            } else {
                c.push(per_call(BATCH, &mut info));
                b.push(per_call(BATCH, &mut plain));
                d.push(per_call(BATCH, &mut coarse));
                a.push(per_call(BATCH, &mut ours));
            }
        }
        let ratio = |x: &[f64], y: &[f64]| median(x.iter().zip(y).map(|(x, y)| x / y).collect());
        println!(
            "{n:>6} keys: memory_store_hit {:.1} ns (SystemClock) / {:.1} ns (CoarseClock), \
             governor {:.1} ns, governor+state_info {:.1} ns; ratio vs governor {:.3} / {:.3}, \
             vs governor+state_info {:.3} / {:.3}",
            median(a.clone()),
            median(d.clone()),
            median(b.clone()),
            median(c.clone()),
            ratio(&a, &b),
            ratio(&d, &b),
            ratio(&a, &c),
            ratio(&d, &c),
        );
    }
}

criterion_group!(benches, bench);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    if std::env::var_os("SKIP_INTERLEAVED").is_none() {
        interleaved();
    }
}
