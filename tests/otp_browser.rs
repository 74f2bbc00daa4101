//! Browser mode over real sockets: the refresh token travels only in its
//! `HttpOnly` cookie, and every cookie-authenticated refresh passes the CSRF
//! checks — a forged one is refused with `403 csrf_failed` and changes
//! nothing.
#![cfg(feature = "moka")]

mod support;

use axum::Router;
use http::{Method, StatusCode};
use serde_json::{Value, json};
use support::http::{Http, Reply, serve};
use tower_otp::notify::MemoryNotifier;
use tower_otp::otp::{BrowserMode, OtpRouter};
use tower_otp::store::MemoryStore;

const SECRET: &str = "hV3qN8xK2mR7tW4zL9cB6pJ1fD5sG0yE";
const PHONE: &str = "+14155550100";
const PAGE: &str = "https://app.example.com";

async fn server() -> (Http, MemoryNotifier) {
    let notifier = MemoryNotifier::new();
    let auth = OtpRouter::builder(MemoryStore::new(), notifier.clone())
        .secret(SECRET)
        .browser_mode(BrowserMode::new("/auth").allow_origin(PAGE))
        .build()
        .unwrap();
    let app = Router::new().nest_service("/auth", auth);
    (Http::new(serve(app).await), notifier)
}

/// The `Set-Cookie` values of a reply.
fn set_cookies(reply: &Reply) -> Vec<String> {
    reply
        .headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect()
}

/// The value of cookie `name` among a reply's `Set-Cookie`s.
fn cookie(reply: &Reply, name: &str) -> String {
    set_cookies(reply)
        .iter()
        .find_map(|c| c.strip_prefix(&format!("{name}=")))
        .and_then(|rest| rest.split(';').next())
        .unwrap_or_else(|| panic!("no {name} cookie in {:?}", set_cookies(reply)))
        .to_owned()
}

async fn post(http: &Http, path: &str, headers: &[(&str, &str)], body: &str) -> Reply {
    http.send(Method::POST, path, headers, body.to_owned())
        .await
}

/// Logs in from the page: the verify reply.
async fn login(http: &Http, notifier: &MemoryNotifier, phone: &str) -> Reply {
    let json = [("content-type", "application/json"), ("origin", PAGE)];
    let body = json!({ "phone": phone }).to_string();
    assert_eq!(
        post(http, "/auth/otp/request", &json, &body).await.status,
        StatusCode::ACCEPTED
    );
    let code = notifier.last_code(phone).unwrap();
    let body = json!({ "phone": phone, "code": code }).to_string();
    post(http, "/auth/otp/verify", &json, &body).await
}

/// A refresh the way the page sends it: empty body, both cookies, and
/// `origin` and `token` (the `X-CSRF-Token` header) unless empty.
async fn refresh(http: &Http, refresh: &str, csrf: &str, origin: &str, token: &str) -> Reply {
    let cookies = format!("otp_refresh={refresh}; otp_csrf={csrf}");
    let mut headers = vec![("cookie", cookies.as_str())];
    if !origin.is_empty() {
        headers.push(("origin", origin));
    }
    if !token.is_empty() {
        headers.push(("x-csrf-token", token));
    }
    post(http, "/auth/token/refresh", &headers, "").await
}

#[tokio::test]
async fn tokens_go_into_cookies_for_the_page_only() {
    let (http, notifier) = server().await;
    let reply = login(&http, &notifier, PHONE).await;
    assert_eq!(reply.status, StatusCode::OK);
    let body = reply.json();
    assert!(body.get("refresh_token").is_none(), "{body}");
    assert!(body["access_token"].as_str().unwrap().len() > 40);
    let csrf = body["csrf_token"].as_str().unwrap().to_owned();
    let cookies = set_cookies(&reply);
    assert_eq!(cookies.len(), 2, "{cookies:?}");
    let refresh_cookie = cookies
        .iter()
        .find(|c| c.starts_with("otp_refresh="))
        .unwrap();
    assert!(
        refresh_cookie
            .ends_with("; Path=/auth/token; Max-Age=2592000; HttpOnly; Secure; SameSite=Strict"),
        "{refresh_cookie}"
    );
    let csrf_cookie = cookies.iter().find(|c| c.starts_with("otp_csrf=")).unwrap();
    assert_eq!(
        *csrf_cookie,
        format!("otp_csrf={csrf}; Path=/; Max-Age=2592000; Secure; SameSite=Strict")
    );
    // The refresh token is nowhere in the body.
    let token = cookie(&reply, "otp_refresh");
    assert!(!String::from_utf8_lossy(&reply.body).contains(&token));

    // Without Origin (an app, a server, curl): the JSON contract, no cookies.
    let json = [("content-type", "application/json")];
    post(
        &http,
        "/auth/otp/request",
        &json,
        &json!({"phone": "+14155550101"}).to_string(),
    )
    .await;
    let code = notifier.last_code("+14155550101").unwrap();
    let body = json!({"phone": "+14155550101", "code": code}).to_string();
    let reply = post(&http, "/auth/otp/verify", &json, &body).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(reply.json()["refresh_token"].is_string());
    assert!(reply.json().get("csrf_token").is_none());
    assert!(set_cookies(&reply).is_empty());
    // A foreign page gets no cookies either.
    let foreign = [
        ("content-type", "application/json"),
        ("origin", "https://evil.example"),
    ];
    let refresh_token = reply.json()["refresh_token"].as_str().unwrap().to_owned();
    let body = json!({ "refresh_token": refresh_token }).to_string();
    let reply = post(&http, "/auth/token/refresh", &foreign, &body).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(set_cookies(&reply).is_empty());
}

