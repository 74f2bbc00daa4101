//! [`ApiKeyStore`]: API-key records.

use std::fmt;
use std::future::Future;
use std::time::Duration;

use super::StoreError;

/// Storage for API-key records (opaque bytes; the secret inside is already
/// hashed): all that `ApiKeys` and `ApiKeyLayer` need.
///
/// Records are authoritative — a lost one is a customer locked out, so a
/// bounded backend refuses a write rather than evict one. Implementations
/// must pass the API-key suite of the store conformance tests
/// (`tests/support/conformance.rs`).
pub trait ApiKeyStore: Clone + Send + Sync + fmt::Debug + 'static {
    /// Inserts or replaces the API-key record `id`, expiring after `ttl`
    /// when given.
    fn put_api_key(
        &self,
        id: &str,
        record: &[u8],
        ttl: Option<Duration>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The API-key record `id`, if any.
    fn get_api_key(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<Option<Vec<u8>>, StoreError>> + Send;

    /// Deletes the API-key record `id`; returns whether it existed.
    fn delete_api_key(&self, id: &str) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Every live API-key record, as `(id, record)`.
    fn list_api_keys(
        &self,
    ) -> impl Future<Output = Result<Vec<(String, Vec<u8>)>, StoreError>> + Send;
}
