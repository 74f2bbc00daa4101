//! `tenant::Analytics` over real stores: two instances (two `Analytics` on
//! one `MemoryStore`, or on two connections to one private redis-server)
//! record shares of a known latency distribution, and a report merges them
//! — counts and error codes exact, percentiles within the sketch's bound.
#![cfg(any(feature = "moka", feature = "redis"))]

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use support::conformance::unique;
use tower_otp::clock::ManualClock;
use tower_otp::store::TenantStore;
use tower_otp::tenant::{Analytics, AnalyticsReport, RELATIVE_ACCURACY, nearest_rank};

const HOUR: Duration = Duration::from_secs(3600);

fn analytics<S: TenantStore>(store: S, clock: &ManualClock) -> Analytics<S> {
    Analytics::builder(store)
        .clock(clock.clone())
        .build()
        .expect("valid settings")
}

/// A request's outcome, by its number: mostly successes, three problem
/// codes and a code that is not one (counted as `other`).
fn outcome(i: usize) -> Result<(), &'static str> {
    if i % 10 == 3 {
        Err("rate_limited")
    } else if i.is_multiple_of(37) {
        Err("delivery_failed")
    } else if i % 101 == 50 {
        Err("Not-A-Code!")
    } else if i % 211 == 7 {
        Err("store_unavailable")
    } else {
        Ok(())
    }
}

/// Latencies in µs: 85 % around 4 ms, 15 % around 700 ms (provider calls),
/// a few under 1 µs. Deterministic.
fn latencies(n: usize, seed: u64) -> Vec<u64> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..n)
        .map(|i| {
            if i.is_multiple_of(997) {
                return 0;
            }
            let (median, spread): (f64, f64) = if rng.random_bool(0.85) {
                (4_000.0, 0.4)
            } else {
                (700_000.0, 0.3)
            };
            let z: f64 = (0..12).map(|_| rng.random::<f64>()).sum::<f64>() - 6.0;
            (median * (spread * z).exp()) as u64
        })
        .collect()
}

/// The exact nearest-rank `q`-quantile of `sorted`, in ms.
fn exact_ms(sorted: &[u64], q: f64) -> f64 {
    let k = nearest_rank(q, sorted.len() as u64).unwrap();
    sorted[usize::try_from(k - 1).unwrap()] as f64 / 1e3
}

/// Checks the report's percentiles against the exact ones of `samples`
/// (the stated bound: α·x + 0.5 ns); returns the largest relative error.
fn check_percentiles(report: &AnalyticsReport, samples: &[u64]) -> f64 {
    let mut sorted = samples.to_vec();
    sorted.sort_unstable();
    let latency = report.latency_ms.expect("latency of a non-empty window");
    let mut worst: f64 = 0.0;
    for (name, q, got) in [
        ("p50", 0.5, latency.p50),
        ("p95", 0.95, latency.p95),
        ("p99", 0.99, latency.p99),
    ] {
        let exact = exact_ms(&sorted, q);
        let err = (got - exact).abs();
        assert!(
            err <= RELATIVE_ACCURACY * exact + 0.5e-6 + 1e-12,
            "{name}: exact {exact} ms, reported {got} ms"
        );
        let relative = err / exact;
        eprintln!(
            "{name}: exact {exact} ms, reported {got:.4} ms ({:+.3} %)",
            (got - exact) / exact * 100.0
        );
        worst = worst.max(relative);
    }
    worst
}

/// The errors `outcome` gives for requests `range`, as a report counts them.
fn expected_errors(range: std::ops::Range<usize>) -> BTreeMap<String, u64> {
    let mut errors = BTreeMap::new();
    for i in range {
        if let Err(code) = outcome(i) {
            let code = if code == "Not-A-Code!" { "other" } else { code };
            *errors.entry(code.to_owned()).or_default() += 1;
        }
    }
    errors
}

