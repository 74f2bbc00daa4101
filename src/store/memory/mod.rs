//! `MemoryStore`: the embedded store for one process, on moka.
//!
//! [`MemoryStore`] (in `store.rs`) holds three bounded structures, each in
//! its own file: the rate table (`rate_table.rs`, sharded atomics), the
//! authoritative records (`records.rs`, never evicted) and the challenge
//! cache (moka). The trait impls sit one file per concern (`rate.rs`,
//! `challenge.rs`, `session.rs`, `api_key.rs`); `capacity.rs` is what a full
//! table does.

mod api_key;
mod builder;
mod capacity;
mod challenge;
mod rate;
mod rate_table;
mod records;
mod session;
mod store;
mod tenant;

pub use builder::MemoryStoreBuilder;
pub use store::MemoryStore;
