//! The in-process cache of verified keys, and the last-used throttle.
//!
//! The cache maps SHA-256(presented key) to the verified identity: the
//! plaintext key is never kept. An entry is fresh until the earlier of
//! `now + ttl` (by the injected clock, so tests drive it) and the key's own
//! deadline (expiry, or the end of a rotation's grace period). It is a
//! direct-mapped [`SlotCache`]: a hit is one keyed hash, one read lock and a
//! constant-time comparison of the digest.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::slot_cache::SlotCache;

use super::identity::ApiKeyIdentity;

/// A verified key, as cached.
#[derive(Clone, Debug)]
pub(crate) struct Cached {
    pub(crate) identity: ApiKeyIdentity,
    pub(crate) fresh_until_us: u64,
    pub(crate) expires_at_us: Option<u64>,
    /// The key's last-used slot (see [`Usage`]), so a hit needs no lock.
    pub(crate) used: UsedSlot,
}

/// Verified identities by hash of the presented key.
pub(crate) struct KeyCache {
    ttl_us: u64,
    map: Option<SlotCache<Cached>>,
}

impl std::fmt::Debug for KeyCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyCache")
            .field("ttl_us", &self.ttl_us)
            .field("slots", &self.map.as_ref().map(SlotCache::capacity))
            .finish()
    }
}

impl KeyCache {
    /// A cache keeping entries for `ttl` (zero disables it), in `capacity`
    /// slots (rounded up to a power of two; zero disables it).
    pub(crate) fn new(ttl: Duration, capacity: u64) -> Self {
        let ttl_us = u64::try_from(ttl.as_micros()).unwrap_or(u64::MAX);
        let slots = usize::try_from(capacity).unwrap_or(usize::MAX).min(1 << 24);
        Self {
            ttl_us,
            map: (ttl_us > 0 && slots > 0).then(|| SlotCache::new(slots)),
        }
    }

    /// Whether anything is ever cached.
    pub(crate) fn enabled(&self) -> bool {
        self.map.is_some()
    }

    /// The cache key of a presented key.
    pub(crate) fn key(presented: &str) -> [u8; 32] {
        Sha256::digest(presented.as_bytes()).into()
    }

    /// A fresh entry for `key`, if any.
    pub(crate) fn get(&self, key: &[u8; 32], now_us: u64) -> Option<Cached> {
        self.map
            .as_ref()?
            .get(key)
            .filter(|c| now_us < c.fresh_until_us)
    }

    /// Caches a verified identity valid until `valid_until_us` (if bounded).
    pub(crate) fn insert(
        &self,
        key: [u8; 32],
        identity: ApiKeyIdentity,
        valid_until_us: Option<u64>,
        expires_at_us: Option<u64>,
        used: UsedSlot,
        now_us: u64,
    ) {
        if let Some(map) = &self.map {
            let fresh = now_us.saturating_add(self.ttl_us);
            let fresh_until_us = valid_until_us.map_or(fresh, |v| v.min(fresh));
            map.insert(
                &key,
                Cached {
                    identity,
                    fresh_until_us,
                    expires_at_us,
                    used,
                },
            );
        }
    }

    /// Drops the entry for `key`, if any.
    pub(crate) fn remove(&self, key: &[u8; 32]) {
        if let Some(map) = &self.map {
            map.remove(key);
        }
    }

    /// Drops every entry of key `key_id` (all its secrets) on this instance.
    pub(crate) fn invalidate(&self, key_id: &str) {
        if let Some(map) = &self.map {
            map.retain(|c| c.identity.key_id() != key_id);
        }
    }
}

/// Most key ids the last-used throttle remembers before pruning.
const USAGE_MAX: usize = 100_000;

/// When a key's last-used time was last written from this instance (µs).
pub(crate) type UsedSlot = Arc<AtomicU64>;

