//! [`RateStore`] for [`RedisStore`]: every limit of a request in one
//! script (`lua/hit_all.lua`), decided again in Rust from the TATs it saw.

use std::time::SystemTime;

use redis::Value;

use super::reply::{array, bytes, corrupt, decimal, int};
use super::scripts::SCRIPTS;
use super::store::RedisStore;
use crate::clock::unix_micros;
use crate::quota::RateDecision;
use crate::store::{Limit, RateStore, StoreError, decide_all};

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
        invocation.arg(now_us);
        for limit in limits {
            // The same derived parameters as `gcra`.
            let t = limit.quota.emission_interval_us();
            let tau = t.saturating_mul(u64::from(limit.quota.burst().max(1)));
            invocation.key(self.keys.rate(limit.key)).arg(t).arg(tau);
        }
        let reply = self.eval(OP, &invocation).await?;
        let mut items = array(OP, reply)?.into_iter();
        let allowed = int(OP, &items.next().ok_or_else(|| corrupt(OP))?)? == 1;
        let stored = items
            .map(|v| {
                let b = bytes(OP, v)?;
                if b.is_empty() {
                    Ok(None)
                } else {
                    decimal(OP, Value::BulkString(b)).map(Some)
                }
            })
            .collect::<Result<Vec<Option<u64>>, StoreError>>()?;
        if stored.len() != limits.len() {
            return Err(corrupt(OP));
        }
        // The decisions come from the one Rust implementation, fed the TATs
        // the script saw; the script must have decided the same.
        let (decisions, next) = decide_all(limits, &stored, now_us);
        if next.is_some() != allowed {
            return Err(StoreError::Corrupt(
                "hit_all: redis and gcra disagree (quota beyond exact range)".into(),
            ));
        }
        Ok(decisions)
    }
}
