//! The multi-tenant OTP service over real sockets, on `MemoryStore` and on
//! a private Redis: tenants are isolated (codes, limits, sessions, usage),
//! each runs under its own config, quotas hold exactly under concurrency,
//! suspension / key rotation / revocation apply, a config change reaches a
//! second instance within the cache bound, CORS follows each tenant's
//! origins and each tenant's events go to its own signed webhook.
#![cfg(all(
    feature = "axum",
    feature = "moka",
    feature = "redis",
    feature = "http-notifier"
))]

mod support;

use std::time::Duration;

use axum::Router;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use http::{Method, StatusCode};
use serde_json::{Value, json};
use support::http::{Http, Reply, serve};
use support::redis_server;
use tower::ServiceBuilder;
use tower_otp::api_key::{ApiKeyLayer, ApiKeys};
use tower_otp::clock::{Clock, ManualClock};
use tower_otp::events::{EventKind, MemorySink};
use tower_otp::notify::MemoryNotifier;
use tower_otp::otp::OtpRouter;
use tower_otp::store::{MemoryStore, RedisStore, Store};
use tower_otp::tenant::usage::Day;
use tower_otp::tenant::{TenantConfig, TenantStatus, Tenants, WebhookUrls, key_free};

const SECRET: &str = "rD7kW2qZ9xM4vT6nB1cH8pL3jF5sG0yA";

/// One instance of the service: the tenant API under `/v1/auth`.
struct Svc<S> {
    http: Http,
    tenants: Tenants<S>,
    router: OtpRouter<S, MemoryNotifier>,
    notifier: MemoryNotifier,
    events: MemorySink,
}

/// An instance over `store`, its API keys cached for `key_cache` (zero:
/// every request reads the key, so a revocation applies at once).
async fn service<S: Store>(store: S, clock: &ManualClock, key_cache: Duration) -> Svc<S> {
    let keys = ApiKeys::builder(store.clone())
        .clock(clock.clone())
        .cache_ttl(key_cache)
        .build()
        .unwrap();
    let tenants = Tenants::builder(store.clone(), keys.clone())
        .clock(clock.clone())
        .webhook_urls(WebhookUrls::AllowHttp)
        .build()
        .unwrap();
    let notifier = MemoryNotifier::new();
    let events = MemorySink::new();
    let router = OtpRouter::builder(store, notifier.clone())
        .secret(SECRET)
        .clock(clock.clone())
        .events(events.clone())
        .tenants(tenants.clone())
        .build()
        .unwrap();
    let api = ServiceBuilder::new()
        .layer(ApiKeyLayer::builder(keys).exempt(key_free).build().unwrap())
        .layer(tenants.cors_layer())
        .service(router.clone());
    let http = Http::new(serve(Router::new().nest_service("/v1/auth", api)).await);
    Svc {
        http,
        tenants,
        router,
        notifier,
        events,
    }
}

/// A tenant with `config`; answers its first API key.
async fn tenant<S: Store>(svc: &Svc<S>, id: &str, config: Value) -> String {
    let config = TenantConfig::from_value(config, WebhookUrls::AllowHttp).unwrap();
    svc.tenants.create(id, id, config).await.unwrap();
    svc.tenants
        .issue_key(id, "test", Vec::new())
        .await
        .unwrap()
        .key()
        .to_owned()
}

/// Limits wide enough for a test that sends many requests.
fn wide() -> Value {
    let wide = json!({"n": 1000, "per_secs": 3600});
    json!({"limits": {"request_per_identifier": wide, "request_per_ip": wide,
        "verify_per_identifier": wide, "resend_cooldown_secs": 0}})
}

async fn post(http: &Http, key: &str, path: &str, body: &Value) -> Reply {
    http.send(
        Method::POST,
        &format!("/v1/auth{path}"),
        &[("content-type", "application/json"), ("x-api-key", key)],
        body.to_string(),
    )
    .await
}

async fn with_bearer(http: &Http, method: Method, key: &str, path: &str, token: &str) -> Reply {
    let auth = format!("Bearer {token}");
    http.send(
        method,
        &format!("/v1/auth{path}"),
        &[("x-api-key", key), ("authorization", &auth)],
        Bytes::new(),
    )
    .await
}

