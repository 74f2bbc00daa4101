//! [`RateStore`]: GCRA counters, several limits decided all or nothing.

use std::fmt;
use std::future::Future;
use std::time::SystemTime;

use super::StoreError;
use crate::quota::{Quota, RateDecision};

/// One limit of a request, for [`RateStore::hit_all`].
#[derive(Clone, Copy, Debug)]
pub struct Limit<'a> {
    /// The store key of the limit's counter (already hashed or namespaced).
    pub key: &'a str,
    /// The quota that counter is held to.
    pub quota: &'a Quota,
}

/// Storage for rate-limit counters: all that `RateLimitLayer` needs.
///
/// A counter is a GCRA theoretical arrival time per key
/// ([`crate::quota::gcra`]); a backend stores it and decides atomically.
/// Implementations must pass the rate suite of the store conformance tests
/// (`tests/support/conformance.rs`).
pub trait RateStore: Clone + Send + Sync + fmt::Debug + 'static {
    /// Counts one request against `quota` under `key` (GCRA, see
    /// [`crate::quota::gcra`]). A refused request changes nothing.
    ///
    /// The same counter as a [`hit_all`](Self::hit_all) of one limit with
    /// this key, which is what the provided body does; a backend may answer
    /// a single limit faster.
    fn hit(
        &self,
        key: &str,
        quota: &Quota,
        now: SystemTime,
    ) -> impl Future<Output = Result<RateDecision, StoreError>> + Send {
        async move {
            let decisions = self.hit_all(&[Limit { key, quota }], now).await?;
            decisions
                .into_iter()
                .next()
                .ok_or_else(|| StoreError::Corrupt("hit_all returned no decision".into()))
        }
    }

    /// Counts one request against every limit in `limits`, all or nothing.
    ///
    /// Returns one decision per limit, in order. When every limit allows,
    /// all are counted and every decision has `allowed: true`. When any
    /// limit refuses, *none* is counted: the refusing limits report
    /// `allowed: false` with their `retry_after`, the others report what
    /// they would have decided (`allowed: true`, uncounted). A store error
    /// counts nothing.
    ///
    /// The decision is atomic: concurrent calls over overlapping keys behave
    /// as if they ran one after the other. A key named twice in one call is
    /// counted twice (the second limit sees the first one's count).
    fn hit_all(
        &self,
        limits: &[Limit<'_>],
        now: SystemTime,
    ) -> impl Future<Output = Result<Vec<RateDecision>, StoreError>> + Send;
}

/// The GCRA decisions of one [`RateStore::hit_all`] call, from the TAT each
/// limit's key held before the call (`stored[i]` for `limits[i]`; `None` =
/// never hit or expired). A key named twice sees its earlier limit's count.
///
/// Returns the decisions and, when every limit allows, the TAT to store for
/// each limit in order (a later limit of the same key supersedes an earlier
/// one); `None` when any limit refuses, and then nothing may be written.
#[cfg(any(feature = "moka", feature = "redis"))]
pub(crate) fn decide_all(
    limits: &[Limit<'_>],
    stored: &[Option<u64>],
    now_us: u64,
) -> (Vec<RateDecision>, Option<Vec<u64>>) {
    debug_assert_eq!(limits.len(), stored.len());
    let mut decisions = Vec::with_capacity(limits.len());
    // The TAT after each limit: counted, or unchanged when it refused.
    let mut after: Vec<Option<u64>> = Vec::with_capacity(limits.len());
    let mut all = true;
    for (i, limit) in limits.iter().enumerate() {
        let before = (0..i)
            .rev()
            .find(|&j| limits[j].key == limit.key)
            .map_or(stored[i], |j| after[j]);
        let (tat, decision) = crate::quota::gcra(before, now_us, limit.quota);
        all &= tat.is_some();
        after.push(tat.or(before));
        decisions.push(decision);
    }
    let next = if all {
        after.into_iter().collect()
    } else {
        None
    };
    (decisions, next)
}
