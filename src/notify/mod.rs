//! Delivering codes: the [`Notifier`] trait and its implementations.
//!
//! A notifier gets a [`Message`] (channel, recipient, code, expiry, locale,
//! template variables) and delivers it, answering with a [`Delivery`] or a
//! [`NotifyError`] that says whether trying again could help. The router
//! deletes a challenge whose message could not be delivered.
//!
//! Providers (each behind a feature):
//!
//! * [`LogNotifier`] — development: prints one JSON line per message on stdout.
//! * [`MemoryNotifier`] — tests: keeps messages in memory, can be told to fail.
//! * `TwilioSms` (feature `twilio`) — SMS and WhatsApp through Twilio's
//!   Messages REST API, over the shared hyper + rustls client.
//! * `SmtpEmail` (feature `smtp`) — multipart text + HTML email with lettre.
//! * `HttpNotifier` (feature `http-notifier`) — POSTs the message as JSON to
//!   the app's own endpoint, signed per Standard Webhooks
//!   ([`crate::webhook`] verifies it on the receiving side).
//!
//! Every provider that can be misconfigured is built one way:
//! `Foo::builder(required…)`, then optional settings, then `.build()`,
//! which checks everything and answers `Result<Foo, ConfigError>` naming the
//! setting that is wrong (`TwilioSms::builder(sid, auth, sender)`,
//! `SmtpEmail::builder(config, from)`, `HttpNotifier::builder(url, secret)`,
//! [`template::Templates::builder()`]). `TwilioSms::from_env()` and
//! `SmtpEmail::from_env()` read the environment and build;
//! `builder_from_env()` reads it and leaves the builder open for settings
//! the environment does not give (templates, the request timeout).
//!
//! Combinators, generic over any notifier, built with [`NotifierExt`]:
//!
//! * [`Retry`] — exponential backoff with full jitter, only on retryable
//!   errors, bounded in attempts *and* total time, honouring `Retry-After`.
//! * [`Timeout`] — a [`MaybeDelivered`](NotifyErrorKind::MaybeDelivered)
//!   error when the inner notifier does not answer in time.
//! * [`Fallback`] — a second provider when the first fails (after its own
//!   retries), unless the first may have delivered.
//! * [`ByChannel`] — SMS/WhatsApp/voice to one notifier, email to another.
//! * [`BoxNotifier`] — a type-erased notifier, to pick providers at run time.
//!
//! # Which failures are retried
//!
//! Every [`NotifyError`] has a [`NotifyErrorKind`], and [`Retry`] retries
//! only [`Retryable`](NotifyErrorKind::Retryable) ones. The rule the
//! providers follow: **a send that may have reached the provider is never
//! retried** — Twilio has no idempotency key, so a retry after a lost
//! answer can deliver the same code twice (or three times), and a user who
//! got it would then find the challenge rolled back.
//!
//! * Nothing left this process yet (invalid input, connection refused,
//!   connect timeout, DNS) or the provider answered "try again" (`429`,
//!   `5xx`, SMTP `4xx`) → `Retryable`.
//! * The provider answered "never" (`4xx`, SMTP `5xx`, bad credentials) →
//!   `Permanent`.
//! * The request may have been written and no answer came (connection
//!   reset or closed while waiting, timeout after the request body
//!   started to go out, [`Timeout`] cutting a send) →
//!   [`MaybeDelivered`](NotifyErrorKind::MaybeDelivered): not retried, and
//!   [`Fallback`] does not hand it to the second provider either.
//! * A `2xx` status is an answer: the provider took the message. A `2xx`
//!   whose body is cut short, too large or slow is a delivery
//!   ([`Delivery::provider_id`] is `None`, with a warning log), never an
//!   error that would be retried.
//!
//! `SmtpEmail` cannot tell from lettre in which step of the conversation a
//! timeout or a dropped connection happened; those stay `Retryable`.
//!
//! Message texts come from [`template::Templates`] (per channel and locale,
//! `{{code}}`, `{{app_name}}`, `{{minutes}}`, HTML-escaped for HTML email).
//!
//! ```
//! use std::time::Duration;
//! use tower_otp::notify::{ByChannel, Channel, MemoryNotifier, Message, Notifier, NotifierExt, RetryPolicy};
//!
//! # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
//! let sms_primary = MemoryNotifier::new();   // e.g. TwilioSms::from_env()?
//! let sms_backup = MemoryNotifier::new();    // a second account or provider
//! let email = MemoryNotifier::new();         // e.g. SmtpEmail::from_env()?
//!
//! let notifier = ByChannel::new()
//!     .phone(
//!         sms_primary.clone()
//!             .timeout(Duration::from_secs(5))
//!             .retry(RetryPolicy::default())
//!             .or_else(sms_backup.clone().timeout(Duration::from_secs(5))),
//!     )
//!     .email(email.clone().timeout(Duration::from_secs(10)).retry(RetryPolicy::default()));
//!
//! let msg = Message::new(Channel::Sms, "+14155550100", "123456", Duration::from_secs(600));
//! notifier.send(&msg).await.unwrap();
//! assert_eq!(sms_primary.last_code("+14155550100").as_deref(), Some("123456"));
//! # });
//! ```
//!
//! # Security
//!
//! Provider credentials are redacted from `Debug` and never logged. Error
//! texts carry provider error codes and HTTP/SMTP statuses, never the
//! recipient, the code or the provider's free-text message (which often
//! repeats the recipient).
#![cfg_attr(all(feature = "twilio", feature = "smtp"), doc = include_str!("../../docs/delivery.md"))]

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

