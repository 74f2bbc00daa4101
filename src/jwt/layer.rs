//! `JwtLayer`: bearer-token authentication for any Tower service.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::header::{AUTHORIZATION, COOKIE};
use http::{Request, Response};
use serde::de::DeserializeOwned;
use tower::{Layer, Service};

use super::future::ResponseFuture;
use super::keys::JwtKeys;
use super::token::{JwtError, RegisteredClaims, Validation, decode};
use crate::body::{ResponseBody, problem_response};
use crate::clock::{Clock, CoarseClock};
use crate::credentials::{MAX_TOKEN_LEN, b64token, bearer_bytes, is_bearer_scheme};
use crate::error::Problem;
use crate::slot_cache::SlotCache;
use crate::store::{SessionStore, StoreError};

/// The verified claims of the request's access token, in request extensions.
///
/// `C` is the application's own claims type, parsed from the token payload;
/// the registered claims (`sub`, `exp`, `sid`, …) are alongside. Cloning is
/// one reference count, whatever `C` is. Under the `axum` feature this is
/// also an extractor.
///
/// ```
/// use tower_otp::jwt::{Claims, RegisteredClaims};
///
/// let claims = Claims::new(
///     serde_json::json!({"plan": "pro"}),
///     RegisteredClaims { sub: Some("usr_1".into()), ..Default::default() },
/// );
/// assert_eq!(claims.custom()["plan"], "pro");
/// assert_eq!(claims.registered().sub.as_deref(), Some("usr_1"));
/// ```
pub struct Claims<C>(Arc<ClaimsParts<C>>);

struct ClaimsParts<C> {
    custom: C,
    registered: RegisteredClaims,
}

impl<C> Claims<C> {
    /// Claims from their two parts (tests and custom authenticators).
    pub fn new(custom: C, registered: RegisteredClaims) -> Self {
        Self(Arc::new(ClaimsParts { custom, registered }))
    }

    /// The application's claims.
    pub fn custom(&self) -> &C {
        &self.0.custom
    }

    /// Registered claims.
    pub fn registered(&self) -> &RegisteredClaims {
        &self.0.registered
    }
}

impl<C> Clone for Claims<C> {
    fn clone(&self) -> Self {
        Self(Arc::clone(&self.0))
    }
}

impl<C: fmt::Debug> fmt::Debug for Claims<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Claims")
            .field("custom", &self.0.custom)
            .field("registered", &self.0.registered)
            .finish()
    }
}

/// Decides whether a verified token has been revoked.
pub trait Revocation: Clone + Send + Sync + 'static {
    /// Whether this check needs I/O at all (`false` skips it entirely).
    const CHECKS: bool;

    /// Whether the token with these claims is revoked.
    fn is_revoked(
        &self,
        claims: &RegisteredClaims,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
}

/// No revocation check: tokens are valid until they expire.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoRevocation;

impl Revocation for NoRevocation {
    const CHECKS: bool = false;

    async fn is_revoked(&self, _: &RegisteredClaims) -> Result<bool, StoreError> {
        Ok(false)
    }
}

/// Checks the token's session (`sid`) and then its `jti` against a [`SessionStore`]:
/// a logged-out session or an individually revoked token is refused.
#[derive(Clone, Debug)]
pub struct StoreRevocation<S>(pub S);

impl<S: SessionStore> Revocation for StoreRevocation<S> {
    const CHECKS: bool = true;

    async fn is_revoked(&self, claims: &RegisteredClaims) -> Result<bool, StoreError> {
        for id in [&claims.sid, &claims.jti].into_iter().flatten() {
            if self.0.is_revoked(id).await? {
                return Ok(true);
            }
        }
        Ok(false)
    }
}

/// Slots in the verified-token cache unless set with
/// [`JwtLayer::with_cache`]: enough for the tokens of a thousand active
/// clients, a few hundred kilobytes at most.
pub const DEFAULT_CACHE_CAPACITY: usize = 1024;

struct Config<C, R> {
    keys: JwtKeys,
    validation: Validation,
    cookie: Option<String>,
    revocation: R,
    clock: Arc<dyn Clock>,
    cache: Option<Arc<SlotCache<Claims<C>>>>,
}

impl<C, R: Clone> Clone for Config<C, R> {
    fn clone(&self) -> Self {
        Self {
            keys: self.keys.clone(),
            validation: self.validation.clone(),
            cookie: self.cookie.clone(),
            revocation: self.revocation.clone(),
            clock: Arc::clone(&self.clock),
            cache: self.cache.clone(),
        }
    }
}

