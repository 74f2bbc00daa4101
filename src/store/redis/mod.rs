//! `RedisStore`: the shared store for several processes, on Redis (feature
//! `redis`) or Redis Cluster (feature `redis-cluster`).
//!
//! See [`RedisStore`] for the key layout and the failure behaviour. The
//! files: `store.rs` (the handle and its one-call helpers), `builder.rs`
//! (settings, connecting), `error.rs` (why connecting failed),
//! `connection.rs` (single node or cluster, recovery), `keys.rs` (the key
//! layout), `scripts.rs` and `lua/` (the scripts), `reply.rs` (reading
//! replies and errors), and one file per concern trait (`rate.rs`,
//! `challenge.rs`, `session.rs`, `api_key.rs`, `tenant.rs`).

mod api_key;
mod builder;
mod challenge;
mod connection;
mod error;
mod keys;
mod rate;
mod reply;
mod scripts;
mod session;
mod store;
mod tenant;

pub use builder::RedisStoreBuilder;
pub use error::RedisConnectError;
pub use store::RedisStore;
