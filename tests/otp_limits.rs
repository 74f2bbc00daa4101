//! The router's limits and refusals, called in process so that every request
//! names its own client address (a `ClientIp` extension, as `SetClientIpLayer`
//! would put it): all-or-nothing limits, the per-IP verify limit, the
//! `RateLimit` fields of its 429s, RFC 6750 / RFC 6749 refusals, identical
//! answers for known and unknown identifiers, and the weak-code opt-in.
#![cfg(feature = "moka")]
#![allow(clippy::unwrap_used)]

use std::net::IpAddr;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use serde_json::{Value, json};
use tower::ServiceExt;
use tower_otp::client_ip::ClientIp;
use tower_otp::clock::ManualClock;
use tower_otp::identifier::{HashedId, Identifier};
use tower_otp::notify::{MemoryNotifier, Notifier};
use tower_otp::otp::{
    OtpRouter, OtpRouterBuilder, ResolveError, Subject, SubjectResolver, WEAK_CODE_LENGTHS,
};
use tower_otp::quota::Quota;
use tower_otp::store::MemoryStore;

const SECRET: &str = "Zp4wL8qT1nX6vB3kR9mC2hJ7dF5sG0yA";

/// What the router answered.
#[derive(Debug, Clone, PartialEq)]
struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    fn code(&self) -> String {
        self.json()["code"].as_str().unwrap_or_default().to_owned()
    }

    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .map_or("", |v| v.to_str().unwrap_or_default())
    }
}

fn builder(
    notifier: MemoryNotifier,
) -> (OtpRouterBuilder<MemoryStore, MemoryNotifier>, ManualClock) {
    let clock = ManualClock::default();
    let b = OtpRouter::builder(MemoryStore::new(), notifier)
        .secret(SECRET)
        .clock(clock.clone());
    (b, clock)
}

async fn call<N: Notifier, R: SubjectResolver>(
    router: &OtpRouter<MemoryStore, N, R>,
    method: Method,
    path: &str,
    ip: &str,
    headers: &[(&str, &str)],
    body: Option<&Value>,
) -> Reply {
    let mut req = Request::builder().method(method).uri(path);
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    if body.is_some() {
        req = req.header("content-type", "application/json");
    }
    let bytes = body.map_or_else(Bytes::new, |b| Bytes::from(serde_json::to_vec(b).unwrap()));
    let mut req = req.body(Full::new(bytes)).unwrap();
    req.extensions_mut()
        .insert(ClientIp(ip.parse::<IpAddr>().unwrap()));
    let res = router.clone().oneshot(req).await.unwrap();
    let (parts, body) = res.into_parts();
    Reply {
        status: parts.status,
        headers: parts.headers,
        body: body.collect().await.unwrap().to_bytes(),
    }
}

async fn request_code<N: Notifier, R: SubjectResolver>(
    router: &OtpRouter<MemoryStore, N, R>,
    ip: &str,
    id: &Value,
) -> Reply {
    call(router, Method::POST, "/otp/request", ip, &[], Some(id)).await
}

async fn verify<N: Notifier, R: SubjectResolver>(
    router: &OtpRouter<MemoryStore, N, R>,
    ip: &str,
    id: &Value,
    code: &str,
) -> Reply {
    let mut body = id.clone();
    body["code"] = code.into();
    call(router, Method::POST, "/otp/verify", ip, &[], Some(&body)).await
}

fn email(n: usize) -> Value {
    json!({ "email": format!("user{n}@example.com") })
}

/// The `t` of the one item of a `RateLimit` value.
fn reset_of(item: &str) -> u64 {
    item.rsplit("t=").next().unwrap().parse().unwrap()
}

/// A 429 as DESIGN.md wants every one: `Retry-After` ≥ every `RateLimit`
/// reset, `Cache-Control: no-store`, the violated policies named in the
/// body and in both fields, in order.
fn assert_429(reply: &Reply, code: &str, policies: &[&str]) {
    assert_eq!(reply.status, StatusCode::TOO_MANY_REQUESTS, "{reply:?}");
    assert_eq!(reply.code(), code);
    assert_eq!(reply.header("content-type"), "application/problem+json");
    assert_eq!(reply.header("cache-control"), "no-store");
    assert_eq!(
        reply.json()["violated-policies"],
        json!(policies),
        "{reply:?}"
    );
    let retry: u64 = reply.header("retry-after").parse().unwrap();
    assert!(retry >= 1, "{reply:?}");
    let declared: Vec<&str> = reply.header("ratelimit-policy").split(", ").collect();
    let items: Vec<&str> = reply.header("ratelimit").split(", ").collect();
    assert_eq!(
        (declared.len(), items.len()),
        (policies.len(), policies.len()),
        "{reply:?}"
    );
    for ((policy, declared), item) in policies.iter().zip(declared).zip(items) {
        assert!(
            declared.starts_with(&format!("\"{policy}\";q=")),
            "{reply:?}"
        );
        assert!(
            item.starts_with(&format!("\"{policy}\";r=0;t=")),
            "{reply:?}"
        );
        assert!(retry >= reset_of(item), "Retry-After {retry} < {item}");
    }
}

