//! [`RateLimitLayer`], its builder and its policies: configuration only.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use http::HeaderValue;

use super::fields::push_policy_item;
use super::key::{DynExtractor, KeyExtractor, check_policy_name};
use crate::clock::{Clock, CoarseClock, SystemClock};
use crate::error::ConfigError;
use crate::quota::Quota;
use crate::refusal::Refusal;
use crate::store::RateStore;

/// What a policy does with a request its extractor finds no key in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum MissingKey {
    /// Refuse the request with the extractor's problem (default: fail
    /// closed). For [`ByClientIp`](super::ByClientIp) that is
    /// `500 client_ip_unavailable`; for other extractors
    /// `400 rate_limit_key_missing`.
    #[default]
    Reject,
    /// Let the request through without counting it under this policy (e.g. a
    /// per-API-key policy for requests that carry no key, which another
    /// policy limits per IP).
    Skip,
    /// Count every keyless request under one shared key of this policy.
    Shared,
}

/// One named limit: a [`Quota`] per key, the key coming from a
/// [`KeyExtractor`].
#[derive(Debug, Clone)]
#[must_use]
pub struct Policy {
    pub(crate) name: Arc<str>,
    /// `rl:<name>:`, the start of every store key of this policy.
    pub(crate) key_prefix: Arc<str>,
    /// `"<name>";r=`, the start of this policy's item in `RateLimit`.
    pub(crate) item_prefix: Arc<str>,
    pub(crate) quota: Quota,
    pub(crate) extractor: Arc<DynExtractor>,
    pub(crate) missing: MissingKey,
}

impl Policy {
    /// Policy `name` (letters, digits, `_`, `-`, `.`; shown to clients in
    /// `RateLimit-Policy`): `quota` per key from `extractor`.
    pub fn new(name: &str, quota: Quota, extractor: impl KeyExtractor) -> Self {
        Self {
            name: name.into(),
            key_prefix: format!("rl:{name}:").into(),
            item_prefix: format!("\"{name}\";r=").into(),
            quota,
            extractor: Arc::new(DynExtractor::new(extractor)),
            missing: MissingKey::default(),
        }
    }

    /// What to do when the extractor finds no key (default
    /// [`MissingKey::Reject`]).
    pub fn on_missing_key(mut self, missing: MissingKey) -> Self {
        self.missing = missing;
        self
    }

    /// The name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The quota.
    pub fn quota(&self) -> &Quota {
        &self.quota
    }

    /// This policy's item of `RateLimit-Policy`: `"name";q=100;w=60`.
    fn header_item(&self) -> String {
        let mut item = String::new();
        push_policy_item(&mut item, &self.name, &self.quota);
        item
    }
}

/// Limits requests per key under one or more named [`Policy`]s, counted in a
/// [`RateStore`](crate::store::RateStore). See the [module docs](super).
///
/// A refusal carries its [`Problem`](crate::error::Problem) in the response
/// extensions; [`RateLimitBuilder::rejection`] shapes it, and
/// [`RateLimitBuilder::events`] reports each `429` as a
/// `rate_limit.exceeded` event.
#[must_use]
pub struct RateLimitLayer<St> {
    pub(crate) shared: Arc<Shared<St>>,
}

impl<St> Clone for RateLimitLayer<St> {
    fn clone(&self) -> Self {
        Self {
            shared: self.shared.clone(),
        }
    }
}

impl<St: fmt::Debug> fmt::Debug for RateLimitLayer<St> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimitLayer")
            .field("store", &self.shared.store)
            .field("policies", &self.shared.policies)
            .field("fail_open", &self.shared.fail_open)
            .field("clock", &self.shared.clock)
            .field("refusal", &self.shared.refusal)
            .finish()
    }
}

/// Configuration shared by the layer and every service it builds.
pub(crate) struct Shared<St> {
    pub(crate) store: St,
    pub(crate) policies: Box<[Policy]>,
    /// `RateLimit-Policy` listing every policy, built once.
    pub(crate) policy_header: HeaderValue,
    pub(crate) fail_open: bool,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) refusal: Refusal,
}

impl<St: RateStore> RateLimitLayer<St> {
    /// A builder counting in `store`.
    pub fn builder(store: St) -> RateLimitBuilder<St> {
        RateLimitBuilder {
            store,
            policies: Vec::new(),
            fail_open: false,
            clock: None,
            refusal: Refusal::default(),
        }
    }

