//! API keys end to end: store round trips counted, rotation, revocation
//! (also racing an in-flight verification), last-used records, scopes and
//! store failure — through `tower::ServiceExt::oneshot` and through a real
//! axum server on loopback with a hyper client.
#![cfg(all(feature = "moka", feature = "axum"))]
#![allow(clippy::unwrap_used)]

#[cfg(feature = "redis")]
mod support;

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use bytes::Bytes;
use http::header::WWW_AUTHENTICATE;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio::sync::oneshot;
use tower::{ServiceBuilder, ServiceExt, service_fn};
use tower_otp::api_key::{ApiKeyIdentity, ApiKeyLayer, ApiKeys, LAST_USED_RETENTION, Rejection};
use tower_otp::clock::{Clock, ManualClock};
use tower_otp::store::{ApiKeyStore, MemoryStore, StoreError};

/// An `ApiKeyStore` (all that `ApiKeys` and `ApiKeyLayer` can reach) that
/// counts every call per operation, records the TTL of every `put_api_key`,
/// can be switched to fail, and can hold one call in flight until the test
/// releases it (instrumentation; the data lives in a real `MemoryStore`).
#[derive(Clone, Debug, Default)]
struct Counting {
    inner: MemoryStore,
    calls: Arc<Mutex<HashMap<&'static str, usize>>>,
    down: Arc<AtomicBool>,
    puts: Arc<Mutex<Vec<Put>>>,
    holds: Arc<Mutex<Vec<Hold>>>,
}

/// The id and TTL of one `put_api_key` call.
type Put = (String, Option<Duration>);

/// One call to hold: `get_api_key` is held after it has read the record
/// (it returns what it read, however stale), `put_api_key` before it writes.
#[derive(Debug)]
struct Hold {
    op: &'static str,
    id: String,
    reached: oneshot::Sender<()>,
    release: oneshot::Receiver<()>,
}

/// The test's ends of a [`Hold`]: wait for `reached`, then send `release`.
struct HoldHandle {
    reached: oneshot::Receiver<()>,
    release: oneshot::Sender<()>,
}

impl HoldHandle {
    /// Waits until the held call is in flight.
    async fn reached(&mut self) {
        (&mut self.reached).await.unwrap();
    }

    /// Lets the held call finish.
    fn release(self) {
        self.release.send(()).unwrap();
    }
}

impl Counting {
    /// Holds the next `op` call for `id` (once).
    fn hold(&self, op: &'static str, id: &str) -> HoldHandle {
        let (reached_tx, reached) = oneshot::channel();
        let (release, release_rx) = oneshot::channel();
        self.holds.lock().unwrap().push(Hold {
            op,
            id: id.to_owned(),
            reached: reached_tx,
            release: release_rx,
        });
        HoldHandle { reached, release }
    }

    async fn held(&self, op: &'static str, id: &str) {
        let hold = {
            let mut holds = self.holds.lock().unwrap();
            let i = holds.iter().position(|h| h.op == op && h.id == id);
            i.map(|i| holds.remove(i))
        };
        if let Some(hold) = hold {
            hold.reached.send(()).unwrap();
            hold.release.await.unwrap();
        }
    }

    /// The TTLs `put_api_key` was called with for `id`.
    fn put_ttls(&self, id: &str) -> Vec<Option<Duration>> {
        let puts = self.puts.lock().unwrap();
        puts.iter()
            .filter(|(p, _)| p == id)
            .map(|(_, ttl)| *ttl)
            .collect()
    }

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

impl ApiKeyStore for Counting {
    async fn put_api_key(
        &self,
        id: &str,
        record: &[u8],
        ttl: Option<Duration>,
    ) -> Result<(), StoreError> {
        self.gate("put_api_key")?;
        self.puts.lock().unwrap().push((id.to_owned(), ttl));
        self.held("put_api_key", id).await;
        self.inner.put_api_key(id, record, ttl).await
    }

    async fn get_api_key(&self, id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.gate("get_api_key")?;
        let read = self.inner.get_api_key(id).await;
        self.held("get_api_key", id).await;
        read
    }

    async fn delete_api_key(&self, id: &str) -> Result<bool, StoreError> {
        self.gate("delete_api_key")?;
        self.inner.delete_api_key(id).await
    }

    async fn list_api_keys(&self) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        self.gate("list_api_keys")?;
        self.inner.list_api_keys().await
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

