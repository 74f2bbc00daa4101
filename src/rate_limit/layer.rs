//! [`RateLimitLayer`], its builder and its policies.

use std::fmt;
use std::sync::Arc;

use http::HeaderValue;
use tower::Layer;

use super::key::{DynExtractor, KeyExtractor, check_policy_name};
use super::service::RateLimit;
use crate::clock::{Clock, SystemClock, ceil_secs};
use crate::error::ConfigError;
use crate::quota::Quota;
use crate::store::Store;

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
            extractor: Arc::new(DynExtractor(Box::new(extractor))),
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
        format!(
            "\"{}\";q={};w={}",
            self.name,
            self.quota.limit(),
            ceil_secs(self.quota.period()).max(1)
        )
    }
}

/// Limits requests per key under one or more named [`Policy`]s, counted in a
/// [`Store`]. See the [module docs](super).
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
}

impl<St: Store> RateLimitLayer<St> {
    /// A builder counting in `store`.
    pub fn builder(store: St) -> RateLimitBuilder<St> {
        RateLimitBuilder {
            store,
            policies: Vec::new(),
            fail_open: false,
            clock: Arc::new(SystemClock),
        }
    }

    /// The policies, in the order they are checked.
    pub fn policies(&self) -> &[Policy] {
        &self.shared.policies
    }
}

impl<S, St> Layer<S> for RateLimitLayer<St> {
    type Service = RateLimit<S, St>;

    fn layer(&self, inner: S) -> Self::Service {
        RateLimit::from_shared(inner, self.shared.clone())
    }
}

/// Builds a [`RateLimitLayer`]; invalid settings are reported by
/// [`build`](Self::build).
#[must_use]
pub struct RateLimitBuilder<St> {
    store: St,
    policies: Vec<Policy>,
    fail_open: bool,
    clock: Arc<dyn Clock>,
}

impl<St: fmt::Debug> fmt::Debug for RateLimitBuilder<St> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimitBuilder")
            .field("store", &self.store)
            .field("policies", &self.policies)
            .field("fail_open", &self.fail_open)
            .finish()
    }
}

impl<St: Store> RateLimitBuilder<St> {
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

    /// The time source (default [`SystemClock`]).
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
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
        let items: Vec<String> = self.policies.iter().map(Policy::header_item).collect();
        let policy_header = HeaderValue::try_from(items.join(", "))
            .map_err(|_| ConfigError::new("rate limit policy", "unrepresentable header"))?;
        Ok(RateLimitLayer {
            shared: Arc::new(Shared {
                store: self.store,
                policies: self.policies.into(),
                policy_header,
                fail_open: self.fail_open,
                clock: self.clock,
            }),
        })
    }
}
