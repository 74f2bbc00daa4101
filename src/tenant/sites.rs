//! How a multi-tenant `OtpRouter` finds each request's settings: the
//! [`ApiKeyIdentity`] the API-key layer put in the request's extensions
//! names the tenant; the tenant's config (cached, see [`Tenants`]) becomes
//! a [`Site`], built once per config version.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use http::StatusCode;
use http::request::Parts;

use super::tenants::{Tenant, TenantStatus, Tenants};
use super::usage::UsageField;
use crate::api_key::ApiKeyIdentity;
use crate::error::Problem;
#[cfg(feature = "http-notifier")]
use crate::events::Event;
use crate::events::EventSink;
use crate::jwt::Validation;
use crate::otp::site::{BoxFuture, Site, SiteQuotas, SiteSource};
use crate::store::Store;

/// `403 tenant_suspended`.
pub(crate) fn tenant_suspended() -> Problem {
    Problem::new(
        StatusCode::FORBIDDEN,
        "tenant_suspended",
        "This API key's tenant is suspended.",
    )
}

/// The sites of every tenant, for one router.
pub(crate) struct TenantSites<S> {
    tenants: Tenants<S>,
    /// The router's own settings: what a tenant's config is laid over.
    base: Arc<Site>,
    sites: RwLock<HashMap<String, Arc<Site>>>,
}

impl<S: fmt::Debug> fmt::Debug for TenantSites<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TenantSites")
            .field("tenants", &self.tenants)
            .finish_non_exhaustive()
    }
}

impl<S: Store> TenantSites<S> {
    pub(crate) fn new(tenants: Tenants<S>, base: Arc<Site>) -> Self {
        Self {
            tenants,
            base,
            sites: RwLock::new(HashMap::new()),
        }
    }

    /// The key's identity, put in the extensions by the API-key layer.
    fn identity(parts: &Parts) -> Result<&ApiKeyIdentity, Problem> {
        parts
            .extensions
            .get::<ApiKeyIdentity>()
            .ok_or_else(crate::api_key::invalid_api_key)
    }

    /// The site of a cached, fresh tenant, or `None` to ask the store.
    fn cached(&self, parts: &Parts) -> Option<Result<Arc<Site>, Problem>> {
        let who = match Self::identity(parts) {
            Ok(who) => who,
            Err(refused) => return Some(Err(refused)),
        };
        let tenant = self.tenants.fresh(who.tenant())?;
        Some(self.site_of(&tenant))
    }

    async fn resolve(&self, parts: &Parts) -> Result<Arc<Site>, Problem> {
        let who = Self::identity(parts)?;
        let tenant = match self.tenants.resolve(who.tenant()).await {
            Ok(Some(tenant)) => tenant,
            // The key outlived its tenant.
            Ok(None) => return Err(crate::api_key::invalid_api_key()),
            Err(e) => {
                tracing::error!(target: "tower_otp", error = %e, "tenant lookup failed; refusing request");
                return Err(Problem::store_unavailable());
            }
        };
        self.site_of(&tenant)
    }

