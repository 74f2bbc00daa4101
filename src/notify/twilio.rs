//! `TwilioSms`: SMS and WhatsApp through Twilio's Messages REST API.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, USER_AGENT};
use http::{HeaderValue, Method, Request, StatusCode};
use http_body_util::Full;
use serde::Deserialize;

use super::http_client::{self, HttpClient};
use super::template::Templates;
use super::{Channel, Delivery, Message, Notifier, NotifyError};
use crate::error::ConfigError;

const DEFAULT_BASE_URL: &str = "https://api.twilio.com";
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
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
///   WhatsApp sender is [`with_whatsapp_from`](Self::with_whatsapp_from) or
///   else the SMS one. Outside a 24-hour customer window WhatsApp accepts
///   only pre-approved templates: set
///   [`with_whatsapp_content_sid`](Self::with_whatsapp_content_sid) to send
///   `ContentSid` with the code as variable `1` instead of a `Body`.
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
/// use tower_otp::notify::{NotifierExt, RetryPolicy, TwilioSms};
///
/// # fn main() -> Result<(), tower_otp::error::ConfigError> {
/// // TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN, TWILIO_FROM from the environment.
/// let sms = TwilioSms::from_env()?.retry(RetryPolicy::default());
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
    messages_url: String,
    /// `GET` here checks reachability and credentials without sending.
    account_url: String,
    timeout: Duration,
    templates: Arc<Templates>,
    client: HttpClient,
}

impl fmt::Debug for TwilioSms {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TwilioSms")
            .field("account_sid", &self.account_sid)
            .field("auth", &self.auth)
            .field("sender", &self.sender)
            .field("whatsapp_from", &self.whatsapp_from)
            .field("messages_url", &self.messages_url)
            .field("timeout", &self.timeout)
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
    /// A notifier for `account_sid` (`AC` + 32 hex digits).
    pub fn new(
        account_sid: impl Into<String>,
        auth: TwilioAuth,
        sender: TwilioSender,
    ) -> Result<Self, ConfigError> {
        let account_sid = account_sid.into();
        check_sid(&account_sid, "AC", "twilio account sid")?;
        let authorization = match &auth {
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
        match &sender {
            TwilioSender::From(from) => check_sender(from, "twilio from")?,
            TwilioSender::MessagingService(sid) => {
                check_sid(sid, "MG", "twilio messaging service sid")?;
            }
        }
        let mut this = Self {
            account_sid,
            auth,
            authorization,
            sender,
            whatsapp_from: None,
            whatsapp_content_sid: None,
            messages_url: String::new(),
            account_url: String::new(),
            timeout: DEFAULT_TIMEOUT,
            templates: Arc::new(Templates::default()),
            client: HttpClient::shared()?,
        };
        this.set_base_url(DEFAULT_BASE_URL)?;
        Ok(this)
    }

    /// Reads the configuration from the environment:
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
    /// Empty variables count as unset. The error names what is missing or wrong.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_vars(|name| std::env::var(name).ok())
    }

    /// [`from_env`](Self::from_env) with variables from `lookup`.
    pub fn from_vars(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
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
        let mut sms = Self::new(account_sid.trim(), auth, sender)?;
        if let Some(from) = var("TWILIO_WHATSAPP_FROM") {
            sms = sms.with_whatsapp_from(from)?;
        }
        if let Some(url) = var("TWILIO_BASE_URL") {
            sms = sms.with_base_url(&url)?;
        }
        Ok(sms)
    }

    fn set_base_url(&mut self, base: &str) -> Result<(), ConfigError> {
        let base = http_client::base_url(base, "twilio base url")?;
        self.messages_url = format!(
            "{base}/2010-04-01/Accounts/{}/Messages.json",
            self.account_sid
        );
        self.account_url = format!("{base}/2010-04-01/Accounts/{}.json", self.account_sid);
        Ok(())
    }

    /// Talks to `base` instead of `https://api.twilio.com` (a regional
    /// edge, a proxy, or a test server on loopback).
    pub fn with_base_url(mut self, base: &str) -> Result<Self, ConfigError> {
        self.set_base_url(base)?;
        Ok(self)
    }

