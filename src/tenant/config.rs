//! [`TenantConfig`]: one tenant's settings as JSON (DESIGN.md, "Config
//! field names"), parsed and validated into a [`ConfigError`] naming the
//! field, and turned into the router's [`OtpConfig`].

use std::collections::BTreeSet;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::ConfigError;
use crate::notify::Channel;
use crate::notify::template::{EmailTemplate, Template, Templates};
use crate::otp::OtpConfig;
use crate::quota::Quota;
use crate::webhook::WebhookSecret;

/// Events a tenant's webhook may subscribe to.
pub const WEBHOOK_EVENTS: [&str; 11] = [
    "otp.requested",
    "otp.sent",
    "otp.delivery_failed",
    "otp.verified",
    "otp.failed",
    "otp.locked",
    "otp.country_refused",
    "rate_limit.exceeded",
    "quota.exceeded",
    "token.refreshed",
    "token.reuse_detected",
];

/// Placeholders a tenant's templates may use.
const PLACEHOLDERS: [&str; 3] = ["code", "app_name", "minutes"];

/// Largest config document accepted, in bytes.
pub const MAX_CONFIG_BYTES: usize = 64 * 1024;

/// `n` requests per `per_secs` seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rate {
    /// Requests per window (1–1 000 000).
    pub n: u32,
    /// The window in seconds (1 s – 31 days).
    pub per_secs: u64,
}

impl Rate {
    fn quota(self) -> Quota {
        Quota::new(self.n, Duration::from_secs(self.per_secs))
    }
}

/// A tenant's rate limits (DESIGN.md defaults).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TenantLimits {
    /// Code requests per identifier (default 3 per hour).
    pub request_per_identifier: Rate,
    /// Code requests per client IP (default 5 per hour).
    pub request_per_ip: Rate,
    /// Verifications per identifier (default 5 per hour).
    pub verify_per_identifier: Rate,
    /// Minimum seconds between two codes to one identifier (default 30, at most 3600).
    pub resend_cooldown_secs: u64,
}

impl Default for TenantLimits {
    fn default() -> Self {
        let hourly = |n| Rate { n, per_secs: 3600 };
        Self {
            request_per_identifier: hourly(3),
            request_per_ip: hourly(5),
            verify_per_identifier: hourly(5),
            resend_cooldown_secs: 30,
        }
    }
}

/// Message quotas per UTC day and calendar month (none by default).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Quotas {
    /// Messages per UTC day.
    pub daily: Option<u64>,
    /// Messages per calendar month (UTC).
    pub monthly: Option<u64>,
}

/// The SMS template.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmsTemplate {
    /// The text, with `{{code}}` (also used for WhatsApp).
    pub text: String,
}

/// The email template.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailTemplateConfig {
    /// The subject (one line).
    pub subject: String,
    /// The plain-text body, with `{{code}}`.
    pub text: String,
    /// The HTML body, with `{{code}}` (values are HTML-escaped).
    pub html: String,
}

/// A tenant's message templates (the crate's English defaults where unset).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TenantTemplates {
    /// SMS (and WhatsApp) text.
    pub sms: Option<SmsTemplate>,
    /// Email subject and bodies.
    pub email: Option<EmailTemplateConfig>,
}

/// Where a tenant's events go: a Standard Webhooks endpoint.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// `https://…` (plain `http://` only when the server allows it).
    pub url: String,
    /// The signing secret, `whsec_<base64>` (24–64 bytes). Never shown by
    /// the admin API once set.
    #[serde(default)]
    pub secret: String,
    /// The event types delivered (see [`WEBHOOK_EVENTS`]).
    pub events: Vec<String>,
}

impl std::fmt::Debug for WebhookConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookConfig")
            .field("url", &self.url)
            .field("secret", &"<redacted>")
            .field("events", &self.events)
            .finish()
    }
}

/// Whether tenants' webhooks may use plain `http://` (development and
/// tests only; `WEBHOOK_ALLOW_HTTP=1` in the reference server).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum WebhookUrls {
    /// Only `https://` (the default).
    #[default]
    HttpsOnly,
    /// `http://` too.
    AllowHttp,
}

