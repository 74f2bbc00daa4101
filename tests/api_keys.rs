//! API keys end to end: store round trips counted, rotation, revocation,
//! scopes and store failure — through `tower::ServiceExt::oneshot` and
//! through a real axum server on loopback with a hyper client.
#![cfg(all(feature = "moka", feature = "axum"))]
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use axum::Router;
use axum::routing::get;
use bytes::Bytes;
use http::header::WWW_AUTHENTICATE;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tower::{ServiceBuilder, ServiceExt, service_fn};
use tower_otp::api_key::{ApiKeyIdentity, ApiKeyLayer, ApiKeys, Rejection};
use tower_otp::clock::ManualClock;
use tower_otp::quota::{Quota, RateDecision};
use tower_otp::store::{Attempt, Challenge, Limit, MemoryStore, Rotation, Store, StoreError};

/// A `MemoryStore` that counts every call per operation and can be switched
/// to fail (instrumentation; the data lives in the real `MemoryStore`).
#[derive(Clone, Debug, Default)]
struct Counting {
    inner: MemoryStore,
    calls: Arc<Mutex<HashMap<&'static str, usize>>>,
    down: Arc<AtomicBool>,
}

impl Counting {
    fn gate(&self, op: &'static str) -> Result<(), StoreError> {
        *self.calls.lock().unwrap().entry(op).or_default() += 1;
        if self.down.load(Ordering::SeqCst) {
            return Err(StoreError::Unavailable("test store is down".into()));
        }
        Ok(())
    }

    fn total(&self) -> usize {
        self.calls.lock().unwrap().values().sum()
    }

    fn count(&self, op: &str) -> usize {
        self.calls.lock().unwrap().get(op).copied().unwrap_or(0)
    }

    fn reset(&self) {
        self.calls.lock().unwrap().clear();
    }

    fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }
}

impl Store for Counting {
    async fn hit(
        &self,
        key: &str,
        quota: &Quota,
        now: SystemTime,
    ) -> Result<RateDecision, StoreError> {
        self.gate("hit")?;
        self.inner.hit(key, quota, now).await
    }

    async fn hit_all(
        &self,
        limits: &[Limit<'_>],
        now: SystemTime,
    ) -> Result<Vec<RateDecision>, StoreError> {
        self.gate("hit_all")?;
        self.inner.hit_all(limits, now).await
    }

    async fn put_challenge(
        &self,
        key: &str,
        c: &Challenge,
        now: SystemTime,
    ) -> Result<(), StoreError> {
        self.gate("put_challenge")?;
        self.inner.put_challenge(key, c, now).await
    }

    async fn attempt_challenge(
        &self,
        key: &str,
        max: u32,
        now: SystemTime,
    ) -> Result<Attempt, StoreError> {
        self.gate("attempt_challenge")?;
        self.inner.attempt_challenge(key, max, now).await
    }

    async fn remove_challenge(&self, key: &str, id: &[u8; 16]) -> Result<bool, StoreError> {
        self.gate("remove_challenge")?;
        self.inner.remove_challenge(key, id).await
    }

    async fn create_session(
        &self,
        sid: &str,
        refresh_hash: &[u8; 32],
        data: &[u8],
        ttl: Duration,
        now: SystemTime,
    ) -> Result<(), StoreError> {
        self.gate("create_session")?;
        self.inner
            .create_session(sid, refresh_hash, data, ttl, now)
            .await
    }

    async fn rotate_refresh(
        &self,
        sid: &str,
        presented: &[u8; 32],
        successor: &[u8; 32],
        grace: Duration,
        ttl: Duration,
        now: SystemTime,
    ) -> Result<Rotation, StoreError> {
        self.gate("rotate_refresh")?;
        self.inner
            .rotate_refresh(sid, presented, successor, grace, ttl, now)
            .await
    }

    async fn revoke(&self, id: &str, ttl: Duration) -> Result<(), StoreError> {
        self.gate("revoke")?;
        self.inner.revoke(id, ttl).await
    }

    async fn is_revoked(&self, id: &str) -> Result<bool, StoreError> {
        self.gate("is_revoked")?;
        self.inner.is_revoked(id).await
    }

    async fn put_api_key(
        &self,
        id: &str,
        record: &[u8],
        ttl: Option<Duration>,
    ) -> Result<(), StoreError> {
        self.gate("put_api_key")?;
        self.inner.put_api_key(id, record, ttl).await
    }

    async fn get_api_key(&self, id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.gate("get_api_key")?;
        self.inner.get_api_key(id).await
    }

    async fn delete_api_key(&self, id: &str) -> Result<bool, StoreError> {
        self.gate("delete_api_key")?;
        self.inner.delete_api_key(id).await
    }

    async fn list_api_keys(&self) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        self.gate("list_api_keys")?;
        self.inner.list_api_keys().await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.gate("ping")?;
        self.inner.ping().await
    }
}

