//! The memory store's rate-limit table: a sharded map of atomic GCRA cells.
//!
//! moka's atomic compute costs ~2 µs, an order of magnitude more than a
//! rate-limit decision should (DESIGN.md, performance notes). So limits live
//! in their own structure: the key is hashed once with a randomly keyed
//! SipHash, the hash picks a shard and is the map key (no second hashing),
//! and the cell is updated with a compare-and-swap under the shard's *read*
//! lock. Only a key's first hit takes the write lock.
//!
//! Memory is bounded, and a bound never costs a live limit: a full shard
//! first drops cells whose TAT has passed (such a cell is indistinguishable
//! from an absent one, so dropping it loses nothing); if every cell is still
//! live, the new key is refused ([`Full`]) rather than forgetting an old one —
//! forgetting would hand an exhausted key, a lockout or a cooldown a fresh
//! budget, which is exactly what a flood of new keys would aim for. Each
//! shard remembers a lower bound of its earliest TAT, so a full shard of live
//! cells refuses in O(1) instead of scanning on every new key.
//!
//! [`RateTable::hit_all`] decides several keys as one step: it takes the write
//! locks of every shard involved (in index order, so two calls cannot
//! deadlock), which also keeps out the read-locked single-key updates.

use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, Hasher, RandomState};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{RwLock, RwLockWriteGuard};

use crate::quota::{Quota, RateDecision, gcra};
use crate::store::{Limit, decide_all};

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
    key: Box<[u8]>,
    /// Theoretical arrival time in µs since the epoch; 0 = never hit.
    tat: AtomicU64,
}

type Cells = HashMap<u64, Cell, BuildHasherDefault<PassThrough>>;

struct Shard {
    cells: Cells,
    /// A lower bound of the cells' TATs (`u64::MAX` when empty): TATs only
    /// grow, so no cell can have expired before this time.
    earliest: u64,
    /// No sweep before this time: when a batch of the cells the last sweep
    /// kept can have expired (see [`SWEEP_BATCH`]).
    next_sweep: u64,
}

/// A sweep of a full shard passes over every cell, so it waits until a
/// 1/`SWEEP_BATCH` share of the shard (at least one cell) can have expired.
/// Sweeping as soon as any one cell expired freed one cell per pass under a
/// stream of new keys: at a full table, 65 % of the CPU went to the sweep and
/// a flow cost 76–400 µs instead of 20 (`bash bench/memory_flows.sh` with
/// default bounds, `perf`). The price is fail-closed: until the batch is due,
/// up to that share of expired cells is not reused, and new keys are refused.
const SWEEP_BATCH: usize = 64;

/// The table has no room for a new key: every cell of its shard is live.
#[derive(Debug)]
pub(crate) struct Full;

pub(crate) struct RateTable {
    shards: Box<[RwLock<Shard>]>,
    hasher: RandomState,
    shard_mask: u64,
    per_shard: usize,
}

fn write(lock: &RwLock<Shard>) -> RwLockWriteGuard<'_, Shard> {
    lock.write().unwrap_or_else(|e| e.into_inner())
}

impl RateTable {
    pub(crate) fn new(max_keys: usize) -> Self {
        let shards = (std::thread::available_parallelism().map_or(4, |n| n.get()) * 8)
            .next_power_of_two()
            .clamp(8, 256);
        let per_shard = (max_keys / shards).max(16);
        Self {
            shards: (0..shards)
                .map(|_| {
                    RwLock::new(Shard {
                        cells: Cells::default(),
                        earliest: u64::MAX,
                        next_sweep: 0,
                    })
                })
                .collect(),
            hasher: RandomState::new(),
            shard_mask: (shards - 1) as u64,
            per_shard,
        }
    }

    /// How many keys the table holds at most.
    pub(crate) fn capacity(&self) -> usize {
        self.per_shard * self.shards.len()
    }

    /// Keyed SipHash of the key bytes (one `write`, no `str` terminator: the
    /// hash only ever sees whole keys).
    fn hash(&self, key: &[u8]) -> u64 {
        let mut h = self.hasher.build_hasher();
        h.write(key);
        h.finish()
    }

    fn shard_index(&self, hash: u64) -> usize {
        // Middle bits: hashbrown itself uses the lowest and the top 7 bits.
        ((hash >> 32) & self.shard_mask) as usize
    }

