//! `MemoryStore`: the embedded store for one process, on moka.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use moka::Expiry;
use moka::ops::compute::Op;
use moka::sync::Cache;

use super::capacity::FullAlarm;
use super::rate_table::RateTable;
use super::records::{Deadline, Op as RecordOp, RecordTable};
use super::{Attempt, Challenge, Limit, Rotation, Store, StoreError};
use crate::clock::unix_micros;
use crate::quota::{Quota, RateDecision};

/// Refresh tokens of one family remembered as spent, for reuse detection.
const SPENT_REMEMBERED: usize = 64;

/// A pending challenge in the cache, with its attempt count.
#[derive(Clone)]
struct Entry {
    challenge: Challenge,
    attempts: u32,
    ttl: Duration,
}

struct EntryTtl;

impl Expiry<String, Entry> for EntryTtl {
    fn expire_after_create(&self, _: &String, entry: &Entry, _: Instant) -> Option<Duration> {
        Some(entry.ttl)
    }

    fn expire_after_update(
        &self,
        _: &String,
        entry: &Entry,
        _: Instant,
        _: Option<Duration>,
    ) -> Option<Duration> {
        Some(entry.ttl)
    }
}

/// An authoritative record: never evicted, only expired or deleted.
enum Record {
    ApiKey(Arc<[u8]>),
    Session(Session),
}

/// Everything under one session family id or token `jti`: the family (if
/// live) and the revocation marker (if any), so that revoking a family —
/// which sets the marker and drops the family — is one step and needs no
/// room when the family exists.
#[derive(Clone, Default)]
struct Session {
    family: Option<(Arc<Family>, Deadline)>,
    /// Revoked until this deadline (`0`: not revoked).
    revoked_until: Deadline,
}

impl Session {
    /// The record operation that stores this state as of `now`.
    fn into_op(mut self, now: Deadline) -> RecordOp<Record> {
        if self.family.as_ref().is_some_and(|(_, until)| *until <= now) {
            self.family = None;
        }
        let until = self
            .family
            .as_ref()
            .map_or(0, |(_, until)| *until)
            .max(self.revoked_until);
        if until <= now {
            RecordOp::Remove
        } else {
            RecordOp::Put(Record::Session(self), until)
        }
    }
}

#[derive(Clone)]
struct Family {
    data: Arc<[u8]>,
    current: [u8; 32],
    /// The token `current` replaced, and when (µs), for the grace window.
    previous: Option<([u8; 32], u64)>,
    /// Older spent tokens (most recent last), bounded.
    spent: Vec<[u8; 32]>,
}

/// The in-memory [`Store`]: bounded, per-entry TTLs, lock-free reads.
///
/// Three structures, each bounded, and bounded the way its data can bear
/// (clones share all three):
///
/// * **Authoritative records** — API keys, revocation and logout markers,
///   session families with their refresh state — are never evicted. They
///   live in a table that holds at most [`MemoryStoreBuilder::max_records`]
///   (default 1 000 000); expired records are reclaimed, and when every
///   record is live a write that needs a *new* record fails with
///   [`StoreError::Full`] (the router answers `503 store_unavailable`) while
///   every record already stored stays readable. A revocation or logout that
///   returns `Ok` is visible to [`is_revoked`](Store::is_revoked); one that
///   cannot be stored returns `Err` — it never silently does nothing.
/// * **Rate-limit cells** live in a sharded table of atomics holding about
///   [`MemoryStoreBuilder::max_rate_keys`] keys (default 1 000 000, split
///   evenly over shards). A live cell is never evicted for a new key: a full
///   shard drops its expired cells, and if all are live the new key's hit
///   fails with [`StoreError::Full`] — a flood of new keys cannot reset an
///   exhausted limit, a lockout or a cooldown.
/// * **Challenges** (short-lived and loss-tolerant: a lost one only means a
///   new code must be requested) live in a moka cache of at most
///   [`MemoryStoreBuilder::max_capacity`] entries, which evicts when full.
///
/// Every refusal for capacity counts in the metric
/// `tower_otp_store_full_total{table="records"|"rate table"}` and logs a
/// warning (at most one every 10 s per table).
///
/// State is per process: running several instances behind a load balancer
/// needs the Redis store, or every limit multiplies by the instance count.
///
/// ```
/// use tower_otp::store::MemoryStore;
///
/// let store = MemoryStore::builder()
///     .max_capacity(100_000)
///     .max_records(100_000)
///     .max_rate_keys(100_000)
///     .build();
/// # let _ = store;
/// ```
#[derive(Clone)]
pub struct MemoryStore {
    challenges: Cache<String, Entry>,
    records: Arc<RecordTable<Record>>,
    rates: Arc<RateTable>,
    alarms: Arc<Alarms>,
}

