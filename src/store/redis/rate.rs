//! [`RateStore`] for [`RedisStore`]: every limit of a request in one
//! script (`lua/hit_all.lua`), decided again in Rust from the TATs it saw.
//! The challenge scripts decide their step's limits the same way
//! ([`push_limits`], [`read_limits`]).

use std::time::SystemTime;

use redis::{ScriptInvocation, Value};

use super::keys::Keys;
use super::reply::{array, bytes, corrupt, decimal, int};
use super::scripts::SCRIPTS;
use super::store::RedisStore;
use crate::clock::unix_micros;
use crate::quota::RateDecision;
use crate::store::{Limit, RateStore, StoreError, decide_all};

/// Names `limits` as the first keys and arguments of a script built on
/// `lua/lib_rate.lua`: `now_us`, then per limit its emission interval and
/// tolerance (the same derived parameters as `gcra`).
pub(super) fn push_limits(
    invocation: &mut ScriptInvocation<'_>,
    keys: &Keys,
    limits: &[Limit<'_>],
    now_us: u64,
) {
    invocation.arg(now_us);
    for limit in limits {
        let t = limit.quota.emission_interval_us();
        let tau = t.saturating_mul(u64::from(limit.quota.burst().max(1)));
        invocation.key(keys.rate(limit.key)).arg(t).arg(tau);
    }
}

/// Reads the rate head of a reply (`lua/lib_rate.lua`: allowed, then the
/// TAT each limit's key held) from `items`, leaving the rest. The decisions
/// come from the one Rust implementation, fed the TATs the script saw; the
/// script must have decided the same. Returns them and whether all allowed
/// (and were counted).
pub(super) fn read_limits(
    op: &'static str,
    items: &mut impl Iterator<Item = Value>,
    limits: &[Limit<'_>],
    now_us: u64,
) -> Result<(Vec<RateDecision>, bool), StoreError> {
    let allowed = int(op, &items.next().ok_or_else(|| corrupt(op))?)? == 1;
    let mut stored = Vec::with_capacity(limits.len());
    for _ in limits {
        let b = bytes(op, items.next().ok_or_else(|| corrupt(op))?)?;
        stored.push(if b.is_empty() {
            None
        } else {
            Some(decimal(op, Value::BulkString(b))?)
        });
    }
    let (decisions, next) = decide_all(limits, &stored, now_us);
    if next.is_some() != allowed {
        return Err(StoreError::Corrupt(format!(
            "{op}: redis and gcra disagree (quota beyond exact range)"
        )));
    }
    Ok((decisions, allowed))
}

impl RateStore for RedisStore {
    async fn hit_all(
        &self,
        limits: &[Limit<'_>],
        now: SystemTime,
    ) -> Result<Vec<RateDecision>, StoreError> {
        const OP: &str = "hit_all";
        if limits.is_empty() {
            return Ok(Vec::new());
        }
        let now_us = unix_micros(now);
        let mut invocation = SCRIPTS.hit_all.prepare_invoke();
        push_limits(&mut invocation, &self.keys, limits, now_us);
        let reply = self.eval(OP, &invocation).await?;
        let mut items = array(OP, reply)?.into_iter();
        let (decisions, _) = read_limits(OP, &mut items, limits, now_us)?;
        if items.next().is_some() {
            return Err(corrupt(OP));
        }
        Ok(decisions)
    }
}
