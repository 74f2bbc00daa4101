//! [`SessionStore`] for [`MemoryStore`]: a session family and its
//! revocation marker share one authoritative record; each subject's index
//! of sessions is another.
//!
//! A family and its subject's index are two records (two shards, two
//! locks), so the two-step operations keep the trait's order: a create
//! indexes the family before it writes it, and writes it only if its id is
//! not revoked; `revoke_subject` reads the index, revokes every id in it
//! (a family still being created included: its marker stops the write),
//! then drops those entries.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::records::{Deadline, Op as RecordOp};
use super::store::{Family, IndexEntry, MemoryStore, Record, Session};
use crate::clock::unix_micros;
use crate::store::{
    FamilyState, MAX_SESSIONS_PER_SUBJECT, NewSession, RECLAIM_SLACK, RefreshRotation, Rotation,
    SessionInfo, SessionStore, StoreError, oldest_first,
};

/// Refresh tokens of one family remembered as spent, for reuse detection.
const SPENT_REMEMBERED: usize = 64;

fn session_key(id: &str) -> String {
    format!("s:{id}")
}

fn subject_key(subject: &str) -> String {
    format!("u:{subject}")
}

/// A duration on the record table's clock.
fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// The table deadline (from the table's `now`) that reclaims state whose
/// deadline on the caller's clock is `until_us` (from the caller's
/// `now_us`): the time left, plus `slack`.
///
/// A family is reclaimed at its deadline (no slack: a family reclaimed a
/// little early, for a caller whose clock runs behind the process's, only
/// ends sooner — and its room comes back as soon as it is dead). A subject's
/// index keeps [`RECLAIM_SLACK`]: reclaimed early, it would hide a live
/// session from `revoke_subject`.
fn reclaim_at(now: Deadline, now_us: u64, until_us: u64, slack: Duration) -> Deadline {
    let left = Duration::from_micros(until_us.saturating_sub(now_us));
    now.saturating_add(nanos(left.saturating_add(slack)))
}

/// The family of `session`, if it is live at `now_us` (and not reclaimed).
fn live_family(session: &Session, now: Deadline, now_us: u64) -> Option<&Arc<Family>> {
    session
        .family
        .as_ref()
        .filter(|(family, reclaim)| *reclaim > now && family.until_us > now_us)
        .map(|(family, _)| family)
}

/// Ends a session: its family is dropped and its id revoked for `ttl` (a
/// revocation is never shortened).
fn end(session: &mut Session, now: Deadline, ttl: Duration) {
    session.family = None;
    session.revoked_until = session.revoked_until.max(now.saturating_add(nanos(ttl)));
}

/// The record operation that stores a subject's index (reclaimed with its
/// longest-lived session), or removes an empty one.
fn index_op(entries: Vec<IndexEntry>, now: Deadline, now_us: u64) -> RecordOp<Record> {
    match entries.iter().map(|e| e.absolute_us).max() {
        None => RecordOp::Remove,
        Some(longest) => {
            let reclaim = reclaim_at(now, now_us, longest, RECLAIM_SLACK);
            RecordOp::Put(Record::Subject(entries), reclaim)
        }
    }
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

    /// What lies under the family id `sid` at `now_us`. A record without a
    /// family is a revoked (or reused) one: dead.
    fn family_state(&self, sid: &str, now_us: u64) -> FamilyState {
        self.records
            .get(&session_key(sid), |record, now| match record {
                Record::Session(s) => match live_family(s, now, now_us) {
                    Some(f) => FamilyState::Live {
                        created_us: f.created_us,
                        used_us: f.used_us,
                    },
                    None => FamilyState::Dead,
                },
                _ => FamilyState::Missing,
            })
            .unwrap_or(FamilyState::Missing)
    }

    /// The index entries of `subject`.
    fn indexed(&self, subject: &str) -> Vec<IndexEntry> {
        self.records
            .get(&subject_key(subject), |record, _| match record {
                Record::Subject(entries) => entries.clone(),
                _ => Vec::new(),
            })
            .unwrap_or_default()
    }

    /// Adds `entry` to the index of `subject`, dropping entries past their
    /// absolute deadline; `false` (nothing changed) when the subject holds
    /// [`MAX_SESSIONS_PER_SUBJECT`] entries even then.
    fn index_add(
        &self,
        subject: &str,
        entry: &IndexEntry,
        now_us: u64,
    ) -> Result<bool, StoreError> {
        self.record(&subject_key(subject), |current, now| {
            let mut entries = match current {
                Some(Record::Subject(entries)) => entries.clone(),
                _ => Vec::new(),
            };
            entries.retain(|e| e.absolute_us > now_us);
            if entries.len() >= MAX_SESSIONS_PER_SUBJECT {
                return (RecordOp::Keep, false);
            }
            entries.push(entry.clone());
            (index_op(entries, now, now_us), true)
        })
    }

    /// Drops the entries of `sids` from the index of `subject` (needs no
    /// room: the record shrinks or goes).
    fn unindex(&self, subject: &str, sids: &[&str], now_us: u64) -> Result<(), StoreError> {
        if sids.is_empty() {
            return Ok(());
        }
        self.record(&subject_key(subject), |current, now| {
            let Some(Record::Subject(entries)) = current else {
                return (RecordOp::Keep, ());
            };
            let mut entries = entries.clone();
            entries.retain(|e| !sids.contains(&&*e.sid));
            (index_op(entries, now, now_us), ())
        })
    }

    /// The live sessions of `subject`, unsorted, after pruning its stale
    /// index entries.
    fn live_sessions(&self, subject: &str, now_us: u64) -> Result<Vec<SessionInfo>, StoreError> {
        let entries = self.indexed(subject);
        let mut live = Vec::new();
        let mut stale = Vec::new();
        for e in &entries {
            let state = self.family_state(&e.sid, now_us);
            if state.stale_entry(e.created_us, e.absolute_us, now_us) {
                stale.push(&*e.sid);
            } else {
                live.extend(state.info(&e.sid));
            }
        }
        self.unindex(subject, &stale, now_us)?;
        Ok(live)
    }
}

