//! [`TenantStore`] for [`RedisStore`]: tenant records (a hash each, indexed
//! by a set, all in one slot), a hash per counter group in its tenant's
//! slot, and a hash per pending signup; one script or one native command
//! per operation.

use std::time::{Duration, SystemTime};

use redis::Value;

use super::reply::{array, bytes, corrupt, decimal, int};
use super::scripts::SCRIPTS;
use super::store::{RedisStore, ttl_ms};
use crate::clock::unix_micros;
use crate::store::tenant::{
    COUNTER_MAX, beyond_range, check_counter_change, check_tenant_id, deadline_us, next_version,
    tenant_id_ok,
};
use crate::store::{CounterAdd, CounterGuard, Guarded, StoreError, TenantRecord, TenantStore};

/// A tenant record from its version and data parts (`Nil` where missing).
fn record(op: &'static str, version: Value, data: Value) -> Result<TenantRecord, StoreError> {
    Ok(TenantRecord {
        version: decimal(op, version)?,
        data: bytes(op, data)?,
    })
}

/// The counters of one group as `counters_get.lua` returns them, sorted.
fn group(op: &'static str, v: Value) -> Result<Vec<(String, i64)>, StoreError> {
    let items = array(op, v)?;
    if items.len() % 2 != 0 {
        return Err(corrupt(op));
    }
    let mut out = Vec::with_capacity(items.len() / 2);
    let mut items = items.into_iter();
    while let (Some(field), Some(value)) = (items.next(), items.next()) {
        let field = String::from_utf8(bytes(op, field)?).map_err(|_| corrupt(op))?;
        let value = std::str::from_utf8(&bytes(op, value)?)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| corrupt(op))?;
        out.push((field, value));
    }
    out.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

/// The (1-based) index of `group` among `groups`, added if new: a script's
/// KEYS name each group once.
fn index<'a>(groups: &mut Vec<&'a str>, group: &'a str) -> usize {
    match groups.iter().position(|g| *g == group) {
        Some(i) => i + 1,
        None => {
            groups.push(group);
            groups.len()
        }
    }
}

impl TenantStore for RedisStore {
    async fn create_tenant(&self, id: &str, data: &[u8]) -> Result<bool, StoreError> {
        const OP: &str = "create_tenant";
        check_tenant_id(id)?;
        let reply = self
            .eval(
                OP,
                SCRIPTS
                    .tenant_create
                    .key(self.keys.tenant(id))
                    .key(&self.keys.tenant_index)
                    .arg(id)
                    .arg(data),
            )
            .await?;
        Ok(int(OP, &reply)? == 1)
    }

    async fn get_tenant(&self, id: &str) -> Result<Option<TenantRecord>, StoreError> {
        const OP: &str = "get_tenant";
        if !tenant_id_ok(id) {
            return Ok(None);
        }
        let reply = self
            .command(
                OP,
                redis::cmd("HMGET")
                    .arg(self.keys.tenant(id))
                    .arg("v")
                    .arg("d"),
            )
            .await?;
        let mut parts = array(OP, reply)?.into_iter();
        match (parts.next(), parts.next(), parts.next()) {
            (Some(Value::Nil), Some(Value::Nil), None) => Ok(None),
            (Some(version), Some(data), None) => record(OP, version, data).map(Some),
            _ => Err(corrupt(OP)),
        }
    }

    async fn update_tenant(
        &self,
        id: &str,
        expected: u64,
        data: &[u8],
    ) -> Result<bool, StoreError> {
        const OP: &str = "update_tenant";
        if !tenant_id_ok(id) {
            return Ok(false);
        }
        let next = next_version(expected)?;
        let reply = self
            .eval(
                OP,
                SCRIPTS
                    .tenant_update
                    .key(self.keys.tenant(id))
                    .arg(expected)
                    .arg(next)
                    .arg(data),
            )
            .await?;
        Ok(int(OP, &reply)? == 1)
    }