fn keys(store: &Counting, clock: &ManualClock) -> ApiKeys<Counting> {
    ApiKeys::builder(store.clone())
        .prefix("sk_live")
        .clock(clock.clone())
        .build()
        .unwrap()
}

/// Every one-character substitution of `key`, plus truncations and junk.
fn typos(key: &str) -> Vec<String> {
    let alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_";
    let chars: Vec<char> = key.chars().collect();
    let mut out = Vec::new();
    for i in 0..chars.len() {
        for c in alphabet.chars().filter(|&c| c != chars[i]) {
            let mut m = chars.clone();
            m[i] = c;
            out.push(m.into_iter().collect());
        }
    }
    out.push(key[..key.len() - 1].to_owned());
    out.push(format!("{key}x"));
    out.push(String::new());
    out.push("sk_live_".to_owned());
    out.push("x".repeat(10_000));
    out
}

type Body = Full<Bytes>;

fn oneshot_app(
    layer: ApiKeyLayer<Counting>,
) -> impl tower::Service<
    Request<Body>,
    Response = Response<tower_otp::body::ResponseBody<Body>>,
    Error = Infallible,
    Future: Send,
> + Clone {
    ServiceBuilder::new()
        .layer(layer)
        .service(service_fn(|req: Request<Body>| async move {
            let who = req.extensions().get::<ApiKeyIdentity>().unwrap();
            Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(
                who.tenant().to_owned(),
            ))))
        }))
}

fn with_key(key: &str) -> Request<Body> {
    Request::builder()
        .uri("/")
        .header("x-api-key", key)
        .body(Full::default())
        .unwrap()
}

#[tokio::test]
async fn typo_is_refused_with_zero_store_calls() {
    let (store, clock) = (Counting::default(), ManualClock::default());
    let keys = keys(&store, &clock);
    let issued = keys.issue("acme", ["read"], "ci", None).await.unwrap();
    let app = oneshot_app(ApiKeyLayer::new(keys.clone()));
    store.reset();

    let typos = typos(issued.key());
    assert!(typos.len() > 4_000);
    for typo in &typos {
        let err = keys.verify(typo).await.unwrap_err();
        assert!(err.is_offline(), "{err:?} for {typo}");
    }
    for typo in typos.iter().step_by(17) {
        let res = app.clone().oneshot(with_key(typo)).await.unwrap();
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    }
    assert_eq!(store.total(), 0, "a refused typo touched the store");

    // The real key: exactly one record lookup (and one last-used write).
    let res = app.clone().oneshot(with_key(issued.key())).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(store.count("get_api_key"), 1);
    assert_eq!(store.count("put_api_key"), 1);
    // Then it is cached: no store call at all.
    store.reset();
    for _ in 0..10 {
        let res = app.clone().oneshot(with_key(issued.key())).await.unwrap();
        assert_eq!(res.status(), StatusCode::OK);
    }
    assert_eq!(store.total(), 0);
}

