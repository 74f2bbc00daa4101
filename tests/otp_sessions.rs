//! Session management through the router, on `MemoryStore` and on a real
//! Redis: `GET /sessions`, `DELETE /sessions/{id}`, `POST /logout?scope=`,
//! `OtpRouter::revoke_subject`, idle and absolute lifetimes on the manual
//! clock, and the `amr` / `auth_time` claims. Real HTTP over loopback.
#![cfg(all(feature = "moka", feature = "axum"))]

mod support;

use std::time::Duration;

use axum::Router;
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::{Method, StatusCode};
use serde_json::{Value, json};
use support::http::{Http, serve};
use tower_otp::clock::ManualClock;
use tower_otp::notify::MemoryNotifier;
use tower_otp::otp::{Limits, OtpRouter};
use tower_otp::quota::Quota;
use tower_otp::store::{MemoryStore, SessionLifetime, Store};

const SECRET: &str = "pX4nC8vM2kQ7wR1tY6bZ9sD3fG5hJ0aL";

/// One router over `store` with a manual clock, generous request limits
/// (one identifier logs in many times here) and `lifetime`; the app's
/// `/api/me` behind its `jwt_layer`.
struct App<S> {
    http: Http,
    router: OtpRouter<S, MemoryNotifier>,
    notifier: MemoryNotifier,
    clock: ManualClock,
}

async fn app<S: Store>(store: S, lifetime: SessionLifetime) -> App<S> {
    let clock = ManualClock::default();
    let notifier = MemoryNotifier::new();
    let router = OtpRouter::builder(store, notifier.clone())
        .secret(SECRET)
        .clock(clock.clone())
        .session_lifetime(lifetime)
        .configure(|c| {
            let mut limits = Limits::default();
            limits.request_per_identifier = Quota::per_hour(100);
            limits.request_per_ip = Quota::per_hour(1000);
            limits.verify_per_identifier = Quota::per_hour(100);
            limits.resend_cooldown = Duration::ZERO;
            c.limits = limits;
        })
        .build()
        .unwrap();
    let api = Router::new()
        .route("/api/me", get(|| async { "ok" }))
        .route_layer(router.jwt_layer::<Value>());
    let http = Http::new(
        serve(
            Router::new()
                .merge(api)
                .nest_service("/auth", router.clone()),
        )
        .await,
    );
    App {
        http,
        router,
        notifier,
        clock,
    }
}

/// A random number in +1 415 555 xxxx (tests sharing a Redis never meet).
fn phone() -> String {
    format!("+1415555{:04}", rand::random::<u16>() % 10_000)
}

/// A login: (access token, refresh token).
async fn login<S>(app: &App<S>, id: &Value, to: &str) -> (String, String) {
    let reply = app.http.post_json("/auth/otp/request", id).await;
    assert_eq!(reply.status, StatusCode::ACCEPTED);
    let mut body = id.clone();
    body["code"] = app.notifier.last_code(to).unwrap().into();
    let tokens = app.http.post_json("/auth/otp/verify", &body).await.json();
    (
        tokens["access_token"].as_str().unwrap().to_owned(),
        tokens["refresh_token"].as_str().unwrap().to_owned(),
    )
}

async fn refresh<S>(app: &App<S>, token: &str) -> (StatusCode, Value) {
    let reply = app
        .http
        .post_json("/auth/token/refresh", &json!({ "refresh_token": token }))
        .await;
    (reply.status, reply.json())
}

async fn sessions<S>(app: &App<S>, access: &str) -> Vec<Value> {
    let reply = app.http.get_bearer("/auth/sessions", access).await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.json());
    assert_eq!(reply.header("cache-control"), "no-store");
    reply.json()["sessions"].as_array().unwrap().clone()
}

/// `GET /api/me` with `access`: the app's own route behind `jwt_layer`.
async fn me<S>(app: &App<S>, access: &str) -> StatusCode {
    app.http.get_bearer("/api/me", access).await.status
}

async fn send<S>(app: &App<S>, method: Method, path: &str, access: &str) -> StatusCode {
    let auth = format!("Bearer {access}");
    app.http
        .send(method, path, &[("authorization", &auth)], "")
        .await
        .status
}

/// The payload of a JWT.
fn claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

