//! Per-client-address limits over real sockets: IPv6 clients counted per
//! /64, and requests with no client address refused (or, opted in, sharing
//! one bucket) — for the `OtpRouter` and `RateLimitLayer` alike.
//!
//! The client connects from 127.0.0.1, which `SetClientIpLayer` trusts as a
//! proxy, so `X-Forwarded-For` picks the IPv6 address each request comes from.
#![cfg(all(feature = "moka", feature = "axum"))]
#![allow(clippy::unwrap_used)]

mod support;

use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use http::{Method, StatusCode};
use serde_json::json;
use support::http::{Http, Reply, serve};
use tower::ServiceBuilder;
use tower_otp::client_ip::{ClientIpKey, SetClientIpLayer};
use tower_otp::clock::ManualClock;
use tower_otp::notify::MemoryNotifier;
use tower_otp::otp::{OtpRouter, OtpRouterBuilder};
use tower_otp::quota::Quota;
use tower_otp::rate_limit::{ByClientIp, KeyExtractor, RateLimitLayer};
use tower_otp::store::MemoryStore;

const SECRET: &str = "Zp4wL8qT1nX6vB3kR9mC2hJ7dF5sG0yA";

/// 30 addresses inside 2001:db8:1:2::/64, as a client rotating them would use.
fn one_slash_64() -> impl Iterator<Item = String> {
    (1..=30u32).map(|i| format!("2001:db8:1:2:{i:x}:{:x}::{i:x}", i * 7))
}

fn router_builder() -> (OtpRouterBuilder<MemoryStore, MemoryNotifier>, ManualClock) {
    let clock = ManualClock::default();
    let b = OtpRouter::builder(MemoryStore::new(), MemoryNotifier::new())
        .secret(SECRET)
        .clock(clock.clone());
    (b, clock)
}

/// The router at /auth behind `SetClientIpLayer` trusting loopback.
async fn router_behind_proxy(router: OtpRouter<MemoryStore, MemoryNotifier>) -> Http {
    let app = Router::new().nest_service("/auth", router).layer(
        SetClientIpLayer::builder()
            .trust_loopback()
            .build()
            .unwrap(),
    );
    Http::new(serve(app).await)
}

/// A code request for `email` that arrives from `client`.
async fn request_from(http: &Http, client: &str, email: &str) -> Reply {
    let body = json!({ "email": email }).to_string();
    http.send(
        Method::POST,
        "/auth/otp/request",
        &[
            ("content-type", "application/json"),
            ("x-forwarded-for", client),
        ],
        body,
    )
    .await
}

fn statuses(replies: &[Reply]) -> (usize, usize) {
    let accepted = replies
        .iter()
        .filter(|r| r.status == StatusCode::ACCEPTED)
        .count();
    let limited = replies
        .iter()
        .filter(|r| r.status == StatusCode::TOO_MANY_REQUESTS)
        .count();
    (accepted, limited)
}

#[tokio::test]
async fn router_counts_one_ipv6_slash_64_as_one_client() {
    let (b, _) = router_builder();
    let http = router_behind_proxy(b.build().unwrap()).await;
    let mut replies = Vec::new();
    for (i, client) in one_slash_64().enumerate() {
        // A new identifier each time: only the per-IP limit (5/hour) applies.
        replies.push(request_from(&http, &client, &format!("user{i}@example.com")).await);
    }
    assert_eq!(statuses(&replies), (5, 25), "30 addresses of one /64");
    for r in &replies[5..] {
        assert_eq!(r.code(), "rate_limited");
    }
    // Another /64 is another client with its own budget.
    let other = request_from(&http, "2001:db8:1:3::1", "other@example.com").await;
    assert_eq!(other.status, StatusCode::ACCEPTED);
}

