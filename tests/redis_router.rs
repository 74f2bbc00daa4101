//! Two `OtpRouter` instances on two ports sharing one private Redis: limits
//! and single use hold across instances; a dead Redis answers 503 and a
//! restarted one is used again by the same routers. Real HTTP over loopback.
#![cfg(all(feature = "redis", feature = "axum"))]

mod support;

use std::time::{Duration, Instant};

use axum::Router;
use http::StatusCode;
use serde_json::{Value, json};
use support::http::{Http, serve};
use support::redis_server::{self, RedisServer};
use tower_otp::clock::ManualClock;
use tower_otp::notify::MemoryNotifier;
use tower_otp::otp::{Limits, OtpRouter};
use tower_otp::quota::Quota;
use tower_otp::store::RedisStore;

const SECRET: &str = "rD7kW2qZ9xM4vT6nB1cH8pL3jF5sG0yA";

fn phone() -> String {
    // A random number in +1 415 555 xxxx.
    format!("+1415555{:04}", rand::random::<u16>() % 10_000)
}

/// One router instance on its own port, with its own store connection.
async fn instance(
    url: &str,
    prefix: &str,
    clock: &ManualClock,
    notifier: &MemoryNotifier,
    tune: impl FnOnce(&mut tower_otp::otp::OtpConfig),
) -> Http {
    let store = RedisStore::builder(url)
        .prefix(prefix)
        .timeout(Duration::from_millis(300))
        .connect()
        .await
        .unwrap();
    let auth = OtpRouter::builder(store, notifier.clone())
        .secret(SECRET)
        .clock(clock.clone())
        .configure(tune)
        .build()
        .unwrap();
    Http::new(serve(Router::new().nest_service("/auth", auth)).await)
}

