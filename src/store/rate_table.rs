//! The memory store's rate-limit table: a sharded map of atomic GCRA cells.
//!
//! moka's atomic compute costs ~2 µs, an order of magnitude more than a
//! rate-limit decision should (DESIGN.md, performance notes). So limits live
//! in their own structure: the key is hashed once with a randomly keyed
//! SipHash, the hash picks a shard and is the map key (no second hashing),
//! and the cell is updated with a compare-and-swap under the shard's *read*
//! lock. Only a key's first hit takes the write lock.
//!
//! Memory is bounded: a full shard first drops cells whose TAT has passed
//! (such a cell is indistinguishable from an absent one, so dropping it loses
//! nothing), and only if every cell is still live evicts the eighth with the
//! earliest TAT — those closest to being full again.

use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, Hasher, RandomState};
use std::sync::RwLock;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::quota::{Quota, RateDecision, gcra};

/// Passes a precomputed 64-bit hash through unchanged.
#[derive(Default)]
struct PassThrough(u64);

impl Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u64` is used; fold anything else in for completeness.
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

struct Cell {
    key: Box<str>,
    /// Theoretical arrival time in µs since the epoch; 0 = never hit.
    tat: AtomicU64,
}

type Shard = HashMap<u64, Cell, BuildHasherDefault<PassThrough>>;

pub(crate) struct RateTable {
    shards: Box<[RwLock<Shard>]>,
    hasher: RandomState,
    shard_mask: u64,
    per_shard: usize,
}

impl RateTable {
    pub(crate) fn new(max_keys: usize) -> Self {
        let shards = (std::thread::available_parallelism().map_or(4, |n| n.get()) * 8)
            .next_power_of_two()
            .clamp(8, 256);
        let per_shard = (max_keys / shards).max(16);
        Self {
            shards: (0..shards).map(|_| RwLock::new(Shard::default())).collect(),
            hasher: RandomState::new(),
            shard_mask: (shards - 1) as u64,
            per_shard,
        }
    }

    /// Keyed SipHash of the key bytes (one `write`, no `str` terminator: the
    /// hash only ever sees whole keys).
    fn hash(&self, key: &str) -> u64 {
        let mut h = self.hasher.build_hasher();
        h.write(key.as_bytes());
        h.finish()
    }

    fn shard(&self, hash: u64) -> &RwLock<Shard> {
        // Middle bits: hashbrown itself uses the lowest and the top 7 bits.
        &self.shards[((hash >> 32) & self.shard_mask) as usize]
    }

    /// Finds `key`'s slot, probing past (astronomically rare) 64-bit collisions.
    fn find<'a>(shard: &'a Shard, hash: u64, key: &str) -> Result<&'a Cell, u64> {
        let mut h = hash;
        loop {
            match shard.get(&h) {
                Some(cell) if &*cell.key == key => return Ok(cell),
                Some(_) => h = h.wrapping_add(1),
                None => return Err(h),
            }
        }
    }

    pub(crate) fn hit(&self, key: &str, quota: &Quota, now_us: u64) -> RateDecision {
        let hash = self.hash(key);
        let lock = self.shard(hash);
        {
            let shard = lock.read().unwrap_or_else(|e| e.into_inner());
            if let Ok(cell) = Self::find(&shard, hash, key) {
                return Self::update(cell, quota, now_us);
            }
        }
        let mut shard = lock.write().unwrap_or_else(|e| e.into_inner());
        let free = match Self::find(&shard, hash, key) {
            Ok(cell) => return Self::update(cell, quota, now_us),
            Err(free) => free,
        };
        if shard.len() >= self.per_shard {
            Self::make_room(&mut shard, now_us, self.per_shard);
        }
        let (next, decision) = gcra(None, now_us, quota);
        if let Some(tat) = next {
            shard.insert(
                free,
                Cell {
                    key: key.into(),
                    tat: AtomicU64::new(tat),
                },
            );
        }
        decision
    }

    fn update(cell: &Cell, quota: &Quota, now_us: u64) -> RateDecision {
        let mut current = cell.tat.load(Ordering::Acquire);
        loop {
            let stored = (current != 0).then_some(current);
            let (next, decision) = gcra(stored, now_us, quota);
            let Some(next) = next else { return decision };
            match cell
                .tat
                .compare_exchange_weak(current, next, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return decision,
                Err(seen) => current = seen,
            }
        }
    }

    fn make_room(shard: &mut Shard, now_us: u64, per_shard: usize) {
        shard.retain(|_, cell| cell.tat.load(Ordering::Relaxed) > now_us);
        if shard.len() < per_shard {
            return;
        }
        let mut tats: Vec<u64> = shard
            .values()
            .map(|c| c.tat.load(Ordering::Relaxed))
            .collect();
        let k = (tats.len() / 8).max(1) - 1;
        let cutoff = *tats.select_nth_unstable(k).1;
        shard.retain(|_, cell| cell.tat.load(Ordering::Relaxed) > cutoff);
    }

    /// Live cells (for tests and metrics).
    pub(crate) fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.read().unwrap_or_else(|e| e.into_inner()).len())
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_per_key() {
        let t = RateTable::new(1000);
        let q = Quota::per_hour(2);
        assert!(t.hit("a", &q, 1).allowed);
        assert!(t.hit("a", &q, 2).allowed);
        assert!(!t.hit("a", &q, 3).allowed);
        assert!(t.hit("b", &q, 3).allowed);
    }

    #[test]
    fn memory_stays_bounded() {
        let t = RateTable::new(1024);
        let q = Quota::per_hour(1);
        for i in 0..100_000 {
            t.hit(&format!("k{i}"), &q, 1_000 + i);
        }
        assert!(t.len() <= t.per_shard * t.shards.len(), "{} cells", t.len());
        assert!(t.len() >= 1024 / 2, "evicted too much: {} cells", t.len());
    }

    #[test]
    fn expired_cells_are_swept_first() {
        let t = RateTable::new(16 * 8);
        let q = Quota::per_second(1);
        // Fill with cells that expire after 1 s.
        for i in 0..10_000u64 {
            t.hit(&format!("old{i}"), &q, 1);
        }
        // A live key survives a flood that arrives after the old cells expired.
        let live = Quota::per_hour(1);
        assert!(t.hit("live", &live, 5_000_000).allowed);
        for i in 0..50u64 {
            t.hit(&format!("new{i}"), &q, 5_000_000);
        }
        assert!(!t.hit("live", &live, 5_000_001).allowed);
    }
}
