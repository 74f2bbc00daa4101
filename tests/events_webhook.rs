//! `WebhookSink` delivering events to a real receiver on loopback that
//! checks every request with the public `verify_webhook` helper.
#![allow(clippy::unwrap_used)] // test helpers: a panic is how a test fails
#![cfg(feature = "http-notifier")]

mod support;

use std::collections::VecDeque;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use http::HeaderMap;
use support::http_peer::{self, HttpPeer};
use tokio::sync::Semaphore;
use tower_otp::events::{Event, EventKind, EventSink, WebhookSink};
use tower_otp::identifier::IdentifierHasher;
use tower_otp::webhook::{self, DEFAULT_TOLERANCE, WebhookError, WebhookSecret};

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const PHONE: &str = "+14155550100";

#[derive(Clone, Debug)]
struct Hit {
    headers: HeaderMap,
    body: Bytes,
    verdict: Result<(), WebhookError>,
}

impl Hit {
    fn id(&self) -> String {
        self.headers["webhook-id"].to_str().unwrap().to_owned()
    }

    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

/// The app's endpoint: records and verifies every request, waits for a
/// permit from `gate` (when one is set), then answers the next scripted
/// status (default 204).
struct Receiver {
    peer: HttpPeer,
    hits: Arc<Mutex<Vec<Hit>>>,
    script: Arc<Mutex<VecDeque<u16>>>,
}

impl Receiver {
    async fn start(gate: Option<Arc<Semaphore>>) -> Self {
        let hits: Arc<Mutex<Vec<Hit>>> = Arc::default();
        let script: Arc<Mutex<VecDeque<u16>>> = Arc::default();
        let secret = WebhookSecret::parse(SECRET).unwrap();
        let (h, s) = (Arc::clone(&hits), Arc::clone(&script));
        let peer = http_peer::serve(move |req| {
            let verdict = webhook::verify_webhook(
                &secret,
                req.headers(),
                req.body(),
                SystemTime::now(),
                DEFAULT_TOLERANCE,
            );
            h.lock().unwrap().push(Hit {
                headers: req.headers().clone(),
                body: req.body().clone(),
                verdict,
            });
            let status = match verdict {
                Ok(()) => s.lock().unwrap().pop_front().unwrap_or(204),
                Err(_) => 401,
            };
            let gate = gate.clone();
            async move {
                if let Some(gate) = gate {
                    gate.acquire().await.unwrap().forget();
                }
                http_peer::json(status, "", &[])
            }
        })
        .await;
        Self { peer, hits, script }
    }

    fn url(&self) -> String {
        format!("{}/hooks/events", self.peer.url())
    }

    fn hits(&self) -> Vec<Hit> {
        self.hits.lock().unwrap().clone()
    }

    fn script(&self, statuses: impl IntoIterator<Item = u16>) {
        self.script.lock().unwrap().extend(statuses);
    }

