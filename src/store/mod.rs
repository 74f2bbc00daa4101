//! Storage as small per-concern traits of domain-level, atomic operations.
//!
//! | trait | operations | needed by |
//! |---|---|---|
//! | [`RateStore`] | [`hit`](RateStore::hit), [`hit_all`](RateStore::hit_all) | `RateLimitLayer`, the router's limits |
//! | [`ChallengeStore`] (a `RateStore` + `SessionStore`) | [`put_challenge`](ChallengeStore::put_challenge), [`attempt_challenge`](ChallengeStore::attempt_challenge) (each with the limits of its request), [`consume_challenge`](ChallengeStore::consume_challenge), [`remove_challenge`](ChallengeStore::remove_challenge) | the router's request and verify |
//! | [`SessionStore`] | [`create_session`](SessionStore::create_session), [`rotate_refresh`](SessionStore::rotate_refresh), [`revoke`](SessionStore::revoke), [`is_revoked`](SessionStore::is_revoked), [`is_any_revoked`](SessionStore::is_any_revoked), per subject [`list_sessions`](SessionStore::list_sessions), [`revoke_session`](SessionStore::revoke_session), [`revoke_subject`](SessionStore::revoke_subject) | the router's tokens and session management, `JwtLayer::with_store` |
//! | [`ApiKeyStore`] | [`put_api_key`](ApiKeyStore::put_api_key), [`get_api_key`](ApiKeyStore::get_api_key), [`delete_api_key`](ApiKeyStore::delete_api_key), [`list_api_keys`](ApiKeyStore::list_api_keys) | `ApiKeys`, `ApiKeyLayer` |
//! | [`TenantStore`] | tenant records with a version ([`create_tenant`](TenantStore::create_tenant), [`get_tenant`](TenantStore::get_tenant), [`update_tenant`](TenantStore::update_tenant), [`list_tenants`](TenantStore::list_tenants)), per-tenant counters for usage and quotas ([`add_counters`](TenantStore::add_counters), [`add_counters_within`](TenantStore::add_counters_within) behind guards, [`counters`](TenantStore::counters)), pending signups ([`put_pending`](TenantStore::put_pending), [`take_pending`](TenantStore::take_pending)) | the multi-tenant service |
//! | [`Ping`] | [`ping`](Ping::ping) | the router's readiness check |
//!
//! [`Store`] is all six at once, with a blanket impl: a type implementing
//! the six traits is a `Store`, which is what the OTP router takes. Each
//! layer is generic over the one trait it needs, so a backend (or a test
//! fake) for one concern implements only that trait. Both backends here
//! implement all six.
//!
//! Every operation is a whole step of the login or limiting logic — count a
//! hit, put a challenge, count a verification attempt, rotate a refresh
//! token — and is atomic on its own: one atomic entry computation in memory,
//! one Lua script (one round trip) in Redis. Nothing in `tower-otp` reads a
//! value, decides in Rust and writes it back, because that check-then-write
//! is a race for counters and single-use values. A step of the router is
//! one call, limits included: a code request is one
//! [`put_challenge`](ChallengeStore::put_challenge) that decides every limit
//! of the request all or nothing and stores the challenge only when all
//! allow.
//!
//! The one split is by design: a challenge's code MAC is compared in
//! constant time *in Rust*, so verification is two steps —
//! [`attempt_challenge`](ChallengeStore::attempt_challenge) atomically counts
//! the verify limits and the attempt and hands back the stored MAC, and on a
//! match [`consume_challenge`](ChallengeStore::consume_challenge) consumes it
//! and starts the session; exactly one caller can consume a given challenge,
//! so a code still works only once, and a failed consume spends no code.
//!
//! Time is passed in (`now`), never read by the store, so expiry is tested
//! with a [`ManualClock`](crate::clock::ManualClock). Entries also carry a
//! real TTL so nothing lives forever.
//!
//! Keys passed in are already hashed or random (no phone, email, code or
//! token ever reaches a store in plain text). Backends: `MemoryStore`
//! (feature `moka`) and `RedisStore` (feature `redis`). Every backend must
//! pass the conformance suite of each trait it implements
//! (`tests/support/conformance.rs`).
//!
//! Code that needs one concern names that trait, and runs over any backend:
//!
//! ```
//! # #[cfg(feature = "moka")] {
//! use std::time::SystemTime;
//! use tower_otp::quota::Quota;
//! use tower_otp::store::{MemoryStore, RateStore, StoreError};
//!
//! async fn allowed(store: &impl RateStore, who: &str) -> Result<bool, StoreError> {
//!     let decision = store.hit(who, &Quota::per_minute(1), SystemTime::now()).await?;
//!     Ok(decision.allowed)
//! }
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let store = MemoryStore::new();
//! assert!(allowed(&store, "rl:demo").await.unwrap());
//! assert!(!allowed(&store, "rl:demo").await.unwrap());
//! # });
//! # }
//! ```
#![cfg_attr(feature = "redis", doc = include_str!("../../docs/redis.md"))]

mod all;
mod api_key;
mod challenge;
mod error;
#[cfg(feature = "moka")]
mod memory;
mod ping;
mod rate;
#[cfg(feature = "redis")]
mod redis;
mod session;
mod tenant;

pub use all::Store;
pub use api_key::ApiKeyStore;
pub use challenge::{Attempt, Challenge, ChallengeStore, Limited};
pub use error::{BoxError, StoreError};
#[cfg(feature = "moka")]
pub use memory::{MemoryStore, MemoryStoreBuilder};
pub use ping::Ping;
#[cfg(any(feature = "moka", feature = "redis"))]
pub(crate) use rate::decide_all;
pub use rate::{Limit, RateStore};
#[cfg(feature = "redis")]
pub use redis::{RedisConnectError, RedisStore, RedisStoreBuilder};
#[cfg(any(feature = "moka", feature = "redis"))]
pub(crate) use session::{FamilyState, RECLAIM_SLACK, oldest_first};
pub use session::{
    MAX_SESSIONS_PER_SUBJECT, NewSession, RefreshRotation, Rotation, SessionInfo, SessionLifetime,
    SessionStore,
};
#[cfg(feature = "redis")]
pub(crate) use session::{PENDING_CREATE, deadline_after};
pub use tenant::{CounterAdd, CounterGuard, Guarded, TenantRecord, TenantStore};