#[tokio::test]
async fn router_ipv6_prefix_is_configurable() {
    // Keyed per /48, the neighbouring /64 is the same client.
    let (b, _) = router_builder();
    let key = ClientIpKey::builder().ipv6_prefix(48).build().unwrap();
    let http = router_behind_proxy(b.client_ip_key(key).build().unwrap()).await;
    let mut replies = Vec::new();
    for i in 0..6u32 {
        let client = format!("2001:db8:1:{i:x}::1");
        replies.push(request_from(&http, &client, &format!("u{i}@example.com")).await);
    }
    assert_eq!(statuses(&replies), (5, 1));
    // Keyed per /128, every address is a client of its own.
    let (b, _) = router_builder();
    let key = ClientIpKey::builder().ipv6_prefix(128).build().unwrap();
    let http = router_behind_proxy(b.client_ip_key(key).build().unwrap()).await;
    let mut replies = Vec::new();
    for (i, client) in one_slash_64().take(8).enumerate() {
        replies.push(request_from(&http, &client, &format!("v{i}@example.com")).await);
    }
    assert_eq!(statuses(&replies), (8, 0));
}

#[tokio::test]
async fn router_counts_ipv4_mapped_as_ipv4() {
    let (b, _) = router_builder();
    let http = router_behind_proxy(b.build().unwrap()).await;
    let mut replies = Vec::new();
    for i in 0..6u32 {
        let client = if i % 2 == 0 {
            "198.51.100.7"
        } else {
            "::ffff:198.51.100.7"
        };
        replies.push(request_from(&http, client, &format!("w{i}@example.com")).await);
    }
    assert_eq!(statuses(&replies), (5, 1));
}

/// Serves `app` the way the README's "mount it" snippet does: plain
/// `axum::serve(listener, app)`, no `ConnectInfo`.
async fn serve_without_connect_info(app: Router) -> Http {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Http::new(addr)
}

