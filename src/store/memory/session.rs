//! [`SessionStore`] for [`MemoryStore`]: a session family and its
//! revocation marker share one authoritative record.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::records::{Deadline, Op as RecordOp};
use super::store::{Family, MemoryStore, Record, Session};
use crate::clock::unix_micros;
use crate::store::{NewSession, RefreshRotation, Rotation, SessionStore, StoreError};

/// Refresh tokens of one family remembered as spent, for reuse detection.
const SPENT_REMEMBERED: usize = 64;

fn session_key(id: &str) -> String {
    format!("s:{id}")
}

/// A duration on the record table's clock.
fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

impl MemoryStore {
    /// Runs one atomic step on the session state under `id`.
    fn session<R>(
        &self,
        id: &str,
        mut f: impl FnMut(Session, Deadline) -> (Option<Session>, R),
    ) -> Result<R, StoreError> {
        self.record(&session_key(id), |current, now| {
            let session = match current {
                Some(Record::Session(s)) => s.clone(),
                _ => Session::default(),
            };
            match f(session, now) {
                (Some(next), out) => (next.into_op(now), out),
                (None, out) => (RecordOp::Keep, out),
            }
        })
    }

    /// Whether `id` carries a live revocation marker.
    fn revoked(&self, id: &str) -> bool {
        self.records
            .get(&session_key(id), |record, now| match record {
                Record::Session(s) => s.revoked_until > now,
                _ => false,
            })
            .unwrap_or(false)
    }
}

impl SessionStore for MemoryStore {
    async fn create_session(
        &self,
        new: NewSession<'_>,
        _now: SystemTime,
    ) -> Result<(), StoreError> {
        let family = Arc::new(Family {
            data: new.data.into(),
            current: *new.refresh_hash,
            previous: None,
            spent: Vec::new(),
        });
        self.session(new.sid, |mut session, now| {
            session.family = Some((family.clone(), now.saturating_add(nanos(new.ttl))));
            (Some(session), ())
        })
    }

    async fn rotate_refresh(
        &self,
        rotation: RefreshRotation<'_>,
        now: SystemTime,
    ) -> Result<Rotation, StoreError> {
        let now_us = unix_micros(now);
        let grace_us = u64::try_from(rotation.grace.as_micros()).unwrap_or(u64::MAX);
        self.session(rotation.sid, |mut session, now| {
            let live = session.family.clone().filter(|(_, until)| *until > now);
            let Some((family, _)) = live else {
                return (None, Rotation::Invalid);
            };
            if &family.current == rotation.presented {
                let mut next = (*family).clone();
                if let Some((old, _)) = next.previous.take() {
                    next.spent.push(old);
                    if next.spent.len() > SPENT_REMEMBERED {
                        next.spent.remove(0);
                    }
                }
                next.previous = Some((*rotation.presented, now_us));
                next.current = *rotation.successor;
                session.family = Some((Arc::new(next), now.saturating_add(nanos(rotation.ttl))));
                return (Some(session), Rotation::Rotated(family.data.to_vec()));
            }
            let reused = match family.previous {
                Some((prev, at)) if &prev == rotation.presented => {
                    if now_us.saturating_sub(at) <= grace_us
                        && &family.current == rotation.successor
                    {
                        return (None, Rotation::Grace(family.data.to_vec()));
                    }
                    true
                }
                _ => family.spent.contains(rotation.presented),
            };
            if !reused {
                return (None, Rotation::Invalid);
            }
            // Reuse: the family dies and its id is revoked, in one step.
            session.family = None;
            session.revoked_until = now.saturating_add(nanos(rotation.ttl));
            (Some(session), Rotation::Reused)
        })
    }

    async fn revoke(&self, id: &str, ttl: Duration) -> Result<(), StoreError> {
        self.session(id, |mut session, now| {
            session.family = None;
            session.revoked_until = now.saturating_add(nanos(ttl));
            (Some(session), ())
        })
    }

    async fn is_revoked(&self, id: &str) -> Result<bool, StoreError> {
        Ok(self.revoked(id))
    }

    /// One pass over the ids, each a read of its record.
    async fn is_any_revoked(&self, ids: &[&str]) -> Result<bool, StoreError> {
        Ok(ids.iter().any(|id| self.revoked(id)))
    }
}