/// Requests a code for `who` (`{"phone":…}` or `{"email":…}`) and reads it.
async fn code<S>(svc: &Svc<S>, key: &str, who: &Value) -> String {
    let res = post(&svc.http, key, "/otp/request", who).await;
    assert_eq!(res.status, StatusCode::ACCEPTED, "{:?}", res.json());
    let to = who["phone"].as_str().or(who["email"].as_str()).unwrap();
    svc.notifier.last_code(to).unwrap()
}

async fn login<S>(svc: &Svc<S>, key: &str, who: &Value) -> Value {
    let code = code(svc, key, who).await;
    let mut body = who.clone();
    body["code"] = json!(code);
    let res = post(&svc.http, key, "/otp/verify", &body).await;
    assert_eq!(res.status, StatusCode::OK, "{:?}", res.json());
    res.json()
}

/// The claims of a JWT (not verified: the router signed it).
fn claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

async fn usage_today<S: Store>(svc: &Svc<S>, clock: &ManualClock, id: &str) -> Value {
    let today = Day::of(clock.now());
    let report = svc.tenants.usage(id, today, today).await.unwrap();
    serde_json::to_value(report).unwrap()["days"][0].clone()
}

fn clock() -> ManualClock {
    // 2026-12-01T10:00:00Z: far from a day boundary.
    ManualClock::at(std::time::UNIX_EPOCH + Duration::from_secs(1_796_119_200))
}

/// Tenant B's key can neither verify A's code, refresh A's session, use
/// A's access token, nor count against A's limits; and A's state is
/// untouched by B's attempts.
async fn isolation<S: Store>(store: S) {
    let clock = clock();
    let svc = service(store, &clock, Duration::from_secs(5)).await;
    let a = tenant(&svc, "iso-a", json!({})).await;
    let b = tenant(&svc, "iso-b", json!({})).await;
    let who = json!({"phone": "+14155550100"});

    // A's code does not verify for B (B has no challenge), and B's attempt
    // leaves A's challenge working.
    let code = code(&svc, &a, &who).await;
    let mut body = who.clone();
    body["code"] = json!(code);
    let res = post(&svc.http, &b, "/otp/verify", &body).await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST);
    assert_eq!(res.code(), "invalid_code");
    let res = post(&svc.http, &a, "/otp/verify", &body).await;
    assert_eq!(res.status, StatusCode::OK, "{:?}", res.json());
    let tokens = res.json();
    let access = tokens["access_token"].as_str().unwrap();
    let refresh = tokens["refresh_token"].as_str().unwrap();
    assert_eq!(claims(access)["aud"], "iso-a");

    // A's tokens mean nothing to B, and B's tries change nothing of A's.
    let res = post(
        &svc.http,
        &b,
        "/token/refresh",
        &json!({"refresh_token": refresh}),
    )
    .await;
    assert_eq!(
        (res.status, res.code().as_str()),
        (StatusCode::BAD_REQUEST, "invalid_grant")
    );
    assert_eq!(
        with_bearer(&svc.http, Method::GET, &b, "/session", access)
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        with_bearer(&svc.http, Method::POST, &b, "/logout", access)
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        with_bearer(&svc.http, Method::GET, &a, "/session", access)
            .await
            .status,
        StatusCode::OK,
        "B's logout attempt did not end A's session"
    );
    let res = post(
        &svc.http,
        &a,
        "/token/refresh",
        &json!({"refresh_token": refresh}),
    )
    .await;
    assert_eq!(
        res.status,
        StatusCode::OK,
        "B's refresh attempt spent nothing of A's"
    );

    // A's per-identifier limit (3/h) does not count B's requests, nor the
    // other way round.
    for _ in 0..2 {
        clock.advance(Duration::from_secs(31));
        assert_eq!(
            post(&svc.http, &a, "/otp/request", &who).await.status,
            StatusCode::ACCEPTED
        );
    }
    clock.advance(Duration::from_secs(31));
    let res = post(&svc.http, &a, "/otp/request", &who).await;
    assert_eq!(
        (res.status, res.code().as_str()),
        (StatusCode::TOO_MANY_REQUESTS, "rate_limited")
    );
    assert_eq!(
        post(&svc.http, &b, "/otp/request", &who).await.status,
        StatusCode::ACCEPTED
    );

    // Usage: each tenant sees only its own.
    let ua = usage_today(&svc, &clock, "iso-a").await;
    let ub = usage_today(&svc, &clock, "iso-b").await;
    assert_eq!(
        (
            ua["otp_requested"].as_u64(),
            ua["otp_verified"].as_u64(),
            ua["rate_limited"].as_u64()
        ),
        (Some(3), Some(1), Some(1)),
        "{ua}"
    );
    assert_eq!(
        (
            ub["otp_requested"].as_u64(),
            ub["otp_failed"].as_u64(),
            ub["otp_verified"].as_u64()
        ),
        (Some(1), Some(1), Some(0)),
        "{ub}"
    );
    // Every event names its tenant.
    assert!(svc.events.events().iter().all(|e| e.tenant.is_some()));
}

