//! [`MemoryStoreBuilder`]: the bounds of a [`MemoryStore`], and the
//! constructors that start from it.

use std::sync::Arc;

use moka::sync::Cache;

use super::capacity::FullAlarm;
use super::rate_table::RateTable;
use super::records::RecordTable;
use super::store::{Alarms, EntryTtl, MemoryStore};
#[cfg(doc)]
use crate::store::StoreError;

/// Builder for [`MemoryStore`].
#[derive(Clone, Debug)]
#[must_use]
pub struct MemoryStoreBuilder {
    max_capacity: u64,
    max_records: usize,
    max_rate_keys: usize,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::builder().build()
    }
}

impl MemoryStore {
    /// A store with default bounds.
    pub fn new() -> Self {
        Self::default()
    }

    /// A builder to set bounds.
    pub fn builder() -> MemoryStoreBuilder {
        MemoryStoreBuilder::new()
    }
}

impl MemoryStoreBuilder {
    /// The default bounds.
    pub(super) fn new() -> Self {
        Self {
            max_capacity: 1_000_000,
            max_records: 1_000_000,
            max_rate_keys: 1_000_000,
        }
    }

    /// Most pending challenges kept, and as many pending signups (default
    /// 1 000 000 each); past it the cache evicts (a lost challenge only
    /// means requesting a new code, a lost signup signing up again).
    pub fn max_capacity(mut self, n: u64) -> Self {
        self.max_capacity = n;
        self
    }

    /// Most authoritative records kept — API keys, revocation markers,
    /// session families, tenants and one counter record per tenant together
    /// (default 1 000 000). Never evicted: when
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
            pending: Cache::builder()
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