    async fn list_tenants(&self) -> Result<Vec<(String, TenantRecord)>, StoreError> {
        const OP: &str = "list_tenants";
        let reply = self
            .eval(
                OP,
                SCRIPTS
                    .tenant_list
                    .key(&self.keys.tenant_index)
                    .arg(&self.keys.tenant_record_prefix),
            )
            .await?;
        let items = array(OP, reply)?;
        if items.len() % 3 != 0 {
            return Err(corrupt(OP));
        }
        let mut out = Vec::with_capacity(items.len() / 3);
        let mut items = items.into_iter();
        while let (Some(id), Some(version), Some(data)) = (items.next(), items.next(), items.next())
        {
            let id = String::from_utf8(bytes(OP, id)?).map_err(|_| corrupt(OP))?;
            out.push((id, record(OP, version, data)?));
        }
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
        const OP: &str = "add_counters";
        check_counter_change(tenant, guards, adds)?;
        if guards.is_empty() && adds.is_empty() {
            return Ok(Guarded::Added(Vec::new()));
        }
        let mut groups: Vec<&str> = Vec::new();
        let mut invocation = SCRIPTS.counters_add.prepare_invoke();
        let now_us = unix_micros(now);
        invocation.arg(now_us).arg(guards.len());
        for guard in guards {
            // Counters stay within ±COUNTER_MAX, so a max past that range
            // means the same clamped to it, and is exact as a Lua number.
            let max = guard.max.clamp(-COUNTER_MAX, COUNTER_MAX + 1);
            invocation
                .arg(index(&mut groups, guard.group))
                .arg(guard.field)
                .arg(max);
        }
        for add in adds {
            invocation
                .arg(index(&mut groups, add.group))
                .arg(add.field)
                .arg(add.delta)
                .arg(deadline_us(now_us, add.ttl))
                .arg(ttl_ms(add.ttl));
        }
        for group in &groups {
            invocation.key(self.keys.counters(tenant, group));
        }
        let reply = self.eval(OP, &invocation).await?;
        let mut items = array(OP, reply)?.into_iter();
        let tag = items.next().map(|v| int(OP, &v)).transpose()?;
        let values = items.map(|v| int(OP, &v)).collect::<Result<Vec<_>, _>>()?;
        match tag {
            Some(1) if values.len() == guards.len() => Ok(Guarded::Added(values)),
            Some(0) if values.len() == guards.len() => Ok(Guarded::Refused(values)),
            Some(2) if values.is_empty() => Err(beyond_range()),
            _ => Err(corrupt(OP)),
        }
    }

    async fn counters(
        &self,
        tenant: &str,
        groups: &[&str],
        now: SystemTime,
    ) -> Result<Vec<Vec<(String, i64)>>, StoreError> {
        const OP: &str = "counters";
        if groups.is_empty() || !tenant_id_ok(tenant) {
            return Ok(vec![Vec::new(); groups.len()]);
        }
        let mut invocation = SCRIPTS.counters_get.prepare_invoke();
        invocation.arg(unix_micros(now));
        for group in groups {
            invocation.key(self.keys.counters(tenant, group));
        }
        let reply = self.eval(OP, &invocation).await?;
        let items = array(OP, reply)?;
        if items.len() != groups.len() {
            return Err(corrupt(OP));
        }
        items.into_iter().map(|v| group(OP, v)).collect()
    }

    async fn put_pending(
        &self,
        key: &str,
        data: &[u8],
        ttl: Duration,
        now: SystemTime,
    ) -> Result<(), StoreError> {
        self.eval(
            "put_pending",
            SCRIPTS
                .pending_put
                .key(self.keys.pending(key))
                .arg(data)
                .arg(deadline_us(unix_micros(now), ttl))
                .arg(ttl_ms(ttl)),
        )
        .await?;
        Ok(())
    }

    async fn take_pending(
        &self,
        key: &str,
        now: SystemTime,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        const OP: &str = "take_pending";
        let reply = self
            .eval(
                OP,
                SCRIPTS
                    .pending_take
                    .key(self.keys.pending(key))
                    .arg(unix_micros(now)),
            )
            .await?;
        match reply {
            Value::Nil => Ok(None),
            other => bytes(OP, other).map(Some),
        }
    }
}
