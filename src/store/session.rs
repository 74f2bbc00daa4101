//! [`SessionStore`]: session families, refresh-token rotation, revocation,
//! and the per-subject index behind listing and revoking a user's sessions.

use std::fmt;
use std::future::Future;
use std::time::{Duration, SystemTime};

use super::StoreError;

/// The most sessions one subject holds at once. Creating one more fails
/// with [`StoreError::Full`] (the router answers `503`) after the store has
/// pruned the subject's dead sessions; nothing live is dropped to make room.
///
/// The router's limits keep real subjects far below it: every session needs
/// a verified code, and codes are limited per identifier (by default 3 an
/// hour), so a subject gathers at most `3 × hours of absolute lifetime`
/// sessions — and only as many as are still within their idle timeout are
/// live. The bound is what keeps one subject's index, and the work of
/// listing or revoking it, small whatever the configuration.
pub const MAX_SESSIONS_PER_SUBJECT: usize = 1024;

/// Deadlines on the caller's clock (µs since the Unix epoch) are capped at
/// 2^52 µs (the year 2112): "no absolute lifetime" (`Duration::MAX`) stays a
/// number that the Redis scripts' doubles hold exactly, sums included.
#[cfg(any(feature = "moka", feature = "redis"))]
pub(crate) const DEADLINE_CAP_US: u64 = 1 << 52;

/// How long a backend keeps a subject index (Redis: also a session family)
/// past its deadline before reclaiming it (Redis `PEXPIRE`, the memory
/// store's record TTL). Expiry is decided by the deadlines against the
/// caller's `now`; the slack covers callers whose clocks run a little
/// behind, so that a subject index is never reclaimed while one of them
/// still sees a family of it live.
#[cfg(any(feature = "moka", feature = "redis"))]
pub(crate) const RECLAIM_SLACK: Duration = Duration::from_secs(60);

/// An index entry is written before its family (see [`SessionStore`]). An
/// entry whose family is still missing this long after the entry's creation
/// time is stale — the family expired and was reclaimed, was undone, or its
/// create failed — and is pruned; a younger one may be a create under way,
/// and stays.
#[cfg(any(feature = "moka", feature = "redis"))]
pub(crate) const PENDING_CREATE: Duration = Duration::from_secs(60);

/// `from_us + d`, capped at [`DEADLINE_CAP_US`].
#[cfg(any(feature = "moka", feature = "redis"))]
pub(crate) fn deadline_after(from_us: u64, d: Duration) -> u64 {
    let d_us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
    from_us.saturating_add(d_us).min(DEADLINE_CAP_US)
}

/// How long a session lives: an idle timeout (since its last use — its
/// creation or its last refresh) and an absolute lifetime (since its
/// creation), whichever ends first.
///
/// A session's absolute deadline is fixed when it is created; a rotation
/// under a shorter `absolute` (a lowered configuration) ends it sooner, a
/// longer one never extends it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionLifetime {
    /// How long a session lives without being refreshed.
    pub idle: Duration,
    /// How long a session lives at most, refreshed or not.
    pub absolute: Duration,
}

impl SessionLifetime {
    /// NIST SP 800-63B-4 §2.1.3, AAL1: reauthenticate at least once every
    /// 30 days; no inactivity timeout is required. The router's default.
    /// A one-time code by SMS or email is one factor, so logins made with
    /// it alone are AAL1.
    pub const NIST_AAL1: Self = Self {
        idle: Duration::from_secs(30 * 24 * 3600),
        absolute: Duration::from_secs(30 * 24 * 3600),
    };

    /// NIST SP 800-63B-4 §2.2.3, AAL2: reauthenticate at least once every
    /// 24 hours and after 1 hour of inactivity — for apps whose login adds
    /// a second factor to the code. Inactivity is measured from the last
    /// refresh, so keep the access-token lifetime well below an hour (the
    /// default 15 minutes).
    pub const NIST_AAL2: Self = Self {
        idle: Duration::from_secs(3600),
        absolute: Duration::from_secs(24 * 3600),
    };

    /// The deadlines of a session created at `created_us`: (its first
    /// deadline, its absolute deadline).
    #[cfg(any(feature = "moka", feature = "redis"))]
    pub(crate) fn deadlines(&self, created_us: u64) -> (u64, u64) {
        let absolute = deadline_after(created_us, self.absolute);
        (
            deadline_after(created_us, self.idle).min(absolute),
            absolute,
        )
    }

    /// The deadline of a session (created at `created_us`, absolute deadline
    /// `absolute_us`) refreshed at `now_us`. The Redis script
    /// `session_rotate.lua` computes the same.
    #[cfg(feature = "moka")]
    pub(crate) fn refreshed(&self, now_us: u64, created_us: u64, absolute_us: u64) -> u64 {
        deadline_after(now_us, self.idle)
            .min(deadline_after(created_us, self.absolute))
            .min(absolute_us)
    }
}

/// One live session of a subject, as [`SessionStore::list_sessions`]
/// reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionInfo {
    /// The session family id, as it was created.
    pub sid: String,
    /// When it was created (the `now` of its creation).
    pub created_at: SystemTime,
    /// When it was last used: its creation or its last rotation.
    pub last_used_at: SystemTime,
}

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

/// What a backend finds under an indexed family id, for listing and pruning.
#[cfg(any(feature = "moka", feature = "redis"))]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FamilyState {
    /// Within its deadline at the caller's now.
    Live { created_us: u64, used_us: u64 },
    /// Past its deadline, or revoked.
    Dead,
    /// No family (not yet written, or reclaimed, or never written).
    Missing,
}

