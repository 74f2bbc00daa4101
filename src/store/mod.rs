//! The one storage abstraction: domain-level, atomic operations.
//!
//! Every [`Store`] operation is a whole step of the login or limiting logic —
//! count a hit, put a challenge, count a verification attempt, rotate a
//! refresh token — and is atomic on its own: one atomic entry computation in
//! memory, one Lua script (one round trip) in Redis. Nothing in `tower-otp`
//! reads a value, decides in Rust and writes it back, because that
//! check-then-write is a race for counters and single-use values.
//!
//! The one exception is by design: a challenge's code MAC is compared in
//! constant time *in Rust*, so verification is two steps —
//! [`attempt_challenge`](Store::attempt_challenge) atomically counts the
//! attempt and hands back the stored MAC, and on a match
//! [`remove_challenge`](Store::remove_challenge) consumes it; exactly one
//! caller can remove a given challenge, so a code still works only once.
//!
//! Time is passed in (`now`), never read by the store, so expiry is tested
//! with a [`ManualClock`](crate::clock::ManualClock). Entries also carry a
//! real TTL so nothing lives forever.
//!
//! Keys passed in are already hashed or random (no phone, email, code or
//! token ever reaches a store in plain text). Backends: `MemoryStore`
//! (feature `moka`) and `RedisStore` (feature `redis`).
#![cfg_attr(feature = "redis", doc = include_str!("../../docs/redis.md"))]

use std::error::Error as StdError;
use std::fmt;
use std::future::Future;
use std::time::{Duration, SystemTime};

use crate::quota::{Quota, RateDecision};

#[cfg(feature = "moka")]
mod capacity;
#[cfg(feature = "moka")]
mod memory;
#[cfg(feature = "moka")]
mod rate_table;
#[cfg(feature = "moka")]
mod records;
#[cfg(feature = "redis")]
mod redis;

#[cfg(feature = "redis")]
pub use self::redis::{RedisConnectError, RedisStore, RedisStoreBuilder};
#[cfg(feature = "moka")]
pub use memory::{MemoryStore, MemoryStoreBuilder};

/// A boxed error from a store backend.
pub type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// Why a store operation failed. The HTTP layer turns every one of these into
/// `503 store_unavailable` (fail closed); the details go to `tracing` only.
#[derive(Debug)]
#[non_exhaustive]
pub enum StoreError {
    /// The backend did not answer within the configured timeout.
    Timeout(Duration),
    /// The backend is unreachable or refused the command.
    Unavailable(BoxError),
    /// The backend returned something this version cannot read.
    Corrupt(String),
    /// A bounded store is at capacity and refuses the write rather than
    /// forget live state (names the table: `"rate table"`, `"records"`).
    /// Nothing was changed.
    Full(&'static str),
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Timeout(d) => write!(f, "store did not answer within {d:?}"),
            Self::Unavailable(e) => write!(f, "store unavailable: {e}"),
            Self::Corrupt(what) => write!(f, "store returned unreadable data: {what}"),
            Self::Full(what) => write!(f, "store is full: {what} at capacity"),
        }
    }
}

impl StdError for StoreError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match self {
            Self::Unavailable(e) => Some(e.as_ref()),
            _ => None,
        }
    }
}

/// A pending one-time-code challenge, as stored (never the code itself).
#[derive(Clone, PartialEq, Eq)]
pub struct Challenge {
    /// Random id; removal and rollback name the exact challenge they mean.
    pub id: [u8; 16],
    /// HMAC-SHA256 of the code under the server pepper.
    pub mac: [u8; 32],
    /// Expiry, microseconds since the Unix epoch.
    pub expires_at_us: u64,
}

impl fmt::Debug for Challenge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Challenge")
            .field("id", &self.id)
            .field("mac", &"<redacted>")
            .field("expires_at_us", &self.expires_at_us)
            .finish()
    }
}