/// A tenant with 9-digit codes and 7-hour tokens gets them; another on the
/// same server keeps the defaults.
async fn config_per_tenant<S: Store>(store: S) {
    let clock = clock();
    let svc = service(store, &clock, Duration::from_secs(5)).await;
    let long = tenant(
        &svc,
        "cfg-long",
        json!({"code_length": 9, "access_ttl_secs": 25200}),
    )
    .await;
    let plain = tenant(&svc, "cfg-plain", json!({})).await;
    for (key, digits, ttl) in [(&long, 9, 25200), (&plain, 6, 900)] {
        let who = json!({"email": format!("u{digits}@example.com")});
        let code = code(&svc, key, &who).await;
        assert_eq!(code.len(), digits);
        assert!(code.bytes().all(|b| b.is_ascii_digit()));
        let mut body = who.clone();
        body["code"] = json!(code);
        let tokens = post(&svc.http, key, "/otp/verify", &body).await.json();
        assert_eq!(tokens["expires_in"], ttl);
        let c = claims(tokens["access_token"].as_str().unwrap());
        assert_eq!(c["exp"].as_u64().unwrap() - c["iat"].as_u64().unwrap(), ttl);
    }
}

/// The n+1-th message of the day is refused with `quota_exceeded` and not
/// sent; the quota fields and the event say so; usage is exact.
async fn quota<S: Store>(store: S) {
    let clock = clock();
    let svc = service(store, &clock, Duration::from_secs(5)).await;
    let mut config = wide();
    config["quotas"] = json!({"daily": 3, "monthly": 100});
    let key = tenant(&svc, "quota", config).await;
    for i in 0..3 {
        let res = post(
            &svc.http,
            &key,
            "/otp/request",
            &json!({"email": format!("q{i}@example.com")}),
        )
        .await;
        assert_eq!(res.status, StatusCode::ACCEPTED);
        let policy = res.header("ratelimit-policy");
        assert!(policy.contains("\"quota-daily\";q=3;w=86400"), "{policy}");
        assert!(policy.contains("\"quota-monthly\";q=100"), "{policy}");
        let remaining = res.header("ratelimit");
        assert!(
            remaining.contains(&format!("\"quota-daily\";r={};t=", 2 - i)),
            "{remaining}"
        );
    }
    let res = post(
        &svc.http,
        &key,
        "/otp/request",
        &json!({"email": "q3@example.com"}),
    )
    .await;
    assert_eq!(res.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(res.code(), "quota_exceeded");
    assert_eq!(res.json()["violated-policies"], json!(["quota-daily"]));
    // 10:00 UTC: the day's quota returns at midnight, 14 h later.
    assert_eq!(res.header("retry-after"), "50400");
    assert!(
        res.header("ratelimit")
            .contains("\"quota-daily\";r=0;t=50400")
    );
    assert_eq!(
        svc.notifier.messages().len(),
        3,
        "nothing sent for the refused request"
    );
    assert!(svc.notifier.last_code("q3@example.com").is_none());
    assert!(svc.events.kinds().contains(&EventKind::QuotaExceeded));
    let u = usage_today(&svc, &clock, "quota").await;
    assert_eq!(
        (
            u["messages_sent"].as_u64(),
            u["otp_requested"].as_u64(),
            u["rate_limited"].as_u64()
        ),
        (Some(3), Some(3), Some(1)),
        "{u}"
    );
    // The next UTC day has a fresh daily quota; the month counts on.
    clock.advance(Duration::from_secs(14 * 3600));
    let res = post(
        &svc.http,
        &key,
        "/otp/request",
        &json!({"email": "q4@example.com"}),
    )
    .await;
    assert_eq!(res.status, StatusCode::ACCEPTED);
    assert!(
        res.header("ratelimit").contains("\"quota-monthly\";r=96;"),
        "{}",
        res.header("ratelimit")
    );
}

/// 64 concurrent code requests under a daily quota of 40: exactly 40 pass
/// and are sent; then 64 concurrent verifications (the 40 right codes and
/// 24 wrong ones): the usage counters are exact.
async fn concurrent_usage<S: Store>(store: S) {
    let clock = clock();
    let svc = service(store, &clock, Duration::from_secs(5)).await;
    let mut config = wide();
    config["quotas"] = json!({"daily": 40});
    let key = tenant(&svc, "busy", config).await;
    let requests = (0..64).map(|i| {
        let (http, key) = (svc.http.clone(), key.clone());
        tokio::spawn(async move {
            post(
                &http,
                &key,
                "/otp/request",
                &json!({"email": format!("c{i}@example.com")}),
            )
            .await
            .status
        })
    });
    let mut statuses = Vec::new();
    for r in requests.collect::<Vec<_>>() {
        statuses.push(r.await.unwrap());
    }
    let accepted = statuses
        .iter()
        .filter(|s| **s == StatusCode::ACCEPTED)
        .count();
    let refused = statuses
        .iter()
        .filter(|s| **s == StatusCode::TOO_MANY_REQUESTS)
        .count();
    assert_eq!((accepted, refused), (40, 24), "{statuses:?}");
    let sent = svc.notifier.messages();
    assert_eq!(sent.len(), 40);
    let verifies = (0..64).map(|i| {
        let (http, key) = (svc.http.clone(), key.clone());
        let code = sent.get(i).map(|m| (m.to.clone(), m.code.clone()));
        tokio::spawn(async move {
            let (to, code) = code.unwrap_or((format!("c{i}@example.com"), "000000".into()));
            post(
                &http,
                &key,
                "/otp/verify",
                &json!({"email": to, "code": code}),
            )
            .await
            .status
        })
    });
    let mut ok = 0;
    for v in verifies.collect::<Vec<_>>() {
        ok += usize::from(v.await.unwrap() == StatusCode::OK);
    }
    assert_eq!(ok, 40);
    let u = usage_today(&svc, &clock, "busy").await;
    assert_eq!(
        (
            u["otp_requested"].as_u64(),
            u["messages_sent"].as_u64(),
            u["rate_limited"].as_u64(),
            u["otp_verified"].as_u64(),
            u["otp_failed"].as_u64()
        ),
        (Some(40), Some(40), Some(24), Some(40), Some(24)),
        "{u}"
    );
}

/// A suspended tenant's keys get `403 tenant_suspended`; reactivated, they
/// work again.
async fn suspension<S: Store>(store: S) {
    let clock = clock();
    let svc = service(store, &clock, Duration::from_secs(5)).await;
    let key = tenant(&svc, "susp", json!({})).await;
    let who = json!({"email": "s@example.com"});
    assert_eq!(
        post(&svc.http, &key, "/otp/request", &who).await.status,
        StatusCode::ACCEPTED
    );
    svc.tenants
        .set_status("susp", TenantStatus::Suspended)
        .await
        .unwrap();
    let res = post(&svc.http, &key, "/otp/request", &who).await;
    assert_eq!(
        (res.status, res.code().as_str()),
        (StatusCode::FORBIDDEN, "tenant_suspended")
    );
    let res = post(
        &svc.http,
        &key,
        "/otp/verify",
        &json!({"email": "s@example.com", "code": "123456"}),
    )
    .await;
    assert_eq!(res.status, StatusCode::FORBIDDEN);
    svc.tenants
        .set_status("susp", TenantStatus::Active)
        .await
        .unwrap();
    clock.advance(Duration::from_secs(31));
    assert_eq!(
        post(&svc.http, &key, "/otp/request", &who).await.status,
        StatusCode::ACCEPTED
    );
    // No key, a wrong key: 401 before any tenant is looked at.
    let res = svc
        .http
        .send(
            Method::POST,
            "/v1/auth/otp/request",
            &[("content-type", "application/json")],
            who.to_string(),
        )
        .await;
    assert_eq!(
        (res.status, res.code().as_str()),
        (StatusCode::UNAUTHORIZED, "invalid_api_key")
    );
}

/// A rotated key works through its grace period and not after.
async fn rotation<S: Store>(store: S) {
    let clock = clock();
    let svc = service(store, &clock, Duration::ZERO).await;
    let old = tenant(&svc, "rot", wide()).await;
    let key_id = svc.tenants.keys("rot").await.unwrap()[0].key_id.clone();
    let new = svc
        .tenants
        .rotate_key("rot", &key_id, Duration::from_secs(60))
        .await
        .unwrap()
        .key()
        .to_owned();
    let who = json!({"email": "r@example.com"});
    for key in [&old, &new] {
        let res = post(&svc.http, key, "/otp/request", &who).await;
        assert_eq!(res.status, StatusCode::ACCEPTED, "{:?}", res.json());
    }
    clock.advance(Duration::from_secs(61));
    assert_eq!(
        post(&svc.http, &old, "/otp/request", &who).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        post(&svc.http, &new, "/otp/request", &who).await.status,
        StatusCode::ACCEPTED
    );
}

/// Sessions are per tenant: the same person (one subject id) logged in at
/// two tenants sees only one tenant's sessions there, a global logout ends
/// only that tenant's, and an admin's revoke names its tenant.
async fn sessions_per_tenant<S: Store>(store: S) {
    let clock = clock();
    let svc = service(store, &clock, Duration::ZERO).await;
    let a = tenant(&svc, "acme", wide()).await;
    let b = tenant(&svc, "globex", wide()).await;
    let who = json!({"phone": "+14155550123"});
    let a1 = login(&svc, &a, &who).await;
    let a2 = login(&svc, &a, &who).await;
    let b1 = login(&svc, &b, &who).await;
    let token = |t: &Value| t["access_token"].as_str().unwrap().to_owned();
    let sub = claims(&token(&a1))["sub"].as_str().unwrap().to_owned();
    assert_eq!(
        claims(&token(&b1))["sub"],
        sub.as_str(),
        "one person, one subject id"
    );
    let listed = |key: &str, t: &Value| {
        let (key, t) = (key.to_owned(), token(t));
        let http = svc.http.clone();
        async move {
            let res = with_bearer(&http, Method::GET, &key, "/sessions", &t).await;
            assert_eq!(res.status, StatusCode::OK, "{:?}", res.json());
            res.json()["sessions"].as_array().unwrap().len()
        }
    };
    assert_eq!(listed(&a, &a1).await, 2);
    assert_eq!(listed(&b, &b1).await, 1);
    let status = |key: &str, t: &Value, method: Method, path: &str| {
        let (key, t, path) = (key.to_owned(), token(t), path.to_owned());
        let http = svc.http.clone();
        async move { with_bearer(&http, method, &key, &path, &t).await.status }
    };
    // A's global logout ends A's sessions only.
    assert_eq!(
        status(&a, &a1, Method::POST, "/logout?scope=global").await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        status(&a, &a2, Method::GET, "/session").await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        status(&b, &b1, Method::GET, "/session").await,
        StatusCode::OK
    );
    // The admin's revoke of that subject at B.
    assert_eq!(
        svc.router
            .revoke_tenant_subject("globex", &sub)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        status(&b, &b1, Method::GET, "/session").await,
        StatusCode::UNAUTHORIZED
    );
    assert!(
        svc.router
            .revoke_tenant_subject("no such/id", &sub)
            .await
            .is_err()
    );
}

macro_rules! on_both_stores {
    ($($name:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(tower_otp::store::MemoryStore::new()).await;
                }
            )*
        }
        mod redis {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(store) = super::redis_store().await else { return };
                    super::$name(store).await;
                }
            )*
        }
    };
}