    /// Finds `key`'s slot, probing past (astronomically rare) 64-bit collisions.
    fn find<'a>(cells: &'a Cells, hash: u64, key: &[u8]) -> Result<&'a Cell, u64> {
        let mut h = hash;
        loop {
            match cells.get(&h) {
                Some(cell) if &*cell.key == key => return Ok(cell),
                Some(_) => h = h.wrapping_add(1),
                None => return Err(h),
            }
        }
    }

    /// Counts one request under `key`; [`Full`] when `key` is new and its
    /// shard holds only live cells (nothing was counted). Keys are bytes:
    /// the layer's keys built on the stack skip a UTF-8 check.
    pub(crate) fn hit<K: AsRef<[u8]> + ?Sized>(
        &self,
        key: &K,
        quota: &Quota,
        now_us: u64,
    ) -> Result<RateDecision, Full> {
        let key = key.as_ref();
        let hash = self.hash(key);
        let lock = &self.shards[self.shard_index(hash)];
        {
            let shard = lock.read().unwrap_or_else(|e| e.into_inner());
            if let Ok(cell) = Self::find(&shard.cells, hash, key) {
                return Ok(Self::update(cell, quota, now_us));
            }
        }
        let mut shard = write(lock);
        if let Ok(cell) = Self::find(&shard.cells, hash, key) {
            return Ok(Self::update(cell, quota, now_us));
        }
        let (next, decision) = gcra(None, now_us, quota);
        let Some(tat) = next else { return Ok(decision) };
        if shard.cells.len() >= self.per_shard {
            Self::sweep(&mut shard, now_us, &[], self.batch());
            if shard.cells.len() >= self.per_shard {
                return Err(Full);
            }
        }
        Self::insert(&mut shard, hash, key, tat);
        Ok(decision)
    }

    /// Counts one request under every limit, all or nothing (see
    /// [`RateStore::hit_all`](crate::store::RateStore::hit_all)); [`Full`]
    /// when a new key finds no room (nothing was counted).
    pub(crate) fn hit_all(
        &self,
        limits: &[Limit<'_>],
        now_us: u64,
    ) -> Result<Vec<RateDecision>, Full> {
        let hashes: Vec<u64> = limits.iter().map(|l| self.hash(l.key.as_bytes())).collect();
        let shard_of: Vec<usize> = hashes.iter().map(|&h| self.shard_index(h)).collect();
        let mut order = shard_of.clone();
        order.sort_unstable();
        order.dedup();
        // Write locks in index order: no deadlock between two calls, and no
        // single-key update (read lock) can run in between.
        let mut guards: Vec<RwLockWriteGuard<'_, Shard>> =
            order.iter().map(|&i| write(&self.shards[i])).collect();
        let guard = |n: usize| order.binary_search(&shard_of[n]).unwrap_or(0);

        let stored: Vec<Option<u64>> = (0..limits.len())
            .map(|n| {
                Self::find(&guards[guard(n)].cells, hashes[n], limits[n].key.as_bytes())
                    .ok()
                    .map(|cell| cell.tat.load(Ordering::Acquire))
                    .filter(|&tat| tat != 0)
            })
            .collect();
        let (decisions, next) = decide_all(limits, &stored, now_us);
        let Some(next) = next else {
            return Ok(decisions);
        };

        // Room for the new keys of each shard, before anything is written.
        let batch = self.batch();
        for (g, shard) in guards.iter_mut().enumerate() {
            let mine = || (0..limits.len()).filter(|&n| guard(n) == g);
            let mut absent: Vec<&[u8]> = mine()
                .filter(|&n| Self::find(&shard.cells, hashes[n], limits[n].key.as_bytes()).is_err())
                .map(|n| limits[n].key.as_bytes())
                .collect();
            absent.sort_unstable();
            absent.dedup();
            if shard.cells.len() + absent.len() > self.per_shard {
                let ours: Vec<&[u8]> = mine().map(|n| limits[n].key.as_bytes()).collect();
                Self::sweep(shard, now_us, &ours, batch);
                if shard.cells.len() + absent.len() > self.per_shard {
                    return Err(Full);
                }
            }
        }

        for (n, limit) in limits.iter().enumerate() {
            let shard = &mut guards[guard(n)];
            match Self::find(&shard.cells, hashes[n], limit.key.as_bytes()) {
                Ok(cell) => cell.tat.store(next[n], Ordering::Release),
                Err(_) => Self::insert(shard, hashes[n], limit.key.as_bytes(), next[n]),
            }
        }
        Ok(decisions)
    }

    fn insert(shard: &mut Shard, hash: u64, key: &[u8], tat: u64) {
        // Looked up again: a sweep may have opened an earlier probe slot.
        if let Err(free) = Self::find(&shard.cells, hash, key) {
            shard.cells.insert(
                free,
                Cell {
                    key: key.into(),
                    tat: AtomicU64::new(tat),
                },
            );
            shard.earliest = shard.earliest.min(tat);
        }
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

    /// How many kept cells must be able to have expired before a full
    /// shard sweeps again.
    fn batch(&self) -> usize {
        (self.per_shard / SWEEP_BATCH).max(1)
    }

    /// Drops the cells whose TAT has passed, except those of `keep` (the
    /// keys of the call in progress), unless the last sweep's batch is not
    /// due yet. Never touches a live cell.
    fn sweep(shard: &mut Shard, now_us: u64, keep: &[&[u8]], batch: usize) {
        if shard.earliest > now_us || shard.next_sweep > now_us {
            return; // nothing, or too little, can have expired yet
        }
        let mut kept_tats = Vec::with_capacity(shard.cells.len());
        shard.cells.retain(|_, cell| {
            let tat = cell.tat.load(Ordering::Relaxed);
            let kept = tat > now_us || keep.contains(&&*cell.key);
            if kept {
                kept_tats.push(tat);
            }
            kept
        });
        shard.earliest = kept_tats.iter().copied().min().unwrap_or(u64::MAX);
        // The time by which `batch` of the kept cells can have expired (TATs
        // only grow, so it is a lower bound).
        shard.next_sweep = if kept_tats.len() >= batch {
            *kept_tats.select_nth_unstable(batch - 1).1
        } else {
            0
        };
    }

    /// Live cells (for tests and metrics).
    pub(crate) fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.read().unwrap_or_else(|e| e.into_inner()).cells.len())
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR_US: u64 = 3_600_000_000;

    fn limit<'a>(key: &'a str, quota: &'a Quota) -> Limit<'a> {
        Limit { key, quota }
    }

    #[test]
    fn counts_per_key() {
        let t = RateTable::new(1000);
        let q = Quota::per_hour(2);
        assert!(t.hit("a", &q, 1).unwrap().allowed);
        assert!(t.hit("a", &q, 2).unwrap().allowed);
        assert!(!t.hit("a", &q, 3).unwrap().allowed);
        assert!(t.hit("b", &q, 3).unwrap().allowed);
    }

    #[test]
    fn memory_stays_bounded_and_refuses_when_full() {
        let t = RateTable::new(1024);
        let q = Quota::per_hour(1);
        let mut refused = 0;
        for i in 0..100_000 {
            refused += usize::from(t.hit(&format!("k{i}"), &q, 1_000 + i).is_err());
        }
        assert!(t.len() <= t.capacity(), "{} cells", t.len());
        assert!(t.len() >= 1024, "a shard refused early: {} cells", t.len());
        assert_eq!(
            refused,
            100_000 - t.len(),
            "every key past the bound refused"
        );
    }

    /// The flood of issue 10: a full table of live cells, one exhausted key,
    /// then a flood of new keys. Before, the flood evicted the exhausted
    /// key's cell and it was allowed again.
    #[test]
    fn a_flood_never_evicts_a_live_cell() {
        let t = RateTable::new(16 * 8);
        let q = Quota::per_hour(1);
        assert!(t.hit("victim", &q, 0).unwrap().allowed);
        assert!(!t.hit("victim", &q, 1).unwrap().allowed);
        let mut refused = 0;
        for i in 0..10_000u64 {
            refused += usize::from(t.hit(&format!("flood{i}"), &q, 2 + i).is_err());
        }
        assert!(refused > 0, "the table never filled");
        assert!(
            !t.hit("victim", &q, 20_000).unwrap().allowed,
            "victim forgotten"
        );
        // Through hit_all as well.
        let (a, b) = (Quota::per_hour(5), Quota::per_hour(1));
        assert!(
            !t.hit_all(&[limit("flood0", &a), limit("victim", &b)], 30_000)
                .unwrap()[1]
                .allowed
        );
    }

    #[test]
    fn a_full_shard_sweeps_in_batches() {
        let key = |i: u64| format!("k{i}");
        let mut shard = Shard {
            cells: Cells::default(),
            earliest: u64::MAX,
            next_sweep: 0,
        };
        for tat in 1..=640u64 {
            RateTable::insert(&mut shard, tat, key(tat).as_bytes(), tat);
        }
        // The first sweep frees what has expired and waits for 10 more.
        RateTable::sweep(&mut shard, 1, &[], 10);
        assert_eq!(shard.cells.len(), 639);
        assert_eq!(shard.next_sweep, 11);
        // Four more have expired: too few for a pass over the shard.
        RateTable::sweep(&mut shard, 5, &[], 10);
        assert_eq!(shard.cells.len(), 639, "swept before the batch was due");
        // The batch is due: every expired cell goes, no live one.
        RateTable::sweep(&mut shard, 11, &[], 10);
        assert_eq!(shard.cells.len(), 629);
        assert!(
            shard
                .cells
                .values()
                .all(|c| c.tat.load(Ordering::Relaxed) > 11)
        );
        assert_eq!((shard.earliest, shard.next_sweep), (12, 21));
    }

    #[test]
    fn expired_cells_make_room_for_new_keys() {
        let t = RateTable::new(16 * 8);
        let q = Quota::per_second(1);
        // Fill with cells that expire after 1 s, until the table refuses.
        let mut full = false;
        for i in 0..10_000u64 {
            full |= t.hit(&format!("old{i}"), &q, 1).is_err();
        }
        assert!(full, "the table never filled");
        // A live key survives a flood that arrives after the old cells expired.
        let live = Quota::per_hour(1);
        assert!(t.hit("live", &live, 5_000_000).unwrap().allowed);
        for i in 0..50u64 {
            assert!(t.hit(&format!("new{i}"), &q, 5_000_000).is_ok(), "new{i}");
        }
        assert!(!t.hit("live", &live, 5_000_001).unwrap().allowed);
        // hit_all reuses expired room too.
        for i in 0..50u64 {
            let key = format!("newer{i}");
            assert!(t.hit_all(&[limit(&key, &q)], 9_000_000).is_ok(), "{key}");
        }
    }

    #[test]
    fn hit_all_is_all_or_nothing() {
        let t = RateTable::new(1000);
        let (one, three) = (Quota::per_hour(1), Quota::per_hour(3));
        assert!(t.hit("spent", &one, 0).unwrap().allowed);
        let d = t
            .hit_all(&[limit("fresh", &three), limit("spent", &one)], 1)
            .unwrap();
        assert!(d[0].allowed && !d[1].allowed);
        assert_eq!(d[0].remaining, 2, "reports what it would have decided");
        // Nothing was counted: "fresh" still has its whole budget.
        assert_eq!(t.hit("fresh", &three, 2).unwrap().remaining, 2);
        assert_eq!(t.len(), 2);
        let d = t.hit_all(&[limit("fresh", &three), limit("other", &three)], 3);
        assert!(d.unwrap().iter().all(|d| d.allowed));
        assert_eq!(t.hit("fresh", &three, 4).unwrap().remaining, 0);
        assert_eq!(t.hit("other", &three, 4).unwrap().remaining, 1);
    }

    #[test]
    fn hit_all_counts_a_repeated_key_twice() {
        let t = RateTable::new(1000);
        let q = Quota::per_hour(3);
        let d = t.hit_all(&[limit("k", &q), limit("k", &q)], 0).unwrap();
        assert_eq!((d[0].remaining, d[1].remaining), (2, 1));
        let d = t
            .hit_all(&[limit("k", &q), limit("k", &q)], HOUR_US / 100)
            .unwrap();
        assert!(d[0].allowed && !d[1].allowed, "{d:?}");
        assert_eq!(t.hit("k", &q, HOUR_US / 100).unwrap().remaining, 0);
    }

    #[test]
    fn hit_all_refuses_when_a_new_key_finds_no_room() {
        let t = RateTable::new(16 * 8);
        let q = Quota::per_hour(10);
        assert!(t.hit("known", &q, 0).unwrap().allowed);
        let mut i = 0u64;
        // Fill until a new key is refused; remember that key.
        let stranger = loop {
            let key = format!("fill{i}");
            if t.hit(&key, &q, 1).is_err() {
                break key;
            }
            i += 1;
        };
        assert!(
            t.hit_all(&[limit("known", &q), limit(&stranger, &q)], 2)
                .is_err()
        );
        // The known key counted nothing (9 left after its one hit).
        assert_eq!(t.hit("known", &q, 3).unwrap().remaining, 8);
    }
}
