//! The admin API and self-service signup of the multi-tenant service over
//! real sockets, on `MemoryStore` and on a private Redis: the admin token
//! guards everything and a refused request changes nothing; tenants are
//! created, read, reconfigured (merge patch, version + 1, invalid configs
//! named by field), suspended; API keys are issued, listed, rotated and
//! revoked, never across tenants; usage dates are validated; a signup
//! turns a verified email code into exactly one tenant with a working key.
#![cfg(all(feature = "axum", feature = "moka", feature = "redis"))]

mod support;

use std::time::Duration;

use axum::Router;
use bytes::Bytes;
use http::{Method, StatusCode};
use serde_json::{Value, json};
use support::http::{Http, Reply, serve};
use support::redis_server;
use tower_otp::api_key::ApiKeys;
use tower_otp::clock::{Clock, ManualClock};
use tower_otp::events::{EventKind, MemorySink};
use tower_otp::notify::{Channel, MemoryNotifier};
use tower_otp::store::{RedisStore, Store};
use tower_otp::tenant::usage::Day;
use tower_otp::tenant::{
    AdminRouter, SignupRouter, TenantConfig, TenantError, TenantStatus, Tenants, WebhookUrls,
};

const TOKEN: &str = "Vb4nQ9zK2wR7xT1mC6hJ3pL8sF5dG0yE";
const SECRET: &str = "rD7kW2qZ9xM4vT6nB1cH8pL3jF5sG0yA";

/// One instance: the admin API under `/admin`, signup at the root.
struct Svc<S> {
    http: Http,
    tenants: Tenants<S>,
    notifier: MemoryNotifier,
    events: MemorySink,
    clock: ManualClock,
}

async fn service<S: Store>(store: S) -> Svc<S> {
    let clock = ManualClock::at(std::time::UNIX_EPOCH + Duration::from_secs(1_796_119_200));
    // No key cache: a rotation's end or a revocation shows at once.
    let keys = ApiKeys::builder(store.clone())
        .clock(clock.clone())
        .cache_ttl(Duration::ZERO)
        .build()
        .unwrap();
    let tenants = Tenants::builder(store, keys)
        .clock(clock.clone())
        .webhook_urls(WebhookUrls::AllowHttp)
        .build()
        .unwrap();
    let admin = AdminRouter::builder(tenants.clone())
        .admin_token(TOKEN)
        .build()
        .unwrap();
    let notifier = MemoryNotifier::new();
    let events = MemorySink::new();
    let signup = SignupRouter::builder(tenants.clone(), notifier.clone())
        .secret(SECRET)
        .events(events.clone())
        .build()
        .unwrap();
    let app = Router::new()
        .nest_service("/admin", admin)
        .fallback_service(signup);
    Svc {
        http: Http::new(serve(app).await),
        tenants,
        notifier,
        events,
        clock,
    }
}

/// An admin request with the right token (and a JSON body, if any).
async fn admin<S>(svc: &Svc<S>, method: Method, path: &str, body: Option<Value>) -> Reply {
    let auth = format!("Bearer {TOKEN}");
    let mut headers = vec![("authorization", auth.as_str())];
    if body.is_some() {
        headers.push(("content-type", "application/json"));
    }
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    svc.http
        .send(method, &format!("/admin{path}"), &headers, body)
        .await
}

async fn create<S>(svc: &Svc<S>, id: &str) -> Reply {
    let reply = admin(
        svc,
        Method::POST,
        "/tenants",
        Some(json!({"id": id, "name": format!("{id} Inc.")})),
    )
    .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{reply:?}");
    reply
}

/// A problem document with `status` and `code`, not to be cached.
fn assert_problem(reply: &Reply, status: StatusCode, code: &str) {
    assert_eq!(reply.status, status, "{reply:?}");
    assert_eq!(reply.code(), code, "{reply:?}");
    assert_eq!(reply.header("content-type"), "application/problem+json");
    assert_eq!(reply.header("cache-control"), "no-store");
}

