//! The `OtpRouter` service: routing, request context, response helpers.

use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use http_body::Body;
use http_body_util::Full;
use serde::Serialize;

use super::browser::Browser;
use super::config::OtpConfig;
use super::secrets::Secrets;
use super::site::{Site, SiteSource};
use super::subject::{HashedSubject, SubjectResolver};
use crate::client_ip::push_limit_key;
use crate::clock::Clock;
use crate::error::{FullBody, Problem};
use crate::events::{self, EventKind, RequestContext};
use crate::identifier::{HashedId, ascii};
use crate::jwt::{JwtKeys, JwtLayer, StoreRevocation, Validation};
use crate::notify::Notifier;
use crate::store::{BoxError, Store, StoreError};

pub(crate) struct Inner<S, N, R> {
    pub(crate) store: S,
    pub(crate) notifier: N,
    pub(crate) resolver: R,
    pub(crate) keys: JwtKeys,
    pub(crate) secrets: Secrets,
    pub(crate) clock: Arc<dyn Clock>,
    /// The app's settings; with `tenants`, the base every tenant's are
    /// built from (and what health checks run under).
    pub(crate) site: Arc<Site>,
    /// Per-request settings from the request's API key (multi-tenant mode).
    pub(crate) tenants: Option<Arc<dyn SiteSource>>,
    /// Browser mode: refresh token in a cookie, CSRF checks.
    pub(crate) browser: Option<Browser>,
}

/// One request being served: the router, the settings it runs under and
/// who is asking. Cheap to clone (the known-users path moves one into a
/// task).
pub(crate) struct Call<S, N, R> {
    pub(crate) inner: Arc<Inner<S, N, R>>,
    pub(crate) site: Arc<Site>,
    pub(crate) ctx: RequestContext,
}

impl<S, N, R> Clone for Call<S, N, R> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
            site: Arc::clone(&self.site),
            ctx: self.ctx.clone(),
        }
    }
}

impl<S, N, R> std::ops::Deref for Call<S, N, R> {
    type Target = Inner<S, N, R>;

    fn deref(&self) -> &Self::Target {
        &self.inner
    }
}

/// The OTP login endpoints as one `tower::Service`.
///
/// Serves the HTTP contract of DESIGN.md relative to where it is mounted:
/// `POST /otp/request`, `POST /otp/verify`, `POST /token/refresh`,
/// `POST /logout`, `GET /session`, `GET /health/live`, `GET /health/ready`.
/// Mount it with axum's `Router::nest_service("/auth", router)` or call it
/// from hyper directly. Cloning is cheap (one `Arc`).
///
/// ```
/// use tower_otp::notify::LogNotifier;
/// use tower_otp::otp::OtpRouter;
/// use tower_otp::store::MemoryStore;
///
/// let auth = OtpRouter::builder(MemoryStore::new(), LogNotifier)
///     .secret(rand::random::<[u8; 32]>()) // from configuration in production
///     .build()?;
/// let app: axum::Router = axum::Router::new().nest_service("/auth", auth);
/// # let _ = app;
/// # Ok::<(), tower_otp::error::ConfigError>(())
/// ```
///
/// # Client addresses
///
/// Per-IP limits key on the [`ClientIp`](crate::client_ip::ClientIp) request
/// extension (set by [`SetClientIpLayer`](crate::client_ip::SetClientIpLayer)), else the
/// [`PeerAddr`](crate::client_ip::PeerAddr) extension, else (feature `axum`)
/// axum's `ConnectInfo` — IPv4 per address, IPv6 per /64 (see
/// [`ClientIpKey`](crate::client_ip::ClientIpKey) and
/// [`OtpRouterBuilder::client_ip_key`](super::OtpRouterBuilder::client_ip_key)).
/// With none of them, code requests are refused with
/// `500 client_ip_unavailable` and an error log (at most once a minute)
/// naming what is missing: with axum, enable tower-otp's `axum` feature and
/// serve with `into_make_service_with_connect_info::<SocketAddr>()`.
/// Every client sharing one bucket instead is an explicit opt-in
/// ([`ClientIpKeyBuilder::shared_bucket_for_unknown_clients`](crate::client_ip::ClientIpKeyBuilder::shared_bucket_for_unknown_clients)).
pub struct OtpRouter<S, N, R = HashedSubject> {
    pub(crate) inner: Arc<Inner<S, N, R>>,
}

