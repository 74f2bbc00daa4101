//! A multi-tenant OTP service: many customer apps ("tenants") on one
//! deployment, each with its own API keys, configuration, limits, quotas,
//! CORS origins, templates and webhook (DESIGN.md, "Multi-tenant service").

mod config;

pub use config::{
    EmailTemplateConfig, MAX_CONFIG_BYTES, Quotas, Rate, SmsTemplate, TenantConfig, TenantLimits,
    TenantTemplates, WEBHOOK_EVENTS, WebhookConfig, WebhookUrls,
};