on_both_stores!(
    isolation,
    config_per_tenant,
    quota,
    concurrent_usage,
    suspension,
    rotation,
    sessions_per_tenant
);

/// A store on the shared private Redis, under a prefix of its own; `None`
/// (skipped loudly) without redis-server outside CI.
async fn redis_store() -> Option<RedisStore> {
    let server = redis_server::shared()?;
    Some(redis_on(&server.url(), &support::conformance::unique("tenants")).await)
}

async fn redis_on(url: &str, prefix: &str) -> RedisStore {
    RedisStore::builder(url)
        .prefix(prefix)
        .timeout(Duration::from_secs(2))
        .connect()
        .await
        .unwrap()
}

/// Two instances on one Redis: a config change made on the first applies
/// there at once and on the second within the tenant cache's 5 s; a
/// revoked key (key cache off) fails at once on both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_reach_every_instance_within_the_bound() {
    let Some(server) = redis_server::shared() else {
        return;
    };
    let prefix = support::conformance::unique("two");
    let clock = clock();
    let one = service(
        redis_on(&server.url(), &prefix).await,
        &clock,
        Duration::ZERO,
    )
    .await;
    let two = service(
        redis_on(&server.url(), &prefix).await,
        &clock,
        Duration::ZERO,
    )
    .await;
    let key = tenant(&one, "shared", wide()).await;
    let digits = |svc: &Svc<RedisStore>, to: &'static str| {
        let (svc_http, notifier, key) = (svc.http.clone(), svc.notifier.clone(), key.clone());
        async move {
            let res = post(&svc_http, &key, "/otp/request", &json!({"email": to})).await;
            assert_eq!(res.status, StatusCode::ACCEPTED, "{:?}", res.json());
            notifier.last_code(to).unwrap().len()
        }
    };
    assert_eq!(
        digits(&two, "a@example.com").await,
        6,
        "instance two caches the tenant"
    );
    one.tenants
        .update_config("shared", &json!({"code_length": 8}))
        .await
        .unwrap();
    assert_eq!(
        digits(&one, "b@example.com").await,
        8,
        "at once where it was made"
    );
    clock.advance(Duration::from_secs(4));
    assert_eq!(
        digits(&two, "c@example.com").await,
        6,
        "still cached within the bound"
    );
    clock.advance(Duration::from_secs(1));
    assert_eq!(
        digits(&two, "d@example.com").await,
        8,
        "applied once the 5 s bound passed"
    );

    // Suspension travels the same way.
    one.tenants
        .set_status("shared", TenantStatus::Suspended)
        .await
        .unwrap();
    clock.advance(Duration::from_secs(5));
    let res = post(
        &two.http,
        &key,
        "/otp/request",
        &json!({"email": "e@example.com"}),
    )
    .await;
    assert_eq!(res.code(), "tenant_suspended");
    one.tenants
        .set_status("shared", TenantStatus::Active)
        .await
        .unwrap();
    clock.advance(Duration::from_secs(5));

    // Revocation: at once on both (no key cache).
    assert_eq!(
        post(
            &two.http,
            &key,
            "/otp/request",
            &json!({"email": "f@example.com"})
        )
        .await
        .status,
        StatusCode::ACCEPTED
    );
    let key_id = one.tenants.keys("shared").await.unwrap()[0].key_id.clone();
    one.tenants.revoke_key("shared", &key_id).await.unwrap();
    for svc in [&one, &two] {
        let res = post(
            &svc.http,
            &key,
            "/otp/request",
            &json!({"email": "g@example.com"}),
        )
        .await;
        assert_eq!(
            (res.status, res.code().as_str()),
            (StatusCode::UNAUTHORIZED, "invalid_api_key")
        );
    }
}