impl SessionStore for MemoryStore {
    async fn create_session(&self, new: NewSession<'_>, now: SystemTime) -> Result<(), StoreError> {
        let now_us = unix_micros(now);
        let (until_us, absolute_us) = new.lifetime.deadlines(now_us);
        let entry = IndexEntry {
            sid: new.sid.into(),
            created_us: now_us,
            absolute_us,
        };
        // A full index may hold dead sessions that only their families
        // tell apart: prune by them, then try once more.
        if !self.index_add(new.subject, &entry, now_us)? {
            self.live_sessions(new.subject, now_us)?;
            if !self.index_add(new.subject, &entry, now_us)? {
                return Err(StoreError::Full("session index"));
            }
        }
        let family = Arc::new(Family {
            data: new.data.into(),
            current: *new.refresh_hash,
            previous: None,
            spent: Vec::new(),
            created_us: now_us,
            used_us: now_us,
            until_us,
            absolute_us,
        });
        let started = self.session(new.sid, |mut session, now| {
            if session.revoked_until > now {
                return (None, ()); // revoked while being created
            }
            session.family = Some((
                family.clone(),
                reclaim_at(now, now_us, until_us, Duration::ZERO),
            ));
            (Some(session), ())
        });
        if started.is_err() {
            // No family will exist: its entry goes (best effort; a stale
            // entry is pruned later anyway).
            let _ = self.unindex(new.subject, &[new.sid], now_us);
        }
        started
    }

    async fn rotate_refresh(
        &self,
        rotation: RefreshRotation<'_>,
        now: SystemTime,
    ) -> Result<Rotation, StoreError> {
        let now_us = unix_micros(now);
        let grace_us = u64::try_from(rotation.grace.as_micros()).unwrap_or(u64::MAX);
        let lifetime = rotation.lifetime;
        self.session(rotation.sid, |mut session, now| {
            let Some(family) = live_family(&session, now, now_us).cloned() else {
                return (None, Rotation::Invalid);
            };
            if &family.current == rotation.presented {
                let until_us = lifetime.refreshed(now_us, family.created_us, family.absolute_us);
                if until_us <= now_us {
                    // A lowered absolute lifetime ended it already.
                    session.family = None;
                    return (Some(session), Rotation::Invalid);
                }
                let mut next = (*family).clone();
                if let Some((old, _)) = next.previous.take() {
                    next.spent.push(old);
                    if next.spent.len() > SPENT_REMEMBERED {
                        next.spent.remove(0);
                    }
                }
                next.previous = Some((*rotation.presented, now_us));
                next.current = *rotation.successor;
                next.used_us = now_us;
                next.until_us = until_us;
                let reclaim = reclaim_at(now, now_us, until_us, Duration::ZERO);
                session.family = Some((Arc::new(next), reclaim));
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
            end(&mut session, now, lifetime.idle);
            (Some(session), Rotation::Reused)
        })
    }

    async fn revoke(&self, id: &str, ttl: Duration) -> Result<(), StoreError> {
        self.session(id, |mut session, now| {
            end(&mut session, now, ttl);
            (Some(session), ())
        })
    }

    async fn list_sessions(
        &self,
        subject: &str,
        now: SystemTime,
    ) -> Result<Vec<SessionInfo>, StoreError> {
        let mut live = self.live_sessions(subject, unix_micros(now))?;
        oldest_first(&mut live);
        Ok(live)
    }

    async fn revoke_session(
        &self,
        subject: &str,
        sid: &str,
        ttl: Duration,
        now: SystemTime,
    ) -> Result<bool, StoreError> {
        let now_us = unix_micros(now);
        if !self.indexed(subject).iter().any(|e| &*e.sid == sid) {
            return Ok(false);
        }
        // A live family has a record, so ending it needs no room.
        let revoked = self.session(sid, |mut session, now| {
            if live_family(&session, now, now_us).is_none() {
                return (None, false);
            }
            end(&mut session, now, ttl);
            (Some(session), true)
        })?;
        if revoked {
            self.unindex(subject, &[sid], now_us)?;
        }
        Ok(revoked)
    }

    async fn revoke_subject(
        &self,
        subject: &str,
        keep: Option<&str>,
        ttl: Duration,
        now: SystemTime,
    ) -> Result<usize, StoreError> {
        let now_us = unix_micros(now);
        let entries = self.indexed(subject);
        let mut revoked = 0;
        let mut done = Vec::with_capacity(entries.len());
        for e in entries.iter().filter(|e| Some(&*e.sid) != keep) {
            // Past its absolute deadline no family lives or can be written;
            // every other id is revoked, a family being created included.
            if e.absolute_us > now_us {
                let was_live = self.session(&e.sid, |mut session, now| {
                    let live = live_family(&session, now, now_us).is_some();
                    end(&mut session, now, ttl);
                    (Some(session), live)
                })?;
                revoked += usize::from(was_live);
            }
            done.push(&*e.sid);
        }
        self.unindex(subject, &done, now_us)?;
        Ok(revoked)
    }

    async fn is_revoked(&self, id: &str) -> Result<bool, StoreError> {
        Ok(self.revoked(id))
    }

    /// One pass over the ids, each a read of its record.
    async fn is_any_revoked(&self, ids: &[&str]) -> Result<bool, StoreError> {
        Ok(ids.iter().any(|id| self.revoked(id)))
    }
}