/// One tenant's settings, as JSON (DESIGN.md, "Config field names"); every
/// field has DESIGN.md's default, so `{}` is a valid config.
///
/// ```
/// use tower_otp::tenant::{TenantConfig, WebhookUrls};
///
/// let config = TenantConfig::from_json(
///     br#"{"code_length":9,"access_ttl_secs":25200,"quotas":{"daily":1000}}"#,
///     WebhookUrls::HttpsOnly,
/// )?;
/// assert_eq!(config.code_length, 9);
/// assert_eq!(config.max_attempts, 5); // the default
///
/// let err = TenantConfig::from_json(br#"{"limits":{"request_per_ip":{"n":0,"per_secs":60}}}"#,
///     WebhookUrls::HttpsOnly).unwrap_err();
/// assert_eq!(err.setting, "limits.request_per_ip.n");
/// # Ok::<(), tower_otp::error::ConfigError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct TenantConfig {
    /// Digits per code, 6–10 (default 6).
    pub code_length: u8,
    /// Code lifetime in seconds, 60–3600 (default 600).
    pub code_ttl_secs: u64,
    /// Verification attempts per code, 1–10 (default 5).
    pub max_attempts: u32,
    /// Access-token lifetime in seconds, 60–86 400 (default 900).
    pub access_ttl_secs: u64,
    /// A session's idle timeout in seconds — it ends when its refresh token
    /// goes unused this long — from the access-token lifetime to 90 days
    /// (default 30 days).
    pub refresh_ttl_secs: u64,
    /// A session's absolute lifetime in seconds, refreshed or not, from the
    /// access-token lifetime to 400 days (default 30 days).
    pub session_max_age_secs: u64,
    /// `{{app_name}}` in messages (1–64 characters; default `"tower-otp"`).
    pub app_name: String,
    /// Channels clients may ask for (default `["sms","email"]`).
    pub channels: Vec<Channel>,
    /// When set, only these country calling codes (e.g. `"1"`, `"44"`).
    pub allowed_calling_codes: Option<Vec<String>>,
    /// Rate limits.
    pub limits: TenantLimits,
    /// Message quotas.
    pub quotas: Quotas,
    /// Browser origins allowed to call the API (`https://app.example.com`).
    pub cors_origins: Vec<String>,
    /// Message templates.
    pub templates: TenantTemplates,
    /// The tenant's webhook, if any.
    pub webhook: Option<WebhookConfig>,
}

impl Default for TenantConfig {
    fn default() -> Self {
        let base = OtpConfig::default();
        Self {
            code_length: base.code_length,
            code_ttl_secs: base.code_ttl.as_secs(),
            max_attempts: base.max_attempts,
            access_ttl_secs: base.access_ttl.as_secs(),
            refresh_ttl_secs: base.refresh_ttl.as_secs(),
            session_max_age_secs: base.session_max_age.as_secs(),
            app_name: base.app_name,
            channels: base.channels,
            allowed_calling_codes: None,
            limits: TenantLimits::default(),
            quotas: Quotas::default(),
            cors_origins: Vec::new(),
            templates: TenantTemplates::default(),
            webhook: None,
        }
    }
}

impl TenantConfig {
    /// Parses and validates a config document; an error names the field.
    pub fn from_json(bytes: &[u8], urls: WebhookUrls) -> Result<Self, ConfigError> {
        if bytes.len() > MAX_CONFIG_BYTES {
            return Err(ConfigError::new(
                "config",
                format!("larger than {MAX_CONFIG_BYTES} bytes"),
            ));
        }
        let value: Value = serde_json::from_slice(bytes)
            .map_err(|e| ConfigError::new("config", format!("not JSON: {e}")))?;
        Self::from_value(value, urls)
    }

    /// Parses and validates a config given as a JSON value.
    pub fn from_value(value: Value, urls: WebhookUrls) -> Result<Self, ConfigError> {
        // serde would also read a struct from an array, by position.
        if !value.is_object() {
            return Err(ConfigError::new("config", "must be a JSON object"));
        }
        let config: Self = serde_path_to_error::deserialize(value).map_err(parse_error)?;
        config.validate(urls)?;
        Ok(config)
    }

    /// This config with `patch` applied as a JSON merge patch (RFC 7396:
    /// members replace, `null` restores the default), validated.
    pub fn patched(&self, patch: &Value, urls: WebhookUrls) -> Result<Self, ConfigError> {
        if !patch.is_object() {
            return Err(ConfigError::new("config", "must be a JSON object"));
        }
        let mut doc =
            serde_json::to_value(self).map_err(|e| ConfigError::new("config", e.to_string()))?;
        // A webhook given without a secret keeps the one it has.
        merge_patch(&mut doc, patch);
        Self::from_value(doc, urls)
    }

