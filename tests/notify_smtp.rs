//! `SmtpEmail` (lettre) against a small SMTP server on loopback.
#![allow(clippy::unwrap_used)] // test helpers: a panic is how a test fails
#![cfg(feature = "smtp")]

mod support;

use std::time::Duration;

use support::smtp_sink::{MAX_DATA_LINE, SmtpSink, TestPki, parse_mime};
use tower_otp::notify::template::{EmailTemplate, Templates};
use tower_otp::notify::{
    Channel, Message, Notifier, NotifierExt, NotifyErrorKind, RetryPolicy, SmtpConfig, SmtpEmail,
    SmtpEmailBuilder, SmtpTls,
};

const FROM: &str = "Acme Login <no-reply@acme.example>";

fn email_to(sink: &SmtpSink) -> SmtpEmail {
    email_builder(sink).build().unwrap()
}

fn email_builder(sink: &SmtpSink) -> SmtpEmailBuilder {
    let config = SmtpConfig::parse_url(&sink.url(None))
        .unwrap()
        .with_command_timeout(Duration::from_secs(5));
    SmtpEmail::builder(config, FROM)
}

fn msg() -> Message {
    Message::new(
        Channel::Email,
        "ada@example.com",
        "739184",
        Duration::from_secs(900),
    )
    .with_app_name("Acme")
}

async fn bounded<F: std::future::Future>(f: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(20), f)
        .await
        .expect("the notifier hung")
}

#[tokio::test]
async fn message_arrives_with_code_in_both_parts_and_right_headers() {
    let sink = SmtpSink::start().await;
    let delivery = bounded(email_to(&sink).send(&msg())).await.unwrap();

    let mails = sink.mails();
    assert_eq!(mails.len(), 1);
    let mail = &mails[0];
    assert_eq!(mail.mail_from, "no-reply@acme.example");
    assert_eq!(mail.rcpt_to, ["ada@example.com"]);

    let parsed = parse_mime(&mail.data);
    let from = parsed.header("From").unwrap();
    assert!(
        from.contains("Acme Login") && from.contains("<no-reply@acme.example>"),
        "{from}"
    );
    assert_eq!(parsed.header("To"), Some("ada@example.com"));
    assert_eq!(parsed.header("Subject"), Some("Your Acme sign-in code"));
    assert!(
        parsed
            .header("Content-Type")
            .unwrap()
            .starts_with("multipart/alternative")
    );
    // The Message-ID is what the notifier reports.
    assert_eq!(parsed.header("Message-ID"), delivery.provider_id.as_deref());

    let text = parsed.text.expect("text/plain part");
    let html = parsed.html.expect("text/html part");
    assert!(text.contains("739184"), "{text}");
    assert!(text.contains("15 minutes"), "{text}");
    assert!(html.contains("739184"), "{html}");
    assert!(html.contains("<p"), "{html}");
}

#[tokio::test]
async fn html_part_escapes_template_variables() {
    let sink = SmtpSink::start().await;
    let templates = Templates::builder()
        .email(
            "",
            EmailTemplate::new(
                "{{app_name}}: your code",
                "Hello {{name}}, your code is {{code}}.",
                "<p>Hello <b>{{name}}</b>, your code is {{code}}.</p>",
            ),
        )
        .build()
        .unwrap();
    let notifier = email_builder(&sink).templates(templates).build().unwrap();
    // Non-ASCII forces a transfer encoding (quoted-printable or base64).
    let m = msg()
        .with_app_name("Zoë & Co")
        .with_var("name", "Zoë <script>alert(1)</script>");
    bounded(notifier.send(&m)).await.unwrap();

    let raw = &sink.mails()[0].data;
    assert!(
        raw.contains("Content-Transfer-Encoding: quoted-printable")
            || raw.contains("Content-Transfer-Encoding: base64"),
        "the parts were expected to be encoded: {raw}"
    );
    let parsed = parse_mime(raw);
    let text = parsed.text.clone().unwrap();
    let html = parsed.html.clone().unwrap();
    assert_eq!(
        text.trim_end(),
        "Hello Zoë <script>alert(1)</script>, your code is 739184."
    );
    assert_eq!(
        html.trim_end(),
        "<p>Hello <b>Zoë &lt;script&gt;alert(1)&lt;/script&gt;</b>, your code is 739184.</p>"
    );
    let subject = parsed.header("Subject").unwrap();
    // lettre encodes non-ASCII subjects (RFC 2047); either way no raw CR/LF.
    assert!(
        subject.contains("Co") || subject.starts_with("=?"),
        "{subject}"
    );
}