async fn version<S: Store>(svc: &Svc<S>, id: &str) -> u64 {
    svc.tenants.get(id).await.unwrap().config_version
}

async fn admin_token_is_required<S: Store>(svc: Svc<S>) {
    create(&svc, "acme").await;
    let path = "/admin/tenants/acme/config";
    let patch = json!({"code_length": 9}).to_string();
    let wrong_same_length = format!("Bearer {}", TOKEN.replace('V', "W"));
    let longer = format!("Bearer {TOKEN}x");
    let prefix = format!("Bearer {}", &TOKEN[..31]);
    let cases: [(&[(&str, &str)], &str); 7] = [
        (&[], "Bearer"),
        (&[("authorization", "Basic YWRtaW46YWRtaW4=")], "Bearer"),
        (
            &[("authorization", &wrong_same_length)],
            "Bearer error=\"invalid_token\"",
        ),
        (
            &[("authorization", &longer)],
            "Bearer error=\"invalid_token\"",
        ),
        (
            &[("authorization", &prefix)],
            "Bearer error=\"invalid_token\"",
        ),
        (
            &[("authorization", "Bearer")],
            "Bearer error=\"invalid_token\"",
        ),
        (
            &[
                ("authorization", &format!("Bearer {TOKEN}")),
                ("authorization", &format!("Bearer {TOKEN}")),
            ],
            "Bearer error=\"invalid_token\"",
        ),
    ];
    for (auth, challenge) in cases {
        let mut headers = auth.to_vec();
        headers.push(("content-type", "application/json"));
        let reply = svc
            .http
            .send(Method::PUT, path, &headers, patch.clone())
            .await;
        assert_problem(&reply, StatusCode::UNAUTHORIZED, "invalid_token");
        assert_eq!(reply.header("www-authenticate"), challenge, "{auth:?}");
        // The token presented (right or wrong) is never echoed.
        let body = String::from_utf8_lossy(&reply.body).into_owned();
        assert!(!body.contains(&TOKEN[..16]), "{body}");
    }
    assert_eq!(version(&svc, "acme").await, 1, "nothing changed");
    assert_eq!(svc.tenants.get("acme").await.unwrap().config.code_length, 6);

    // Refused before routing: an unknown path, a create, a key issue.
    let none: &[(&str, &str)] = &[("content-type", "application/json")];
    let reply = svc.http.get("/admin/nope", &[]).await;
    assert_problem(&reply, StatusCode::UNAUTHORIZED, "invalid_token");
    let new = json!({"id": "evil", "name": "Evil"}).to_string();
    let reply = svc
        .http
        .send(Method::POST, "/admin/tenants", none, new)
        .await;
    assert_problem(&reply, StatusCode::UNAUTHORIZED, "invalid_token");
    assert!(matches!(
        svc.tenants.get("evil").await,
        Err(TenantError::NotFound)
    ));
    let key = json!({"name": "stolen"}).to_string();
    let reply = svc
        .http
        .send(Method::POST, "/admin/tenants/acme/api-keys", none, key)
        .await;
    assert_problem(&reply, StatusCode::UNAUTHORIZED, "invalid_token");
    assert!(svc.tenants.keys("acme").await.unwrap().is_empty());

    // The right token (scheme in any case) gets in.
    let auth = format!("bearer {TOKEN}");
    let reply = svc
        .http
        .get("/admin/tenants/acme", &[("authorization", &auth)])
        .await;
    assert_eq!(reply.status, StatusCode::OK);
}

