//! [`Jwt`]: the bearer-token check as a `tower::Service`.

use std::fmt;

use http::header::{AUTHORIZATION, COOKIE};
use http::{HeaderMap, Request, Response};
use serde::de::DeserializeOwned;
use tower::{Layer, Service};

use super::claims::Claims;
use super::future::ResponseFuture;
use super::keys::{JwtKeys, KeySet};
use super::layer::{Config, JwtLayer, KeySource};
#[cfg(feature = "jwks")]
use super::remote::Jwks;
use super::revocation::{NoRevocation, Revocation};
use super::token::{JwtError, Validation, decode_with};
use crate::body::ResponseBody;
use crate::credentials::{MAX_TOKEN_LEN, b64token, bearer_bytes, is_bearer_scheme};
use crate::error::Problem;
use crate::future::{Checked, LayerFuture};

impl<C, R, S> Layer<S> for JwtLayer<C, R> {
    type Service = Jwt<S, C, R>;

    fn layer(&self, inner: S) -> Self::Service {
        Jwt {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service built by [`JwtLayer`]; see it for the behaviour.
pub struct Jwt<S, C, R = NoRevocation> {
    inner: S,
    layer: JwtLayer<C, R>,
}

impl<S: Clone, C, R> Clone for Jwt<S, C, R> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            layer: self.layer.clone(),
        }
    }
}

impl<S: fmt::Debug, C, R> fmt::Debug for Jwt<S, C, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Jwt")
            .field("inner", &self.inner)
            .field("layer", &self.layer)
            .finish()
    }
}

impl<S, C> Jwt<S, C> {
    /// Wraps `inner`, validating tokens signed with `keys` against
    /// `validation` (see [`JwtLayer::new`]).
    pub fn new(inner: S, keys: JwtKeys, validation: Validation) -> Self {
        JwtLayer::new(keys, validation).layer(inner)
    }

    /// A layer validating tokens signed with `keys` against `validation`.
    pub fn layer(keys: JwtKeys, validation: Validation) -> JwtLayer<C> {
        JwtLayer::new(keys, validation)
    }
}

impl<S, C, R> Jwt<S, C, R> {
    inner_service_accessors!();
}

/// The token in cookie `name`, if any (and not empty or too long).
pub(crate) fn cookie_token<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
        .filter(|v| !v.is_empty() && v.len() <= MAX_TOKEN_LEN)
}

/// What [`authenticate`] decided.
enum Auth<C> {
    /// The token verified: these are its claims.
    Pass(Claims<C>),
    /// No token, or one that failed.
    Refuse(Problem),
    /// The token names a `kid` the remote key set does not have, and a
    /// fetch is due or under way: verify it after that fetch.
    #[cfg(feature = "jwks")]
    AwaitKeys(Jwks, String),
}

/// The verified claims of the request's token, or the `401` refusing it:
/// RFC 6750 §3.1 gives a request with no bearer credentials — no
/// `Authorization`, or one of another scheme such as `Basic` — a bare
/// `Bearer` challenge ([`Problem::no_credentials`]), and a bearer token that
/// fails `error="invalid_token"` ([`Problem::invalid_token`]), as the
/// router's refusals do.
fn authenticate<C, R>(config: &Config<C, R>, headers: &HeaderMap) -> Auth<C>
where
    C: DeserializeOwned,
{
    let token = match headers.get(AUTHORIZATION).filter(|v| is_bearer_scheme(v)) {
        Some(value) => match bearer_bytes(value) {
            Some(token) => token,
            None => return Auth::Refuse(Problem::invalid_token()),
        },
        None => match config
            .cookie
            .as_deref()
            .and_then(|name| cookie_token(headers, name))
        {
            Some(token) => token.as_bytes(),
            None => return Auth::Refuse(Problem::no_credentials()),
        },
    };
    let verified = match &config.keys {
        KeySource::Local(keys) => verify(config, token, keys.set(), 0),
        #[cfg(feature = "jwks")]
        KeySource::Remote(jwks) => {
            jwks.refresh_if_stale();
            let current = jwks.current();
            match verify(config, token, &current.keys, current.generation) {
                Err(JwtError::UnknownKey) if jwks.miss_should_wait() => {
                    // `verify` read it as RFC 6750 characters, so UTF-8.
                    let token = String::from_utf8_lossy(token).into_owned();
                    return Auth::AwaitKeys(jwks.clone(), token);
                }
                verified => verified,
            }
        }
    };
    match verified {
        Ok(claims) => Auth::Pass(claims),
        Err(reason) => {
            tracing::debug!(target: "tower_otp", %reason, "access token refused");
            Auth::Refuse(Problem::invalid_token())
        }
    }
}

