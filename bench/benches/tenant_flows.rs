//! The cost of serving through the tenant path: OTP request + verify flows
//! over `MemoryStore` by a single-app `OtpRouter`, and by the multi-tenant
//! one (API key verified by `ApiKeyLayer`, tenant resolved per request,
//! quota reserved and usage counted per request, analytics recorded) — the
//! same loop (`tower_otp_bench::flows`), alternating in one process.
//!
//! Run: `ROUNDS=3 ROUND_SECONDS=10 CONCURRENCY=50 \
//!       cargo bench --manifest-path bench/Cargo.toml --bench tenant_flows`
//!
//! Each round runs the single-app router, the tenant path (a tenant with
//! the default config: no quota, so its usage counts wait for the
//! analytics flush) and the tenant path with a daily quota (each message
//! reserved in the store on the request path), each on a fresh store, for
//! `ROUND_SECONDS`; the last line gives the flows/s of each over all rounds
//! and their ratios to the single app. `ONLY=tenant` (or `single-app`)
//! runs one of them, for a profiler.

use std::time::Duration;

use http::HeaderValue;
use serde_json::json;
use tower::ServiceBuilder;
use tower_otp::api_key::{ApiKeyLayer, ApiKeys};
use tower_otp::store::MemoryStore;
use tower_otp::tenant::{TenantConfig, Tenants, WebhookUrls, key_free};
use tower_otp_bench::flows::{self, Codes, Outcome, env};

fn store() -> MemoryStore {
    MemoryStore::builder()
        .max_records(10_000_000)
        .max_rate_keys(30_000_000)
        .build()
}

async fn single_app(concurrency: usize, run: Duration) -> Outcome {
    let codes = Codes::default();
    let router = flows::router(store(), codes.clone());
    flows::drive(router, codes, concurrency, run, None, String::new).await
}

/// The single-app router behind the same `ApiKeyLayer` as the tenant path:
/// what the key check alone costs.
async fn single_app_with_key(concurrency: usize, run: Duration) -> Outcome {
    let store = store();
    let codes = Codes::default();
    let keys = ApiKeys::builder(store.clone()).build().expect("keys");
    let key = keys
        .issue("bench", Vec::<String>::new(), "bench", None)
        .await
        .expect("key");
    let key = HeaderValue::from_str(key.key()).expect("key header");
    let api = ServiceBuilder::new()
        .map_request(move |mut req: http::Request<_>| {
            req.headers_mut().insert("x-api-key", key.clone());
            req
        })
        .layer(ApiKeyLayer::builder(keys).build().expect("layer"))
        .service(flows::router(store, codes.clone()));
    flows::drive(api, codes, concurrency, run, None, String::new).await
}

async fn tenant_path(concurrency: usize, run: Duration, quotas: bool) -> Outcome {
    let store = store();
    let codes = Codes::default();
    let keys = ApiKeys::builder(store.clone()).build().expect("keys");
    let tenants = Tenants::builder(store.clone(), keys.clone())
        .build()
        .expect("tenants");
    // The limits the single-app bench raises (one client address), raised
    // the same way in the tenant's config; the others keep their defaults.
    let lots = json!({"n": 1_000_000, "per_secs": 3600});
    let mut config = json!({"limits": {"request_per_ip": lots}});
    if quotas {
        // A quota is reserved on the request path (one more store step).
        config["quotas"] = json!({"daily": 1_000_000_000});
    }
    let config = TenantConfig::from_value(config, WebhookUrls::HttpsOnly).expect("config");
    tenants
        .create("bench", "Bench", config)
        .await
        .expect("tenant");
    let key = tenants
        .issue_key("bench", "bench", Vec::new())
        .await
        .expect("key");
    let key = HeaderValue::from_str(key.key()).expect("key header");
    let router = flows::tenant_router(store, codes.clone(), tenants);
    let api = ServiceBuilder::new()
        .map_request(move |mut req: http::Request<_>| {
            req.headers_mut().insert("x-api-key", key.clone());
            req
        })
        .layer(
            ApiKeyLayer::builder(keys)
                .exempt(key_free)
                .build()
                .expect("layer"),
        )
        .service(router);
    flows::drive(api, codes, concurrency, run, None, String::new).await
}

#[tokio::main]
async fn main() {
    let concurrency: usize = env("CONCURRENCY", 50);
    let rounds: u32 = env("ROUNDS", 3);
    let run = Duration::from_secs(env("ROUND_SECONDS", 10));
    // `ONLY=tenant` (or `single-app`, `tenant+quota`) runs one path, for a
    // profiler.
    let only: Option<String> = std::env::var("ONLY").ok();
    let (mut single, mut keyed, mut tenant, mut quota) = Default::default();
    for round in 1..=rounds {
        for (name, total) in [
            ("single-app", &mut single),
            ("single-app+key", &mut keyed),
            ("tenant", &mut tenant),
            ("tenant+quota", &mut quota),
        ] {
            if only.as_deref().is_some_and(|only| only != name) {
                continue;
            }
            let cpu = flows::cpu_time();
            let outcome = match name {
                "single-app" => single_app(concurrency, run).await,
                "single-app+key" => single_app_with_key(concurrency, run).await,
                "tenant" => tenant_path(concurrency, run, false).await,
                _ => tenant_path(concurrency, run, true).await,
            };
            outcome.exit_on_failure();
            let cpu_us = match (flows::cpu_time(), cpu) {
                (Some(after), Some(before)) if outcome.flows > 0 => format!(
                    "{:.1}",
                    (after - before).as_secs_f64() * 1e6 / outcome.flows as f64
                ),
                _ => "?".into(),
            };
            println!(
                "round {round} {name}: flows={} flows_per_sec={:.0} cpu_us_per_flow={cpu_us} \
                 flow_p50_ms={:.2} flow_p99_ms={:.2}",
                outcome.flows,
                outcome.flows_per_sec(),
                outcome.percentile_ms(0.50),
                outcome.percentile_ms(0.99),
            );
            let total: &mut (u64, f64) = total;
            total.0 += outcome.flows;
            total.1 += outcome.elapsed.as_secs_f64();
        }
    }
    let rate = |(flows, secs): (u64, f64)| flows as f64 / secs;
    println!(
        "tenant path vs single app over MemoryStore: concurrency={concurrency} rounds={rounds} \
         single_flows_per_sec={:.0} keyed_flows_per_sec={:.0} key_ratio={:.3} \
         tenant_flows_per_sec={:.0} ratio={:.3} tenant_quota_flows_per_sec={:.0} quota_ratio={:.3}",
        rate(single),
        rate(keyed),
        rate(keyed) / rate(single),
        rate(tenant),
        rate(tenant) / rate(single),
        rate(quota),
        rate(quota) / rate(single),
    );
}
