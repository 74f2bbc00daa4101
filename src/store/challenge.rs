//! [`ChallengeStore`]: pending one-time-code challenges and their attempts.

use std::fmt;
use std::future::Future;
use std::time::SystemTime;

use super::StoreError;

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
#[non_exhaustive]
pub enum Attempt {
    /// No live challenge under that key (never issued, expired, consumed or burned).
    Missing,
    /// The attempt was counted; compare `challenge.mac` and, on a match,
    /// consume it with [`ChallengeStore::remove_challenge`].
    Open {
        /// The stored challenge.
        challenge: Challenge,
        /// Attempts left after this one. `0` means this was the last: the
        /// store has already deleted the challenge, and a match on this
        /// attempt succeeds without a further removal.
        remaining: u32,
    },
}

/// Storage for one-time-code challenges: put one, count an attempt, remove
/// it once.
///
/// Implementations must make each operation atomic and must pass the
/// challenge suite of the store conformance tests
/// (`tests/support/conformance.rs`).
pub trait ChallengeStore: Clone + Send + Sync + fmt::Debug + 'static {
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
}
