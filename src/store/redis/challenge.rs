//! [`ChallengeStore`] for [`RedisStore`]: a hash per challenge in the rate
//! cells' slot (its channel by name), one script per step with the step's
//! limits.

use std::time::{Duration, SystemTime};

use super::connection::Connection;
use super::rate::{push_limits, read_limits};
use super::reply::{array, bytes, corrupt, decimal, fixed, int};
use super::scripts::SCRIPTS;
use super::session::Start;
use super::store::{RedisStore, ttl_ms};
use crate::clock::unix_micros;
use crate::notify::Channel;
use crate::store::challenge::consume_in_steps;
use crate::store::{Attempt, Challenge, ChallengeStore, Limit, Limited, NewSession, StoreError};

impl ChallengeStore for RedisStore {
    async fn put_challenge(
        &self,
        key: &str,
        challenge: &Challenge,
        limits: &[Limit<'_>],
        now: SystemTime,
    ) -> Result<Limited<()>, StoreError> {
        const OP: &str = "put_challenge";
        let now_us = unix_micros(now);
        let left = challenge.expires_at_us.saturating_sub(now_us);
        let mut invocation = SCRIPTS.challenge_put.prepare_invoke();
        push_limits(&mut invocation, &self.keys, limits, now_us);
        invocation
            .key(self.keys.challenge(key))
            .arg(&challenge.id[..])
            .arg(&challenge.mac[..])
            .arg(challenge.expires_at_us)
            .arg(ttl_ms(Duration::from_micros(left)))
            .arg(challenge.channel.as_str());
        let reply = self.eval(OP, &invocation).await?;
        let mut items = array(OP, reply)?.into_iter();
        let (decisions, allowed) = read_limits(OP, &mut items, limits, now_us)?;
        if items.next().is_some() {
            return Err(corrupt(OP));
        }
        Ok(if allowed {
            Limited::Passed(())
        } else {
            Limited::Refused(decisions)
        })
    }

    async fn attempt_challenge(
        &self,
        key: &str,
        max_attempts: u32,
        limits: &[Limit<'_>],
        now: SystemTime,
    ) -> Result<Limited<Attempt>, StoreError> {
        const OP: &str = "attempt_challenge";
        let now_us = unix_micros(now);
        let mut invocation = SCRIPTS.challenge_attempt.prepare_invoke();
        push_limits(&mut invocation, &self.keys, limits, now_us);
        invocation.key(self.keys.challenge(key)).arg(max_attempts);
        let reply = self.eval(OP, &invocation).await?;
        let mut items = array(OP, reply)?.into_iter();
        let (decisions, allowed) = read_limits(OP, &mut items, limits, now_us)?;
        if !allowed {
            return match items.next() {
                None => Ok(Limited::Refused(decisions)),
                Some(_) => Err(corrupt(OP)),
            };
        }
        let attempt = match items.next().map(|v| int(OP, &v)).transpose()? {
            Some(0) => Attempt::Missing,
            Some(1) => {
                let (Some(id), Some(mac), Some(exp), Some(left), Some(channel)) = (
                    items.next(),
                    items.next(),
                    items.next(),
                    items.next(),
                    items.next(),
                ) else {
                    return Err(corrupt(OP));
                };
                let channel = std::str::from_utf8(&bytes(OP, channel)?)
                    .ok()
                    .and_then(Channel::from_name)
                    .ok_or_else(|| corrupt(OP))?;
                Attempt::Open {
                    challenge: Challenge {
                        id: fixed(OP, id)?,
                        mac: fixed(OP, mac)?,
                        expires_at_us: decimal(OP, exp)?,
                        channel,
                    },
                    remaining: u32::try_from(int(OP, &left)?).map_err(|_| corrupt(OP))?,
                }
            }
            _ => return Err(corrupt(OP)),
        };
        if items.next().is_some() {
            return Err(corrupt(OP));
        }
        Ok(Limited::Passed(attempt))
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

    /// One script on a single node: the challenge taken, the session
    /// indexed under its subject and started. On a cluster the challenge (in
    /// the rate cells' slot), the subject's index and the new family (each
    /// in its own slot) cannot meet in one script, so the store runs the
    /// trait's steps: start the session (index first), then remove the
    /// challenge, undoing the session if another caller won.
    async fn consume_challenge(
        &self,
        key: &str,
        id: &[u8; 16],
        session: NewSession<'_>,
        now: SystemTime,
    ) -> Result<bool, StoreError> {
        const OP: &str = "consume_challenge";
        if !matches!(self.conn, Connection::Single(_)) {
            return consume_in_steps(self, key, id, session, now).await;
        }
        let start = &Start::new(session, now);
        let keys = &[
            self.keys.challenge(key),
            self.keys.subject(session.subject),
            self.keys.family(session.sid),
            self.keys.revoked(session.sid),
        ];
        self.with_room(session.subject, unix_micros(now), move || async move {
            let mut invocation = SCRIPTS.challenge_consume.prepare_invoke();
            for key in keys {
                invocation.key(key);
            }
            invocation.arg(&id[..]);
            start.index_args(&mut invocation);
            start.start_args(&mut invocation);
            match int(OP, &self.eval(OP, &invocation).await?)? {
                0 => Ok(Some(false)),
                1 => Ok(Some(true)),
                2 => Ok(None),
                _ => Err(corrupt(OP)),
            }
        })
        .await
    }
}
