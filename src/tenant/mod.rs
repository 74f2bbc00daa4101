//! A multi-tenant OTP service: many customer apps ("tenants") on one
//! deployment, each with its own API keys, configuration, limits, quotas,
//! CORS origins, templates and webhook (DESIGN.md, "Multi-tenant service").

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
