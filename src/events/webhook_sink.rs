//! `WebhookSink`: delivers events as signed Standard Webhooks from a bounded
//! queue with retries.

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use http::StatusCode;
use serde::Serialize;
use tokio::sync::{Notify, mpsc};

use super::{Event, EventSink};
use crate::clock::{Clock, SystemClock, unix_secs};
use crate::error::ConfigError;
use crate::notify::builder::request_timeout_option;
use crate::notify::http_client::{self, Endpoint, HttpOptions};
use crate::notify::{NotifyError, RetryPolicy};
use crate::webhook::WebhookSecret;

const PROVIDER: &str = "event webhook";
const DEFAULT_CAPACITY: usize = 1024;
/// At most one "queue full" warning per this many seconds.
const DROP_WARN_EVERY_SECS: u64 = 10;

/// Delivers every [`Event`] to an HTTP endpoint as a signed
/// [Standard Webhook](crate::webhook).
///
/// [`emit`](EventSink::emit) serialises the event and puts it on a bounded
/// queue without waiting; one background task POSTs the queued events in
/// order. The body:
///
/// ```json
/// {"type":"otp.verified","timestamp":"2026-01-02T03:04:05.678Z",
///  "data":{"request_id":"r-1","client_ip":"203.0.113.7","user_agent":"…",
///          "identifier":"<keyed hash>","subject":"user-42","reason":"…"}}
/// ```
///
/// (`data` members that are not known are left out.) Headers:
/// `content-type: application/json`, `webhook-id` (`msg_` + random, unique
/// per event and the same on every retry of it), `webhook-timestamp` (of
/// the attempt) and `webhook-signature`; the receiver checks them with
/// [`verify_webhook`](crate::webhook::verify_webhook).
///
/// Answers: `2xx` → delivered; `5xx`, `429`, timeouts and connection
/// errors → retried per the [`RetryPolicy`] of
/// [`retry`](WebhookSinkBuilder::retry) (by default
/// [`WebhookSink::default_retry`]: 5 attempts, 100 ms doubling up to 10 s,
/// no jitter, no total bound); a `Retry-After` is honoured up to the
/// policy's longest backoff; any other status → given up at once. Give-ups count in
/// `tower_otp_events_failed_total{event}` and are logged with the
/// `webhook-id`, never the body.
///
/// When the queue is full the event is dropped, counted in
/// `tower_otp_events_dropped_total{event}` and reported by a `tracing`
/// warning at most every 10 seconds: a slow endpoint never slows requests.
///
/// Clones share the queue. When every clone is dropped the task delivers
/// what is still queued, then ends. [`flush`](Self::flush) waits for the
/// queue to drain.
///
/// ```no_run
/// # async fn run() -> Result<(), tower_otp::error::ConfigError> {
/// use tower_otp::events::WebhookSink;
/// use tower_otp::webhook::WebhookSecret;
///
/// let secret = WebhookSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")?;
/// let sink = WebhookSink::builder("https://siem.example/hooks/otp", secret)
///     .queue_capacity(4096)
///     .retry(WebhookSink::default_retry().max_attempts(8))
///     .build()?; // inside a tokio runtime
/// # let _ = sink; Ok(()) }
/// ```
///
/// # Security
///
/// Events carry hashed identifiers, never phone numbers, emails or codes.
/// The secret is redacted from `Debug`. Use `https://` unless the endpoint
/// is on the same host.
#[derive(Clone)]
pub struct WebhookSink {
    tx: mpsc::Sender<Job>,
    shared: Arc<Shared>,
}

/// Builds a [`WebhookSink`]; from [`WebhookSink::builder`].
pub struct WebhookSinkBuilder {
    secret: WebhookSecret,
    http: HttpOptions,
    queue_capacity: usize,
    retry: RetryPolicy,
    clock: Arc<dyn Clock>,
}

/// One queued event, serialised.
struct Job {
    id: String,
    kind: &'static str,
    body: Bytes,
}