    /// The config as the admin API shows it: the webhook secret left out.
    pub fn public_json(&self) -> Value {
        let mut doc = serde_json::to_value(self).unwrap_or(Value::Null);
        if let Some(hook) = doc.get_mut("webhook").and_then(Value::as_object_mut) {
            hook.remove("secret");
        }
        doc
    }

    /// Refuses settings the service cannot run with, naming the field.
    pub fn validate(&self, urls: WebhookUrls) -> Result<(), ConfigError> {
        let range = |field: &'static str, v: u64, lo: u64, hi: u64| {
            if (lo..=hi).contains(&v) {
                Ok(())
            } else {
                Err(ConfigError::new(
                    field,
                    format!("must be between {lo} and {hi}, not {v}"),
                ))
            }
        };
        range("code_length", self.code_length.into(), 6, 10)?;
        range("code_ttl_secs", self.code_ttl_secs, 60, 3600)?;
        range("max_attempts", self.max_attempts.into(), 1, 10)?;
        range("access_ttl_secs", self.access_ttl_secs, 60, 86_400)?;
        range(
            "refresh_ttl_secs",
            self.refresh_ttl_secs,
            self.access_ttl_secs,
            90 * 86_400,
        )?;
        range(
            "session_max_age_secs",
            self.session_max_age_secs,
            self.access_ttl_secs,
            400 * 86_400,
        )?;
        let name_len = self.app_name.chars().count();
        if !(1..=64).contains(&name_len) || self.app_name.chars().any(char::is_control) {
            return Err(ConfigError::new(
                "app_name",
                "must be 1–64 characters without control characters",
            ));
        }
        if self.channels.is_empty() {
            return Err(ConfigError::new("channels", "enable at least one channel"));
        }
        let distinct: BTreeSet<_> = self.channels.iter().map(|c| c.as_str()).collect();
        if distinct.len() != self.channels.len() {
            return Err(ConfigError::new("channels", "names a channel twice"));
        }
        if let Some(codes) = &self.allowed_calling_codes {
            if codes.is_empty() || codes.len() > 300 {
                return Err(ConfigError::new(
                    "allowed_calling_codes",
                    "must list 1–300 calling codes (leave it out to allow all)",
                ));
            }
            for (i, code) in codes.iter().enumerate() {
                if code.is_empty() || code.len() > 4 || !code.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(ConfigError::at(
                        format!("allowed_calling_codes[{i}]"),
                        "must be 1–4 digits, such as \"1\" or \"44\"",
                    ));
                }
            }
        }
        let l = &self.limits;
        for (field, rate) in [
            ("limits.request_per_identifier", l.request_per_identifier),
            ("limits.request_per_ip", l.request_per_ip),
            ("limits.verify_per_identifier", l.verify_per_identifier),
        ] {
            if !(1..=1_000_000).contains(&rate.n) {
                return Err(ConfigError::at(
                    format!("{field}.n"),
                    "must be between 1 and 1000000",
                ));
            }
            if !(1..=31 * 86_400).contains(&rate.per_secs) {
                return Err(ConfigError::at(
                    format!("{field}.per_secs"),
                    "must be between 1 and 2678400 (31 days)",
                ));
            }
        }
        range(
            "limits.resend_cooldown_secs",
            l.resend_cooldown_secs,
            0,
            3600,
        )?;
        for (field, quota) in [
            ("quotas.daily", self.quotas.daily),
            ("quotas.monthly", self.quotas.monthly),
        ] {
            if let Some(q) = quota {
                range(field, q, 1, 1_000_000_000)?;
            }
        }
        if self.cors_origins.len() > 32 {
            return Err(ConfigError::new("cors_origins", "at most 32 origins"));
        }
        for (i, origin) in self.cors_origins.iter().enumerate() {
            if !is_origin(origin) {
                return Err(ConfigError::at(
                    format!("cors_origins[{i}]"),
                    "must be an origin such as \"https://app.example.com\" (scheme, lowercase host, optional port; no path)",
                ));
            }
        }
        if let Some(sms) = &self.templates.sms {
            check_template("templates.sms.text", &sms.text, 1600, true)?;
        }
        if let Some(email) = &self.templates.email {
            if email.subject.contains(['\r', '\n']) {
                return Err(ConfigError::new(
                    "templates.email.subject",
                    "must be one line",
                ));
            }
            check_template("templates.email.subject", &email.subject, 200, false)?;
            check_template("templates.email.text", &email.text, 32 * 1024, true)?;
            check_template("templates.email.html", &email.html, 32 * 1024, true)?;
        }
        if let Some(hook) = &self.webhook {
            check_webhook_url(&hook.url, urls)?;
            WebhookSecret::parse(&hook.secret)
                .map_err(|e| ConfigError::at("webhook.secret", e.reason))?;
            if hook.events.is_empty() {
                return Err(ConfigError::new(
                    "webhook.events",
                    "subscribe to at least one event",
                ));
            }
            for (i, event) in hook.events.iter().enumerate() {
                if !WEBHOOK_EVENTS.contains(&event.as_str()) {
                    return Err(ConfigError::at(
                        format!("webhook.events[{i}]"),
                        format!("unknown event; one of {}", WEBHOOK_EVENTS.join(", ")),
                    ));
                }
            }
        }
        Ok(())
    }

    /// The router settings for this tenant: `base` (the server's settings)
    /// with this config's fields in place.
    pub fn otp_config(&self, base: &OtpConfig) -> OtpConfig {
        let mut c = base.clone();
        c.code_length = self.code_length;
        c.allow_weak_codes = false;
        c.code_ttl = Duration::from_secs(self.code_ttl_secs);
        c.max_attempts = self.max_attempts;
        c.access_ttl = Duration::from_secs(self.access_ttl_secs);
        c.refresh_ttl = Duration::from_secs(self.refresh_ttl_secs);
        c.session_max_age = Duration::from_secs(self.session_max_age_secs);
        c.app_name.clone_from(&self.app_name);
        c.channels.clone_from(&self.channels);
        c.allowed_calling_codes
            .clone_from(&self.allowed_calling_codes);
        c.limits.request_per_identifier = self.limits.request_per_identifier.quota();
        c.limits.request_per_ip = self.limits.request_per_ip.quota();
        c.limits.verify_per_identifier = self.limits.verify_per_identifier.quota();
        c.limits.resend_cooldown = Duration::from_secs(self.limits.resend_cooldown_secs);
        c
    }

    /// The tenant's message templates, when it has any of its own.
    pub fn message_templates(&self) -> Option<Templates> {
        let t = &self.templates;
        if t.sms.is_none() && t.email.is_none() {
            return None;
        }
        let mut b = Templates::builder();
        if let Some(sms) = &t.sms {
            b = b.text(Channel::Sms, "", Template::new(&sms.text)).text(
                Channel::Whatsapp,
                "",
                Template::new(&sms.text),
            );
        }
        if let Some(e) = &t.email {
            b = b.email(
                "",
                EmailTemplate::new(e.subject.as_str(), e.text.as_str(), e.html.as_str()),
            );
        }
        b.build().ok()
    }
}