    /// The site of `tenant`, built once per config version.
    fn site_of(&self, tenant: &Tenant) -> Result<Arc<Site>, Problem> {
        if tenant.status == TenantStatus::Suspended {
            return Err(tenant_suspended());
        }
        if let Some(site) = self
            .sites
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&tenant.id)
            .filter(|s| s.version == tenant.config_version)
        {
            return Ok(Arc::clone(site));
        }
        let site = Arc::new(self.build(tenant)?);
        let mut sites = self.sites.write().unwrap_or_else(|e| e.into_inner());
        match sites.get(&tenant.id) {
            // A concurrent request built a newer one.
            Some(newer) if newer.version > site.version => Ok(Arc::clone(newer)),
            _ => {
                sites.insert(tenant.id.clone(), Arc::clone(&site));
                Ok(site)
            }
        }
    }

    /// The tenant's settings over the router's.
    fn build(&self, tenant: &Tenant) -> Result<Site, Problem> {
        let base = &self.base;
        let mut config = tenant.config.otp_config(&base.config);
        // Tokens name their tenant, and a tenant accepts only its own.
        config.audience = Some(tenant.id.clone());
        let mut validation = Validation::default()
            .leeway(config.leeway)
            .audience(tenant.id.clone());
        if let Some(iss) = &config.issuer {
            validation = validation.issuer(iss.clone());
        }
        Ok(Site {
            validation,
            key_prefix: format!("t:{}:", tenant.id),
            tenant: Some(tenant.id.as_str().into()),
            events: self.events_of(tenant)?,
            templates: tenant.config.message_templates().map(Arc::new),
            quotas: SiteQuotas {
                daily: tenant.config.quotas.daily,
                monthly: tenant.config.quotas.monthly,
            },
            version: tenant.config_version,
            config,
        })
    }

    /// The router's sink, plus the tenant's webhook for the events it
    /// subscribed to.
    fn events_of(&self, tenant: &Tenant) -> Result<Arc<dyn EventSink>, Problem> {
        let Some(hook) = &tenant.config.webhook else {
            return Ok(Arc::clone(&self.base.events));
        };
        #[cfg(feature = "http-notifier")]
        {
            let sink = crate::webhook::WebhookSecret::parse(&hook.secret)
                .and_then(|secret| {
                    crate::events::WebhookSink::builder(hook.url.clone(), secret)
                        .clock(Arc::clone(self.tenants.clock()))
                        .build()
                })
                .map_err(|e| {
                    tracing::error!(target: "tower_otp", tenant = %tenant.id, error = %e, "tenant webhook unusable");
                    Problem::new(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "unavailable",
                        "The service is temporarily unavailable; retry later.",
                    )
                })?;
            Ok(Arc::new(TenantEvents {
                base: Arc::clone(&self.base.events),
                hook: Arc::new(sink),
                events: hook.events.clone(),
            }))
        }
        #[cfg(not(feature = "http-notifier"))]
        {
            tracing::warn!(target: "tower_otp", tenant = %tenant.id, url = %hook.url, "tenant webhook configured but the http-notifier feature is off; events stay local");
            Ok(Arc::clone(&self.base.events))
        }
    }
}

impl<S: Store> SiteSource for TenantSites<S> {
    fn site<'a>(&'a self, parts: &'a Parts) -> BoxFuture<'a, Result<Arc<Site>, Problem>> {
        Box::pin(self.resolve(parts))
    }

    fn cached_site(&self, parts: &Parts) -> Option<Result<Arc<Site>, Problem>> {
        self.cached(parts)
    }

    fn finished(&self, site: &Site, latency: Duration, code: Option<&str>) {
        if let Some(tenant) = &site.tenant {
            self.tenants.record_request(tenant, latency, code);
        }
    }

    fn count(&self, site: &Site, field: UsageField, delta: i64) {
        if let Some(tenant) = &site.tenant {
            self.tenants.count_usage(tenant, field, delta);
        }
    }
}

/// The router's events, and a tenant's subscribed ones to its webhook.
#[cfg(feature = "http-notifier")]
struct TenantEvents {
    base: Arc<dyn EventSink>,
    hook: Arc<dyn EventSink>,
    events: Vec<String>,
}

#[cfg(feature = "http-notifier")]
impl fmt::Debug for TenantEvents {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TenantEvents")
            .field("hook", &self.hook)
            .field("events", &self.events)
            .finish_non_exhaustive()
    }
}

#[cfg(feature = "http-notifier")]
impl EventSink for TenantEvents {
    fn emit(&self, event: &Event) {
        self.base.emit(event);
        if self.events.iter().any(|e| e == event.kind.as_str()) {
            self.hook.emit(event);
        }
    }
}