/// Two instances share 20 000 requests over three minutes (records cross
/// slot boundaries between flushes); the report of either merges both.
async fn two_instances_merge_into_one_report<S: TenantStore>(one: S, two: S) {
    let clock = ManualClock::default();
    let (a, b) = (analytics(one, &clock), analytics(two, &clock));
    let tenant = unique("acme");
    let samples = latencies(20_000, 1);
    for (i, &us) in samples.iter().enumerate() {
        let instance = if i.is_multiple_of(3) { &a } else { &b };
        instance.record(&tenant, Duration::from_micros(us), outcome(i));
        if i % 500 == 499 {
            clock.advance(Duration::from_millis(4_700));
        }
        // Each instance flushes now and then, not in step.
        if i % 3_001 == 3_000 {
            a.flush().await.unwrap();
        }
        if i % 4_999 == 4_998 {
            b.flush().await.unwrap();
        }
    }
    b.flush().await.unwrap();
    let report = a.report(&tenant, HOUR).await.unwrap();
    assert_eq!(report.window_secs, 3600);
    assert_eq!(report.requests, 20_000);
    let errors = expected_errors(0..20_000);
    let failed: u64 = errors.values().sum();
    assert_eq!(report.errors, errors);
    assert_eq!(report.success_rate, (20_000 - failed) as f64 / 20_000.0);
    let worst = check_percentiles(&report, &samples);
    eprintln!(
        "two instances, 20 000 requests: worst percentile error {:.3} %",
        worst * 100.0
    );

    // Both instances see the same; and exactly the DESIGN.md shape.
    assert_eq!(b.report(&tenant, HOUR).await.unwrap(), report);
    let json = serde_json::to_value(&report).unwrap();
    let keys: Vec<&str> = json
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "errors",
            "latency_ms",
            "requests",
            "success_rate",
            "window_secs"
        ]
    );
    let latency: Vec<&str> = json["latency_ms"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(latency, ["p50", "p95", "p99"]);
    assert_eq!(json["errors"]["rate_limited"], errors["rate_limited"]);
    assert!(json["success_rate"].as_f64().unwrap() <= 1.0);
}

/// A report covers the last ⌈window / 60 s⌉ slots: older records are left
/// out, a window past the longest one is cut to it, and a slot older than
/// the longest window is dropped at flush rather than written.
async fn the_window_excludes_older_slots<S: TenantStore>(one: S, two: S) {
    let clock = ManualClock::default();
    let a = Analytics::builder(one)
        .clock(clock.clone())
        .max_window(Duration::from_secs(600))
        .build()
        .unwrap();
    let b = analytics(two, &clock);
    let tenant = unique("window");
    let minute = Duration::from_secs(60);
    // Minute 0: 10 requests of 1 ms; minute 5: 20 of 100 ms; minute 9:
    // 30 of 10 s, each in an instance of its own.
    for _ in 0..10 {
        a.record(&tenant, Duration::from_millis(1), Ok(()));
    }
    a.flush().await.unwrap();
    clock.advance(5 * minute);
    for _ in 0..20 {
        b.record(&tenant, Duration::from_millis(100), Err("invalid_code"));
    }
    clock.advance(4 * minute);
    for _ in 0..30 {
        a.record(&tenant, Duration::from_secs(10), Ok(()));
    }
    b.flush().await.unwrap();

    let whole = a.report(&tenant, HOUR).await.unwrap();
    assert_eq!(whole.window_secs, 600, "cut to the longest window");
    assert_eq!(whole.requests, 60);
    let last_five = a.report(&tenant, 5 * minute).await.unwrap();
    assert_eq!(last_five.window_secs, 300);
    assert_eq!(last_five.requests, 50, "minute 0 is outside");
    assert_eq!(last_five.errors["invalid_code"], 20);
    let last_four = a.report(&tenant, 4 * minute).await.unwrap();
    assert_eq!(last_four.requests, 30);
    assert!(last_four.errors.is_empty());
    assert_eq!(last_four.success_rate, 1.0);
    let p50 = last_four.latency_ms.unwrap().p50;
    assert!((p50 - 10_000.0).abs() <= 100.0, "{p50}");
    // A window under a minute is the current slot.
    assert_eq!(
        a.report(&tenant, Duration::ZERO).await.unwrap().requests,
        30
    );

    // Ten minutes on, minute 9 has left a 10-minute window too.
    clock.advance(10 * minute);
    let empty = a.report(&tenant, HOUR).await.unwrap();
    assert_eq!(empty.requests, 0);
    assert_eq!(empty.success_rate, 0.0);
    assert!(empty.latency_ms.is_none() && empty.errors.is_empty());

    // Records that waited past the longest window are dropped, not written.
    for _ in 0..7 {
        a.record(&tenant, Duration::from_millis(5), Ok(()));
    }
    clock.advance(11 * minute);
    a.flush().await.unwrap();
    assert_eq!(a.dropped(), 7);
    // `b`'s longer window reaches back to that minute: nothing was written.
    let since = b.report(&tenant, 13 * minute).await.unwrap();
    assert_eq!(since.requests, 0);
}