#[tokio::test]
async fn a_request_refused_by_one_limit_spends_none_of_the_others() {
    let notifier = MemoryNotifier::new();
    let (b, _) = builder(notifier.clone());
    let mut limits = tower_otp::otp::Limits::default();
    limits.request_per_ip = Quota::per_hour(1);
    limits.request_per_identifier = Quota::per_hour(1);
    limits.global_messages = Quota::per_hour(2);
    let router = b.limits(limits).build().unwrap();

    assert_eq!(
        request_code(&router, "192.0.2.1", &email(1)).await.status,
        StatusCode::ACCEPTED
    );
    // Refused by 192.0.2.1's per-IP limit: must not spend user2's one
    // request nor the second message of the global budget.
    for _ in 0..3 {
        assert_429(
            &request_code(&router, "192.0.2.1", &email(2)).await,
            "rate_limited",
            &["request_per_ip"],
        );
    }
    assert_eq!(
        request_code(&router, "192.0.2.2", &email(2)).await.status,
        StatusCode::ACCEPTED,
        "the refused requests spent user2's or the global budget"
    );
    // Now the global budget (2) is spent, by exactly the two accepted ones.
    assert_429(
        &request_code(&router, "192.0.2.3", &email(3)).await,
        "rate_limited",
        &["global_messages"],
    );
    assert_eq!(notifier.messages().len(), 2);
}

#[tokio::test]
async fn a_request_refused_by_a_later_limit_spends_no_per_ip_quota() {
    let notifier = MemoryNotifier::new();
    let (b, clock) = builder(notifier.clone());
    let mut limits = tower_otp::otp::Limits::default();
    limits.request_per_ip = Quota::per_hour(2);
    limits.request_per_identifier = Quota::per_hour(1);
    let router = b.limits(limits).build().unwrap();
    let ip = "192.0.2.1";
    assert_eq!(
        request_code(&router, ip, &email(1)).await.status,
        StatusCode::ACCEPTED
    );
    // Refused by the resend cooldown and the identifier's limit, then
    // (after the cooldown) by the identifier's limit alone: neither may
    // spend the address's second request.
    assert_429(
        &request_code(&router, ip, &email(1)).await,
        "rate_limited",
        &["resend_cooldown", "request_per_identifier"],
    );
    clock.advance(Duration::from_secs(31));
    let r = request_code(&router, ip, &email(1)).await;
    assert_429(&r, "rate_limited", &["request_per_identifier"]);
    assert_eq!(
        request_code(&router, ip, &email(2)).await.status,
        StatusCode::ACCEPTED,
        "a refused request spent the per-IP budget"
    );
    assert_429(
        &request_code(&router, ip, &email(3)).await,
        "rate_limited",
        &["request_per_ip"],
    );
}

#[tokio::test]
async fn verify_is_limited_per_client_ip_across_identifiers() {
    let (b, _) = builder(MemoryNotifier::new());
    let router = b.verify_per_ip(Quota::per_hour(3)).build().unwrap();
    // One address walking identifiers: each identifier's own limit is
    // untouched, the address's is not.
    for n in 0..3 {
        let r = verify(&router, "198.51.100.7", &email(n), "123456").await;
        assert_eq!(
            (r.status, r.code().as_str()),
            (StatusCode::BAD_REQUEST, "invalid_code")
        );
    }
    let walked = verify(&router, "198.51.100.7", &email(3), "123456").await;
    assert_429(&walked, "rate_limited", &["verify_per_ip"]);
    assert_eq!(
        walked.header("ratelimit-policy"),
        "\"verify_per_ip\";q=3;w=3600"
    );
    // Another address is not affected, and neither is that identifier.
    let r = verify(&router, "198.51.100.8", &email(3), "123456").await;
    assert_eq!(r.code(), "invalid_code");
}