fn parse_error(e: serde_path_to_error::Error<serde_json::Error>) -> ConfigError {
    let path = e.path().to_string();
    let inner = e.into_inner();
    // serde_json appends " at line L column C"; the path says where.
    let reason = inner.to_string();
    let reason = match reason.rfind(" at line ") {
        Some(i) if inner.line() > 0 => reason[..i].to_owned(),
        _ => reason,
    };
    let setting = if path == "." {
        "config".to_owned()
    } else {
        path
    };
    ConfigError::at(setting, reason)
}

/// RFC 7396 JSON merge patch of `patch` into `doc`.
fn merge_patch(doc: &mut Value, patch: &Value) {
    let Value::Object(members) = patch else {
        *doc = patch.clone();
        return;
    };
    if !doc.is_object() {
        *doc = Value::Object(serde_json::Map::new());
    }
    if let Value::Object(target) = doc {
        for (name, value) in members {
            if value.is_null() {
                target.remove(name);
            } else {
                merge_patch(target.entry(name.clone()).or_insert(Value::Null), value);
            }
        }
    }
}

/// `scheme://host[:port]` with scheme `http` or `https`, a lowercase host
/// of letters, digits, `-` and `.`, and no path, query or trailing slash.
pub(crate) fn is_origin(s: &str) -> bool {
    let Some((scheme, rest)) = s.split_once("://") else {
        return false;
    };
    if scheme != "https" && scheme != "http" {
        return false;
    }
    let (host, port) = match rest.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (rest, None),
    };
    let host_ok = (1..=253).contains(&host.len())
        && host
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        && !host.starts_with(['.', '-'])
        && !host.ends_with(['.', '-']);
    let port_ok = port.is_none_or(|p| {
        !p.is_empty()
            && p.len() <= 5
            && !p.starts_with('0')
            && p.bytes().all(|b| b.is_ascii_digit())
            && p.parse::<u16>().is_ok()
    });
    host_ok && port_ok
}

