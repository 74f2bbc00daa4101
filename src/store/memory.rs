//! `MemoryStore`: the embedded store for one process, on moka.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use moka::Expiry;
use moka::ops::compute::Op;
use moka::sync::Cache;

use super::rate_table::RateTable;
use super::{Attempt, Challenge, Rotation, Store, StoreError};
use crate::clock::unix_micros;
use crate::quota::{Quota, RateDecision};

/// Refresh tokens of one family remembered as spent, for reuse detection.
const SPENT_REMEMBERED: usize = 64;

#[derive(Clone)]
enum Value {
    Challenge { challenge: Challenge, attempts: u32 },
    Family(Arc<Family>),
    Revoked,
    ApiKey(Arc<[u8]>),
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

#[derive(Clone)]
struct Entry {
    value: Value,
    ttl: Option<Duration>,
}

struct EntryTtl;

impl Expiry<String, Entry> for EntryTtl {
    fn expire_after_create(&self, _: &String, entry: &Entry, _: Instant) -> Option<Duration> {
        entry.ttl
    }

    fn expire_after_update(
        &self,
        _: &String,
        entry: &Entry,
        _: Instant,
        _: Option<Duration>,
    ) -> Option<Duration> {
        entry.ttl
    }
}

/// The in-memory [`Store`]: bounded, per-entry TTLs, lock-free reads.
///
/// Challenges, sessions, revocations and API keys live in one moka cache
/// (bounded by [`MemoryStoreBuilder::max_capacity`]); rate-limit cells live in
/// a sharded table of atomics (bounded by
/// [`MemoryStoreBuilder::max_rate_keys`]). Clones share the same data.
///
/// State is per process: running several instances behind a load balancer
/// needs the Redis store, or every limit multiplies by the instance count.
///
/// ```
/// use tower_otp::store::MemoryStore;
///
/// let store = MemoryStore::builder().max_capacity(100_000).build();
/// # let _ = store;
/// ```
#[derive(Clone)]
pub struct MemoryStore {
    cache: Cache<String, Entry>,
    rates: Arc<RateTable>,
}

impl fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryStore")
            .field("entries", &self.cache.entry_count())
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
    max_rate_keys: usize,
}

impl MemoryStoreBuilder {
    /// Most challenges + sessions + revocations + API keys kept (default 1 000 000).
    pub fn max_capacity(mut self, n: u64) -> Self {
        self.max_capacity = n;
        self
    }

    /// Most rate-limit keys kept (default 1 000 000).
    pub fn max_rate_keys(mut self, n: usize) -> Self {
        self.max_rate_keys = n;
        self
    }

    /// Builds the store.
    pub fn build(self) -> MemoryStore {
        MemoryStore {
            cache: Cache::builder()
                .max_capacity(self.max_capacity)
                .expire_after(EntryTtl)
                .build(),
            rates: Arc::new(RateTable::new(self.max_rate_keys)),
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
            max_rate_keys: 1_000_000,
        }
    }
}

fn challenge_key(key: &str) -> String {
    format!("c:{key}")
}

fn family_key(sid: &str) -> String {
    format!("s:{sid}")
}

fn revoked_key(id: &str) -> String {
    format!("x:{id}")
}

fn api_key_key(id: &str) -> String {
    format!("k:{id}")
}

fn remaining(expires_at_us: u64, now_us: u64) -> Duration {
    Duration::from_micros(expires_at_us.saturating_sub(now_us))
}

impl Store for MemoryStore {
    async fn hit(
        &self,
        key: &str,
        quota: &Quota,
        now: SystemTime,
    ) -> Result<RateDecision, StoreError> {
        Ok(self.rates.hit(key, quota, unix_micros(now)))
    }

    /// Always `Some`: the memory store never waits.
    fn hit_now(&self, key: &str, quota: &Quota, now_us: u64) -> Option<RateDecision> {
        Some(self.rates.hit(key, quota, now_us))
    }