#[tokio::test]
async fn forged_refreshes_are_refused_and_change_nothing() {
    let (http, notifier) = server().await;
    let reply = login(&http, &notifier, PHONE).await;
    let token = cookie(&reply, "otp_refresh");
    let csrf = cookie(&reply, "otp_csrf");

    // Another session's CSRF token (a valid one, just not this session's).
    let other = login(&http, &notifier, "+14155550102").await;
    let other_csrf = cookie(&other, "otp_csrf");
    assert_ne!(other_csrf, csrf);

    for (why, origin, header, cookie_csrf) in [
        (
            "foreign origin",
            "https://evil.example",
            csrf.as_str(),
            csrf.as_str(),
        ),
        ("no origin", "", csrf.as_str(), csrf.as_str()),
        ("missing token", PAGE, "", csrf.as_str()),
        ("wrong token", PAGE, "AAAA", csrf.as_str()),
        ("header and cookie differ", PAGE, csrf.as_str(), "AAAA"),
        (
            "another session's token",
            PAGE,
            other_csrf.as_str(),
            other_csrf.as_str(),
        ),
    ] {
        let reply = refresh(&http, &token, cookie_csrf, origin, header).await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN, "{why}");
        assert_eq!(reply.code(), "csrf_failed", "{why}");
        assert!(set_cookies(&reply).is_empty(), "{why}");
    }

    // Nothing changed: the same refresh token is still the current one (a
    // spent one would be reuse and revoke the family).
    let reply = refresh(&http, &token, &csrf, PAGE, &csrf).await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.json());
    let next = cookie(&reply, "otp_refresh");
    assert_ne!(next, token, "rotated");
    assert!(reply.json().get("refresh_token").is_none());
    assert_eq!(
        reply.json()["csrf_token"],
        Value::String(csrf.clone()),
        "per session"
    );

    // Fetch Metadata stands in for a missing Origin.
    let cookies = format!("otp_refresh={next}; otp_csrf={csrf}");
    let reply = post(
        &http,
        "/auth/token/refresh",
        &[
            ("cookie", &cookies),
            ("sec-fetch-site", "same-origin"),
            ("x-csrf-token", &csrf),
        ],
        "",
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    // No Origin: the JSON contract, so the new token is in the body here.
    let latest = reply.json()["refresh_token"].as_str().unwrap().to_owned();

    // An empty body without the cookie: no grant.
    let reply = post(&http, "/auth/token/refresh", &[("origin", PAGE)], "").await;
    assert_eq!(
        (reply.status, reply.code().as_str()),
        (StatusCode::BAD_REQUEST, "invalid_grant")
    );

    // Logout from the page clears both cookies.
    let access = reply_access(&http, &latest).await;
    let auth = format!("Bearer {access}");
    let reply = post(
        &http,
        "/auth/logout",
        &[("authorization", &auth), ("origin", PAGE)],
        "",
    )
    .await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT);
    let cleared = set_cookies(&reply);
    assert_eq!(cleared.len(), 2, "{cleared:?}");
    assert!(
        cleared
            .iter()
            .all(|c| c.contains("=; ") && c.contains("Max-Age=0"))
    );
    assert!(
        cleared
            .iter()
            .any(|c| c.starts_with("otp_refresh=; Path=/auth/token;"))
    );
}

/// An access token from refresh token `token` (JSON contract).
async fn reply_access(http: &Http, token: &str) -> String {
    let reply = http
        .post_json("/auth/token/refresh", &json!({ "refresh_token": token }))
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    reply.json()["access_token"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn insecure_cookies_only_for_loopback_development() {
    let build = |origin: &str| {
        OtpRouter::builder(MemoryStore::new(), MemoryNotifier::new())
            .secret(SECRET)
            .browser_mode(
                BrowserMode::new("/auth")
                    .allow_origin(origin)
                    .insecure_localhost_cookies(true),
            )
            .build()
    };
    assert!(build("http://localhost:3000").is_ok());
    let err = build(PAGE).unwrap_err();
    assert!(err.to_string().contains("insecure"), "{err}");
}