/// `GET` without credentials.
async fn get(http: &Http, path: &str) -> StatusCode {
    http.send(http::Method::GET, path, &[], bytes::Bytes::new())
        .await
        .status
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_limit_per_identifier_holds_across_instances() {
    let Some(server) = redis_server::shared() else {
        return;
    };
    let prefix = support::conformance::unique("router");
    let clock = ManualClock::default();
    let notifier = MemoryNotifier::new();
    // Per-IP limit out of the way: every request comes from 127.0.0.1.
    let tune = |c: &mut tower_otp::otp::OtpConfig| {
        let mut limits = Limits::default();
        limits.request_per_ip = Quota::per_hour(1000);
        c.limits = limits;
    };
    let a = instance(&server.url(), &prefix, &clock, &notifier, tune).await;
    let b = instance(&server.url(), &prefix, &clock, &notifier, tune).await;
    let to = phone();
    let body = json!({ "phone": to });

    let mut statuses = Vec::new();
    for i in 0..8 {
        let http = if i % 2 == 0 { &a } else { &b };
        let reply = http.post_json("/auth/otp/request", &body).await;
        if reply.status == StatusCode::TOO_MANY_REQUESTS {
            assert_eq!(reply.code(), "rate_limited");
        }
        statuses.push(reply.status.as_u16());
        // Past the 30 s resend cooldown, well within the hour.
        clock.advance(Duration::from_secs(31));
    }
    assert_eq!(statuses, [202, 202, 202, 429, 429, 429, 429, 429]);
    assert_eq!(notifier.messages().iter().filter(|m| m.to == to).count(), 3);

    // 3/hour refills one every 20 minutes (the first was ~4 min ago).
    clock.advance(Duration::from_secs(16 * 60 + 10));
    let reply = b.post_json("/auth/otp/request", &body).await;
    assert_eq!(reply.status, StatusCode::ACCEPTED);
    let reply = a.post_json("/auth/otp/request", &body).await;
    assert_eq!(reply.status, StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_concurrent_verifies_one_success() {
    let Some(server) = redis_server::shared() else {
        return;
    };
    let prefix = support::conformance::unique("router");
    let clock = ManualClock::default();
    let notifier = MemoryNotifier::new();
    // Limits and attempts high enough that all 200 reach the single-use
    // race instead of being stopped earlier.
    let tune = |c: &mut tower_otp::otp::OtpConfig| {
        let mut limits = Limits::default();
        limits.verify_per_identifier = Quota::per_hour(1000);
        limits.verify_per_ip = Quota::per_hour(1000);
        c.limits = limits;
        c.max_attempts = 1000;
    };
    let a = instance(&server.url(), &prefix, &clock, &notifier, tune).await;
    let b = instance(&server.url(), &prefix, &clock, &notifier, tune).await;
    let to = phone();
    let reply = a
        .post_json("/auth/otp/request", &json!({ "phone": to }))
        .await;
    assert_eq!(reply.status, StatusCode::ACCEPTED);
    let code = notifier.last_code(&to).expect("a code was sent");

    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..200 {
        let http = if i % 2 == 0 { a.clone() } else { b.clone() };
        let body = json!({ "phone": to, "code": code });
        tasks.spawn(async move { http.post_json("/auth/otp/verify", &body).await });
    }
    let (mut ok, mut invalid, mut other) = (0, 0, Vec::new());
    while let Some(result) = tasks.join_next().await {
        let reply = result.unwrap();
        match reply.status {
            StatusCode::OK => {
                assert!(reply.json()["access_token"].is_string());
                ok += 1;
            }
            StatusCode::BAD_REQUEST if reply.code() == "invalid_code" => invalid += 1,
            status => other.push((status, reply.json())),
        }
    }
    assert_eq!(
        (ok, invalid, other),
        (1, 199, Vec::<(StatusCode, Value)>::new())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_redis_is_503_then_recovers() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let clock = ManualClock::default();
    let notifier = MemoryNotifier::new();
    let a = instance(&server.url(), "tower-otp", &clock, &notifier, |_| {}).await;

    let reply = a
        .post_json("/auth/otp/request", &json!({ "phone": phone() }))
        .await;
    assert_eq!(reply.status, StatusCode::ACCEPTED);
    assert_eq!(get(&a, "/auth/health/ready").await, StatusCode::OK);

    server.kill();
    for _ in 0..3 {
        let started = Instant::now();
        let reply = a
            .post_json("/auth/otp/request", &json!({ "phone": phone() }))
            .await;
        let took = started.elapsed();
        assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(reply.code(), "store_unavailable");
        assert!(took < Duration::from_secs(2), "503 took {took:?}");
        let ready = a
            .send(
                http::Method::GET,
                "/auth/health/ready",
                &[],
                bytes::Bytes::new(),
            )
            .await;
        assert_eq!(ready.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(ready.json()["component"], "store");
        // Live stays live: the process is fine, its store is not.
        assert_eq!(get(&a, "/auth/health/live").await, StatusCode::OK);
    }

    server.restart();
    let mut recovered = false;
    for _ in 0..100 {
        clock.advance(Duration::from_secs(31));
        let reply = a
            .post_json("/auth/otp/request", &json!({ "phone": phone() }))
            .await;
        if reply.status == StatusCode::ACCEPTED {
            recovered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(recovered, "the router did not recover within 10 s");
    assert_eq!(get(&a, "/auth/health/ready").await, StatusCode::OK);
}

/// One store step per endpoint step: a code request is one script, a
/// verify two (limits + attempt, then consume + session), a refresh one —
/// three scripts for a login, counted on a private server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_is_three_redis_scripts() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let clock = ManualClock::default();
    let notifier = MemoryNotifier::new();
    let prefix = support::conformance::unique("steps");
    let http = instance(&server.url(), &prefix, &clock, &notifier, |_| {}).await;
    let to = phone();
    // Commands a script runs count in `INFO commandstats` too, so the
    // round trips are the EVALSHA calls (the store sends nothing else here).
    let evalsha = |before: &std::collections::BTreeMap<String, u64>| {
        let calls = server.calls_since(before);
        for name in ["eval", "exists", "script", "multi"] {
            assert!(!calls.contains_key(name), "{name}: {calls:?}");
        }
        calls.get("evalsha").copied().unwrap_or(0)
    };

    let before = server.command_calls();
    let reply = http
        .post_json("/auth/otp/request", &json!({ "phone": to }))
        .await;
    assert_eq!(reply.status, StatusCode::ACCEPTED);
    assert_eq!(evalsha(&before), 1, "request");

    let code = notifier.last_code(&to).unwrap();
    let before = server.command_calls();
    let reply = http
        .post_json("/auth/otp/verify", &json!({ "phone": to, "code": code }))
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(evalsha(&before), 2, "verify");

    let refresh = reply.json()["refresh_token"].as_str().unwrap().to_owned();
    let before = server.command_calls();
    let reply = http
        .post_json("/auth/token/refresh", &json!({ "refresh_token": refresh }))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.json());
    assert_eq!(evalsha(&before), 1, "refresh");

    // A wrong code is one script: nothing to consume.
    let before = server.command_calls();
    let reply = http
        .post_json(
            "/auth/otp/verify",
            &json!({ "phone": to, "code": "000000" }),
        )
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(evalsha(&before), 1, "wrong code");
}
