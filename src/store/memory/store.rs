//! [`MemoryStore`]: the struct, what its tables hold, and the record helper
//! the concern impls share.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use moka::Expiry;
use moka::sync::Cache;

use super::capacity::FullAlarm;
use super::counters::Counters;
use super::rate_table::RateTable;
use super::records::{Deadline, Op as RecordOp, RecordTable};
use crate::store::{Challenge, Ping, StoreError, TenantRecord};
#[cfg(doc)]
use crate::store::{SessionStore, Store};

/// A pending challenge in the cache, with its attempt count.
#[derive(Clone)]
pub(super) struct Entry {
    pub(super) challenge: Challenge,
    pub(super) attempts: u32,
    pub(super) ttl: Duration,
}

/// A pending signup in its cache, until `until_us` on the caller's clock.
#[derive(Clone)]
pub(super) struct Pending {
    pub(super) data: Arc<[u8]>,
    pub(super) until_us: u64,
    pub(super) ttl: Duration,
}

/// A cache value with a TTL of its own.
pub(super) trait Ttl {
    fn ttl(&self) -> Duration;
}

impl Ttl for Entry {
    fn ttl(&self) -> Duration {
        self.ttl
    }
}

impl Ttl for Pending {
    fn ttl(&self) -> Duration {
        self.ttl
    }
}

/// Each cache entry lives for its own TTL (a challenge until it expires).
pub(super) struct EntryTtl;

impl<V: Ttl> Expiry<String, V> for EntryTtl {
    fn expire_after_create(&self, _: &String, entry: &V, _: Instant) -> Option<Duration> {
        Some(entry.ttl())
    }

    fn expire_after_update(
        &self,
        _: &String,
        entry: &V,
        _: Instant,
        _: Option<Duration>,
    ) -> Option<Duration> {
        Some(entry.ttl())
    }
}

/// Everything under one session family id or token `jti`: the family (if
/// live) and the revocation marker (if any), so that revoking a family —
/// which sets the marker and drops the family — is one step and needs no
/// room when the family exists.
#[derive(Clone, Default)]
pub(super) struct Session {
    pub(super) family: Option<(Arc<Family>, Deadline)>,
    /// Revoked until this deadline (`0`: not revoked).
    pub(super) revoked_until: Deadline,
}

impl Session {
    /// The record operation that stores this state as of `now`.
    pub(super) fn into_op(mut self, now: Deadline) -> RecordOp<Record> {
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

/// A session family; its times are µs on the caller's clock, and decide
/// (the record's deadline on the table's clock only reclaims it).
#[derive(Clone)]
pub(super) struct Family {
    pub(super) data: Arc<[u8]>,
    pub(super) current: [u8; 32],
    /// The token `current` replaced, and when (µs), for the grace window.
    pub(super) previous: Option<([u8; 32], u64)>,
    /// Older spent tokens (most recent last), bounded.
    pub(super) spent: Vec<[u8; 32]>,
    pub(super) created_us: u64,
    pub(super) used_us: u64,
    /// Live while the caller's now is before this.
    pub(super) until_us: u64,
    /// The absolute deadline, fixed at creation.
    pub(super) absolute_us: u64,
}

/// One session in a subject's index: what pruning needs without reading
/// the family.
#[derive(Clone)]
pub(super) struct IndexEntry {
    pub(super) sid: Box<str>,
    pub(super) created_us: u64,
    pub(super) absolute_us: u64,
}

/// An authoritative record: never evicted, only expired or deleted.
pub(super) enum Record {
    ApiKey(Arc<[u8]>),
    Session(Session),
    /// The index of one subject's sessions.
    Subject(Vec<IndexEntry>),
    Tenant(TenantRecord),
    /// Every counter group of one tenant.
    Counters(Counters),
}

/// The in-memory [`Store`]: bounded, per-entry TTLs, lock-free reads.
///
/// Four structures, each bounded, and bounded the way its data can bear
/// (clones share all four):
///
/// * **Authoritative records** — API keys, revocation and logout markers,
///   session families with their refresh state, each subject's index of
///   sessions, tenant records and each tenant's counters (one record per
///   tenant) — are never evicted. They
///   live in a table that holds at most [`MemoryStoreBuilder::max_records`]
///   (default 1 000 000); expired records are reclaimed, and when every
///   record is live a write that needs a *new* record fails with
///   [`StoreError::Full`] (the router answers `503 store_unavailable`) while
///   every record already stored stays readable. A revocation or logout that
///   returns `Ok` is visible to [`is_revoked`](SessionStore::is_revoked); one
///   that cannot be stored returns `Err` — it never silently does nothing.
/// * **Rate-limit cells** live in a sharded table of atomics holding about
///   [`MemoryStoreBuilder::max_rate_keys`] keys (default 1 000 000, split
///   evenly over shards). A live cell is never evicted for a new key: a full
///   shard drops its expired cells, and if all are live the new key's hit
///   fails with [`StoreError::Full`] — a flood of new keys cannot reset an
///   exhausted limit, a lockout or a cooldown.
/// * **Challenges** (short-lived and loss-tolerant: a lost one only means a
///   new code must be requested) live in a moka cache of at most
///   [`MemoryStoreBuilder::max_capacity`] entries, which evicts when full.
/// * **Pending signups** (as loss-tolerant: the signup is asked for again)
///   live in a second cache of the same bound. Not in the record table: a
///   flood of signups, which anyone can start, must not fill the room of
///   API keys, sessions and tenants.
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
///
/// [`MemoryStoreBuilder::max_capacity`]: crate::store::MemoryStoreBuilder::max_capacity
/// [`MemoryStoreBuilder::max_records`]: crate::store::MemoryStoreBuilder::max_records
/// [`MemoryStoreBuilder::max_rate_keys`]: crate::store::MemoryStoreBuilder::max_rate_keys
#[derive(Clone)]
pub struct MemoryStore {
    pub(super) challenges: Cache<String, Entry>,
    pub(super) pending: Cache<String, Pending>,
    pub(super) records: Arc<RecordTable<Record>>,
    pub(super) rates: Arc<RateTable>,
    pub(super) alarms: Arc<Alarms>,
}

pub(super) struct Alarms {
    pub(super) records: FullAlarm,
    pub(super) rates: FullAlarm,
}

impl fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryStore")
            .field("challenges", &self.challenges.entry_count())
            .field("pending", &self.pending.entry_count())
            .field("records", &self.records.len())
            .field("rate_keys", &self.rates.len())
            .finish()
    }
}

impl MemoryStore {
    /// Runs one atomic step on the record under `key`.
    pub(super) fn record<R>(
        &self,
        key: &str,
        f: impl FnMut(Option<&Record>, Deadline) -> (RecordOp<Record>, R),
    ) -> Result<R, StoreError> {
        self.records
            .compute(key, f)
            .map_err(|_| self.alarms.records.raise(self.records.capacity()))
    }
}

impl Ping for MemoryStore {
    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }
}
