//! [`SessionStore`] for [`RedisStore`]: session families, revocation
//! markers and subject indexes (`lua/lib_session.lua`).
//!
//! On a single node every operation is one script (or one `EXISTS`). On a
//! cluster a subject's index and its families live in different slots, so
//! an operation on both runs as steps in the order the trait asks for: a
//! create indexes the family, then writes it (unless its id was revoked
//! meanwhile); a listing or a revocation reads the index, then the
//! families — each family's step a script of its own, sent at once — and
//! then prunes the index.

use std::future::Future;
use std::time::{Duration, SystemTime};

use redis::{Script, ScriptInvocation, ToRedisArgs, Value};

use super::connection::Connection;
use super::reply::{array, bytes, corrupt, decimal, int};
use super::scripts::SCRIPTS;
use super::store::{RedisStore, micros, ttl_ms};
use crate::clock::unix_micros;
use crate::store::{
    FamilyState, MAX_SESSIONS_PER_SUBJECT, NewSession, PENDING_CREATE, RECLAIM_SLACK,
    RefreshRotation, Rotation, SessionInfo, SessionStore, StoreError, deadline_after, oldest_first,
};

/// Spent refresh tokens remembered per family for reuse detection, besides
/// the previous one (the same number as the memory store).
const SPENT_REMEMBERED: usize = 64;

/// A family to start, with its deadlines: the arguments of `index_add` and
/// `session_start` (`lib_session.lua`).
pub(super) struct Start<'a> {
    pub(super) session: NewSession<'a>,
    now_us: u64,
    until_us: u64,
    absolute_us: u64,
}

impl<'a> Start<'a> {
    pub(super) fn new(session: NewSession<'a>, now: SystemTime) -> Self {
        let now_us = unix_micros(now);
        let (until_us, absolute_us) = session.lifetime.deadlines(now_us);
        Self {
            session,
            now_us,
            until_us,
            absolute_us,
        }
    }

    /// `index_add`'s arguments: sid, now_us, absolute_us, max, slack_ms.
    pub(super) fn index_args(&self, invocation: &mut ScriptInvocation<'_>) {
        invocation
            .arg(self.session.sid)
            .arg(self.now_us)
            .arg(self.absolute_us)
            .arg(MAX_SESSIONS_PER_SUBJECT)
            .arg(ttl_ms(RECLAIM_SLACK));
    }

    /// `session_start`'s arguments: refresh_hash, data, now_us, until_us,
    /// absolute_us, reclaim_ms.
    pub(super) fn start_args(&self, invocation: &mut ScriptInvocation<'_>) {
        let left = Duration::from_micros(self.until_us.saturating_sub(self.now_us));
        invocation
            .arg(&self.session.refresh_hash[..])
            .arg(self.session.data)
            .arg(self.now_us)
            .arg(self.until_us)
            .arg(self.absolute_us)
            .arg(ttl_ms(left.saturating_add(RECLAIM_SLACK)));
    }
}

/// One entry of a subject index.
struct Entry {
    sid: String,
    created_us: u64,
    absolute_us: u64,
}

/// A `family_state` reply (`lib_session.lua`).
fn family_state(op: &'static str, reply: Value) -> Result<FamilyState, StoreError> {
    let mut items = array(op, reply)?.into_iter();
    let state = match items.next().map(|v| int(op, &v)).transpose()? {
        Some(1) => {
            let (Some(c), Some(u)) = (items.next(), items.next()) else {
                return Err(corrupt(op));
            };
            FamilyState::Live {
                created_us: decimal(op, c)?,
                used_us: decimal(op, u)?,
            }
        }
        Some(0) => FamilyState::Missing,
        Some(-1) => FamilyState::Dead,
        _ => return Err(corrupt(op)),
    };
    match items.next() {
        None => Ok(state),
        Some(_) => Err(corrupt(op)),
    }
}

/// `idle` or `absolute` for a script: µs, capped like every deadline.
fn duration_us(d: Duration) -> u64 {
    deadline_after(0, d)
}

impl RedisStore {
    fn single_node(&self) -> bool {
        matches!(self.conn, Connection::Single(_))
    }

    /// Runs `step` (`Ok(None)`: the subject's index is full, nothing
    /// changed); when the index is full, prunes it by its families and runs
    /// `step` once more. Still full: [`StoreError::Full`].
    pub(super) async fn with_room<T, F>(
        &self,
        subject: &str,
        now_us: u64,
        step: impl Fn() -> F,
    ) -> Result<T, StoreError>
    where
        F: Future<Output = Result<Option<T>, StoreError>>,
    {
        if let Some(done) = step().await? {
            return Ok(done);
        }
        self.live_sessions(subject, now_us).await?;
        step().await?.ok_or(StoreError::Full("session index"))
    }