    async fn put_challenge(
        &self,
        key: &str,
        challenge: &Challenge,
        now: SystemTime,
    ) -> Result<(), StoreError> {
        let ttl = remaining(challenge.expires_at_us, unix_micros(now));
        let entry = Entry {
            value: Value::Challenge {
                challenge: challenge.clone(),
                attempts: 0,
            },
            ttl: Some(ttl),
        };
        self.cache.insert(challenge_key(key), entry);
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
        self.cache
            .entry(challenge_key(key))
            .and_compute_with(|current| {
                let Some(entry) = current else { return Op::Nop };
                let mut entry = entry.into_value();
                let Value::Challenge {
                    challenge,
                    attempts,
                } = &mut entry.value
                else {
                    return Op::Nop;
                };
                if challenge.expires_at_us <= now_us || *attempts >= max_attempts {
                    return Op::Remove;
                }
                *attempts += 1;
                let left = max_attempts - *attempts;
                out = Attempt::Open {
                    challenge: challenge.clone(),
                    remaining: left,
                };
                if left == 0 {
                    Op::Remove
                } else {
                    entry.ttl = Some(remaining(challenge.expires_at_us, now_us));
                    Op::Put(entry)
                }
            });
        Ok(out)
    }

    async fn remove_challenge(&self, key: &str, id: &[u8; 16]) -> Result<bool, StoreError> {
        let mut removed = false;
        self.cache
            .entry(challenge_key(key))
            .and_compute_with(|current| match current.map(|e| e.into_value().value) {
                Some(Value::Challenge { challenge, .. }) if &challenge.id == id => {
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
        let family = Family {
            data: data.into(),
            current: *refresh_hash,
            previous: None,
            spent: Vec::new(),
        };
        self.cache.insert(
            family_key(sid),
            Entry {
                value: Value::Family(Arc::new(family)),
                ttl: Some(ttl),
            },
        );
        Ok(())
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
        let mut out = Rotation::Invalid;
        self.cache
            .entry(family_key(sid))
            .and_compute_with(|current| {
                let Some(entry) = current else { return Op::Nop };
                let Value::Family(family) = entry.into_value().value else {
                    return Op::Nop;
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
                    out = Rotation::Rotated(family.data.to_vec());
                    return Op::Put(Entry {
                        value: Value::Family(Arc::new(next)),
                        ttl: Some(ttl),
                    });
                }
                match family.previous {
                    Some((prev, at)) if &prev == presented => {
                        if now_us.saturating_sub(at) <= grace_us && &family.current == successor {
                            out = Rotation::Grace(family.data.to_vec());
                            Op::Nop
                        } else {
                            out = Rotation::Reused;
                            Op::Remove
                        }
                    }
                    _ if family.spent.contains(presented) => {
                        out = Rotation::Reused;
                        Op::Remove
                    }
                    _ => Op::Nop,
                }
            });
        if out == Rotation::Reused {
            self.revoke(sid, ttl).await?;
        }
        Ok(out)
    }

    async fn revoke(&self, id: &str, ttl: Duration) -> Result<(), StoreError> {
        self.cache.insert(
            revoked_key(id),
            Entry {
                value: Value::Revoked,
                ttl: Some(ttl),
            },
        );
        self.cache.invalidate(&family_key(id));
        Ok(())
    }

    async fn is_revoked(&self, id: &str) -> Result<bool, StoreError> {
        Ok(self.cache.contains_key(&revoked_key(id)))
    }

    async fn put_api_key(
        &self,
        id: &str,
        record: &[u8],
        ttl: Option<Duration>,
    ) -> Result<(), StoreError> {
        self.cache.insert(
            api_key_key(id),
            Entry {
                value: Value::ApiKey(record.into()),
                ttl,
            },
        );
        Ok(())
    }

    async fn get_api_key(&self, id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(match self.cache.get(&api_key_key(id)).map(|e| e.value) {
            Some(Value::ApiKey(bytes)) => Some(bytes.to_vec()),
            _ => None,
        })
    }

    async fn delete_api_key(&self, id: &str) -> Result<bool, StoreError> {
        Ok(self.cache.remove(&api_key_key(id)).is_some())
    }

    async fn list_api_keys(&self) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let mut out: Vec<(String, Vec<u8>)> = self
            .cache
            .iter()
            .filter_map(|(k, e)| match (k.strip_prefix("k:"), e.value) {
                (Some(id), Value::ApiKey(bytes)) => Some((id.to_owned(), bytes.to_vec())),
                _ => None,
            })
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }
}
