//! The store conformance suite on `MemoryStore`.

mod support;

use tower_otp::store::MemoryStore;

store_conformance!(async { Some(MemoryStore::new()) });
