//! Real providers behind the `OtpRouter`, over real sockets: the router on
//! an axum server, `TwilioSms` talking to the fake Twilio and `SmtpEmail` to
//! the SMTP sink, all on 127.0.0.1.
#![allow(clippy::unwrap_used)] // test helpers: a panic is how a test fails
#![cfg(all(
    feature = "moka",
    feature = "twilio",
    feature = "smtp",
    feature = "axum"
))]

mod support;

use std::time::Duration;

use axum::Router;
use http::StatusCode;
use serde_json::{Value, json};
use support::fake_twilio::{ACCOUNT_SID, AUTH_TOKEN, FakeTwilio, Reply};
use support::http::{Http, serve};
use support::smtp_sink::{SmtpSink, parse_mime};
use tower_otp::clock::ManualClock;
use tower_otp::notify::{
    ByChannel, Notifier, NotifierExt, RetryPolicy, SmtpConfig, SmtpEmail, TwilioAuth, TwilioSender,
    TwilioSms,
};
use tower_otp::otp::OtpRouter;
use tower_otp::store::MemoryStore;

const SECRET: &str = "hV3qN8xK2mR7tW4zL9cB6pJ1fD5sG0yE";
const PHONE: &str = "+14155550100";
const EMAIL: &str = "ada@example.com";

fn twilio(fake: &FakeTwilio) -> TwilioSms {
    TwilioSms::builder(
        ACCOUNT_SID,
        TwilioAuth::AuthToken(AUTH_TOKEN.into()),
        TwilioSender::From("+15005550006".into()),
    )
    .base_url(fake.base_url())
    .request_timeout(Duration::from_secs(5))
    .build()
    .unwrap()
}

fn smtp(sink: &SmtpSink) -> SmtpEmail {
    let config = SmtpConfig::parse_url(&sink.url(None)).unwrap();
    SmtpEmail::builder(config, "Acme <no-reply@acme.example>")
        .build()
        .unwrap()
}

async fn start<N: Notifier>(notifier: N) -> Http {
    let router = OtpRouter::builder(MemoryStore::new(), notifier)
        .secret(SECRET)
        .clock(ManualClock::default())
        .build()
        .unwrap();
    Http::new(serve(Router::new().nest_service("/auth", router)).await)
}

/// The code in an SMS body sent by the default template (`123456 is your …`).
fn code_in(body: &str) -> String {
    let code: String = body.chars().take_while(char::is_ascii_digit).collect();
    assert!(code.len() >= 4, "no code at the start of {body:?}");
    code
}

async fn verify(http: &Http, id: &Value, code: &str) -> (StatusCode, Value) {
    let mut body = id.clone();
    body["code"] = code.into();
    let reply = http.post_json("/auth/otp/verify", &body).await;
    (reply.status, reply.json())
}

#[tokio::test]
async fn permanent_twilio_failure_is_502_and_the_code_is_void() {
    let fake = FakeTwilio::start().await;
    fake.script([Reply::Error {
        status: 400,
        code: 21211,
    }]);
    let http = start(twilio(&fake).retry(RetryPolicy::immediate(3))).await;
    let id = json!({ "phone": PHONE });

    let reply = http.post_json("/auth/otp/request", &id).await;
    assert_eq!(reply.status, StatusCode::BAD_GATEWAY);
    assert_eq!(reply.code(), "delivery_failed");
    let text = String::from_utf8_lossy(&reply.body);
    assert!(
        !text.contains("21211") && !text.contains("twilio"),
        "no internals: {text}"
    );

    // Not retried; the code Twilio saw was rolled back.
    let received = fake.received();
    assert_eq!(received.len(), 1);
    let code = code_in(&received[0].form["Body"]);
    let (status, body) = verify(&http, &id, &code).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["code"], "invalid_code");
}

#[tokio::test]
async fn transient_twilio_failure_is_retried_then_202_and_the_code_works() {
    let fake = FakeTwilio::start().await;
    fake.script([
        Reply::Status {
            status: 500,
            retry_after: None,
        },
        Reply::Created,
    ]);
    let http = start(twilio(&fake).retry(RetryPolicy::immediate(3))).await;
    let id = json!({ "phone": PHONE });

    let reply = http.post_json("/auth/otp/request", &id).await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{:?}", reply.json());
    assert_eq!(reply.json()["status"], "pending");

    let received = fake.received();
    assert_eq!(received.len(), 2, "one failure, one retry");
    assert_eq!(received[1].form["To"], PHONE);
    let code = code_in(&received[1].form["Body"]);
    let (status, body) = verify(&http, &id, &code).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["access_token"].is_string());
}

#[tokio::test]
async fn twilio_2xx_with_an_unreadable_body_is_202_sent_once_and_the_code_works() {
    for broken in [Reply::CreatedCut, Reply::CreatedOversized] {
        let fake = FakeTwilio::start().await;
        fake.script([broken.clone(), Reply::Created, Reply::Created]);
        let http = start(twilio(&fake).retry(RetryPolicy::immediate(3))).await;
        let id = json!({ "phone": PHONE });

        let reply = http.post_json("/auth/otp/request", &id).await;
        assert_eq!(
            reply.status,
            StatusCode::ACCEPTED,
            "{broken:?}: {:?}",
            reply.json()
        );
        let received = fake.received();
        assert_eq!(
            received.len(),
            1,
            "{broken:?}: the code went out more than once"
        );
        // Not rolled back: the one code that went out verifies.
        let code = code_in(&received[0].form["Body"]);
        let (status, body) = verify(&http, &id, &code).await;
        assert_eq!(status, StatusCode::OK, "{broken:?}: {body}");
    }
}

#[tokio::test]
async fn by_channel_routes_phone_to_twilio_and_email_to_smtp() {
    let fake = FakeTwilio::start().await;
    let sink = SmtpSink::start().await;
    let notifier = ByChannel::new()
        .phone(twilio(&fake).retry(RetryPolicy::immediate(2)))
        .email(smtp(&sink).retry(RetryPolicy::immediate(2)));
    let http = start(notifier).await;

    let phone = json!({ "phone": PHONE });
    assert_eq!(
        http.post_json("/auth/otp/request", &phone).await.status,
        StatusCode::ACCEPTED
    );
    assert_eq!(fake.received().len(), 1);

    let email = json!({ "email": EMAIL });
    assert_eq!(
        http.post_json("/auth/otp/request", &email).await.status,
        StatusCode::ACCEPTED
    );
    let mails = sink.mails();
    assert_eq!(mails.len(), 1);
    assert_eq!(mails[0].rcpt_to, [EMAIL]);
    let parsed = parse_mime(&mails[0].data);
    let text = parsed.text.unwrap();
    let code: String = text
        .split_whitespace()
        .find(|w| w.len() >= 4 && w.chars().all(|c| c.is_ascii_digit()))
        .expect("a code in the text part")
        .to_owned();
    assert!(parsed.html.unwrap().contains(&code));
    let (status, _) = verify(&http, &email, &code).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn smtp_rejection_is_502_and_the_code_is_void() {
    let sink = SmtpSink::start().await;
    sink.reject_rcpt("550 5.1.1 no such user");
    let http = start(ByChannel::new().email(smtp(&sink).retry(RetryPolicy::immediate(3)))).await;
    let id = json!({ "email": EMAIL });
    let reply = http.post_json("/auth/otp/request", &id).await;
    assert_eq!(reply.status, StatusCode::BAD_GATEWAY);
    assert_eq!(reply.code(), "delivery_failed");
    assert!(sink.mails().is_empty());
}
