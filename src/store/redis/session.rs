//! [`SessionStore`] for [`RedisStore`]: session families and revocation
//! markers, one script (or one `EXISTS`) per operation.

use std::time::{Duration, SystemTime};

use super::reply::{array, bytes, corrupt, int};
use super::scripts::SCRIPTS;
use super::store::{RedisStore, micros, ttl_ms};
use crate::clock::unix_micros;
use crate::store::{NewSession, RefreshRotation, Rotation, SessionStore, StoreError};

/// Spent refresh tokens remembered per family for reuse detection, besides
/// the previous one (the same number as the memory store).
const SPENT_REMEMBERED: usize = 64;

impl SessionStore for RedisStore {
    async fn create_session(
        &self,
        session: NewSession<'_>,
        _now: SystemTime,
    ) -> Result<(), StoreError> {
        self.eval(
            "create_session",
            SCRIPTS
                .session_create
                .key(self.keys.family(session.sid))
                .arg(&session.refresh_hash[..])
                .arg(session.data)
                .arg(ttl_ms(session.ttl)),
        )
        .await?;
        Ok(())
    }

    async fn rotate_refresh(
        &self,
        rotation: RefreshRotation<'_>,
        now: SystemTime,
    ) -> Result<Rotation, StoreError> {
        const OP: &str = "rotate_refresh";
        let reply = self
            .eval(
                OP,
                SCRIPTS
                    .session_rotate
                    .key(self.keys.family(rotation.sid))
                    .key(self.keys.revoked(rotation.sid))
                    .arg(&rotation.presented[..])
                    .arg(&rotation.successor[..])
                    .arg(micros(rotation.grace))
                    .arg(ttl_ms(rotation.ttl))
                    .arg(unix_micros(now))
                    .arg(SPENT_REMEMBERED * 32),
            )
            .await?;
        let mut items = array(OP, reply)?.into_iter();
        let tag = items.next().map(|v| int(OP, &v)).transpose()?;
        let rotation = match tag {
            Some(0) => Rotation::Invalid,
            Some(1 | 2) => {
                let data = bytes(OP, items.next().ok_or_else(|| corrupt(OP))?)?;
                if tag == Some(1) {
                    Rotation::Rotated(data)
                } else {
                    Rotation::Grace(data)
                }
            }
            Some(3) => Rotation::Reused,
            _ => return Err(corrupt(OP)),
        };
        if items.next().is_some() {
            return Err(corrupt(OP));
        }
        Ok(rotation)
    }

    async fn revoke(&self, id: &str, ttl: Duration) -> Result<(), StoreError> {
        self.eval(
            "revoke",
            SCRIPTS
                .revoke
                .key(self.keys.family(id))
                .key(self.keys.revoked(id))
                .arg(ttl_ms(ttl)),
        )
        .await?;
        Ok(())
    }

    async fn is_revoked(&self, id: &str) -> Result<bool, StoreError> {
        const OP: &str = "is_revoked";
        let reply = self
            .command(OP, redis::cmd("EXISTS").arg(self.keys.revoked(id)))
            .await?;
        Ok(int(OP, &reply)? > 0)
    }

    /// One `EXISTS` naming every marker. On a single node that is one
    /// command and one round trip. On a cluster the markers of different ids
    /// live in different slots (each shares its family's tag, which
    /// `rotate_refresh` and `revoke` need), so the cluster client splits the
    /// command per slot, sends the parts at once and sums the counts: still
    /// one call and one round trip of latency, but one command per slot.
    async fn is_any_revoked(&self, ids: &[&str]) -> Result<bool, StoreError> {
        const OP: &str = "is_any_revoked";
        if ids.is_empty() {
            return Ok(false);
        }
        let mut cmd = redis::cmd("EXISTS");
        for id in ids {
            cmd.arg(self.keys.revoked(id));
        }
        let reply = self.command(OP, &cmd).await?;
        Ok(int(OP, &reply)? > 0)
    }
}
