//! [`ChallengeStore`] for [`MemoryStore`]: a moka cache with per-entry TTLs,
//! each attempt one atomic entry computation.

use std::time::{Duration, SystemTime};

use moka::ops::compute::Op;

use super::store::{Entry, MemoryStore};
use crate::clock::unix_micros;
use crate::store::{Attempt, Challenge, ChallengeStore, StoreError};

fn challenge_key(key: &str) -> String {
    key.to_owned()
}

fn remaining(expires_at_us: u64, now_us: u64) -> Duration {
    Duration::from_micros(expires_at_us.saturating_sub(now_us))
}

impl ChallengeStore for MemoryStore {
    async fn put_challenge(
        &self,
        key: &str,
        challenge: &Challenge,
        now: SystemTime,
    ) -> Result<(), StoreError> {
        let ttl = remaining(challenge.expires_at_us, unix_micros(now));
        let entry = Entry {
            challenge: challenge.clone(),
            attempts: 0,
            ttl,
        };
        self.challenges.insert(challenge_key(key), entry);
        Ok(())
    }

    async fn attempt_challenge(
        &self,
        key: &str,
        max_attempts: u32,
        now: SystemTime,
    ) -> Result<Attempt, StoreError> {
        let now_us = unix_micros(now);
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
                let left = max_attempts - entry.attempts;
                out = Attempt::Open {
                    challenge: entry.challenge.clone(),
                    remaining: left,
                };
                if left == 0 {
                    Op::Remove
                } else {
                    entry.ttl = remaining(entry.challenge.expires_at_us, now_us);
                    Op::Put(entry)
                }
            });
        Ok(out)
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