    /// The policies, in the order they are checked.
    pub fn policies(&self) -> &[Policy] {
        &self.shared.policies
    }
}

/// Whether a clock reading up to `tick` late is harmless under `quota`.
///
/// Under a flood the bucket's debt hovers near the burst; while the reading
/// stands still for a tick the debt must not run out, or the refill of that
/// tick spills over the full bucket and is lost. So the burst beyond one
/// request must cover a tick: `(burst - 1) × interval ≥ tick`. Then the
/// sustained rate is the quota's; otherwise the limit bites early (100/s
/// with burst 1 on a 4 ms tick would allow 83/s).
fn absorbs_a_tick(quota: &Quota, tick: Duration) -> bool {
    let tick_us = u64::try_from(tick.as_micros()).unwrap_or(u64::MAX);
    u64::from(quota.burst().saturating_sub(1)).saturating_mul(quota.emission_interval_us())
        >= tick_us
}

/// Builds a [`RateLimitLayer`]; invalid settings are reported by
/// [`build`](Self::build).
#[must_use]
pub struct RateLimitBuilder<St> {
    store: St,
    policies: Vec<Policy>,
    fail_open: bool,
    clock: Option<Arc<dyn Clock>>,
    refusal: Refusal,
}

impl<St: fmt::Debug> fmt::Debug for RateLimitBuilder<St> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimitBuilder")
            .field("store", &self.store)
            .field("policies", &self.policies)
            .field("fail_open", &self.fail_open)
            .field("refusal", &self.refusal)
            .finish_non_exhaustive()
    }
}

impl<St: RateStore> RateLimitBuilder<St> {
    /// Adds a policy. Policies are checked in the order added; the first that
    /// refuses answers `429` and later ones are not counted.
    pub fn policy(mut self, policy: Policy) -> Self {
        self.policies.push(policy);
        self
    }

    /// Shorthand for `.policy(Policy::new(name, quota, extractor))`.
    pub fn limit(self, name: &str, quota: Quota, extractor: impl KeyExtractor) -> Self {
        self.policy(Policy::new(name, quota, extractor))
    }

    /// When the store fails: `false` (default) refuses with
    /// `503 store_unavailable`; `true` lets the request through and logs a
    /// warning. Fail open only where availability matters more than the
    /// limit (never for login or OTP endpoints).
    pub fn fail_open(mut self, yes: bool) -> Self {
        self.fail_open = yes;
        self
    }

    /// The time source. By default [`CoarseClock`] when every policy's
    /// burst, beyond one request, covers a clock tick (then a reading up to a
    /// tick late never lowers the sustained rate), else [`SystemClock`].
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Some(Arc::new(clock));
        self
    }

    refusal_settings! {
        events: "every `429`, as one `rate_limit.exceeded` event \
                 ([`EventKind::RateLimitExceeded`](crate::events::EventKind)) \
                 per refusing policy, whose name is the event's \
                 [`policy`](crate::events::Event::policy), with the request's \
                 id, client address and user agent",
        refusals: "`429 rate_limited` with `Retry-After`, `RateLimit-Policy` \
                   and `RateLimit`; `503 store_unavailable`; the `400`/`500` \
                   of a missing key",
    }

    /// The layer; refuses no policy, a bad or repeated name, or a zero quota.
    pub fn build(self) -> Result<RateLimitLayer<St>, ConfigError> {
        if self.policies.is_empty() {
            return Err(ConfigError::new(
                "rate limit policy",
                "add at least one policy",
            ));
        }
        for (i, p) in self.policies.iter().enumerate() {
            check_policy_name(&p.name).map_err(|r| ConfigError::new("rate limit policy", r))?;
            if self.policies[..i].iter().any(|q| q.name == p.name) {
                return Err(ConfigError::new(
                    "rate limit policy",
                    format!("policy name {:?} is used twice", &*p.name),
                ));
            }
            p.quota.validate("rate limit quota")?;
        }
        let clock = self.clock.unwrap_or_else(|| {
            let tick = CoarseClock::resolution();
            if self.policies.iter().all(|p| absorbs_a_tick(&p.quota, tick)) {
                Arc::new(CoarseClock)
            } else {
                Arc::new(SystemClock)
            }
        });
        let items: Vec<String> = self.policies.iter().map(Policy::header_item).collect();
        let policy_header = HeaderValue::try_from(items.join(", "))
            .map_err(|_| ConfigError::new("rate limit policy", "unrepresentable header"))?;
        Ok(RateLimitLayer {
            shared: Arc::new(Shared {
                store: self.store,
                policies: self.policies.into(),
                policy_header,
                fail_open: self.fail_open,
                clock,
                refusal: self.refusal,
            }),
        })
    }
}