    /// Starts a family: `Ok(false)` when its subject's index is full.
    async fn start(&self, start: &Start<'_>) -> Result<bool, StoreError> {
        const OP: &str = "create_session";
        let s = &start.session;
        let (index, family, marker) = (
            self.keys.subject(s.subject),
            self.keys.family(s.sid),
            self.keys.revoked(s.sid),
        );
        if self.single_node() {
            let mut invocation = SCRIPTS.session_create.prepare_invoke();
            invocation.key(index).key(family).key(marker);
            start.index_args(&mut invocation);
            start.start_args(&mut invocation);
            return Ok(int(OP, &self.eval(OP, &invocation).await?)? == 1);
        }
        let mut invocation = SCRIPTS.session_index_add.prepare_invoke();
        invocation.key(&index);
        start.index_args(&mut invocation);
        if int(OP, &self.eval(OP, &invocation).await?)? != 1 {
            return Ok(false);
        }
        let mut invocation = SCRIPTS.session_start.prepare_invoke();
        invocation.key(family).key(marker);
        start.start_args(&mut invocation);
        if let Err(e) = self.eval(OP, &invocation).await {
            // No family will exist (or, after a timeout, one nobody was
            // handed): its entry goes, best effort.
            let _ = self.unindex(&index, &[s.sid]).await;
            return Err(e);
        }
        Ok(true)
    }

    /// The entries of the index `index` (a cluster's first step).
    async fn entries(&self, op: &'static str, index: &str) -> Result<Vec<Entry>, StoreError> {
        let reply = self.command(op, redis::cmd("HGETALL").arg(index)).await?;
        let mut items = array(op, reply)?.into_iter();
        let mut entries = Vec::new();
        while let Some(sid) = items.next() {
            let value = bytes(op, items.next().ok_or_else(|| corrupt(op))?)?;
            let parsed = std::str::from_utf8(&value).ok().and_then(|v| {
                let (c, a) = v.split_once(':')?;
                Some((c.parse().ok()?, a.parse().ok()?))
            });
            let (created_us, absolute_us) = parsed.ok_or_else(|| corrupt(op))?;
            let sid = String::from_utf8(bytes(op, sid)?).map_err(|_| corrupt(op))?;
            entries.push(Entry {
                sid,
                created_us,
                absolute_us,
            });
        }
        Ok(entries)
    }

    /// Drops `sids` from the index `index`.
    async fn unindex(&self, index: &str, sids: &[&str]) -> Result<(), StoreError> {
        if sids.is_empty() {
            return Ok(());
        }
        self.command("unindex", redis::cmd("HDEL").arg(index).arg(sids))
            .await?;
        Ok(())
    }

    /// Runs `script` (KEYS: a family, its marker; ARGV: `args`) for each
    /// of `sids`, all at once (each family is in a slot of its own); the
    /// replies in the order of `sids`.
    async fn each_family<A>(
        &self,
        op: &'static str,
        script: &'static Script,
        sids: &[&str],
        args: A,
    ) -> Result<Vec<Value>, StoreError>
    where
        A: ToRedisArgs + Clone + Send + 'static,
    {
        let mut tasks = tokio::task::JoinSet::new();
        for (i, sid) in sids.iter().enumerate() {
            let (store, args) = (self.clone(), args.clone());
            let (family, marker) = (self.keys.family(sid), self.keys.revoked(sid));
            tasks.spawn(async move {
                let mut invocation = script.prepare_invoke();
                invocation.key(family).key(marker).arg(args);
                (i, store.eval(op, &invocation).await)
            });
        }
        let mut replies = vec![Value::Nil; sids.len()];
        while let Some(joined) = tasks.join_next().await {
            let (i, reply) = joined.unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
            replies[i] = reply?;
        }
        Ok(replies)
    }

