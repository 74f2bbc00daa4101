//! Keyed rate limits counted in a [`RateStore`](crate::store::RateStore), with
//! `429` + `Retry-After` and the IETF `RateLimit` headers.
//!
//! A [`RateLimitLayer`] holds one or more named [`Policy`]s. Each policy is a
//! [`Quota`](crate::quota::Quota) (`n` per period, with a burst; GCRA, so
//! there is no window edge to game) per key, the key coming from a
//! [`KeyExtractor`]: [`ByClientIp`] (the [`ClientIp`](crate::client_ip::ClientIp)
//! put in extensions by [`SetClientIpLayer`](crate::client_ip::SetClientIpLayer), else
//! the peer address; IPv6 keyed per /64, see
//! [`ClientIpKey`](crate::client_ip::ClientIpKey) for other prefixes),
//! [`ByHeader`], or any closure `Fn(&Parts) -> Option<String>` — e.g. one that
//! reads an API-key or tenant identity an authentication layer put into
//! extensions.
//!
//! A request's policies are decided together, all or nothing
//! ([`RateStore::hit_all`](crate::store::RateStore::hit_all)): when any refuses, the
//! answer is `429 rate_limited` (problem+json naming every refusing policy
//! in `"violated-policies"`, `Cache-Control: no-store`, `Retry-After` in
//! whole seconds rounded up, never `0`) and no policy is counted. Every
//! response — allowed, refused, or the inner service's own `404` — carries
//! the structured fields of
//! [draft-ietf-httpapi-ratelimit-headers-10](https://datatracker.ietf.org/doc/draft-ietf-httpapi-ratelimit-headers/10/):
//!
//! ```text
//! RateLimit-Policy: "ip";q=100;w=60, "tenant";q=10000;w=3600
//! RateLimit: "ip";r=42;t=1, "tenant";r=9001;t=1
//! ```
//!
//! where `q` is the quota, `w` its window in seconds, `r` the requests left
//! and `t`, as draft -10 §4.1.2 defines it, the seconds until more quota is
//! made available: under GCRA, until one more request is allowed (rounded
//! up). On a `429` that is exactly the `Retry-After`, which is therefore
//! never shorter than `t` (§6). (Drafts -08 and -09 read `t` as the time
//! until the quota *resets*; -10 changed it because sliding algorithms like
//! GCRA make quota available before the window ends.) The OTP router's own
//! `429`s carry the same fields, built by the same code. Several layers
//! stack: each appends its own header lines.
//!
//! Every refusal carries its [`Problem`](crate::error::Problem) in the
//! response extensions; [`RateLimitBuilder::rejection`] answers in the app's
//! own format (the `Retry-After` and `RateLimit` fields are kept), and
//! [`RateLimitBuilder::events`] reports each refusing policy as a
//! `rate_limit.exceeded` event whose [`policy`](crate::events::Event::policy)
//! names it.
//!
//! ```
//! use std::net::SocketAddr;
//! use http::{Request, Response, StatusCode};
//! use tower::{ServiceBuilder, ServiceExt, service_fn};
//! use tower_otp::client_ip::{SetClientIpLayer, PeerAddr};
//! use tower_otp::quota::Quota;
//! use tower_otp::rate_limit::{ByClientIp, RateLimitLayer};
//! use tower_otp::store::MemoryStore;
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let limit = RateLimitLayer::builder(MemoryStore::new())
//!     .limit("ip", Quota::per_minute(1), ByClientIp)
//!     .build()
//!     .unwrap();
//! let svc = ServiceBuilder::new()
//!     .layer(SetClientIpLayer::new())
//!     .layer(limit)
//!     .service(service_fn(|_req: Request<String>| async {
//!         Ok::<_, std::convert::Infallible>(Response::new(String::from("hello")))
//!     }));
//! let request = || {
//!     let mut req = Request::new(String::new());
//!     req.extensions_mut().insert(PeerAddr("192.0.2.1:5000".parse::<SocketAddr>().unwrap()));
//!     req
//! };
//! let ok = svc.clone().oneshot(request()).await.unwrap();
//! assert_eq!(ok.status(), StatusCode::OK);
//! assert_eq!(ok.headers()["ratelimit-policy"], "\"ip\";q=1;w=60");
//! let refused = svc.oneshot(request()).await.unwrap();
//! assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
//! assert_eq!(refused.headers()["retry-after"], "60");
//! # });
//! ```
//!
//! # Security
//!
//! * **Key on something the client cannot choose.** A per-IP limit is only as
//!   good as the [`ClientIp`](crate::client_ip::ClientIp) it reads: put
//!   [`SetClientIpLayer`](crate::client_ip::SetClientIpLayer) in front, and trust
//!   forwarding headers only from your own proxies (see its `# Security`).
//!   A header-keyed limit ([`ByHeader`]) is a per-client quota, not a defence:
//!   a client sending a new value per request gets a new bucket each time;
//!   pair it with a per-IP policy.
//! * **Store failures fail closed**: `503 store_unavailable` unless the layer
//!   is built with [`fail_open(true)`](RateLimitBuilder::fail_open), which
//!   lets requests through and logs a warning. Never fail open in front of
//!   login or OTP endpoints.
//! * **A missing key fails closed** by default ([`MissingKey::Reject`]):
//!   without a client address a per-IP policy answers
//!   `500 client_ip_unavailable` (a server set-up error — the layer never
//!   guesses one shared bucket for everyone); other extractors answer
//!   `400 rate_limit_key_missing`. [`MissingKey::Skip`] and
//!   [`MissingKey::Shared`] opt out per policy.
//! * **No secrets in the store.** Keys are namespaced by policy
//!   (`rl:<policy>:…`); values from extractors that may see secrets (every
//!   extractor except [`ByClientIp`]) are replaced by their SHA-256.
//! * **Bounded memory**: with [`MemoryStore`](crate::store::MemoryStore), the
//!   rate table holds at most `max_rate_keys` keys (default 1 000 000). A
//!   flood of new keys never evicts a live limit: expired cells make room
//!   first, then new keys are refused (`503`, fail closed).

mod fields;
mod future;
mod key;
mod layer;
mod service;

pub(crate) use fields::refused;
pub use fields::{RATELIMIT, RATELIMIT_POLICY};
pub use future::ResponseFuture;
pub use key::{ByClientIp, ByHeader, KeyExtractor};
pub use layer::{MissingKey, Policy, RateLimitBuilder, RateLimitLayer};
pub use service::RateLimit;
