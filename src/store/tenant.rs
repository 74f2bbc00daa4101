//! [`TenantStore`]: tenant records with a version, per-tenant counters
//! (usage, quotas, analytics) and short-lived pending signups.
// The checks below serve the backends; a build with neither has none.
#![cfg_attr(not(any(feature = "moka", feature = "redis")), allow(dead_code))]

use std::fmt;
use std::future::Future;
use std::time::{Duration, SystemTime};

use super::StoreError;

/// Longest tenant id, counter group or counter field, in bytes.
const MAX_NAME_LEN: usize = 64;

/// The range of a counter and of a change: `±(2^53 − 1)`, the integers a
/// Lua number (a double, in Redis scripts) holds exactly.
pub(crate) const COUNTER_MAX: i64 = (1 << 53) - 1;

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
/// each guarded counter, in the guards' order (a guard's counter that was
/// never counted, or whose group expired, is 0).
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
///
/// # Names and ranges
///
/// Tenant ids, counter groups and counter fields are 1–64 bytes without
/// whitespace; tenant ids also without `{` or `}` (in Redis a tenant's id is
/// the hash tag of its counters). Counters and changes stay within
/// `±(2^53 − 1)` (9 007 199 254 740 991, what a Redis script counts
/// exactly). A write outside these bounds — or a counter change with a zero
/// `ttl`, or a change that would take a counter past the range — fails with
/// [`StoreError::Invalid`] and changes nothing; a read of a name that cannot
/// be stored finds nothing.
///
/// # Time
///
/// Expiry follows `now`, the caller's clock, as everywhere in the store: a
/// counter change moves its group's deadline to `now + ttl` if that is later,
/// a group read at or after its deadline is empty, and a change after it
/// starts the group afresh; a pending signup kept at `now` for `ttl` is gone
/// from `now + ttl` on. Backends also give each entry a real TTL (a
/// counter group's the longest `ttl` of its changes), so nothing lives
/// forever. Tenant records never expire.
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
    /// reads again. (`expected = u64::MAX` has no successor:
    /// [`StoreError::Invalid`].)
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
    /// once (a field named twice changes twice).
    fn add_counters(
        &self,
        tenant: &str,
        adds: &[CounterAdd<'_>],
        now: SystemTime,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Applies `adds` only if every guard holds (its counter, before this
    /// call's changes, is below its `max`), all in one atomic step:
    /// concurrent callers never take a counter past a guard's `max`. A guard
    /// need not name a counter that `adds` changes. With no guards it is
    /// [`add_counters`](Self::add_counters), answering `Added(vec![])`.
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

/// Whether `s` is a valid counter group or field (or tenant id, see
/// [`tenant_id_ok`]).
fn name_ok(s: &str) -> bool {
    let whitespace = if s.is_ascii() {
        // `char::is_whitespace` on ASCII: these five and vertical tab.
        s.bytes().any(|b| b.is_ascii_whitespace() || b == 0x0b)
    } else {
        s.chars().any(char::is_whitespace)
    };
    !s.is_empty() && s.len() <= MAX_NAME_LEN && !whitespace
}

/// Whether `id` is a valid tenant id: a tenant that cannot be written cannot
/// be found either, so reads answer "none" for it without asking a backend.
pub(crate) fn tenant_id_ok(id: &str) -> bool {
    name_ok(id) && !id.contains(['{', '}'])
}

/// `Ok` when tenant `id` may be written.
pub(crate) fn check_tenant_id(id: &str) -> Result<(), StoreError> {
    if tenant_id_ok(id) {
        Ok(())
    } else {
        Err(StoreError::Invalid(
            "tenant id: 1-64 bytes, no whitespace, no { or }",
        ))
    }
}

/// `Ok` when a counter change of `tenant` may be carried out as asked: every
/// name valid, every delta in range, every ttl non-zero. Both backends check
/// this before they touch anything.
pub(crate) fn check_counter_change(
    tenant: &str,
    guards: &[CounterGuard<'_>],
    adds: &[CounterAdd<'_>],
) -> Result<(), StoreError> {
    check_tenant_id(tenant)?;
    let names = guards
        .iter()
        .map(|g| (g.group, g.field))
        .chain(adds.iter().map(|a| (a.group, a.field)));
    for (group, field) in names {
        if !name_ok(group) || !name_ok(field) {
            return Err(StoreError::Invalid(
                "counter group or field: 1-64 bytes, no whitespace",
            ));
        }
    }
    for add in adds {
        if add.delta.unsigned_abs() > COUNTER_MAX.unsigned_abs() {
            return Err(StoreError::Invalid("counter change beyond ±(2^53 - 1)"));
        }
        if add.ttl.is_zero() {
            return Err(StoreError::Invalid("counter change with a zero ttl"));
        }
    }
    Ok(())
}

/// `counter + delta` if it stays in range ([`COUNTER_MAX`]): the memory
/// store's check (Redis's scripts make their own).
#[cfg(any(test, feature = "moka"))]
pub(crate) fn counter_add(counter: i64, delta: i64) -> Result<i64, StoreError> {
    counter
        .checked_add(delta)
        .filter(|v| v.unsigned_abs() <= COUNTER_MAX.unsigned_abs())
        .ok_or_else(beyond_range)
}

/// A change would take a counter past [`COUNTER_MAX`].
pub(crate) fn beyond_range() -> StoreError {
    StoreError::Invalid("counter beyond ±(2^53 - 1)")
}

/// The version after `expected`.
pub(crate) fn next_version(expected: u64) -> Result<u64, StoreError> {
    expected
        .checked_add(1)
        .ok_or(StoreError::Invalid("tenant version has no successor"))
}

/// The deadline `ttl` after `now_us` (µs since the epoch on the caller's
/// clock), rounded up to the µs and at most [`COUNTER_MAX`] µs (past the
/// year 2255), so that a Redis script compares deadlines exactly.
pub(crate) fn deadline_us(now_us: u64, ttl: Duration) -> u64 {
    let ttl_us = u64::try_from(ttl.as_nanos().div_ceil(1_000)).unwrap_or(u64::MAX);
    now_us
        .saturating_add(ttl_us)
        .min(COUNTER_MAX.unsigned_abs())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn add<'a>(group: &'a str, field: &'a str, delta: i64) -> CounterAdd<'a> {
        CounterAdd {
            group,
            field,
            delta,
            ttl: Duration::from_secs(1),
        }
    }

    #[test]
    fn names_are_bounded() {
        assert!(tenant_id_ok("acme"));
        assert!(tenant_id_ok(&"a".repeat(64)));
        for bad in ["", "a b", "a\tb", "a{b", "a}b", &"a".repeat(65)] {
            assert!(!tenant_id_ok(bad), "{bad:?}");
        }
        let ok = [add("d:20261201", "otp_requested", 1)];
        assert!(check_counter_change("acme", &[], &ok).is_ok());
        for (group, field) in [("", "f"), ("g", ""), ("g h", "f"), ("g", "f\n")] {
            let r = check_counter_change("acme", &[], &[add(group, field, 1)]);
            assert!(
                matches!(r, Err(StoreError::Invalid(_))),
                "{group:?} {field:?}"
            );
            let guard = CounterGuard {
                group,
                field,
                max: 1,
            };
            let r = check_counter_change("acme", &[guard], &[]);
            assert!(
                matches!(r, Err(StoreError::Invalid(_))),
                "{group:?} {field:?}"
            );
        }
        // Braces are fine in groups and fields: only the tenant id is a tag.
        assert!(check_counter_change("acme", &[], &[add("{g}", "}", 1)]).is_ok());
    }

    #[test]
    fn changes_are_bounded() {
        let max = COUNTER_MAX;
        assert!(check_counter_change("t", &[], &[add("g", "f", max)]).is_ok());
        assert!(check_counter_change("t", &[], &[add("g", "f", -max)]).is_ok());
        for delta in [max + 1, -max - 1, i64::MIN, i64::MAX] {
            let r = check_counter_change("t", &[], &[add("g", "f", delta)]);
            assert!(matches!(r, Err(StoreError::Invalid(_))), "{delta}");
        }
        let zero = CounterAdd {
            ttl: Duration::ZERO,
            ..add("g", "f", 1)
        };
        assert!(check_counter_change("t", &[], &[zero]).is_err());
        assert_eq!(counter_add(max - 1, 1).unwrap(), max);
        assert!(counter_add(max, 1).is_err());
        assert!(counter_add(-max, -1).is_err());
        assert!(counter_add(i64::MAX, i64::MAX).is_err());
        assert!(next_version(u64::MAX).is_err());
    }

    #[test]
    fn deadlines_round_up_and_stay_exact() {
        let now = 1_800_000_000_000_000;
        assert_eq!(deadline_us(now, Duration::from_nanos(1)), now + 1);
        assert_eq!(deadline_us(now, Duration::from_millis(3)), now + 3_000);
        let max = COUNTER_MAX.unsigned_abs();
        assert_eq!(deadline_us(now, Duration::MAX), max);
    }
}
