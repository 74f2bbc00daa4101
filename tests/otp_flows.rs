//! The OTP login flows over real sockets: an axum server on 127.0.0.1:0, a
//! real HTTP client, `MemoryStore`, `MemoryNotifier` and a manual clock.
#![cfg(feature = "moka")]

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::routing::get;
use axum::{Extension, Json, Router};
use http::{Method, StatusCode};
use serde_json::{Value, json};
use support::http::{Http, Reply, serve};
use tower_otp::clock::ManualClock;
use tower_otp::events::{EventKind, MemorySink};
use tower_otp::identifier::Identifier;
use tower_otp::jwt::{Claims, JwtKeys};
use tower_otp::notify::{Delivery, MemoryNotifier, Message, Notifier, NotifyError};
use tower_otp::otp::{OtpRouter, OtpRouterBuilder, ResolveError, Subject, SubjectResolver};
use tower_otp::quota::Quota;
use tower_otp::store::MemoryStore;

const SECRET: &str = "hV3qN8xK2mR7tW4zL9cB6pJ1fD5sG0yE";
const PHONE: &str = "+14155550100";
const EMAIL: &str = "ada@example.com";

async fn me(Extension(claims): Extension<Claims<Value>>) -> Json<Value> {
    Json(json!({ "subject": claims.registered().sub, "plan": claims.custom()["plan"] }))
}

/// A router over `notifier` with a manual clock and an event sink.
fn builder<N: Notifier>(
    notifier: N,
) -> (OtpRouterBuilder<MemoryStore, N>, ManualClock, MemorySink) {
    let clock = ManualClock::default();
    let sink = MemorySink::new();
    let b = OtpRouter::builder(MemoryStore::new(), notifier)
        .secret(SECRET)
        .clock(clock.clone())
        .events(sink.clone());
    (b, clock, sink)
}

/// Serves `router` at /auth plus a protected /api/me, like the quickstart.
async fn start<N: Notifier, R: SubjectResolver>(router: OtpRouter<MemoryStore, N, R>) -> Http {
    let api = Router::new()
        .route("/api/me", get(me))
        .route_layer(router.jwt_layer::<Value>());
    let app = Router::new().merge(api).nest_service("/auth", router);
    // The router reads the client address from axum's `ConnectInfo`.
    Http::new(serve(app).await)
}

async fn default_server() -> (Http, MemoryNotifier, ManualClock, MemorySink) {
    let notifier = MemoryNotifier::new();
    let (b, clock, sink) = builder(notifier.clone());
    (start(b.build().unwrap()).await, notifier, clock, sink)
}

async fn request_code(http: &Http, id: &Value) -> Reply {
    http.post_json("/auth/otp/request", id).await
}

async fn verify(http: &Http, id: &Value, code: &str) -> Reply {
    let mut body = id.clone();
    body["code"] = code.into();
    http.post_json("/auth/otp/verify", &body).await
}

fn assert_problem(reply: &Reply, status: StatusCode, code: &str) {
    assert_eq!(
        reply.status,
        status,
        "body: {}",
        String::from_utf8_lossy(&reply.body)
    );
    assert_eq!(reply.code(), code);
    assert_eq!(reply.header("content-type"), "application/problem+json");
}

fn assert_429(reply: &Reply, code: &str) {
    assert_problem(reply, StatusCode::TOO_MANY_REQUESTS, code);
    let retry: u64 = reply.header("retry-after").parse().unwrap();
    assert!(retry >= 1);
    assert_eq!(reply.header("cache-control"), "no-store");
}

/// Logs in and returns the token response.
async fn login(http: &Http, notifier: &MemoryNotifier, id: &Value, to: &str) -> Value {
    assert_eq!(request_code(http, id).await.status, StatusCode::ACCEPTED);
    let code = notifier.last_code(to).expect("a code was sent");
    let reply = verify(http, id, &code).await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.json());
    assert_eq!(reply.header("cache-control"), "no-store");
    reply.json()
}

