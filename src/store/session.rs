//! [`SessionStore`]: session families, refresh-token rotation, revocation.

use std::fmt;
use std::future::Future;
use std::time::{Duration, SystemTime};

use super::StoreError;

/// The outcome of presenting a refresh token.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
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

/// One presentation of a refresh token, for [`SessionStore::rotate_refresh`].
#[derive(Clone, Copy, Debug)]
pub struct RefreshRotation<'a> {
    /// The session family the token belongs to.
    pub sid: &'a str,
    /// SHA-256 of the presented token.
    pub presented: &'a [u8; 32],
    /// SHA-256 of its successor, current after a rotation.
    pub successor: &'a [u8; 32],
    /// How long a spent token still yields the same successor (two tabs
    /// refreshing at once) before a reuse revokes the family.
    pub grace: Duration,
    /// How long the family lives after this rotation.
    pub ttl: Duration,
}

/// A session family to start, for [`SessionStore::create_session`] and
/// [`ChallengeStore::consume_challenge`](super::ChallengeStore::consume_challenge).
#[derive(Clone, Copy, Debug)]
pub struct NewSession<'a> {
    /// The family id (random; the refresh token carries it).
    pub sid: &'a str,
    /// SHA-256 of the first refresh token.
    pub refresh_hash: &'a [u8; 32],
    /// Opaque session data, handed back on every rotation.
    pub data: &'a [u8],
    /// How long the family lives unless rotated.
    pub ttl: Duration,
}

/// Storage for sessions: a family per login, its refresh token rotated with
/// reuse detection, and revocation markers for families and token ids —
/// what the router's refresh and logout need, and all that
/// `JwtLayer::with_store` needs.
///
/// Implementations must make each operation atomic and must pass the
/// session suite of the store conformance tests
/// (`tests/support/conformance.rs`).
pub trait SessionStore: Clone + Send + Sync + fmt::Debug + 'static {
    /// Starts the session family `session.sid` with its data and first
    /// refresh token (by hash). Everything expires `session.ttl` after `now`
    /// unless rotated.
    fn create_session(
        &self,
        session: NewSession<'_>,
        now: SystemTime,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Presents a refresh token of a family (see [`RefreshRotation`]); when
    /// it is current, makes the successor current. See [`Rotation`].
    fn rotate_refresh(
        &self,
        rotation: RefreshRotation<'_>,
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

    /// Whether any of `ids` has been revoked (`false` for none): the
    /// revocation check of a protected request — its `sid` and its `jti` —
    /// in one call. Must agree with [`is_revoked`](Self::is_revoked) on
    /// every id.
    ///
    /// The default asks `is_revoked` for each id in turn and stops at the
    /// first revoked one; a backend that pays a round trip per call
    /// overrides it (`MemoryStore` and `RedisStore` do).
    fn is_any_revoked(
        &self,
        ids: &[&str],
    ) -> impl Future<Output = Result<bool, StoreError>> + Send {
        async move {
            for id in ids {
                if self.is_revoked(id).await? {
                    return Ok(true);
                }
            }
            Ok(false)
        }
    }
}