    /// Waits (up to 2 s) until at least `n` requests arrived.
    async fn wait_for_hits(&self, n: usize) -> Vec<Hit> {
        let started = Instant::now();
        loop {
            let hits = self.hits();
            if hits.len() >= n || started.elapsed() > Duration::from_secs(2) {
                return hits;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

fn sink(receiver: &Receiver) -> tower_otp::events::WebhookSinkBuilder {
    WebhookSink::builder(&receiver.url(), WebhookSecret::parse(SECRET).unwrap())
        .timeout(Duration::from_secs(5))
        .retry_backoff(Duration::from_millis(10))
}

fn event(kind: EventKind, request_id: &str) -> Event {
    let mut e = Event::new(kind, SystemTime::now());
    e.request_id = Some(request_id.to_owned());
    e.client_ip = Some(IpAddr::from([203, 0, 113, 7]));
    e.user_agent = Some("test-agent/1".to_owned());
    e.identifier = Some(IdentifierHasher::new(&[9; 32]).hash_str("phone", PHONE));
    e.subject = Some("user-42".to_owned());
    e
}

async fn flush(sink: &WebhookSink) {
    tokio::time::timeout(Duration::from_secs(2), sink.flush())
        .await
        .expect("the sink did not drain");
}

#[tokio::test]
async fn events_arrive_in_order_signed_and_without_raw_identifiers() {
    let receiver = Receiver::start(None).await;
    let sink = sink(&receiver).build().unwrap();
    let kinds = [
        EventKind::OtpRequested,
        EventKind::OtpSent,
        EventKind::OtpFailed,
        EventKind::OtpVerified,
    ];
    for (i, kind) in kinds.iter().enumerate() {
        let mut e = event(*kind, &format!("req-{i}"));
        if *kind == EventKind::OtpFailed {
            e.reason = Some("wrong_code");
        }
        sink.emit(&e);
    }
    flush(&sink).await;

    let hits = receiver.hits();
    assert_eq!(hits.len(), kinds.len());
    let mut ids = Vec::new();
    for (i, (hit, kind)) in hits.iter().zip(kinds).enumerate() {
        assert_eq!(hit.verdict, Ok(()), "signature of event {i}");
        assert_eq!(hit.headers["content-type"], "application/json");
        ids.push(hit.id());
        let body = hit.json();
        assert_eq!(body["type"], kind.as_str());
        assert!(body["timestamp"].as_str().unwrap().ends_with('Z'));
        let data = &body["data"];
        assert_eq!(data["request_id"], format!("req-{i}"));
        assert_eq!(data["client_ip"], "203.0.113.7");
        assert_eq!(data["subject"], "user-42");
        let hashed = IdentifierHasher::new(&[9; 32])
            .hash_str("phone", PHONE)
            .to_string();
        assert_eq!(data["identifier"], hashed.as_str());
        if kind == EventKind::OtpFailed {
            assert_eq!(data["reason"], "wrong_code");
        } else {
            assert!(data.get("reason").is_none(), "None fields are left out");
        }
        let text = String::from_utf8_lossy(&hit.body);
        assert!(!text.contains("4155550100"), "raw phone in {text}");
    }
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), kinds.len(), "webhook-ids are unique");

    // A receiver with another secret refuses them.
    let other = WebhookSecret::generate();
    let hit = &hits[0];
    assert_eq!(
        webhook::verify_webhook(
            &other,
            &hit.headers,
            &hit.body,
            SystemTime::now(),
            DEFAULT_TOLERANCE
        ),
        Err(WebhookError::InvalidSignature)
    );
}

#[tokio::test]
async fn server_errors_are_retried_with_the_same_id() {
    let receiver = Receiver::start(None).await;
    receiver.script([500, 503]);
    let sink = sink(&receiver).build().unwrap();
    sink.emit(&event(EventKind::TokenReuseDetected, "req-1"));
    flush(&sink).await;

    let hits = receiver.hits();
    assert_eq!(hits.len(), 3, "two failures, then delivered");
    for hit in &hits {
        assert_eq!(hit.verdict, Ok(()));
        assert_eq!(hit.id(), hits[0].id(), "the same webhook-id on retries");
        assert_eq!(hit.json()["type"], "token.reuse_detected");
    }
    // Delivered: nothing more arrives.
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(receiver.hits().len(), 3);
}

#[tokio::test]
async fn retries_stop_at_max_attempts() {
    let receiver = Receiver::start(None).await;
    receiver.script([500, 429, 502, 500]);
    let sink = sink(&receiver).max_attempts(3).build().unwrap();
    sink.emit(&event(EventKind::OtpLocked, "req-1"));
    flush(&sink).await;
    assert_eq!(receiver.hits().len(), 3);
}

#[tokio::test]
async fn client_errors_are_not_retried() {
    let receiver = Receiver::start(None).await;
    receiver.script([400]);
    let sink = sink(&receiver).build().unwrap();
    sink.emit(&event(EventKind::OtpFailed, "req-1"));
    flush(&sink).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(receiver.hits().len(), 1, "a 400 is given up at once");

    // The next event is delivered normally.
    sink.emit(&event(EventKind::OtpVerified, "req-2"));
    flush(&sink).await;
    let hits = receiver.hits();
    assert_eq!(hits.len(), 2);
    assert_eq!(hits[1].json()["type"], "otp.verified");
}

#[tokio::test]
async fn a_full_queue_drops_events_without_blocking() {
    let gate = Arc::new(Semaphore::new(0));
    let receiver = Receiver::start(Some(Arc::clone(&gate))).await;
    let sink = sink(&receiver).queue_capacity(1).build().unwrap();

    // The first event is taken off the queue and stalls in the receiver.
    sink.emit(&event(EventKind::OtpRequested, "req-0"));
    assert_eq!(receiver.wait_for_hits(1).await.len(), 1);

    // One more fits in the queue; the rest are dropped at once.
    let started = Instant::now();
    for i in 1..=20 {
        sink.emit(&event(EventKind::RateLimitExceeded, &format!("req-{i}")));
    }
    assert!(
        started.elapsed() < Duration::from_millis(100),
        "emit blocked for {:?}",
        started.elapsed()
    );

    gate.add_permits(100);
    flush(&sink).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let request_ids: Vec<String> = receiver
        .hits()
        .iter()
        .map(|h| h.json()["data"]["request_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(request_ids, ["req-0", "req-1"]);
}

#[tokio::test]
async fn dropping_the_sink_delivers_what_is_queued() {
    let gate = Arc::new(Semaphore::new(0));
    let receiver = Receiver::start(Some(Arc::clone(&gate))).await;
    let sink = sink(&receiver).build().unwrap();
    for i in 0..3 {
        sink.emit(&event(EventKind::SessionRevoked, &format!("req-{i}")));
    }
    drop(sink);
    gate.add_permits(100);
    let hits = receiver.wait_for_hits(3).await;
    assert_eq!(hits.len(), 3);
    assert!(hits.iter().all(|h| h.verdict.is_ok()));
}
