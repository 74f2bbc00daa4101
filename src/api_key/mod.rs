//! API keys: issue, verify, rotate and revoke keys, and a layer that
//! refuses requests without a valid one.
//!
//! Keys look like `tok_3mkqz5yh2wfd7nxa_<43-char secret><6-char checksum>`
//! (see [`ApiKeys`](ApiKeys#key-format)): a checksum lets a server refuse
//! typos and junk without a store round trip, the store holds only SHA-256
//! of the secret, and the comparison is constant-time. [`ApiKeys`] manages
//! keys over any [`ApiKeyStore`](crate::store::ApiKeyStore); [`ApiKeyLayer`] checks
//! `X-API-Key` or `Authorization: Bearer` and puts the verified
//! [`ApiKeyIdentity`] into request extensions (with the `axum` feature it is
//! also an extractor).
//! A refusal carries its [`Problem`](crate::error::Problem) in the response
//! extensions; [`ApiKeyLayerBuilder::rejection`] answers in the app's own
//! format.
//!
//! ```
//! use std::convert::Infallible;
//! use bytes::Bytes;
//! use http::{Request, Response};
//! use http_body_util::Full;
//! use tower::{ServiceBuilder, ServiceExt, service_fn};
//! use tower_otp::api_key::{ApiKeyIdentity, ApiKeyLayer, ApiKeys};
//! use tower_otp::store::MemoryStore;
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let keys = ApiKeys::builder(MemoryStore::new()).prefix("sk_live").build()?;
//! let issued = keys.issue("acme", ["orders:read"], "CI", None).await?;
//!
//! let layer = ApiKeyLayer::builder(keys).require_scope("orders:read").build()?;
//! let app = ServiceBuilder::new().layer(layer).service(service_fn(
//!     |req: Request<Full<Bytes>>| async move {
//!         let who = req.extensions().get::<ApiKeyIdentity>().unwrap();
//!         Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(who.tenant().to_owned()))))
//!     },
//! ));
//!
//! let ok = Request::builder().header("x-api-key", issued.key()).body(Full::default())?;
//! assert_eq!(app.clone().oneshot(ok).await?.status(), 200);
//!
//! let typo = Request::builder().header("x-api-key", "sk_live_nope").body(Full::default())?;
//! assert_eq!(app.oneshot(typo).await?.status(), 401);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```
//!
//! # Security
//!
//! * Present keys only over TLS; they are bearer credentials.
//! * A refused key gets the same `401 invalid_api_key` whatever the reason
//!   (malformed, unknown, wrong secret, expired, revoked); the reason goes
//!   to events and logs only, and no event or log line carries a key — the
//!   key id (public) at most.
//! * The checksum is not a secret and proves nothing: it filters typos and
//!   junk. A well-formed guess costs one store lookup and has a 2⁻²⁵⁶
//!   chance; put a rate limit in front to bound lookups per client.
//! * Revocation takes effect at once on the instance that revoked (even for
//!   a verification in flight) and within the cache TTL (default 5 s) on the
//!   others; see [`ApiKeys`].
//! * The store is authoritative: when it fails, requests are refused with
//!   `503 store_unavailable` (fail closed), except keys still in this
//!   instance's cache, which keep working for at most the cache TTL.
#![cfg_attr(all(feature = "axum", feature = "moka"), doc = include_str!("../../docs/api-keys.md"))]

mod cache;
mod error;
#[cfg(feature = "axum")]
mod extract;
pub(crate) mod format;
mod future;
mod identity;
mod layer;
mod manage;
mod record;
mod service;
mod verify;

pub(crate) use error::invalid_api_key;
pub use error::{ApiKeyError, Rejection};
#[cfg(feature = "axum")]
pub use extract::MissingApiKeyIdentity;
pub use format::{FormatError, KeyPrefix};
pub use future::ResponseFuture;
pub use identity::ApiKeyIdentity;
pub use layer::{ApiKeyLayer, ApiKeyLayerBuilder, Exempt, KeySource, X_API_KEY};
pub use manage::{
    ApiKeys, ApiKeysBuilder, DEFAULT_CACHE_CAPACITY, DEFAULT_CACHE_TTL, DEFAULT_LAST_USED_INTERVAL,
    DEFAULT_PREFIX, IssuedKey, KeyInfo, LAST_USED_RETENTION, MAX_CACHE_TTL,
};
pub use service::ApiKey;
