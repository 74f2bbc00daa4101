//! OTP request + verify throughput over `MemoryStore` (driver for
//! `bench/memory_flows.sh`), the in-memory counterpart of
//! `redis_throughput`: the same router, limits and loop
//! (`tower_otp_bench::flows`).
//!
//! Run: `CONCURRENCY=50 BENCH_SECONDS=10 \
//!       cargo bench --manifest-path bench/Cargo.toml --bench memory_flows`
//!
//! `INTERVAL_SECS` (default 5; 0: none) prints the flows/s and CPU µs per
//! flow of every interval with the process's RSS and what the store holds,
//! so a long run (`BENCH_SECONDS=60`) shows whether the rate stays steady
//! as the store fills. Then the same loop drives the peer
//! (`tower_otp_bench::peer_flow`, the contract hand-built from governor,
//! moka and jsonwebtoken) for `PEER_SECONDS` (default: as long; 0 skips).
//! The store has its default bounds unless
//! `MAX_CAPACITY`, `MAX_RECORDS` or `MAX_RATE_KEYS` set them (the script
//! raises the last two so that a run does not fill them).

use std::time::Duration;

use tower_otp::store::MemoryStore;
use tower_otp_bench::flows::{self, Codes, env, env_opt};

/// The resident memory of this process in MiB (Linux; `?` elsewhere).
fn rss_mib() -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            let kib = s.lines().find_map(|l| l.strip_prefix("VmRSS:"))?;
            let kib: u64 = kib.trim().trim_end_matches("kB").trim().parse().ok()?;
            Some((kib / 1024).to_string())
        })
        .unwrap_or_else(|| "?".into())
}

#[tokio::main]
async fn main() {
    // `cargo bench` passes `--bench`; nothing else is taken from argv.
    let concurrency: usize = env("CONCURRENCY", 50);
    let seconds: u64 = env("BENCH_SECONDS", 10);
    let interval: u64 = env("INTERVAL_SECS", 5);
    let mut builder = MemoryStore::builder();
    if let Some(n) = env_opt("MAX_CAPACITY") {
        builder = builder.max_capacity(n);
    }
    if let Some(n) = env_opt("MAX_RECORDS") {
        builder = builder.max_records(n);
    }
    if let Some(n) = env_opt("MAX_RATE_KEYS") {
        builder = builder.max_rate_keys(n);
    }
    let store = builder.build();
    let codes = Codes::default();
    let router = flows::router(store.clone(), codes.clone());
    // The store's `Debug` counts its challenges, records and rate keys.
    let held = store.clone();
    let report = move || format!("rss_mib={} {held:?}", rss_mib());
    let outcome = flows::drive(
        router,
        codes,
        concurrency,
        Duration::from_secs(seconds),
        (interval > 0).then(|| Duration::from_secs(interval)),
        report,
    )
    .await;
    println!(
        "tower-otp request+verify over MemoryStore: concurrency={concurrency} seconds={:.1} \
         flows={} failures={} flows_per_sec={:.0} flow_p50_ms={:.2} flow_p99_ms={:.2} \
         held_at_end={store:?}",
        outcome.elapsed.as_secs_f64(),
        outcome.flows,
        outcome.failed(),
        outcome.flows_per_sec(),
        outcome.percentile_ms(0.50),
        outcome.percentile_ms(0.99),
    );
    // The peer (`tower_otp_bench::peer_flow`) over the same loop, after
    // ours, in the same process: PEER_SECONDS (default: as long; 0 skips).
    // A failed run of ours is no figure to compare; our store is dropped
    // first, so the peer starts on an empty heap too.
    outcome.exit_on_failure();
    drop(store);
    let peer_seconds: u64 = env("PEER_SECONDS", seconds);
    if peer_seconds > 0 {
        let codes = Codes::default();
        let peer = tower_otp_bench::peer_flow::router(codes.clone());
        let peer_outcome = flows::drive(
            peer,
            codes,
            concurrency,
            Duration::from_secs(peer_seconds),
            (interval > 0).then(|| Duration::from_secs(interval)),
            || format!("rss_mib={}", rss_mib()),
        )
        .await;
        println!(
            "peer (governor + moka + jsonwebtoken, axum) request+verify: concurrency={concurrency} \
             seconds={:.1} flows={} failures={} flows_per_sec={:.0} flow_p50_ms={:.2} \
             flow_p99_ms={:.2}",
            peer_outcome.elapsed.as_secs_f64(),
            peer_outcome.flows,
            peer_outcome.failed(),
            peer_outcome.flows_per_sec(),
            peer_outcome.percentile_ms(0.50),
            peer_outcome.percentile_ms(0.99),
        );
        peer_outcome.exit_on_failure();
    }
}