#[tokio::test]
async fn phone_happy_path() {
    let (http, notifier, _, sink) = default_server().await;
    let id = json!({ "phone": "+1 (415) 555-0100" });
    let reply = request_code(&http, &id).await;
    assert_eq!(reply.status, StatusCode::ACCEPTED);
    assert_eq!(
        reply.json(),
        json!({"status": "pending", "expires_in": 600, "resend_after": 30})
    );
    let msg = &notifier.messages()[0];
    assert_eq!(msg.to, PHONE, "normalised to E.164");
    assert_eq!(msg.code.len(), 6);

    let tokens = verify(&http, &id, &msg.code).await.json();
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["expires_in"], 900);
    assert!(tokens["refresh_token"].as_str().unwrap().len() > 40);
    let access = tokens["access_token"].as_str().unwrap();

    let session = http.get_bearer("/auth/session", access).await;
    assert_eq!(session.status, StatusCode::OK);
    assert!(
        session.json()["subject"]
            .as_str()
            .unwrap()
            .starts_with("usr_")
    );
    let me = http.get_bearer("/api/me", access).await;
    assert_eq!(me.status, StatusCode::OK);
    assert_eq!(me.json()["subject"], session.json()["subject"]);
    assert_eq!(
        sink.kinds(),
        [
            EventKind::OtpRequested,
            EventKind::OtpSent,
            EventKind::OtpVerified
        ]
    );
    // Events never carry the raw identifier.
    assert!(!format!("{:?}", sink.events()).contains("4155550100"));
}

#[tokio::test]
async fn email_happy_path_with_resolver_claims() {
    let notifier = MemoryNotifier::new();
    let (b, _, _) = builder(notifier.clone());
    let resolver = |id: Identifier| async move {
        Ok::<_, ResolveError>(
            Subject::new(format!("user:{}", id.as_str()))
                .with_claim("plan", "pro")
                .with_claim("exp", 1),
        )
    };
    let http = start(b.subject_resolver(resolver).build().unwrap()).await;
    let id = json!({ "email": "Ada@Example.COM" });
    let tokens = login(&http, &notifier, &id, EMAIL).await;
    assert_eq!(notifier.messages()[0].channel.as_str(), "email");
    let access = tokens["access_token"].as_str().unwrap();
    let me = http.get_bearer("/api/me", access).await.json();
    assert_eq!(
        me,
        json!({"subject": "user:ada@example.com", "plan": "pro"})
    );
    let session = http.get_bearer("/auth/session", access).await.json();
    assert_eq!(
        session["claims"],
        json!({"plan": "pro"}),
        "resolver cannot override exp"
    );
    assert!(session["expires_at"].as_u64().unwrap() > 1);
}

/// An issued access token carries every registered claim the router sets,
/// `iss` and `aud` when configured, and the subject's own claims — each
/// name once — and nothing else.
#[tokio::test]
async fn access_token_claims_are_complete_and_unique() {
    use base64::Engine;
    let notifier = MemoryNotifier::new();
    let (b, _, _) = builder(notifier.clone());
    let resolver = |_id: Identifier| async move {
        Ok::<_, ResolveError>(
            Subject::new("usr_1")
                .with_claim("plan", "pro")
                .with_claim("sid", "forged")
                .with_claim("auth_time", 1),
        )
    };
    let router = b
        .issuer("https://auth.example")
        .audience("app")
        .subject_resolver(resolver)
        .build()
        .unwrap();
    let http = start(router).await;
    let tokens = login(&http, &notifier, &json!({ "email": EMAIL }), EMAIL).await;
    let access = tokens["access_token"].as_str().unwrap();
    let payload = access.split('.').nth(1).unwrap();
    let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    let text = String::from_utf8(payload).unwrap();
    let claims: serde_json::Map<String, Value> = serde_json::from_str(&text).unwrap();
    let mut names: Vec<&str> = claims.keys().map(String::as_str).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "amr",
            "aud",
            "auth_time",
            "exp",
            "iat",
            "iss",
            "jti",
            "plan",
            "sid",
            "sub"
        ]
    );
    for name in &names {
        assert_eq!(
            text.matches(&format!("\"{name}\":")).count(),
            1,
            "{name} in {text}"
        );
    }
    assert_eq!(claims["iss"], "https://auth.example");
    assert_eq!(claims["aud"], "app");
    assert_eq!(claims["sub"], "usr_1");
    assert_eq!(claims["plan"], "pro");
    assert_ne!(claims["sid"], "forged", "the resolver cannot set sid");
    assert_eq!(claims["jti"].as_str().unwrap().len(), 22);
    assert_eq!(
        claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap(),
        900
    );
    // Without an issuer or audience, neither claim is written.
    let (http, notifier, _, _) = default_server().await;
    let tokens = login(&http, &notifier, &json!({ "email": EMAIL }), EMAIL).await;
    let payload = tokens["access_token"]
        .as_str()
        .unwrap()
        .split('.')
        .nth(1)
        .unwrap()
        .to_owned();
    let text = String::from_utf8(
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap();
    assert!(
        !text.contains("\"iss\"") && !text.contains("\"aud\""),
        "{text}"
    );
}

