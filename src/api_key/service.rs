//! [`ApiKeyAuth`]: the API-key check as a `tower::Service`.

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response};
use tower::{Layer, Service};

use super::future::ResponseFuture;
use super::layer::{ApiKeyLayer, Shared};
use super::{manage::ApiKeys, verify::Precheck};
use crate::body::ResponseBody;
use crate::store::ApiKeyStore;

/// Checks the API key of every request before the inner service sees it.
/// Built by [`ApiKeyLayer`]; see it for the behaviour.
pub struct ApiKeyAuth<S, I> {
    inner: I,
    shared: Arc<Shared<S>>,
}

impl<S, I: Clone> Clone for ApiKeyAuth<S, I> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<S: fmt::Debug, I: fmt::Debug> fmt::Debug for ApiKeyAuth<S, I> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiKeyAuth")
            .field("inner", &self.inner)
            .field("config", &self.shared)
            .finish()
    }
}

impl<S: ApiKeyStore, I> ApiKeyAuth<S, I> {
    /// Wraps `inner` with the default configuration (see [`ApiKeyLayer::new`]).
    pub fn new(inner: I, keys: ApiKeys<S>) -> Self {
        ApiKeyLayer::new(keys).layer(inner)
    }

    /// A layer with the default configuration.
    pub fn layer(keys: ApiKeys<S>) -> ApiKeyLayer<S> {
        ApiKeyLayer::new(keys)
    }
}

impl<S, I> ApiKeyAuth<S, I> {
    pub(crate) fn from_shared(inner: I, shared: Arc<Shared<S>>) -> Self {
        Self { inner, shared }
    }

    /// The inner service.
    pub fn get_ref(&self) -> &I {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut I {
        &mut self.inner
    }

    /// Unwraps the inner service.
    pub fn into_inner(self) -> I {
        self.inner
    }
}

impl<S, I, ReqB, ResB> Service<Request<ReqB>> for ApiKeyAuth<S, I>
where
    S: ApiKeyStore,
    I: Service<Request<ReqB>, Response = Response<ResB>> + Clone + Send + 'static,
    I::Future: Send + 'static,
    I::Error: 'static,
    ReqB: Send + 'static,
    ResB: 'static,
{
    type Response = Response<ResponseBody<ResB>>;
    type Error = I::Error;
    type Future = ResponseFuture<I::Future, ResB>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqB>) -> Self::Future {
        match self.shared.precheck(req.headers()) {
            Precheck::Refused(rejection) => {
                ResponseFuture::refused(self.shared.refuse(req, &rejection, None))
            }
            Precheck::Verified(identity) => match self.shared.admit(req, identity) {
                Ok(req) => ResponseFuture::inner(self.inner.call(req)),
                Err(refused) => ResponseFuture::refused(refused),
            },
            Precheck::Pending(pending) => {
                // The ready service goes into the future; a clone stays.
                let clone = self.inner.clone();
                let mut inner = std::mem::replace(&mut self.inner, clone);
                let shared = Arc::clone(&self.shared);
                ResponseFuture::checking(Box::pin(async move {
                    let key_id = pending.key_id().to_owned();
                    match shared.keys.complete(pending).await {
                        Ok(identity) => shared.admit(req, identity).map(|req| inner.call(req)),
                        Err(rejection) => Err(shared.refuse(req, &rejection, Some(&key_id))),
                    }
                }))
            }
        }
    }
}