    /// The live sessions of `subject`, unsorted, after pruning its stale
    /// index entries.
    async fn live_sessions(
        &self,
        subject: &str,
        now_us: u64,
    ) -> Result<Vec<SessionInfo>, StoreError> {
        const OP: &str = "list_sessions";
        let index = self.keys.subject(subject);
        let pending_us = duration_us(PENDING_CREATE);
        if self.single_node() {
            let reply = self
                .eval(
                    OP,
                    SCRIPTS
                        .session_list
                        .key(index)
                        .arg(&self.keys.family_prefix)
                        .arg(now_us)
                        .arg(pending_us),
                )
                .await?;
            let mut items = array(OP, reply)?.into_iter();
            let mut live = Vec::new();
            while let Some(sid) = items.next() {
                let (Some(c), Some(u)) = (items.next(), items.next()) else {
                    return Err(corrupt(OP));
                };
                let sid = String::from_utf8(bytes(OP, sid)?).map_err(|_| corrupt(OP))?;
                let state = FamilyState::Live {
                    created_us: decimal(OP, c)?,
                    used_us: decimal(OP, u)?,
                };
                live.extend(state.info(&sid));
            }
            return Ok(live);
        }
        let entries = self.entries(OP, &index).await?;
        let sids: Vec<&str> = entries.iter().map(|e| e.sid.as_str()).collect();
        let replies = self
            .each_family(OP, &SCRIPTS.session_state, &sids, now_us)
            .await?;
        let mut live = Vec::new();
        let mut stale = Vec::new();
        for (e, reply) in entries.iter().zip(replies) {
            let state = family_state(OP, reply)?;
            if state.stale_entry(e.created_us, e.absolute_us, now_us) {
                stale.push(e.sid.as_str());
            } else {
                live.extend(state.info(&e.sid));
            }
        }
        self.unindex(&index, &stale).await?;
        Ok(live)
    }
}

impl SessionStore for RedisStore {
    async fn create_session(
        &self,
        session: NewSession<'_>,
        now: SystemTime,
    ) -> Result<(), StoreError> {
        let start = &Start::new(session, now);
        self.with_room(session.subject, start.now_us, move || async move {
            Ok(self.start(start).await?.then_some(()))
        })
        .await
    }

    async fn rotate_refresh(
        &self,
        rotation: RefreshRotation<'_>,
        now: SystemTime,
    ) -> Result<Rotation, StoreError> {
        const OP: &str = "rotate_refresh";
        let lifetime = rotation.lifetime;
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
                    .arg(unix_micros(now))
                    .arg(duration_us(lifetime.idle))
                    .arg(duration_us(lifetime.absolute))
                    .arg(SPENT_REMEMBERED * 32)
                    .arg(ttl_ms(RECLAIM_SLACK))
                    .arg(ttl_ms(lifetime.idle)),
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

    async fn list_sessions(
        &self,
        subject: &str,
        now: SystemTime,
    ) -> Result<Vec<SessionInfo>, StoreError> {
        let mut live = self.live_sessions(subject, unix_micros(now)).await?;
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
        const OP: &str = "revoke_session";
        let now_us = unix_micros(now);
        let index = self.keys.subject(subject);
        if self.single_node() {
            let reply = self
                .eval(
                    OP,
                    SCRIPTS
                        .session_revoke
                        .key(index)
                        .key(self.keys.family(sid))
                        .key(self.keys.revoked(sid))
                        .arg(sid)
                        .arg(now_us)
                        .arg(ttl_ms(ttl)),
                )
                .await?;
            return Ok(int(OP, &reply)? == 1);
        }
        let reply = self
            .command(OP, redis::cmd("HEXISTS").arg(&index).arg(sid))
            .await?;
        if int(OP, &reply)? == 0 {
            return Ok(false);
        }
        let replies = self
            .each_family(OP, &SCRIPTS.session_end, &[sid], (now_us, ttl_ms(ttl), 1))
            .await?;
        let revoked = replies.iter().map(|r| int(OP, r)).sum::<Result<i64, _>>()? == 1;
        if revoked {
            self.unindex(&index, &[sid]).await?;
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
        const OP: &str = "revoke_subject";
        let now_us = unix_micros(now);
        let index = self.keys.subject(subject);
        if self.single_node() {
            let reply = self
                .eval(
                    OP,
                    SCRIPTS
                        .session_revoke_subject
                        .key(index)
                        .arg(&self.keys.family_prefix)
                        .arg(now_us)
                        .arg(ttl_ms(ttl))
                        .arg(u8::from(keep.is_some()))
                        .arg(keep.unwrap_or("")),
                )
                .await?;
            return usize::try_from(int(OP, &reply)?).map_err(|_| corrupt(OP));
        }
        let entries = self.entries(OP, &index).await?;
        let targets: Vec<&Entry> = entries.iter().filter(|e| Some(&*e.sid) != keep).collect();
        // Past its absolute deadline no family lives or can be written;
        // every other id is revoked, a family being created included.
        let ending: Vec<&str> = targets
            .iter()
            .filter(|e| e.absolute_us > now_us)
            .map(|e| e.sid.as_str())
            .collect();
        let replies = self
            .each_family(OP, &SCRIPTS.session_end, &ending, (now_us, ttl_ms(ttl), 0))
            .await?;
        let mut revoked = 0;
        for reply in &replies {
            revoked += usize::from(int(OP, reply)? == 1);
        }
        let done: Vec<&str> = targets.iter().map(|e| e.sid.as_str()).collect();
        self.unindex(&index, &done).await?;
        Ok(revoked)
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