/// Requires a valid HS256 bearer token and puts [`Claims<C>`] into request
/// extensions; refuses with `401 invalid_token` and an RFC 6750
/// `WWW-Authenticate` header.
///
/// ```
/// use http::{Request, Response, StatusCode};
/// use http_body_util::Full;
/// use bytes::Bytes;
/// use tower::{ServiceBuilder, ServiceExt, service_fn};
/// use tower_otp::jwt::{JwtKeys, JwtLayer, Validation};
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let keys = JwtKeys::new("k1", rand::random::<[u8; 32]>())?;
/// let svc = ServiceBuilder::new()
///     .layer(JwtLayer::<serde_json::Value>::new(keys, Validation::default()))
///     .service(service_fn(|_req: Request<Full<Bytes>>| async {
///         Ok::<_, std::convert::Infallible>(Response::new(Full::new(Bytes::from("secret"))))
///     }));
/// let res = svc.oneshot(Request::new(Full::default())).await?;
/// assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
///
/// # Security
///
/// The algorithm is pinned to HS256 whatever the token's header says; an
/// unknown `kid` is refused without any lookup. Without a revocation check
/// ([`with_store`](Self::with_store)) a token stays valid until `exp` even
/// after logout — keep access tokens short-lived, or add the check.
///
/// # Verified-token cache
///
/// Tokens that verified are remembered (see [`with_cache`](Self::with_cache)),
/// so a client's next request with the same token skips the base64, HMAC and
/// JSON work. A cached token is compared byte for byte in constant time, its
/// `exp`/`nbf`/`iat` are checked again on every request, and the revocation
/// check is never cached.
pub struct JwtLayer<C, R = NoRevocation> {
    config: Arc<Config<C, R>>,
}

impl<C, R> Clone for JwtLayer<C, R> {
    fn clone(&self) -> Self {
        Self {
            config: Arc::clone(&self.config),
        }
    }
}

impl<C, R> fmt::Debug for JwtLayer<C, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtLayer")
            .field("keys", &self.config.keys)
            .field("validation", &self.config.validation)
            .field("cookie", &self.config.cookie)
            .field(
                "cache_capacity",
                &self.config.cache.as_ref().map(|c| c.capacity()),
            )
            .finish_non_exhaustive()
    }
}

impl<C> JwtLayer<C> {
    /// Validates tokens signed with `keys` against `validation`.
    #[must_use]
    pub fn new(keys: JwtKeys, validation: Validation) -> Self {
        Self {
            config: Arc::new(Config {
                keys,
                validation,
                cookie: None,
                revocation: NoRevocation,
                clock: Arc::new(CoarseClock),
                cache: Some(Arc::new(SlotCache::new(DEFAULT_CACHE_CAPACITY))),
            }),
        }
    }
}

impl<C, R: Revocation> JwtLayer<C, R> {
    fn map_config<R2>(self, f: impl FnOnce(Config<C, R>) -> Config<C, R2>) -> JwtLayer<C, R2> {
        let config = Arc::unwrap_or_clone(self.config);
        JwtLayer {
            config: Arc::new(f(config)),
        }
    }

    /// Also refuses tokens whose session (`sid`) or `jti` is revoked in `store`.
    #[must_use]
    pub fn with_store<S: SessionStore>(self, store: S) -> JwtLayer<C, StoreRevocation<S>> {
        self.map_config(|c| Config {
            keys: c.keys,
            validation: c.validation,
            cookie: c.cookie,
            revocation: StoreRevocation(store),
            clock: c.clock,
            cache: c.cache,
        })
    }

    /// Sets the number of slots in the verified-token cache (rounded up to a
    /// power of two; default [`DEFAULT_CACHE_CAPACITY`]). Each slot holds one
    /// token and its claims; a token landing on a taken slot replaces the one
    /// there.
    #[must_use]
    pub fn with_cache(self, capacity: usize) -> Self {
        self.map_config(|mut c| {
            c.cache = Some(Arc::new(SlotCache::new(capacity)));
            c
        })
    }

    /// Verifies every token afresh, caching nothing.
    #[must_use]
    pub fn without_cache(self) -> Self {
        self.map_config(|mut c| {
            c.cache = None;
            c
        })
    }

    /// Also reads the token from the cookie `name` when there is no
    /// `Authorization` header.
    #[must_use]
    pub fn with_cookie(self, name: impl Into<String>) -> Self {
        let name = name.into();
        self.map_config(|mut c| {
            c.cookie = Some(name);
            c
        })
    }

    /// The time source (default [`CoarseClock`]: expiry is checked in whole
    /// seconds, so a reading a tick late changes nothing; tests use
    /// `ManualClock`).
    #[must_use]
    pub fn with_clock(self, clock: impl Clock) -> Self {
        self.map_config(|mut c| {
            c.clock = Arc::new(clock);
            c
        })
    }
}

