//! `TwilioSms` against a fake Twilio Messages API on loopback, alone and
//! inside the `Retry` / `Timeout` / `Fallback` combinators.
#![allow(clippy::unwrap_used)] // test helpers: a panic is how a test fails
#![cfg(feature = "twilio")]

mod support;

use std::time::Duration;

use support::fake_twilio::{ACCOUNT_SID, AUTH_TOKEN, FakeTwilio, Reply};
use tower_otp::notify::{
    Channel, Message, Notifier, NotifierExt, NotifyErrorKind, RetryPolicy, TwilioAuth,
    TwilioSender, TwilioSms, TwilioSmsBuilder,
};

const FROM: &str = "+15005550006";
const TO: &str = "+14155550100";

fn sms_to(fake: &FakeTwilio) -> TwilioSms {
    sms_at(&fake.base_url())
}

fn sms_at(base_url: &str) -> TwilioSms {
    builder_at(base_url).build().unwrap()
}

fn builder_at(base_url: &str) -> TwilioSmsBuilder {
    TwilioSms::builder(
        ACCOUNT_SID,
        TwilioAuth::AuthToken(AUTH_TOKEN.into()),
        TwilioSender::From(FROM.into()),
    )
    .base_url(base_url)
    .request_timeout(Duration::from_secs(5))
}

fn msg(channel: Channel) -> Message {
    Message::new(channel, TO, "482913", Duration::from_secs(600)).with_app_name("Acme")
}

/// Bounds a call that must not hang (generous; not a timing assertion).
async fn bounded<F: std::future::Future>(f: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(20), f)
        .await
        .expect("the notifier hung")
}

#[tokio::test]
async fn success_posts_the_form_with_basic_auth() {
    let fake = FakeTwilio::start().await;
    let delivery = bounded(sms_to(&fake).send(&msg(Channel::Sms)))
        .await
        .unwrap();
    let sid = delivery.provider_id.expect("message sid");
    assert!(sid.starts_with("SM"), "{sid}");

    let received = fake.received();
    assert_eq!(received.len(), 1);
    let r = &received[0];
    assert!(r.authorized);
    assert_eq!(
        r.path,
        format!("/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json")
    );
    assert_eq!(r.content_type, "application/x-www-form-urlencoded");
    assert_eq!(r.form["To"], TO);
    assert_eq!(r.form["From"], FROM);
    assert_eq!(
        r.form["Body"],
        "482913 is your Acme code. It expires in 10 minutes."
    );
    assert!(!r.form.contains_key("MessagingServiceSid"));
}

#[tokio::test]
async fn api_key_auth_and_messaging_service() {
    let key_sid = "SK00000000000000000000000000000002";
    let service = "MG00000000000000000000000000000003";
    let fake = FakeTwilio::with_credentials(key_sid, "key-secret").await;
    let sms = TwilioSms::builder(
        ACCOUNT_SID,
        TwilioAuth::ApiKey {
            sid: key_sid.into(),
            secret: "key-secret".into(),
        },
        TwilioSender::MessagingService(service.into()),
    )
    .base_url(fake.base_url())
    .build()
    .unwrap();
    bounded(sms.send(&msg(Channel::Sms))).await.unwrap();
    let r = &fake.received()[0];
    assert!(r.authorized);
    assert_eq!(r.form["MessagingServiceSid"], service);
    assert!(!r.form.contains_key("From"));
}

#[tokio::test]
async fn wrong_credentials_are_permanent() {
    let fake = FakeTwilio::with_credentials(ACCOUNT_SID, "the-real-token").await;
    let sms = sms_to(&fake).retry(RetryPolicy::immediate(3));
    let err = bounded(sms.send(&msg(Channel::Sms))).await.unwrap_err();
    assert_eq!(err.kind(), NotifyErrorKind::Permanent);
    assert_eq!(err.provider_code(), Some("20003"));
    assert_eq!(
        fake.received().len(),
        1,
        "a permanent failure is not retried"
    );
}