impl<S, N, R> Clone for OtpRouter<S, N, R> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<S: fmt::Debug, N: fmt::Debug, R> fmt::Debug for OtpRouter<S, N, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OtpRouter")
            .field("store", &self.inner.store)
            .field("notifier", &self.inner.notifier)
            .field("config", &self.inner.site.config)
            .field("tenants", &self.inner.tenants)
            .field("keys", &self.inner.keys)
            .finish_non_exhaustive()
    }
}

impl<S, N, R> OtpRouter<S, N, R> {
    pub(crate) fn from_inner(inner: Inner<S, N, R>) -> Self {
        Self {
            inner: Arc::new(inner),
        }
    }

    /// The keys access tokens are signed with (give them to the JWT layer
    /// that protects the app's own routes).
    pub fn jwt_keys(&self) -> &JwtKeys {
        &self.inner.keys
    }

    /// The validation rules access tokens must pass (issuer, audience, leeway).
    pub fn validation(&self) -> &Validation {
        &self.inner.site.validation
    }

    /// A [`JwtLayer`] that accepts this router's access tokens (same keys,
    /// issuer, audience, leeway and clock) and refuses those of logged-out
    /// sessions, for the app's own protected routes.
    pub fn jwt_layer<C>(&self) -> JwtLayer<C, StoreRevocation<S>>
    where
        S: Store,
    {
        JwtLayer::new(self.inner.keys.clone(), self.inner.site.validation.clone())
            .with_clock(Arc::clone(&self.inner.clock))
            .with_store(self.inner.store.clone())
    }

    /// Ends every session of `subject` — the id the
    /// [`SubjectResolver`] gave it, the access tokens' `sub` — for account
    /// compromise or deletion: their refresh tokens stop working at once,
    /// their access tokens at the next revocation check ([`jwt_layer`](Self::jwt_layer),
    /// `JwtLayer::with_store`, `/session`), including one minted just before.
    /// Returns how many live sessions were ended; safe to retry after an
    /// error. The sessions of a tenant: [`revoke_tenant_subject`](Self::revoke_tenant_subject).
    pub async fn revoke_subject(&self, subject: &str) -> Result<usize, StoreError>
    where
        S: Store,
    {
        self.revoke_subject_under(&self.inner.site.key_prefix, subject)
            .await
    }

    /// [`revoke_subject`](Self::revoke_subject) for the sessions of tenant
    /// `tenant` (multi-tenant mode); [`StoreError::Invalid`] for a malformed
    /// tenant id.
    pub async fn revoke_tenant_subject(
        &self,
        tenant: &str,
        subject: &str,
    ) -> Result<usize, StoreError>
    where
        S: Store,
    {
        if !crate::tenant::valid_tenant_id(tenant) {
            return Err(StoreError::Invalid("tenant id"));
        }
        self.revoke_subject_under(&format!("t:{tenant}:"), subject)
            .await
    }

    async fn revoke_subject_under(&self, prefix: &str, subject: &str) -> Result<usize, StoreError>
    where
        S: Store,
    {
        let key = super::handlers::subject_key(prefix, &self.inner.secrets, subject);
        let config = &self.inner.site.config;
        let ended = self
            .inner
            .store
            .revoke_subject(&key, None, config.session_max_age, self.inner.now())
            .await?;
        tracing::info!(target: "tower_otp", sessions = ended, "revoked every session of a subject");
        Ok(ended)
    }

    /// The configuration in force.
    pub fn config(&self) -> &OtpConfig {
        &self.inner.site.config
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.inner.store
    }
}

impl<S, N, R> Inner<S, N, R> {
    pub(crate) fn now(&self) -> std::time::SystemTime {
        self.clock.now()
    }
}

impl<S: Store, N: Notifier, R: SubjectResolver> Call<S, N, R> {
    /// Emits an event for this request (with its tenant, if any).
    pub(crate) fn event(
        &self,
        kind: EventKind,
        id: Option<&HashedId>,
        reason: Option<&'static str>,
    ) {
        let mut e = self.ctx.event(kind, self.now());
        e.identifier = id.copied();
        e.reason = reason;
        e.tenant.clone_from(&self.site.tenant);
        events::emit(self.site.events.as_ref(), &e);
    }