async fn tenants_are_created_read_and_reconfigured<S: Store>(svc: Svc<S>) {
    let reply = admin(
        &svc,
        Method::POST,
        "/tenants",
        Some(json!({"id": "acme", "name": "Acme Inc.", "config": {"code_length": 8}})),
    )
    .await;
    assert_eq!(reply.status, StatusCode::CREATED);
    assert_eq!(reply.header("cache-control"), "no-store");
    let doc = reply.json();
    assert_eq!(doc["id"], "acme");
    assert_eq!(doc["name"], "Acme Inc.");
    assert_eq!(doc["status"], "active");
    assert_eq!(doc["config_version"], 1);
    assert_eq!(doc["config"]["code_length"], 8);
    assert_eq!(doc["config"]["max_attempts"], 5, "defaults filled in");

    let reply = admin(&svc, Method::GET, "/tenants/acme", None).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.json(), doc);

    let patch = json!({
        "code_length": 9,
        "quotas": {"daily": 100},
        "webhook": {"url": "http://127.0.0.1:9/hook",
            "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "events": ["otp.verified"]},
    });
    let reply = admin(&svc, Method::PUT, "/tenants/acme/config", Some(patch)).await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    let doc = reply.json();
    assert_eq!(doc["config_version"], 2);
    assert_eq!(doc["config"]["code_length"], 9);
    assert_eq!(doc["config"]["quotas"]["daily"], 100);
    assert_eq!(doc["config"]["webhook"]["url"], "http://127.0.0.1:9/hook");
    assert!(
        doc["config"]["webhook"].get("secret").is_none(),
        "the webhook secret is never shown"
    );
    let stored = svc.tenants.get("acme").await.unwrap();
    assert_eq!((stored.config_version, stored.config.code_length), (2, 9));

    // An invalid patch names the field and changes nothing.
    let bad = json!({"code_length": 7, "limits": {"request_per_ip": {"n": 0, "per_secs": 60}}});
    let reply = admin(&svc, Method::PUT, "/tenants/acme/config", Some(bad)).await;
    assert_problem(&reply, StatusCode::UNPROCESSABLE_ENTITY, "invalid_config");
    assert_eq!(reply.json()["field"], "limits.request_per_ip.n");
    let reply = admin(
        &svc,
        Method::PUT,
        "/tenants/acme/config",
        Some(json!({"code_lenght": 7})),
    )
    .await;
    assert_problem(&reply, StatusCode::UNPROCESSABLE_ENTITY, "invalid_config");
    let reply = admin(&svc, Method::PUT, "/tenants/acme/config", Some(json!([1]))).await;
    assert_problem(&reply, StatusCode::UNPROCESSABLE_ENTITY, "invalid_config");
    assert_eq!(reply.json()["field"], "config");
    let auth = format!("Bearer {TOKEN}");
    let send = |ctype: &'static str, body: Bytes| {
        let (http, auth) = (svc.http.clone(), auth.clone());
        async move {
            http.send(
                Method::PUT,
                "/admin/tenants/acme/config",
                &[("authorization", &auth), ("content-type", ctype)],
                body,
            )
            .await
        }
    };
    let reply = send("application/json", Bytes::from_static(b"{not json")).await;
    assert_problem(&reply, StatusCode::BAD_REQUEST, "invalid_request");
    let reply = send("text/plain", Bytes::from_static(b"{}")).await;
    assert_problem(
        &reply,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    );
    // Too large by its Content-Length: refused before the body is read, so
    // the head alone is sent (a client still writing 70 KiB would meet the
    // closed connection).
    let (status, body) = declared_only(&svc.http, &auth, 70 * 1024).await;
    assert_eq!(status, 413, "{body}");
    assert!(body.contains(r#""code":"body_too_large""#), "{body}");
    // RFC 7396's own media type is taken too.
    let reply = send(
        "application/merge-patch+json",
        Bytes::from_static(br#"{"quotas":{"daily":null}}"#),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    assert_eq!(reply.json()["config_version"], 3);
    assert_eq!(reply.json()["config"]["quotas"]["daily"], Value::Null);
    let stored = svc.tenants.get("acme").await.unwrap();
    assert_eq!(stored.config_version, 3);
    assert_eq!(stored.config.code_length, 9);
    assert_eq!(stored.config.limits.request_per_ip.n, 5);

    // Creation refusals create nothing.
    let reply = admin(
        &svc,
        Method::POST,
        "/tenants",
        Some(json!({"id": "beta", "name": "Beta", "config": {"max_attempts": 0}})),
    )
    .await;
    assert_problem(&reply, StatusCode::UNPROCESSABLE_ENTITY, "invalid_config");
    assert_eq!(reply.json()["field"], "max_attempts");
    for bad in [
        json!({"id": "Beta!", "name": "Beta"}),
        json!({"id": "beta", "name": ""}),
    ] {
        let reply = admin(&svc, Method::POST, "/tenants", Some(bad)).await;
        assert_problem(&reply, StatusCode::UNPROCESSABLE_ENTITY, "invalid_config");
        assert!(reply.json()["field"].is_string());
    }
    let reply = admin(
        &svc,
        Method::POST,
        "/tenants",
        Some(json!({"id": "beta", "name": "Beta", "colour": "red"})),
    )
    .await;
    assert_problem(&reply, StatusCode::UNPROCESSABLE_ENTITY, "unprocessable");
    let reply = admin(&svc, Method::GET, "/tenants/beta", None).await;
    assert_problem(&reply, StatusCode::NOT_FOUND, "not_found");

    let reply = admin(&svc, Method::GET, "/tenants", None).await;
    assert_eq!(reply.status, StatusCode::OK);
    let ids: Vec<Value> = reply.json()["tenants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].clone())
        .collect();
    assert_eq!(ids, [json!("acme")]);

    let reply = admin(&svc, Method::DELETE, "/tenants/acme", None).await;
    assert_problem(&reply, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");
    assert_eq!(reply.header("allow"), "GET");
    let reply = admin(&svc, Method::GET, "/tenants/acme/settings", None).await;
    assert_problem(&reply, StatusCode::NOT_FOUND, "not_found");
}

async fn a_taken_id_conflicts<S: Store>(svc: Svc<S>) {
    create(&svc, "acme").await;
    let reply = admin(
        &svc,
        Method::POST,
        "/tenants",
        Some(json!({"id": "acme", "name": "Impostor", "config": {"code_length": 10}})),
    )
    .await;
    assert_problem(&reply, StatusCode::CONFLICT, "tenant_exists");
    let kept = svc.tenants.get("acme").await.unwrap();
    assert_eq!(kept.name, "acme Inc.");
    assert_eq!((kept.config_version, kept.config.code_length), (1, 6));
}

async fn status_is_set<S: Store>(svc: Svc<S>) {
    create(&svc, "acme").await;
    let reply = admin(
        &svc,
        Method::POST,
        "/tenants/acme/status",
        Some(json!({"status": "suspended"})),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.json()["status"], "suspended");
    assert_eq!(reply.json()["config_version"], 2);
    for bad in [
        json!({"status": "paused"}),
        json!({}),
        json!({"status": null}),
    ] {
        let reply = admin(&svc, Method::POST, "/tenants/acme/status", Some(bad)).await;
        assert_problem(&reply, StatusCode::UNPROCESSABLE_ENTITY, "unprocessable");
    }
    let stored = svc.tenants.get("acme").await.unwrap();
    assert_eq!(
        (stored.status, stored.config_version),
        (TenantStatus::Suspended, 2)
    );
    let reply = admin(
        &svc,
        Method::POST,
        "/tenants/acme/status",
        Some(json!({"status": "active"})),
    )
    .await;
    assert_eq!(reply.json()["status"], "active");
    let reply = admin(
        &svc,
        Method::POST,
        "/tenants/nobody/status",
        Some(json!({"status": "active"})),
    )
    .await;
    assert_problem(&reply, StatusCode::NOT_FOUND, "not_found");
}

async fn api_keys_are_issued_listed_rotated_and_revoked<S: Store>(svc: Svc<S>) {
    create(&svc, "acme").await;
    create(&svc, "beta").await;
    let keys = svc.tenants.api_keys();
    let reply = admin(
        &svc,
        Method::POST,
        "/tenants/acme/api-keys",
        Some(json!({"name": "backend", "scopes": ["otp:send"]})),
    )
    .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{reply:?}");
    assert_eq!(reply.header("cache-control"), "no-store");
    let (key_id, key) = (
        reply.json()["key_id"].as_str().unwrap().to_owned(),
        reply.json()["key"].as_str().unwrap().to_owned(),
    );
    assert_eq!(keys.verify(&key).await.unwrap().tenant(), "acme");
    let beta = admin(
        &svc,
        Method::POST,
        "/tenants/beta/api-keys",
        Some(json!({"name": "beta's"})),
    )
    .await;
    let beta_id = beta.json()["key_id"].as_str().unwrap().to_owned();
    let beta_key = beta.json()["key"].as_str().unwrap().to_owned();

    let reply = admin(&svc, Method::GET, "/tenants/acme/api-keys", None).await;
    assert_eq!(reply.status, StatusCode::OK);
    let listed = reply.json()["keys"].as_array().unwrap().clone();
    assert_eq!(listed.len(), 1, "only acme's keys: {listed:?}");
    let k = &listed[0];
    assert_eq!(k["key_id"], key_id.as_str());
    assert_eq!(k["name"], "backend");
    assert_eq!(k["scopes"], json!(["otp:send"]));
    assert_eq!(
        k["created_at"],
        svc.clock
            .now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
    );
    assert!(k["last_used_at"].is_u64() || k["last_used_at"].is_null());
    assert_eq!(k["expires_at"], Value::Null);
    assert!(k.get("key").is_none());
    assert!(!String::from_utf8_lossy(&reply.body).contains(&key[key.len() - 12..]));

    // Refused: bad scopes, unknown tenant.
    let reply = admin(
        &svc,
        Method::POST,
        "/tenants/acme/api-keys",
        Some(json!({"name": "x", "scopes": ["has space"]})),
    )
    .await;
    assert_problem(&reply, StatusCode::UNPROCESSABLE_ENTITY, "invalid_config");
    let reply = admin(
        &svc,
        Method::POST,
        "/tenants/nobody/api-keys",
        Some(json!({"name": "x"})),
    )
    .await;
    assert_problem(&reply, StatusCode::NOT_FOUND, "not_found");

    // Another tenant's key is not found through this one, and stays.
    let rotate_beta = format!("/tenants/acme/api-keys/{beta_id}/rotate");
    let reply = admin(&svc, Method::POST, &rotate_beta, None).await;
    assert_problem(&reply, StatusCode::NOT_FOUND, "not_found");
    let reply = admin(
        &svc,
        Method::DELETE,
        &format!("/tenants/acme/api-keys/{beta_id}"),
        None,
    )
    .await;
    assert_problem(&reply, StatusCode::NOT_FOUND, "not_found");
    assert_eq!(keys.verify(&beta_key).await.unwrap().tenant(), "beta");

    // Rotation: the old key works for the grace, the new one from now on.
    let rotate = format!("/tenants/acme/api-keys/{key_id}/rotate");
    let reply = admin(
        &svc,
        Method::POST,
        &rotate,
        Some(json!({"grace_secs": 31 * 86_400})),
    )
    .await;
    assert_problem(&reply, StatusCode::UNPROCESSABLE_ENTITY, "unprocessable");
    assert!(
        keys.verify(&key).await.is_ok(),
        "a refused rotation changes nothing"
    );
    let reply = admin(&svc, Method::POST, &rotate, Some(json!({"grace_secs": 60}))).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{reply:?}");
    assert_eq!(reply.json()["key_id"], key_id.as_str());
    let rotated = reply.json()["key"].as_str().unwrap().to_owned();
    assert_ne!(rotated, key);
    assert!(reply.json()["previous_secret_until"].is_u64());
    assert!(keys.verify(&key).await.is_ok());
    assert!(keys.verify(&rotated).await.is_ok());
    svc.clock.advance(Duration::from_secs(61));
    assert!(keys.verify(&key).await.is_err(), "the grace is over");
    assert!(keys.verify(&rotated).await.is_ok());
    // No body: the default grace of 7 days.
    let reply = admin(&svc, Method::POST, &rotate, None).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{reply:?}");
    let newest = reply.json()["key"].as_str().unwrap().to_owned();
    svc.clock.advance(Duration::from_secs(7 * 86_400 - 60));
    assert!(keys.verify(&rotated).await.is_ok());
    svc.clock.advance(Duration::from_secs(120));
    assert!(keys.verify(&rotated).await.is_err());
    assert!(keys.verify(&newest).await.is_ok());

    // Revocation: 204, refused at once, gone from the list.
    let delete = format!("/tenants/acme/api-keys/{key_id}");
    let reply = admin(&svc, Method::DELETE, &delete, None).await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT);
    assert_eq!(reply.header("cache-control"), "no-store");
    assert!(reply.body.is_empty());
    assert!(keys.verify(&newest).await.is_err());
    let reply = admin(&svc, Method::GET, "/tenants/acme/api-keys", None).await;
    assert_eq!(reply.json()["keys"], json!([]));
    let reply = admin(&svc, Method::DELETE, &delete, None).await;
    assert_problem(&reply, StatusCode::NOT_FOUND, "not_found");
    assert_eq!(keys.verify(&beta_key).await.unwrap().tenant(), "beta");
}

async fn usage_dates_are_validated<S: Store>(svc: Svc<S>) {
    create(&svc, "acme").await;
    let today = Day::of(svc.clock.now()).to_date();
    let reply = admin(&svc, Method::GET, "/tenants/acme/usage", None).await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    let doc = reply.json();
    assert_eq!(doc["days"].as_array().unwrap().len(), 1);
    assert_eq!(doc["days"][0]["date"], today.as_str());
    assert_eq!(doc["days"][0]["otp_requested"], 0);
    assert_eq!(doc["month"]["month"], &today[..7]);

    let s = &svc;
    let days = |q: &str| {
        let path = format!("/tenants/acme/usage?{q}");
        async move { admin(s, Method::GET, &path, None).await }
    };
    let reply = days("from=2026-01-30&to=2026-02-02").await;
    assert_eq!(reply.status, StatusCode::OK);
    let dates: Vec<Value> = reply.json()["days"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["date"].clone())
        .collect();
    assert_eq!(
        dates,
        [
            json!("2026-01-30"),
            json!("2026-01-31"),
            json!("2026-02-01"),
            json!("2026-02-02")
        ]
    );
    assert_eq!(reply.json()["month"]["month"], "2026-02");
    // Only `from`: up to today.
    let reply = days(&format!("from={today}")).await;
    assert_eq!(reply.json()["days"].as_array().unwrap().len(), 1);
    let reply = days("from=2024-01-01&to=2024-12-31").await;
    assert_eq!(reply.status, StatusCode::OK, "366 days are fine");
    for bad in [
        "from=2026-02-30&to=2026-03-01",
        "from=2026-1-01",
        "to=yesterday",
        "from=2026-03-02&to=2026-03-01",
        "from=2024-01-01&to=2025-01-01",
        "from=2026-01-01&from=2026-01-02",
        "since=2026-01-01",
    ] {
        let reply = days(bad).await;
        assert_problem(&reply, StatusCode::BAD_REQUEST, "invalid_request");
    }
    let reply = admin(
        &svc,
        Method::GET,
        "/tenants/nobody/usage?from=2026-01-01&to=2026-01-02",
        None,
    )
    .await;
    assert_problem(&reply, StatusCode::NOT_FOUND, "not_found");
    for bad in [
        "window_secs=59",
        "window_secs=86401",
        "window_secs=1h",
        "w=60",
    ] {
        let path = format!("/tenants/acme/analytics?{bad}");
        let reply = admin(&svc, Method::GET, &path, None).await;
        assert_problem(&reply, StatusCode::BAD_REQUEST, "invalid_request");
    }
    let reply = admin(&svc, Method::GET, "/tenants/nobody/analytics", None).await;
    assert_problem(&reply, StatusCode::NOT_FOUND, "not_found");
}

async fn signup(svc: &Svc<impl Store>, email: &str, name: &str) -> Reply {
    svc.http
        .post_json("/signup", &json!({"email": email, "name": name}))
        .await
}

async fn verify(svc: &Svc<impl Store>, email: &str, code: &str) -> Reply {
    svc.http
        .post_json("/signup/verify", &json!({"email": email, "code": code}))
        .await
}

async fn signup_creates_a_tenant_and_its_key<S: Store>(svc: Svc<S>) {
    let email = "founder@example.com";
    let reply = signup(&svc, email, "First name").await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{reply:?}");
    let other = signup(&svc, "someone.else@example.org", "Other").await;
    assert_eq!(
        (other.status, other.json()),
        (reply.status, reply.json()),
        "the same answer for every address"
    );
    let sent = svc.notifier.messages();
    assert_eq!(sent.len(), 2);
    assert_eq!(
        (sent[0].channel, sent[0].to.as_str()),
        (Channel::Email, email)
    );
    // The latest accepted request's name goes with its code.
    svc.clock.advance(Duration::from_secs(31));
    assert_eq!(
        signup(&svc, email, "Founder Co").await.status,
        StatusCode::ACCEPTED
    );
    let code = svc.notifier.last_code(email).unwrap();

    let reply = verify(&svc, email, &code).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{reply:?}");
    assert_eq!(reply.header("cache-control"), "no-store");
    let tenant_id = reply.json()["tenant_id"].as_str().unwrap().to_owned();
    let api_key = reply.json()["api_key"].as_str().unwrap().to_owned();
    assert_eq!(tenant_id.len(), 13);
    assert!(tenant_id.starts_with('t'));
    assert!(
        tenant_id[1..]
            .bytes()
            .all(|b| b.is_ascii_lowercase() || (b'2'..=b'7').contains(&b)),
        "{tenant_id}"
    );
    let tenant = svc.tenants.get(&tenant_id).await.unwrap();
    assert_eq!(tenant.name, "Founder Co");
    assert_eq!(tenant.status, TenantStatus::Active);
    assert_eq!(tenant.config, TenantConfig::default());

    // The key works, belongs to the new tenant, and is listed under it.
    let identity = svc.tenants.api_keys().verify(&api_key).await.unwrap();
    assert_eq!(identity.tenant(), tenant_id);
    let reply = admin(
        &svc,
        Method::GET,
        &format!("/tenants/{tenant_id}/api-keys"),
        None,
    )
    .await;
    let listed = reply.json()["keys"].as_array().unwrap().clone();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["key_id"], identity.key_id());
    assert!(api_key.contains(identity.key_id()));
    // The internal login session was ended at once.
    assert!(svc.events.kinds().contains(&EventKind::SessionRevoked));

    // A replayed verify creates nothing.
    let reply = verify(&svc, email, &code).await;
    assert_problem(&reply, StatusCode::BAD_REQUEST, "invalid_code");
    assert_eq!(svc.tenants.list().await.unwrap().len(), 1);
}

async fn a_wrong_code_creates_nothing<S: Store>(svc: Svc<S>) {
    let email = "ada@example.com";
    assert_eq!(
        signup(&svc, email, "Ada").await.status,
        StatusCode::ACCEPTED
    );
    let code = svc.notifier.last_code(email).unwrap();
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let reply = verify(&svc, email, wrong).await;
    assert_problem(&reply, StatusCode::BAD_REQUEST, "invalid_code");
    let reply = verify(&svc, "nobody@example.com", &code).await;
    assert_problem(&reply, StatusCode::BAD_REQUEST, "invalid_code");
    assert!(svc.tenants.list().await.unwrap().is_empty());

    // Two verifies of the right code at once: one tenant.
    let (a, b) = tokio::join!(verify(&svc, email, &code), verify(&svc, email, &code));
    let mut statuses = [a.status, b.status];
    statuses.sort();
    assert_eq!(statuses, [StatusCode::CREATED, StatusCode::BAD_REQUEST]);
    assert_eq!(svc.tenants.list().await.unwrap().len(), 1);
}

async fn signup_input_and_limits<S: Store>(svc: Svc<S>) {
    let reply = signup(&svc, "not-an-address", "Ada").await;
    assert_problem(&reply, StatusCode::BAD_REQUEST, "invalid_email");
    for name in ["", "bell\u{7}", &"n".repeat(129)] {
        let reply = signup(&svc, "ada@example.com", name).await;
        assert_problem(&reply, StatusCode::UNPROCESSABLE_ENTITY, "unprocessable");
        assert_eq!(reply.json()["field"], "name");
    }
    let reply = svc
        .http
        .post_json("/signup", &json!({"email": "ada@example.com"}))
        .await;
    assert_problem(&reply, StatusCode::UNPROCESSABLE_ENTITY, "unprocessable");
    let reply = svc
        .http
        .send(
            Method::POST,
            "/signup",
            &[],
            r#"{"email":"a@b.example","name":"x"}"#,
        )
        .await;
    assert_problem(
        &reply,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    );
    let reply = svc.http.get("/signup", &[]).await;
    assert_problem(&reply, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");
    assert!(svc.notifier.messages().is_empty(), "no code was sent");

    // The internal router's limits answer as they are: the resend cooldown.
    assert_eq!(
        signup(&svc, "ada@example.com", "Ada").await.status,
        StatusCode::ACCEPTED
    );
    let reply = signup(&svc, "ada@example.com", "Ada again").await;
    assert_problem(&reply, StatusCode::TOO_MANY_REQUESTS, "rate_limited");
    assert!(!reply.header("retry-after").is_empty());
    assert!(reply.json()["violated-policies"].is_array());
    assert_eq!(svc.notifier.messages().len(), 1);
    // Per client IP (5 per hour): the sixth address from this client.
    for i in 0..4 {
        let reply = signup(&svc, &format!("user{i}@example.com"), "U").await;
        assert_eq!(reply.status, StatusCode::ACCEPTED, "{i}");
    }
    let reply = signup(&svc, "user9@example.com", "U").await;
    assert_problem(&reply, StatusCode::TOO_MANY_REQUESTS, "rate_limited");
    assert_eq!(reply.json()["violated-policies"], json!(["request_per_ip"]));
    // The refused request's name did not replace the accepted one's.
    let code = svc.notifier.last_code("ada@example.com").unwrap();
    let reply = verify(&svc, "ada@example.com", &code).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{reply:?}");
    let id = reply.json()["tenant_id"].as_str().unwrap().to_owned();
    assert_eq!(svc.tenants.get(&id).await.unwrap().name, "Ada");
}

macro_rules! on_both_stores {
    ($($name:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::service(tower_otp::store::MemoryStore::new()).await).await;
                }
            )*
        }
        mod redis {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(store) = super::redis_store().await else { return };
                    super::$name(super::service(store).await).await;
                }
            )*
        }
    };
}