/// `token`'s claims, from the verified-token cache when it holds them under
/// `generation` (the key set's), else verified with `set` and cached.
fn verify<C, R>(
    config: &Config<C, R>,
    token: &[u8],
    set: &KeySet,
    generation: u64,
) -> Result<Claims<C>, JwtError>
where
    C: DeserializeOwned,
{
    let cache = config.cache.as_deref();
    if let Some((claims, cached_in)) = cache.and_then(|cache| cache.get(token))
        && cached_in == generation
    {
        let now_secs = config.clock.now_us() / 1_000_000;
        return match config.validation.check_at(claims.registered(), now_secs) {
            Ok(()) => Ok(claims),
            Err(reason) => {
                cache.inspect(|cache| cache.remove(token));
                Err(reason)
            }
        };
    }
    let now = config.clock.now();
    let verified = b64token(token)
        .ok_or(JwtError::Malformed)
        .and_then(|token| decode_with::<C>(set, &config.validation, token, now))?;
    let claims = Claims::new(verified.claims, verified.registered);
    cache.inspect(|cache| cache.insert(token, (claims.clone(), generation)));
    Ok(claims)
}

/// The response refusing `req` for `problem`.
fn refuse<C, R, B, RB>(
    config: &Config<C, R>,
    problem: Problem,
    req: Request<B>,
) -> Response<ResponseBody<RB>> {
    let (parts, _) = req.into_parts();
    config.refusal.respond(problem, &parts)
}

/// Passes `req` (with `claims` in its extensions) to `inner` unless the
/// revocation check refuses it: the end of every check that awaits.
async fn admit<S, C, R, ReqBody, ResBody>(
    layer: JwtLayer<C, R>,
    claims: Claims<C>,
    mut req: Request<ReqBody>,
    mut inner: S,
) -> Checked<S::Future, ResBody, ()>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    C: Send + Sync + 'static,
    R: Revocation,
{
    let config = &*layer.config;
    if R::CHECKS {
        let problem = match config.revocation.is_revoked(claims.registered()).await {
            Ok(false) => None,
            Ok(true) => Some(Problem::invalid_token()),
            Err(err) => {
                tracing::error!(target: "tower_otp", error = %err, "revocation check failed; refusing");
                Some(Problem::store_unavailable())
            }
        };
        if let Some(problem) = problem {
            return Checked::Decided(refuse(config, problem, req));
        }
    }
    req.extensions_mut().insert(claims);
    Checked::Pass(inner.call(req), ())
}

impl<S, C, R> Jwt<S, C, R>
where
    S: Clone,
{
    /// The ready inner service, for a check that awaits; a clone stays.
    fn take_ready(&mut self) -> S {
        let clone = self.inner.clone();
        std::mem::replace(&mut self.inner, clone)
    }
}