#[cfg(all(test, feature = "moka"))]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::rate_limit::ByClientIp;
    use crate::store::MemoryStore;

    #[test]
    fn a_burst_must_hold_a_ticks_refill() {
        let tick = Duration::from_millis(4);
        assert!(absorbs_a_tick(&Quota::per_minute(60), tick));
        assert!(absorbs_a_tick(&Quota::per_second(1000), tick));
        // 1000/s refills 4 requests per 4 ms tick, on top of the one in hand.
        assert!(absorbs_a_tick(&Quota::per_second(1000).with_burst(5), tick));
        assert!(!absorbs_a_tick(
            &Quota::per_second(1000).with_burst(4),
            tick
        ));
        assert!(!absorbs_a_tick(&Quota::per_hour(1).with_burst(1), tick));
        assert!(absorbs_a_tick(&Quota::per_hour(1).with_burst(2), tick));
        assert!(absorbs_a_tick(
            &Quota::per_second(1).with_burst(1),
            Duration::ZERO
        ));
    }

    #[test]
    fn the_clock_follows_the_policies_unless_set() {
        let layer = |quota: Quota| {
            let layer = RateLimitLayer::builder(MemoryStore::new())
                .limit("a", Quota::per_minute(10), ByClientIp)
                .limit("b", quota, ByClientIp)
                .build()
                .unwrap();
            format!("{layer:?}")
        };
        let coarse = if CoarseClock::resolution() > Duration::ZERO {
            "CoarseClock"
        } else {
            "SystemClock"
        };
        assert!(layer(Quota::per_hour(100)).contains(coarse));
        assert!(layer(Quota::per_second(100_000).with_burst(1)).contains("SystemClock"));
        let set = RateLimitLayer::builder(MemoryStore::new())
            .limit("a", Quota::per_minute(10), ByClientIp)
            .clock(crate::clock::ManualClock::default())
            .build()
            .unwrap();
        assert!(format!("{set:?}").contains("ManualClock"));
    }

    /// Allowed requests out of a flood (one every 50 µs for 2 s) when `now`
    /// is read precisely or frozen for `tick` at a time.
    fn allowed(quota: &Quota, tick_us: u64) -> u64 {
        let (mut tat, mut allowed) = (None, 0);
        for i in 0..40_000u64 {
            let precise = 1_700_000_000_000_000 + i * 50;
            let now = precise - precise % tick_us.max(1);
            let (next, decision) = crate::quota::gcra(tat, now, quota);
            if decision.allowed {
                allowed += 1;
                tat = next;
            }
        }
        allowed
    }

    #[test]
    fn a_tick_late_clock_keeps_the_rate_when_the_burst_absorbs_it() {
        let tick = Duration::from_millis(4);
        for quota in [
            Quota::per_second(1000).with_burst(5),
            Quota::per_second(100).with_burst(2),
            Quota::per_second(1000),
            Quota::per_second(5000).with_burst(21),
        ] {
            assert!(absorbs_a_tick(&quota, tick));
            let (precise, coarse) = (allowed(&quota, 1), allowed(&quota, 4_000));
            // The coarse reading may start a tick late: at most a tick's refill.
            let slack = 4_000 / quota.emission_interval_us() + 1;
            assert!(
                precise.abs_diff(coarse) <= slack,
                "{quota:?}: {precise} vs {coarse}"
            );
        }
        // And why the check exists: without the margin the rate drops.
        for (tight, at_most_percent) in [
            (Quota::per_second(1000).with_burst(1), 30),
            (Quota::per_second(100).with_burst(1), 90),
        ] {
            assert!(!absorbs_a_tick(&tight, tick));
            let (precise, coarse) = (allowed(&tight, 1), allowed(&tight, 4_000));
            assert!(
                coarse * 100 < precise * at_most_percent,
                "{tight:?}: {coarse} of {precise}"
            );
        }
    }
}