struct Alarms {
    records: FullAlarm,
    rates: FullAlarm,
}

impl fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryStore")
            .field("challenges", &self.challenges.entry_count())
            .field("records", &self.records.len())
            .field("rate_keys", &self.rates.len())
            .finish()
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::builder().build()
    }
}

/// Builder for [`MemoryStore`].
#[derive(Clone, Debug)]
#[must_use]
pub struct MemoryStoreBuilder {
    max_capacity: u64,
    max_records: usize,
    max_rate_keys: usize,
}

impl MemoryStoreBuilder {
    /// Most pending challenges kept (default 1 000 000); past it the cache
    /// evicts (a lost challenge only means requesting a new code).
    pub fn max_capacity(mut self, n: u64) -> Self {
        self.max_capacity = n;
        self
    }

    /// Most authoritative records kept — API keys, revocation markers and
    /// session families together (default 1 000 000). Never evicted: when
    /// all are live, writing a new one fails with [`StoreError::Full`].
    pub fn max_records(mut self, n: usize) -> Self {
        self.max_records = n;
        self
    }

    /// Most rate-limit keys kept (default 1 000 000; at least 16 per shard).
    /// Never evicted while live: a new key past the bound fails with
    /// [`StoreError::Full`].
    pub fn max_rate_keys(mut self, n: usize) -> Self {
        self.max_rate_keys = n;
        self
    }

    /// Builds the store.
    pub fn build(self) -> MemoryStore {
        MemoryStore {
            challenges: Cache::builder()
                .max_capacity(self.max_capacity)
                .expire_after(EntryTtl)
                .build(),
            records: Arc::new(RecordTable::new(self.max_records)),
            rates: Arc::new(RateTable::new(self.max_rate_keys)),
            alarms: Arc::new(Alarms {
                records: FullAlarm::new("records"),
                rates: FullAlarm::new("rate table"),
            }),
        }
    }
}

impl MemoryStore {
    /// A store with default bounds.
    pub fn new() -> Self {
        Self::default()
    }

    /// A builder to set bounds.
    pub fn builder() -> MemoryStoreBuilder {
        MemoryStoreBuilder {
            max_capacity: 1_000_000,
            max_records: 1_000_000,
            max_rate_keys: 1_000_000,
        }
    }

    fn rates_full(&self) -> StoreError {
        self.alarms.rates.raise(self.rates.capacity())
    }

    /// Runs one atomic step on the record under `key`.
    fn record<R>(
        &self,
        key: &str,
        f: impl FnMut(Option<&Record>, Deadline) -> (RecordOp<Record>, R),
    ) -> Result<R, StoreError> {
        self.records
            .compute(key, f)
            .map_err(|_| self.alarms.records.raise(self.records.capacity()))
    }

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
}

fn challenge_key(key: &str) -> String {
    key.to_owned()
}

fn session_key(id: &str) -> String {
    format!("s:{id}")
}

fn api_key_key(id: &str) -> String {
    format!("k:{id}")
}

fn remaining(expires_at_us: u64, now_us: u64) -> Duration {
    Duration::from_micros(expires_at_us.saturating_sub(now_us))
}

/// A duration on the record table's clock.
fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

impl Store for MemoryStore {
    async fn hit(
        &self,
        key: &str,
        quota: &Quota,
        now: SystemTime,
    ) -> Result<RateDecision, StoreError> {
        self.rates
            .hit(key, quota, unix_micros(now))
            .map_err(|_| self.rates_full())
    }

    /// `Some` unless the rate table is full (then [`hit`](Store::hit) says so).
    fn hit_now(&self, key: &str, quota: &Quota, now_us: u64) -> Option<RateDecision> {
        self.rates.hit(key, quota, now_us).ok()
    }

