//! `HttpNotifier` posting signed JSON to a receiver on loopback that checks
//! the Standard Webhooks signature with the public `verify_webhook` helper.
#![allow(clippy::unwrap_used)] // test helpers: a panic is how a test fails
#![cfg(feature = "http-notifier")]

mod support;

use std::time::{Duration, SystemTime};

use support::webhook_receiver::{Receiver, SECRET};
use tower_otp::clock::ManualClock;
use tower_otp::notify::{
    Channel, HttpNotifier, HttpNotifierBuilder, Message, Notifier, NotifierExt, NotifyErrorKind,
    RetryPolicy,
};
use tower_otp::webhook::{self, DEFAULT_TOLERANCE, WebhookError, WebhookSecret};

fn notifier(receiver: &Receiver) -> HttpNotifier {
    builder(receiver).build().unwrap()
}

fn builder(receiver: &Receiver) -> HttpNotifierBuilder {
    HttpNotifier::builder(receiver.url(), WebhookSecret::parse(SECRET).unwrap())
        .request_timeout(Duration::from_secs(5))
}

fn msg() -> Message {
    Message::new(
        Channel::Sms,
        "+14155550100",
        "246810",
        Duration::from_secs(600),
    )
    .with_app_name("Acme")
    .with_locale("en-GB")
    .with_var("tenant", "t-1")
}

async fn bounded<F: std::future::Future>(f: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(20), f)
        .await
        .expect("the notifier hung")
}

#[tokio::test]
async fn receiver_verifies_the_signature_and_reads_the_message() {
    let receiver = Receiver::start().await;
    let delivery = bounded(notifier(&receiver).send(&msg())).await.unwrap();

    let hits = receiver.hits();
    assert_eq!(hits.len(), 1);
    let hit = &hits[0];
    assert_eq!(hit.verdict, Ok(()));
    assert_eq!(hit.headers["content-type"], "application/json");
    let id = hit.headers["webhook-id"].to_str().unwrap();
    assert_eq!(delivery.provider_id.as_deref(), Some(id));
    assert!(
        hit.headers["webhook-signature"]
            .to_str()
            .unwrap()
            .starts_with("v1,")
    );

    let body: serde_json::Value = serde_json::from_slice(&hit.body).unwrap();
    assert_eq!(body["type"], "otp.message");
    let data = &body["data"];
    assert_eq!(data["channel"], "sms");
    assert_eq!(data["to"], "+14155550100");
    assert_eq!(data["code"], "246810");
    assert_eq!(data["expires_in"], 600);
    assert_eq!(data["locale"], "en-GB");
    assert_eq!(data["vars"]["tenant"], "t-1");
    assert_eq!(
        data["text"],
        "246810 is your Acme code. It expires in 10 minutes."
    );
}

#[tokio::test]
async fn tampered_body_is_refused() {
    let receiver = Receiver::start().await;
    bounded(notifier(&receiver).send(&msg())).await.unwrap();
    let hit = receiver.hits().remove(0);
    let secret = WebhookSecret::parse(SECRET).unwrap();
    let now = SystemTime::now();
    // The genuine request verifies; the same headers over a changed body do not.
    assert!(
        webhook::verify_webhook(&secret, &hit.headers, &hit.body, now, DEFAULT_TOLERANCE).is_ok()
    );
    let tampered = String::from_utf8(hit.body.to_vec())
        .unwrap()
        .replace("246810", "000000");
    assert_eq!(
        webhook::verify_webhook(
            &secret,
            &hit.headers,
            tampered.as_bytes(),
            now,
            DEFAULT_TOLERANCE
        ),
        Err(WebhookError::InvalidSignature)
    );
}

#[tokio::test]
async fn wrong_secret_is_refused_by_the_receiver() {
    let receiver = Receiver::start().await;
    let wrong = HttpNotifier::builder(receiver.url(), WebhookSecret::generate())
        .build()
        .unwrap();
    let err = bounded(wrong.send(&msg())).await.unwrap_err();
    assert_eq!(
        receiver.hits()[0].verdict,
        Err(WebhookError::InvalidSignature)
    );
    assert_eq!(err.kind(), NotifyErrorKind::Permanent);
    assert_eq!(err.provider_code(), Some("401"));
}

#[tokio::test]
async fn stale_timestamp_is_refused_by_the_receiver() {
    let receiver = Receiver::start().await;
    let clock = ManualClock::at(SystemTime::now() - Duration::from_secs(10 * 60));
    let stale = builder(&receiver).clock(clock).build().unwrap();
    let err = bounded(stale.send(&msg())).await.unwrap_err();
    assert_eq!(
        receiver.hits()[0].verdict,
        Err(WebhookError::TimestampTooOld)
    );
    assert_eq!(err.kind(), NotifyErrorKind::Permanent);
}