#[tokio::test]
async fn server_error_then_created_retries_exactly_once() {
    let fake = FakeTwilio::start().await;
    fake.script([
        Reply::Status {
            status: 500,
            retry_after: None,
        },
        Reply::Created,
    ]);
    let sms = sms_to(&fake).retry(RetryPolicy::immediate(3));
    let delivery = bounded(sms.send(&msg(Channel::Sms))).await.unwrap();
    assert!(delivery.provider_id.is_some());
    let received = fake.received();
    assert_eq!(received.len(), 2, "one failure, one retry");
    assert_eq!(
        received[0].form, received[1].form,
        "the retry sends the same message"
    );
}

#[tokio::test]
async fn invalid_number_is_permanent_and_not_retried() {
    let fake = FakeTwilio::start().await;
    fake.script([Reply::Error {
        status: 400,
        code: 21211,
    }]);
    let sms = sms_to(&fake).retry(RetryPolicy::immediate(5));
    let err = bounded(sms.send(&msg(Channel::Sms))).await.unwrap_err();
    assert_eq!(err.kind(), NotifyErrorKind::Permanent);
    assert_eq!(err.provider_code(), Some("21211"));
    assert_eq!(fake.received().len(), 1);
    // Twilio's message repeats the number; ours must not.
    let text = err.to_string();
    assert!(!text.contains("+1500") && !text.contains(TO), "{text}");
    assert!(text.contains("21211"), "{text}");
}

#[tokio::test]
async fn twilio_error_codes_map_to_kinds() {
    let cases = [
        (400, 21610, NotifyErrorKind::Permanent),
        (400, 21614, NotifyErrorKind::Permanent),
        (400, 21408, NotifyErrorKind::Permanent),
        (403, 20003, NotifyErrorKind::Permanent),
        (429, 20429, NotifyErrorKind::Retryable),
        (400, 14107, NotifyErrorKind::Retryable),
        (503, 20500, NotifyErrorKind::Retryable),
    ];
    let fake = FakeTwilio::start().await;
    let sms = sms_to(&fake);
    for (status, code, kind) in cases {
        fake.script([Reply::Error { status, code }]);
        let err = bounded(sms.send(&msg(Channel::Sms))).await.unwrap_err();
        assert_eq!(err.kind(), kind, "{status} / {code}");
        assert_eq!(err.provider_code(), Some(code.to_string().as_str()));
    }
}

#[tokio::test]
async fn too_many_requests_carries_retry_after() {
    let fake = FakeTwilio::start().await;
    fake.script([Reply::Status {
        status: 429,
        retry_after: Some(7),
    }]);
    let err = bounded(sms_to(&fake).send(&msg(Channel::Sms)))
        .await
        .unwrap_err();
    assert!(err.is_retryable());
    assert_eq!(err.retry_after(), Some(Duration::from_secs(7)));
    assert_eq!(err.provider_code(), Some("429"));
}

#[tokio::test]
async fn retry_honours_retry_after_then_succeeds() {
    let fake = FakeTwilio::start().await;
    fake.script([
        Reply::Status {
            status: 429,
            retry_after: Some(1),
        },
        Reply::Created,
    ]);
    let sms = sms_to(&fake).retry(RetryPolicy::immediate(2));
    bounded(sms.send(&msg(Channel::Sms))).await.unwrap();
    assert_eq!(fake.received().len(), 2);
}

#[tokio::test]
async fn stalled_response_times_out_as_maybe_delivered_and_is_not_retried() {
    // Twilio has the request; its answer does not come. It may have sent
    // the SMS: under Retry, still exactly one request.
    let fake = FakeTwilio::start().await;
    fake.script([Reply::Stall, Reply::Created]);
    let sms = builder_at(&fake.base_url())
        .request_timeout(Duration::from_millis(300))
        .build()
        .unwrap()
        .retry(RetryPolicy::immediate(3));
    let err = bounded(sms.send(&msg(Channel::Sms))).await.unwrap_err();
    assert_eq!(err.kind(), NotifyErrorKind::MaybeDelivered);
    assert_eq!(err.provider_code(), Some("timeout"));
    assert_eq!(fake.received().len(), 1);
}

#[tokio::test]
async fn stalled_response_cut_by_timeout_combinator_is_not_retried() {
    let fake = FakeTwilio::start().await;
    fake.script([Reply::Stall, Reply::Created]);
    let sms = sms_to(&fake)
        .timeout(Duration::from_millis(300))
        .retry(RetryPolicy::immediate(3));
    let err = bounded(sms.send(&msg(Channel::Sms))).await.unwrap_err();
    assert_eq!(err.kind(), NotifyErrorKind::MaybeDelivered);
    assert_eq!(fake.received().len(), 1);
}