impl<C, R, S> Layer<S> for JwtLayer<C, R> {
    type Service = JwtAuth<S, C, R>;

    fn layer(&self, inner: S) -> Self::Service {
        JwtAuth {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service built by [`JwtLayer`].
pub struct JwtAuth<S, C, R = NoRevocation> {
    inner: S,
    layer: JwtLayer<C, R>,
}

impl<S: Clone, C, R> Clone for JwtAuth<S, C, R> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            layer: self.layer.clone(),
        }
    }
}

impl<S: fmt::Debug, C, R> fmt::Debug for JwtAuth<S, C, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtAuth")
            .field("inner", &self.inner)
            .field("layer", &self.layer)
            .finish()
    }
}

impl<S, C, R> JwtAuth<S, C, R> {
    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Unwraps the inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

pub(crate) fn cookie_token<'a>(headers: &'a http::HeaderMap, name: &str) -> Option<&'a str> {
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

/// A 401 with an RFC 6750 challenge: `error="invalid_token"` when a token
/// was presented and failed, a bare `Bearer` when none was (the router's
/// refusals, from the same two `Problem` constructors).
fn refusal<B>(with_error: bool) -> Response<ResponseBody<B>> {
    problem_response(if with_error {
        Problem::invalid_token()
    } else {
        Problem::no_credentials()
    })
}

impl<S, C, R, ReqBody, ResBody> Service<Request<ReqBody>> for JwtAuth<S, C, R>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    C: DeserializeOwned + Send + Sync + 'static,
    R: Revocation,
    ReqBody: Send + 'static,
    ResBody: Send + 'static,
{
    type Response = Response<ResponseBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, ResBody, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<ReqBody>) -> Self::Future {
        let config = &self.layer.config;
        let headers = req.headers();
        // RFC 6750 §3.1: a request with no bearer credentials — no
        // `Authorization`, or one of another scheme such as `Basic` — gets a
        // bare `Bearer` challenge; a bearer token that fails gets
        // `error="invalid_token"`.
        let token = match headers.get(AUTHORIZATION).filter(|v| is_bearer_scheme(v)) {
            Some(value) => match bearer_bytes(value) {
                Some(token) => token,
                None => return ResponseFuture::refused(refusal(true)),
            },
            None => match config
                .cookie
                .as_deref()
                .and_then(|name| cookie_token(headers, name))
            {
                Some(token) => token.as_bytes(),
                None => return ResponseFuture::refused(refusal(false)),
            },
        };
        let now = config.clock.now();
        let cache = config.cache.as_deref();
        let claims = match cache.and_then(|cache| cache.get(token)) {
            Some(claims) => match config.validation.check(claims.registered(), now) {
                Ok(()) => claims,
                Err(reason) => {
                    cache.inspect(|cache| cache.remove(token));
                    tracing::debug!(target: "tower_otp", %reason, "access token refused");
                    return ResponseFuture::refused(refusal(true));
                }
            },
            None => {
                let verified = b64token(token)
                    .ok_or(JwtError::Malformed)
                    .and_then(|token| decode::<C>(&config.keys, &config.validation, token, now));
                match verified {
                    Ok(verified) => {
                        let claims = Claims::new(verified.claims, verified.registered);
                        cache.inspect(|cache| cache.insert(token, claims.clone()));
                        claims
                    }
                    Err(reason) => {
                        tracing::debug!(target: "tower_otp", %reason, "access token refused");
                        return ResponseFuture::refused(refusal(true));
                    }
                }
            }
        };
        if !R::CHECKS {
            req.extensions_mut().insert(claims);
            return ResponseFuture::inner(self.inner.call(req));
        }
        req.extensions_mut().insert(claims.clone());
        // The check awaits the store: take the ready inner service, leave a clone.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let revocation = config.revocation.clone();
        ResponseFuture::boxed(async move {
            match revocation.is_revoked(claims.registered()).await {
                Ok(false) => inner
                    .call(req)
                    .await
                    .map(|res| res.map(ResponseBody::inner)),
                Ok(true) => Ok(refusal(true)),
                Err(err) => {
                    tracing::error!(target: "tower_otp", error = %err, "revocation check failed; refusing");
                    Ok(problem_response(Problem::store_unavailable()))
                }
            }
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::convert::Infallible;
    use std::time::Duration;

    use http::StatusCode;
    use http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
    use tower::{ServiceExt, service_fn};

    use super::*;
    use crate::clock::{ManualClock, unix_secs};
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
        let body = match res.into_body() {
            ResponseBody::Inner { body } => body,
            ResponseBody::Full { .. } => String::new(),
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
        use crate::store::MemoryStore;

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
}
