//! The hardening layers together, over real sockets: an axum server on
//! 127.0.0.1 and a hyper client.
#![cfg(all(feature = "moka", feature = "axum"))]
#![allow(clippy::unwrap_used)]

mod support;

use std::net::SocketAddr;
use std::time::SystemTime;

use axum::Router;
use axum::routing::get;
use http::header::{CONTENT_SECURITY_POLICY, X_FRAME_OPTIONS};
use http::{HeaderValue, StatusCode};
use tower::ServiceBuilder;
use tower_otp::client_ip::{ClientIp, ForwardingHeader, SetClientIpLayer};
use tower_otp::clock::ManualClock;
use tower_otp::quota::{Quota, RateDecision};
use tower_otp::rate_limit::{ByClientIp, RateLimitLayer};
use tower_otp::security_headers::SecurityHeadersLayer;
use tower_otp::store::{Limit, MemoryStore, RateStore, StoreError};

use support::http::{Http, Reply, serve};

async fn whoami(ClientIp(ip): ClientIp) -> String {
    ip.to_string()
}

async fn custom_headers() -> impl axum::response::IntoResponse {
    (
        [
            (
                CONTENT_SECURITY_POLICY,
                HeaderValue::from_static("default-src 'self'"),
            ),
            (X_FRAME_OPTIONS, HeaderValue::from_static("SAMEORIGIN")),
        ],
        "custom",
    )
}

fn routes() -> Router {
    Router::new()
        .route("/hello", get(|| async { "hello" }))
        .route("/whoami", get(whoami))
        .route("/custom", get(custom_headers))
}

/// The full stack over `store`: security headers, client IP, rate limit.
fn app<S: RateStore>(
    client_ip: SetClientIpLayer,
    store: S,
    quota: Quota,
    fail_open: bool,
) -> Router {
    let limit = RateLimitLayer::builder(store)
        .limit("ip", quota, ByClientIp)
        .fail_open(fail_open)
        .clock(ManualClock::default())
        .build()
        .unwrap();
    routes().layer(
        ServiceBuilder::new()
            .layer(SecurityHeadersLayer::new())
            .layer(client_ip)
            .layer(limit),
    )
}

async fn start(client_ip: SetClientIpLayer, quota: Quota) -> Http {
    Http::new(serve(app(client_ip, MemoryStore::new(), quota, false)).await)
}

/// Trusts 10.0.0.0/8 only; the test client connects from 127.0.0.1 and so
/// is an untrusted peer. Every forwarding header is enabled.
fn untrusted_loopback() -> SetClientIpLayer {
    SetClientIpLayer::builder()
        .trust_proxy("10.0.0.0/8")
        .headers([
            ForwardingHeader::XForwardedFor,
            ForwardingHeader::Forwarded,
            ForwardingHeader::XRealIp,
        ])
        .build()
        .unwrap()
}

/// Trusts loopback: the test client plays a reverse proxy.
fn trusted_loopback(headers: &[ForwardingHeader]) -> SetClientIpLayer {
    SetClientIpLayer::builder()
        .trust_loopback()
        .headers(headers.iter().copied())
        .build()
        .unwrap()
}

fn assert_security_headers(reply: &Reply) {
    assert_eq!(
        reply.header("x-content-type-options"),
        "nosniff",
        "{reply:?}"
    );
    assert_eq!(reply.header("x-frame-options"), "DENY", "{reply:?}");
    assert_eq!(
        reply.header("content-security-policy"),
        "default-src 'none'; frame-ancestors 'none'"
    );
    assert_eq!(
        reply.header("strict-transport-security"),
        "max-age=31536000; includeSubDomains"
    );
    assert_eq!(reply.header("referrer-policy"), "no-referrer");
}

#[tokio::test]
async fn headers_on_every_response_including_404_and_429() {
    let client = start(SetClientIpLayer::new(), Quota::per_hour(2)).await;

    let ok = client.get("/hello", &[]).await;
    assert_eq!(ok.status, StatusCode::OK);
    assert_eq!(ok.body, "hello");
    assert_security_headers(&ok);
    assert_eq!(ok.header("ratelimit-policy"), "\"ip\";q=2;w=3600");
    assert_eq!(ok.header("ratelimit"), "\"ip\";r=1;t=1800");

    let not_found = client.get("/nope", &[]).await;
    assert_eq!(not_found.status, StatusCode::NOT_FOUND);
    assert_security_headers(&not_found);
    assert_eq!(not_found.header("ratelimit"), "\"ip\";r=0;t=1800");

    let refused = client.get("/hello", &[]).await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
    assert_security_headers(&refused);
    assert_eq!(refused.header("ratelimit-policy"), "\"ip\";q=2;w=3600");
    assert_eq!(refused.header("ratelimit"), "\"ip\";r=0;t=1800");
    assert_eq!(refused.header("retry-after"), "1800");
}