on_both_stores!(
    admin_token_is_required,
    tenants_are_created_read_and_reconfigured,
    a_taken_id_conflicts,
    status_is_set,
    api_keys_are_issued_listed_rotated_and_revoked,
    usage_dates_are_validated,
    signup_creates_a_tenant_and_its_key,
    a_wrong_code_creates_nothing,
    signup_input_and_limits,
);

/// A store on the shared private Redis, under a prefix of its own; `None`
/// (skipped loudly) without redis-server outside CI.
async fn redis_store() -> Option<RedisStore> {
    let server = redis_server::shared()?;
    let store = RedisStore::builder(server.url())
        .prefix(support::conformance::unique("admin"))
        .timeout(Duration::from_secs(2))
        .connect()
        .await
        .unwrap();
    Some(store)
}

/// `PUT /admin/tenants/acme/config` declaring a `length`-byte JSON body and
/// sending none of it, over a raw connection: the status and the body of
/// the answer.
async fn declared_only(http: &Http, auth: &str, length: usize) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = http.base.trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let head = format!(
        "PUT /admin/tenants/acme/config HTTP/1.1\r\nhost: {addr}\r\nauthorization: {auth}\r\n\
         content-type: application/json\r\ncontent-length: {length}\r\nconnection: close\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer))
        .await
        .expect("an answer in time")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let status = answer
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = answer
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}