    async fn hit_all(
        &self,
        limits: &[Limit<'_>],
        now: SystemTime,
    ) -> Result<Vec<RateDecision>, StoreError> {
        self.rates
            .hit_all(limits, unix_micros(now))
            .map_err(|_| self.rates_full())
    }

    /// `Some` unless the rate table is full (then [`hit_all`](Store::hit_all) says so).
    fn hit_all_now(&self, limits: &[Limit<'_>], now_us: u64) -> Option<Vec<RateDecision>> {
        self.rates.hit_all(limits, now_us).ok()
    }

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

    async fn create_session(
        &self,
        sid: &str,
        refresh_hash: &[u8; 32],
        data: &[u8],
        ttl: Duration,
        _now: SystemTime,
    ) -> Result<(), StoreError> {
        let family = Arc::new(Family {
            data: data.into(),
            current: *refresh_hash,
            previous: None,
            spent: Vec::new(),
        });
        self.session(sid, |mut session, now| {
            session.family = Some((family.clone(), now.saturating_add(nanos(ttl))));
            (Some(session), ())
        })
    }

    async fn rotate_refresh(
        &self,
        sid: &str,
        presented: &[u8; 32],
        successor: &[u8; 32],
        grace: Duration,
        ttl: Duration,
        now: SystemTime,
    ) -> Result<Rotation, StoreError> {
        let now_us = unix_micros(now);
        let grace_us = u64::try_from(grace.as_micros()).unwrap_or(u64::MAX);
        self.session(sid, |mut session, now| {
            let live = session.family.clone().filter(|(_, until)| *until > now);
            let Some((family, _)) = live else {
                return (None, Rotation::Invalid);
            };
            if &family.current == presented {
                let mut next = (*family).clone();
                if let Some((old, _)) = next.previous.take() {
                    next.spent.push(old);
                    if next.spent.len() > SPENT_REMEMBERED {
                        next.spent.remove(0);
                    }
                }
                next.previous = Some((*presented, now_us));
                next.current = *successor;
                session.family = Some((Arc::new(next), now.saturating_add(nanos(ttl))));
                return (Some(session), Rotation::Rotated(family.data.to_vec()));
            }
            let reused = match family.previous {
                Some((prev, at)) if &prev == presented => {
                    if now_us.saturating_sub(at) <= grace_us && &family.current == successor {
                        return (None, Rotation::Grace(family.data.to_vec()));
                    }
                    true
                }
                _ => family.spent.contains(presented),
            };
            if !reused {
                return (None, Rotation::Invalid);
            }
            // Reuse: the family dies and its id is revoked, in one step.
            session.family = None;
            session.revoked_until = now.saturating_add(nanos(ttl));
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
        Ok(self
            .records
            .get(&session_key(id), |record, now| match record {
                Record::Session(s) => s.revoked_until > now,
                Record::ApiKey(_) => false,
            })
            .unwrap_or(false))
    }

    async fn put_api_key(
        &self,
        id: &str,
        record: &[u8],
        ttl: Option<Duration>,
    ) -> Result<(), StoreError> {
        let bytes: Arc<[u8]> = record.into();
        self.record(&api_key_key(id), |_, now| {
            let until = RecordTable::<Record>::deadline(now, ttl);
            (RecordOp::Put(Record::ApiKey(bytes.clone()), until), ())
        })
    }

    async fn get_api_key(&self, id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .records
            .get(&api_key_key(id), |record, _| match record {
                Record::ApiKey(bytes) => Some(bytes.to_vec()),
                Record::Session(_) => None,
            })
            .flatten())
    }

    async fn delete_api_key(&self, id: &str) -> Result<bool, StoreError> {
        self.record(&api_key_key(id), |current, _| {
            let existed = matches!(current, Some(Record::ApiKey(_)));
            (RecordOp::Remove, existed)
        })
    }

    async fn list_api_keys(&self) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let mut out = Vec::new();
        self.records.for_each(|key, record| {
            if let (Some(id), Record::ApiKey(bytes)) = (key.strip_prefix("k:"), record) {
                out.push((id.to_owned(), bytes.to_vec()));
            }
        });
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }
}