#[tokio::test]
async fn too_many_requests_has_retry_after_and_a_problem_body() {
    let client = start(SetClientIpLayer::new(), Quota::per_minute(1)).await;
    assert_eq!(client.get("/hello", &[]).await.status, StatusCode::OK);
    let refused = client.get("/hello", &[]).await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
    let retry_after: u64 = refused.header("retry-after").parse().unwrap();
    assert!((1..=60).contains(&retry_after), "Retry-After {retry_after}");
    assert_eq!(refused.header("content-type"), "application/problem+json");
    assert_eq!(refused.header("cache-control"), "no-store");
    let doc = refused.json();
    assert_eq!(doc["code"], "rate_limited");
    assert_eq!(doc["status"], 429);
}

#[tokio::test]
async fn a_header_the_handler_set_is_not_overwritten() {
    let client = start(SetClientIpLayer::new(), Quota::per_hour(10)).await;
    let reply = client.get("/custom", &[]).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(
        reply.header("content-security-policy"),
        "default-src 'self'"
    );
    assert_eq!(reply.header("x-frame-options"), "SAMEORIGIN");
    assert_eq!(reply.header("x-content-type-options"), "nosniff");
}

#[tokio::test]
async fn spoofed_forwarding_headers_from_an_untrusted_peer_do_not_change_the_key() {
    let client = start(untrusted_loopback(), Quota::per_hour(1)).await;

    let first = client
        .get("/whoami", &[("x-forwarded-for", "198.51.100.1")])
        .await;
    assert_eq!(first.status, StatusCode::OK);
    assert_eq!(first.body, "127.0.0.1", "the peer, not the header");

    // Each request claims a different client; all are counted against the
    // peer, whose single request is spent.
    let spoofs: [(&str, &str); 5] = [
        ("x-forwarded-for", "198.51.100.2"),
        ("x-forwarded-for", "198.51.100.3, 10.0.0.1"),
        ("forwarded", "for=198.51.100.4"),
        ("forwarded", "for=\"[2001:db8::1]:443\""),
        ("x-real-ip", "198.51.100.5"),
    ];
    for (name, value) in spoofs {
        let reply = client.get("/hello", &[(name, value)]).await;
        assert_eq!(
            reply.status,
            StatusCode::TOO_MANY_REQUESTS,
            "{name}: {value} changed the rate-limit key"
        );
    }
}