/// State shared by the clones and the task.
struct Shared {
    clock: Arc<dyn Clock>,
    /// Events accepted and not yet delivered or given up.
    pending: AtomicUsize,
    /// Signalled whenever `pending` drops to zero.
    idle: Notify,
    /// Drops since the last warning.
    dropped: AtomicU64,
    /// Unix seconds of the last "queue full" warning.
    last_warn: AtomicU64,
    url: String,
    capacity: usize,
}

/// What the background task needs to deliver.
struct Deliverer {
    secret: WebhookSecret,
    endpoint: Endpoint,
    retry: RetryPolicy,
    shared: Arc<Shared>,
}

impl fmt::Debug for WebhookSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookSink")
            .field("url", &self.shared.url)
            .field("queue_capacity", &self.shared.capacity)
            .field("pending", &self.shared.pending.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for WebhookSinkBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookSinkBuilder")
            .field("http", &self.http)
            .field("secret", &self.secret)
            .field("queue_capacity", &self.queue_capacity)
            .field("retry", &self.retry)
            .finish_non_exhaustive()
    }
}

impl WebhookSink {
    /// A builder posting to `url` (`https://…`, or `http://` for a local
    /// endpoint), signing with `secret`.
    pub fn builder(url: impl Into<String>, secret: WebhookSecret) -> WebhookSinkBuilder {
        WebhookSinkBuilder {
            secret,
            http: HttpOptions::new(url),
            queue_capacity: DEFAULT_CAPACITY,
            retry: Self::default_retry(),
            clock: Arc::new(SystemClock),
        }
    }

    /// How events are retried unless [`retry`](WebhookSinkBuilder::retry)
    /// says otherwise: at most 5 attempts, waits of 100 ms doubling up to
    /// 10 s without jitter, no bound on the total time (nobody waits for
    /// an event; the queue absorbs the delay).
    pub fn default_retry() -> RetryPolicy {
        RetryPolicy::new()
            .max_attempts(5)
            .backoff(Duration::from_millis(100), Duration::from_secs(10))
            .jitter(false)
            .max_elapsed(Duration::MAX)
    }

    /// Waits until every event accepted so far has been delivered or given
    /// up (tests, graceful shutdown). Events emitted meanwhile are waited
    /// for too.
    pub async fn flush(&self) {
        loop {
            let mut idle = std::pin::pin!(self.shared.idle.notified());
            idle.as_mut().enable();
            if self.shared.pending.load(Ordering::Acquire) == 0 {
                return;
            }
            idle.await;
        }
    }

    /// The `webhook-id` for a new event: `msg_` + 16 random bytes in
    /// base64url.
    fn new_id() -> String {
        format!("msg_{}", URL_SAFE_NO_PAD.encode(rand::random::<[u8; 16]>()))
    }

    fn dropped(&self, kind: &'static str, why: &'static str) {
        metrics::counter!("tower_otp_events_dropped_total", "event" => kind).increment(1);
        let shared = &self.shared;
        shared.dropped.fetch_add(1, Ordering::Relaxed);
        let now = unix_secs(shared.clock.now());
        let last = shared.last_warn.load(Ordering::Relaxed);
        if now.saturating_sub(last) >= DROP_WARN_EVERY_SECS
            && shared
                .last_warn
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            let dropped = shared.dropped.swap(0, Ordering::Relaxed);
            tracing::warn!(
                target: "tower_otp::events",
                dropped,
                capacity = shared.capacity,
                "event webhook: {why}; events dropped"
            );
        }
    }
}

impl EventSink for WebhookSink {
    fn emit(&self, event: &Event) {
        let kind = event.kind.as_str();
        let Ok(body) = serde_json::to_vec(&Payload::new(event)) else {
            self.dropped(kind, "an event could not be encoded");
            return;
        };
        let job = Job {
            id: Self::new_id(),
            kind,
            body: Bytes::from(body),
        };
        // Counted before sending so the task never sees it go below zero.
        self.shared.pending.fetch_add(1, Ordering::AcqRel);
        if let Err(err) = self.tx.try_send(job) {
            self.shared.finished();
            let why = match err {
                mpsc::error::TrySendError::Full(_) => "the queue is full",
                mpsc::error::TrySendError::Closed(_) => "the delivery task has stopped",
            };
            self.dropped(kind, why);
        }
    }
}

