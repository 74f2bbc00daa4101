//! The router with asymmetric keys: `GET /.well-known/jwks.json` publishes
//! the public halves, and another service on loopback verifies the router's
//! access tokens with `JwtLayer::from_jwks` — without the signing key.
//! Real HTTP over loopback on both sides.
#![cfg(all(feature = "jwks", feature = "moka"))]

mod support;

use axum::Router;
use axum::routing::get;
use http::StatusCode;
use serde_json::{Value, json};
use support::http::{Http, serve};
use tower_otp::jwt::{Jwks, JwtKeys, JwtLayer, Validation};
use tower_otp::notify::MemoryNotifier;
use tower_otp::otp::OtpRouter;
use tower_otp::store::MemoryStore;

const SECRET: &str = "wE5rT9yU3iO7pA1sD6fG2hJ8kL4zX0cV";

/// The router over `keys` at /auth: its address and its notifier.
async fn auth_server(keys: Option<JwtKeys>) -> (Http, MemoryNotifier) {
    let notifier = MemoryNotifier::new();
    let mut builder = OtpRouter::builder(MemoryStore::new(), notifier.clone()).secret(SECRET);
    if let Some(keys) = keys {
        builder = builder.jwt_keys(keys);
    }
    let auth = builder.build().unwrap();
    let http = Http::new(serve(Router::new().nest_service("/auth", auth)).await);
    (http, notifier)
}

async fn login(http: &Http, notifier: &MemoryNotifier) -> String {
    let phone = "+14155550100";
    let reply = http
        .post_json("/auth/otp/request", &json!({ "phone": phone }))
        .await;
    assert_eq!(reply.status, StatusCode::ACCEPTED);
    let code = notifier.last_code(phone).unwrap();
    let reply = http
        .post_json("/auth/otp/verify", &json!({ "phone": phone, "code": code }))
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    reply.json()["access_token"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn another_service_verifies_the_routers_tokens_from_its_jwks() {
    for keys in [
        JwtKeys::generate_ed25519("ed-1").unwrap(),
        JwtKeys::generate_es256("es-1").unwrap(),
    ] {
        let kid = keys.signing_kid().to_owned();
        let (auth, notifier) = auth_server(Some(keys)).await;
        let reply = auth.get("/auth/.well-known/jwks.json", &[]).await;
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(reply.header("content-type"), "application/json");
        assert_eq!(reply.header("cache-control"), "public, max-age=300");
        let jwks = reply.json();
        assert_eq!(jwks["keys"][0]["kid"], Value::String(kid.clone()));
        assert!(jwks["keys"][0].get("d").is_none(), "no private half");

        // A service holding no key at all: it reads the router's JWKS.
        let remote = Jwks::builder(format!("{}/auth/.well-known/jwks.json", auth.base))
            .build()
            .unwrap();
        let api = Router::new()
            .route("/api/me", get(|| async { "ok" }))
            .route_layer(JwtLayer::<Value>::from_jwks(remote, Validation::default()));
        let api = Http::new(serve(api).await);

        let access = login(&auth, &notifier).await;
        assert_eq!(
            api.get_bearer("/api/me", &access).await.status,
            StatusCode::OK,
            "{kid}"
        );
        // A token of another key with the same kid is refused.
        let forger = if kid.starts_with("ed") {
            JwtKeys::generate_ed25519(&kid).unwrap()
        } else {
            JwtKeys::generate_es256(&kid).unwrap()
        };
        let forged =
            tower_otp::jwt::encode(&forger, &json!({ "sub": "usr_x", "exp": u64::MAX / 2 }))
                .unwrap();
        assert_eq!(
            api.get_bearer("/api/me", &forged).await.status,
            StatusCode::UNAUTHORIZED
        );
    }
}

#[tokio::test]
async fn hs256_publishes_nothing() {
    let (auth, _) = auth_server(None).await;
    let reply = auth.get("/auth/.well-known/jwks.json", &[]).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_eq!(reply.code(), "not_found");
    let reply = auth
        .send(http::Method::POST, "/auth/.well-known/jwks.json", &[], "")
        .await;
    assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED);
}