/// Records just before and after a minute's turn, flushed together, land
/// in their own slots.
async fn a_record_after_the_minute_turns_goes_into_the_new_slot<S: TenantStore>(one: S, two: S) {
    let clock = ManualClock::default();
    let (a, b) = (analytics(one, &clock), analytics(two, &clock));
    let tenant = unique("turn");
    clock.advance(Duration::from_secs(59));
    a.record(&tenant, Duration::from_millis(1), Ok(()));
    clock.advance(Duration::from_secs(2));
    a.record(&tenant, Duration::from_millis(2), Err("rate_limited"));
    a.record(&tenant, Duration::from_millis(2), Ok(()));
    a.flush().await.unwrap();
    let current = b.report(&tenant, Duration::from_secs(60)).await.unwrap();
    assert_eq!(current.requests, 2);
    assert_eq!(current.success_rate, 0.5);
    let both = b.report(&tenant, Duration::from_secs(120)).await.unwrap();
    assert_eq!(both.requests, 3);
}

/// Two tenants recorded by both instances keep their own counts.
async fn tenants_do_not_mix<S: TenantStore>(one: S, two: S) {
    let clock = ManualClock::default();
    let (a, b) = (analytics(one, &clock), analytics(two, &clock));
    let (acme, globex) = (unique("acme"), unique("globex"));
    for i in 0..300_u32 {
        let instance = if i.is_multiple_of(2) { &a } else { &b };
        instance.record(&acme, Duration::from_millis(2), Ok(()));
        if i.is_multiple_of(3) {
            instance.record(&globex, Duration::from_millis(800), Err("delivery_failed"));
        }
    }
    let acme_report = a.report(&acme, HOUR).await.unwrap();
    b.flush().await.unwrap();
    let acme_report_after = a.report(&acme, HOUR).await.unwrap();
    assert_eq!(acme_report.requests, 150, "only what `a` wrote");
    assert_eq!(acme_report_after.requests, 300);
    assert_eq!(acme_report_after.success_rate, 1.0);
    assert!(acme_report_after.errors.is_empty());
    let p99 = acme_report_after.latency_ms.unwrap().p99;
    assert!((p99 - 2.0).abs() <= 0.02, "{p99}");

    let globex_report = b.report(&globex, HOUR).await.unwrap();
    assert_eq!(globex_report.requests, 100);
    assert_eq!(globex_report.success_rate, 0.0);
    assert_eq!(globex_report.errors["delivery_failed"], 100);
    let p50 = globex_report.latency_ms.unwrap().p50;
    assert!((p50 - 800.0).abs() <= 8.0, "{p50}");
    let nobody = a.report(&unique("initech"), HOUR).await.unwrap();
    assert_eq!(nobody.requests, 0);
}

