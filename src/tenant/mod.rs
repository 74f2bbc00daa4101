//! A multi-tenant OTP service: many customer apps ("tenants") on one
//! deployment, each with its own API keys, configuration, limits, quotas,
//! CORS origins, templates and webhook (DESIGN.md, "Multi-tenant service").
//!
//! The pieces, each usable on its own:
//!
//! * [`TenantConfig`] — one tenant's settings as JSON, validated into a
//!   [`ConfigError`](crate::error::ConfigError) naming the field.
//! * [`Tenants`] — tenant records over a [`TenantStore`](crate::store::TenantStore)
//!   (versioned config, status, API keys), cached per instance for at most
//!   5 s; the tenants' [`Analytics`] and usage ([`usage`]).
//! * [`OtpRouterBuilder::tenants`](crate::otp::OtpRouterBuilder::tenants) —
//!   the login router running each request under its API key's tenant.
//! * [`Tenants::cors_layer`] — CORS from the tenants' origins.
//! * [`AdminRouter`] — the admin API; [`SignupRouter`] — self-service signup.
//!
//! The tenant API is three layers, outermost first: the API-key layer
//! (letting preflights and health checks through, [`key_free`]), the CORS
//! layer (which reads the identity the key layer found), the router (which
//! reads it too):
//!
//! ```
//! use http::{Request, StatusCode};
//! use http_body_util::Full;
//! use tower::{ServiceBuilder, ServiceExt};
//! use tower_otp::api_key::{ApiKeyLayer, ApiKeys};
//! use tower_otp::client_ip::PeerAddr;
//! use tower_otp::notify::MemoryNotifier;
//! use tower_otp::otp::OtpRouter;
//! use tower_otp::store::MemoryStore;
//! use tower_otp::tenant::{TenantConfig, Tenants, key_free};
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let store = MemoryStore::new();
//! let keys = ApiKeys::builder(store.clone()).build()?;
//! let tenants = Tenants::builder(store.clone(), keys.clone()).build()?;
//! let notifier = MemoryNotifier::new();
//! let router = OtpRouter::builder(store, notifier.clone())
//!     .secret("9f2c47e1b8a03d56c4e7f1a2b9d80e3c")
//!     .tenants(tenants.clone())
//!     .build()?;
//! let api = ServiceBuilder::new()
//!     .layer(ApiKeyLayer::builder(keys).exempt(key_free).build()?)
//!     .layer(tenants.cors_layer())
//!     .service(router);
//!
//! let config = TenantConfig::from_json(br#"{"code_length":8}"#, Default::default())?;
//! tenants.create("acme", "Acme Inc.", config).await?;
//! let key = tenants.issue_key("acme", "backend", Vec::new()).await?;
//! let mut req = Request::post("/otp/request")
//!     .header("content-type", "application/json")
//!     .header("x-api-key", key.key())
//!     .body(Full::new(bytes::Bytes::from_static(br#"{"email":"ada@example.com"}"#)))?;
//! req.extensions_mut().insert(PeerAddr(([192, 0, 2, 1], 4000).into()));
//! assert_eq!(api.oneshot(req).await?.status(), StatusCode::ACCEPTED);
//! assert_eq!(notifier.last_code("ada@example.com").unwrap().len(), 8);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```

mod admin;
mod analytics;
mod config;
mod cors;
mod signup;
mod sites;
mod sketch;
mod tenants;
pub mod usage;

pub use admin::{
    ADMIN_BODY_LIMIT, ANALYTICS_WINDOW_SECS, AdminRouter, AdminRouterBuilder,
    DEFAULT_ANALYTICS_WINDOW, DEFAULT_ROTATION_GRACE, MAX_ROTATION_GRACE,
};
pub use analytics::{
    Analytics, AnalyticsBuilder, AnalyticsReport, DEFAULT_MAX_TENANTS, DEFAULT_MAX_WINDOW,
    LatencyPercentiles, SLOT_SECS,
};
pub use config::{
    EmailTemplateConfig, MAX_CONFIG_BYTES, Quotas, Rate, SmsTemplate, TenantConfig, TenantLimits,
    TenantTemplates, WEBHOOK_EVENTS, WebhookConfig, WebhookUrls,
};
pub use cors::{PREFLIGHT_MAX_AGE, key_free};
pub use signup::{SignupRouter, SignupRouterBuilder};
pub(crate) use sites::TenantSites;
pub use sketch::{LatencySketch, RELATIVE_ACCURACY, SketchFieldError, nearest_rank};
pub use tenants::{
    DEFAULT_TENANT_CACHE_TTL, FLUSH_EVERY, MAX_TENANT_CACHE_TTL, Tenant, TenantError, TenantStatus,
    Tenants, TenantsBuilder, valid_tenant_id,
};