#[test]
fn verify_per_ip_has_a_nat_friendly_default() {
    let limits = tower_otp::otp::Limits::default();
    assert_eq!(limits.verify_per_ip, Quota::per_hour(100));
    let (b, _) = builder(MemoryNotifier::new());
    let err = b.verify_per_ip(Quota::per_hour(0)).build().unwrap_err();
    assert_eq!(err.setting, "limits.verify_per_ip");
}

#[tokio::test]
async fn router_429s_carry_ratelimit_fields() {
    let notifier = MemoryNotifier::new();
    let (b, clock) = builder(notifier.clone());
    let router = b.build().unwrap();
    let ip = "203.0.113.9";
    // Per-IP (5 / hour): the 6th request.
    for n in 0..5 {
        assert_eq!(
            request_code(&router, ip, &email(n)).await.status,
            StatusCode::ACCEPTED
        );
    }
    let r = request_code(&router, ip, &email(9)).await;
    assert_429(&r, "rate_limited", &["request_per_ip"]);
    assert_eq!(
        r.header("ratelimit-policy"),
        "\"request_per_ip\";q=5;w=3600"
    );
    // One request every 12 minutes: the next is allowed in 720 s.
    assert_eq!(r.header("ratelimit"), "\"request_per_ip\";r=0;t=720");
    assert_eq!(r.header("retry-after"), "720");

    // Resend cooldown (30 s), from another address.
    clock.advance(Duration::from_secs(10));
    let r = request_code(&router, "203.0.113.10", &email(0)).await;
    assert_429(&r, "rate_limited", &["resend_cooldown"]);
    assert_eq!(r.header("ratelimit"), "\"resend_cooldown\";r=0;t=20");
    assert_eq!(r.header("retry-after"), "20");

    // A burned challenge: too_many_attempts names max_attempts.
    let id = email(0);
    let code = notifier.last_code("user0@example.com").unwrap();
    let wrong = if code == "000000" { "111111" } else { "000000" };
    for _ in 0..4 {
        assert_eq!(verify(&router, ip, &id, wrong).await.code(), "invalid_code");
    }
    let r = verify(&router, ip, &id, wrong).await;
    assert_429(&r, "too_many_attempts", &["max_attempts"]);
    assert_eq!(r.header("ratelimit-policy"), "\"max_attempts\";q=5");
    assert_eq!(r.header("ratelimit"), "\"max_attempts\";r=0;t=30");

    // verify_per_identifier (5 / hour): the 6th verify.
    let r = verify(&router, ip, &id, &code).await;
    assert_429(&r, "rate_limited", &["verify_per_identifier"]);
}

#[tokio::test]
async fn refresh_errors_are_invalid_grant_400() {
    let (b, _) = builder(MemoryNotifier::new());
    let router = b.build().unwrap();
    // Malformed, and well-formed but unknown (reuse: tests/otp_flows.rs).
    let unknown = format!("{}.{}", "A".repeat(22), "B".repeat(43));
    for token in ["nope", unknown.as_str()] {
        let r = call(
            &router,
            Method::POST,
            "/token/refresh",
            "192.0.2.1",
            &[],
            Some(&json!({ "refresh_token": token })),
        )
        .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{r:?}");
        assert_eq!(r.code(), "invalid_grant");
        assert_eq!(r.header("cache-control"), "no-store");
    }
}