#[tokio::test]
async fn locale_selects_the_email_template() {
    let sink = SmtpSink::start().await;
    let templates = Templates::builder()
        .email(
            "de",
            EmailTemplate::new(
                "Ihr {{app_name}}-Code",
                "Ihr Code: {{code}}",
                "<p>Ihr Code: {{code}}</p>",
            ),
        )
        .build()
        .unwrap();
    let notifier = email_builder(&sink).templates(templates).build().unwrap();
    bounded(notifier.send(&msg().with_locale("de-CH")))
        .await
        .unwrap();
    let parsed = parse_mime(&sink.mails()[0].data);
    assert_eq!(parsed.header("Subject"), Some("Ihr Acme-Code"));
    assert_eq!(parsed.text.unwrap().trim_end(), "Ihr Code: 739184");
}

#[tokio::test]
async fn rejected_recipient_is_permanent() {
    let sink = SmtpSink::start().await;
    sink.reject_rcpt("550 5.1.1 <ada@example.com>: Recipient address rejected");
    let notifier = email_to(&sink).retry(RetryPolicy::immediate(3));
    let err = bounded(notifier.send(&msg())).await.unwrap_err();
    assert_eq!(err.kind(), NotifyErrorKind::Permanent);
    assert_eq!(err.provider_code(), Some("550"));
    assert!(!err.to_string().contains("ada@"), "{err}");
    assert!(sink.mails().is_empty());
}

#[tokio::test]
async fn deferred_recipient_is_retryable() {
    let sink = SmtpSink::start().await;
    sink.reject_rcpt("451 4.7.1 Greylisted, try again later");
    let err = bounded(email_to(&sink).send(&msg())).await.unwrap_err();
    assert_eq!(err.kind(), NotifyErrorKind::Retryable);
    assert_eq!(err.provider_code(), Some("451"));
}

#[tokio::test]
async fn credentials_are_used_and_checked() {
    let sink = SmtpSink::with_credentials("mailer", "s3cret").await;
    let good = SmtpConfig::parse_url(&sink.url(Some(("mailer", "s3cret")))).unwrap();
    bounded(SmtpEmail::builder(good, FROM).build().unwrap().send(&msg()))
        .await
        .unwrap();
    assert_eq!(
        sink.mails()[0].auth,
        Some(("mailer".into(), "s3cret".into()))
    );

    let bad = SmtpConfig::parse_url(&sink.url(Some(("mailer", "wrong")))).unwrap();
    let err = bounded(SmtpEmail::builder(bad, FROM).build().unwrap().send(&msg()))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), NotifyErrorKind::Permanent);
    assert_eq!(err.provider_code(), Some("535"));
    assert_eq!(sink.auth_failures(), 1);
    assert_eq!(sink.mails().len(), 1);
}

#[tokio::test]
async fn unreachable_relay_is_retryable() {
    let port = support::unused_port();
    let config = SmtpConfig::parse_url(&format!("smtp://127.0.0.1:{port}?tls=none")).unwrap();
    let err = bounded(
        SmtpEmail::builder(config, FROM)
            .build()
            .unwrap()
            .send(&msg()),
    )
    .await
    .unwrap_err();
    assert_eq!(err.kind(), NotifyErrorKind::Retryable);
}

#[tokio::test]
async fn invalid_recipient_and_wrong_channel_fail_without_a_connection() {
    let sink = SmtpSink::start().await;
    let notifier = email_to(&sink);
    let mut bad = msg();
    bad.to = "not an address".into();
    assert_eq!(
        bounded(notifier.send(&bad))
            .await
            .unwrap_err()
            .provider_code(),
        Some("invalid_recipient")
    );
    let mut sms = msg();
    sms.channel = Channel::Sms;
    assert_eq!(
        bounded(notifier.send(&sms)).await.unwrap_err().kind(),
        NotifyErrorKind::Permanent
    );
    assert!(sink.mails().is_empty());
}

#[tokio::test]
async fn from_vars_sends_through_the_configured_relay() {
    let sink = SmtpSink::start().await;
    let url = sink.url(None);
    let notifier = SmtpEmail::builder_from_vars(|name| match name {
        "SMTP_URL" => Some(url.clone()),
        "SMTP_FROM" => Some(FROM.into()),
        _ => None,
    })
    .unwrap()
    .build()
    .unwrap();
    bounded(notifier.send(&msg())).await.unwrap();
    assert_eq!(sink.mails().len(), 1);
}