impl Shared {
    /// One accepted event is done with.
    fn finished(&self) {
        if self.pending.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.idle.notify_waiters();
        }
    }
}

impl WebhookSinkBuilder {
    /// Events held while the endpoint is slow or down (default 1024, at
    /// least 1); more are dropped.
    #[must_use]
    pub fn queue_capacity(mut self, n: usize) -> Self {
        self.queue_capacity = n.max(1);
        self
    }

    /// How an event that failed is retried (default
    /// [`WebhookSink::default_retry`]). Unlike a notifier, the sink also
    /// retries a request that may have arrived (the receiver drops
    /// duplicates by `webhook-id`), and a `Retry-After` longer than the
    /// policy's longest backoff waits only that long.
    #[must_use]
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    request_timeout_option!();

    /// The clock for `webhook-timestamp` (default: the system clock).
    #[must_use]
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Checks the URL and starts the delivery task. Call it inside a tokio
    /// runtime (outside one it returns an error).
    pub fn build(self) -> Result<WebhookSink, ConfigError> {
        let endpoint = self.http.build("event webhook url", PROVIDER)?;
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| {
            ConfigError::new("event webhook", "must be built inside a tokio runtime")
        })?;
        let shared = Arc::new(Shared {
            clock: self.clock,
            pending: AtomicUsize::new(0),
            idle: Notify::new(),
            dropped: AtomicU64::new(0),
            last_warn: AtomicU64::new(0),
            url: endpoint.url().to_owned(),
            capacity: self.queue_capacity,
        });
        let (tx, rx) = mpsc::channel(self.queue_capacity);
        let deliverer = Deliverer {
            secret: self.secret,
            endpoint,
            retry: self.retry,
            shared: Arc::clone(&shared),
        };
        runtime.spawn(deliverer.run(rx));
        Ok(WebhookSink { tx, shared })
    }
}

impl Deliverer {
    /// Delivers queued events in order until every sender is gone and the
    /// queue is empty.
    async fn run(self, mut rx: mpsc::Receiver<Job>) {
        while let Some(job) = rx.recv().await {
            self.deliver(&job).await;
            self.shared.finished();
        }
    }

    async fn deliver(&self, job: &Job) {
        let cap = self.retry.max_backoff();
        let outcome = self
            .retry
            .run(
                || self.attempt(job),
                // Standard Webhooks: the receiver drops duplicates by
                // `webhook-id`, so a send that may have arrived is retried too.
                |err: &NotifyError| {
                    (err.is_retryable() || err.may_have_been_delivered())
                        .then(|| err.retry_after().map(|after| after.min(cap)))
                },
                |attempt| {
                    NotifyError::retryable(format!(
                        "{PROVIDER}: retry budget used up during attempt {attempt}"
                    ))
                },
                |attempt, wait, err| {
                    tracing::debug!(
                        target: "tower_otp::events",
                        webhook_id = %job.id,
                        attempt,
                        wait_ms = wait.as_millis() as u64,
                        error = %err,
                        "event webhook: retrying"
                    );
                },
            )
            .await;
        let Err((err, attempts)) = outcome else {
            return;
        };
        metrics::counter!("tower_otp_events_failed_total", "event" => job.kind).increment(1);
        tracing::warn!(
            target: "tower_otp::events",
            webhook_id = %job.id,
            event = job.kind,
            attempts,
            error = %err,
            "event webhook: giving up on an event"
        );
    }

    /// One signed POST of `job`: `5xx` and `429` are retryable (with
    /// `Retry-After`), every other non-`2xx` status permanent.
    async fn attempt(&self, job: &Job) -> Result<(), NotifyError> {
        let timestamp = unix_secs(self.shared.clock.now());
        let reply = self
            .endpoint
            .post_signed(&self.secret, &job.id, timestamp, job.body.clone())
            .await?;
        let status = reply.status;
        let what = || format!("{PROVIDER}: endpoint answered HTTP {}", status.as_u16());
        if status.is_success() {
            Ok(())
        } else if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
            let err = NotifyError::retryable(what());
            Err(match http_client::retry_after(&reply.headers) {
                Some(after) => err.with_retry_after(after),
                None => err,
            })
        } else {
            Err(NotifyError::permanent(what()))
        }
    }
}