mod boxed;
pub(crate) mod builder;
mod by_channel;
mod fallback;
#[cfg(feature = "http-notifier")]
mod http;
#[cfg(feature = "http-client")]
pub(crate) mod http_client;
mod log;
mod memory;
mod retry;
#[cfg(feature = "smtp")]
mod smtp;
pub mod template;
mod timeout;
#[cfg(feature = "twilio")]
mod twilio;

pub use self::boxed::BoxNotifier;
pub use self::by_channel::ByChannel;
pub use self::fallback::Fallback;
#[cfg(feature = "http-notifier")]
pub use self::http::{HttpNotifier, HttpNotifierBuilder};
pub use self::log::LogNotifier;
pub use self::memory::MemoryNotifier;
pub use self::retry::{Retry, RetryPolicy};
#[cfg(feature = "smtp")]
pub use self::smtp::{SmtpConfig, SmtpEmail, SmtpEmailBuilder, SmtpTls};
pub use self::timeout::Timeout;
#[cfg(feature = "twilio")]
pub use self::twilio::{TwilioAuth, TwilioSender, TwilioSms, TwilioSmsBuilder};

/// How a code travels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Channel {
    /// Text message.
    Sms,
    /// WhatsApp message.
    Whatsapp,
    /// Voice call reading the code.
    Voice,
    /// Email.
    Email,
}

impl Channel {
    /// The lowercase name (`"sms"`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sms => "sms",
            Self::Whatsapp => "whatsapp",
            Self::Voice => "voice",
            Self::Email => "email",
        }
    }

    /// The channel named `name` ([`as_str`](Self::as_str)'s names).
    #[cfg(feature = "redis")]
    pub(crate) fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "sms" => Self::Sms,
            "whatsapp" => Self::Whatsapp,
            "voice" => Self::Voice,
            "email" => Self::Email,
            _ => return None,
        })
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One code to deliver. The code is redacted from `Debug`.
#[derive(Clone)]
#[non_exhaustive]
pub struct Message {
    /// Channel to use.
    pub channel: Channel,
    /// Recipient: E.164 phone number or email address.
    pub to: String,
    /// The one-time code (plain text: the only place it exists).
    pub code: String,
    /// How long the code stays valid.
    pub expires_in: Duration,
    /// BCP 47 locale for templates, e.g. `"en"` or `"de-CH"`.
    pub locale: Option<String>,
    /// Application name for templates (`{{app_name}}`).
    pub app_name: String,
    /// Extra template variables.
    pub vars: BTreeMap<String, String>,
    /// Templates that take the place of the notifier's own (a tenant's, in
    /// the multi-tenant service); `None` uses the notifier's.
    pub templates: Option<std::sync::Arc<template::Templates>>,
}