/// The outcome of counting one verification attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Attempt {
    /// No live challenge under that key (never issued, expired, consumed or burned).
    Missing,
    /// The attempt was counted; compare `challenge.mac` and, on a match,
    /// consume it with [`Store::remove_challenge`].
    Open {
        /// The stored challenge.
        challenge: Challenge,
        /// Attempts left after this one. `0` means this was the last: the
        /// store has already deleted the challenge, and a match on this
        /// attempt succeeds without a further removal.
        remaining: u32,
    },
}

/// The outcome of presenting a refresh token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rotation {
    /// The token was current: it is now spent and the successor is current.
    /// Carries the session data.
    Rotated(Vec<u8>),
    /// The token was spent within the grace window: the same successor stays
    /// current (two tabs refreshing at once). Carries the session data.
    Grace(Vec<u8>),
    /// The token was spent before the grace window: the whole session family
    /// has been revoked.
    Reused,
    /// Unknown, expired or revoked.
    Invalid,
}

/// One limit of a request, for [`Store::hit_all`].
#[derive(Clone, Copy, Debug)]
pub struct Limit<'a> {
    /// The store key of the limit's counter (already hashed or namespaced).
    pub key: &'a str,
    /// The quota that counter is held to.
    pub quota: &'a Quota,
}

/// The GCRA decisions of one [`Store::hit_all`] call, from the TAT each
/// limit's key held before the call (`stored[i]` for `limits[i]`; `None` =
/// never hit or expired). A key named twice sees its earlier limit's count.
///
/// Returns the decisions and, when every limit allows, the TAT to store for
/// each limit in order (a later limit of the same key supersedes an earlier
/// one); `None` when any limit refuses, and then nothing may be written.
#[cfg(any(feature = "moka", feature = "redis"))]
pub(crate) fn decide_all(
    limits: &[Limit<'_>],
    stored: &[Option<u64>],
    now_us: u64,
) -> (Vec<RateDecision>, Option<Vec<u64>>) {
    debug_assert_eq!(limits.len(), stored.len());
    let mut decisions = Vec::with_capacity(limits.len());
    // The TAT after each limit: counted, or unchanged when it refused.
    let mut after: Vec<Option<u64>> = Vec::with_capacity(limits.len());
    let mut all = true;
    for (i, limit) in limits.iter().enumerate() {
        let before = (0..i)
            .rev()
            .find(|&j| limits[j].key == limit.key)
            .map_or(stored[i], |j| after[j]);
        let (tat, decision) = crate::quota::gcra(before, now_us, limit.quota);
        all &= tat.is_some();
        after.push(tat.or(before));
        decisions.push(decision);
    }
    let next = if all {
        after.into_iter().collect()
    } else {
        None
    };
    (decisions, next)
}

/// Storage for limits, challenges, sessions and API keys.
///
/// Implementations must make each operation atomic and must pass the store
/// conformance suite in `tests/support/conformance.rs`.
pub trait Store: Clone + Send + Sync + fmt::Debug + 'static {
    /// Counts one request against `quota` under `key` (GCRA, see
    /// [`crate::quota::gcra`]). A refused request changes nothing.
    ///
    /// The same counter as a [`hit_all`](Self::hit_all) of one limit with
    /// this key, which is what the provided body does; a backend may answer
    /// a single limit faster.
    fn hit(
        &self,
        key: &str,
        quota: &Quota,
        now: SystemTime,
    ) -> impl Future<Output = Result<RateDecision, StoreError>> + Send {
        async move {
            let decisions = self.hit_all(&[Limit { key, quota }], now).await?;
            decisions
                .into_iter()
                .next()
                .ok_or_else(|| StoreError::Corrupt("hit_all returned no decision".into()))
        }
    }

    /// [`hit`](Self::hit) without waiting, for a store that counts in
    /// process memory: `Some` with the decision, or `None` (the default)
    /// when counting needs I/O — or cannot happen right now, in which case
    /// [`hit`](Self::hit) reports why (e.g. [`StoreError::Full`]). Rate-limit
    /// layers try it first, so with the in-memory store a request costs no
    /// boxed future and no service clone.
    /// The time is in microseconds since the Unix epoch
    /// ([`Clock::now_us`](crate::clock::Clock::now_us)), saving the
    /// conversion on this hot path.
    fn hit_now(&self, key: &str, quota: &Quota, now_us: u64) -> Option<RateDecision> {
        let _ = (key, quota, now_us);
        None
    }

    /// Counts one request against every limit in `limits`, all or nothing.
    ///
    /// Returns one decision per limit, in order. When every limit allows,
    /// all are counted and every decision has `allowed: true`. When any
    /// limit refuses, *none* is counted: the refusing limits report
    /// `allowed: false` with their `retry_after`, the others report what
    /// they would have decided (`allowed: true`, uncounted). A store error
    /// counts nothing.
    ///
    /// The decision is atomic: concurrent calls over overlapping keys behave
    /// as if they ran one after the other. A key named twice in one call is
    /// counted twice (the second limit sees the first one's count).
    fn hit_all(
        &self,
        limits: &[Limit<'_>],
        now: SystemTime,
    ) -> impl Future<Output = Result<Vec<RateDecision>, StoreError>> + Send;

    /// [`hit_all`](Self::hit_all) without waiting, as [`hit_now`](Self::hit_now)
    /// is to [`hit`](Self::hit): `None` (the default) when counting needs I/O
    /// or cannot happen right now. A layer with several policies tries it
    /// first, so over the in-memory store it boxes no future.
    fn hit_all_now(&self, limits: &[Limit<'_>], now_us: u64) -> Option<Vec<RateDecision>> {
        let _ = (limits, now_us);
        None
    }

    /// Stores `challenge` under `key`, replacing (voiding) any previous one;
    /// it lives until `challenge.expires_at_us` and its attempt count starts at 0.
    fn put_challenge(
        &self,
        key: &str,
        challenge: &Challenge,
        now: SystemTime,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Counts one verification attempt against the challenge under `key`.
    /// When this attempt is number `max_attempts`, the challenge is deleted in
    /// the same step (burned) and returned with `remaining: 0`.
    fn attempt_challenge(
        &self,
        key: &str,
        max_attempts: u32,
        now: SystemTime,
    ) -> impl Future<Output = Result<Attempt, StoreError>> + Send;

    /// Deletes the challenge under `key` if it is still the one with `id`.
    /// Returns whether this call deleted it: exactly one caller wins.
    fn remove_challenge(
        &self,
        key: &str,
        id: &[u8; 16],
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Starts a session family `sid` with opaque `data` and its first refresh
    /// token (by hash). Everything expires `ttl` after `now` unless rotated.
    fn create_session(
        &self,
        sid: &str,
        refresh_hash: &[u8; 32],
        data: &[u8],
        ttl: Duration,
        now: SystemTime,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Presents refresh token `presented` (by hash) of family `sid`; when it is
    /// current, makes `successor` current for `ttl`. See [`Rotation`].
    #[allow(clippy::too_many_arguments)]
    fn rotate_refresh(
        &self,
        sid: &str,
        presented: &[u8; 32],
        successor: &[u8; 32],
        grace: Duration,
        ttl: Duration,
        now: SystemTime,
    ) -> impl Future<Output = Result<Rotation, StoreError>> + Send;

    /// Revokes `id` — a session family id or a token's `jti` — for `ttl`.
    /// A revoked family can no longer rotate.
    fn revoke(
        &self,
        id: &str,
        ttl: Duration,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Whether `id` has been revoked.
    fn is_revoked(&self, id: &str) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Inserts or replaces the API-key record `id` (opaque bytes; the secret
    /// inside is already hashed), expiring after `ttl` when given.
    fn put_api_key(
        &self,
        id: &str,
        record: &[u8],
        ttl: Option<Duration>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The API-key record `id`, if any.
    fn get_api_key(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<Option<Vec<u8>>, StoreError>> + Send;

    /// Deletes the API-key record `id`; returns whether it existed.
    fn delete_api_key(&self, id: &str) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Every live API-key record, as `(id, record)`.
    fn list_api_keys(
        &self,
    ) -> impl Future<Output = Result<Vec<(String, Vec<u8>)>, StoreError>> + Send;

    /// Checks that the backend answers (readiness).
    fn ping(&self) -> impl Future<Output = Result<(), StoreError>> + Send;
}