#[cfg(all(test, feature = "moka"))]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::convert::Infallible;

    use bytes::Bytes;
    use http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
    use http::{HeaderValue, StatusCode};
    use http_body_util::{BodyExt, Full};
    use tower::{ServiceBuilder, ServiceExt, service_fn};

    use super::*;
    use crate::api_key::{ApiKeyIdentity, IssuedKey, KeySource};
    use crate::clock::ManualClock;
    use crate::events::{EventKind, MemorySink};
    use crate::store::MemoryStore;

    type Svc = ApiKeyAuth<
        MemoryStore,
        tower::util::ServiceFn<
            fn(
                Request<Full<Bytes>>,
            ) -> std::future::Ready<Result<Response<Full<Bytes>>, Infallible>>,
        >,
    >;

    fn echo(
        req: Request<Full<Bytes>>,
    ) -> std::future::Ready<Result<Response<Full<Bytes>>, Infallible>> {
        let who = req
            .extensions()
            .get::<ApiKeyIdentity>()
            .map_or("nobody".to_owned(), |w| {
                format!("{}:{}", w.tenant(), w.key_id())
            });
        std::future::ready(Ok(Response::new(Full::new(Bytes::from(who)))))
    }

    async fn setup(
        build: impl FnOnce(
            crate::api_key::ApiKeyLayerBuilder<MemoryStore>,
        ) -> crate::api_key::ApiKeyLayerBuilder<MemoryStore>,
    ) -> (Svc, IssuedKey, MemorySink) {
        let keys = ApiKeys::builder(MemoryStore::new())
            .clock(ManualClock::default())
            .build()
            .unwrap();
        let issued = keys.issue("acme", ["read"], "ci", None).await.unwrap();
        let sink = MemorySink::new();
        let layer = build(ApiKeyLayer::builder(keys).events(sink.clone()))
            .build()
            .unwrap();
        let svc = ServiceBuilder::new()
            .layer(layer)
            .service(service_fn(echo as fn(_) -> _));
        (svc, issued, sink)
    }

    fn request(headers: &[(&str, &str)]) -> Request<Full<Bytes>> {
        let mut b = Request::builder().uri("/x");
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(Full::default()).unwrap()
    }

    async fn problem_code(res: Response<ResponseBody<Full<Bytes>>>) -> String {
        assert_eq!(res.headers()["content-type"], "application/problem+json");
        let body = res.into_body().collect().await.unwrap().to_bytes();
        let doc: serde_json::Value = serde_json::from_slice(&body).unwrap();
        doc["code"].as_str().unwrap().to_owned()
    }

    #[tokio::test]
    async fn valid_key_in_header_or_bearer_reaches_the_service_with_identity() {
        let (svc, issued, sink) = setup(|b| b).await;
        for req in [
            request(&[("x-api-key", issued.key())]),
            request(&[("authorization", &format!("Bearer {}", issued.key()))]),
        ] {
            let res = svc.clone().oneshot(req).await.unwrap();
            assert_eq!(res.status(), StatusCode::OK);
            let body = res.into_body().collect().await.unwrap().to_bytes();
            assert_eq!(body, format!("acme:{}", issued.key_id()));
        }
        assert!(sink.kinds().is_empty());
    }

    #[tokio::test]
    async fn missing_key_is_401_with_challenges() {
        let (svc, _, sink) = setup(|b| b).await;
        for req in [request(&[]), request(&[("authorization", "Basic dTpw")])] {
            let res = svc.clone().oneshot(req).await.unwrap();
            assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
            let challenges: Vec<&HeaderValue> =
                res.headers().get_all(WWW_AUTHENTICATE).iter().collect();
            assert_eq!(challenges, ["Bearer", "ApiKey header=\"x-api-key\""]);
            assert_eq!(problem_code(res).await, "invalid_api_key");
        }
        let events = sink.events();
        assert_eq!(events.len(), 2);
        assert!(
            events
                .iter()
                .all(|e| e.kind == EventKind::ApiKeyRejected && e.reason == Some("missing"))
        );
    }

    #[tokio::test]
    async fn bad_keys_are_401_invalid_token_and_never_echo_the_key() {
        let (svc, issued, sink) = setup(|b| b).await;
        let mut typo = issued.key().to_owned();
        let last = typo.pop().unwrap();
        typo.push(if last == 'A' { 'B' } else { 'A' });
        let repeated = {
            let mut r = request(&[("x-api-key", issued.key())]);
            r.headers_mut()
                .append("x-api-key", HeaderValue::from_str(issued.key()).unwrap());
            r
        };
        for req in [
            request(&[("x-api-key", &typo)]),
            request(&[("x-api-key", "junk")]),
            request(&[("authorization", "Bearer not a token")]),
            repeated,
        ] {
            let res = svc.clone().oneshot(req).await.unwrap();
            assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
            assert_eq!(
                res.headers()[WWW_AUTHENTICATE],
                "Bearer error=\"invalid_token\""
            );
            let body = res.into_body().collect().await.unwrap().to_bytes();
            assert!(!String::from_utf8_lossy(&body).contains(&typo));
        }
        let reasons: Vec<_> = sink.events().iter().map(|e| e.reason).collect();
        assert_eq!(
            reasons,
            [
                Some("checksum"),
                Some("malformed"),
                Some("malformed"),
                Some("malformed")
            ]
        );
    }

    #[tokio::test]
    async fn revoked_key_is_refused_with_its_key_id_in_the_event() {
        let (svc, issued, sink) = setup(|b| b).await;
        let keys = svc.shared.keys.clone();
        let ok = svc
            .clone()
            .oneshot(request(&[("x-api-key", issued.key())]))
            .await
            .unwrap();
        assert_eq!(ok.status(), StatusCode::OK);
        keys.revoke(issued.key_id()).await.unwrap();
        let res = svc
            .oneshot(request(&[("x-api-key", issued.key())]))
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
        let e = &sink.events()[0];
        assert_eq!(e.reason, Some("unknown_key"));
        assert_eq!(
            e.subject.as_deref(),
            Some(format!("api_key:{}", issued.key_id()).as_str())
        );
    }

    #[tokio::test]
    async fn missing_scope_is_403_insufficient_scope() {
        let (svc, issued, sink) = setup(|b| b.require_scope("read").require_scope("write")).await;
        // Twice: once from the store, once from the cache.
        for _ in 0..2 {
            let res = svc
                .clone()
                .oneshot(request(&[("x-api-key", issued.key())]))
                .await
                .unwrap();
            assert_eq!(res.status(), StatusCode::FORBIDDEN);
            assert_eq!(
                res.headers()[WWW_AUTHENTICATE],
                "Bearer error=\"insufficient_scope\", scope=\"read write\""
            );
            assert_eq!(problem_code(res).await, "insufficient_scope");
        }
        assert_eq!(
            sink.events()
                .iter()
                .filter(|e| e.reason == Some("insufficient_scope"))
                .count(),
            2
        );
    }

    #[tokio::test]
    async fn source_can_be_header_only_or_bearer_only() {
        let (svc, issued, _) =
            setup(|b| b.source(KeySource::Header(http::HeaderName::from_static("x-token")))).await;
        let bearer = request(&[("authorization", &format!("Bearer {}", issued.key()))]);
        let res = svc.clone().oneshot(bearer).await.unwrap();
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(res.headers()[WWW_AUTHENTICATE], "ApiKey header=\"x-token\"");
        let ok = svc
            .oneshot(request(&[("x-token", issued.key())]))
            .await
            .unwrap();
        assert_eq!(ok.status(), StatusCode::OK);

        let (svc, issued, _) = setup(|b| b.source(KeySource::Bearer)).await;
        let res = svc
            .clone()
            .oneshot(request(&[("x-api-key", issued.key())]))
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
        let mut req = request(&[]);
        req.headers_mut().insert(
            AUTHORIZATION,
            HeaderValue::from_str(&format!("bearer {}", issued.key())).unwrap(),
        );
        assert_eq!(svc.oneshot(req).await.unwrap().status(), StatusCode::OK);
    }

    #[tokio::test]
    async fn invalid_required_scope_is_a_config_error() {
        let keys = ApiKeys::builder(MemoryStore::new()).build().unwrap();
        assert!(
            ApiKeyLayer::builder(keys)
                .require_scope("a b")
                .build()
                .is_err()
        );
    }
}
