//! [`TenantStore`] for [`MemoryStore`]: tenant records and each tenant's
//! counters in the authoritative record table (never evicted; a full table
//! refuses), pending signups in their own cache.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use moka::ops::compute::Op;

use super::counters::{Change, Counters};
use super::records::{NEVER, Op as RecordOp, RecordTable};
use super::store::{MemoryStore, Pending, Record};
use crate::clock::unix_micros;
use crate::store::tenant::{
    check_counter_change, check_tenant_id, deadline_us, next_version, tenant_id_ok,
};
use crate::store::{CounterAdd, CounterGuard, Guarded, StoreError, TenantRecord, TenantStore};

/// The record-table key prefix of tenant records.
const TENANT: &str = "t:";

fn tenant_key(id: &str) -> String {
    format!("{TENANT}{id}")
}

/// All counters of one tenant share this one record.
fn counters_key(tenant: &str) -> String {
    format!("c:{tenant}")
}

impl TenantStore for MemoryStore {
    async fn create_tenant(&self, id: &str, data: &[u8]) -> Result<bool, StoreError> {
        check_tenant_id(id)?;
        self.record(&tenant_key(id), |current, _| match current {
            Some(_) => (RecordOp::Keep, false),
            None => {
                let record = TenantRecord {
                    version: 1,
                    data: data.to_vec(),
                };
                (RecordOp::Put(Record::Tenant(record), NEVER), true)
            }
        })
    }

    async fn get_tenant(&self, id: &str) -> Result<Option<TenantRecord>, StoreError> {
        if !tenant_id_ok(id) {
            return Ok(None);
        }
        Ok(self
            .records
            .get(&tenant_key(id), |record, _| match record {
                Record::Tenant(t) => Some(t.clone()),
                _ => None,
            })
            .flatten())
    }

    async fn update_tenant(
        &self,
        id: &str,
        expected: u64,
        data: &[u8],
    ) -> Result<bool, StoreError> {
        if !tenant_id_ok(id) {
            return Ok(false);
        }
        let next = next_version(expected)?;
        self.record(&tenant_key(id), |current, _| match current {
            Some(Record::Tenant(t)) if t.version == expected => {
                let record = TenantRecord {
                    version: next,
                    data: data.to_vec(),
                };
                (RecordOp::Put(Record::Tenant(record), NEVER), true)
            }
            _ => (RecordOp::Keep, false),
        })
    }

    async fn list_tenants(&self) -> Result<Vec<(String, TenantRecord)>, StoreError> {
        let mut out = Vec::new();
        self.records.for_each(|key, record| {
            if let (Some(id), Record::Tenant(t)) = (key.strip_prefix(TENANT), record) {
                out.push((id.to_owned(), t.clone()));
            }
        });
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    async fn add_counters(
        &self,
        tenant: &str,
        adds: &[CounterAdd<'_>],
        now: SystemTime,
    ) -> Result<(), StoreError> {
        self.add_counters_within(tenant, &[], adds, now).await?;
        Ok(())
    }

    async fn add_counters_within(
        &self,
        tenant: &str,
        guards: &[CounterGuard<'_>],
        adds: &[CounterAdd<'_>],
        now: SystemTime,
    ) -> Result<Guarded, StoreError> {
        check_counter_change(tenant, guards, adds)?;
        let now_us = unix_micros(now);
        self.record(&counters_key(tenant), |current, table_now| {
            let current = match current {
                Some(Record::Counters(c)) => Some(c),
                _ => None,
            };
            match Counters::change(current, guards, adds, now) {
                Ok((Change::Put(next), guarded)) => {
                    // The record outlives its latest group by the same
                    // span on the table's clock: a backstop that reclaims
                    // the room, while expiry itself follows `now`.
                    let left_us = next.until_us(now_us).map_or(0, |u| u - now_us);
                    let until = RecordTable::<Record>::deadline(
                        table_now,
                        Some(Duration::from_micros(left_us)),
                    );
                    (RecordOp::Put(Record::Counters(next), until), Ok(guarded))
                }
                Ok((Change::Keep, guarded)) => (RecordOp::Keep, Ok(guarded)),
                Err(e) => (RecordOp::Keep, Err(e)),
            }
        })?
    }

    async fn counters(
        &self,
        tenant: &str,
        groups: &[&str],
        now: SystemTime,
    ) -> Result<Vec<Vec<(String, i64)>>, StoreError> {
        let now_us = unix_micros(now);
        let read = |record: &Record, _| match record {
            Record::Counters(c) => Some(groups.iter().map(|g| c.read(g, now_us)).collect()),
            _ => None,
        };
        let found = if tenant_id_ok(tenant) {
            self.records.get(&counters_key(tenant), read).flatten()
        } else {
            None
        };
        Ok(found.unwrap_or_else(|| vec![Vec::new(); groups.len()]))
    }

    async fn put_pending(
        &self,
        key: &str,
        data: &[u8],
        ttl: Duration,
        now: SystemTime,
    ) -> Result<(), StoreError> {
        if ttl.is_zero() {
            self.pending.invalidate(key);
            return Ok(());
        }
        let pending = Pending {
            data: Arc::from(data),
            until_us: deadline_us(unix_micros(now), ttl),
            ttl,
        };
        self.pending.insert(key.to_owned(), pending);
        Ok(())
    }

    async fn take_pending(
        &self,
        key: &str,
        now: SystemTime,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let now_us = unix_micros(now);
        let mut taken = None;
        // One atomic entry computation: exactly one caller sees the entry.
        self.pending
            .entry_by_ref(key)
            .and_compute_with(|current| match current {
                Some(entry) => {
                    let pending = entry.into_value();
                    taken = (pending.until_us > now_us).then(|| pending.data.to_vec());
                    Op::Remove
                }
                None => Op::Nop,
            });
        Ok(taken)
    }
}
