//! The store conformance suite on `MemoryStore`.
#![cfg(feature = "moka")]

mod support;

use tower_otp::store::MemoryStore;

store_conformance!(async { Some(MemoryStore::new()) });
