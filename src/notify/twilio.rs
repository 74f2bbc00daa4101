//! `TwilioSms`: SMS and WhatsApp through Twilio's Messages REST API.

use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, USER_AGENT};
use http::{HeaderValue, Method, Request, StatusCode};
use http_body_util::Full;
use serde::Deserialize;

use super::builder::{request_timeout_option, templates_option};
use super::http_client::{self, Endpoint, HttpOptions};
use super::template::Templates;
use super::{Channel, Delivery, Message, Notifier, NotifyError};
use crate::error::ConfigError;

const DEFAULT_BASE_URL: &str = "https://api.twilio.com";
const PROVIDER: &str = "twilio";

/// How `TwilioSms` authenticates (HTTP basic auth). Redacted from `Debug`.
#[derive(Clone)]
#[non_exhaustive]
pub enum TwilioAuth {
    /// The account's auth token (user: the account SID).
    AuthToken(String),
    /// An API key (`SK…`) and its secret — Twilio's recommendation for
    /// production, revocable without touching the account.
    ApiKey {
        /// The key's SID, `SK` + 32 hex digits.
        sid: String,
        /// The key's secret.
        secret: String,
    },
}

impl fmt::Debug for TwilioAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::AuthToken(_) => f.write_str("AuthToken(<redacted>)"),
            Self::ApiKey { sid, .. } => f
                .debug_struct("ApiKey")
                .field("sid", sid)
                .field("secret", &"<redacted>")
                .finish(),
        }
    }
}

/// Who sends: a number (or alphanumeric sender id), or a Messaging Service.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TwilioSender {
    /// `From`: an E.164 number, short code or alphanumeric sender id.
    From(String),
    /// `MessagingServiceSid`: `MG` + 32 hex digits; Twilio picks the number.
    MessagingService(String),
}

/// SMS and WhatsApp through the Twilio Messages API
/// (`POST {base}/2010-04-01/Accounts/{AccountSid}/Messages.json`).
///
/// * [`Channel::Sms`]: `To` = the number, `From` = the sender (or
///   `MessagingServiceSid`), `Body` = the SMS template.
/// * [`Channel::Whatsapp`]: `To` and `From` prefixed `whatsapp:`; the
///   WhatsApp sender is
///   [`whatsapp_from`](TwilioSmsBuilder::whatsapp_from) or else the SMS
///   one. Outside a 24-hour customer window WhatsApp accepts only
///   pre-approved templates: set
///   [`whatsapp_content_sid`](TwilioSmsBuilder::whatsapp_content_sid) to
///   send `ContentSid` with the code as variable `1` instead of a `Body`.
/// * Email and voice are refused (permanent error): route them elsewhere
///   with [`ByChannel`](super::ByChannel).
///
/// Responses: `201`/`200` → [`Delivery`] with the message `sid` (no sid,
/// and a warning log, when the body is cut short, over 64 KiB or late:
/// Twilio took the message all the same, so it is not sent again); a
/// connection lost or a timeout after the request went out →
/// [`MaybeDelivered`](super::NotifyErrorKind::MaybeDelivered), never
/// retried (Twilio has no idempotency key); Twilio
/// error documents map by code and status: `429` / codes 20429, 14107 and
/// every `5xx`, and failures before the request went out (connection
/// refused, connect timeout), are **retryable** (honouring `Retry-After`); `401`/`403` (bad credentials) and every other `4xx` —
/// 21211 invalid `To`, 21610 unsubscribed, 21614 not a mobile number, 21408
/// region not enabled, … — are **permanent**. The Twilio code is the
/// error's [`provider_code`](NotifyError::provider_code).
///
/// ```no_run
/// use std::time::Duration;
/// use tower_otp::notify::{NotifierExt, RetryPolicy, TwilioAuth, TwilioSender, TwilioSms};
///
/// # fn main() -> Result<(), tower_otp::error::ConfigError> {
/// // TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN, TWILIO_FROM from the environment.
/// let sms = TwilioSms::from_env()?.retry(RetryPolicy::default());
///
/// // The same, spelled out, with a shorter request timeout.
/// let sms = TwilioSms::builder(
///     "AC0123456789abcdef0123456789abcdef",
///     TwilioAuth::AuthToken(std::env::var("TWILIO_AUTH_TOKEN").unwrap_or_default()),
///     TwilioSender::From("+15005550006".into()),
/// )
/// .request_timeout(Duration::from_secs(5))
/// .build()?
/// .retry(RetryPolicy::default());
/// # let _ = sms;
/// # Ok(())
/// # }
/// ```
///
/// # Security
///
/// The auth token / key secret is redacted from `Debug`, sent only in the
/// `Authorization` header (marked sensitive) and never logged. Errors carry
/// Twilio's numeric code and the HTTP status, never Twilio's free-text
/// message, which repeats the recipient's number.
#[derive(Clone)]
pub struct TwilioSms {
    account_sid: String,
    auth: TwilioAuth,
    authorization: HeaderValue,
    sender: TwilioSender,
    whatsapp_from: Option<String>,
    whatsapp_content_sid: Option<String>,
    /// The base URL (`https://api.twilio.com`), its timeout and the client.
    endpoint: Endpoint,
    messages_url: String,
    /// `GET` here checks reachability and credentials without sending.
    account_url: String,
    templates: Arc<Templates>,
}

