//! [`TenantStore`]: tenant records with a version, per-tenant counters
//! (usage, quotas, analytics) and short-lived pending signups.

use std::fmt;
use std::future::Future;
use std::time::{Duration, SystemTime};

use super::StoreError;

/// A tenant record as stored: opaque bytes (the tenant module's JSON) and
/// the version the store keeps beside them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TenantRecord {
    /// 1 when created, one more on every [`update`](TenantStore::update_tenant).
    pub version: u64,
    /// The record.
    pub data: Vec<u8>,
}

/// One counter change of [`TenantStore::add_counters`]: `field` of the
/// counter group `group` (e.g. group `"d:20261201"`, field
/// `"otp_requested"`) changes by `delta`. The group lives for at least `ttl`
/// after the change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CounterAdd<'a> {
    /// The counter group, one hash of fields (≤ 64 bytes, no whitespace).
    pub group: &'a str,
    /// The field within the group (≤ 64 bytes, no whitespace).
    pub field: &'a str,
    /// The change (negative to give back a reservation).
    pub delta: i64,
    /// How long the group is kept after this change.
    pub ttl: Duration,
}

/// A condition of [`TenantStore::add_counters_within`]: the counter `field`
/// of `group` must be below `max` (a missing counter is 0).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CounterGuard<'a> {
    /// The counter group.
    pub group: &'a str,
    /// The field within the group.
    pub field: &'a str,
    /// The value the counter must stay below.
    pub max: i64,
}

/// The outcome of [`TenantStore::add_counters_within`], with the value of
/// each guarded counter, in the guards' order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Guarded {
    /// Every guard held and the changes were made; the values are after them.
    Added(Vec<i64>),
    /// A guard failed and nothing changed; the values as they are.
    Refused(Vec<i64>),
}

/// Storage for a multi-tenant service: tenant records, per-tenant counters
/// and pending signups.
///
/// Tenant records and counters are *authoritative* (a lost tenant is a
/// customer locked out, a lost counter is wrong usage and a reset quota):
/// a bounded backend refuses a write rather than evict either. Every
/// operation is atomic on its own; counter groups of one tenant are changed
/// together or not at all. Implementations must pass the tenant suite of
/// the store conformance tests (`tests/support/conformance.rs`).
pub trait TenantStore: Clone + Send + Sync + fmt::Debug + 'static {
    /// Creates tenant `id` at version 1; `false` (and nothing changes) when
    /// it exists.
    fn create_tenant(
        &self,
        id: &str,
        data: &[u8],
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Tenant `id`'s record, if any.
    fn get_tenant(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<Option<TenantRecord>, StoreError>> + Send;

    /// Replaces tenant `id`'s record if its version is `expected`; the
    /// version becomes `expected + 1`. `false` (and nothing changes) when the
    /// tenant is missing or its version differs: the caller lost a race and
    /// reads again.
    fn update_tenant(
        &self,
        id: &str,
        expected: u64,
        data: &[u8],
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Every tenant, as `(id, record)`, ordered by id.
    fn list_tenants(
        &self,
    ) -> impl Future<Output = Result<Vec<(String, TenantRecord)>, StoreError>> + Send;

    /// Applies every change of `adds` to tenant `tenant`'s counters, all at
    /// once.
    fn add_counters(
        &self,
        tenant: &str,
        adds: &[CounterAdd<'_>],
        now: SystemTime,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Applies `adds` only if every guard holds (its counter is below its
    /// `max`), all in one atomic step: concurrent callers never take a
    /// counter past a guard's `max`.
    fn add_counters_within(
        &self,
        tenant: &str,
        guards: &[CounterGuard<'_>],
        adds: &[CounterAdd<'_>],
        now: SystemTime,
    ) -> impl Future<Output = Result<Guarded, StoreError>> + Send;

    /// The counters of each of `groups` of tenant `tenant`, in the groups'
    /// order, as `(field, value)` sorted by field; an unknown or expired
    /// group is empty.
    fn counters(
        &self,
        tenant: &str,
        groups: &[&str],
        now: SystemTime,
    ) -> impl Future<Output = Result<Vec<Vec<(String, i64)>>, StoreError>> + Send;

    /// Keeps `data` under `key` for `ttl` (replacing what was there): a
    /// signup waiting for its email code.
    fn put_pending(
        &self,
        key: &str,
        data: &[u8],
        ttl: Duration,
        now: SystemTime,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Removes and returns what [`put_pending`](Self::put_pending) kept under
    /// `key`, if it has not expired: exactly one caller gets it.
    fn take_pending(
        &self,
        key: &str,
        now: SystemTime,
    ) -> impl Future<Output = Result<Option<Vec<u8>>, StoreError>> + Send;
}