    /// Logs a store failure and answers 503 (fail closed).
    pub(crate) fn store_failed(&self, err: &StoreError) -> Problem {
        tracing::error!(target: "tower_otp", error = %err, "store operation failed; refusing request");
        self.event(EventKind::StoreUnavailable, None, None);
        Problem::store_unavailable()
    }

    /// The rate-limit key for this client's address under `namespace`
    /// (`"otp:req:ip:"`, `"otp:verify:ip:"`): the client-address key of
    /// [`ClientIpKey`](crate::client_ip::ClientIpKey) (IPv6 per /64 by
    /// default), hashed. Without an address, `500 client_ip_unavailable`
    /// (logged at error level, at most once a minute) unless the app opted
    /// into one shared bucket.
    pub(crate) fn ip_key(&self, namespace: &'static str) -> Result<String, Problem> {
        let settings = &self.site.config.client_ip_key;
        let now_secs = || crate::clock::unix_secs(self.now());
        match self.ctx.client_ip {
            Some(ip) => {
                let mut key = String::with_capacity(48);
                push_limit_key(&mut key, ip, settings.ipv6_prefix());
                let hash = self.secrets.identifiers.hash_str("ip", &key);
                Ok(self.site.key(namespace, ascii(&hash.encoded())))
            }
            None if settings.shares_bucket_for_unknown_clients() => {
                settings.note_shared_bucket("OtpRouter", now_secs());
                Ok(self.site.key(namespace, "unknown"))
            }
            None => Err(settings.refuse_unknown("OtpRouter", now_secs())),
        }
    }
}

impl<S: Store, N: Notifier, R: SubjectResolver> Inner<S, N, R> {
    async fn handle<B>(self: Arc<Self>, req: Request<B>) -> Response<FullBody>
    where
        B: Body + Send,
        B::Data: Send,
        B::Error: Into<BoxError>,
    {
        let (parts, body) = req.into_parts();
        let started = Instant::now();
        let record = |endpoint: &'static str| {
            metrics::histogram!("tower_otp_request_duration_seconds", "endpoint" => endpoint)
                .record(started.elapsed().as_secs_f64());
        };
        let endpoint = match (parts.uri.path(), &parts.method) {
            ("/otp/request", &Method::POST) => Endpoint::Request,
            ("/otp/verify", &Method::POST) => Endpoint::Verify,
            ("/token/refresh", &Method::POST) => Endpoint::Refresh,
            ("/logout", &Method::POST) => Endpoint::Logout,
            ("/session", &Method::GET) => Endpoint::Session,
            ("/sessions", &Method::GET) => Endpoint::Sessions,
            (path, &Method::DELETE) if session_id(path).is_some() => Endpoint::EndSession,
            (path, method) => {
                let (name, result) = match (path, method) {
                    ("/health/live", &Method::GET) => (
                        "health_live",
                        Ok(json(StatusCode::OK, &Status { status: "ok" })),
                    ),
                    ("/health/ready", &Method::GET) => ("health_ready", self.ready().await),
                    ("/.well-known/jwks.json", &Method::GET) => ("jwks", self.jwks()),
                    ("/otp/request" | "/otp/verify" | "/token/refresh" | "/logout", _) => {
                        ("other", Err(Problem::method_not_allowed("POST")))
                    }
                    (
                        "/session"
                        | "/sessions"
                        | "/health/live"
                        | "/health/ready"
                        | "/.well-known/jwks.json",
                        _,
                    ) => ("other", Err(Problem::method_not_allowed("GET"))),
                    (path, _) if session_id(path).is_some() => {
                        ("other", Err(Problem::method_not_allowed("DELETE")))
                    }
                    _ => ("other", Err(Problem::not_found())),
                };
                record(name);
                return result.unwrap_or_else(Problem::into_response);
            }
        };
        // The settings this request runs under: the app's, or (multi-tenant)
        // those of the tenant its API key belongs to.
        let site = match &self.tenants {
            None => Arc::clone(&self.site),
            Some(tenants) => match match tenants.cached_site(&parts) {
                Some(cached) => cached,
                None => tenants.site(&parts).await,
            } {
                Ok(site) => site,
                Err(problem) => {
                    record(endpoint.name());
                    return problem.into_response();
                }
            },
        };
        let call = Call {
            ctx: RequestContext::from_parts(&parts),
            inner: self,
            site,
        };
        let result = match endpoint {
            Endpoint::Request => call.request_code(&parts, body).await,
            Endpoint::Verify => call.verify_code(&parts, body).await,
            Endpoint::Refresh => call.refresh(&parts, body).await,
            Endpoint::Logout => call.logout(&parts).await,
            Endpoint::Session => call.session(&parts).await,
            Endpoint::Sessions => call.sessions(&parts).await,
            Endpoint::EndSession => {
                let id = session_id(parts.uri.path()).unwrap_or_default();
                call.end_session(&parts, id).await
            }
        };
        let latency = started.elapsed();
        record(endpoint.name());
        if let Some(tenants) = &call.tenants {
            tenants.finished(
                &call.site,
                latency,
                result.as_ref().err().map(Problem::code),
            );
        }
        result.unwrap_or_else(Problem::into_response)
    }

    /// `GET /.well-known/jwks.json`: the public keys tokens are verified
    /// with (EdDSA / ES256), for services that verify without the signing
    /// key; `404` when every key is an HS256 secret.
    fn jwks(&self) -> Result<Response<FullBody>, Problem> {
        let body = self.keys.jwks_json().ok_or_else(Problem::not_found)?;
        let mut res = Response::new(Full::new(body));
        res.headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        res.headers_mut().insert(
            CACHE_CONTROL,
            HeaderValue::from_static(crate::jwt::JWKS_CACHE_CONTROL),
        );
        Ok(res)
    }

    async fn ready(&self) -> Result<Response<FullBody>, Problem> {
        if let Err(err) = self.store.ping().await {
            tracing::error!(target: "tower_otp", error = %err, "readiness: store unreachable");
            return Err(Problem::store_unavailable().with_member("component", "store"));
        }
        if let Some(Err(err)) = self.notifier.ready().await {
            tracing::error!(target: "tower_otp", error = %err, "readiness: notifier unreachable");
            return Err(Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "notifier_unavailable",
                "The message provider is unreachable.",
            )
            .with_member("component", "notifier"));
        }
        Ok(json(StatusCode::OK, &Status { status: "ok" }))
    }
}