/// The Standard Webhooks payload of one event.
#[derive(Serialize)]
struct Payload<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    timestamp: String,
    data: Data<'a>,
}

#[derive(Serialize)]
struct Data<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    request_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_ip: Option<IpAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user_agent: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    identifier: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    subject: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    policy: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tenant: Option<&'a str>,
}

impl<'a> Payload<'a> {
    fn new(e: &'a Event) -> Self {
        Self {
            kind: e.kind.as_str(),
            timestamp: rfc3339(e.at),
            data: Data {
                request_id: e.request_id.as_deref(),
                client_ip: e.client_ip,
                user_agent: e.user_agent.as_deref(),
                identifier: e.identifier.map(|h| h.to_string()),
                subject: e.subject.as_deref(),
                reason: e.reason,
                policy: e.policy.as_deref(),
                tenant: e.tenant.as_deref(),
            },
        }
    }
}

/// `time` as RFC 3339 UTC with milliseconds, e.g.
/// `2026-01-02T03:04:05.678Z` (times before 1970 read as the epoch).
fn rfc3339(time: SystemTime) -> String {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (year, month, day) = crate::clock::civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        since.subsec_millis()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::EventKind;
    use crate::identifier::IdentifierHasher;

    fn at(secs: u64, millis: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs) + Duration::from_millis(millis)
    }

    #[test]
    fn rfc3339_formatting() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(at(951_782_400, 5)), "2000-02-29T00:00:00.005Z");
        assert_eq!(rfc3339(at(1_700_000_000, 123)), "2023-11-14T22:13:20.123Z");
        assert_eq!(rfc3339(at(4_102_444_799, 999)), "2099-12-31T23:59:59.999Z");
        assert_eq!(
            rfc3339(UNIX_EPOCH - Duration::from_secs(1)),
            "1970-01-01T00:00:00.000Z"
        );
    }

    #[test]
    fn payload_omits_unknown_fields_and_hashes_identifiers() {
        let hasher = IdentifierHasher::new(&[7; 32]);
        let mut e = Event::new(EventKind::OtpVerified, at(1_700_000_000, 0));
        e.identifier = Some(hasher.hash_str("phone", "+14155550100"));
        e.client_ip = Some(IpAddr::from([203, 0, 113, 7]));
        let v: serde_json::Value = serde_json::to_value(Payload::new(&e)).unwrap();
        assert_eq!(v["type"], "otp.verified");
        assert_eq!(v["timestamp"], "2023-11-14T22:13:20.000Z");
        assert_eq!(v["data"]["client_ip"], "203.0.113.7");
        let data = v["data"].as_object().unwrap();
        assert_eq!(data.len(), 2, "{data:?}");
        assert!(!v.to_string().contains("4155550100"));
    }

    #[test]
    fn ids_are_unique_and_header_safe() {
        let a = WebhookSink::new_id();
        assert_ne!(a, WebhookSink::new_id());
        assert!(a.starts_with("msg_"));
        assert!(http::HeaderValue::from_str(&a).is_ok());
    }

    #[test]
    fn build_refuses_bad_urls_and_needs_a_runtime() {
        let secret = WebhookSecret::generate();
        assert!(
            WebhookSink::builder("ftp://x", secret.clone())
                .build()
                .is_err()
        );
        // Outside a runtime: an error, not a panic.
        assert!(
            WebhookSink::builder("http://127.0.0.1:9", secret.clone())
                .build()
                .is_err()
        );
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let sink = WebhookSink::builder("http://127.0.0.1:9", secret)
                .build()
                .unwrap();
            assert!(!format!("{sink:?}").contains("whsec_"));
        });
    }
}
