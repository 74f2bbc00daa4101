//! [`ApiKey`]: the API-key check as a `tower::Service`.

use std::fmt;
use std::sync::Arc;

use http::header::{HeaderMap, WWW_AUTHENTICATE};
use http::request::Parts;
use http::{Request, Response, StatusCode};
use tower::{Layer, Service};

use super::error::{Rejection, invalid_api_key};
use super::format::FormatError;
use super::future::ResponseFuture;
use super::identity::ApiKeyIdentity;
use super::layer::{ApiKeyLayer, KeySource, Shared};
use super::manage::ApiKeys;
use super::verify::Precheck;
use crate::body::ResponseBody;
use crate::credentials;
use crate::error::Problem;
use crate::events::EventKind;
use crate::future::{Checked, LayerFuture};
use crate::store::ApiKeyStore;

impl<St: ApiKeyStore, S> Layer<S> for ApiKeyLayer<St> {
    type Service = ApiKey<S, St>;

    fn layer(&self, inner: S) -> Self::Service {
        ApiKey {
            inner,
            shared: Arc::clone(&self.shared),
        }
    }
}

/// Checks the API key of every request before the inner service `S` sees
/// it, against the keys in store `St`. Built by [`ApiKeyLayer`]; see it for
/// the behaviour.
pub struct ApiKey<S, St> {
    inner: S,
    shared: Arc<Shared<St>>,
}

impl<S: Clone, St> Clone for ApiKey<S, St> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<S: fmt::Debug, St: fmt::Debug> fmt::Debug for ApiKey<S, St> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiKey")
            .field("inner", &self.inner)
            .field("config", &self.shared)
            .finish()
    }
}

impl<S, St: ApiKeyStore> ApiKey<S, St> {
    /// Wraps `inner` with the default configuration (see [`ApiKeyLayer::new`]).
    pub fn new(inner: S, keys: ApiKeys<St>) -> Self {
        ApiKeyLayer::new(keys).layer(inner)
    }

    /// A layer with the default configuration.
    pub fn layer(keys: ApiKeys<St>) -> ApiKeyLayer<St> {
        ApiKeyLayer::new(keys)
    }
}

impl<S, St> ApiKey<S, St> {
    inner_service_accessors!();
}

impl<S, St, ReqB, ResB> Service<Request<ReqB>> for ApiKey<S, St>
where
    St: ApiKeyStore,
    S: Service<Request<ReqB>, Response = Response<ResB>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    ReqB: Send + 'static,
    ResB: 'static,
{
    refusing_service_items!(ResB);

    fn call(&mut self, req: Request<ReqB>) -> Self::Future {
        if let Some(exempt) = &self.shared.exempt
            && exempt(req.method(), req.uri(), req.headers())
        {
            return ResponseFuture::new(LayerFuture::inner(self.inner.call(req), ()));
        }
        let state = match self.shared.precheck(req.headers()) {
            Precheck::Refused(rejection) => {
                LayerFuture::decided(self.shared.refuse(req, &rejection, None))
            }
            Precheck::Verified(identity) => match self.shared.admit(req, identity) {
                Ok(req) => LayerFuture::inner(self.inner.call(req), ()),
                Err(refused) => LayerFuture::decided(refused),
            },
            Precheck::Pending(pending) => {
                // The ready service goes into the future; a clone stays.
                let clone = self.inner.clone();
                let mut inner = std::mem::replace(&mut self.inner, clone);
                let shared = Arc::clone(&self.shared);
                LayerFuture::checking(async move {
                    let key_id = pending.key_id().to_owned();
                    match shared.keys.complete(pending).await {
                        Ok(identity) => match shared.admit(req, identity) {
                            Ok(req) => Checked::Pass(inner.call(req), ()),
                            Err(refused) => Checked::Decided(refused),
                        },
                        Err(rejection) => {
                            Checked::Decided(shared.refuse(req, &rejection, Some(&key_id)))
                        }
                    }
                })
            }
        };
        ResponseFuture::new(state)
    }
}

/// The key presented in `headers` under `source`, `None` when none is
/// presented; malformed when a header is repeated or not text, or a Bearer
/// credential is not a token.
fn presented<'h>(
    source: &KeySource,
    headers: &'h HeaderMap,
) -> Result<Option<&'h str>, FormatError> {
    credentials::presented_key(headers, source.header(), source.bearer())
        .map_err(|_| FormatError::Shape)
}

impl<St: ApiKeyStore> Shared<St> {
    /// The check before any I/O: the presented key, format, checksum, cache.
    fn precheck(&self, headers: &HeaderMap) -> Precheck {
        match presented(&self.source, headers) {
            Ok(Some(key)) => self.keys.precheck(key),
            Ok(None) => Precheck::Refused(Rejection::Missing),
            Err(e) => Precheck::Refused(Rejection::Malformed(e)),
        }
    }

    /// Lets a verified request through (`Ok`, identity inserted) or refuses
    /// it for a missing scope.
    #[allow(clippy::result_large_err)] // both variants are large; moved once
    fn admit<B, RB>(
        &self,
        mut req: Request<B>,
        identity: ApiKeyIdentity,
    ) -> Result<Request<B>, Response<ResponseBody<RB>>> {
        if identity.has_scopes(self.required.iter().map(String::as_str)) {
            req.extensions_mut().insert(identity);
            return Ok(req);
        }
        let (parts, _) = req.into_parts();
        self.emit(
            &parts,
            EventKind::ApiKeyRejected,
            "insufficient_scope",
            Some(identity.key_id()),
        );
        let mut problem = Problem::new(
            StatusCode::FORBIDDEN,
            "insufficient_scope",
            "The API key lacks a scope this endpoint requires.",
        );
        for v in &self.forbidden {
            problem = problem.with_header(WWW_AUTHENTICATE, v.clone());
        }
        Err(self.refusal.respond(problem, &parts))
    }