/// A preflight is answered for an origin some tenant lists, not for an
/// unlisted one; a real request gets `Access-Control-Allow-Origin` only
/// for an origin of its own key's tenant.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_follows_each_tenants_origins() {
    let clock = clock();
    let svc = service(MemoryStore::new(), &clock, Duration::from_secs(5)).await;
    let a = tenant(&svc, "cors-a", json!({"cors_origins": ["https://a.test"]})).await;
    let b = tenant(&svc, "cors-b", json!({"cors_origins": ["https://b.test"]})).await;
    let preflight = |origin: &'static str| {
        let http = svc.http.clone();
        async move {
            http.send(
                Method::OPTIONS,
                "/v1/auth/otp/request",
                &[
                    ("origin", origin),
                    ("access-control-request-method", "POST"),
                    ("access-control-request-headers", "content-type, x-api-key"),
                ],
                Bytes::new(),
            )
            .await
        }
    };
    let ok = preflight("https://a.test").await;
    assert_eq!(ok.status, StatusCode::OK);
    assert_eq!(ok.header("access-control-allow-origin"), "https://a.test");
    let methods = ok
        .header("access-control-allow-methods")
        .to_ascii_uppercase();
    assert!(
        methods.contains("POST") && !methods.contains("PUT"),
        "{methods}"
    );
    assert!(
        ok.header("access-control-allow-headers")
            .contains("x-api-key")
    );
    assert_eq!(ok.header("access-control-max-age"), "600");
    let unlisted = preflight("https://evil.test").await;
    assert_eq!(unlisted.header("access-control-allow-origin"), "");

    let real = |key: &str, origin: &'static str| {
        let (http, key) = (svc.http.clone(), key.to_owned());
        async move {
            http.send(
                Method::POST,
                "/v1/auth/otp/request",
                &[
                    ("content-type", "application/json"),
                    ("x-api-key", &key),
                    ("origin", origin),
                ],
                json!({"email": format!("{}@example.com", rand::random::<u32>())}).to_string(),
            )
            .await
        }
    };
    let own = real(&a, "https://a.test").await;
    assert_eq!(own.status, StatusCode::ACCEPTED);
    assert_eq!(own.header("access-control-allow-origin"), "https://a.test");
    assert!(
        own.header("access-control-expose-headers")
            .contains("ratelimit")
    );
    let other = real(&b, "https://a.test").await;
    assert_eq!(
        other.header("access-control-allow-origin"),
        "",
        "B does not list A's origin"
    );
    // Health checks need no key.
    let live = svc.http.get("/v1/auth/health/live", &[]).await;
    assert_eq!(live.status, StatusCode::OK);
}