    /// The WhatsApp sender number (without `whatsapp:`).
    pub fn with_whatsapp_from(mut self, from: impl Into<String>) -> Result<Self, ConfigError> {
        let from = from.into();
        let from = from.strip_prefix("whatsapp:").unwrap_or(&from).to_owned();
        check_sender(&from, "twilio whatsapp from")?;
        self.whatsapp_from = Some(from);
        Ok(self)
    }

    /// Sends WhatsApp messages as the approved content template `sid`
    /// (`HX…`) with the code as variable `"1"`, instead of a free-form body.
    pub fn with_whatsapp_content_sid(
        mut self,
        sid: impl Into<String>,
    ) -> Result<Self, ConfigError> {
        let sid = sid.into();
        check_sid(&sid, "HX", "twilio whatsapp content sid")?;
        self.whatsapp_content_sid = Some(sid);
        Ok(self)
    }

    /// Time for one request, connection included (default 10 s).
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The message templates (default: English).
    #[must_use]
    pub fn with_templates(mut self, templates: impl Into<Arc<Templates>>) -> Self {
        self.templates = templates.into();
        self
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
        let body = self.templates.render_text(msg);
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
            .header(USER_AGENT, concat!("tower-otp/", env!("CARGO_PKG_VERSION")))
            .body(Full::new(Bytes::from(form)))
            .map_err(|e| {
                NotifyError::permanent("twilio: cannot build the request").with_source(e)
            })?;
        let reply = self.client.send(req, self.timeout, PROVIDER).await?;
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
            .header(USER_AGENT, concat!("tower-otp/", env!("CARGO_PKG_VERSION")))
            .body(Full::new(Bytes::new()));
        let req = match req {
            Ok(req) => req,
            Err(e) => {
                return Some(Err(NotifyError::permanent(
                    "twilio: cannot build the request",
                )
                .with_source(e)));
            }
        };
        Some(match self.client.send(req, self.timeout, PROVIDER).await {
            Ok(reply) if reply.status.is_success() => Ok(()),
            Ok(reply) => Err(refusal(&reply)),
            Err(err) => Err(err),
        })
    }
}

#[cfg(test)]
mod tests {
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

    #[test]
    fn from_vars_reports_what_is_missing() {
        let err = TwilioSms::from_vars(vars(&[])).unwrap_err();
        assert_eq!(err.setting, "TWILIO_ACCOUNT_SID");
        let err = TwilioSms::from_vars(vars(&[("TWILIO_ACCOUNT_SID", SID)])).unwrap_err();
        assert_eq!(err.setting, "TWILIO_AUTH_TOKEN");
        let err = TwilioSms::from_vars(vars(&[
            ("TWILIO_ACCOUNT_SID", SID),
            ("TWILIO_API_KEY_SID", "SK0123456789abcdef0123456789abcdef"),
        ]))
        .unwrap_err();
        assert_eq!(err.setting, "TWILIO_API_KEY_SECRET");
        let err = TwilioSms::from_vars(vars(&[
            ("TWILIO_ACCOUNT_SID", SID),
            ("TWILIO_AUTH_TOKEN", "t"),
        ]))
        .unwrap_err();
        assert_eq!(err.setting, "TWILIO_FROM");
        let err = TwilioSms::from_vars(vars(&[
            ("TWILIO_ACCOUNT_SID", "ACnope"),
            ("TWILIO_AUTH_TOKEN", "t"),
            ("TWILIO_FROM", "+15005550006"),
        ]))
        .unwrap_err();
        assert_eq!(err.setting, "twilio account sid");
        let err = TwilioSms::from_vars(vars(&[
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
        let sms = TwilioSms::from_vars(vars(&[
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

        let key = TwilioSms::from_vars(vars(&[
            ("TWILIO_ACCOUNT_SID", SID),
            ("TWILIO_API_KEY_SID", "SK0123456789abcdef0123456789abcdef"),
            ("TWILIO_API_KEY_SECRET", "key-secret"),
            ("TWILIO_FROM", "+15005550006"),
        ]))
        .unwrap();
        assert!(!format!("{key:?}").contains("key-secret"));
    }

    #[test]
    fn form_fields() {
        let sms = TwilioSms::new(
            SID,
            TwilioAuth::AuthToken("t".into()),
            TwilioSender::From("+15005550006".into()),
        )
        .unwrap();
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
        let sms = sms
            .with_whatsapp_from("whatsapp:+14155238886")
            .unwrap()
            .with_whatsapp_content_sid("HX0123456789abcdef0123456789abcdef")
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