    /// The response to a refused request.
    fn refuse<B, RB>(
        &self,
        req: Request<B>,
        rejection: &Rejection,
        key_id: Option<&str>,
    ) -> Response<ResponseBody<RB>> {
        let (parts, _) = req.into_parts();
        if let Rejection::Store(err) = rejection {
            tracing::error!(target: "tower_otp", error = %err, "API key check failed in the store; refusing request");
            self.emit(&parts, EventKind::StoreUnavailable, "api_key", key_id);
            return self.refusal.respond(Problem::store_unavailable(), &parts);
        }
        tracing::debug!(target: "tower_otp", reason = rejection.reason(), key_id, "API key refused");
        self.emit(
            &parts,
            EventKind::ApiKeyRejected,
            rejection.reason(),
            key_id,
        );
        let challenges = if matches!(rejection, Rejection::Missing) {
            &self.missing
        } else {
            &self.invalid
        };
        let mut problem = invalid_api_key();
        for v in challenges {
            problem = problem.with_header(WWW_AUTHENTICATE, v.clone());
        }
        self.refusal.respond(problem, &parts)
    }

    fn emit(&self, parts: &Parts, kind: EventKind, reason: &'static str, key_id: Option<&str>) {
        if let Some(reporter) = self.refusal.reporter(parts) {
            reporter.emit(kind, self.keys.now(), |event| {
                event.subject = key_id.map(|id| format!("api_key:{id}"));
                event.reason = Some(reason);
            });
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

    type Svc = ApiKey<
        tower::util::ServiceFn<
            fn(
                Request<Full<Bytes>>,
            ) -> std::future::Ready<Result<Response<Full<Bytes>>, Infallible>>,
        >,
        MemoryStore,
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

    /// A 403 whose challenge names the scopes `required`.
    fn assert_insufficient_scope<B>(res: &Response<B>, required: &str) {
        assert_eq!(res.status(), StatusCode::FORBIDDEN);
        assert_eq!(
            res.headers()[WWW_AUTHENTICATE],
            format!("Bearer error=\"insufficient_scope\", scope=\"{required}\"")
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
            assert_insufficient_scope(&res, "read write");
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

    /// A plain-text refusal that also tries to set its own challenge.
    fn text_refusal(
        problem: &crate::error::Problem,
        parts: &http::request::Parts,
    ) -> Response<crate::error::FullBody> {
        let body = format!("{} at {}", problem.code(), parts.uri.path());
        let mut res = Response::new(Full::new(Bytes::from(body)));
        *res.status_mut() = problem.status();
        res.headers_mut()
            .insert(WWW_AUTHENTICATE, HeaderValue::from_static("Basic"));
        res
    }

    #[tokio::test]
    async fn a_custom_rejection_shapes_the_refusal_and_keeps_the_challenges() {
        let (svc, issued, sink) = setup(|b| b.require_scope("write").rejection(text_refusal)).await;
        let res = svc.clone().oneshot(request(&[])).await.unwrap();
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
        let challenges: Vec<&HeaderValue> =
            res.headers().get_all(WWW_AUTHENTICATE).iter().collect();
        assert_eq!(challenges, ["Bearer", "ApiKey header=\"x-api-key\""]);
        let body = res.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(body, "invalid_api_key at /x");

        let res = svc
            .oneshot(request(&[("x-api-key", issued.key())]))
            .await
            .unwrap();
        assert_insufficient_scope(&res, "write");
        let body = res.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(body, "insufficient_scope at /x");
        // The events are the same whoever shapes the response.
        let reasons: Vec<_> = sink.events().iter().map(|e| e.reason).collect();
        assert_eq!(reasons, [Some("missing"), Some("insufficient_scope")]);
    }

    #[tokio::test]
    async fn an_outer_layer_sees_why_the_request_was_refused() {
        use crate::error::Problem;

        for custom in [false, true] {
            let (svc, issued, _) = setup(|b| {
                let b = b.require_scope("read");
                if custom { b.rejection(text_refusal) } else { b }
            })
            .await;
            let keys = svc.shared.keys.clone();
            let svc = ServiceBuilder::new()
                .map_response(|res: Response<ResponseBody<Full<Bytes>>>| {
                    let why = res.extensions().get::<Problem>().map(Problem::code);
                    (res.status(), why)
                })
                .service(svc);
            assert_eq!(
                svc.clone()
                    .oneshot(request(&[("x-api-key", "junk")]))
                    .await
                    .unwrap(),
                (StatusCode::UNAUTHORIZED, Some("invalid_api_key"))
            );
            // Through the store, then from the cache.
            for _ in 0..2 {
                assert_eq!(
                    svc.clone()
                        .oneshot(request(&[("x-api-key", issued.key())]))
                        .await
                        .unwrap(),
                    (StatusCode::OK, None)
                );
            }
            // Refused after the store lookup.
            keys.revoke(issued.key_id()).await.unwrap();
            assert_eq!(
                svc.oneshot(request(&[("x-api-key", issued.key())]))
                    .await
                    .unwrap(),
                (StatusCode::UNAUTHORIZED, Some("invalid_api_key"))
            );
        }
    }

    #[tokio::test]
    async fn accessors_reach_the_inner_service() {
        let keys = ApiKeys::builder(MemoryStore::new()).build().unwrap();
        let mut svc = ApiKey::new(7u8, keys);
        assert_eq!(*svc.get_ref(), 7);
        *svc.get_mut() = 8;
        assert_eq!(svc.into_inner(), 8);
    }
}