    // The real key: one record lookup, one last-used write, and one read
    // of the record after that write (to remove it if the key was revoked
    // meanwhile).
    let res = app.clone().oneshot(with_key(issued.key())).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(store.count("get_api_key"), 2);
    assert_eq!(store.count("put_api_key"), 1);
    assert_eq!(store.count("delete_api_key"), 0);
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

/// A verification reads the record, then `revoke` runs while it is still in
/// flight (the store call is held until the revoke has returned): the stale
/// record it read must not refill the cache, so the key is refused at once.
#[tokio::test]
async fn revoke_during_an_in_flight_verify_is_not_undone_by_the_cache() {
    let (store, clock) = (Counting::default(), ManualClock::default());
    let keys = keys(&store, &clock);
    let issued = keys.issue("acme", ["read"], "ci", None).await.unwrap();

    let mut hold = store.hold("get_api_key", issued.key_id());
    let verify = tokio::spawn({
        let (keys, key) = (keys.clone(), issued.key().to_owned());
        async move { keys.verify(&key).await }
    });
    hold.reached().await; // the record has been read; verify is in flight
    assert!(keys.revoke(issued.key_id()).await.unwrap());
    hold.release();
    // The verification that raced the revoke answers what it read...
    assert_eq!(verify.await.unwrap().unwrap().key_id(), issued.key_id());
    // ...but from now on the key is refused, from the store, not the cache.
    store.reset();
    assert!(matches!(
        keys.verify(issued.key()).await,
        Err(Rejection::Unknown)
    ));
    assert_eq!(store.count("get_api_key"), 1);
    // No last-used record is left behind either.
    let left = store.inner.list_api_keys().await.unwrap();
    assert!(left.is_empty(), "{left:?}");
}

/// The same race against a rotation with no grace: the old secret, read in
/// flight, must not be cached as valid.
#[tokio::test]
async fn rotate_during_an_in_flight_verify_is_not_undone_by_the_cache() {
    let (store, clock) = (Counting::default(), ManualClock::default());
    let keys = keys(&store, &clock);
    let old = keys.issue("acme", ["read"], "ci", None).await.unwrap();

    let mut hold = store.hold("get_api_key", old.key_id());
    let verify = tokio::spawn({
        let (keys, key) = (keys.clone(), old.key().to_owned());
        async move { keys.verify(&key).await }
    });
    hold.reached().await;
    let new = keys.rotate(old.key_id(), Duration::ZERO).await.unwrap();
    hold.release();
    assert!(verify.await.unwrap().is_ok());
    assert!(matches!(
        keys.verify(old.key()).await,
        Err(Rejection::Mismatch)
    ));
    assert!(keys.verify(new.key()).await.is_ok());
}

/// Every last-used write carries a TTL: never more than the retention, and
/// never beyond the key's own expiry.
#[tokio::test]
async fn last_used_records_always_expire() {
    let (store, clock) = (Counting::default(), ManualClock::default());
    let keys = keys(&store, &clock);
    let forever = keys.issue("acme", ["read"], "ci", None).await.unwrap();
    let in_an_hour = clock.now() + Duration::from_secs(3600);
    let hourly = keys
        .issue("acme", ["read"], "ci", Some(in_an_hour))
        .await
        .unwrap();
    for issued in [&forever, &hourly] {
        keys.verify(issued.key()).await.unwrap();
    }
    assert_eq!(
        store.put_ttls(&format!("{}.used", forever.key_id())),
        [Some(LAST_USED_RETENTION)]
    );
    assert_eq!(
        store.put_ttls(&format!("{}.used", hourly.key_id())),
        [Some(Duration::from_secs(3600))]
    );
    // The records themselves keep the key's lifetime.
    assert_eq!(store.put_ttls(forever.key_id()), [None]);
    assert_eq!(
        store.put_ttls(hourly.key_id()),
        [Some(Duration::from_secs(3600))]
    );
    // A later write, after the interval, is bounded the same way.
    clock.advance(Duration::from_secs(600));
    keys.verify(hourly.key()).await.unwrap();
    assert_eq!(
        store.put_ttls(&format!("{}.used", hourly.key_id()))[1],
        Some(Duration::from_secs(3000))
    );
}

/// `revoke` deletes the last-used record, and one written after the revoke
/// (by a verification already past its lookup, here held just before its
/// write) is removed too instead of lingering.
#[tokio::test]
async fn no_last_used_record_outlives_a_revoked_key() {
    let (store, clock) = (Counting::default(), ManualClock::default());
    let keys = keys(&store, &clock);
    let used_id = |issued: &tower_otp::api_key::IssuedKey| format!("{}.used", issued.key_id());

    // Plain revoke.
    let a = keys.issue("acme", ["read"], "a", None).await.unwrap();
    keys.verify(a.key()).await.unwrap();
    assert!(
        store
            .inner
            .get_api_key(&used_id(&a))
            .await
            .unwrap()
            .is_some()
    );
    assert!(keys.revoke(a.key_id()).await.unwrap());
    assert!(
        store
            .inner
            .get_api_key(&used_id(&a))
            .await
            .unwrap()
            .is_none()
    );

    // The last-used write lands after the revoke, on this instance...
    let b = keys.issue("acme", ["read"], "b", None).await.unwrap();
    let mut hold = store.hold("put_api_key", &used_id(&b));
    let verify = tokio::spawn({
        let (keys, key) = (keys.clone(), b.key().to_owned());
        async move { keys.verify(&key).await }
    });
    hold.reached().await;
    assert!(keys.revoke(b.key_id()).await.unwrap());
    hold.release();
    verify.await.unwrap().unwrap();
    assert!(
        store
            .inner
            .get_api_key(&used_id(&b))
            .await
            .unwrap()
            .is_none()
    );

    // ...or on another instance, still trusting its cache and due a write.
    let other = ApiKeys::builder(store.clone())
        .prefix("sk_live")
        .clock(clock.clone())
        .cache_ttl(Duration::from_secs(60))
        .last_used_interval(Duration::from_secs(1))
        .build()
        .unwrap();
    let c = keys.issue("acme", ["read"], "c", None).await.unwrap();
    other.verify(c.key()).await.unwrap();
    clock.advance(Duration::from_secs(2));
    store.reset();
    let mut hold = store.hold("put_api_key", &used_id(&c));
    let verify = tokio::spawn({
        let (other, key) = (other.clone(), c.key().to_owned());
        async move { other.verify(&key).await }
    });
    hold.reached().await;
    assert_eq!(store.count("get_api_key"), 0, "the verify was a cache hit");
    assert!(keys.revoke(c.key_id()).await.unwrap());
    hold.release();
    verify.await.unwrap().unwrap();
    let left = store.inner.list_api_keys().await.unwrap();
    assert!(left.is_empty(), "{left:?}");
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

/// With a real Redis: the last-used entry of a non-expiring key has a TTL of
/// at most the retention, that of an expiring key no more than the key's
/// own, and `revoke` removes both.
#[cfg(feature = "redis")]
#[tokio::test]
async fn redis_last_used_entries_have_a_bounded_ttl() {
    use tower_otp::store::RedisStore;

    let Some(server) = support::redis_server::shared() else {
        return;
    };
    let prefix = support::conformance::unique("api-keys");
    let store = RedisStore::builder(server.url())
        .prefix(&prefix)
        .connect()
        .await
        .unwrap();
    let clock = ManualClock::default();
    let keys = ApiKeys::builder(store)
        .clock(clock.clone())
        .build()
        .unwrap();
    let forever = keys.issue("acme", ["read"], "ci", None).await.unwrap();
    let in_an_hour = clock.now() + Duration::from_secs(3600);
    let hourly = keys
        .issue("acme", ["read"], "ci", Some(in_an_hour))
        .await
        .unwrap();
    for issued in [&forever, &hourly] {
        keys.verify(issued.key()).await.unwrap();
    }
    let redis = redis::Client::open(server.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let record = |id: &str| format!("{{{prefix}:k}}:r:{id}");
    let used = |id: &str| record(&format!("{id}.used"));
    let pttl = |key: String| {
        let mut redis = redis.clone();
        async move {
            redis::cmd("PTTL")
                .arg(key)
                .query_async::<i64>(&mut redis)
                .await
                .unwrap()
        }
    };
    let retention_ms = i64::try_from(LAST_USED_RETENTION.as_millis()).unwrap();
    // The record of a key that never expires has no TTL; its usage does.
    assert_eq!(pttl(record(forever.key_id())).await, -1);
    let forever_used = pttl(used(forever.key_id())).await;
    assert!(
        forever_used > 0 && forever_used <= retention_ms,
        "{forever_used}"
    );
    let hourly_used = pttl(used(hourly.key_id())).await;
    assert!(hourly_used > 0 && hourly_used <= 3_600_000, "{hourly_used}");
    for issued in [&forever, &hourly] {
        assert!(keys.revoke(issued.key_id()).await.unwrap());
        for key in [record(issued.key_id()), used(issued.key_id())] {
            assert_eq!(pttl(key.clone()).await, -2, "{key} outlived revoke");
        }
    }
}