/// The endpoints that run under a [`Site`].
#[derive(Clone, Copy)]
enum Endpoint {
    Request,
    Verify,
    Refresh,
    Logout,
    Session,
    Sessions,
    EndSession,
}

/// The `{id}` of a `/sessions/{id}` path.
fn session_id(path: &str) -> Option<&str> {
    path.strip_prefix("/sessions/")
        .filter(|id| !id.is_empty() && !id.contains('/'))
}

impl Endpoint {
    /// The `endpoint` label of the latency histogram.
    fn name(self) -> &'static str {
        match self {
            Self::Request => "otp_request",
            Self::Verify => "otp_verify",
            Self::Refresh => "token_refresh",
            Self::Logout => "logout",
            Self::Session => "session",
            Self::Sessions => "sessions",
            Self::EndSession => "end_session",
        }
    }
}

#[derive(Serialize)]
struct Status {
    status: &'static str,
}

/// A JSON response.
pub(crate) fn json<T: Serialize>(status: StatusCode, body: &T) -> Response<FullBody> {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    let mut res = Response::new(Full::new(Bytes::from(bytes)));
    *res.status_mut() = status;
    res.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    res.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

/// The future returned by the `call` of [`OtpRouter`] and of the routers
/// built on it ([`AdminRouter`](crate::tenant::AdminRouter),
/// [`SignupRouter`](crate::tenant::SignupRouter)).
pub struct ResponseFuture {
    inner: Pin<Box<dyn Future<Output = Response<FullBody>> + Send>>,
}

impl ResponseFuture {
    /// Wraps a router's handling of one request.
    pub(crate) fn new(future: impl Future<Output = Response<FullBody>> + Send + 'static) -> Self {
        Self {
            inner: Box::pin(future),
        }
    }
}

impl fmt::Debug for ResponseFuture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("otp::ResponseFuture")
    }
}

impl Future for ResponseFuture {
    type Output = Result<Response<FullBody>, Infallible>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.inner.as_mut().poll(cx).map(Ok)
    }
}

impl<S, N, R, B> tower::Service<Request<B>> for OtpRouter<S, N, R>
where
    S: Store,
    N: Notifier,
    R: SubjectResolver,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    type Response = Response<FullBody>;
    type Error = Infallible;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        ResponseFuture::new(Arc::clone(&self.inner).handle(req))
    }
}