#[tokio::test]
async fn status_mapping() {
    let receiver = Receiver::start().await;
    let n = notifier(&receiver);
    let cases = [
        (200, None),
        (202, None),
        (400, Some(NotifyErrorKind::Permanent)),
        (404, Some(NotifyErrorKind::Permanent)),
        (422, Some(NotifyErrorKind::Permanent)),
        (408, Some(NotifyErrorKind::Retryable)),
        (429, Some(NotifyErrorKind::Retryable)),
        (500, Some(NotifyErrorKind::Retryable)),
        (503, Some(NotifyErrorKind::Retryable)),
    ];
    for (status, expected) in cases {
        receiver.script([(status, None)]);
        let result = bounded(n.send(&msg())).await;
        match expected {
            None => assert!(result.is_ok(), "{status}"),
            Some(kind) => {
                let err = result.unwrap_err();
                assert_eq!(err.kind(), kind, "{status}");
                assert_eq!(err.provider_code(), Some(status.to_string().as_str()));
            }
        }
    }
    receiver.script([(429, Some(3))]);
    let err = bounded(n.send(&msg())).await.unwrap_err();
    assert_eq!(err.retry_after(), Some(Duration::from_secs(3)));
}

#[tokio::test]
async fn retried_message_keeps_its_id() {
    let receiver = Receiver::start().await;
    receiver.script([(503, None)]);
    let n = notifier(&receiver).retry(RetryPolicy::immediate(3));
    bounded(n.send(&msg())).await.unwrap();
    let hits = receiver.hits();
    assert_eq!(hits.len(), 2);
    assert_eq!(hits[0].headers["webhook-id"], hits[1].headers["webhook-id"]);
    assert!(hits.iter().all(|h| h.verdict.is_ok()));
}

#[tokio::test]
async fn email_messages_carry_subject_and_escaped_html() {
    let receiver = Receiver::start().await;
    let m = Message::new(
        Channel::Email,
        "ada@example.com",
        "246810",
        Duration::from_secs(600),
    )
    .with_app_name("<Acme>");
    bounded(notifier(&receiver).send(&m)).await.unwrap();
    let body: serde_json::Value = serde_json::from_slice(&receiver.hits()[0].body).unwrap();
    assert_eq!(body["data"]["subject"], "Your <Acme> sign-in code");
    let html = body["data"]["html"].as_str().unwrap();
    assert!(
        html.contains("&lt;Acme&gt;") && html.contains("246810"),
        "{html}"
    );
}

/// A raw HTTP/1.1 peer on loopback that reads each request whole, counts
/// it, writes `answer` (maybe a broken one) and closes the connection.
async fn raw_peer(
    answer: &'static [u8],
) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let requests = std::sync::Arc::new(AtomicUsize::new(0));
    let count = std::sync::Arc::clone(&requests);
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            // Read the head, then as many body bytes as it announces.
            let complete = loop {
                let Ok(n) = stream.read(&mut chunk).await else {
                    break false;
                };
                if n == 0 {
                    break false;
                }
                buf.extend_from_slice(&chunk[..n]);
                let text = String::from_utf8_lossy(&buf);
                if let Some(end) = text.find("\r\n\r\n") {
                    let length: usize = text[..end]
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse().unwrap())
                        })
                        .unwrap_or(0);
                    if buf.len() >= end + 4 + length {
                        break true;
                    }
                }
            };
            if complete {
                count.fetch_add(1, Ordering::SeqCst);
                let _ = stream.write_all(answer).await;
                let _ = stream.flush().await;
            }
            // Dropping the stream closes the connection.
        }
    });
    (url, requests)
}

#[tokio::test]
async fn broken_answers_after_the_request_are_never_retried() {
    use std::sync::atomic::Ordering;
    let oversized: &'static [u8] = Box::leak(
        format!(
            "HTTP/1.1 200 OK\r\ncontent-length: {0}\r\n\r\n{1}",
            100 * 1024,
            "x".repeat(100 * 1024)
        )
        .into_bytes()
        .into_boxed_slice(),
    );
    let cases: [(&'static [u8], Option<NotifyErrorKind>); 3] = [
        // 2xx, body cut short: delivered.
        (
            b"HTTP/1.1 200 OK\r\ncontent-length: 500\r\n\r\n{\"ok\":",
            None,
        ),
        // 2xx, body past 64 KiB: delivered.
        (oversized, None),
        // No answer at all after the request: may have been delivered.
        (b"", Some(NotifyErrorKind::MaybeDelivered)),
    ];
    for (answer, kind) in cases {
        let (url, requests) = raw_peer(answer).await;
        let notifier = HttpNotifier::builder(url, WebhookSecret::parse(SECRET).unwrap())
            .request_timeout(Duration::from_secs(5))
            .build()
            .unwrap()
            .retry(RetryPolicy::immediate(3));
        let result = bounded(notifier.send(&msg())).await;
        assert_eq!(result.as_ref().err().map(|e| e.kind()), kind, "{result:?}");
        assert_eq!(requests.load(Ordering::SeqCst), 1, "{result:?}");
    }
}
