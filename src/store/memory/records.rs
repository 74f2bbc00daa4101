//! The memory store's authoritative records: a sharded map that never evicts.
//!
//! API keys, revocation markers, session families, tenants and their
//! counters must not disappear because the process met many of them: an
//! evicted revocation is a revoked token that works again, an evicted API
//! key or tenant a customer locked out, an evicted counter a reset quota. So they
//! do not live in a cache. The table holds at most `capacity` records;
//! expired ones are reclaimed (lazily: a write that finds the table full
//! first sweeps out every expired record), and when every record is live a
//! write of a *new* record fails with [`StoreError::Full`](crate::store::StoreError)
//! while every record already there stays readable. Replacing or removing a
//! record never needs room.
//!
//! Expiry runs on the monotonic clock of the process ([`Instant`]), like the
//! TTLs of the cache it replaces: the record operations of
//! [`SessionStore`](crate::store::SessionStore) and
//! [`ApiKeyStore`](crate::store::ApiKeyStore) are not given the caller's time.
//! [`TenantStore`](crate::store::TenantStore) counters are, and decide their
//! expiry by it; their record's deadline on this clock is only the backstop
//! that reclaims the room.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, RwLock, RwLockWriteGuard};
use std::time::{Duration, Instant};

/// Nanoseconds since the table's creation; `NEVER` = no expiry.
pub(crate) type Deadline = u64;
pub(crate) const NEVER: Deadline = u64::MAX;

const SHARDS: usize = 16;

type Shard<V> = RwLock<HashMap<String, Slot<V>>>;

struct Slot<V> {
    value: V,
    expires: Deadline,
}

/// What a [`RecordTable::compute`] step does with the record.
pub(crate) enum Op<V> {
    /// Leave it as it is.
    Keep,
    /// Store `value` until `expires` (a deadline at or before now removes it).
    Put(V, Deadline),
    /// Delete it.
    Remove,
}

/// No room for a new record: every record is live.
#[derive(Debug)]
pub(crate) struct Full;

pub(crate) struct RecordTable<V> {
    shards: Box<[Shard<V>]>,
    hasher: RandomState,
    base: Instant,
    /// Records held, live or expired.
    len: AtomicUsize,
    capacity: usize,
    /// A lower bound of every record's deadline: a full table whose earliest
    /// deadline lies ahead has nothing to sweep, and refuses in O(1).
    earliest: AtomicU64,
    /// One sweep at a time.
    sweeping: Mutex<()>,
}

fn write<T>(lock: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(|e| e.into_inner())
}

