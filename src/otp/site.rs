//! [`Site`]: the settings one request runs under — the app's own, fixed when
//! the router is built, or its tenant's, resolved per request — and
//! [`SiteSource`], how a multi-tenant router finds them.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use http::request::Parts;

use super::config::OtpConfig;
use crate::error::Problem;
use crate::events::EventSink;
use crate::jwt::Validation;
use crate::notify::template::Templates;
use crate::tenant::usage::UsageField;

/// Message quotas of a tenant (none for a single app).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct SiteQuotas {
    pub(crate) daily: Option<u64>,
    pub(crate) monthly: Option<u64>,
}

/// The settings of one request.
pub(crate) struct Site {
    pub(crate) config: OtpConfig,
    /// The rules access tokens must pass (a tenant's carry `aud` = its id).
    pub(crate) validation: Validation,
    /// Prefix of every store key: `""` for a single app (so keys stay as
    /// they always were), `t:<tenant>:` for a tenant — no tenant can read,
    /// count against or verify another's state.
    pub(crate) key_prefix: String,
    /// The tenant, for events, usage and analytics.
    pub(crate) tenant: Option<Arc<str>>,
    /// Where this request's events go.
    pub(crate) events: Arc<dyn EventSink>,
    /// The tenant's own message templates, if any.
    pub(crate) templates: Option<Arc<Templates>>,
    pub(crate) quotas: SiteQuotas,
    /// The config version it was built from (0 for a single app).
    pub(crate) version: u64,
}

impl fmt::Debug for Site {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Site")
            .field("tenant", &self.tenant)
            .field("version", &self.version)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Site {
    /// The store key `<prefix><namespace><rest>`, in one allocation.
    pub(crate) fn key(&self, namespace: &str, rest: &str) -> String {
        let mut key = String::with_capacity(self.key_prefix.len() + namespace.len() + rest.len());
        key.push_str(&self.key_prefix);
        key.push_str(namespace);
        key.push_str(rest);
        key
    }
}

/// A boxed, sendable future.
pub(crate) type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Where a multi-tenant router gets each request's [`Site`] (the tenant
/// module's `Tenants`), and where it reports how each request went.
pub(crate) trait SiteSource: Send + Sync + fmt::Debug + 'static {
    /// The site of the request with these parts: its tenant's settings, or
    /// the refusal (`401 invalid_api_key`, `403 tenant_suspended`, `503`).
    fn site<'a>(&'a self, parts: &'a Parts) -> BoxFuture<'a, Result<Arc<Site>, Problem>>;

    /// [`site`](Self::site) when it needs no I/O (the tenant is cached and
    /// fresh: nearly every request), without a boxed future; `None` when
    /// the store must be asked.
    fn cached_site(&self, parts: &Parts) -> Option<Result<Arc<Site>, Problem>>;

    /// A request of `site`'s tenant took `latency` and ended with the problem
    /// `code` (or none): for analytics.
    fn finished(&self, site: &Site, latency: Duration, code: Option<&str>);

    /// Changes a usage counter of `site`'s tenant with the next flush of
    /// the analytics (counters that need no quota decision).
    fn count(&self, site: &Site, field: UsageField, delta: i64);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::TracingSink;

    fn site(prefix: &str) -> Site {
        Site {
            config: OtpConfig::default(),
            validation: Validation::default(),
            key_prefix: prefix.to_owned(),
            tenant: None,
            events: Arc::new(TracingSink),
            templates: None,
            quotas: SiteQuotas::default(),
            version: 0,
        }
    }

    #[test]
    fn keys_are_prefixed_and_allocated_once() {
        let app = site("");
        assert_eq!(app.key("otp:req:id:", "abc"), "otp:req:id:abc");
        let tenant = site("t:acme:");
        let key = tenant.key("otp:req:id:", "abc");
        assert_eq!(key, "t:acme:otp:req:id:abc");
        assert_eq!(
            key.capacity(),
            key.len(),
            "one allocation of the exact size"
        );
    }
}
