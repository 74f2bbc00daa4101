//! Benchmarks of tower-otp side by side with the peer crates doing the same
//! job, in one crate with its own workspace so the main crate never builds
//! the peers. Only tower-otp's public API is used.
//!
//! * `cargo bench --manifest-path bench/Cargo.toml --bench <name>`: the
//!   in-process benchmarks (`api_key`, `jwt`, `layers`, `rate_limit`,
//!   `redis_throughput`, `memory_flows`);
//! * `bash bench/http_stack.sh`, `bash bench/http_instructions.sh`: the
//!   `bench_server` binary under `wrk` and callgrind;
//! * `bash bench/redis_throughput.sh`: the `redis_throughput` driver next to
//!   `redis-benchmark`; `bash bench/memory_flows.sh`: the `memory_flows`
//!   driver, the same flows over `MemoryStore` (both drive
//!   [`flows`]).

pub mod flows;
pub mod peer_flow;
pub mod stacks;