/// Each tenant's events reach its own endpoint, signed with its own secret
/// and filtered by its event list; the other tenant's receiver gets none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_tenants_events_go_to_its_own_signed_webhook() {
    use support::webhook_receiver::Receiver;
    const SECRET_A: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const SECRET_B: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
    let (ra, rb) = (
        Receiver::with_secret(SECRET_A).await,
        Receiver::with_secret(SECRET_B).await,
    );
    let clock = ManualClock::at(std::time::SystemTime::now());
    let svc = service(MemoryStore::new(), &clock, Duration::from_secs(5)).await;
    let a = tenant(
        &svc,
        "hook-a",
        json!({"webhook": {"url": ra.url(), "secret": SECRET_A, "events": ["otp.verified"]}}),
    )
    .await;
    let b = tenant(
        &svc,
        "hook-b",
        json!({"webhook": {"url": rb.url(), "secret": SECRET_B, "events": ["otp.requested"]}}),
    )
    .await;
    login(&svc, &a, &json!({"email": "w@example.com"})).await;
    let hits = ra.wait_for_hits(1).await;
    assert_eq!(hits.len(), 1, "only the subscribed otp.verified");
    assert!(
        hits[0].verdict.is_ok(),
        "signed with A's secret: {:?}",
        hits[0].verdict
    );
    let event = hits[0].json();
    assert_eq!(event["type"], "otp.verified");
    assert_eq!(event["data"]["tenant"], "hook-a");
    assert!(
        !hits[0].body.windows(13).any(|w| w == b"w@example.com"),
        "no raw identifier"
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(rb.hits().is_empty(), "B's receiver got nothing of A's");
    // B's own subscription works, with B's secret.
    post(
        &svc.http,
        &b,
        "/otp/request",
        &json!({"email": "x@example.com"}),
    )
    .await;
    let hits = rb.wait_for_hits(1).await;
    assert_eq!(hits.len(), 1);
    assert!(hits[0].verdict.is_ok());
    assert_eq!(hits[0].json()["data"]["tenant"], "hook-b");
    assert_eq!(ra.hits().len(), 1);
}

