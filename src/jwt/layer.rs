//! `JwtLayer`: bearer-token authentication for any Tower service.

use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::header::{AUTHORIZATION, COOKIE, HeaderValue, WWW_AUTHENTICATE};
use http::{Request, Response};
use serde::de::DeserializeOwned;
use tower::{Layer, Service};

use super::future::ResponseFuture;
use super::keys::JwtKeys;
use super::token::{MAX_TOKEN_LEN, RegisteredClaims, Validation, bearer_token, decode};
use crate::body::{ResponseBody, problem_response};
use crate::clock::{Clock, SystemClock};
use crate::error::Problem;
use crate::store::{Store, StoreError};

/// The verified claims of the request's access token, in request extensions.
///
/// `C` is the application's own claims type, parsed from the token payload;
/// the registered claims (`sub`, `exp`, `sid`, …) are alongside. Under the
/// `axum` feature this is also an extractor.
#[derive(Clone, Debug)]
pub struct Claims<C> {
    /// The application's claims.
    pub custom: C,
    /// Registered claims.
    pub registered: RegisteredClaims,
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

/// Checks the token's session (`sid`) and then its `jti` against a [`Store`]:
/// a logged-out session or an individually revoked token is refused.
#[derive(Clone, Debug)]
pub struct StoreRevocation<S>(pub S);

impl<S: Store> Revocation for StoreRevocation<S> {
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

#[derive(Clone)]
struct Config<R> {
    keys: JwtKeys,
    validation: Validation,
    cookie: Option<String>,
    revocation: R,
    clock: Arc<dyn Clock>,
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
/// let keys = JwtKeys::new("k1", [7u8; 32])?;
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
pub struct JwtLayer<C, R = NoRevocation> {
    config: Arc<Config<R>>,
    _claims: PhantomData<fn() -> C>,
}

impl<C, R> Clone for JwtLayer<C, R> {
    fn clone(&self) -> Self {
        Self {
            config: Arc::clone(&self.config),
            _claims: PhantomData,
        }
    }
}

impl<C, R> fmt::Debug for JwtLayer<C, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtLayer")
            .field("keys", &self.config.keys)
            .field("validation", &self.config.validation)
            .field("cookie", &self.config.cookie)
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
                clock: Arc::new(SystemClock),
            }),
            _claims: PhantomData,
        }
    }
}

impl<C, R: Revocation> JwtLayer<C, R> {
    fn map_config<R2>(self, f: impl FnOnce(Config<R>) -> Config<R2>) -> JwtLayer<C, R2> {
        let config = Arc::unwrap_or_clone(self.config);
        JwtLayer {
            config: Arc::new(f(config)),
            _claims: PhantomData,
        }
    }

    /// Also refuses tokens whose session (`sid`) or `jti` is revoked in `store`.
    #[must_use]
    pub fn with_store<S: Store>(self, store: S) -> JwtLayer<C, StoreRevocation<S>> {
        self.map_config(|c| Config {
            keys: c.keys,
            validation: c.validation,
            cookie: c.cookie,
            revocation: StoreRevocation(store),
            clock: c.clock,
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

    /// The time source (tests use `ManualClock`).
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

fn refusal<B>(with_error: bool) -> Response<ResponseBody<B>> {
    let challenge = if with_error {
        "Bearer error=\"invalid_token\""
    } else {
        "Bearer"
    };
    let mut res = problem_response(Problem::invalid_token());
    res.headers_mut()
        .insert(WWW_AUTHENTICATE, HeaderValue::from_static(challenge));
    res
}

impl<S, C, R, ReqBody, ResBody> Service<Request<ReqBody>> for JwtAuth<S, C, R>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    C: DeserializeOwned + Clone + Send + Sync + 'static,
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
        let token = match headers.get(AUTHORIZATION) {
            Some(value) => bearer_token(value),
            None => config
                .cookie
                .as_deref()
                .and_then(|name| cookie_token(headers, name)),
        };
        let Some(token) = token else {
            let had_credentials = headers.contains_key(AUTHORIZATION);
            return ResponseFuture::refused(refusal(had_credentials));
        };
        let verified =
            match decode::<C>(&config.keys, &config.validation, token, config.clock.now()) {
                Ok(v) => v,
                Err(reason) => {
                    tracing::debug!(target: "tower_otp", %reason, "access token refused");
                    return ResponseFuture::refused(refusal(true));
                }
            };
        if !R::CHECKS {
            req.extensions_mut().insert(Claims {
                custom: verified.claims,
                registered: verified.registered,
            });
            return ResponseFuture::inner(self.inner.call(req));
        }
        // The revocation check needs the registered claims after the request
        // has taken its copy: clone only on this path.
        let registered = verified.registered.clone();
        req.extensions_mut().insert(Claims {
            custom: verified.claims,
            registered: verified.registered,
        });
        // The check awaits the store: take the ready inner service, leave a clone.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let revocation = config.revocation.clone();
        ResponseFuture::boxed(async move {
            match revocation.is_revoked(&registered).await {
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
