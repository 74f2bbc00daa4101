//! `WebhookSink` delivering events to a real receiver on loopback that
//! checks every request with the public `verify_webhook` helper.
#![allow(clippy::unwrap_used)] // test helpers: a panic is how a test fails
#![cfg(feature = "http-notifier")]

mod support;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use support::webhook_receiver::{Receiver, SECRET};
use tokio::sync::Semaphore;
use tower_otp::events::{Event, EventKind, EventSink, WebhookSink};
use tower_otp::identifier::IdentifierHasher;
use tower_otp::notify::RetryPolicy;
use tower_otp::webhook::{self, DEFAULT_TOLERANCE, WebhookError, WebhookSecret};

const PHONE: &str = "+14155550100";

fn sink(receiver: &Receiver) -> tower_otp::events::WebhookSinkBuilder {
    WebhookSink::builder(receiver.url(), WebhookSecret::parse(SECRET).unwrap())
        .request_timeout(Duration::from_secs(5))
        .retry(retry())
}

/// The sink's default retry policy with 10 ms for the first backoff.
fn retry() -> RetryPolicy {
    WebhookSink::default_retry().backoff(Duration::from_millis(10), Duration::from_secs(10))
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
    let receiver = Receiver::start().await;
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
    let receiver = Receiver::start().await;
    receiver.script_statuses([500, 503]);
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
    let receiver = Receiver::start().await;
    receiver.script_statuses([500, 429, 502, 500]);
    let sink = sink(&receiver)
        .retry(retry().max_attempts(3))
        .build()
        .unwrap();
    sink.emit(&event(EventKind::OtpLocked, "req-1"));
    flush(&sink).await;
    assert_eq!(receiver.hits().len(), 3);
}

#[tokio::test]
async fn the_retry_budget_bounds_an_event() {
    // Waits of 200 ms, a budget of 300 ms: the second attempt starts at
    // 200 ms, a third would start past the budget, so there is none.
    let receiver = Receiver::start().await;
    receiver.script_statuses([500; 10]);
    let policy = RetryPolicy::new()
        .max_attempts(10)
        .backoff(Duration::from_millis(200), Duration::from_millis(200))
        .jitter(false)
        .max_elapsed(Duration::from_millis(300));
    let sink = sink(&receiver).retry(policy).build().unwrap();
    sink.emit(&event(EventKind::OtpLocked, "req-1"));
    flush(&sink).await;
    assert_eq!(receiver.hits().len(), 2);
}

#[tokio::test]
async fn client_errors_are_not_retried() {
    let receiver = Receiver::start().await;
    receiver.script_statuses([400]);
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
    let receiver = Receiver::gated(Some(Arc::clone(&gate))).await;
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
    let receiver = Receiver::gated(Some(Arc::clone(&gate))).await;
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
