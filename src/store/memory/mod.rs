//! `MemoryStore`: the embedded store for one process, on moka.
//!
//! [`MemoryStore`] (in `store.rs`) holds four bounded structures: the rate
//! table (`rate_table.rs`, sharded atomics), the authoritative records
//! (`records.rs`, never evicted), and the challenge and pending-signup
//! caches (moka). The trait impls sit one file per concern (`rate.rs`,
//! `challenge.rs`, `session.rs`, `api_key.rs`, `tenant.rs`, with a tenant's
//! counters in `counters.rs`); `capacity.rs` is what a full table does.

mod api_key;
mod builder;
mod capacity;
mod challenge;
mod counters;
mod rate;
mod rate_table;
mod records;
mod session;
mod store;
mod tenant;

pub use builder::MemoryStoreBuilder;
pub use store::MemoryStore;