#[tokio::test]
async fn rotated_key_works_during_grace_and_not_after() {
    let (store, clock) = (Counting::default(), ManualClock::default());
    let keys = keys(&store, &clock);
    let app = oneshot_app(ApiKeyLayer::new(keys.clone()));
    let old = keys.issue("acme", ["read"], "ci", None).await.unwrap();
    assert_eq!(
        app.clone()
            .oneshot(with_key(old.key()))
            .await
            .unwrap()
            .status(),
        200
    );

    let new = keys
        .rotate(old.key_id(), Duration::from_secs(600))
        .await
        .unwrap();
    for key in [old.key(), new.key()] {
        assert_eq!(
            app.clone().oneshot(with_key(key)).await.unwrap().status(),
            200
        );
    }
    clock.advance(Duration::from_secs(599));
    assert_eq!(
        app.clone()
            .oneshot(with_key(old.key()))
            .await
            .unwrap()
            .status(),
        200
    );
    clock.advance(Duration::from_secs(1));
    assert_eq!(
        app.clone()
            .oneshot(with_key(old.key()))
            .await
            .unwrap()
            .status(),
        401
    );
    assert!(matches!(
        keys.verify(old.key()).await,
        Err(Rejection::Mismatch)
    ));
    assert_eq!(
        app.oneshot(with_key(new.key())).await.unwrap().status(),
        200
    );
}

#[tokio::test]
async fn revoked_key_is_refused() {
    let (store, clock) = (Counting::default(), ManualClock::default());
    let keys = keys(&store, &clock);
    let app = oneshot_app(ApiKeyLayer::new(keys.clone()));
    let issued = keys.issue("acme", ["read"], "ci", None).await.unwrap();
    assert_eq!(
        app.clone()
            .oneshot(with_key(issued.key()))
            .await
            .unwrap()
            .status(),
        200
    );
    assert!(keys.revoke(issued.key_id()).await.unwrap());
    assert_eq!(
        app.oneshot(with_key(issued.key())).await.unwrap().status(),
        401
    );
    assert!(keys.list(None).await.unwrap().is_empty());
}

#[tokio::test]
async fn store_failure_is_503_and_recovers() {
    let (store, clock) = (Counting::default(), ManualClock::default());
    let keys = keys(&store, &clock);
    let app = oneshot_app(ApiKeyLayer::new(keys.clone()));
    let issued = keys.issue("acme", ["read"], "ci", None).await.unwrap();
    store.set_down(true);
    let res = app.clone().oneshot(with_key(issued.key())).await.unwrap();
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body = res.into_body().collect().await.unwrap().to_bytes();
    let doc: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(doc["code"], "store_unavailable");
    assert!(!String::from_utf8_lossy(&body).contains("test store is down"));
    store.set_down(false);
    assert_eq!(
        app.oneshot(with_key(issued.key())).await.unwrap().status(),
        200
    );
}

// ---- over a real socket -------------------------------------------------

struct Server {
    addr: SocketAddr,
    client: Client<HttpConnector, Body>,
}

impl Server {
    async fn start(keys: ApiKeys<Counting>) -> Self {
        async fn whoami(who: ApiKeyIdentity) -> String {
            format!("{}/{}", who.tenant(), who.key_id())
        }
        async fn admin(who: ApiKeyIdentity) -> String {
            format!("admin {}", who.tenant())
        }
        let app = Router::new()
            .route("/whoami", get(whoami))
            .layer(ApiKeyLayer::new(keys.clone()))
            .merge(
                Router::new().route("/admin", get(admin)).layer(
                    ApiKeyLayer::builder(keys)
                        .require_scope("admin")
                        .build()
                        .unwrap(),
                ),
            )
            // Not behind the layer: the extractor itself refuses.
            .route("/unprotected", get(whoami));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        let client = Client::builder(TokioExecutor::new()).build_http();
        Self { addr, client }
    }

    async fn get(
        &self,
        path: &str,
        headers: &[(&str, &str)],
    ) -> (StatusCode, http::HeaderMap, String) {
        let mut req = Request::builder().uri(format!("http://{}{path}", self.addr));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let req = req.body(Full::default()).unwrap();
        // Generous upper bound, not a timing assertion.
        let res = tokio::time::timeout(Duration::from_secs(10), self.client.request(req))
            .await
            .expect("server did not answer within 10 s")
            .unwrap();
        let (parts, body) = res.into_parts();
        let body = body.collect().await.unwrap().to_bytes();
        (
            parts.status,
            parts.headers,
            String::from_utf8(body.to_vec()).unwrap(),
        )
    }
}