impl fmt::Debug for TwilioSms {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TwilioSms")
            .field("account_sid", &self.account_sid)
            .field("auth", &self.auth)
            .field("sender", &self.sender)
            .field("whatsapp_from", &self.whatsapp_from)
            .field("endpoint", &self.endpoint)
            .finish_non_exhaustive()
    }
}

/// Builds a [`TwilioSms`]; from [`TwilioSms::builder`] or
/// [`TwilioSms::builder_from_env`]. Every setting is checked by
/// [`build`](Self::build).
#[derive(Clone)]
pub struct TwilioSmsBuilder {
    account_sid: String,
    auth: TwilioAuth,
    sender: TwilioSender,
    whatsapp_from: Option<String>,
    whatsapp_content_sid: Option<String>,
    http: HttpOptions,
    templates: Arc<Templates>,
}

impl fmt::Debug for TwilioSmsBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TwilioSmsBuilder")
            .field("account_sid", &self.account_sid)
            .field("auth", &self.auth)
            .field("sender", &self.sender)
            .field("whatsapp_from", &self.whatsapp_from)
            .field("http", &self.http)
            .finish_non_exhaustive()
    }
}

/// `prefix` + 32 hex digits.
fn check_sid(value: &str, prefix: &str, setting: &'static str) -> Result<(), ConfigError> {
    let ok = value.len() == 34
        && value.starts_with(prefix)
        && value[2..].bytes().all(|b| b.is_ascii_hexdigit());
    if ok {
        Ok(())
    } else {
        Err(ConfigError::new(
            setting,
            format!("must be `{prefix}` followed by 32 hex digits"),
        ))
    }
}

fn check_sender(value: &str, setting: &'static str) -> Result<(), ConfigError> {
    if value.is_empty() || value.len() > 64 || value.chars().any(char::is_control) {
        return Err(ConfigError::new(
            setting,
            "must be an E.164 number, short code or sender id",
        ));
    }
    Ok(())
}

impl TwilioSms {
    /// A builder for `account_sid` (`AC` + 32 hex digits), authenticating
    /// with `auth` and sending as `sender`.
    pub fn builder(
        account_sid: impl Into<String>,
        auth: TwilioAuth,
        sender: TwilioSender,
    ) -> TwilioSmsBuilder {
        TwilioSmsBuilder {
            account_sid: account_sid.into(),
            auth,
            sender,
            whatsapp_from: None,
            whatsapp_content_sid: None,
            http: HttpOptions::new(DEFAULT_BASE_URL),
            templates: Arc::new(Templates::default()),
        }
    }