/// Decides when a key's last-used time is written: at most once per key per
/// `interval` on each instance. Each key has a slot (an atomic), shared with
/// its cache entries, so a cache hit decides without taking a lock.
#[derive(Debug)]
pub(crate) struct Usage {
    interval_us: u64,
    slots: Mutex<HashMap<Box<str>, UsedSlot>>,
}

impl Usage {
    pub(crate) fn new(interval: Duration) -> Self {
        Self {
            interval_us: u64::try_from(interval.as_micros()).unwrap_or(u64::MAX),
            slots: Mutex::new(HashMap::new()),
        }
    }

    /// Key `id`'s slot (made on first use).
    pub(crate) fn slot(&self, id: &str) -> UsedSlot {
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(slot) = slots.get(id) {
            return Arc::clone(slot);
        }
        if slots.len() >= USAGE_MAX {
            // Slots no cache entry holds and not written lately can go; at
            // worst a forgotten key is written once more than needed.
            let interval = self.interval_us;
            let now = slots
                .values()
                .map(|s| s.load(Ordering::Relaxed))
                .max()
                .unwrap_or(0);
            slots.retain(|_, s| {
                Arc::strong_count(s) > 1 || now.saturating_sub(s.load(Ordering::Relaxed)) < interval
            });
            if slots.len() >= USAGE_MAX {
                slots.clear();
            }
        }
        let slot = UsedSlot::default();
        slots.insert(id.into(), Arc::clone(&slot));
        slot
    }

    /// Whether the key of `slot`, used at `now_us`, is due a write; if so,
    /// counts the write as done (one caller wins; a failed write is not
    /// retried before the next interval).
    pub(crate) fn due(&self, slot: &AtomicU64, now_us: u64) -> bool {
        let at = slot.load(Ordering::Relaxed);
        if at != 0 && now_us >= at && now_us - at < self.interval_us {
            return false;
        }
        slot.compare_exchange(at, now_us, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
    }

    /// Forgets key `id` (revoked).
    pub(crate) fn forget(&self, id: &str) {
        self.slots
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(id);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn usage_is_due_once_per_interval() {
        let u = Usage::new(Duration::from_secs(60));
        let t0 = 1_000_000;
        let a = u.slot("a");
        assert!(Arc::ptr_eq(&a, &u.slot("a")));
        assert!(u.due(&a, t0));
        assert!(!u.due(&a, t0 + 59_999_999));
        assert!(u.due(&u.slot("b"), t0 + 1));
        assert!(u.due(&a, t0 + 60_000_000));
        u.forget("a");
        let fresh = u.slot("a");
        assert!(!Arc::ptr_eq(&a, &fresh));
        assert!(u.due(&fresh, t0 + 60_000_001));
    }

    #[test]
    fn cache_entries_expire_by_the_clock_and_by_deadline() {
        let c = KeyCache::new(Duration::from_secs(5), 100);
        let who = ApiKeyIdentity::new("id1", "t", ["s"], "n");
        let k = KeyCache::key("tok_x");
        let slot = UsedSlot::default();
        c.insert(k, who.clone(), None, None, slot.clone(), 0);
        assert_eq!(c.get(&k, 4_999_999).map(|c| c.identity), Some(who.clone()));
        assert!(c.get(&k, 5_000_000).is_none());

        c.insert(k, who.clone(), Some(1_000), None, slot.clone(), 0);
        assert!(c.get(&k, 999).is_some());
        assert!(c.get(&k, 1_000).is_none());

        c.insert(k, who, None, None, slot, 0);
        c.invalidate("other");
        assert!(c.get(&k, 1).is_some());
        c.invalidate("id1");
        assert!(c.get(&k, 1).is_none());
    }

    #[test]
    fn zero_ttl_disables_the_cache() {
        let c = KeyCache::new(Duration::ZERO, 100);
        assert!(!c.enabled());
        let k = KeyCache::key("tok_x");
        let who = ApiKeyIdentity::new("i", "t", ["s"], "n");
        c.insert(k, who, None, None, UsedSlot::default(), 0);
        assert!(c.get(&k, 0).is_none());
    }
}