/// Every request of a tenant through the API is in its analytics: counts
/// and errors by code exact, a latency for each, another tenant's apart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn analytics_count_every_tenant_request() {
    let clock = clock();
    let svc = service(MemoryStore::new(), &clock, Duration::from_secs(5)).await;
    let key = tenant(&svc, "stats", wide()).await;
    let other = tenant(&svc, "stats-other", json!({})).await;
    for i in 0..3 {
        login(&svc, &key, &json!({"email": format!("s{i}@example.com")})).await;
    }
    let res = post(
        &svc.http,
        &key,
        "/otp/verify",
        &json!({"email": "s0@example.com", "code": "000000"}),
    )
    .await;
    assert_eq!(res.code(), "invalid_code");
    let res = post(
        &svc.http,
        &key,
        "/otp/request",
        &json!({"phone": "not a phone"}),
    )
    .await;
    assert_eq!(res.code(), "invalid_phone");
    post(
        &svc.http,
        &other,
        "/otp/request",
        &json!({"email": "o@example.com"}),
    )
    .await;
    let report = serde_json::to_value(
        svc.tenants
            .analytics("stats", Duration::from_secs(3600))
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(report["requests"], 8, "{report}");
    assert_eq!(
        report["errors"],
        json!({"invalid_code": 1, "invalid_phone": 1})
    );
    assert_eq!(report["success_rate"], 0.75);
    assert!(report["latency_ms"]["p50"].as_f64().unwrap() > 0.0);
    let other = serde_json::to_value(
        svc.tenants
            .analytics("stats-other", Duration::from_secs(3600))
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(other["requests"], 1);
}

/// Round trips of a tenant's login on a private Redis (commands a script
/// runs count in `INFO commandstats` too, so the round trips are the
/// `EVALSHA` calls): with the tenant and its key cached, no more than the
/// single app's three; a quota adds one to the code request. The analytics
/// flusher writes once a second and may land in a measured step: a step
/// is measured again (a fresh identifier) until it ran alone, at most
/// three times — a real extra round trip shows in every attempt.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_login_on_redis_is_counted() {
    let Some(server) = redis_server::RedisServer::start() else {
        return;
    };
    let clock = clock();
    let store = redis_on(&server.url(), &support::conformance::unique("count")).await;
    let svc = service(store, &clock, Duration::from_secs(5)).await;
    let plain = tenant(&svc, "count-plain", json!({})).await;
    let quota = tenant(&svc, "count-quota", json!({"quotas": {"daily": 100}})).await;
    for (key, request_scripts) in [(&plain, 1), (&quota, 2)] {
        // Warm the caches (tenant, key) with a first login.
        login(
            &svc,
            key,
            &json!({"email": format!("warm{request_scripts}@example.com")}),
        )
        .await;
        let mut seen = Vec::new();
        for attempt in 0..3 {
            let who = json!({"email": format!("c{request_scripts}-{attempt}@example.com")});
            let before = server.command_calls();
            let code = code(&svc, key, &who).await;
            let request = server.calls_since(&before);
            let mut body = who.clone();
            body["code"] = json!(code);
            let before = server.command_calls();
            assert_eq!(
                post(&svc.http, key, "/otp/verify", &body).await.status,
                StatusCode::OK
            );
            let verify = server.calls_since(&before);
            let counts = (
                request.get("evalsha").copied(),
                verify.get("evalsha").copied(),
            );
            assert!(
                !request.contains_key("hmget"),
                "the tenant is cached: {request:?}"
            );
            if counts == (Some(request_scripts), Some(2)) {
                break;
            }
            seen.push((request, verify));
            assert!(
                attempt < 2,
                "request should be {request_scripts} scripts, verify 2: {seen:?}"
            );
        }
    }
}