#[cfg(any(feature = "moka", feature = "redis"))]
impl FamilyState {
    /// Whether the index entry of this family (created at `created_us`,
    /// absolute deadline `absolute_us`) may be pruned at `now_us`: its family
    /// is dead, or past its absolute deadline, or still missing
    /// [`PENDING_CREATE`] after its creation. The Redis script
    /// `lib_session.lua` (`entry_stale`) decides the same.
    pub(crate) fn stale_entry(self, created_us: u64, absolute_us: u64, now_us: u64) -> bool {
        absolute_us <= now_us
            || match self {
                Self::Live { .. } => false,
                Self::Dead => true,
                Self::Missing => deadline_after(created_us, PENDING_CREATE) <= now_us,
            }
    }

    /// The listing of a live family.
    pub(crate) fn info(self, sid: &str) -> Option<SessionInfo> {
        match self {
            Self::Live {
                created_us,
                used_us,
            } => Some(SessionInfo {
                sid: sid.to_owned(),
                created_at: std::time::UNIX_EPOCH + Duration::from_micros(created_us),
                last_used_at: std::time::UNIX_EPOCH + Duration::from_micros(used_us),
            }),
            Self::Dead | Self::Missing => None,
        }
    }
}

/// Oldest first: by creation, then by id.
#[cfg(any(feature = "moka", feature = "redis"))]
pub(crate) fn oldest_first(sessions: &mut [SessionInfo]) {
    sessions.sort_by(|a, b| (a.created_at, &a.sid).cmp(&(b.created_at, &b.sid)));
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
    /// The family's lifetime: after a rotation its deadline is
    /// `min(now + idle, created + absolute)` (never past the absolute
    /// deadline it was created with). A reuse revokes the family's id for
    /// `idle`, longer than any access token minted from it lives (when the
    /// access-token lifetime is at most the idle timeout).
    pub lifetime: SessionLifetime,
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
    /// The subject's index key: every session of one subject shares it (the
    /// router passes a hashed, namespaced key; stores treat it as opaque).
    pub subject: &'a str,
    /// How long the family lives: it ends `lifetime.idle` after `now`
    /// unless rotated, and `lifetime.absolute` after `now` at the latest.
    pub lifetime: SessionLifetime,
}

/// Storage for sessions: a family per login, its refresh token rotated with
/// reuse detection, revocation markers for families and token ids, and an
/// index of each subject's sessions — what the router's refresh, logout and
/// session management need, and (the revocation checks) all that
/// `JwtLayer::with_store` needs.
///
/// # Lifetimes
///
/// A family carries its creation time, its last use and two deadlines on
/// the caller's clock (see [`SessionLifetime`]). Every decision — whether a
/// rotation finds the family live, whether a listing shows it — compares
/// those deadlines with the `now` passed in, so a manual clock drives idle
/// and absolute expiry. A backend's own expiry (Redis `PEXPIRE`, the memory
/// store's record TTL) only reclaims memory once the deadline has passed
/// (a subject's index a minute after its last session's absolute deadline).
///
/// # The subject index
///
/// Every family is indexed under its [`NewSession::subject`]. The index
/// entry is written *before* the family exists (in one step where the
/// backend can, else in that order), and a family id that is revoked before
/// its family is written never gets one; so
/// [`revoke_subject`](Self::revoke_subject) reaches every session that
/// exists, including one being created while it runs. Entries whose family
/// is dead are pruned by [`create_session`](Self::create_session) (past
/// their absolute deadline), [`list_sessions`](Self::list_sessions) and the
/// revocations. A subject holds at most [`MAX_SESSIONS_PER_SUBJECT`].
///
/// Implementations must make each operation atomic (a two-step operation
/// linearizable in the order above) and must pass the session suite of the
/// store conformance tests (`tests/support/conformance.rs`).
pub trait SessionStore: Clone + Send + Sync + fmt::Debug + 'static {
    /// Starts the session family `session.sid` with its data and first
    /// refresh token (by hash), indexed under `session.subject`, created and
    /// last used at `now`; it ends `session.lifetime.idle` after `now`
    /// unless rotated. A family id already revoked gets no family (it was
    /// revoked while being created). [`StoreError::Full`] when the subject
    /// already holds [`MAX_SESSIONS_PER_SUBJECT`] live sessions; then
    /// nothing changed.
    fn create_session(
        &self,
        session: NewSession<'_>,
        now: SystemTime,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Presents a refresh token of a family (see [`RefreshRotation`]); when
    /// it is current, makes the successor current and the family last used
    /// at `now`. A family past its deadline at `now` is
    /// [`Rotation::Invalid`]. See [`Rotation`].
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

    /// The live sessions of `subject` — families still within their idle
    /// and absolute deadlines at `now`, not revoked — oldest first (by
    /// creation, then id). Prunes dead index entries as it goes.
    fn list_sessions(
        &self,
        subject: &str,
        now: SystemTime,
    ) -> impl Future<Output = Result<Vec<SessionInfo>, StoreError>> + Send;

    /// Revokes `sid` — deletes its family and revokes its id for `ttl`, as
    /// [`revoke`](Self::revoke) does — only if it is a live session of
    /// `subject` at `now`. `Ok(false)` for an unknown, dead or other
    /// subject's session, and then nothing changes.
    fn revoke_session(
        &self,
        subject: &str,
        sid: &str,
        ttl: Duration,
        now: SystemTime,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Revokes every session of `subject` except `keep` (`None`: all of
    /// them), each id for `ttl`, and removes them from the index. Returns
    /// how many of them were live at `now`. Idempotent: after an error,
    /// some may be revoked and the rest still indexed, and a retry finishes
    /// the job (counting only what it revokes).
    fn revoke_subject(
        &self,
        subject: &str,
        keep: Option<&str>,
        ttl: Duration,
        now: SystemTime,
    ) -> impl Future<Output = Result<usize, StoreError>> + Send;

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
