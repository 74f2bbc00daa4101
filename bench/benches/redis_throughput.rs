//! OTP request + verify throughput over `RedisStore` (driver for
//! `bench/redis_throughput.sh`, which starts the server and runs
//! `redis-benchmark` next to it).
//!
//! Run: `REDIS_URL=redis://127.0.0.1:6379 CONCURRENCY=50 BENCH_SECONDS=10 \
//!       cargo bench --manifest-path bench/Cargo.toml --bench redis_throughput`
//!
//! `CONCURRENCY` tasks each loop request + verify for fresh phone numbers
//! through the in-process router (`tower_otp_bench::flows`, shared with
//! `memory_flows`): the figure is the router + store cost. Round trips are
//! counted on the server (`INFO commandstats`).

use std::time::Duration;

use tower_otp::store::RedisStore;
use tower_otp_bench::flows::{self, Codes, env};

/// Round trips the store made so far: `EVALSHA` calls (commands run inside
/// the scripts are not round trips and are not counted).
async fn evalsha_calls(url: &str) -> u64 {
    info(url, "commandstats")
        .await
        .lines()
        .find_map(|l| l.strip_prefix("cmdstat_evalsha:calls="))
        .and_then(|v| v.split(',').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// The CPU time (user + system, seconds) the Redis server used so far.
async fn redis_cpu(url: &str) -> f64 {
    info(url, "cpu")
        .await
        .lines()
        .filter_map(|l| {
            let v = l
                .strip_prefix("used_cpu_user:")
                .or_else(|| l.strip_prefix("used_cpu_sys:"))?;
            v.trim().parse::<f64>().ok()
        })
        .sum()
}

async fn info(url: &str, section: &str) -> String {
    let client = redis::Client::open(url).expect("REDIS_URL");
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("connect for INFO");
    redis::cmd("INFO")
        .arg(section)
        .query_async(&mut conn)
        .await
        .expect("INFO")
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
    let router = flows::router(store, codes.clone());
    let before = evalsha_calls(&url).await;
    let (redis_before, cpu_before) = (redis_cpu(&url).await, flows::cpu_time());
    let outcome = flows::drive(
        router,
        codes,
        concurrency,
        Duration::from_secs(seconds),
        None,
        String::new,
    )
    .await;
    let after = evalsha_calls(&url).await;
    let (redis_after, cpu_after) = (redis_cpu(&url).await, flows::cpu_time());
    let per_flow_us = |secs: f64| {
        if outcome.flows > 0 {
            secs * 1e6 / outcome.flows as f64
        } else {
            0.0
        }
    };
    let client_us = match (cpu_before, cpu_after) {
        (Some(b), Some(a)) => per_flow_us((a - b).as_secs_f64()),
        _ => 0.0,
    };
    let redis_us = per_flow_us(redis_after - redis_before);
    let elapsed = outcome.elapsed.as_secs_f64();
    let flows = outcome.flows;
    let round_trips = after.saturating_sub(before);
    println!(
        "tower-otp request+verify over RedisStore: concurrency={concurrency} seconds={elapsed:.1} \
         flows={flows} failures={} flows_per_sec={:.0} evalsha_per_sec={:.0} \
         evalsha_per_flow={:.1} flow_p50_ms={:.2} flow_p99_ms={:.2} \
         client_cpu_us_per_flow={client_us:.1} redis_cpu_us_per_flow={redis_us:.1}",
        outcome.failed(),
        outcome.flows_per_sec(),
        round_trips as f64 / elapsed,
        if flows > 0 {
            round_trips as f64 / flows as f64
        } else {
            0.0
        },
        outcome.percentile_ms(0.50),
        outcome.percentile_ms(0.99),
    );
    // Nothing is meant to be refused: a failure means the figure above is
    // not the router's cost.
    outcome.exit_on_failure();
}