#[tokio::test]
async fn truncated_2xx_body_is_delivered_once_under_retry() {
    let fake = FakeTwilio::start().await;
    fake.script([Reply::CreatedCut, Reply::Created, Reply::Created]);
    let sms = sms_to(&fake).retry(RetryPolicy::immediate(3));
    let delivery = bounded(sms.send(&msg(Channel::Sms))).await.unwrap();
    assert_eq!(delivery.provider_id, None, "the sid was in the lost part");
    assert_eq!(fake.received().len(), 1, "Twilio took it: sent once");
}

#[tokio::test]
async fn oversized_2xx_body_is_delivered_once_under_retry() {
    let fake = FakeTwilio::start().await;
    fake.script([Reply::CreatedOversized, Reply::Created, Reply::Created]);
    let sms = sms_to(&fake).retry(RetryPolicy::immediate(3));
    let delivery = bounded(sms.send(&msg(Channel::Sms))).await.unwrap();
    assert_eq!(
        delivery.provider_id, None,
        "the body is not read past 64 KiB"
    );
    assert_eq!(fake.received().len(), 1, "Twilio took it: sent once");
}

#[tokio::test]
async fn connection_closed_after_the_request_is_maybe_delivered_and_not_retried() {
    let fake = FakeTwilio::start().await;
    fake.script([Reply::Hangup, Reply::Created, Reply::Created]);
    let sms = sms_to(&fake).retry(RetryPolicy::immediate(3));
    let err = bounded(sms.send(&msg(Channel::Sms))).await.unwrap_err();
    assert_eq!(err.kind(), NotifyErrorKind::MaybeDelivered);
    assert!(!err.is_retryable() && err.may_have_been_delivered());
    assert_eq!(err.provider_code(), Some("io"));
    assert_eq!(fake.received().len(), 1);
}

#[tokio::test]
async fn maybe_delivered_does_not_fall_back_to_a_second_account() {
    let primary = FakeTwilio::start().await;
    let secondary = FakeTwilio::start().await;
    primary.script([Reply::Hangup]);
    let notifier = sms_to(&primary)
        .retry(RetryPolicy::immediate(3))
        .or_else(sms_to(&secondary));
    let err = bounded(notifier.send(&msg(Channel::Sms)))
        .await
        .unwrap_err();
    assert!(err.may_have_been_delivered());
    assert_eq!(
        (primary.received().len(), secondary.received().len()),
        (1, 0)
    );
}

/// Collects what the `tracing` subscriber writes, for log assertions.
#[derive(Clone, Default)]
struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn unreadable_2xx_body_logs_a_warning_without_number_or_code() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let fake = FakeTwilio::start().await;
    fake.script([Reply::CreatedCut, Reply::CreatedOversized]);
    let sms = sms_to(&fake).retry(RetryPolicy::immediate(3));
    for _ in 0..2 {
        bounded(sms.send(&msg(Channel::Sms))).await.unwrap();
    }
    assert_eq!(fake.received().len(), 2);
    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let warnings: Vec<&str> = logs.lines().filter(|l| l.contains("WARN")).collect();
    assert_eq!(warnings.len(), 2, "{logs}");
    assert!(warnings[0].contains("cut short"), "{logs}");
    assert!(warnings[1].contains("too large"), "{logs}");
    assert!(warnings.iter().all(|w| w.contains("delivered")), "{logs}");
    assert!(!logs.contains(TO) && !logs.contains("4155550100"), "{logs}");
    assert!(!logs.contains("482913"), "{logs}");
}

#[tokio::test]
async fn connection_refused_is_retryable() {
    let port = support::unused_port();
    let sms = sms_at(&format!("http://127.0.0.1:{port}"));
    let err = bounded(sms.send(&msg(Channel::Sms))).await.unwrap_err();
    assert!(err.is_retryable());
    assert_eq!(err.provider_code(), Some("connect"));
}