fn code_of(body: &str) -> String {
    let doc: serde_json::Value = serde_json::from_str(body).unwrap();
    doc["code"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn axum_server_over_http() {
    let (store, clock) = (Counting::default(), ManualClock::default());
    let keys = keys(&store, &clock);
    let reader = keys.issue("acme", ["read"], "reader", None).await.unwrap();
    let admin = keys
        .issue("acme", ["read", "admin"], "admin", None)
        .await
        .unwrap();
    let server = Server::start(keys.clone()).await;

    // A valid key, via either header.
    let (status, _, body) = server.get("/whoami", &[("x-api-key", reader.key())]).await;
    assert_eq!(status, 200);
    assert_eq!(body, format!("acme/{}", reader.key_id()));
    let bearer = format!("Bearer {}", reader.key());
    let (status, _, _) = server.get("/whoami", &[("authorization", &bearer)]).await;
    assert_eq!(status, 200);

    // Missing and typo'd keys: 401 problem+json, no store call for the typo.
    let (status, headers, body) = server.get("/whoami", &[]).await;
    assert_eq!(status, 401);
    assert_eq!(headers["content-type"], "application/problem+json");
    assert_eq!(headers[WWW_AUTHENTICATE], "Bearer");
    assert_eq!(code_of(&body), "invalid_api_key");
    store.reset();
    let mut typo = reader.key().to_owned();
    typo.replace_range(20..21, if &typo[20..21] == "a" { "b" } else { "a" });
    let (status, headers, body) = server.get("/whoami", &[("x-api-key", &typo)]).await;
    assert_eq!(status, 401);
    assert_eq!(headers[WWW_AUTHENTICATE], "Bearer error=\"invalid_token\"");
    assert_eq!(code_of(&body), "invalid_api_key");
    assert_eq!(store.total(), 0);

    // Scopes: 403 for the reader, 200 for the admin.
    let (status, _, body) = server.get("/admin", &[("x-api-key", reader.key())]).await;
    assert_eq!(status, 403);
    assert_eq!(code_of(&body), "insufficient_scope");
    let (status, _, body) = server.get("/admin", &[("x-api-key", admin.key())]).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "admin acme"));

    // The extractor without the layer refuses.
    let (status, _, body) = server
        .get("/unprotected", &[("x-api-key", reader.key())])
        .await;
    assert_eq!(status, 401);
    assert_eq!(code_of(&body), "invalid_api_key");

    // Rotation with grace, then the grace runs out.
    let rotated = keys
        .rotate(reader.key_id(), Duration::from_secs(60))
        .await
        .unwrap();
    for key in [reader.key(), rotated.key()] {
        assert_eq!(server.get("/whoami", &[("x-api-key", key)]).await.0, 200);
    }
    clock.advance(Duration::from_secs(60));
    assert_eq!(
        server
            .get("/whoami", &[("x-api-key", reader.key())])
            .await
            .0,
        401
    );
    assert_eq!(
        server
            .get("/whoami", &[("x-api-key", rotated.key())])
            .await
            .0,
        200
    );

    // Revocation.
    keys.revoke(admin.key_id()).await.unwrap();
    assert_eq!(
        server.get("/admin", &[("x-api-key", admin.key())]).await.0,
        401
    );

    // Store failure: fail closed (a key not in the cache), then recovery.
    let fresh = keys.issue("acme", ["read"], "fresh", None).await.unwrap();
    store.set_down(true);
    let (status, _, body) = server.get("/whoami", &[("x-api-key", fresh.key())]).await;
    assert_eq!(status, 503);
    assert_eq!(code_of(&body), "store_unavailable");
    store.set_down(false);
    assert_eq!(
        server.get("/whoami", &[("x-api-key", fresh.key())]).await.0,
        200
    );
}