impl<S, C, R, ReqBody, ResBody> Service<Request<ReqBody>> for Jwt<S, C, R>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    C: DeserializeOwned + Send + Sync + 'static,
    R: Revocation,
    ReqBody: Send + 'static,
    ResBody: 'static,
{
    refusing_service_items!(ResBody);

    fn call(&mut self, mut req: Request<ReqBody>) -> Self::Future {
        let config = &*self.layer.config;
        let claims = match authenticate(config, req.headers()) {
            Auth::Pass(claims) => claims,
            Auth::Refuse(problem) => {
                return ResponseFuture::new(LayerFuture::decided(refuse(config, problem, req)));
            }
            #[cfg(feature = "jwks")]
            Auth::AwaitKeys(jwks, token) => {
                let inner = self.take_ready();
                let layer = self.layer.clone();
                return ResponseFuture::new(LayerFuture::checking(async move {
                    jwks.refresh_after_miss().await;
                    let config = &*layer.config;
                    let current = jwks.current();
                    match verify(config, token.as_bytes(), &current.keys, current.generation) {
                        Ok(claims) => admit(layer.clone(), claims, req, inner).await,
                        Err(reason) => {
                            tracing::debug!(target: "tower_otp", %reason, "access token refused");
                            Checked::Decided(refuse(config, Problem::invalid_token(), req))
                        }
                    }
                }));
            }
        };
        if !R::CHECKS {
            req.extensions_mut().insert(claims);
            return ResponseFuture::new(LayerFuture::inner(self.inner.call(req), ()));
        }
        // The check awaits the store.
        let inner = self.take_ready();
        let layer = self.layer.clone();
        ResponseFuture::new(LayerFuture::checking(admit(layer, claims, req, inner)))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::convert::Infallible;
    use std::time::Duration;

    use http::StatusCode;
    use http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
    use http_body_util::BodyExt;
    use tower::{ServiceExt, service_fn};

    use super::*;
    use crate::clock::{Clock, ManualClock, unix_secs};
    use crate::jwt::encode;

    fn keys() -> JwtKeys {
        JwtKeys::new("k1", crate::secret::TEST_SECRET).unwrap()
    }

    fn token(clock: &ManualClock, sub: &str, ttl: u64) -> String {
        let now = unix_secs(clock.now());
        encode(
            &keys(),
            &serde_json::json!({ "sub": sub, "exp": now + ttl }),
        )
        .unwrap()
    }

    /// Status and the `sub` the inner service saw.
    async fn call(layer: &JwtLayer<serde_json::Value>, token: &str) -> (StatusCode, String) {
        let svc = layer.layer(service_fn(|req: Request<()>| async move {
            let claims = req.extensions().get::<Claims<serde_json::Value>>().unwrap();
            let sub = claims.registered().sub.clone().unwrap();
            Ok::<_, Infallible>(Response::new(sub))
        }));
        let req = Request::builder()
            .header(AUTHORIZATION, format!("Bearer {token}"))
            .body(())
            .unwrap();
        let res = svc.oneshot(req).await.unwrap();
        let status = res.status();
        let body = if status == StatusCode::OK {
            let bytes = res.into_body().collect().await.unwrap().to_bytes();
            String::from_utf8(bytes.to_vec()).unwrap()
        } else {
            String::new()
        };
        (status, body)
    }

    /// The response to `req` from a layer over a service answering the `sub`.
    async fn respond<R: Revocation>(
        layer: &JwtLayer<serde_json::Value, R>,
        req: Request<()>,
    ) -> Response<ResponseBody<String>> {
        let svc = layer.layer(service_fn(|req: Request<()>| async move {
            let claims = req.extensions().get::<Claims<serde_json::Value>>().unwrap();
            let sub = claims.registered().sub.clone().unwrap_or_default();
            Ok::<_, Infallible>(Response::new(sub))
        }));
        svc.oneshot(req).await.unwrap()
    }

    fn with_authorization(value: &str) -> Request<()> {
        Request::builder()
            .header(AUTHORIZATION, value)
            .body(())
            .unwrap()
    }

    fn challenge<B>(res: &Response<B>) -> &str {
        res.headers()
            .get(WWW_AUTHENTICATE)
            .expect("every 401 carries WWW-Authenticate")
            .to_str()
            .unwrap()
    }

    #[tokio::test]
    async fn no_credentials_get_a_bearer_challenge_without_an_error_code() {
        let clock = ManualClock::default();
        for layer in [
            JwtLayer::new(keys(), Validation::default()),
            JwtLayer::new(keys(), Validation::default()).with_cookie("access"),
        ] {
            let layer = layer.with_clock(clock.clone());
            for req in [
                Request::new(()),
                with_authorization("Basic dXNlcjpwYXNz"),
                with_authorization("Digest username=\"u\""),
                with_authorization("Bearerish abc"),
                Request::builder()
                    .header(COOKIE, "other=1")
                    .body(())
                    .unwrap(),
            ] {
                let res = respond(&layer, req).await;
                assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
                assert_eq!(challenge(&res), "Bearer");
            }
        }
    }

    #[tokio::test]
    async fn another_scheme_falls_back_to_the_cookie() {
        let clock = ManualClock::default();
        let layer = JwtLayer::new(keys(), Validation::default())
            .with_cookie("access")
            .with_clock(clock.clone());
        let req = Request::builder()
            .header(AUTHORIZATION, "Basic dXNlcjpwYXNz")
            .header(COOKIE, format!("access={}", token(&clock, "usr_c", 60)))
            .body(())
            .unwrap();
        assert_eq!(respond(&layer, req).await.status(), StatusCode::OK);
    }

    #[tokio::test]
    async fn a_failing_bearer_token_gets_invalid_token() {
        let clock = ManualClock::default();
        let layer = JwtLayer::new(keys(), Validation::default().leeway(Duration::ZERO))
            .with_clock(clock.clone());
        let now = unix_secs(clock.now());
        let expired = token(&clock, "usr_a", 0);
        let with_aud = encode(
            &keys(),
            &serde_json::json!({"sub": "usr_a", "exp": now + 60, "aud": "other-service"}),
        )
        .unwrap();
        clock.advance(Duration::from_secs(1));
        let cookie_layer = layer.clone().with_cookie("access");
        for (layer, req) in [
            (&layer, with_authorization("Bearer not-a-token")),
            (&layer, with_authorization("Bearer ")),
            (&layer, with_authorization("Bearer")),
            (&layer, with_authorization("bearer a.b.c")),
            (&layer, with_authorization(&format!("Bearer {expired}"))),
            (&layer, with_authorization(&format!("Bearer {with_aud}"))),
            (
                &cookie_layer,
                Request::builder()
                    .header(COOKIE, "access=a.b.c")
                    .body(())
                    .unwrap(),
            ),
        ] {
            let res = respond(layer, req).await;
            assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
            assert_eq!(challenge(&res), "Bearer error=\"invalid_token\"");
        }
    }

    #[tokio::test]
    async fn the_layer_refuses_aud_it_was_not_configured_for_and_takes_fractional_dates() {
        let clock = ManualClock::default();
        let now = unix_secs(clock.now());
        let with_aud = |aud: &str| {
            encode(
                &keys(),
                &serde_json::json!({"sub": "usr_a", "exp": now + 60, "aud": aud}),
            )
            .unwrap()
        };
        let plain = JwtLayer::new(keys(), Validation::default()).with_clock(clock.clone());
        assert_eq!(
            call(&plain, &with_aud("app")).await.0,
            StatusCode::UNAUTHORIZED
        );
        let app =
            JwtLayer::new(keys(), Validation::default().audience("app")).with_clock(clock.clone());
        assert_eq!(
            call(&app, &with_aud("app")).await,
            (StatusCode::OK, "usr_a".into())
        );
        assert_eq!(call(&app, &with_aud("x")).await.0, StatusCode::UNAUTHORIZED);
        assert_eq!(
            call(&app, &token(&clock, "usr_a", 60)).await.0,
            StatusCode::UNAUTHORIZED
        );
        #[allow(clippy::cast_precision_loss)]
        let fractional = encode(
            &keys(),
            &serde_json::json!({"sub": "usr_f", "exp": now as f64 + 60.5, "iat": now as f64 - 0.5}),
        )
        .unwrap();
        assert_eq!(
            call(&plain, &fractional).await,
            (StatusCode::OK, "usr_f".into())
        );
    }

    #[cfg(feature = "moka")]
    #[tokio::test]
    async fn a_revoked_token_gets_invalid_token() {
        use crate::store::{MemoryStore, SessionStore};

        let clock = ManualClock::default();
        let store = MemoryStore::new();
        let layer = JwtLayer::new(keys(), Validation::default())
            .with_clock(clock.clone())
            .with_store(store.clone());
        let now = unix_secs(clock.now());
        let t = encode(
            &keys(),
            &serde_json::json!({"sub": "usr_a", "sid": "fam1", "exp": now + 60}),
        )
        .unwrap();
        let bearer = format!("Bearer {t}");
        assert_eq!(
            respond(&layer, with_authorization(&bearer)).await.status(),
            StatusCode::OK
        );
        store.revoke("fam1", Duration::from_secs(60)).await.unwrap();
        let res = respond(&layer, with_authorization(&bearer)).await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(challenge(&res), "Bearer error=\"invalid_token\"");
    }

    /// A [`SessionStore`] over a [`MemoryStore`] that counts every call.
    #[cfg(feature = "moka")]
    #[derive(Clone, Debug, Default)]
    struct Counting {
        inner: crate::store::MemoryStore,
        calls: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    }

    #[cfg(feature = "moka")]
    impl Counting {
        fn take(&self) -> usize {
            self.calls.swap(0, std::sync::atomic::Ordering::SeqCst)
        }

        fn count(&self) {
            self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    }

    #[cfg(feature = "moka")]
    impl crate::store::SessionStore for Counting {
        async fn create_session(
            &self,
            session: crate::store::NewSession<'_>,
            now: std::time::SystemTime,
        ) -> Result<(), crate::store::StoreError> {
            self.count();
            self.inner.create_session(session, now).await
        }

        async fn rotate_refresh(
            &self,
            rotation: crate::store::RefreshRotation<'_>,
            now: std::time::SystemTime,
        ) -> Result<crate::store::Rotation, crate::store::StoreError> {
            self.count();
            self.inner.rotate_refresh(rotation, now).await
        }

        async fn revoke(&self, id: &str, ttl: Duration) -> Result<(), crate::store::StoreError> {
            self.count();
            self.inner.revoke(id, ttl).await
        }

        async fn list_sessions(
            &self,
            subject: &str,
            now: std::time::SystemTime,
        ) -> Result<Vec<crate::store::SessionInfo>, crate::store::StoreError> {
            self.count();
            self.inner.list_sessions(subject, now).await
        }

        async fn revoke_session(
            &self,
            subject: &str,
            sid: &str,
            ttl: Duration,
            now: std::time::SystemTime,
        ) -> Result<bool, crate::store::StoreError> {
            self.count();
            self.inner.revoke_session(subject, sid, ttl, now).await
        }

        async fn revoke_subject(
            &self,
            subject: &str,
            keep: Option<&str>,
            ttl: Duration,
            now: std::time::SystemTime,
        ) -> Result<usize, crate::store::StoreError> {
            self.count();
            self.inner.revoke_subject(subject, keep, ttl, now).await
        }

        async fn is_revoked(&self, id: &str) -> Result<bool, crate::store::StoreError> {
            self.count();
            self.inner.is_revoked(id).await
        }

        async fn is_any_revoked(&self, ids: &[&str]) -> Result<bool, crate::store::StoreError> {
            self.count();
            self.inner.is_any_revoked(ids).await
        }
    }

    /// A protected request costs one store call whatever it carries (`sid`,
    /// `jti`, both), none without either, and a revoked `sid` or `jti`
    /// still refuses.
    #[cfg(feature = "moka")]
    #[tokio::test]
    async fn the_revocation_check_is_one_store_call() {
        use crate::store::SessionStore;

        let clock = ManualClock::default();
        let store = Counting::default();
        let layer = JwtLayer::new(keys(), Validation::default())
            .with_clock(clock.clone())
            .with_store(store.clone());
        let now = unix_secs(clock.now());
        let bearer = |extra: serde_json::Value| {
            let mut claims = serde_json::json!({"sub": "usr_a", "exp": now + 60});
            claims
                .as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            format!("Bearer {}", encode(&keys(), &claims).unwrap())
        };
        let both = bearer(serde_json::json!({"sid": "fam1", "jti": "tok1"}));
        let cases = [
            (bearer(serde_json::json!({})), 0),
            (bearer(serde_json::json!({"sid": "fam1"})), 1),
            (bearer(serde_json::json!({"jti": "tok1"})), 1),
            (both.clone(), 1),
        ];
        for (token, calls) in &cases {
            let res = respond(&layer, with_authorization(token)).await;
            assert_eq!(res.status(), StatusCode::OK);
            assert_eq!(store.take(), *calls, "{token}");
        }
        for revoked in ["tok1", "fam1"] {
            let store = Counting::default();
            let layer = layer.clone().with_store(store.clone());
            store
                .inner
                .revoke(revoked, Duration::from_secs(60))
                .await
                .unwrap();
            let res = respond(&layer, with_authorization(&both)).await;
            assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{revoked} revoked");
            assert_eq!(challenge(&res), "Bearer error=\"invalid_token\"");
            assert_eq!(store.take(), 1, "{revoked} revoked");
        }
    }

    #[tokio::test]
    async fn a_cached_token_is_refused_once_it_expires() {
        let clock = ManualClock::default();
        let layer = JwtLayer::new(keys(), Validation::default().leeway(Duration::ZERO))
            .with_clock(clock.clone());
        let t = token(&clock, "usr_a", 60);
        assert_eq!(call(&layer, &t).await, (StatusCode::OK, "usr_a".into()));
        assert_eq!(call(&layer, &t).await, (StatusCode::OK, "usr_a".into()));
        clock.advance(Duration::from_secs(61));
        assert_eq!(call(&layer, &t).await.0, StatusCode::UNAUTHORIZED);
        assert_eq!(call(&layer, &t).await.0, StatusCode::UNAUTHORIZED);
    }

    #[tokio::test]
    async fn tokens_sharing_a_slot_keep_their_own_claims() {
        let clock = ManualClock::default();
        for layer in [
            JwtLayer::new(keys(), Validation::default()).with_cache(1),
            JwtLayer::new(keys(), Validation::default()).without_cache(),
        ] {
            let layer = layer.with_clock(clock.clone());
            let (a, b) = (token(&clock, "usr_a", 60), token(&clock, "usr_b", 60));
            for _ in 0..3 {
                assert_eq!(call(&layer, &a).await, (StatusCode::OK, "usr_a".into()));
                assert_eq!(call(&layer, &b).await, (StatusCode::OK, "usr_b".into()));
            }
            // A forged twin of a cached token: same signature, other payload.
            let mut forged: Vec<&str> = a.split('.').collect();
            let other: Vec<&str> = b.split('.').collect();
            forged[1] = other[1];
            let forged = forged.join(".");
            assert_eq!(call(&layer, &forged).await.0, StatusCode::UNAUTHORIZED);
        }
    }

    /// A plain-text refusal that also tries to set its own challenge.
    fn text_refusal(
        problem: &Problem,
        parts: &http::request::Parts,
    ) -> Response<crate::error::FullBody> {
        let body = format!(
            "{} {}: {}",
            problem.status().as_u16(),
            problem.code(),
            parts.uri.path()
        );
        let mut res = Response::new(crate::error::FullBody::new(body.into()));
        *res.status_mut() = problem.status();
        res.headers_mut()
            .insert(WWW_AUTHENTICATE, http::HeaderValue::from_static("Basic"));
        res
    }

    #[tokio::test]
    async fn a_custom_rejection_shapes_the_refusal_and_keeps_the_challenge() {
        let clock = ManualClock::default();
        let layer = JwtLayer::new(keys(), Validation::default())
            .with_clock(clock.clone())
            .with_rejection(text_refusal);
        for (req, challenge_value) in [
            (Request::builder().uri("/me").body(()).unwrap(), "Bearer"),
            (
                Request::builder()
                    .uri("/me")
                    .header(AUTHORIZATION, "Bearer a.b.c")
                    .body(())
                    .unwrap(),
                "Bearer error=\"invalid_token\"",
            ),
        ] {
            let res = respond(&layer, req).await;
            assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
            let challenges: Vec<_> = res.headers().get_all(WWW_AUTHENTICATE).iter().collect();
            assert_eq!(challenges, [challenge_value]);
            assert!(res.extensions().get::<Problem>().is_some());
            let body = res.into_body().collect().await.unwrap().to_bytes();
            assert_eq!(body, "401 invalid_token: /me");
        }
        // A valid token still reaches the service.
        let ok = with_authorization(&format!("Bearer {}", token(&clock, "usr_a", 60)));
        assert_eq!(respond(&layer, ok).await.status(), StatusCode::OK);
    }

    #[tokio::test]
    async fn an_outer_layer_sees_why_the_request_was_refused() {
        let clock = ManualClock::default();
        for layer in [
            JwtLayer::<serde_json::Value>::new(keys(), Validation::default())
                .with_clock(clock.clone()),
            JwtLayer::new(keys(), Validation::default())
                .with_clock(clock.clone())
                .with_rejection(text_refusal),
        ] {
            let svc = tower::ServiceBuilder::new()
                .map_response(|res: Response<ResponseBody<String>>| {
                    let why = res.extensions().get::<Problem>().map(|p| p.code());
                    (res.status(), why)
                })
                .layer(layer)
                .service(service_fn(|_: Request<()>| async {
                    Ok::<_, Infallible>(Response::new(String::new()))
                }));
            let refused = svc.clone().oneshot(Request::new(())).await.unwrap();
            assert_eq!(refused, (StatusCode::UNAUTHORIZED, Some("invalid_token")));
            let ok = with_authorization(&format!("Bearer {}", token(&clock, "usr_a", 60)));
            assert_eq!(svc.oneshot(ok).await.unwrap(), (StatusCode::OK, None));
        }
    }

    #[tokio::test]
    async fn accessors_reach_the_inner_service() {
        let layer = JwtLayer::<serde_json::Value>::new(keys(), Validation::default());
        let mut svc = layer.layer(7u8);
        assert_eq!(*svc.get_ref(), 7);
        *svc.get_mut() = 8;
        assert_eq!(svc.into_inner(), 8);
    }
}
