//! [`ChallengeStore`]: pending one-time-code challenges and their attempts.

use std::fmt;
use std::future::Future;
use std::time::{Duration, SystemTime};

use super::{Limit, NewSession, RateStore, SessionStore, StoreError};
use crate::notify::Channel;
use crate::quota::RateDecision;

/// A pending one-time-code challenge, as stored (never the code itself).
#[derive(Clone, PartialEq, Eq)]
pub struct Challenge {
    /// Random id; removal and rollback name the exact challenge they mean.
    pub id: [u8; 16],
    /// HMAC-SHA256 of the code under the server pepper.
    pub mac: [u8; 32],
    /// Expiry, microseconds since the Unix epoch.
    pub expires_at_us: u64,
    /// The channel the code was sent on (a decoy: the identifier's default
    /// channel), for the session's `amr` claim.
    pub channel: Channel,
}

impl fmt::Debug for Challenge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Challenge")
            .field("id", &self.id)
            .field("mac", &"<redacted>")
            .field("expires_at_us", &self.expires_at_us)
            .field("channel", &self.channel)
            .finish()
    }
}

/// The outcome of counting one verification attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Attempt {
    /// No live challenge under that key (never issued, expired, consumed,
    /// or its attempts were used up).
    Missing,
    /// The attempt was counted; compare `challenge.mac` and, on a match,
    /// consume it with [`ChallengeStore::consume_challenge`].
    Open {
        /// The stored challenge.
        challenge: Challenge,
        /// Attempts left after this one. `0` means this was the last: the
        /// challenge takes no further attempt (the next one finds it
        /// [`Missing`](Attempt::Missing)), but a match on this one can
        /// still consume it.
        remaining: u32,
    },
}

/// The outcome of a store step gated by the rate limits of its request
/// ([`ChallengeStore::put_challenge`], [`ChallengeStore::attempt_challenge`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Limited<T> {
    /// Every limit allowed and was counted, and the step ran.
    Passed(T),
    /// A limit refused: nothing was counted and the step did not run. One
    /// decision per limit, in order, as [`RateStore::hit_all`] gives them.
    Refused(Vec<RateDecision>),
}

impl<T> Limited<T> {
    /// The step's outcome, `None` when a limit refused.
    pub fn passed(self) -> Option<T> {
        match self {
            Self::Passed(t) => Some(t),
            Self::Refused(_) => None,
        }
    }
}

/// Storage for one-time-code challenges: put one, count an attempt,
/// consume it once into a session — each step together with the rate
/// limits of its request, so that one endpoint step is one store call.
///
/// A challenge store is also the [`RateStore`] its limits count in and the
/// [`SessionStore`] a consumed challenge starts its session in.
/// Implementations must make [`put_challenge`](Self::put_challenge),
/// [`attempt_challenge`](Self::attempt_challenge) and
/// [`remove_challenge`](Self::remove_challenge) atomic, limits included
/// (all or nothing, as [`RateStore::hit_all`]), and must pass the challenge
/// suite of the store conformance tests (`tests/support/conformance.rs`).
pub trait ChallengeStore: RateStore + SessionStore {
    /// Counts one request against every limit in `limits`, all or nothing,
    /// and when all allow, stores `challenge` under `key`, replacing
    /// (voiding) any previous one; it lives until `challenge.expires_at_us`
    /// and its attempt count starts at 0. When a limit refuses, nothing is
    /// counted and the previous challenge stays. `limits` may be empty.
    fn put_challenge(
        &self,
        key: &str,
        challenge: &Challenge,
        limits: &[Limit<'_>],
        now: SystemTime,
    ) -> impl Future<Output = Result<Limited<()>, StoreError>> + Send;

    /// Counts one request against every limit in `limits`, all or nothing,
    /// and when all allow, counts one verification attempt against the
    /// challenge under `key`. Attempt number `max_attempts` is the last the
    /// challenge takes. When a limit refuses, nothing is counted.
    fn attempt_challenge(
        &self,
        key: &str,
        max_attempts: u32,
        limits: &[Limit<'_>],
        now: SystemTime,
    ) -> impl Future<Output = Result<Limited<Attempt>, StoreError>> + Send;

    /// Deletes the challenge under `key` if it is still the one with `id`.
    /// Returns whether this call deleted it: exactly one caller wins.
    fn remove_challenge(
        &self,
        key: &str,
        id: &[u8; 16],
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// After a matching code: deletes the challenge under `key` if it is
    /// still the one with `id` and starts `session`, as one step. Returns
    /// whether this call consumed it: exactly one caller wins, and only the
    /// winner's session exists afterwards. An error consumes nothing — the
    /// code still works — so a store that cannot hold the session never
    /// spends a code without one.
    ///
    /// The default starts the session, then removes the challenge, and
    /// deletes the session again when another caller won (it was never
    /// handed out); a crash in between leaves at most an unreachable session
    /// until its idle timeout. A backend that can do both in one atomic step
    /// overrides it (`RedisStore` on a single node does).
    fn consume_challenge(
        &self,
        key: &str,
        id: &[u8; 16],
        session: NewSession<'_>,
        now: SystemTime,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send {
        consume_in_steps(self, key, id, session, now)
    }
}

/// [`ChallengeStore::consume_challenge`] from the other operations: start
/// the session, remove the challenge, undo the session when another caller
/// won. Also what `RedisStore` runs on a cluster, where the two keys live in
/// different slots.
pub(crate) async fn consume_in_steps<S: ChallengeStore>(
    store: &S,
    key: &str,
    id: &[u8; 16],
    session: NewSession<'_>,
    now: SystemTime,
) -> Result<bool, StoreError> {
    store.create_session(session, now).await?;
    let won = match store.remove_challenge(key, id).await {
        Ok(won) => won,
        Err(e) => {
            undo_session(store, &session, now).await;
            return Err(e);
        }
    };
    if !won {
        undo_session(store, &session, now).await;
    }
    Ok(won)
}

/// Deletes a session that was never handed out, and its index entry (a
/// revocation for no time leaves no marker); on failure it stays
/// unreachable until its idle timeout.
async fn undo_session<S: SessionStore>(store: &S, session: &NewSession<'_>, now: SystemTime) {
    let undone = store
        .revoke_session(session.subject, session.sid, Duration::ZERO, now)
        .await;
    if let Err(e) = undone {
        tracing::warn!(target: "tower_otp", error = %e, "could not delete an unused session; it expires on its own");
    }
}