#[tokio::test]
async fn ready_probes_the_relay_without_sending() {
    let sink = SmtpSink::with_credentials("mailer", "s3cret").await;
    let good = SmtpConfig::parse_url(&sink.url(Some(("mailer", "s3cret")))).unwrap();
    let ready = bounded(SmtpEmail::builder(good, FROM).build().unwrap().ready()).await;
    assert!(matches!(ready, Some(Ok(()))), "{ready:?}");

    let bad = SmtpConfig::parse_url(&sink.url(Some(("mailer", "wrong")))).unwrap();
    let err = bounded(SmtpEmail::builder(bad, FROM).build().unwrap().ready())
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(err.kind(), NotifyErrorKind::Permanent);
    assert_eq!(err.provider_code(), Some("535"));
    assert!(sink.mails().is_empty(), "a readiness probe sent a message");

    let port = support::unused_port();
    let gone = SmtpConfig::parse_url(&format!("smtp://127.0.0.1:{port}?tls=none")).unwrap();
    let err = bounded(SmtpEmail::builder(gone, FROM).build().unwrap().ready())
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(err.kind(), NotifyErrorKind::Retryable);
}

/// Every line of `data` (what went over the wire in DATA) fits RFC 5322's
/// 998 octets + CRLF.
fn assert_lines_fit(data: &str) {
    let longest = data.split("\r\n").map(str::len).max().unwrap_or(0);
    assert!(longest + 2 <= MAX_DATA_LINE, "a line of {longest} octets");
}

#[tokio::test]
async fn sink_refuses_lines_over_998_octets_like_a_relay() {
    // The sink's check is what the tests below rely on: a hand-written
    // DATA with one long line is refused, and nothing is queued.
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let sink = SmtpSink::start().await;
    let mut conn = BufReader::new(tokio::net::TcpStream::connect(sink.addr).await.unwrap());
    let long = "x".repeat(999);
    let script = format!(
        "EHLO t\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<c@d.example>\r\nDATA\r\nSubject: {long}\r\n\r\nhi\r\n.\r\nQUIT\r\n"
    );
    conn.get_mut().write_all(script.as_bytes()).await.unwrap();
    let mut replies = String::new();
    while !replies.contains("221 ") {
        let mut line = String::new();
        assert_ne!(
            bounded(conn.read_line(&mut line)).await.unwrap(),
            0,
            "{replies}"
        );
        replies.push_str(&line);
    }
    assert!(replies.contains("\r\n500 5.5.2"), "{replies}");
    assert_eq!(sink.long_line_refusals(), 1);
    assert!(sink.mails().is_empty());
}

#[tokio::test]
async fn long_app_name_in_the_subject_is_folded_and_decodes_back() {
    // A tenant's app name of 1 500 characters with no space: lettre folds
    // only at spaces, so the Subject line alone would be 1 519 octets.
    let sink = SmtpSink::start().await;
    let app_name = format!("Acme{}", "-Login".repeat(250));
    bounded(email_to(&sink).send(&msg().with_app_name(app_name.as_str())))
        .await
        .unwrap();
    assert_eq!(sink.long_line_refusals(), 0);
    let mails = sink.mails();
    assert_eq!(mails.len(), 1);
    assert_lines_fit(&mails[0].data);
    let parsed = parse_mime(&mails[0].data);
    assert_eq!(
        parsed.decoded_header("Subject").unwrap(),
        format!("Your {app_name} sign-in code")
    );
    assert!(parsed.text.unwrap().contains("739184"));
}

#[tokio::test]
async fn subjects_over_998_octets_of_every_shape_decode_back() {
    let sink = SmtpSink::start().await;
    let templates = Templates::builder()
        .email(
            "",
            EmailTemplate::new("{{app_name}} {{word}}", "{{code}}", "<p>{{code}}</p>"),
        )
        .build()
        .unwrap();
    let notifier = email_builder(&sink).templates(templates).build().unwrap();
    let cases = [
        // ASCII words with spaces between: folded at the spaces.
        (
            "Acme Login ".repeat(120).trim_end().to_owned(),
            "code".to_owned(),
        ),
        // One long ASCII word, then a short one.
        ("a".repeat(2000), "z".to_owned()),
        // Non-ASCII without spaces (RFC 2047 from the start), and a URL.
        (
            "Zoë".repeat(400),
            format!("https://acme.example/{}", "p".repeat(1200)),
        ),
        // Runs of spaces survive as they are (the template has already
        // turned control characters into spaces and trimmed the ends).
        (format!("x  y   {}", "q".repeat(1100)), "w".to_owned()),
    ];
    for (i, (app, word)) in cases.iter().enumerate() {
        let m = msg()
            .with_app_name(app.as_str())
            .with_var("word", word.as_str());
        bounded(notifier.send(&m)).await.unwrap();
        let mails = sink.mails();
        assert_eq!(mails.len(), i + 1, "case {i} was refused");
        assert_lines_fit(&mails[i].data);
        let parsed = parse_mime(&mails[i].data);
        assert_eq!(
            parsed.decoded_header("Subject").unwrap(),
            format!("{app} {word}"),
            "case {i}"
        );
    }
    assert_eq!(sink.long_line_refusals(), 0);
}

