//! [`ChallengeStore`] for [`RedisStore`]: a hash per challenge, one script
//! per operation.

use std::time::{Duration, SystemTime};

use super::reply::{array, corrupt, decimal, fixed, int};
use super::scripts::SCRIPTS;
use super::store::{RedisStore, ttl_ms};
use crate::clock::unix_micros;
use crate::store::{Attempt, Challenge, ChallengeStore, StoreError};

impl ChallengeStore for RedisStore {
    async fn put_challenge(
        &self,
        key: &str,
        challenge: &Challenge,
        now: SystemTime,
    ) -> Result<(), StoreError> {
        let left = challenge.expires_at_us.saturating_sub(unix_micros(now));
        self.eval(
            "put_challenge",
            SCRIPTS
                .challenge_put
                .key(self.keys.challenge(key))
                .arg(&challenge.id[..])
                .arg(&challenge.mac[..])
                .arg(challenge.expires_at_us)
                .arg(ttl_ms(Duration::from_micros(left))),
        )
        .await?;
        Ok(())
    }

    async fn attempt_challenge(
        &self,
        key: &str,
        max_attempts: u32,
        now: SystemTime,
    ) -> Result<Attempt, StoreError> {
        const OP: &str = "attempt_challenge";
        let reply = self
            .eval(
                OP,
                SCRIPTS
                    .challenge_attempt
                    .key(self.keys.challenge(key))
                    .arg(max_attempts)
                    .arg(unix_micros(now)),
            )
            .await?;
        let mut items = array(OP, reply)?.into_iter();
        match items.next().map(|v| int(OP, &v)).transpose()? {
            Some(0) => Ok(Attempt::Missing),
            Some(1) => {
                let (Some(id), Some(mac), Some(exp), Some(left), None) = (
                    items.next(),
                    items.next(),
                    items.next(),
                    items.next(),
                    items.next(),
                ) else {
                    return Err(corrupt(OP));
                };
                Ok(Attempt::Open {
                    challenge: Challenge {
                        id: fixed(OP, id)?,
                        mac: fixed(OP, mac)?,
                        expires_at_us: decimal(OP, exp)?,
                    },
                    remaining: u32::try_from(int(OP, &left)?).map_err(|_| corrupt(OP))?,
                })
            }
            _ => Err(corrupt(OP)),
        }
    }

    async fn remove_challenge(&self, key: &str, id: &[u8; 16]) -> Result<bool, StoreError> {
        const OP: &str = "remove_challenge";
        let reply = self
            .eval(
                OP,
                SCRIPTS
                    .challenge_remove
                    .key(self.keys.challenge(key))
                    .arg(&id[..]),
            )
            .await?;
        Ok(int(OP, &reply)? == 1)
    }
}