/// Beyond `max_tenants` pending tenants a record is dropped and counted;
/// after a flush there is room again.
async fn pending_tenants_are_bounded<S: TenantStore>(one: S, two: S) {
    let clock = ManualClock::default();
    let a = Analytics::builder(one)
        .clock(clock.clone())
        .max_tenants(2)
        .build()
        .unwrap();
    let b = analytics(two, &clock);
    let tenants = [unique("t1"), unique("t2"), unique("t3")];
    for t in &tenants {
        a.record(t, Duration::from_millis(1), Ok(()));
        a.record(t, Duration::from_millis(1), Ok(()));
    }
    assert_eq!(a.dropped(), 2);
    a.flush().await.unwrap();
    a.record(&tenants[2], Duration::from_millis(1), Ok(()));
    a.flush().await.unwrap();
    let counts: Vec<u64> = report_counts(&b, &tenants).await;
    assert_eq!(counts, [2, 2, 1]);
}

async fn report_counts<S: TenantStore>(a: &Analytics<S>, tenants: &[String]) -> Vec<u64> {
    let mut counts = Vec::new();
    for t in tenants {
        counts.push(a.report(t, HOUR).await.unwrap().requests);
    }
    counts
}

/// A tenant id the store refuses (whitespace) fails no flush: its records
/// are dropped and counted, the other tenants' are written.
async fn a_tenant_the_store_refuses_is_dropped<S: TenantStore>(one: S, two: S) {
    let clock = ManualClock::default();
    let (a, b) = (analytics(one, &clock), analytics(two, &clock));
    let good = unique("good");
    for _ in 0..3 {
        a.record("not a tenant id", Duration::from_millis(1), Ok(()));
        a.record(&good, Duration::from_millis(1), Ok(()));
    }
    a.flush().await.unwrap();
    assert_eq!(a.dropped(), 3);
    assert_eq!(b.report(&good, HOUR).await.unwrap().requests, 3);
    // Nothing of it is left to fail the next flush.
    a.flush().await.unwrap();
    assert_eq!(a.dropped(), 3);
}

/// The flusher writes on its own and ends once the last clone is dropped.
async fn the_flusher_writes_and_stops_with_its_analytics<S: TenantStore>(one: S, two: S) {
    let clock = ManualClock::default();
    let (a, b) = (analytics(one, &clock), analytics(two, &clock));
    let tenant = unique("flusher");
    let every = Duration::from_millis(50);
    let task = a.spawn_flusher(every).unwrap();
    let clone = a.clone();
    clone.record(&tenant, Duration::from_millis(3), Ok(()));
    let mut seen = 0;
    for _ in 0..100 {
        // `b` has nothing of its own: what it reports is in the store.
        seen = b.report(&tenant, HOUR).await.unwrap().requests;
        if seen == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(seen, 1, "the flusher did not write within 2 s");
    drop(a);
    assert!(!task.is_finished(), "a clone is still alive");
    drop(clone);
    tokio::time::timeout(Duration::from_secs(2), task)
        .await
        .expect("the flusher ended")
        .unwrap();
    assert!(b.spawn_flusher(Duration::ZERO).is_err());
}

macro_rules! analytics_tests {
    ($stores:expr) => {
        analytics_tests!(@each $stores;
            two_instances_merge_into_one_report,
            the_window_excludes_older_slots,
            a_record_after_the_minute_turns_goes_into_the_new_slot,
            tenants_do_not_mix,
            pending_tenants_are_bounded,
            a_tenant_the_store_refuses_is_dropped,
            the_flusher_writes_and_stops_with_its_analytics);
    };
    (@each $stores:expr; $($name:ident),*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let Some((one, two)) = $stores.await else { return };
                super::$name(one, two).await;
            }
        )*
    };
}

