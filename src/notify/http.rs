//! `HttpNotifier`: POSTs each message as signed JSON to the app's own endpoint.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use serde::Serialize;

use super::builder::{request_timeout_option, templates_option};
use super::http_client::{self, Endpoint, HttpOptions};
use super::template::Templates;
use super::{Channel, Delivery, Message, Notifier, NotifyError};
use crate::clock::{Clock, SystemClock, unix_secs};
use crate::error::ConfigError;
use crate::webhook::WebhookSecret;

const PROVIDER: &str = "http notifier";

/// Hands delivery to the app itself: POSTs each message as JSON to a URL
/// the app serves (to send it through a provider `tower-otp` does not know,
/// a queue, or a separate mail service), signed per
/// [Standard Webhooks](crate::webhook).
///
/// The body:
///
/// ```json
/// {"type":"otp.message",
///  "data":{"channel":"sms","to":"+14155550100","code":"123456","expires_in":600,
///          "minutes":10,"app_name":"Acme","locale":"de-CH","vars":{},
///          "text":"123456 is your Acme code. …",
///          "subject":null,"html":null}}
/// ```
///
/// (`text` is the rendered template for the channel; for email `subject`
/// and `html` are set too.) Headers: `content-type: application/json`,
/// `webhook-id` (derived from the message under the secret, so a retried
/// message keeps its id and the receiver can drop duplicates),
/// `webhook-timestamp`, `webhook-signature`. The receiver checks them with
/// [`verify_webhook`](crate::webhook::verify_webhook).
///
/// Answers: `2xx` → delivered (whatever its body: it is not read past
/// 64 KiB, and a body cut short or late changes nothing); `408`, `429`
/// (with `Retry-After`) and `5xx`, and failures before the request went out
/// (connection refused, connect timeout) → retryable; a connection lost or
/// a timeout after the request went out →
/// [`MaybeDelivered`](super::NotifyErrorKind::MaybeDelivered), not retried
/// by [`Retry`](super::Retry), the same rule as for Twilio
/// ([the rule](super#which-failures-are-retried)) even though the
/// `webhook-id` would let a careful receiver drop a duplicate; every other
/// status → permanent. The status is the error's
/// [`provider_code`](NotifyError::provider_code).
///
/// # Security
///
/// The body holds the code: use `https://` unless the endpoint is on the
/// same host. The secret is redacted from `Debug`.
#[derive(Clone)]
pub struct HttpNotifier {
    secret: WebhookSecret,
    templates: Arc<Templates>,
    clock: Arc<dyn Clock>,
    endpoint: Endpoint,
}

impl fmt::Debug for HttpNotifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpNotifier")
            .field("endpoint", &self.endpoint)
            .field("secret", &self.secret)
            .finish_non_exhaustive()
    }
}

/// Builds an [`HttpNotifier`]; from [`HttpNotifier::builder`]. The URL is
/// checked by [`build`](Self::build).
#[derive(Clone)]
pub struct HttpNotifierBuilder {
    secret: WebhookSecret,
    http: HttpOptions,
    templates: Arc<Templates>,
    clock: Arc<dyn Clock>,
}

impl fmt::Debug for HttpNotifierBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpNotifierBuilder")
            .field("http", &self.http)
            .field("secret", &self.secret)
            .finish_non_exhaustive()
    }
}

#[derive(Serialize)]
struct Envelope<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    data: Data<'a>,
}

#[derive(Serialize)]
struct Data<'a> {
    channel: Channel,
    to: &'a str,
    code: &'a str,
    expires_in: u64,
    minutes: u64,
    app_name: &'a str,
    locale: Option<&'a str>,
    vars: &'a BTreeMap<String, String>,
    text: String,
    subject: Option<String>,
    html: Option<String>,
}

impl HttpNotifier {
    /// The `type` of every message this notifier posts.
    pub const MESSAGE_TYPE: &'static str = "otp.message";

    /// A builder posting to `url` (`https://…`, or `http://` for a local
    /// endpoint), signing with `secret`.
    pub fn builder(url: impl Into<String>, secret: WebhookSecret) -> HttpNotifierBuilder {
        HttpNotifierBuilder {
            secret,
            http: HttpOptions::new(url),
            templates: Arc::new(Templates::default()),
            clock: Arc::new(SystemClock),
        }
    }