#[tokio::test]
async fn fallback_to_a_second_account() {
    let primary = FakeTwilio::start().await;
    let secondary = FakeTwilio::start().await;
    primary.script([
        Reply::Status {
            status: 503,
            retry_after: None,
        },
        Reply::Status {
            status: 503,
            retry_after: None,
        },
    ]);
    let notifier = sms_to(&primary)
        .retry(RetryPolicy::immediate(2))
        .or_else(sms_to(&secondary));
    let delivery = bounded(notifier.send(&msg(Channel::Sms))).await.unwrap();
    assert!(delivery.provider_id.is_some());
    assert_eq!(primary.received().len(), 2, "primary retried, then gave up");
    assert_eq!(secondary.received().len(), 1);
    assert_eq!(secondary.received()[0].form["To"], TO);
}

#[tokio::test]
async fn fallback_after_permanent_failure() {
    let primary = FakeTwilio::start().await;
    let secondary = FakeTwilio::start().await;
    primary.script([Reply::Error {
        status: 400,
        code: 21408,
    }]);
    let notifier = sms_to(&primary)
        .retry(RetryPolicy::immediate(3))
        .or_else(sms_to(&secondary));
    bounded(notifier.send(&msg(Channel::Sms))).await.unwrap();
    assert_eq!(
        (primary.received().len(), secondary.received().len()),
        (1, 1)
    );
}

#[tokio::test]
async fn whatsapp_addressing() {
    let fake = FakeTwilio::start().await;
    let sms = sms_to(&fake);
    bounded(sms.send(&msg(Channel::Whatsapp))).await.unwrap();
    let wa = builder_at(&fake.base_url())
        .whatsapp_from("+14155238886")
        .build()
        .unwrap();
    bounded(wa.send(&msg(Channel::Whatsapp))).await.unwrap();
    let received = fake.received();
    assert_eq!(received[0].form["To"], format!("whatsapp:{TO}"));
    assert_eq!(received[0].form["From"], format!("whatsapp:{FROM}"));
    assert!(received[0].form["Body"].starts_with("*482913*"));
    assert_eq!(received[1].form["From"], "whatsapp:+14155238886");
}

#[tokio::test]
async fn email_and_voice_are_refused_without_a_request() {
    let fake = FakeTwilio::start().await;
    let sms = sms_to(&fake);
    for channel in [Channel::Email, Channel::Voice] {
        let err = bounded(sms.send(&msg(channel))).await.unwrap_err();
        assert_eq!(err.kind(), NotifyErrorKind::Permanent);
    }
    assert!(fake.received().is_empty());
}

#[tokio::test]
async fn from_vars_talks_to_the_configured_base_url() {
    let fake = FakeTwilio::start().await;
    let base = fake.base_url();
    let sms = TwilioSms::builder_from_vars(|name| match name {
        "TWILIO_ACCOUNT_SID" => Some(ACCOUNT_SID.into()),
        "TWILIO_AUTH_TOKEN" => Some(AUTH_TOKEN.into()),
        "TWILIO_FROM" => Some(FROM.into()),
        "TWILIO_BASE_URL" => Some(base.clone()),
        _ => None,
    })
    .unwrap()
    .build()
    .unwrap();
    bounded(sms.send(&msg(Channel::Sms))).await.unwrap();
    assert!(fake.received()[0].authorized);
}

#[tokio::test]
async fn ready_fetches_the_account_without_sending() {
    let fake = FakeTwilio::start().await;
    let ready = bounded(sms_to(&fake).ready()).await;
    assert!(matches!(ready, Some(Ok(()))), "{ready:?}");
    let received = fake.received();
    assert_eq!(received.len(), 1);
    assert_eq!(
        received[0].path,
        format!("/2010-04-01/Accounts/{ACCOUNT_SID}.json")
    );
    assert!(received[0].authorized);

    let wrong = FakeTwilio::with_credentials(ACCOUNT_SID, "the-real-token").await;
    let err = bounded(sms_to(&wrong).ready()).await.unwrap().unwrap_err();
    assert_eq!(err.kind(), NotifyErrorKind::Permanent);
    assert_eq!(err.provider_code(), Some("20003"));

    let port = support::unused_port();
    let gone = sms_at(&format!("http://127.0.0.1:{port}"));
    let err = bounded(gone.ready()).await.unwrap().unwrap_err();
    assert_eq!(err.kind(), NotifyErrorKind::Retryable);
}