#[cfg(feature = "moka")]
mod memory {
    use tower_otp::store::MemoryStore;

    async fn stores() -> Option<(MemoryStore, MemoryStore)> {
        let store = MemoryStore::new();
        Some((store.clone(), store))
    }

    analytics_tests!(stores());
}

#[cfg(feature = "redis")]
mod redis {
    use std::time::Duration;

    use crate::support::conformance::unique;
    use crate::support::redis_server::{self, FaultProxy, Mode};
    use tower_otp::clock::ManualClock;
    use tower_otp::store::{RedisStore, StoreError};
    use tower_otp::tenant::Analytics;

    async fn connect(url: String) -> RedisStore {
        RedisStore::builder(url)
            .prefix("tenant-analytics")
            .timeout(Duration::from_millis(500))
            .connect()
            .await
            .expect("connect to the private redis-server")
    }

    /// Two connections to one server: two instances of a service.
    async fn stores() -> Option<(RedisStore, RedisStore)> {
        let server = redis_server::shared()?;
        Some((connect(server.url()).await, connect(server.url()).await))
    }

    analytics_tests!(stores());

    /// A flush that fails (the store answers garbage) keeps what it did not
    /// write; once the store is back, every request is counted exactly once.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failed_flush_loses_nothing() {
        let Some(server) = redis_server::shared() else {
            return;
        };
        let proxy = FaultProxy::start(Some(server.addr()), Mode::Forward).await;
        let clock = ManualClock::default();
        let flaky = Analytics::builder(connect(proxy.url()).await)
            .clock(clock.clone())
            .build()
            .unwrap();
        let reader = Analytics::builder(connect(server.url()).await)
            .clock(clock.clone())
            .build()
            .unwrap();
        let (t1, t2) = (unique("flaky1"), unique("flaky2"));
        for i in 0..50_u32 {
            flaky.record(&t1, Duration::from_millis(10), Ok(()));
            flaky.record(
                &t2,
                Duration::from_millis(20),
                if i.is_multiple_of(5) {
                    Err("invalid_code")
                } else {
                    Ok(())
                },
            );
        }
        flaky.flush().await.unwrap();

        proxy.set_mode(Mode::Garbage);
        // The proxy re-reads its mode every 10 ms: a call sent sooner could
        // still be forwarded (and applied) with its reply lost, which a flush
        // writes again — the at-least-once case, not the one tested here.
        tokio::time::sleep(Duration::from_millis(50)).await;
        for _ in 0..30 {
            flaky.record(&t1, Duration::from_millis(10), Ok(()));
            flaky.record(&t2, Duration::from_millis(20), Err("invalid_code"));
        }
        let err = flaky.flush().await.expect_err("garbage answers");
        assert!(!matches!(err, StoreError::Full(_)), "{err:?}");
        // Recorded while the store is out, into the next minute.
        clock.advance(Duration::from_secs(60));
        for _ in 0..20 {
            flaky.record(&t1, Duration::from_millis(10), Err("delivery_failed"));
        }
        assert!(flaky.flush().await.is_err());
        assert!(flaky.report(&t1, super::HOUR).await.is_err());

        proxy.set_mode(Mode::Forward);
        let mut attempts = 0;
        while flaky.flush().await.is_err() {
            attempts += 1;
            assert!(attempts < 100, "the store did not come back");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        eprintln!("flushed after {attempts} failed attempts");
        let r1 = reader.report(&t1, super::HOUR).await.unwrap();
        assert_eq!(r1.requests, 100);
        assert_eq!(r1.errors["delivery_failed"], 20);
        assert_eq!(r1.success_rate, 0.8);
        let r2 = reader.report(&t2, super::HOUR).await.unwrap();
        assert_eq!(r2.requests, 80);
        assert_eq!(r2.errors["invalid_code"], 10 + 30);
        assert_eq!(flaky.dropped(), 0);
    }
}