    /// A notifier configured from the environment
    /// ([`builder_from_env`](Self::builder_from_env), then
    /// [`build`](TwilioSmsBuilder::build)).
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::builder_from_env()?.build()
    }

    /// A builder configured from the environment, for settings the
    /// environment does not give (templates, the request timeout):
    ///
    /// | variable | |
    /// |---|---|
    /// | `TWILIO_ACCOUNT_SID` | required, `AC…` |
    /// | `TWILIO_AUTH_TOKEN` | the auth token, **or** … |
    /// | `TWILIO_API_KEY_SID` + `TWILIO_API_KEY_SECRET` | … an API key pair |
    /// | `TWILIO_FROM` | sender number / id, **or** … |
    /// | `TWILIO_MESSAGING_SERVICE_SID` | … a Messaging Service (`MG…`) |
    /// | `TWILIO_WHATSAPP_FROM` | optional WhatsApp sender (default: `TWILIO_FROM`) |
    /// | `TWILIO_BASE_URL` | optional, default `https://api.twilio.com` |
    ///
    /// Empty variables count as unset. The error names what is missing;
    /// what is set but wrong is reported by
    /// [`build`](TwilioSmsBuilder::build).
    pub fn builder_from_env() -> Result<TwilioSmsBuilder, ConfigError> {
        Self::builder_from_vars(|name| std::env::var(name).ok())
    }

    /// [`builder_from_env`](Self::builder_from_env) with variables from
    /// `lookup`.
    pub fn builder_from_vars(
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<TwilioSmsBuilder, ConfigError> {
        let var = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let account_sid = var("TWILIO_ACCOUNT_SID").ok_or_else(|| {
            ConfigError::new("TWILIO_ACCOUNT_SID", "is not set (the account SID, AC…)")
        })?;
        let auth = match (
            var("TWILIO_AUTH_TOKEN"),
            var("TWILIO_API_KEY_SID"),
            var("TWILIO_API_KEY_SECRET"),
        ) {
            (_, Some(sid), Some(secret)) => TwilioAuth::ApiKey { sid, secret },
            (_, Some(_), None) => {
                return Err(ConfigError::new(
                    "TWILIO_API_KEY_SECRET",
                    "is not set, but TWILIO_API_KEY_SID is",
                ));
            }
            (_, None, Some(_)) => {
                return Err(ConfigError::new(
                    "TWILIO_API_KEY_SID",
                    "is not set, but TWILIO_API_KEY_SECRET is",
                ));
            }
            (Some(token), None, None) => TwilioAuth::AuthToken(token),
            (None, None, None) => {
                return Err(ConfigError::new(
                    "TWILIO_AUTH_TOKEN",
                    "is not set (nor TWILIO_API_KEY_SID and TWILIO_API_KEY_SECRET)",
                ));
            }
        };
        let sender = match (var("TWILIO_FROM"), var("TWILIO_MESSAGING_SERVICE_SID")) {
            (Some(_), Some(_)) => {
                return Err(ConfigError::new(
                    "TWILIO_FROM",
                    "set either TWILIO_FROM or TWILIO_MESSAGING_SERVICE_SID, not both",
                ));
            }
            (Some(from), None) => TwilioSender::From(from),
            (None, Some(sid)) => TwilioSender::MessagingService(sid),
            (None, None) => {
                return Err(ConfigError::new(
                    "TWILIO_FROM",
                    "is not set (nor TWILIO_MESSAGING_SERVICE_SID)",
                ));
            }
        };
        let mut builder = Self::builder(account_sid.trim(), auth, sender);
        if let Some(from) = var("TWILIO_WHATSAPP_FROM") {
            builder = builder.whatsapp_from(from);
        }
        if let Some(url) = var("TWILIO_BASE_URL") {
            builder = builder.base_url(url);
        }
        Ok(builder)
    }

    /// The form fields for `msg`.
    fn form(&self, msg: &Message) -> Result<String, NotifyError> {
        let whatsapp = match msg.channel {
            Channel::Sms => false,
            Channel::Whatsapp => true,
            other => {
                return Err(NotifyError::permanent(format!(
                    "twilio: TwilioSms does not deliver the {other} channel"
                ))
                .with_provider_code("unsupported_channel"));
            }
        };
        let prefixed = |n: &str| {
            if whatsapp && !n.starts_with("whatsapp:") {
                format!("whatsapp:{n}")
            } else {
                n.to_owned()
            }
        };
        let to = prefixed(&msg.to);
        let body = msg.templates_or(&self.templates).render_text(msg);
        let mut fields: Vec<(&str, String)> = vec![("To", to)];
        match &self.sender {
            TwilioSender::MessagingService(sid) => {
                fields.push(("MessagingServiceSid", sid.clone()))
            }
            TwilioSender::From(from) => {
                let from = if whatsapp {
                    self.whatsapp_from.as_deref().unwrap_or(from)
                } else {
                    from
                };
                fields.push(("From", prefixed(from)));
            }
        }
        match (&self.whatsapp_content_sid, whatsapp) {
            (Some(content), true) => {
                let vars = serde_json::json!({ "1": msg.code }).to_string();
                fields.push(("ContentSid", content.clone()));
                fields.push(("ContentVariables", vars));
            }
            _ => fields.push(("Body", body)),
        }
        let pairs: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
        Ok(http_client::form_encode(&pairs))
    }
}