async fn list_and_revoke<S: Store>(store: S) {
    let app = app(store, SessionLifetime::NIST_AAL1).await;
    let p = phone();
    let id = json!({ "phone": p });
    let (a, _) = login(&app, &id, &p).await;
    app.clock.advance(Duration::from_secs(10));
    let (b, b_refresh) = login(&app, &id, &p).await;
    app.clock.advance(Duration::from_secs(10));
    let (c, _) = login(&app, &id, &p).await;
    let sid = |t: &str| claims(t)["sid"].as_str().unwrap().to_owned();

    // Oldest first, with times, the caller's own marked.
    let list = sessions(&app, &a).await;
    let ids: Vec<&str> = list.iter().map(|s| s["id"].as_str().unwrap()).collect();
    assert_eq!(ids, [sid(&a), sid(&b), sid(&c)]);
    let current: Vec<bool> = list
        .iter()
        .map(|s| s["current"].as_bool().unwrap())
        .collect();
    assert_eq!(current, [true, false, false]);
    let created = |s: &Value| s["created_at"].as_u64().unwrap();
    assert_eq!(created(&list[1]) - created(&list[0]), 10);
    assert_eq!(list[1]["last_used_at"], list[1]["created_at"]);

    // A refresh is a use.
    app.clock.advance(Duration::from_secs(60));
    let (status, rotated) = refresh(&app, &b_refresh).await;
    assert_eq!(status, StatusCode::OK);
    let b_refresh = rotated["refresh_token"].as_str().unwrap().to_owned();
    let list = sessions(&app, &c).await;
    assert_eq!(
        list[1]["last_used_at"].as_u64().unwrap() - created(&list[1]),
        70,
        "created at 10 s, refreshed at 80 s"
    );
    assert_eq!(list[2]["current"], true);

    // Another subject's session is a 404, like an unknown one, and stays.
    let q = phone();
    let (other, other_refresh) = login(&app, &json!({ "phone": q }), &q).await;
    let path = format!("/auth/sessions/{}", sid(&other));
    assert_eq!(
        send(&app, Method::DELETE, &path, &a).await,
        StatusCode::NOT_FOUND
    );
    let unknown = "/auth/sessions/AAAAAAAAAAAAAAAAAAAAAA";
    assert_eq!(
        send(&app, Method::DELETE, unknown, &a).await,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        send(&app, Method::DELETE, "/auth/sessions/x.y", &a).await,
        StatusCode::NOT_FOUND
    );
    assert_eq!(me(&app, &other).await, StatusCode::OK);

    // Revoke one: B's refresh and access tokens stop working.
    let path = format!("/auth/sessions/{}", sid(&b));
    assert_eq!(
        send(&app, Method::DELETE, &path, &a).await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        send(&app, Method::DELETE, &path, &a).await,
        StatusCode::NOT_FOUND
    );
    assert_eq!(refresh(&app, &b_refresh).await.0, StatusCode::BAD_REQUEST);
    assert_eq!(me(&app, &b).await, StatusCode::UNAUTHORIZED);
    assert_eq!(sessions(&app, &a).await.len(), 2);

    // Others: every session but the caller's.
    let status = send(&app, Method::POST, "/auth/logout?scope=others", &a).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(me(&app, &c).await, StatusCode::UNAUTHORIZED);
    assert_eq!(me(&app, &a).await, StatusCode::OK);
    let list = sessions(&app, &a).await;
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["id"], sid(&a));

    // The admin's revoke by subject: a token minted just before it fails too.
    let (d, d_refresh) = login(&app, &id, &p).await;
    assert_eq!(me(&app, &d).await, StatusCode::OK);
    let subject = claims(&a)["sub"].as_str().unwrap().to_owned();
    assert_eq!(app.router.revoke_subject(&subject).await.unwrap(), 2);
    for token in [&a, &d] {
        assert_eq!(me(&app, token).await, StatusCode::UNAUTHORIZED);
        assert_eq!(
            app.http.get_bearer("/auth/session", token).await.status,
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(refresh(&app, &d_refresh).await.0, StatusCode::BAD_REQUEST);
    assert_eq!(
        app.router.revoke_subject(&subject).await.unwrap(),
        0,
        "idempotent"
    );
    // The other subject never noticed.
    assert_eq!(refresh(&app, &other_refresh).await.0, StatusCode::OK);

    // Global: every session, the caller's included; a bad scope is a 400.
    let (e, _) = login(&app, &id, &p).await;
    let (f, _) = login(&app, &id, &p).await;
    let bad = send(&app, Method::POST, "/auth/logout?scope=everything", &e).await;
    assert_eq!(bad, StatusCode::BAD_REQUEST);
    assert_eq!(
        me(&app, &e).await,
        StatusCode::OK,
        "a refused logout ends nothing"
    );
    let status = send(&app, Method::POST, "/auth/logout?scope=global", &e).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(me(&app, &e).await, StatusCode::UNAUTHORIZED);
    assert_eq!(me(&app, &f).await, StatusCode::UNAUTHORIZED);
    // Local (the default) ends just the caller's.
    let (g, _) = login(&app, &id, &p).await;
    let (h, _) = login(&app, &id, &p).await;
    assert_eq!(
        send(&app, Method::POST, "/auth/logout", &g).await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(me(&app, &g).await, StatusCode::UNAUTHORIZED);
    assert_eq!(me(&app, &h).await, StatusCode::OK);
    // No credentials: 401, and the methods are the contract's.
    assert_eq!(
        app.http.get("/auth/sessions", &[]).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        send(&app, Method::POST, "/auth/sessions", &h).await,
        StatusCode::METHOD_NOT_ALLOWED
    );
}

async fn idle_and_absolute_lifetimes<S: Store>(store: S) {
    let lifetime = SessionLifetime {
        idle: Duration::from_secs(3600),
        absolute: Duration::from_secs(3 * 3600),
    };
    let app = app(store, lifetime).await;
    let p = phone();
    let id = json!({ "phone": p });

    // Idle: unused for longer than an hour, the session is gone.
    let (_, idle) = login(&app, &id, &p).await;
    app.clock.advance(Duration::from_secs(3601));
    assert_eq!(refresh(&app, &idle).await.0, StatusCode::BAD_REQUEST);

    // Absolute: refreshed within every hour, it still ends after three.
    let (access, mut token) = login(&app, &id, &p).await;
    let auth_time = claims(&access)["auth_time"].as_u64().unwrap();
    let mut left = Vec::new();
    for _ in 0..3 {
        app.clock.advance(Duration::from_secs(3500));
        let (status, pair) = refresh(&app, &token).await;
        if status != StatusCode::OK {
            assert_eq!(status, StatusCode::BAD_REQUEST);
            break;
        }
        // Neither token outlives the session.
        assert_eq!(
            claims(pair["access_token"].as_str().unwrap())["auth_time"],
            auth_time
        );
        left.push(pair["refresh_expires_in"].as_u64().unwrap());
        token = pair["refresh_token"].as_str().unwrap().to_owned();
    }
    // Refreshed at 3 500, 7 000 and 10 500 s: the last with only 300 s
    // left of the three hours.
    assert_eq!(left, [3600, 3600, 300]);
    let (status, pair) = refresh(&app, &token).await;
    assert_eq!(status, StatusCode::OK);
    assert!(pair["expires_in"].as_u64().unwrap() <= 300);
    app.clock.advance(Duration::from_secs(301));
    assert_eq!(
        refresh(&app, pair["refresh_token"].as_str().unwrap())
            .await
            .0,
        StatusCode::BAD_REQUEST,
        "past the absolute lifetime, however recently used"
    );
    let (fresh, _) = login(&app, &id, &p).await;
    assert_eq!(
        sessions(&app, &fresh).await.len(),
        1,
        "expired sessions are not listed"
    );
}

async fn amr_and_auth_time<S: Store>(store: S) {
    let app = app(store, SessionLifetime::NIST_AAL1).await;
    let p = phone();
    let (sms, sms_refresh) = login(&app, &json!({ "phone": p }), &p).await;
    let c = claims(&sms);
    assert_eq!(c["amr"], json!(["otp", "sms"]));
    let auth_time = c["auth_time"].as_u64().unwrap();
    assert_eq!(auth_time, c["iat"].as_u64().unwrap());

    // A refresh keeps the login's time and method.
    app.clock.advance(Duration::from_secs(120));
    let (_, pair) = refresh(&app, &sms_refresh).await;
    let c = claims(pair["access_token"].as_str().unwrap());
    assert_eq!(
        (c["auth_time"].as_u64().unwrap(), c["amr"].clone()),
        (auth_time, json!(["otp", "sms"]))
    );
    assert_eq!(c["iat"].as_u64().unwrap(), auth_time + 120);

    let email = format!("u{}@example.com", rand::random::<u32>());
    let (mail, _) = login(&app, &json!({ "email": email }), &email).await;
    assert_eq!(claims(&mail)["amr"], json!(["otp", "email"]));
}

#[tokio::test]
async fn memory_list_and_revoke() {
    list_and_revoke(MemoryStore::new()).await;
}

#[tokio::test]
async fn memory_idle_and_absolute_lifetimes() {
    idle_and_absolute_lifetimes(MemoryStore::new()).await;
}

#[tokio::test]
async fn memory_amr_and_auth_time() {
    amr_and_auth_time(MemoryStore::new()).await;
}

#[cfg(feature = "redis")]
mod redis {
    use super::support::redis_server;
    use tower_otp::store::RedisStore;

    async fn store() -> Option<RedisStore> {
        let server = redis_server::shared()?;
        Some(
            RedisStore::builder(server.url())
                .prefix(super::support::conformance::unique("sessions"))
                .connect()
                .await
                .unwrap(),
        )
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn redis_list_and_revoke() {
        if let Some(store) = store().await {
            super::list_and_revoke(store).await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn redis_idle_and_absolute_lifetimes() {
        if let Some(store) = store().await {
            super::idle_and_absolute_lifetimes(store).await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn redis_amr_and_auth_time() {
        if let Some(store) = store().await {
            super::amr_and_auth_time(store).await;
        }
    }
}
