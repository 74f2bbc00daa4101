//! CORS per tenant, with `tower-http`'s [`CorsLayer`] deciding the origin
//! from the tenants' `cors_origins` (DESIGN.md, "CORS").
//!
//! A preflight carries no API key, so it is answered for an origin that
//! *some* active tenant lists; the real request is checked against the
//! origins of the key's own tenant, and an origin that tenant does not list
//! gets no `Access-Control-Allow-Origin` — the browser cannot read the
//! answer. Layer order, outermost first: the [`ApiKeyLayer`] with
//! [`key_free`] as its exemption (so preflights reach this layer and the
//! identity is in the extensions of real requests), then this layer, then
//! the router.
//!
//! [`ApiKeyLayer`]: crate::api_key::ApiKeyLayer

use std::time::Duration;

use http::header::{AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER};
use http::{HeaderMap, Method, Uri};
use tower_http::cors::{AllowOrigin, CorsLayer};

use super::tenants::{TenantStatus, Tenants};
use crate::api_key::{ApiKeyIdentity, X_API_KEY};
use crate::rate_limit::{RATELIMIT, RATELIMIT_POLICY};
use crate::store::{ApiKeyStore, TenantStore};

/// How long browsers may cache a preflight answer.
pub const PREFLIGHT_MAX_AGE: Duration = Duration::from_secs(600);

/// Whether a request needs no API key in front of the tenant API: a CORS
/// preflight (`OPTIONS` with `Origin` and `Access-Control-Request-Method`)
/// or a health check (`/health/…`, relative to the mount point). For
/// [`ApiKeyLayerBuilder::exempt`](crate::api_key::ApiKeyLayerBuilder::exempt).
pub fn key_free(method: &Method, uri: &Uri, headers: &HeaderMap) -> bool {
    let preflight = method == Method::OPTIONS
        && headers.contains_key(http::header::ORIGIN)
        && headers.contains_key(http::header::ACCESS_CONTROL_REQUEST_METHOD);
    preflight || uri.path().starts_with("/health/")
}

impl<S: TenantStore + ApiKeyStore> Tenants<S> {
    /// The CORS layer of the tenant API: only the methods and headers it
    /// uses, the `RateLimit` fields and `Retry-After` readable by pages,
    /// preflights cached for [`PREFLIGHT_MAX_AGE`], no credentials (keys go
    /// in a header, not cookies). See the [module docs](crate::tenant) for the order
    /// of layers.
    pub fn cors_layer(&self) -> CorsLayer {
        let tenants = self.clone();
        let allow = AllowOrigin::async_predicate(move |origin, parts| {
            let tenants = tenants.clone();
            let who = parts.extensions.get::<ApiKeyIdentity>().cloned();
            let preflight = parts.method == Method::OPTIONS;
            async move {
                let Ok(origin) = origin.to_str() else {
                    return false;
                };
                match who {
                    Some(who) => match tenants.resolve(who.tenant()).await {
                        Ok(Some(t)) => {
                            t.status == TenantStatus::Active
                                && t.config.cors_origins.iter().any(|o| o == origin)
                        }
                        _ => false,
                    },
                    None if preflight => tenants
                        .any_tenant_allows_origin(origin)
                        .await
                        .unwrap_or(false),
                    None => false,
                }
            }
        });
        CorsLayer::new()
            .allow_origin(allow)
            .allow_methods([Method::GET, Method::POST, Method::DELETE])
            .allow_headers([CONTENT_TYPE, AUTHORIZATION, X_API_KEY])
            .expose_headers([RATELIMIT, RATELIMIT_POLICY, RETRY_AFTER])
            .max_age(PREFLIGHT_MAX_AGE)
    }
}