fn assert_unavailable(reply: &Reply) {
    assert_eq!(
        reply.status,
        StatusCode::INTERNAL_SERVER_ERROR,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    assert_eq!(reply.code(), "client_ip_unavailable");
    assert_eq!(reply.header("content-type"), "application/problem+json");
    let detail = reply.json()["detail"].as_str().unwrap().to_owned();
    assert!(
        detail.contains("into_make_service_with_connect_info::<SocketAddr>()"),
        "{detail}"
    );
    assert!(detail.contains("SetClientIpLayer"), "{detail}");
}

#[tokio::test]
async fn router_without_client_address_fails_closed() {
    let (b, _) = router_builder();
    let app = Router::new().nest_service("/auth", b.build().unwrap());
    let http = serve_without_connect_info(app).await;
    for i in 0..6 {
        let reply = http
            .post_json(
                "/auth/otp/request",
                &json!({ "email": format!("x{i}@example.com") }),
            )
            .await;
        assert_unavailable(&reply);
    }
    // Endpoints that key nothing on the address still work.
    assert_eq!(
        http.get("/auth/health/live", &[]).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn router_shared_bucket_is_an_explicit_opt_in() {
    let (b, _) = router_builder();
    let key = ClientIpKey::builder()
        .shared_bucket_for_unknown_clients()
        .build()
        .unwrap();
    let app = Router::new().nest_service("/auth", b.client_ip_key(key).build().unwrap());
    let http = serve_without_connect_info(app).await;
    let mut replies = Vec::new();
    for i in 0..6 {
        let body = json!({ "email": format!("y{i}@example.com") });
        replies.push(http.post_json("/auth/otp/request", &body).await);
    }
    // Everyone shares one 5/hour bucket: what the opt-in asked for.
    assert_eq!(statuses(&replies), (5, 1));
}

/// A `tracing` writer that keeps what it is given.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn error_lines(&self) -> Vec<String> {
        String::from_utf8_lossy(&self.0.lock().unwrap())
            .lines()
            .filter(|l| l.contains("ERROR") && l.contains("client_ip_unavailable"))
            .map(str::to_owned)
            .collect()
    }
}

#[tokio::test]
async fn router_logs_missing_address_at_error_level_without_a_flood() {
    use tower::ServiceExt;

    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    // Current-thread runtime: the default applies to every request below.
    let _guard = tracing::subscriber::set_default(subscriber);

    let (b, clock) = router_builder();
    let router = b.build().unwrap();
    let request = || {
        http::Request::post("/otp/request")
            .header("content-type", "application/json")
            .body(json!({ "email": "z@example.com" }).to_string())
            .unwrap()
    };
    for _ in 0..50 {
        let res = router.clone().oneshot(request()).await.unwrap();
        assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
    }
    let lines = captured.error_lines();
    assert_eq!(lines.len(), 1, "one line, not one per request: {lines:?}");
    assert!(
        lines[0].contains("into_make_service_with_connect_info"),
        "{lines:?}"
    );
    // A minute later the next refusal is logged again, with the count between.
    clock.advance(Duration::from_secs(61));
    let res = router.clone().oneshot(request()).await.unwrap();
    assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let lines = captured.error_lines();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(lines[1].contains("unreported=49"), "{lines:?}");
}

// ---- RateLimitLayer ---------------------------------------------------------

fn limited_routes(extractor: impl KeyExtractor) -> Router {
    let limit = RateLimitLayer::builder(MemoryStore::new())
        .limit("ip", Quota::per_hour(5), extractor)
        .clock(ManualClock::default())
        .build()
        .unwrap();
    Router::new()
        .route("/hello", get(|| async { "hello" }))
        .layer(limit)
}

fn count(replies: &[Reply]) -> (usize, usize) {
    let ok = replies
        .iter()
        .filter(|r| r.status == StatusCode::OK)
        .count();
    let limited = replies
        .iter()
        .filter(|r| r.status == StatusCode::TOO_MANY_REQUESTS)
        .count();
    (ok, limited)
}

async fn get_from(http: &Http, client: &str) -> Reply {
    http.get("/hello", &[("x-forwarded-for", client)]).await
}

#[tokio::test]
async fn layer_counts_one_ipv6_slash_64_as_one_client() {
    let app = limited_routes(ByClientIp).layer(
        ServiceBuilder::new().layer(
            SetClientIpLayer::builder()
                .trust_loopback()
                .build()
                .unwrap(),
        ),
    );
    let http = Http::new(serve(app).await);
    let mut replies = Vec::new();
    for client in one_slash_64() {
        replies.push(get_from(&http, &client).await);
    }
    assert_eq!(count(&replies), (5, 25), "30 addresses of one /64");
    assert_eq!(
        get_from(&http, "2001:db8:1:3::1").await.status,
        StatusCode::OK,
        "another /64 has its own budget"
    );
    // IPv4-mapped is the IPv4 address.
    let mut replies = Vec::new();
    for client in ["203.0.113.9", "::ffff:203.0.113.9"].iter().cycle().take(6) {
        replies.push(get_from(&http, client).await);
    }
    assert_eq!(count(&replies), (5, 1));
}

#[tokio::test]
async fn layer_prefix_is_configurable() {
    let key = ClientIpKey::builder().ipv6_prefix(56).build().unwrap();
    let app = limited_routes(key).layer(
        SetClientIpLayer::builder()
            .trust_loopback()
            .build()
            .unwrap(),
    );
    let http = Http::new(serve(app).await);
    let mut replies = Vec::new();
    for i in 0..6u32 {
        // Six /64s of one /56.
        replies.push(get_from(&http, &format!("2001:db8:1:{i:x}::1")).await);
    }
    assert_eq!(count(&replies), (5, 1));
}

#[tokio::test]
async fn layer_without_client_address_fails_closed() {
    let http = serve_without_connect_info(limited_routes(ByClientIp)).await;
    for _ in 0..6 {
        assert_unavailable(&http.get("/hello", &[]).await);
    }
    let http = serve_without_connect_info(limited_routes(ClientIpKey::default())).await;
    assert_unavailable(&http.get("/hello", &[]).await);
}

#[tokio::test]
async fn layer_reads_connect_info_without_client_ip_layer() {
    // `serve` uses `into_make_service_with_connect_info`: that alone is enough.
    let http = Http::new(serve(limited_routes(ByClientIp)).await);
    let mut replies = Vec::new();
    for _ in 0..6 {
        replies.push(http.get("/hello", &[]).await);
    }
    assert_eq!(count(&replies), (5, 1));
}

#[tokio::test]
async fn layer_shared_bucket_is_an_explicit_opt_in() {
    let key = ClientIpKey::builder()
        .shared_bucket_for_unknown_clients()
        .build()
        .unwrap();
    let http = serve_without_connect_info(limited_routes(key)).await;
    let mut replies = Vec::new();
    for _ in 0..6 {
        replies.push(http.get("/hello", &[]).await);
    }
    assert_eq!(count(&replies), (5, 1));
}