#[tokio::test]
async fn forwarding_headers_from_a_trusted_proxy_set_the_key() {
    use ForwardingHeader::{Forwarded, XForwardedFor, XRealIp};

    // X-Forwarded-For: each forwarded client has its own bucket.
    let client = start(trusted_loopback(&[XForwardedFor]), Quota::per_hour(1)).await;
    let a = [("x-forwarded-for", "198.51.100.1")];
    let reply = client.get("/whoami", &a).await;
    assert_eq!(
        (reply.status, &reply.body[..]),
        (StatusCode::OK, &b"198.51.100.1"[..])
    );
    let b = [("x-forwarded-for", "198.51.100.2")];
    assert_eq!(client.get("/hello", &b).await.status, StatusCode::OK);
    assert_eq!(
        client.get("/hello", &a).await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
    // A spoofed left-most entry does not help: the proxy appended the real one.
    let spoof = [("x-forwarded-for", "6.6.6.6, 198.51.100.1")];
    assert_eq!(
        client.get("/hello", &spoof).await.status,
        StatusCode::TOO_MANY_REQUESTS
    );

    // Forwarded (RFC 7239), with a quoted IPv6 node.
    let client = start(trusted_loopback(&[Forwarded]), Quota::per_hour(1)).await;
    let v6 = [("forwarded", "for=\"[2001:db8::1]:443\";proto=https")];
    let reply = client.get("/whoami", &v6).await;
    assert_eq!(
        (reply.status, &reply.body[..]),
        (StatusCode::OK, &b"2001:db8::1"[..])
    );
    assert_eq!(
        client.get("/hello", &v6).await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
    let other = [("forwarded", "for=198.51.100.9")];
    assert_eq!(client.get("/hello", &other).await.status, StatusCode::OK);

    // X-Real-IP, when the proxy is known to set it.
    let client = start(trusted_loopback(&[XRealIp]), Quota::per_hour(1)).await;
    let real = [("x-real-ip", "198.51.100.7")];
    let reply = client.get("/whoami", &real).await;
    assert_eq!(
        (reply.status, &reply.body[..]),
        (StatusCode::OK, &b"198.51.100.7"[..])
    );
    assert_eq!(
        client.get("/hello", &real).await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
}

#[tokio::test]
async fn malformed_forwarding_headers_fall_back_to_the_proxy() {
    let client = start(
        trusted_loopback(&[ForwardingHeader::XForwardedFor, ForwardingHeader::Forwarded]),
        Quota::per_hour(10),
    )
    .await;
    for (name, value) in [
        ("x-forwarded-for", "not-an-ip"),
        ("x-forwarded-for", "198.51.100.1, unknown"),
        ("forwarded", "for=\"[2001:db8::1"),
        ("forwarded", "for=_hidden"),
    ] {
        let reply = client.get("/whoami", &[(name, value)]).await;
        assert_eq!(reply.status, StatusCode::OK, "{name}: {value}");
        assert_eq!(reply.body, "127.0.0.1", "{name}: {value}");
    }
}

/// A rate store that always fails: fault injection for fail-closed and
/// fail-open behaviour. The layer needs a `RateStore` and nothing else.
#[derive(Clone, Debug)]
struct FailingStore;

impl RateStore for FailingStore {
    async fn hit_all(
        &self,
        _: &[Limit<'_>],
        _: SystemTime,
    ) -> Result<Vec<RateDecision>, StoreError> {
        Err(StoreError::Unavailable("injected failure".into()))
    }
}

#[tokio::test]
async fn store_failure_fails_closed_with_503() {
    let addr: SocketAddr = serve(app(
        SetClientIpLayer::new(),
        FailingStore,
        Quota::per_hour(100),
        false,
    ))
    .await;
    let reply = Http::new(addr).get("/hello", &[]).await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(reply.json()["code"], "store_unavailable");
    assert!(
        !String::from_utf8_lossy(&reply.body).contains("injected"),
        "store internals leaked: {:?}",
        reply.body
    );
    assert_eq!(reply.header("ratelimit-policy"), "\"ip\";q=100;w=3600");
    assert_security_headers(&reply);
}

#[tokio::test]
async fn store_failure_with_fail_open_passes() {
    let addr = serve(app(
        SetClientIpLayer::new(),
        FailingStore,
        Quota::per_hour(1),
        true,
    ))
    .await;
    let client = Http::new(addr);
    for _ in 0..3 {
        let reply = client.get("/hello", &[]).await;
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(reply.body, "hello");
        assert_eq!(reply.header("ratelimit"), "", "no decision, no RateLimit");
    }
}

/// An app's own error format, and middleware further out that reads why a
/// request was refused: both reach the refusal through axum and a socket.
#[tokio::test]
async fn an_app_shapes_refusals_and_outer_middleware_reads_why() {
    use http::header::CONTENT_TYPE;
    use tower_otp::body::ResponseBody;
    use tower_otp::error::{FullBody, Problem};

    let limit = RateLimitLayer::builder(MemoryStore::new())
        .limit("ip", Quota::per_minute(1), ByClientIp)
        .clock(ManualClock::default())
        .rejection(|problem: &Problem, _: &http::request::Parts| {
            let body = format!(r#"{{"error":"{}"}}"#, problem.code());
            let mut res = http::Response::new(FullBody::from(body));
            *res.status_mut() = problem.status();
            res.headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            res
        })
        .build()
        .unwrap();
    let app = routes().layer(
        ServiceBuilder::new()
            .map_response(|mut res: http::Response<ResponseBody<axum::body::Body>>| {
                let why = res.extensions().get::<Problem>().map(Problem::code);
                if let Some(code) = why {
                    res.headers_mut()
                        .insert("x-refused-for", HeaderValue::from_static(code));
                }
                res
            })
            .layer(SetClientIpLayer::new())
            .layer(limit),
    );
    let client = Http::new(serve(app).await);
    let ok = client.get("/hello", &[]).await;
    assert_eq!(ok.status, StatusCode::OK);
    assert_eq!(ok.header("x-refused-for"), "");
    let refused = client.get("/hello", &[]).await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(refused.header("x-refused-for"), "rate_limited");
    assert_eq!(refused.header("content-type"), "application/json");
    assert_eq!(refused.json(), serde_json::json!({"error": "rate_limited"}));
    assert_eq!(refused.header("retry-after"), "60");
    assert_eq!(refused.header("ratelimit"), "\"ip\";r=0;t=60");
}
