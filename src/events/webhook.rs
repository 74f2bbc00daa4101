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
use http::header::{CONTENT_TYPE, USER_AGENT};
use http::{Method, Request, StatusCode};
use http_body_util::Full;
use serde::Serialize;
use tokio::sync::{Notify, mpsc};

use super::{Event, EventSink};
use crate::clock::{Clock, SystemClock, unix_secs};
use crate::error::ConfigError;
use crate::notify::http_client::{self, HttpClient};
use crate::webhook::{self, WebhookSecret};

const PROVIDER: &str = "event webhook";
const DEFAULT_CAPACITY: usize = 1024;
const DEFAULT_ATTEMPTS: u32 = 5;
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
const DEFAULT_BACKOFF: Duration = Duration::from_millis(100);
const DEFAULT_MAX_BACKOFF: Duration = Duration::from_secs(10);
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
/// [`webhook::verify_webhook`].
///
/// Answers: `2xx` → delivered; `5xx`, `429`, timeouts and connection
/// errors → retried with exponential backoff (100 ms doubling up to 10 s by
/// default; a `Retry-After` in seconds is honoured up to that cap), at most
/// [`max_attempts`](WebhookSinkBuilder::max_attempts) attempts; any other
/// status → given up at once. Give-ups count in
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
    url: String,
    secret: WebhookSecret,
    queue_capacity: usize,
    max_attempts: u32,
    timeout: Duration,
    retry_backoff: Duration,
    max_backoff: Duration,
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
    url: String,
    secret: WebhookSecret,
    max_attempts: u32,
    timeout: Duration,
    retry_backoff: Duration,
    max_backoff: Duration,
    client: HttpClient,
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
            .field("url", &self.url)
            .field("secret", &self.secret)
            .field("queue_capacity", &self.queue_capacity)
            .field("max_attempts", &self.max_attempts)
            .field("timeout", &self.timeout)
            .field("retry_backoff", &self.retry_backoff)
            .field("max_backoff", &self.max_backoff)
            .finish_non_exhaustive()
    }
}

impl WebhookSink {
    /// A builder posting to `url` (`https://…`, or `http://` for a local
    /// endpoint), signing with `secret`.
    pub fn builder(url: &str, secret: WebhookSecret) -> WebhookSinkBuilder {
        WebhookSinkBuilder {
            url: url.to_owned(),
            secret,
            queue_capacity: DEFAULT_CAPACITY,
            max_attempts: DEFAULT_ATTEMPTS,
            timeout: DEFAULT_TIMEOUT,
            retry_backoff: DEFAULT_BACKOFF,
            max_backoff: DEFAULT_MAX_BACKOFF,
            clock: Arc::new(SystemClock),
        }
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

    /// Attempts per event, the first included (default 5, at least 1).
    #[must_use]
    pub fn max_attempts(mut self, n: u32) -> Self {
        self.max_attempts = n.max(1);
        self
    }

    /// Time for one attempt, connection included (default 10 s).
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The wait before the first retry; it doubles for each further one
    /// (default 100 ms).
    #[must_use]
    pub fn retry_backoff(mut self, initial: Duration) -> Self {
        self.retry_backoff = initial;
        self
    }

    /// The longest wait between attempts, `Retry-After` included (default
    /// 10 s).
    #[must_use]
    pub fn max_backoff(mut self, max: Duration) -> Self {
        self.max_backoff = max;
        self
    }

    /// The clock for `webhook-timestamp` (default: the system clock).
    #[must_use]
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Checks the URL and starts the delivery task. Call it inside a tokio
    /// runtime (outside one it returns an error).
    pub fn build(self) -> Result<WebhookSink, ConfigError> {
        let url = http_client::base_url(&self.url, "event webhook url")?;
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| {
            ConfigError::new("event webhook", "must be built inside a tokio runtime")
        })?;
        let client = HttpClient::shared()?;
        let shared = Arc::new(Shared {
            clock: self.clock,
            pending: AtomicUsize::new(0),
            idle: Notify::new(),
            dropped: AtomicU64::new(0),
            last_warn: AtomicU64::new(0),
            url: url.clone(),
            capacity: self.queue_capacity,
        });
        let (tx, rx) = mpsc::channel(self.queue_capacity);
        let deliverer = Deliverer {
            url,
            secret: self.secret,
            max_attempts: self.max_attempts,
            timeout: self.timeout,
            retry_backoff: self.retry_backoff,
            max_backoff: self.max_backoff.max(self.retry_backoff),
            client,
            shared: Arc::clone(&shared),
        };
        runtime.spawn(deliverer.run(rx));
        Ok(WebhookSink { tx, shared })
    }
}