fn check_template(
    field: &'static str,
    source: &str,
    max: usize,
    needs_code: bool,
) -> Result<(), ConfigError> {
    if source.trim().is_empty() || source.len() > max {
        return Err(ConfigError::new(
            field,
            format!("must be 1–{max} bytes and not blank"),
        ));
    }
    let template = Template::new(source);
    let names = template.placeholders();
    if let Some(unknown) = names.iter().find(|n| !PLACEHOLDERS.contains(n)) {
        return Err(ConfigError::at(
            field,
            format!(
                "unknown placeholder {{{{{unknown}}}}}; use {{{{code}}}}, {{{{app_name}}}} or {{{{minutes}}}}"
            ),
        ));
    }
    if needs_code && !names.contains(&"code") {
        return Err(ConfigError::new(field, "must contain {{code}}"));
    }
    Ok(())
}

fn check_webhook_url(url: &str, urls: WebhookUrls) -> Result<(), ConfigError> {
    let bad = |why: &'static str| Err(ConfigError::new("webhook.url", why));
    let Ok(uri) = url.parse::<http::Uri>() else {
        return bad("is not a URL");
    };
    match (uri.scheme_str(), urls) {
        (Some("https"), _) | (Some("http"), WebhookUrls::AllowHttp) => {}
        (Some("http"), WebhookUrls::HttpsOnly) => {
            return bad("must be https:// (this server does not allow http:// webhooks)");
        }
        _ => return bad("must be an https:// URL"),
    }
    match uri.authority() {
        Some(a) if !a.host().is_empty() && !a.as_str().contains('@') => {}
        _ => return bad("needs a host and no user information"),
    }
    if url.len() > 2048 {
        return bad("must be at most 2048 bytes");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const HOOK_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

    fn parse(v: Value) -> Result<TenantConfig, ConfigError> {
        TenantConfig::from_json(v.to_string().as_bytes(), WebhookUrls::HttpsOnly)
    }

    fn field(v: Value) -> String {
        parse(v).unwrap_err().setting.into_owned()
    }

    #[test]
    fn empty_is_the_defaults() {
        let c = parse(json!({})).unwrap();
        assert_eq!(c, TenantConfig::default());
        let otp = c.otp_config(&OtpConfig::default());
        assert_eq!(otp.code_length, 6);
        assert_eq!(otp.limits, OtpConfig::default().limits);
        assert_eq!(otp.code_ttl, OtpConfig::default().code_ttl);
    }

    #[test]
    fn every_design_field_parses_and_applies() {
        let c = parse(json!({
            "code_length": 9, "code_ttl_secs": 300, "max_attempts": 3,
            "access_ttl_secs": 25200, "refresh_ttl_secs": 86400, "app_name": "Acme",
            "channels": ["sms", "whatsapp"], "allowed_calling_codes": ["1", "44"],
            "limits": {"request_per_identifier": {"n": 2, "per_secs": 600},
                       "request_per_ip": {"n": 9, "per_secs": 60},
                       "verify_per_identifier": {"n": 4, "per_secs": 60},
                       "resend_cooldown_secs": 10},
            "quotas": {"daily": 100, "monthly": 2000},
            "cors_origins": ["https://app.acme.test", "http://localhost:5173"],
            "templates": {"sms": {"text": "{{code}} is your {{app_name}} code"},
                          "email": {"subject": "Code", "text": "{{code}}", "html": "<b>{{code}}</b>"}},
            "webhook": {"url": "https://hooks.acme.test/otp", "secret": HOOK_SECRET,
                        "events": ["otp.verified", "quota.exceeded"]}
        }))
        .unwrap();
        let otp = c.otp_config(&OtpConfig::default());
        assert_eq!(otp.code_length, 9);
        assert_eq!(otp.access_ttl, Duration::from_secs(25200));
        assert_eq!(otp.refresh_ttl, Duration::from_secs(86400));
        assert_eq!(otp.code_ttl, Duration::from_secs(300));
        assert_eq!(otp.max_attempts, 3);
        assert_eq!(otp.app_name, "Acme");
        assert_eq!(otp.channels, [Channel::Sms, Channel::Whatsapp]);
        assert_eq!(
            otp.allowed_calling_codes.as_deref(),
            Some(&["1".to_owned(), "44".to_owned()][..])
        );
        assert_eq!(
            otp.limits.request_per_identifier,
            Quota::new(2, Duration::from_secs(600))
        );
        assert_eq!(otp.limits.request_per_ip, Quota::per_minute(9));
        assert_eq!(otp.limits.verify_per_identifier, Quota::per_minute(4));
        assert_eq!(otp.limits.resend_cooldown, Duration::from_secs(10));
        assert_eq!(
            c.quotas,
            Quotas {
                daily: Some(100),
                monthly: Some(2000)
            }
        );
        let templates = c.message_templates().unwrap();
        let msg =
            crate::notify::Message::new(Channel::Sms, "+1", "123456789", Duration::from_secs(300))
                .with_app_name("Acme");
        assert_eq!(templates.render_text(&msg), "123456789 is your Acme code");
        assert!(TenantConfig::default().message_templates().is_none());
    }

    #[test]
    fn errors_name_the_field() {
        assert_eq!(field(json!({"code_length": 5})), "code_length");
        assert_eq!(field(json!({"code_length": 11})), "code_length");
        assert_eq!(field(json!({"code_length": "9"})), "code_length");
        assert_eq!(field(json!({"code_lenght": 9})), "code_lenght");
        assert_eq!(field(json!({"max_attempts": 0})), "max_attempts");
        assert_eq!(field(json!({"access_ttl_secs": 10})), "access_ttl_secs");
        assert_eq!(
            field(json!({"access_ttl_secs": 7200, "refresh_ttl_secs": 3600})),
            "refresh_ttl_secs"
        );
        assert_eq!(field(json!({"app_name": ""})), "app_name");
        assert_eq!(field(json!({"app_name": "a\nb"})), "app_name");
        assert_eq!(field(json!({"channels": []})), "channels");
        assert_eq!(field(json!({"channels": ["sms", "sms"]})), "channels");
        assert_eq!(field(json!({"channels": ["fax"]})), "channels[0]");
        assert_eq!(
            field(json!({"allowed_calling_codes": ["1", "+44"]})),
            "allowed_calling_codes[1]"
        );
        assert_eq!(
            field(json!({"limits": {"request_per_ip": {"n": 0, "per_secs": 60}}})),
            "limits.request_per_ip.n"
        );
        assert_eq!(
            field(json!({"limits": {"verify_per_identifier": {"n": 1, "per_secs": 0}}})),
            "limits.verify_per_identifier.per_secs"
        );
        assert_eq!(
            field(json!({"limits": {"request_per_ip": {"n": 1}}})),
            "limits.request_per_ip"
        );
        assert_eq!(
            field(json!({"limits": {"resend_cooldown_secs": -1}})),
            "limits.resend_cooldown_secs"
        );
        assert_eq!(field(json!({"quotas": {"daily": 0}})), "quotas.daily");
        assert_eq!(
            field(json!({"cors_origins": ["https://a.test/"]})),
            "cors_origins[0]"
        );
        assert_eq!(
            field(json!({"cors_origins": ["https://ok.test", "*"]})),
            "cors_origins[1]"
        );
        assert_eq!(
            field(json!({"templates": {"sms": {"text": "no code here"}}})),
            "templates.sms.text"
        );
        assert_eq!(
            field(json!({"templates": {"sms": {"text": "{{code}} {{secret}}"}}})),
            "templates.sms.text"
        );
        assert_eq!(
            field(
                json!({"templates": {"email": {"subject": "a\nb", "text": "{{code}}", "html": "{{code}}"}}})
            ),
            "templates.email.subject"
        );
        let hook = |url: &str, secret: &str, events: Value| json!({"webhook": {"url": url, "secret": secret, "events": events}});
        assert_eq!(
            field(hook(
                "http://h.test/x",
                HOOK_SECRET,
                json!(["otp.verified"])
            )),
            "webhook.url"
        );
        assert_eq!(
            field(hook("ftp://h.test/x", HOOK_SECRET, json!(["otp.verified"]))),
            "webhook.url"
        );
        assert_eq!(
            field(hook(
                "https://u:p@h.test/x",
                HOOK_SECRET,
                json!(["otp.verified"])
            )),
            "webhook.url"
        );
        assert_eq!(
            field(hook(
                "https://h.test/x",
                "whsec_short",
                json!(["otp.verified"])
            )),
            "webhook.secret"
        );
        assert_eq!(
            field(hook("https://h.test/x", HOOK_SECRET, json!([]))),
            "webhook.events"
        );
        assert_eq!(
            field(hook("https://h.test/x", HOOK_SECRET, json!(["otp.nope"]))),
            "webhook.events[0]"
        );
        let http = hook("http://127.0.0.1:9/x", HOOK_SECRET, json!(["otp.verified"])).to_string();
        assert!(TenantConfig::from_json(http.as_bytes(), WebhookUrls::AllowHttp).is_ok());
        assert_eq!(
            TenantConfig::from_json(b"[1]", WebhookUrls::HttpsOnly)
                .unwrap_err()
                .setting,
            "config"
        );
        assert_eq!(
            TenantConfig::from_json(b"{} x", WebhookUrls::HttpsOnly)
                .unwrap_err()
                .setting,
            "config"
        );
        let big = vec![b' '; MAX_CONFIG_BYTES + 1];
        assert_eq!(
            TenantConfig::from_json(&big, WebhookUrls::HttpsOnly)
                .unwrap_err()
                .setting,
            "config"
        );
    }

    #[test]
    fn merge_patch_replaces_members_and_null_restores_defaults() {
        let c = parse(json!({"code_length": 9, "limits": {"request_per_ip": {"n": 9, "per_secs": 60}},
            "webhook": {"url": "https://h.test/a", "secret": HOOK_SECRET, "events": ["otp.verified"]}}))
        .unwrap();
        let p = c
            .patched(
                &json!({"access_ttl_secs": 25200, "limits": {"resend_cooldown_secs": 5},
                "webhook": {"url": "https://h.test/b"}}),
                WebhookUrls::HttpsOnly,
            )
            .unwrap();
        assert_eq!(p.code_length, 9);
        assert_eq!(p.access_ttl_secs, 25200);
        assert_eq!(
            p.limits.request_per_ip.n, 9,
            "a nested member not named is kept"
        );
        assert_eq!(p.limits.resend_cooldown_secs, 5);
        let hook = p.webhook.as_ref().unwrap();
        assert_eq!(hook.url, "https://h.test/b");
        assert_eq!(hook.secret, HOOK_SECRET, "the secret is kept");
        let q = p
            .patched(
                &json!({"code_length": null, "webhook": null}),
                WebhookUrls::HttpsOnly,
            )
            .unwrap();
        assert_eq!(q.code_length, 6);
        assert!(q.webhook.is_none());
        assert_eq!(
            p.patched(&json!({"code_length": 4}), WebhookUrls::HttpsOnly)
                .unwrap_err()
                .setting,
            "code_length"
        );
        assert!(p.patched(&json!([1]), WebhookUrls::HttpsOnly).is_err());
    }

    #[test]
    fn the_public_view_hides_the_webhook_secret() {
        let c = parse(json!({"webhook": {"url": "https://h.test/a", "secret": HOOK_SECRET, "events": ["otp.verified"]}})).unwrap();
        let shown = c.public_json();
        assert_eq!(shown["webhook"]["url"], "https://h.test/a");
        assert!(shown["webhook"].get("secret").is_none());
        assert!(!shown.to_string().contains("whsec_"));
        assert!(!format!("{c:?}").contains("whsec_"));
    }

    #[test]
    fn origins() {
        for ok in [
            "https://a.test",
            "http://localhost:5173",
            "https://x-y.a.test:443",
            "http://127.0.0.1:8080",
        ] {
            assert!(is_origin(ok), "{ok}");
        }
        for bad in [
            "https://A.test",
            "https://a.test/",
            "https://a.test:0",
            "https://a.test:99999",
            "a.test",
            "ws://a.test",
            "https://",
            "https://a.test:08",
            "https://.a.test",
            "null",
            "https://a.test?x",
        ] {
            assert!(!is_origin(bad), "{bad}");
        }
    }
}