/// A notifier for a TLS sink at `sink`, trusting `ca` when given.
fn tls_email(sink: &SmtpSink, tls: SmtpTls, host: &str, ca: Option<&str>) -> SmtpEmail {
    let mut config = SmtpConfig::new(host, tls)
        .with_port(sink.addr.port())
        .with_command_timeout(Duration::from_secs(5));
    if let Some(ca) = ca {
        config = config.with_root_certificate(ca);
    }
    SmtpEmail::builder(config, FROM).build().unwrap()
}

/// The error and its causes, as one text.
fn chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(e) = source {
        text.push_str(" / ");
        text.push_str(&e.to_string());
        source = e.source();
    }
    text
}

#[tokio::test]
async fn starttls_to_a_relay_behind_a_private_ca() {
    let pki = TestPki::new();
    let sink = SmtpSink::starttls(&pki).await;
    for host in ["127.0.0.1", "localhost"] {
        let email = tls_email(&sink, SmtpTls::StartTls, host, Some(&pki.ca_pem));
        bounded(email.send(&msg())).await.unwrap();
        assert!(matches!(bounded(email.ready()).await, Some(Ok(()))));
    }
    let mails = sink.mails();
    assert_eq!(mails.len(), 2);
    assert!(mails.iter().all(|m| m.tls), "a message went in clear text");
    assert!(parse_mime(&mails[0].data).text.unwrap().contains("739184"));
}

#[tokio::test]
async fn implicit_tls_to_a_relay_behind_a_private_ca() {
    let pki = TestPki::new();
    let sink = SmtpSink::implicit_tls(&pki).await;
    let email = tls_email(&sink, SmtpTls::Implicit, "127.0.0.1", Some(&pki.ca_pem));
    bounded(email.send(&msg())).await.unwrap();
    let mails = sink.mails();
    assert_eq!(mails.len(), 1);
    assert!(mails[0].tls);
}

#[tokio::test]
async fn without_the_ca_the_relay_certificate_is_not_trusted() {
    let pki = TestPki::new();
    // A CA of the same name that did not sign the relay's leaf.
    let other = TestPki::new();
    for (sink, tls) in [
        (SmtpSink::starttls(&pki).await, SmtpTls::StartTls),
        (SmtpSink::implicit_tls(&pki).await, SmtpTls::Implicit),
    ] {
        for ca in [None, Some(other.ca_pem.as_str())] {
            let email = tls_email(&sink, tls, "127.0.0.1", ca);
            let err = bounded(email.send(&msg())).await.unwrap_err();
            assert_eq!(err.provider_code(), Some("tls"), "{tls:?} {}", chain(&err));
            let text = chain(&err);
            // No CA: UnknownIssuer. A CA of the same name that did not
            // sign the leaf: BadSignature. Both refuse the certificate.
            assert!(
                text.contains("invalid peer certificate"),
                "{tls:?}: not refused for the certificate: {text}"
            );
        }
        assert!(sink.mails().is_empty(), "{tls:?}: a message got through");
    }
}

#[tokio::test]
async fn the_ca_does_not_relax_the_host_name_check() {
    // The CA is trusted, but its leaf names another host than the one
    // dialled: refused all the same.
    let pki = TestPki::for_names(&["relay.internal.example"]);
    let sink = SmtpSink::implicit_tls(&pki).await;
    let email = tls_email(&sink, SmtpTls::Implicit, "127.0.0.1", Some(&pki.ca_pem));
    let err = bounded(email.send(&msg())).await.unwrap_err();
    assert_eq!(err.provider_code(), Some("tls"), "{}", chain(&err));
    assert!(
        chain(&err).contains("not valid for name"),
        "{}",
        chain(&err)
    );
    assert!(sink.mails().is_empty());
}
