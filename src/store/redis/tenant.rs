//! [`TenantStore`] for [`RedisStore`] (placeholder: being written).

use std::time::{Duration, SystemTime};

use super::store::RedisStore;
use crate::store::{CounterAdd, CounterGuard, Guarded, StoreError, TenantRecord, TenantStore};

fn unwritten() -> StoreError {
    StoreError::Unavailable("tenant store not written yet".into())
}

impl TenantStore for RedisStore {
    async fn create_tenant(&self, _: &str, _: &[u8]) -> Result<bool, StoreError> {
        Err(unwritten())
    }
    async fn get_tenant(&self, _: &str) -> Result<Option<TenantRecord>, StoreError> {
        Err(unwritten())
    }
    async fn update_tenant(&self, _: &str, _: u64, _: &[u8]) -> Result<bool, StoreError> {
        Err(unwritten())
    }
    async fn list_tenants(&self) -> Result<Vec<(String, TenantRecord)>, StoreError> {
        Err(unwritten())
    }
    async fn add_counters(
        &self,
        _: &str,
        _: &[CounterAdd<'_>],
        _: SystemTime,
    ) -> Result<(), StoreError> {
        Err(unwritten())
    }
    async fn add_counters_within(
        &self,
        _: &str,
        _: &[CounterGuard<'_>],
        _: &[CounterAdd<'_>],
        _: SystemTime,
    ) -> Result<Guarded, StoreError> {
        Err(unwritten())
    }
    async fn counters(
        &self,
        _: &str,
        _: &[&str],
        _: SystemTime,
    ) -> Result<Vec<Vec<(String, i64)>>, StoreError> {
        Err(unwritten())
    }
    async fn put_pending(
        &self,
        _: &str,
        _: &[u8],
        _: Duration,
        _: SystemTime,
    ) -> Result<(), StoreError> {
        Err(unwritten())
    }
    async fn take_pending(&self, _: &str, _: SystemTime) -> Result<Option<Vec<u8>>, StoreError> {
        Err(unwritten())
    }
}