#[tokio::test]
async fn refresh_rotates_and_reuse_revokes_the_family() {
    let (http, notifier, clock, sink) = default_server().await;
    let id = json!({ "phone": PHONE });
    let first = login(&http, &notifier, &id, PHONE).await;
    let r1 = first["refresh_token"].as_str().unwrap().to_owned();

    let second = http
        .post_json("/auth/token/refresh", &json!({ "refresh_token": r1 }))
        .await;
    assert_eq!(second.status, StatusCode::OK);
    assert_eq!(second.header("cache-control"), "no-store");
    let second = second.json();
    let r2 = second["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(r1, r2);
    assert_ne!(first["access_token"], second["access_token"]);

    // Two tabs refreshing at once: within the grace window, the same successor.
    let again = http
        .post_json("/auth/token/refresh", &json!({ "refresh_token": r1 }))
        .await
        .json();
    assert_eq!(again["refresh_token"].as_str(), Some(r2.as_str()));

    let third = http
        .post_json("/auth/token/refresh", &json!({ "refresh_token": r2 }))
        .await
        .json();
    let r3 = third["refresh_token"].as_str().unwrap().to_owned();
    let access3 = third["access_token"].as_str().unwrap().to_owned();
    assert_eq!(
        http.get_bearer("/auth/session", &access3).await.status,
        StatusCode::OK
    );

    // Replaying a rotated token after the grace window: refused, family revoked.
    clock.advance(Duration::from_secs(60));
    let replay = http
        .post_json("/auth/token/refresh", &json!({ "refresh_token": r1 }))
        .await;
    assert_problem(&replay, StatusCode::BAD_REQUEST, "invalid_grant");
    let current = http
        .post_json("/auth/token/refresh", &json!({ "refresh_token": r3 }))
        .await;
    assert_problem(&current, StatusCode::BAD_REQUEST, "invalid_grant");
    assert_problem(
        &http.get_bearer("/auth/session", &access3).await,
        StatusCode::UNAUTHORIZED,
        "invalid_token",
    );
    assert_eq!(
        http.get_bearer("/api/me", &access3).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert!(sink.kinds().contains(&EventKind::TokenReuseDetected));
}

#[tokio::test]
async fn logout_revokes_session() {
    let (http, notifier, _, _) = default_server().await;
    let tokens = login(&http, &notifier, &json!({ "email": EMAIL }), EMAIL).await;
    let access = tokens["access_token"].as_str().unwrap();
    let refresh = tokens["refresh_token"].as_str().unwrap();
    // Used (and cached by the JwtLayer) before the logout.
    assert_eq!(
        http.get_bearer("/api/me", access).await.status,
        StatusCode::OK
    );
    let out = http.post_bearer("/auth/logout", access).await;
    assert_eq!(out.status, StatusCode::NO_CONTENT);
    assert_problem(
        &http.get_bearer("/auth/session", access).await,
        StatusCode::UNAUTHORIZED,
        "invalid_token",
    );
    assert_eq!(
        http.get_bearer("/api/me", access).await.status,
        StatusCode::UNAUTHORIZED
    );
    let r = http
        .post_json("/auth/token/refresh", &json!({ "refresh_token": refresh }))
        .await;
    assert_problem(&r, StatusCode::BAD_REQUEST, "invalid_grant");
    // A second logout with the same token is refused.
    assert_problem(
        &http.post_bearer("/auth/logout", access).await,
        StatusCode::UNAUTHORIZED,
        "invalid_token",
    );
}

#[tokio::test]
async fn five_wrong_codes_burn_the_challenge() {
    let notifier = MemoryNotifier::new();
    let (b, _, sink) = builder(notifier.clone());
    let http = start(
        b.configure(|c| c.limits.verify_per_identifier = Quota::per_hour(100))
            .build()
            .unwrap(),
    )
    .await;
    let id = json!({ "phone": PHONE });
    request_code(&http, &id).await;
    let code = notifier.last_code(PHONE).unwrap();
    let wrong = if code == "000000" { "111111" } else { "000000" };
    for _ in 0..4 {
        assert_problem(
            &verify(&http, &id, wrong).await,
            StatusCode::BAD_REQUEST,
            "invalid_code",
        );
    }
    assert_429(&verify(&http, &id, wrong).await, "too_many_attempts");
    assert_problem(
        &verify(&http, &id, &code).await,
        StatusCode::BAD_REQUEST,
        "invalid_code",
    );
    assert!(sink.kinds().contains(&EventKind::OtpLocked));
}

#[tokio::test]
async fn expired_code_fails() {
    let (http, notifier, clock, _) = default_server().await;
    let id = json!({ "email": EMAIL });
    request_code(&http, &id).await;
    let code = notifier.last_code(EMAIL).unwrap();
    clock.advance(Duration::from_secs(600));
    assert_problem(
        &verify(&http, &id, &code).await,
        StatusCode::BAD_REQUEST,
        "invalid_code",
    );
}

#[tokio::test]
async fn code_just_before_expiry_works_once() {
    let (http, notifier, clock, _) = default_server().await;
    let id = json!({ "email": EMAIL });
    request_code(&http, &id).await;
    let code = notifier.last_code(EMAIL).unwrap();
    clock.advance(Duration::from_secs(599));
    assert_eq!(verify(&http, &id, &code).await.status, StatusCode::OK);
    assert_problem(
        &verify(&http, &id, &code).await,
        StatusCode::BAD_REQUEST,
        "invalid_code",
    );
}

/// A store that cannot hold the session spends no code: with the record
/// table full, a correct code gets 503, and once room is free the same code
/// logs in (it used to be spent before the session failed: 400).
#[tokio::test]
async fn a_full_store_spends_no_code() {
    let notifier = MemoryNotifier::new();
    // Two logins fill it: each is a session family and its subject's index.
    let store = MemoryStore::builder().max_records(4).build();
    let router = OtpRouter::builder(store, notifier.clone())
        .secret(SECRET)
        .clock(ManualClock::default())
        .configure(|c| c.refresh_ttl = Duration::from_secs(1))
        .build()
        .unwrap();
    let http = start(router).await;
    for email in ["a@example.com", "b@example.com"] {
        login(&http, &notifier, &json!({ "email": email }), email).await;
    }
    let id = json!({ "email": EMAIL });
    assert_eq!(request_code(&http, &id).await.status, StatusCode::ACCEPTED);
    let code = notifier.last_code(EMAIL).unwrap();
    assert_problem(
        &verify(&http, &id, &code).await,
        StatusCode::SERVICE_UNAVAILABLE,
        "store_unavailable",
    );
    // The two sessions expire (on the store's real clock) and free room.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let reply = verify(&http, &id, &code).await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.json());
}

#[tokio::test]
async fn code_is_bound_to_its_identifier() {
    let (http, notifier, clock, _) = default_server().await;
    request_code(&http, &json!({ "email": EMAIL })).await;
    clock.advance(Duration::from_secs(31));
    request_code(&http, &json!({ "email": "bob@example.com" })).await;
    let bobs = notifier.last_code("bob@example.com").unwrap();
    let r = verify(&http, &json!({ "email": EMAIL }), &bobs).await;
    if notifier.last_code(EMAIL).unwrap() != bobs {
        assert_problem(&r, StatusCode::BAD_REQUEST, "invalid_code");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_concurrent_verifies_one_success() {
    let notifier = MemoryNotifier::new();
    let (b, _, _) = builder(notifier.clone());
    let http = start(
        b.configure(|c| c.limits.verify_per_identifier = Quota::per_hour(1000))
            .build()
            .unwrap(),
    )
    .await;
    let id = json!({ "phone": PHONE });
    request_code(&http, &id).await;
    let code = notifier.last_code(PHONE).unwrap();
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let (http, id, code) = (http.clone(), id.clone(), code.clone());
        tasks.push(tokio::spawn(async move {
            verify(&http, &id, &code).await.status
        }));
    }
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == StatusCode::OK).count(),
        1,
        "{statuses:?}"
    );
    assert!(
        statuses
            .iter()
            .all(|s| s.is_client_error() || *s == StatusCode::OK),
        "{statuses:?}"
    );
}

#[tokio::test]
async fn per_identifier_request_limit() {
    let (http, notifier, clock, sink) = default_server().await;
    let id = json!({ "email": EMAIL });
    for _ in 0..3 {
        assert_eq!(request_code(&http, &id).await.status, StatusCode::ACCEPTED);
        clock.advance(Duration::from_secs(31));
    }
    assert_429(&request_code(&http, &id).await, "rate_limited");
    assert_eq!(notifier.messages().len(), 3);
    assert!(
        sink.events()
            .iter()
            .any(|e| e.reason == Some("request_per_identifier"))
    );
}

#[tokio::test]
async fn per_ip_request_limit() {
    let (http, notifier, _, sink) = default_server().await;
    for i in 0..5 {
        let r = request_code(&http, &json!({ "email": format!("user{i}@example.com") })).await;
        assert_eq!(r.status, StatusCode::ACCEPTED);
    }
    assert_429(
        &request_code(&http, &json!({ "email": "user9@example.com" })).await,
        "rate_limited",
    );
    assert_eq!(notifier.messages().len(), 5);
    assert!(
        sink.events()
            .iter()
            .any(|e| e.reason == Some("request_per_ip"))
    );
}

#[tokio::test]
async fn resend_cooldown_and_resend_voids_old_code() {
    let (http, notifier, clock, _) = default_server().await;
    let id = json!({ "phone": PHONE });
    request_code(&http, &id).await;
    let old = notifier.last_code(PHONE).unwrap();
    let r = request_code(&http, &id).await;
    assert_429(&r, "rate_limited");
    assert_eq!(r.header("retry-after"), "30");
    clock.advance(Duration::from_secs(30));
    assert_eq!(request_code(&http, &id).await.status, StatusCode::ACCEPTED);
    let new = notifier.last_code(PHONE).unwrap();
    if new != old {
        assert_problem(
            &verify(&http, &id, &old).await,
            StatusCode::BAD_REQUEST,
            "invalid_code",
        );
    }
    assert_eq!(verify(&http, &id, &new).await.status, StatusCode::OK);
}

#[tokio::test]
async fn verify_limit_counts_across_challenges() {
    let notifier = MemoryNotifier::new();
    let (b, clock, _) = builder(notifier.clone());
    let http = start(b.configure(|c| c.max_attempts = 10).build().unwrap()).await;
    let id = json!({ "email": EMAIL });
    for round in 0..5 {
        if round % 2 == 0 {
            // A fresh challenge does not buy new guesses.
            request_code(&http, &id).await;
            clock.advance(Duration::from_secs(31));
        }
        let code = notifier.last_code(EMAIL).unwrap();
        let wrong = if code == "999999" { "888888" } else { "999999" };
        assert_problem(
            &verify(&http, &id, wrong).await,
            StatusCode::BAD_REQUEST,
            "invalid_code",
        );
    }
    let code = notifier.last_code(EMAIL).unwrap();
    assert_429(&verify(&http, &id, &code).await, "rate_limited");
}

#[tokio::test]
async fn known_and_unknown_identifiers_get_identical_answers() {
    #[derive(Clone)]
    struct KnownOnly;
    impl SubjectResolver for KnownOnly {
        async fn resolve(
            &self,
            id: &Identifier,
            _: &tower_otp::identifier::HashedId,
        ) -> Result<Subject, ResolveError> {
            Ok(Subject::new(id.as_str()))
        }
        async fn may_request(&self, id: &Identifier) -> Result<bool, ResolveError> {
            Ok(id.as_str() == EMAIL)
        }
    }
    // Default mode (anyone may log in) and known-users-only mode.
    for known_only in [false, true] {
        let notifier = MemoryNotifier::new();
        let (b, _, _) = builder(notifier.clone());
        let http = start(
            b.subject_resolver(KnownOnly)
                .known_users_only(known_only)
                .build()
                .unwrap(),
        )
        .await;
        let known = request_code(&http, &json!({ "email": EMAIL })).await;
        let unknown = request_code(&http, &json!({ "email": "nobody@example.com" })).await;
        assert_eq!(known.status, StatusCode::ACCEPTED);
        assert_eq!(known.status, unknown.status);
        assert_eq!(known.body, unknown.body);
        let strip = |r: &Reply| {
            let mut h = r.headers.clone();
            h.remove("date");
            h
        };
        assert_eq!(strip(&known), strip(&unknown));
        if known_only {
            for _ in 0..200 {
                if !notifier.messages().is_empty() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            let to: Vec<String> = notifier.messages().into_iter().map(|m| m.to).collect();
            assert_eq!(to, [EMAIL], "only the known identifier gets a message");
        }
    }
}

/// Records the message it was asked to send, then fails permanently.
#[derive(Debug, Default, Clone)]
struct FailingNotifier(Arc<Mutex<Vec<Message>>>);

impl Notifier for FailingNotifier {
    async fn send(&self, msg: &Message) -> Result<Delivery, NotifyError> {
        self.0.lock().unwrap().push(msg.clone());
        Err(NotifyError::permanent("provider said no"))
    }
}

#[tokio::test]
async fn failed_delivery_is_502_and_rolls_back() {
    let notifier = FailingNotifier::default();
    let (b, _, sink) = builder(notifier.clone());
    let http = start(b.build().unwrap()).await;
    let id = json!({ "phone": PHONE });
    let r = request_code(&http, &id).await;
    assert_problem(&r, StatusCode::BAD_GATEWAY, "delivery_failed");
    assert!(
        !String::from_utf8_lossy(&r.body).contains("provider said no"),
        "no internals leak"
    );
    let code = notifier.0.lock().unwrap()[0].code.clone();
    assert_problem(
        &verify(&http, &id, &code).await,
        StatusCode::BAD_REQUEST,
        "invalid_code",
    );
    assert!(sink.kinds().contains(&EventKind::OtpDeliveryFailed));
}

#[tokio::test]
async fn country_rules() {
    let notifier = MemoryNotifier::new();
    let (b, _, _) = builder(notifier.clone());
    let http = start(b.allow_calling_codes(["1", "44"]).build().unwrap()).await;
    let refused = request_code(&http, &json!({ "phone": "+33612345678" })).await;
    assert_problem(&refused, StatusCode::FORBIDDEN, "country_not_allowed");
    assert_eq!(
        request_code(&http, &json!({ "phone": "+447700900123" }))
            .await
            .status,
        StatusCode::ACCEPTED
    );

    // The library default refuses premium / international-network ranges.
    let (http, _, _, _) = default_server().await;
    let r = request_code(&http, &json!({ "phone": "+882123456789" })).await;
    assert_problem(&r, StatusCode::FORBIDDEN, "country_not_allowed");
    assert_eq!(
        request_code(&http, &json!({ "phone": "+33612345678" }))
            .await
            .status,
        StatusCode::ACCEPTED
    );
}

#[tokio::test]
async fn bad_input_is_a_clear_4xx() {
    let (http, _, _, _) = default_server().await;
    let json_ct = [("content-type", "application/json")];
    let big = format!(r#"{{"email":"{}@example.com"}}"#, "a".repeat(9000));
    type Case<'a> = (
        &'a str,
        Vec<(&'a str, &'a str)>,
        String,
        StatusCode,
        &'a str,
    );
    let cases: Vec<Case<'_>> = vec![
        (
            "/auth/otp/request",
            json_ct.to_vec(),
            big,
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
        ),
        (
            "/auth/otp/request",
            vec![("content-type", "text/plain")],
            r#"{"email":"a@b.example"}"#.into(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        ),
        (
            "/auth/otp/request",
            vec![],
            r#"{"email":"a@b.example"}"#.into(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        ),
        (
            "/auth/otp/request",
            json_ct.to_vec(),
            r#"{"email": "#.into(),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            "/auth/otp/request",
            json_ct.to_vec(),
            "\u{0}\u{1}garbage".into(),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            "/auth/otp/request",
            json_ct.to_vec(),
            r#"{"email": 42}"#.into(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "unprocessable",
        ),
        (
            "/auth/otp/request",
            json_ct.to_vec(),
            r#"[1,2]"#.into(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "unprocessable",
        ),
        (
            "/auth/otp/request",
            json_ct.to_vec(),
            r#"{}"#.into(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "unprocessable",
        ),
        (
            "/auth/otp/request",
            json_ct.to_vec(),
            r#"{"email":"a@b.example","phone":"+14155550100"}"#.into(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "unprocessable",
        ),
        (
            "/auth/otp/request",
            json_ct.to_vec(),
            r#"{"phone":"0044 20 7946 0958"}"#.into(),
            StatusCode::BAD_REQUEST,
            "invalid_phone",
        ),
        (
            "/auth/otp/request",
            json_ct.to_vec(),
            r#"{"phone":"+１４１５５５５０１００"}"#.into(),
            StatusCode::BAD_REQUEST,
            "invalid_phone",
        ),
        (
            "/auth/otp/request",
            json_ct.to_vec(),
            r#"{"email":"not-an-address"}"#.into(),
            StatusCode::BAD_REQUEST,
            "invalid_email",
        ),
        (
            "/auth/otp/request",
            json_ct.to_vec(),
            r#"{"email":"a@b.example","channel":"sms"}"#.into(),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            "/auth/otp/request",
            json_ct.to_vec(),
            r#"{"phone":"+14155550100","channel":"pigeon"}"#.into(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "unprocessable",
        ),
        (
            "/auth/otp/request",
            json_ct.to_vec(),
            r#"{"phone":"+14155550100","locale":"<script>"}"#.into(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "unprocessable",
        ),
        (
            "/auth/otp/verify",
            json_ct.to_vec(),
            r#"{"email":"a@b.example","code":"١٢٣٤٥٦"}"#.into(),
            StatusCode::BAD_REQUEST,
            "invalid_code",
        ),
        (
            "/auth/otp/verify",
            json_ct.to_vec(),
            r#"{"email":"a@b.example","code":"12345"}"#.into(),
            StatusCode::BAD_REQUEST,
            "invalid_code",
        ),
        (
            "/auth/otp/verify",
            json_ct.to_vec(),
            r#"{"email":"a@b.example","code":123456}"#.into(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "unprocessable",
        ),
        (
            "/auth/otp/verify",
            json_ct.to_vec(),
            r#"{"email":"a@b.example"}"#.into(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "unprocessable",
        ),
        (
            "/auth/token/refresh",
            json_ct.to_vec(),
            r#"{"refresh_token":"nope"}"#.into(),
            StatusCode::BAD_REQUEST,
            "invalid_grant",
        ),
        (
            "/auth/token/refresh",
            json_ct.to_vec(),
            format!(
                r#"{{"refresh_token":"{}.{}"}}"#,
                "A".repeat(22),
                "B".repeat(43)
            ),
            StatusCode::BAD_REQUEST,
            "invalid_grant",
        ),
    ];
    for (path, headers, body, status, code) in cases {
        let r = http.send(Method::POST, path, &headers, body.clone()).await;
        assert_eq!(
            r.status,
            status,
            "{path} {body:.80}: {}",
            String::from_utf8_lossy(&r.body)
        );
        assert_eq!(r.code(), code, "{path} {body:.80}");
    }
    assert_problem(
        &http.send(Method::GET, "/auth/otp/request", &[], "").await,
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
    );
    assert_problem(
        &http.send(Method::GET, "/auth/nope", &[], "").await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
}

#[tokio::test]
async fn bad_tokens_are_401() {
    let (http, notifier, _, _) = default_server().await;
    let tokens = login(&http, &notifier, &json!({ "email": EMAIL }), EMAIL).await;
    let good = tokens["access_token"].as_str().unwrap();
    let parts: Vec<&str> = good.split('.').collect();
    use base64::Engine;
    let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
    let payload = String::from_utf8(
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(parts[1])
            .unwrap(),
    )
    .unwrap();
    let alg_none = format!("{}.{}.", b64(r#"{"alg":"none","typ":"JWT"}"#), parts[1]);
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        b64(&payload.replace("usr_", "adm_")),
        parts[2]
    );
    let other_key = JwtKeys::new("default", "Wq4zT8mK1xV6nR3bH9cL2pJ7fD5sG0yA").unwrap();
    let wrong_key = tower_otp::jwt::encode(
        &other_key,
        &serde_json::from_str::<Value>(&payload).unwrap(),
    )
    .unwrap();
    let huge = "a".repeat(20_000);
    // The good token is verified (and cached by the JwtLayer) first: a
    // tampered copy must still be refused.
    assert_eq!(
        http.get_bearer("/api/me", good).await.status,
        StatusCode::OK
    );
    let tokens = [
        alg_none.as_str(),
        tampered.as_str(),
        wrong_key.as_str(),
        "junk",
        "a.b.c",
        "",
    ];
    for path in ["/auth/session", "/api/me"] {
        for t in tokens {
            let r = http.get_bearer(path, t).await;
            assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{path} {t:.40}");
        }
        for auth in [
            "Basic dXNlcjpwYXNz",
            "Bearer",
            "Bearer  x",
            huge.as_str(),
            "bearer é",
        ] {
            let r = http
                .send(Method::GET, path, &[("authorization", auth)], "")
                .await;
            assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{path} {auth:.40}");
            assert!(r.header("www-authenticate").starts_with("Bearer"));
        }
        assert_eq!(
            http.send(Method::GET, path, &[], "").await.status,
            StatusCode::UNAUTHORIZED
        );
    }
    let r = http
        .send(
            Method::POST,
            "/auth/logout",
            &[("authorization", "Bearer junk")],
            "",
        )
        .await;
    assert_problem(&r, StatusCode::UNAUTHORIZED, "invalid_token");
}

#[tokio::test]
async fn health_endpoints() {
    let (http, _, _, _) = default_server().await;
    let live = http.send(Method::GET, "/auth/health/live", &[], "").await;
    assert_eq!(
        (live.status, live.json()),
        (StatusCode::OK, json!({"status": "ok"}))
    );
    let ready = http.send(Method::GET, "/auth/health/ready", &[], "").await;
    assert_eq!(
        (ready.status, ready.json()),
        (StatusCode::OK, json!({"status": "ok"}))
    );
}

#[tokio::test]
async fn weak_configuration_is_refused() {
    let b = || OtpRouter::builder(MemoryStore::new(), MemoryNotifier::new());
    assert_eq!(b().build().unwrap_err().setting, "secret");
    assert_eq!(b().secret("short").build().unwrap_err().setting, "secret");
    assert_eq!(
        b().secret(SECRET)
            .configure(|c| c.code_length = 3)
            .build()
            .unwrap_err()
            .setting,
        "code_length"
    );
    assert_eq!(
        b().secret(SECRET)
            .configure(|c| c.code_length = 11)
            .build()
            .unwrap_err()
            .setting,
        "code_length"
    );
    let zero = b()
        .secret(SECRET)
        .configure(|c| c.limits.request_per_ip = Quota::per_hour(0))
        .build();
    assert_eq!(zero.unwrap_err().setting, "limits.request_per_ip");
    assert!(format!("{:?}", b().secret(SECRET)).contains("redacted"));
    assert!(!format!("{:?}", b().secret(SECRET)).contains(&SECRET[..8]));
    // Long enough but guessable: refused at build time, before any token
    // could be forged with it.
    for weak in [
        "x".repeat(32),
        "test secret that is long enough to be accepted".to_owned(),
        "changeme-changeme-changeme-changeme".to_owned(),
        "0123456789abcdef0123456789abcdef".to_owned(),
    ] {
        assert_eq!(b().secret(&weak).build().unwrap_err().setting, "secret");
    }
}