impl<V> RecordTable<V> {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            shards: (0..SHARDS).map(|_| RwLock::new(HashMap::new())).collect(),
            hasher: RandomState::new(),
            base: Instant::now(),
            len: AtomicUsize::new(0),
            capacity,
            earliest: AtomicU64::new(NEVER),
            sweeping: Mutex::new(()),
        }
    }

    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    /// Records held, live or not yet reclaimed.
    pub(crate) fn len(&self) -> usize {
        self.len.load(Ordering::Relaxed)
    }

    /// Now, on the table's clock.
    pub(crate) fn now(&self) -> Deadline {
        u64::try_from(self.base.elapsed().as_nanos()).unwrap_or(NEVER - 1)
    }

    /// The deadline `ttl` after `now` (`None` = never).
    pub(crate) fn deadline(now: Deadline, ttl: Option<Duration>) -> Deadline {
        match ttl {
            None => NEVER,
            Some(ttl) => now
                .saturating_add(u64::try_from(ttl.as_nanos()).unwrap_or(NEVER))
                .min(NEVER - 1),
        }
    }

    fn shard(&self, key: &str) -> &Shard<V> {
        &self.shards[(self.hasher.hash_one(key) as usize) % SHARDS]
    }

    /// Reads the live record under `key`.
    pub(crate) fn get<R>(&self, key: &str, f: impl FnOnce(&V, Deadline) -> R) -> Option<R> {
        let now = self.now();
        let shard = self.shard(key).read().unwrap_or_else(|e| e.into_inner());
        shard
            .get(key)
            .filter(|slot| slot.expires > now)
            .map(|slot| f(&slot.value, now))
    }

    /// Every live record, as `f(key, value)`.
    pub(crate) fn for_each(&self, mut f: impl FnMut(&str, &V)) {
        let now = self.now();
        for shard in &self.shards {
            let shard = shard.read().unwrap_or_else(|e| e.into_inner());
            for (key, slot) in shard.iter().filter(|(_, s)| s.expires > now) {
                f(key, &slot.value);
            }
        }
    }

    /// Atomically replaces the record under `key` by what `f` decides, given
    /// the live record (or `None`) and the time now. [`Full`] when `f` puts a
    /// new record and there is no room even after reclaiming expired ones;
    /// then nothing changed. `f` may run twice (again after a sweep): it
    /// must only set its outputs, never accumulate.
    pub(crate) fn compute<R>(
        &self,
        key: &str,
        mut f: impl FnMut(Option<&V>, Deadline) -> (Op<V>, R),
    ) -> Result<R, Full> {
        for round in 0..2 {
            let now = self.now();
            let mut shard = write(self.shard(key));
            let held = shard.get(key);
            let present = held.is_some();
            let live = held.filter(|s| s.expires > now).map(|s| &s.value);
            let (op, out) = f(live, now);
            let put = match op {
                Op::Keep => return Ok(out),
                Op::Put(value, expires) if expires > now => (value, expires),
                Op::Put(..) | Op::Remove => {
                    if shard.remove(key).is_some() {
                        self.len.fetch_sub(1, Ordering::Relaxed);
                    }
                    return Ok(out);
                }
            };
            if present || self.reserve() {
                self.earliest.fetch_min(put.1, Ordering::Relaxed);
                let slot = Slot {
                    value: put.0,
                    expires: put.1,
                };
                shard.insert(key.to_owned(), slot);
                return Ok(out);
            }
            drop(shard);
            if round == 0 {
                self.sweep();
            }
        }
        Err(Full)
    }

    /// Takes one place under the capacity, if there is one.
    fn reserve(&self) -> bool {
        self.len
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                (n < self.capacity).then_some(n + 1)
            })
            .is_ok()
    }

    /// Reclaims every expired record (at once, if none can have expired).
    fn sweep(&self) {
        let _one = self.sweeping.lock().unwrap_or_else(|e| e.into_inner());
        let now = self.now();
        if self.earliest.load(Ordering::Relaxed) > now {
            return;
        }
        // Writers lower `earliest` as they insert, so start from "never" and
        // lower it with every record kept: the bound stays a lower bound.
        self.earliest.store(NEVER, Ordering::Relaxed);
        for shard in &self.shards {
            let mut shard = write(shard);
            let before = shard.len();
            let mut earliest = NEVER;
            shard.retain(|_, slot| {
                let keep = slot.expires > now;
                if keep {
                    earliest = earliest.min(slot.expires);
                }
                keep
            });
            self.earliest.fetch_min(earliest, Ordering::Relaxed);
            self.len.fetch_sub(before - shard.len(), Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(t: &RecordTable<u32>, key: &str, v: u32, ttl: Option<Duration>) -> Result<(), Full> {
        t.compute(key, |_, now| {
            (Op::Put(v, RecordTable::<u32>::deadline(now, ttl)), ())
        })
    }

    #[test]
    fn refuses_new_records_when_full_and_keeps_the_old() {
        let t = RecordTable::new(20);
        for i in 0..20 {
            put(&t, &format!("k{i}"), i, None).unwrap();
        }
        assert!(put(&t, "one-too-many", 99, None).is_err());
        for i in 0..20 {
            assert_eq!(t.get(&format!("k{i}"), |v, _| *v), Some(i), "k{i} lost");
        }
        assert_eq!(t.get("one-too-many", |v, _| *v), None);
        // Replacing and removing need no room.
        put(&t, "k3", 33, None).unwrap();
        assert_eq!(t.get("k3", |v, _| *v), Some(33));
        t.compute("k4", |_, _| (Op::Remove, ())).unwrap();
        put(&t, "now-fits", 1, None).unwrap();
        assert_eq!(t.len(), 20);
    }

    #[test]
    fn expired_records_are_reclaimed_when_full() {
        let t = RecordTable::new(4);
        for i in 0..4 {
            put(&t, &format!("old{i}"), i, Some(Duration::from_nanos(1))).unwrap();
        }
        // Past 1 ns on a monotonic clock once any time has passed.
        std::thread::sleep(Duration::from_millis(1));
        assert_eq!(t.get("old0", |v, _| *v), None, "expired");
        for i in 0..4 {
            put(&t, &format!("new{i}"), i, None).unwrap();
        }
        assert_eq!(t.len(), 4);
        assert!(put(&t, "new4", 4, None).is_err());
    }

    #[test]
    fn a_zero_ttl_put_removes() {
        let t = RecordTable::new(2);
        put(&t, "a", 1, None).unwrap();
        put(&t, "a", 2, Some(Duration::ZERO)).unwrap();
        assert_eq!(t.get("a", |v, _| *v), None);
        assert_eq!(t.len(), 0);
    }
}