/// How one attempt ended.
enum Attempt {
    Delivered,
    Retry {
        why: String,
        after: Option<Duration>,
    },
    GiveUp(String),
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
        let mut attempt = 0u32;
        let why = loop {
            attempt += 1;
            match self.attempt(job).await {
                Attempt::Delivered => return,
                Attempt::GiveUp(why) => break why,
                Attempt::Retry { why, .. } if attempt >= self.max_attempts => break why,
                Attempt::Retry { why, after } => {
                    let wait = after
                        .unwrap_or_else(|| self.backoff_for(attempt))
                        .min(self.max_backoff);
                    tracing::debug!(
                        target: "tower_otp::events",
                        webhook_id = %job.id,
                        attempt,
                        wait_ms = wait.as_millis() as u64,
                        error = %why,
                        "event webhook: retrying"
                    );
                    tokio::time::sleep(wait).await;
                }
            }
        };
        metrics::counter!("tower_otp_events_failed_total", "event" => job.kind).increment(1);
        tracing::warn!(
            target: "tower_otp::events",
            webhook_id = %job.id,
            event = job.kind,
            attempts = attempt,
            error = %why,
            "event webhook: giving up on an event"
        );
    }

    /// The wait before retry number `retry` (1-based).
    fn backoff_for(&self, retry: u32) -> Duration {
        let shift = retry.saturating_sub(1).min(31);
        self.retry_backoff
            .saturating_mul(1u32 << shift)
            .min(self.max_backoff)
    }

    async fn attempt(&self, job: &Job) -> Attempt {
        let timestamp = unix_secs(self.shared.clock.now());
        let mut req = Request::builder()
            .method(Method::POST)
            .uri(&self.url)
            .header(CONTENT_TYPE, "application/json")
            .header(USER_AGENT, concat!("tower-otp/", env!("CARGO_PKG_VERSION")));
        if let Some(headers) = req.headers_mut() {
            headers.extend(webhook::signed_headers(
                &self.secret,
                &job.id,
                timestamp,
                &job.body,
            ));
        }
        let req = match req.body(Full::new(job.body.clone())) {
            Ok(req) => req,
            Err(_) => return Attempt::GiveUp("cannot build the request".to_owned()),
        };
        match self.client.send(req, self.timeout, PROVIDER).await {
            Ok(reply) if reply.status.is_success() => Attempt::Delivered,
            Ok(reply)
                if reply.status.is_server_error()
                    || reply.status == StatusCode::TOO_MANY_REQUESTS =>
            {
                Attempt::Retry {
                    why: format!("endpoint answered HTTP {}", reply.status.as_u16()),
                    after: http_client::retry_after(&reply.headers),
                }
            }
            Ok(reply) => {
                Attempt::GiveUp(format!("endpoint answered HTTP {}", reply.status.as_u16()))
            }
            // Standard Webhooks: the receiver drops duplicates by
            // `webhook-id`, so a send that may have arrived is retried too.
            Err(err) if err.is_retryable() || err.may_have_been_delivered() => Attempt::Retry {
                why: err.to_string(),
                after: None,
            },
            Err(err) => Attempt::GiveUp(err.to_string()),
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
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        since.subsec_millis()
    )
}

/// Year, month, day of the `days`-th day after 1970-01-01 (proleptic
/// Gregorian; Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
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