impl Message {
    /// A message with no locale, app name `"tower-otp"` and no extra variables.
    pub fn new(
        channel: Channel,
        to: impl Into<String>,
        code: impl Into<String>,
        expires_in: Duration,
    ) -> Self {
        Self {
            channel,
            to: to.into(),
            code: code.into(),
            expires_in,
            locale: None,
            app_name: "tower-otp".into(),
            vars: BTreeMap::new(),
            templates: None,
        }
    }

    /// Sets the locale.
    #[must_use]
    pub fn with_locale(mut self, locale: impl Into<String>) -> Self {
        self.locale = Some(locale.into());
        self
    }

    /// Sets the application name.
    #[must_use]
    pub fn with_app_name(mut self, name: impl Into<String>) -> Self {
        self.app_name = name.into();
        self
    }

    /// Adds a template variable.
    #[must_use]
    pub fn with_var(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.vars.insert(name.into(), value.into());
        self
    }

    /// Renders with these templates instead of the notifier's own.
    #[must_use]
    pub fn with_templates(mut self, templates: std::sync::Arc<template::Templates>) -> Self {
        self.templates = Some(templates);
        self
    }

    /// The templates this message renders with: its own, else `notifier's`.
    pub fn templates_or<'a>(
        &'a self,
        notifiers: &'a template::Templates,
    ) -> &'a template::Templates {
        self.templates.as_deref().unwrap_or(notifiers)
    }

    /// Validity in whole minutes, rounded up (`{{minutes}}`).
    pub fn minutes(&self) -> u64 {
        self.expires_in.as_secs().div_ceil(60)
    }
}

impl fmt::Debug for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Message")
            .field("channel", &self.channel)
            .field("to", &"<redacted>")
            .field("code", &"<redacted>")
            .field("expires_in", &self.expires_in)
            .field("locale", &self.locale)
            .field("app_name", &self.app_name)
            .finish_non_exhaustive()
    }
}

/// What a provider said about an accepted message.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Delivery {
    /// The provider's message id, when it gives one.
    pub provider_id: Option<String>,
}

impl Delivery {
    /// A delivery with the provider's message id.
    pub fn with_id(id: impl Into<String>) -> Self {
        Self {
            provider_id: Some(id.into()),
        }
    }
}

/// Whether trying again could help, and whether it is safe (see
/// [the rule](self#which-failures-are-retried)).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum NotifyErrorKind {
    /// Will fail again the same way (invalid number, unsubscribed, bad credentials).
    Permanent,
    /// Nothing was delivered and a later attempt may succeed (connection
    /// refused, 429, 5xx).
    Retryable,
    /// The request may have reached the provider, and its answer was lost
    /// (connection reset or timeout after the request went out): the
    /// message may be on its way. Not retried — a retry could deliver it
    /// twice.
    MaybeDelivered,
}

/// A delivery failure. Its text goes to logs only, never to HTTP clients, and
/// must not contain the code.
#[derive(Clone, Debug)]
pub struct NotifyError {
    kind: NotifyErrorKind,
    message: String,
    retry_after: Option<Duration>,
    provider_code: Option<String>,
    source: Option<Arc<dyn std::error::Error + Send + Sync>>,
}

impl NotifyError {
    /// A failure that will not go away by retrying.
    pub fn permanent(message: impl Into<String>) -> Self {
        Self::new(NotifyErrorKind::Permanent, message)
    }

    /// A failure that retrying may fix, where nothing was delivered.
    pub fn retryable(message: impl Into<String>) -> Self {
        Self::new(NotifyErrorKind::Retryable, message)
    }

    /// A failure after the request may have reached the provider
    /// ([`NotifyErrorKind::MaybeDelivered`]): never retried.
    pub fn maybe_delivered(message: impl Into<String>) -> Self {
        Self::new(NotifyErrorKind::MaybeDelivered, message)
    }

