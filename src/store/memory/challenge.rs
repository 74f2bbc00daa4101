//! [`ChallengeStore`] for [`MemoryStore`]: a moka cache with per-entry TTLs,
//! each attempt one atomic entry computation, behind the step's limits.
//!
//! A gated step decides its limits first (one atomic `hit_all` on the rate
//! table) and runs only when all allow; nothing after the limits can fail,
//! so a refused or failed step changes nothing. `consume_challenge` is the
//! trait's default: the session is started (the only write that can fail,
//! when the record table is full) before the challenge is removed.

use std::time::{Duration, SystemTime};

use moka::ops::compute::Op;

use super::store::{Entry, MemoryStore};
use crate::clock::unix_micros;
use crate::quota::RateDecision;
use crate::store::{Attempt, Challenge, ChallengeStore, Limit, Limited, StoreError};

fn challenge_key(key: &str) -> String {
    key.to_owned()
}

fn remaining(expires_at_us: u64, now_us: u64) -> Duration {
    Duration::from_micros(expires_at_us.saturating_sub(now_us))
}

impl MemoryStore {
    /// Counts `limits` all or nothing: `Some(decisions)` when one refused.
    fn refused(
        &self,
        limits: &[Limit<'_>],
        now_us: u64,
    ) -> Result<Option<Vec<RateDecision>>, StoreError> {
        if limits.is_empty() {
            return Ok(None);
        }
        let decisions = self.rate_hit_all(limits, now_us)?;
        Ok((!decisions.iter().all(|d| d.allowed)).then_some(decisions))
    }
}

impl ChallengeStore for MemoryStore {
    async fn put_challenge(
        &self,
        key: &str,
        challenge: &Challenge,
        limits: &[Limit<'_>],
        now: SystemTime,
    ) -> Result<Limited<()>, StoreError> {
        let now_us = unix_micros(now);
        if let Some(decisions) = self.refused(limits, now_us)? {
            return Ok(Limited::Refused(decisions));
        }
        let ttl = remaining(challenge.expires_at_us, now_us);
        let entry = Entry {
            challenge: challenge.clone(),
            attempts: 0,
            ttl,
        };
        self.challenges.insert(challenge_key(key), entry);
        Ok(Limited::Passed(()))
    }

    async fn attempt_challenge(
        &self,
        key: &str,
        max_attempts: u32,
        limits: &[Limit<'_>],
        now: SystemTime,
    ) -> Result<Limited<Attempt>, StoreError> {
        let now_us = unix_micros(now);
        if let Some(decisions) = self.refused(limits, now_us)? {
            return Ok(Limited::Refused(decisions));
        }
        let mut out = Attempt::Missing;
        self.challenges
            .entry(challenge_key(key))
            .and_compute_with(|current| {
                let Some(entry) = current else { return Op::Nop };
                let mut entry = entry.into_value();
                if entry.challenge.expires_at_us <= now_us || entry.attempts >= max_attempts {
                    return Op::Remove;
                }
                entry.attempts += 1;
                out = Attempt::Open {
                    challenge: entry.challenge.clone(),
                    remaining: max_attempts - entry.attempts,
                };
                // The last attempt's entry stays, exhausted, so that a match
                // on it can still be consumed.
                entry.ttl = remaining(entry.challenge.expires_at_us, now_us);
                Op::Put(entry)
            });
        Ok(Limited::Passed(out))
    }

    async fn remove_challenge(&self, key: &str, id: &[u8; 16]) -> Result<bool, StoreError> {
        let mut removed = false;
        self.challenges
            .entry(challenge_key(key))
            .and_compute_with(|current| match current {
                Some(entry) if &entry.value().challenge.id == id => {
                    removed = true;
                    Op::Remove
                }
                _ => Op::Nop,
            });
        Ok(removed)
    }
}