impl TwilioSmsBuilder {
    /// Talks to `base` instead of `https://api.twilio.com` (a regional
    /// edge, a proxy, or a test server on loopback).
    #[must_use]
    pub fn base_url(mut self, base: impl Into<String>) -> Self {
        self.http.url = base.into();
        self
    }

    /// The WhatsApp sender number (with or without `whatsapp:`).
    #[must_use]
    pub fn whatsapp_from(mut self, from: impl Into<String>) -> Self {
        self.whatsapp_from = Some(from.into());
        self
    }

    /// Sends WhatsApp messages as the approved content template `sid`
    /// (`HX…`) with the code as variable `"1"`, instead of a free-form body.
    #[must_use]
    pub fn whatsapp_content_sid(mut self, sid: impl Into<String>) -> Self {
        self.whatsapp_content_sid = Some(sid.into());
        self
    }

    request_timeout_option!();
    templates_option!();

    /// Checks every setting — the SIDs' forms, non-empty credentials, the
    /// senders, the base URL — and builds the notifier. The error names
    /// the setting that is wrong.
    pub fn build(self) -> Result<TwilioSms, ConfigError> {
        let account_sid = self.account_sid;
        check_sid(&account_sid, "AC", "twilio account sid")?;
        let authorization = match &self.auth {
            TwilioAuth::AuthToken(token) => {
                if token.is_empty() {
                    return Err(ConfigError::new("twilio auth token", "is empty"));
                }
                http_client::basic_auth(&account_sid, token)
            }
            TwilioAuth::ApiKey { sid, secret } => {
                check_sid(sid, "SK", "twilio api key sid")?;
                if secret.is_empty() {
                    return Err(ConfigError::new("twilio api key secret", "is empty"));
                }
                http_client::basic_auth(sid, secret)
            }
        };
        match &self.sender {
            TwilioSender::From(from) => check_sender(from, "twilio from")?,
            TwilioSender::MessagingService(sid) => {
                check_sid(sid, "MG", "twilio messaging service sid")?;
            }
        }
        let whatsapp_from = match self.whatsapp_from {
            Some(from) => {
                let from = from.strip_prefix("whatsapp:").unwrap_or(&from).to_owned();
                check_sender(&from, "twilio whatsapp from")?;
                Some(from)
            }
            None => None,
        };
        if let Some(sid) = &self.whatsapp_content_sid {
            check_sid(sid, "HX", "twilio whatsapp content sid")?;
        }
        let endpoint = self.http.build("twilio base url", PROVIDER)?;
        let base = endpoint.url();
        Ok(TwilioSms {
            messages_url: format!("{base}/2010-04-01/Accounts/{account_sid}/Messages.json"),
            account_url: format!("{base}/2010-04-01/Accounts/{account_sid}.json"),
            account_sid,
            auth: self.auth,
            authorization,
            sender: self.sender,
            whatsapp_from,
            whatsapp_content_sid: self.whatsapp_content_sid,
            endpoint,
            templates: self.templates,
        })
    }
}

#[derive(Deserialize)]
struct Created {
    sid: Option<String>,
}

#[derive(Deserialize)]
struct TwilioErrorDoc {
    code: Option<u32>,
}

/// What a Twilio error code means, for the log line.
fn describe(code: u32) -> &'static str {
    match code {
        20003 => "authentication failed",
        20404 => "resource not found",
        20429 | 14107 => "too many requests",
        21211 => "invalid To number",
        21212 | 21606 | 21659 => "invalid From number for this account",
        21408 => "sending to this region is not enabled",
        21610 => "recipient has unsubscribed",
        21612 => "To number cannot be reached from this sender",
        21614 => "To number is not a mobile number",
        21617 => "message body too long",
        63016 => "WhatsApp message outside the 24-hour window needs a template",
        _ => "refused",
    }
}

/// The error for a refused request.
fn refusal(reply: &http_client::Reply) -> NotifyError {
    let code = serde_json::from_slice::<TwilioErrorDoc>(reply.body_bytes())
        .ok()
        .and_then(|doc| doc.code);
    let status = reply.status.as_u16();
    let what = match code {
        Some(code) => format!("twilio: HTTP {status}, error {code} ({})", describe(code)),
        None => format!("twilio: HTTP {status}"),
    };
    let err = match code {
        // Rate limits are retryable whatever status carries them.
        Some(20429 | 14107) => {
            http_client::status_error(StatusCode::TOO_MANY_REQUESTS, &reply.headers, &what)
        }
        _ => http_client::status_error(reply.status, &reply.headers, &what),
    };
    err.with_provider_code(code.map_or_else(|| status.to_string(), |c| c.to_string()))
}