    fn new(kind: NotifyErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            retry_after: None,
            provider_code: None,
            source: None,
        }
    }

    /// Attaches the underlying error.
    #[must_use]
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Arc::new(source));
        self
    }

    /// Attaches the provider's requested wait before retrying.
    #[must_use]
    pub fn with_retry_after(mut self, after: Duration) -> Self {
        self.retry_after = Some(after);
        self
    }

    /// Attaches the provider's machine error code (e.g. Twilio `21211`, an
    /// SMTP reply code `550`, an HTTP status `503`).
    #[must_use]
    pub fn with_provider_code(mut self, code: impl Into<String>) -> Self {
        self.provider_code = Some(code.into());
        self
    }

    /// The provider's machine error code, if it gave one.
    pub fn provider_code(&self) -> Option<&str> {
        self.provider_code.as_deref()
    }

    /// Permanent, retryable, or maybe delivered.
    pub fn kind(&self) -> NotifyErrorKind {
        self.kind
    }

    /// Whether sending again is both useful and safe: only for
    /// [`NotifyErrorKind::Retryable`].
    pub fn is_retryable(&self) -> bool {
        self.kind == NotifyErrorKind::Retryable
    }

    /// Whether the message may have reached the provider
    /// ([`NotifyErrorKind::MaybeDelivered`]).
    pub fn may_have_been_delivered(&self) -> bool {
        self.kind == NotifyErrorKind::MaybeDelivered
    }

    /// The provider's requested wait, if it gave one.
    pub fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }
}

impl fmt::Display for NotifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.kind {
            NotifyErrorKind::Permanent => "permanent",
            NotifyErrorKind::Retryable => "retryable",
            NotifyErrorKind::MaybeDelivered => "ambiguous",
        };
        write!(f, "{kind} delivery failure: {}", self.message)
    }
}

impl std::error::Error for NotifyError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

/// Delivers messages. Implement it for your provider, or use one of ours.
///
/// ```
/// use tower_otp::notify::{Delivery, Message, NotifyError, Notifier};
///
/// #[derive(Debug)]
/// struct Pager;
///
/// impl Notifier for Pager {
///     async fn send(&self, msg: &Message) -> Result<Delivery, NotifyError> {
///         // call your provider here
///         let _ = (&msg.to, &msg.code);
///         Ok(Delivery::default())
///     }
/// }
/// ```
pub trait Notifier: Send + Sync + fmt::Debug + 'static {
    /// Delivers `msg`.
    fn send(&self, msg: &Message) -> impl Future<Output = Result<Delivery, NotifyError>> + Send;

    /// Whether the provider is reachable, for readiness checks: `None` when
    /// this notifier cannot tell without sending a message (the default).
    fn ready(&self) -> impl Future<Output = Option<Result<(), NotifyError>>> + Send {
        async { None }
    }
}

impl<N: Notifier> Notifier for Arc<N> {
    fn send(&self, msg: &Message) -> impl Future<Output = Result<Delivery, NotifyError>> + Send {
        (**self).send(msg)
    }

    fn ready(&self) -> impl Future<Output = Option<Result<(), NotifyError>>> + Send {
        (**self).ready()
    }
}

/// Builders for the combinators, on every [`Notifier`].
pub trait NotifierExt: Notifier + Sized {
    /// Retries retryable failures per `policy` ([`Retry`]).
    fn retry(self, policy: RetryPolicy) -> Retry<Self> {
        Retry::new(self, policy)
    }

    /// Fails with a [`NotifyErrorKind::MaybeDelivered`] error after
    /// `after` ([`Timeout`]). An HTTP provider's own `request_timeout`
    /// builder setting bounds one request instead, and knows whether it
    /// went out.
    fn timeout(self, after: Duration) -> Timeout<Self> {
        Timeout::new(self, after)
    }

    /// Tries `fallback` when this notifier fails ([`Fallback`]).
    fn or_else<B: Notifier>(self, fallback: B) -> Fallback<Self, B> {
        Fallback::new(self, fallback)
    }

    /// Erases the type ([`BoxNotifier`]).
    fn boxed(self) -> BoxNotifier {
        BoxNotifier::new(self)
    }
}

impl<N: Notifier> NotifierExt for N {}

#[cfg(all(test, feature = "redis"))]
mod tests {
    use super::Channel;

    #[test]
    fn a_channel_is_found_by_its_name() {
        for channel in [
            Channel::Sms,
            Channel::Whatsapp,
            Channel::Voice,
            Channel::Email,
        ] {
            assert_eq!(Channel::from_name(channel.as_str()), Some(channel));
        }
        assert_eq!(Channel::from_name("SMS"), None);
        assert_eq!(Channel::from_name(""), None);
    }
}
