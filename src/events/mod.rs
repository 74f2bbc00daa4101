//! Security events: every security-relevant step emits an [`Event`].
//!
//! Events carry a request id, the client IP, the user agent and a *hashed*
//! identifier — never a raw phone number, email address, code or token. They
//! go to an [`EventSink`]: [`TracingSink`] (the default) writes them as
//! structured `tracing` events under the target `tower_otp::events` (JSON when
//! the app installs a JSON subscriber), and every event also increments the
//! `tower_otp_events_total{event="…"}` counter through the `metrics` facade.
//!
//! With the `http-notifier` feature, `WebhookSink` delivers events to an
//! HTTP endpoint as signed [Standard Webhooks](crate::webhook) from a bounded
//! queue with retries.
#![cfg_attr(all(feature = "http-notifier", feature = "moka"), doc = include_str!("../../docs/events.md"))]

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::SystemTime;

use crate::identifier::HashedId;

mod context;

pub(crate) use self::context::RequestContext;

#[cfg(feature = "http-notifier")]
mod webhook_sink;

#[cfg(feature = "http-notifier")]
pub use self::webhook_sink::{WebhookSink, WebhookSinkBuilder};

/// What happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EventKind {
    /// A code was requested (valid input, within limits).
    OtpRequested,
    /// The notifier accepted the message.
    OtpSent,
    /// Delivery failed; the challenge was deleted.
    OtpDeliveryFailed,
    /// A code was verified and a session started.
    OtpVerified,
    /// A wrong, expired or unknown code was presented.
    OtpFailed,
    /// The last allowed attempt failed; the challenge was burned.
    OtpLocked,
    /// A request was refused by a rate limit.
    RateLimitExceeded,
    /// A phone number's country calling code is not allowed.
    CountryRefused,
    /// A refresh token was rotated.
    TokenRefreshed,
    /// A spent refresh token was presented again; its family was revoked.
    TokenReuseDetected,
    /// A session was revoked (logout).
    SessionRevoked,
    /// An API key was refused.
    ApiKeyRejected,
    /// The store failed; the request was refused (fail closed).
    StoreUnavailable,
    /// A tenant's daily or monthly message quota refused a code request.
    QuotaExceeded,
}

impl EventKind {
    /// The dotted name, e.g. `"otp.requested"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::OtpRequested => "otp.requested",
            Self::OtpSent => "otp.sent",
            Self::OtpDeliveryFailed => "otp.delivery_failed",
            Self::OtpVerified => "otp.verified",
            Self::OtpFailed => "otp.failed",
            Self::OtpLocked => "otp.locked",
            Self::RateLimitExceeded => "rate_limit.exceeded",
            Self::CountryRefused => "otp.country_refused",
            Self::TokenRefreshed => "token.refreshed",
            Self::TokenReuseDetected => "token.reuse_detected",
            Self::SessionRevoked => "session.revoked",
            Self::ApiKeyRejected => "api_key.rejected",
            Self::StoreUnavailable => "store.unavailable",
            Self::QuotaExceeded => "quota.exceeded",
        }
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One security event.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Event {
    /// What happened.
    pub kind: EventKind,
    /// When.
    pub at: SystemTime,
    /// The request's `X-Request-Id`, when it had one.
    pub request_id: Option<String>,
    /// The resolved client address.
    pub client_ip: Option<IpAddr>,
    /// The request's `User-Agent` (truncated to 256 bytes).
    pub user_agent: Option<String>,
    /// Keyed hash of the phone number or email involved.
    pub identifier: Option<HashedId>,
    /// The subject (user id) involved, once known.
    pub subject: Option<String>,
    /// A short machine-readable reason (e.g. the limit that refused).
    pub reason: Option<&'static str>,
    /// The name of the rate-limit policy that refused, on the
    /// `rate_limit.exceeded` events of a `RateLimitLayer`.
    pub policy: Option<Arc<str>>,
    /// The tenant whose API key made the request (multi-tenant service).
    pub tenant: Option<Arc<str>>,
}

impl Event {
    /// An event of `kind` at `at` with nothing else filled in.
    pub fn new(kind: EventKind, at: SystemTime) -> Self {
        Self {
            kind,
            at,
            request_id: None,
            client_ip: None,
            user_agent: None,
            identifier: None,
            subject: None,
            reason: None,
            policy: None,
            tenant: None,
        }
    }
}

/// Receives events. Implementations must not block: queue and return.
pub trait EventSink: Send + Sync + fmt::Debug + 'static {
    /// Handles one event.
    fn emit(&self, event: &Event);
}

/// Writes events to `tracing` (target `tower_otp::events`, level INFO; WARN
/// for refusals that suggest an attack).
#[derive(Clone, Copy, Debug, Default)]
pub struct TracingSink;

impl EventSink for TracingSink {
    fn emit(&self, e: &Event) {
        macro_rules! log {
            ($level:ident) => {
                tracing::$level!(
                    target: "tower_otp::events",
                    event = e.kind.as_str(),
                    request_id = e.request_id.as_deref(),
                    client_ip = e.client_ip.map(tracing::field::display),
                    user_agent = e.user_agent.as_deref(),
                    identifier = e.identifier.map(tracing::field::display),
                    subject = e.subject.as_deref(),
                    reason = e.reason,
                    policy = e.policy.as_deref(),
                    tenant = e.tenant.as_deref(),
                )
            };
        }
        match e.kind {
            EventKind::TokenReuseDetected
            | EventKind::OtpLocked
            | EventKind::RateLimitExceeded
            | EventKind::CountryRefused
            | EventKind::StoreUnavailable
            | EventKind::QuotaExceeded
            | EventKind::OtpDeliveryFailed => log!(warn),
            _ => log!(info),
        }
    }
}

/// Counts the event in metrics and hands it to `sink`.
pub(crate) fn emit(sink: &dyn EventSink, event: &Event) {
    metrics::counter!("tower_otp_events_total", "event" => event.kind.as_str()).increment(1);
    sink.emit(event);
}

/// Keeps events in memory (tests and debugging).
#[derive(Clone, Debug, Default)]
pub struct MemorySink {
    events: std::sync::Arc<std::sync::Mutex<Vec<Event>>>,
}

impl MemorySink {
    /// An empty sink.
    pub fn new() -> Self {
        Self::default()
    }

    /// The kinds of all events so far, in order.
    pub fn kinds(&self) -> Vec<EventKind> {
        self.events().iter().map(|e| e.kind).collect()
    }

    /// All events so far.
    pub fn events(&self) -> Vec<Event> {
        self.events
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

impl EventSink for MemorySink {
    fn emit(&self, event: &Event) {
        self.events
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(event.clone());
    }
}