impl Notifier for TwilioSms {
    async fn send(&self, msg: &Message) -> Result<Delivery, NotifyError> {
        let form = self.form(msg)?;
        let req = Request::builder()
            .method(Method::POST)
            .uri(&self.messages_url)
            .header(AUTHORIZATION, self.authorization.clone())
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(ACCEPT, "application/json")
            .header(USER_AGENT, http_client::USER_AGENT_VALUE)
            .body(Full::new(Bytes::from(form)));
        let reply = self.endpoint.send(req).await?;
        if reply.status.is_success() {
            // A 2xx is Twilio's answer: it took the message. A body we cannot
            // read changes nothing about that, and sending again would
            // deliver the code twice: delivered, without a sid.
            let sid = match &reply.body {
                Ok(body) => serde_json::from_slice::<Created>(body)
                    .ok()
                    .and_then(|c| c.sid),
                Err(_) => None,
            };
            match &sid {
                Some(sid) => {
                    tracing::debug!(channel = %msg.channel, sid = sid.as_str(), "twilio: message accepted");
                }
                None => {
                    let fault = reply
                        .body
                        .as_ref()
                        .err()
                        .map_or("no message sid", |f| f.as_str());
                    tracing::warn!(
                        channel = %msg.channel,
                        status = reply.status.as_u16(),
                        body = fault,
                        "twilio: message accepted, but the response body was unreadable; delivered without a message sid"
                    );
                }
            }
            return Ok(Delivery { provider_id: sid });
        }
        let err = refusal(&reply);
        tracing::debug!(channel = %msg.channel, status = reply.status.as_u16(), code = err.provider_code().unwrap_or(""), "twilio: message refused");
        Err(err)
    }

