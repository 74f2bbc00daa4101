//! The layer stacks the benchmarks compare, shared by `benches/layers.rs`
//! (in process) and `src/bin/bench_server.rs` (over HTTP), so both measure
//! the same thing.

use tower_http::set_header::SetResponseHeaderLayer;
use tower_otp::client_ip::SetClientIpLayer;
use tower_otp::jwt::{self, JwtKeys, JwtLayer, Validation};
use tower_otp::quota::Quota;
use tower_otp::rate_limit::{ByClientIp, RateLimitLayer};
use tower_otp::security_headers::SecurityHeadersLayer;
use tower_otp::store::MemoryStore;

/// The HS256 secret both our `JwtLayer` and the `jsonwebtoken` peer check.
pub const SECRET: &[u8] = b"bN7qK2xV9mR4tW8zL3cH6pJ1fD5sG0yEaU7iO2eQ4wZk";

/// The keys [`token`] is signed with.
pub fn keys() -> JwtKeys {
    JwtKeys::new("bench", SECRET).expect("a 44-byte secret is long enough")
}

/// A token like the OtpRouter issues, valid for a day.
pub fn token() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs();
    let claims = serde_json::json!({
        "sub": "usr_NMwc4quil8iIFkec-yybCw", "iat": now, "exp": now + 86_400,
        "jti": "WK_zffVk3t2AUsyDCa8Taw", "sid": "R_zYXflC7urY-jXVGZMqFw",
    });
    jwt::encode(&keys(), &claims).expect("sign")
}

/// A per-IP limit of `per_second` (burst as large), more than the benchmark
/// ever sends, so it counts every request and refuses none.
pub fn per_ip_limit(per_second: u32) -> RateLimitLayer<MemoryStore> {
    RateLimitLayer::builder(MemoryStore::new())
        .limit("ip", Quota::per_second(per_second), ByClientIp)
        .build()
        .expect("valid policy")
}

/// Our hardening stack, outermost first (a tuple of layers is a layer).
pub type Stack = (
    SecurityHeadersLayer,
    SetClientIpLayer,
    RateLimitLayer<MemoryStore>,
    JwtLayer<serde_json::Value>,
);

/// [`Stack`], with a per-IP limit of `per_second`.
pub fn stack(per_second: u32) -> Stack {
    (
        SecurityHeadersLayer::new(),
        SetClientIpLayer::new(),
        per_ip_limit(per_second),
        JwtLayer::new(keys(), Validation::default()),
    )
}

/// One tower-http header layer.
pub type SetHeader = SetResponseHeaderLayer<http::HeaderValue>;

/// The peers' security headers: six tower-http `SetResponseHeader` layers.
pub type PeerHeaders = (
    SetHeader,
    SetHeader,
    SetHeader,
    SetHeader,
    SetHeader,
    SetHeader,
);

/// [`PeerHeaders`]: the same six values as our stack's first six headers.
pub fn peer_headers() -> PeerHeaders {
    use http::header::{self, HeaderName, HeaderValue};
    let set = |name: HeaderName, value: &'static str| {
        SetResponseHeaderLayer::overriding(name, HeaderValue::from_static(value))
    };
    (
        set(header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        set(header::X_FRAME_OPTIONS, "DENY"),
        set(
            header::STRICT_TRANSPORT_SECURITY,
            "max-age=31536000; includeSubDomains",
        ),
        set(
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; frame-ancestors 'none'",
        ),
        set(header::REFERRER_POLICY, "no-referrer"),
        set(
            HeaderName::from_static("cross-origin-opener-policy"),
            "same-origin",
        ),
    )
}
