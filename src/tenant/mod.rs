//! A multi-tenant OTP service: many customer apps ("tenants") on one
//! deployment, each with its own API keys, configuration, limits, quotas,
//! CORS origins, templates and webhook (DESIGN.md, "Multi-tenant service").

mod analytics;
mod config;
mod sketch;

pub use analytics::{
    Analytics, AnalyticsBuilder, AnalyticsReport, DEFAULT_MAX_TENANTS, DEFAULT_MAX_WINDOW,
    LatencyPercentiles, SLOT_SECS,
};
pub use config::{
    EmailTemplateConfig, MAX_CONFIG_BYTES, Quotas, Rate, SmsTemplate, TenantConfig, TenantLimits,
    TenantTemplates, WEBHOOK_EVENTS, WebhookConfig, WebhookUrls,
};
pub use sketch::{LatencySketch, RELATIVE_ACCURACY, SketchFieldError, nearest_rank};