#[tokio::test]
async fn bearer_challenges_follow_rfc_6750() {
    let notifier = MemoryNotifier::new();
    let (b, _) = builder(notifier.clone());
    let router = b.build().unwrap();
    let ip = "192.0.2.1";
    let id = email(1);
    request_code(&router, ip, &id).await;
    let code = notifier.last_code("user1@example.com").unwrap();
    let pair = verify(&router, ip, &id, &code).await.json();
    let access = pair["access_token"].as_str().unwrap().to_owned();
    let bearer = format!("Bearer {access}");

    for (method, path) in [(Method::GET, "/session"), (Method::POST, "/logout")] {
        // No credentials, or another scheme: a bare challenge, no error code.
        for headers in [
            &[][..],
            &[("authorization", "Basic dXNlcjpwYXNz")][..],
            &[("authorization", "Token abc")][..],
        ] {
            let r = call(&router, method.clone(), path, ip, headers, None).await;
            assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{path} {headers:?}");
            assert_eq!(r.header("www-authenticate"), "Bearer", "{path} {headers:?}");
        }
        // A Bearer token that fails: invalid_token.
        for bad in ["Bearer not-a-jwt", "bearer a.b.c", "Bearer ", "Bearer x y"] {
            let r = call(
                &router,
                method.clone(),
                path,
                ip,
                &[("authorization", bad)],
                None,
            )
            .await;
            assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{path} {bad}");
            assert_eq!(r.code(), "invalid_token");
            assert_eq!(
                r.header("www-authenticate"),
                "Bearer error=\"invalid_token\"",
                "{path} {bad}"
            );
        }
    }
    // A good token works, and once logged out every 401 still carries a
    // challenge.
    let auth = [("authorization", bearer.as_str())];
    let r = call(&router, Method::GET, "/session", ip, &auth, None).await;
    assert_eq!(r.status, StatusCode::OK);
    let r = call(&router, Method::POST, "/logout", ip, &auth, None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    for (method, path) in [(Method::GET, "/session"), (Method::POST, "/logout")] {
        let r = call(&router, method, path, ip, &auth, None).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        assert_eq!(
            r.header("www-authenticate"),
            "Bearer error=\"invalid_token\""
        );
    }
}

/// Only `known@example.com` may receive codes.
#[derive(Clone)]
struct KnownOnly;

impl SubjectResolver for KnownOnly {
    async fn resolve(&self, id: &Identifier, _: &HashedId) -> Result<Subject, ResolveError> {
        Ok(Subject::new(id.as_str()))
    }

    async fn may_request(&self, id: &Identifier) -> Result<bool, ResolveError> {
        Ok(id.as_str() == "known@example.com")
    }
}

#[tokio::test]
async fn known_users_only_verify_answers_known_and_unknown_alike() {
    let notifier = MemoryNotifier::new();
    let (b, _) = builder(notifier.clone());
    let router = b
        .subject_resolver(KnownOnly)
        .known_users_only(true)
        .build()
        .unwrap();
    let known = json!({ "email": "known@example.com" });
    let unknown = json!({ "email": "unknown@example.com" });
    let ip = "192.0.2.1";
    assert_eq!(
        request_code(&router, ip, &known).await.status,
        StatusCode::ACCEPTED
    );
    assert_eq!(
        request_code(&router, ip, &unknown).await.status,
        StatusCode::ACCEPTED
    );
    // Delivery runs off the request path: wait for the known one's code
    // (bounded; the assertion below does not depend on timing).
    for _ in 0..500 {
        if notifier.last_code("known@example.com").is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let code = notifier
        .last_code("known@example.com")
        .expect("a code for the known user");
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let mut answers = Vec::new();
    for id in [&known, &unknown] {
        let mut replies = Vec::new();
        for _ in 0..6 {
            replies.push(verify(&router, ip, id, wrong).await);
        }
        answers.push(replies);
    }
    let statuses: Vec<_> = answers[0].iter().map(|r| r.status).collect();
    assert_eq!(statuses[..4], [StatusCode::BAD_REQUEST; 4]);
    assert_eq!(answers[0][4].code(), "too_many_attempts");
    assert_eq!(
        answers[0], answers[1],
        "known and unknown identifiers told apart"
    );
    let to: Vec<String> = notifier.messages().into_iter().map(|m| m.to).collect();
    assert_eq!(
        to,
        ["known@example.com"],
        "only the known identifier gets a message"
    );
}

#[tokio::test]
async fn codes_under_six_digits_need_the_weak_code_opt_in() {
    for len in WEAK_CODE_LENGTHS {
        let (b, _) = builder(MemoryNotifier::new());
        let err = b.code_length(len).build().unwrap_err();
        assert_eq!(err.setting, "code_length");
        assert!(err.reason.contains("allow_weak_codes"), "{err}");
    }
    for len in [0, 3, 11, 255] {
        let (b, _) = builder(MemoryNotifier::new());
        let err = b
            .code_length(len)
            .allow_weak_codes(true)
            .build()
            .unwrap_err();
        assert_eq!(err.setting, "code_length", "{len}");
    }
    for len in 6..=10 {
        let (b, _) = builder(MemoryNotifier::new());
        assert_eq!(
            b.code_length(len).build().unwrap().config().code_length,
            len
        );
    }
    assert_eq!(tower_otp::otp::OtpConfig::default().code_length, 6);

    // With the opt-in, a 4-digit code is sent and verifies.
    let notifier = MemoryNotifier::new();
    let (b, _) = builder(notifier.clone());
    let router = b.code_length(4).allow_weak_codes(true).build().unwrap();
    let id = email(4);
    request_code(&router, "192.0.2.1", &id).await;
    let code = notifier.last_code("user4@example.com").unwrap();
    assert_eq!(code.len(), 4);
    assert_eq!(
        verify(&router, "192.0.2.1", &id, &code).await.status,
        StatusCode::OK
    );
}