    /// Fetches the account resource (`GET …/Accounts/{sid}.json`): Twilio is
    /// reachable and takes our credentials. No message is sent.
    async fn ready(&self) -> Option<Result<(), NotifyError>> {
        let req = Request::builder()
            .method(Method::GET)
            .uri(&self.account_url)
            .header(AUTHORIZATION, self.authorization.clone())
            .header(ACCEPT, "application/json")
            .header(USER_AGENT, http_client::USER_AGENT_VALUE)
            .body(Full::new(Bytes::new()));
        Some(match self.endpoint.send(req).await {
            Ok(reply) if reply.status.is_success() => Ok(()),
            Ok(reply) => Err(refusal(&reply)),
            Err(err) => Err(err),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    const SID: &str = "AC0123456789abcdef0123456789abcdef";

    fn vars(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    fn from_vars(lookup: impl Fn(&str) -> Option<String>) -> Result<TwilioSms, ConfigError> {
        TwilioSms::builder_from_vars(lookup)?.build()
    }

    #[test]
    fn from_vars_reports_what_is_missing() {
        let err = from_vars(vars(&[])).unwrap_err();
        assert_eq!(err.setting, "TWILIO_ACCOUNT_SID");
        let err = from_vars(vars(&[("TWILIO_ACCOUNT_SID", SID)])).unwrap_err();
        assert_eq!(err.setting, "TWILIO_AUTH_TOKEN");
        let err = from_vars(vars(&[
            ("TWILIO_ACCOUNT_SID", SID),
            ("TWILIO_API_KEY_SID", "SK0123456789abcdef0123456789abcdef"),
        ]))
        .unwrap_err();
        assert_eq!(err.setting, "TWILIO_API_KEY_SECRET");
        let err = from_vars(vars(&[
            ("TWILIO_ACCOUNT_SID", SID),
            ("TWILIO_AUTH_TOKEN", "t"),
        ]))
        .unwrap_err();
        assert_eq!(err.setting, "TWILIO_FROM");
        let err = from_vars(vars(&[
            ("TWILIO_ACCOUNT_SID", "ACnope"),
            ("TWILIO_AUTH_TOKEN", "t"),
            ("TWILIO_FROM", "+15005550006"),
        ]))
        .unwrap_err();
        assert_eq!(err.setting, "twilio account sid");
        let err = from_vars(vars(&[
            ("TWILIO_ACCOUNT_SID", SID),
            ("TWILIO_AUTH_TOKEN", "t"),
            ("TWILIO_FROM", "+15005550006"),
            ("TWILIO_BASE_URL", "ftp://x"),
        ]))
        .unwrap_err();
        assert_eq!(err.setting, "twilio base url");
    }

    #[test]
    fn from_vars_builds_and_redacts() {
        let sms = from_vars(vars(&[
            ("TWILIO_ACCOUNT_SID", SID),
            ("TWILIO_AUTH_TOKEN", "super-secret-token"),
            (
                "TWILIO_MESSAGING_SERVICE_SID",
                "MG0123456789abcdef0123456789abcdef",
            ),
            ("TWILIO_BASE_URL", "http://127.0.0.1:9/"),
        ]))
        .unwrap();
        assert_eq!(
            sms.messages_url,
            format!("http://127.0.0.1:9/2010-04-01/Accounts/{SID}/Messages.json")
        );
        let debug = format!("{sms:?}");
        assert!(!debug.contains("super-secret-token"), "{debug}");
        assert!(debug.contains("<redacted>"));

        let key = from_vars(vars(&[
            ("TWILIO_ACCOUNT_SID", SID),
            ("TWILIO_API_KEY_SID", "SK0123456789abcdef0123456789abcdef"),
            ("TWILIO_API_KEY_SECRET", "key-secret"),
            ("TWILIO_FROM", "+15005550006"),
        ]))
        .unwrap();
        assert!(!format!("{key:?}").contains("key-secret"));
    }

    #[test]
    fn build_checks_every_setting() {
        let builder = || {
            TwilioSms::builder(
                SID,
                TwilioAuth::AuthToken("super-secret-token".into()),
                TwilioSender::From("+15005550006".into()),
            )
        };
        assert!(!format!("{:?}", builder()).contains("super-secret-token"));
        for (builder, setting) in [
            (builder().base_url("ftp://x"), "twilio base url"),
            (builder().whatsapp_from("whatsapp:"), "twilio whatsapp from"),
            (
                builder().whatsapp_content_sid("HXnope"),
                "twilio whatsapp content sid",
            ),
            (
                TwilioSms::builder(
                    SID,
                    TwilioAuth::AuthToken(String::new()),
                    TwilioSender::From("+15005550006".into()),
                ),
                "twilio auth token",
            ),
            (
                TwilioSms::builder(
                    SID,
                    TwilioAuth::AuthToken("t".into()),
                    TwilioSender::MessagingService("MGnope".into()),
                ),
                "twilio messaging service sid",
            ),
        ] {
            assert_eq!(builder.build().unwrap_err().setting, setting);
        }
        let sms = builder()
            .request_timeout(Duration::from_secs(3))
            .build()
            .unwrap();
        assert!(format!("{sms:?}").contains("3s"), "{sms:?}");
    }

    #[test]
    fn form_fields() {
        let builder = TwilioSms::builder(
            SID,
            TwilioAuth::AuthToken("t".into()),
            TwilioSender::From("+15005550006".into()),
        );
        let sms = builder.clone().build().unwrap();
        let msg = Message::new(
            Channel::Sms,
            "+14155550100",
            "123456",
            Duration::from_secs(600),
        )
        .with_app_name("Acme");
        assert_eq!(
            sms.form(&msg).unwrap(),
            "To=%2B14155550100&From=%2B15005550006&Body=123456+is+your+Acme+code.+It+expires+in+10+minutes."
        );
        let mut wa = msg.clone();
        wa.channel = Channel::Whatsapp;
        let sms = builder
            .whatsapp_from("whatsapp:+14155238886")
            .whatsapp_content_sid("HX0123456789abcdef0123456789abcdef")
            .build()
            .unwrap();
        let form = sms.form(&wa).unwrap();
        assert!(
            form.starts_with(
                "To=whatsapp%3A%2B14155550100&From=whatsapp%3A%2B14155238886&ContentSid=HX"
            ),
            "{form}"
        );
        assert!(
            form.ends_with("&ContentVariables=%7B%221%22%3A%22123456%22%7D"),
            "{form}"
        );
        let mut email = msg;
        email.channel = Channel::Email;
        assert!(!sms.form(&email).unwrap_err().is_retryable());
    }
}