    /// The JSON body for `msg`.
    fn body(&self, msg: &Message) -> Result<Vec<u8>, NotifyError> {
        let (subject, html) = if msg.channel == Channel::Email {
            let email = msg.templates_or(&self.templates).render_email(msg);
            (Some(email.subject), Some(email.html))
        } else {
            (None, None)
        };
        let envelope = Envelope {
            kind: Self::MESSAGE_TYPE,
            data: Data {
                channel: msg.channel,
                to: &msg.to,
                code: &msg.code,
                expires_in: msg.expires_in.as_secs(),
                minutes: msg.minutes(),
                app_name: &msg.app_name,
                locale: msg.locale.as_deref(),
                vars: &msg.vars,
                text: msg.templates_or(&self.templates).render_text(msg),
                subject,
                html,
            },
        };
        serde_json::to_vec(&envelope).map_err(|e| {
            NotifyError::permanent("http notifier: cannot encode the message").with_source(e)
        })
    }

    /// `msg_` + 32 hex digits, keyed by the secret: the same message gets
    /// the same id (deduplication on retries) and the id reveals nothing.
    fn message_id(&self, msg: &Message) -> String {
        let hash = self.secret.keyed_hash(
            "tower-otp webhook-id",
            &[
                msg.channel.as_str().as_bytes(),
                msg.to.as_bytes(),
                msg.code.as_bytes(),
            ],
        );
        let mut id = String::with_capacity(36);
        id.push_str("msg_");
        for b in &hash[..16] {
            id.push_str(&format!("{b:02x}"));
        }
        id
    }
}

impl HttpNotifierBuilder {
    request_timeout_option!();
    templates_option!();

    /// The clock for `webhook-timestamp` (default: the system clock).
    #[must_use]
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Checks the URL and builds the notifier.
    pub fn build(self) -> Result<HttpNotifier, ConfigError> {
        Ok(HttpNotifier {
            endpoint: self.http.build("http notifier url", PROVIDER)?,
            secret: self.secret,
            templates: self.templates,
            clock: self.clock,
        })
    }
}

impl Notifier for HttpNotifier {
    async fn send(&self, msg: &Message) -> Result<Delivery, NotifyError> {
        let body = self.body(msg)?;
        let id = self.message_id(msg);
        let timestamp = unix_secs(self.clock.now());
        let reply = self
            .endpoint
            .post_signed(&self.secret, &id, timestamp, Bytes::from(body))
            .await?;
        let status = reply.status.as_u16();
        if reply.status.is_success() {
            return Ok(Delivery::with_id(id));
        }
        tracing::debug!(channel = %msg.channel, status, "http notifier: endpoint refused the message");
        Err(http_client::status_error(
            reply.status,
            &reply.headers,
            &format!("http notifier: endpoint answered HTTP {status}"),
        )
        .with_provider_code(status.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn notifier() -> HttpNotifier {
        HttpNotifier::builder("http://127.0.0.1:9/hook", WebhookSecret::generate())
            .build()
            .unwrap()
    }

    #[test]
    fn ids_are_stable_per_message_and_differ_between_messages() {
        let n = notifier();
        let a = Message::new(
            Channel::Sms,
            "+14155550100",
            "123456",
            Duration::from_secs(600),
        );
        let b = Message::new(
            Channel::Sms,
            "+14155550100",
            "654321",
            Duration::from_secs(600),
        );
        assert_eq!(n.message_id(&a), n.message_id(&a));
        assert_ne!(n.message_id(&a), n.message_id(&b));
        assert_eq!(n.message_id(&a).len(), 36);
        assert!(!n.message_id(&a).contains("123456"));
    }

    #[test]
    fn email_body_has_all_parts() {
        let msg = Message::new(
            Channel::Email,
            "a@b.example",
            "123456",
            Duration::from_secs(600),
        )
        .with_app_name("<Acme>");
        let v: serde_json::Value = serde_json::from_slice(&notifier().body(&msg).unwrap()).unwrap();
        assert_eq!(v["type"], "otp.message");
        assert_eq!(v["data"]["to"], "a@b.example");
        assert_eq!(v["data"]["code"], "123456");
        assert_eq!(v["data"]["subject"], "Your <Acme> sign-in code");
        assert!(v["data"]["html"].as_str().unwrap().contains("&lt;Acme&gt;"));
    }

    #[test]
    fn bad_urls_are_refused() {
        let err = HttpNotifier::builder("ftp://x", WebhookSecret::generate())
            .build()
            .unwrap_err();
        assert_eq!(err.setting, "http notifier url");
        assert!(!format!("{:?}", notifier()).contains("whsec_"));
    }
}
