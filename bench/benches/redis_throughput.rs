//! OTP request + verify throughput over `RedisStore` (driver for
//! `bench/redis_throughput.sh`, which starts the server and runs
//! `redis-benchmark` next to it).
//!
//! Run: `REDIS_URL=redis://127.0.0.1:6379 CONCURRENCY=50 BENCH_SECONDS=10 \
//!       cargo bench --manifest-path bench/Cargo.toml --bench redis_throughput`
//!
//! `CONCURRENCY` tasks each loop: `POST /otp/request` for a fresh phone
//! number, read the code from an in-memory notifier, `POST /otp/verify`. The
//! router is called in-process (no HTTP), so the figure is the router + store
//! cost. Limits are raised so nothing is refused; every store operation
//! still runs. Round trips are counted on the server (`INFO commandstats`).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU16, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::Full;
use tower::ServiceExt;
use tower_otp::client_ip::PeerAddr;
use tower_otp::notify::{Delivery, Message, Notifier, NotifyError};
use tower_otp::otp::{Limits, OtpRouter};
use tower_otp::quota::Quota;
use tower_otp::store::RedisStore;

/// Keeps the last code per recipient, handed out once.
#[derive(Clone, Debug, Default)]
struct Codes(Arc<Mutex<HashMap<String, String>>>);

impl Codes {
    fn take(&self, to: &str) -> Option<String> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).remove(to)
    }
}

impl Notifier for Codes {
    async fn send(&self, msg: &Message) -> Result<Delivery, NotifyError> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(msg.to.clone(), msg.code.clone());
        Ok(Delivery::default())
    }
}

fn env<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A JSON POST from one client address (the router fails closed without
/// one: a server puts it there per connection).
fn post(path: &str, body: String) -> Request<Full<Bytes>> {
    let mut req = Request::post(path)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body)))
        .expect("valid request");
    req.extensions_mut()
        .insert(PeerAddr(SocketAddr::from(([203, 0, 113, 7], 50_000))));
    req
}

/// Round trips the store made so far: `EVALSHA` calls (commands run inside
/// the scripts are not round trips and are not counted).
async fn evalsha_calls(url: &str) -> u64 {
    let client = redis::Client::open(url).expect("REDIS_URL");
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("connect for INFO");
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(&mut conn)
        .await
        .expect("INFO commandstats");
    info.lines()
        .find_map(|l| l.strip_prefix("cmdstat_evalsha:calls="))
        .and_then(|v| v.split(',').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

#[tokio::main]
async fn main() {
    // `cargo bench` passes `--bench`; nothing else is taken from argv.
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let concurrency: usize = env("CONCURRENCY", 50);
    let seconds: u64 = env("BENCH_SECONDS", 10);

    let store = RedisStore::builder(url.as_str())
        .prefix(format!("bench-{:08x}", rand::random::<u32>()))
        .connect()
        .await
        .expect("connect to redis");
    let codes = Codes::default();
    let secret: String = (0..32)
        .map(|_| format!("{:02x}", rand::random::<u8>()))
        .collect();
    let router = OtpRouter::builder(store, codes.clone())
        .secret(secret)
        .configure(|c| {
            let mut limits = Limits::default();
            let lots = Quota::per_hour(1_000_000_000);
            limits.request_per_ip = lots;
            limits.verify_per_ip = lots;
            limits.request_per_number_prefix = lots;
            limits.global_messages = lots;
            c.limits = limits;
        })
        .build()
        .expect("router");

    let flows = Arc::new(AtomicU64::new(0));
    let failures = Arc::new(AtomicU64::new(0));
    // The status of the first failed step: every failure is a bug here.
    let first_failure = Arc::new(AtomicU16::new(0));
    let next_number = Arc::new(AtomicU64::new(0));
    let before = evalsha_calls(&url).await;
    let started = Instant::now();
    let deadline = started + Duration::from_secs(seconds);
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..concurrency {
        let (router, codes) = (router.clone(), codes.clone());
        let (flows, failures, next_number) = (flows.clone(), failures.clone(), next_number.clone());
        let first_failure = first_failure.clone();
        workers.spawn(async move {
            let mut latencies = Vec::new();
            let fail = |status: StatusCode| {
                failures.fetch_add(1, Ordering::Relaxed);
                let _ = first_failure.compare_exchange(
                    0,
                    status.as_u16(),
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                );
            };
            while Instant::now() < deadline {
                let n = next_number.fetch_add(1, Ordering::Relaxed);
                let phone = format!("+1415{:07}", n % 10_000_000);
                let t0 = Instant::now();
                let res = router
                    .clone()
                    .oneshot(post("/otp/request", format!(r#"{{"phone":"{phone}"}}"#)))
                    .await
                    .expect("infallible");
                let Some(code) = (res.status() == StatusCode::ACCEPTED)
                    .then(|| codes.take(&phone))
                    .flatten()
                else {
                    fail(res.status());
                    continue;
                };
                let res = router
                    .clone()
                    .oneshot(post(
                        "/otp/verify",
                        format!(r#"{{"phone":"{phone}","code":"{code}"}}"#),
                    ))
                    .await
                    .expect("infallible");
                if res.status() == StatusCode::OK {
                    flows.fetch_add(1, Ordering::Relaxed);
                    latencies.push(t0.elapsed());
                } else {
                    fail(res.status());
                }
            }
            latencies
        });
    }
    let mut latencies = Vec::new();
    while let Some(done) = workers.join_next().await {
        latencies.extend(done.expect("worker"));
    }
    let elapsed = started.elapsed().as_secs_f64();
    let after = evalsha_calls(&url).await;
    latencies.sort_unstable();
    let pct = |p: f64| {
        latencies
            .get(((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1)))
            .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    };
    let flows = flows.load(Ordering::Relaxed);
    let round_trips = after.saturating_sub(before);
    println!(
        "tower-otp request+verify over RedisStore: concurrency={concurrency} seconds={elapsed:.1} \
         flows={flows} failures={} flows_per_sec={:.0} evalsha_per_sec={:.0} \
         evalsha_per_flow={:.1} flow_p50_ms={:.2} flow_p99_ms={:.2}",
        failures.load(Ordering::Relaxed),
        flows as f64 / elapsed,
        round_trips as f64 / elapsed,
        if flows > 0 {
            round_trips as f64 / flows as f64
        } else {
            0.0
        },
        pct(0.50),
        pct(0.99),
    );
    let failures = failures.load(Ordering::Relaxed);
    if failures > 0 {
        // Nothing is meant to be refused: the figure above is not the
        // router's cost. Fail, so bench/redis_throughput.sh fails too.
        eprintln!(
            "{failures} flows failed, the first with status {}",
            first_failure.load(Ordering::Relaxed)
        );
        std::process::exit(1);
    }
}
