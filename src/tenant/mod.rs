//! A multi-tenant OTP service: many customer apps ("tenants") on one
//! deployment, each with its own API keys, configuration, limits, quotas,
//! CORS origins, templates and webhook (DESIGN.md, "Multi-tenant service").

mod admin;
mod config;
mod cors;
mod signup;
mod sites;
mod tenants;
pub mod usage;

pub use admin::{
    ADMIN_BODY_LIMIT, ANALYTICS_WINDOW_SECS, AdminRouter, AdminRouterBuilder,
    DEFAULT_ANALYTICS_WINDOW, DEFAULT_ROTATION_GRACE, MAX_ROTATION_GRACE,
};
pub use config::{
    EmailTemplateConfig, MAX_CONFIG_BYTES, Quotas, Rate, SmsTemplate, TenantConfig, TenantLimits,
    TenantTemplates, WEBHOOK_EVENTS, WebhookConfig, WebhookUrls,
};
pub use cors::{PREFLIGHT_MAX_AGE, key_free};
pub use signup::{SignupRouter, SignupRouterBuilder};
pub(crate) use sites::TenantSites;
pub use tenants::{
    DEFAULT_TENANT_CACHE_TTL, MAX_TENANT_CACHE_TTL, Tenant, TenantError, TenantStatus, Tenants,
    TenantsBuilder, valid_tenant_id,
};
