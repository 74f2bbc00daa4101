//! [`SignupRouter`]: self-service signup for a multi-tenant service — an
//! email code, sent and checked by tower-otp's own [`OtpRouter`], turns
//! into a new tenant and its first API key (DESIGN.md, "Self-service
//! signup").

use std::convert::Infallible;
use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::header::{AUTHORIZATION, CONTENT_TYPE, HeaderName, HeaderValue, USER_AGENT};
use http::request::Parts;
use http::{Method, Request, Response, StatusCode};
use http_body::Body;
use http_body_util::{BodyExt, Full};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tower::ServiceExt;

use super::admin::refusal;
use super::config::TenantConfig;
use super::tenants::{Tenant, TenantError, Tenants, check_name};
use crate::client_ip::ClientIp;
use crate::error::{ConfigError, FullBody, Problem};
use crate::events::EventSink;
use crate::identifier::{Email, IdentifierHasher};
use crate::notify::{Channel, Notifier};
use crate::otp::{
    OtpConfig, OtpRouter, OtpRouterBuilder, ResponseFuture, derive, invalid_code, json, read_json,
};
use crate::store::{BoxError, Store, StoreError};

/// The namespace of the signup router's store keys (its challenges, limit
/// cells and sessions): apart from the app's (unprefixed) and every
/// tenant's (`t:<id>:`).
const KEY_PREFIX: &str = "signup:";
/// Largest signup request body, in bytes.
const BODY_LIMIT: usize = 4 * 1024;
/// The name of the API key a signup issues.
const FIRST_KEY_NAME: &str = "signup";
/// Attempts at a fresh tenant id (a collision of 60 random bits is not
/// expected, but costs nothing to survive).
const ID_ATTEMPTS: usize = 4;

/// Self-service signup as one `tower::Service`, relative to where it is
/// mounted:
///
/// | method, path | body | success | errors |
/// |---|---|---|---|
/// | `POST /signup` | `{"email","name"}` | 202, the same for every valid address | 400 `invalid_email` / `invalid_request`, 413, 415, 422 `unprocessable` (a bad `name`, with `"field"`), 429, 502, 503 |
/// | `POST /signup/verify` | `{"email","code"}` | 201 `{"tenant_id","api_key"}` | 400 `invalid_code`, 429 `too_many_attempts` / `rate_limited`, 503 |
///
/// The code comes from an internal [`OtpRouter`] (email only, its store
/// keys under their own `signup:` namespace, its keys derived from the
/// signup secret), called with synthesized `/otp/request` and
/// `/otp/verify` requests: its answers — 202, `invalid_code`, every 429
/// with its headers — are passed through as they are, and all of its
/// limits apply (per address, per client IP, resend cooldown, attempts).
/// The client address is handed on ([`ClientIp`], else the peer address),
/// so per-IP limits count the real client.
///
/// While the code is valid, the name waits in the store
/// ([`TenantStore::put_pending`](crate::store::TenantStore::put_pending)) under a keyed hash of the address, never
/// the address itself; the latest accepted request's name wins, as its
/// code does. A verified code takes it ([`TenantStore::take_pending`](crate::store::TenantStore::take_pending):
/// exactly one taker), ends the internal session at once (its tokens never
/// leave this router), and creates an active tenant with a random id
/// (`t` + 12 lowercase base32 characters), the default [`TenantConfig`]
/// and a first API key (scopes none, name `"signup"`), shown once. A
/// replayed or concurrent verify of the same code gets `400 invalid_code`
/// and creates nothing. The address is not stored with the tenant.
///
/// ```
/// use bytes::Bytes;
/// use http::{Request, StatusCode};
/// use http_body_util::Full;
/// use tower::ServiceExt;
/// use tower_otp::api_key::ApiKeys;
/// use tower_otp::client_ip::ClientIp;
/// use tower_otp::notify::MemoryNotifier;
/// use tower_otp::store::MemoryStore;
/// use tower_otp::tenant::{SignupRouter, Tenants};
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let store = MemoryStore::new();
/// let tenants = Tenants::builder(store.clone(), ApiKeys::builder(store).build()?).build()?;
/// let notifier = MemoryNotifier::new();
/// let signup = SignupRouter::builder(tenants.clone(), notifier.clone())
///     .secret("4c9e1f7a2d6b8035e9c1a7f4b2d86e3a") // from configuration in production
///     .build()?;
///
/// let post = |path: &str, body: &'static str| {
///     let mut req = Request::post(path)
///         .header("content-type", "application/json")
///         .body(Full::new(Bytes::from_static(body.as_bytes())))
///         .unwrap();
///     req.extensions_mut().insert(ClientIp("192.0.2.1".parse().unwrap()));
///     req
/// };
/// let asked = post("/signup", r#"{"email":"ada@example.com","name":"Ada's app"}"#);
/// assert_eq!(signup.clone().oneshot(asked).await?.status(), StatusCode::ACCEPTED);
///
/// let code = notifier.last_code("ada@example.com").unwrap();
/// let body = format!(r#"{{"email":"ada@example.com","code":"{code}"}}"#).leak();
/// let res = signup.oneshot(post("/signup/verify", body)).await?;
/// assert_eq!(res.status(), StatusCode::CREATED);
/// assert_eq!(tenants.list().await?.len(), 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
///
/// # Security
///
/// Anyone may sign up: the internal router's limits are the only brake on
/// sending mail (3 codes per address and 5 per client IP per hour by
/// default; tune them with [`configure`](SignupRouterBuilder::configure)),
/// and every verified address may create tenants — one per code. Put the
/// router behind [`SetClientIpLayer`](crate::client_ip::SetClientIpLayer)
/// when a proxy is in front, or every client shares the proxy's per-IP
/// budget.
pub struct SignupRouter<S, N> {
    inner: Arc<Inner<S, N>>,
}

struct Inner<S, N> {
    tenants: Tenants<S>,
    otp: OtpRouter<S, N>,
    /// Keys the pending signups by address.
    pending: IdentifierHasher,
    /// How long a pending signup waits: the code's lifetime.
    pending_ttl: Duration,
}

impl<S, N> Clone for SignupRouter<S, N> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<S: fmt::Debug, N: fmt::Debug> fmt::Debug for SignupRouter<S, N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignupRouter")
            .field("tenants", &self.inner.tenants)
            .field("otp", &self.inner.otp)
            .finish_non_exhaustive()
    }
}

/// Builds a [`SignupRouter`]; from [`SignupRouter::builder`].
#[must_use]
pub struct SignupRouterBuilder<S, N> {
    tenants: Tenants<S>,
    otp: OtpRouterBuilder<S, N>,
    secret: Option<Vec<u8>>,
}

impl<S, N> fmt::Debug for SignupRouterBuilder<S, N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignupRouterBuilder")
            .field("otp", &self.otp)
            .field("secret", &self.secret.as_ref().map(|_| "<redacted>"))
            .finish_non_exhaustive()
    }
}

impl<S: Store, N: Notifier> SignupRouter<S, N> {
    /// Starts configuring signup for `tenants`, sending codes through
    /// `notifier` (email).
    pub fn builder(tenants: Tenants<S>, notifier: N) -> SignupRouterBuilder<S, N> {
        let otp = OtpRouter::builder(tenants.store().clone(), notifier)
            .clock(Arc::clone(tenants.clock()))
            .configure(|c| c.channels = vec![Channel::Email])
            .key_prefix(KEY_PREFIX);
        SignupRouterBuilder {
            tenants,
            otp,
            secret: None,
        }
    }
}

impl<S: Store, N: Notifier> SignupRouterBuilder<S, N> {
    /// The signup secret (required, at least 32 bytes). The internal
    /// router's keys are derived from it under their own label, so it may
    /// be the server's `OTP_SECRET`: no key is shared with another router.
    pub fn secret(mut self, secret: impl AsRef<[u8]>) -> Self {
        self.secret = Some(secret.as_ref().to_vec());
        self
    }

    /// Changes the internal router's settings: limits, code length and
    /// lifetime, attempts, `app_name` in the email, client-address keying.
    /// Its channels must stay email only.
    pub fn configure(mut self, f: impl FnOnce(&mut OtpConfig)) -> Self {
        self.otp = self.otp.configure(f);
        self
    }

    /// Where the internal router's security events go (default: tracing).
    pub fn events(mut self, sink: impl EventSink) -> Self {
        self.otp = self.otp.events(sink);
        self
    }

    /// Checks the settings and builds.
    pub fn build(self) -> Result<SignupRouter<S, N>, ConfigError> {
        let secret = self.secret.ok_or_else(|| {
            ConfigError::new(
                "signup secret",
                "a signup secret of at least 32 bytes is required",
            )
        })?;
        crate::secret::check("signup secret", &secret)?;
        let otp = self.otp.secret(derive(&secret, "signup otp")).build()?;
        if otp.config().channels != [Channel::Email] {
            return Err(ConfigError::new(
                "signup channels",
                "signup sends email codes only",
            ));
        }
        Ok(SignupRouter {
            inner: Arc::new(Inner {
                pending: IdentifierHasher::new(&derive(&secret, "signup pending")),
                pending_ttl: otp.config().code_ttl,
                tenants: self.tenants,
                otp,
            }),
        })
    }
}

#[derive(Deserialize)]
struct SignupRequest {
    email: String,
    name: String,
}

#[derive(Deserialize)]
struct VerifyRequest {
    email: String,
    code: String,
}

/// What waits for the code.
#[derive(Serialize, Deserialize)]
struct Pending {
    name: String,
}

#[derive(Deserialize)]
struct Tokens {
    access_token: String,
}

type Answer = Result<Response<FullBody>, Problem>;

impl<S: Store, N: Notifier> Inner<S, N> {
    async fn handle<B>(self: Arc<Self>, req: Request<B>) -> Response<FullBody>
    where
        B: Body + Send,
        B::Data: Send,
        B::Error: Into<BoxError>,
    {
        let (parts, body) = req.into_parts();
        let answer = match (parts.uri.path(), &parts.method) {
            ("/signup", &Method::POST) => self.signup(&parts, body).await,
            ("/signup/verify", &Method::POST) => self.verify(&parts, body).await,
            ("/signup" | "/signup/verify", _) => Err(Problem::method_not_allowed("POST")),
            _ => Err(Problem::not_found()),
        };
        answer.unwrap_or_else(Problem::into_response)
    }

    async fn signup<B>(&self, parts: &Parts, body: B) -> Answer
    where
        B: Body,
        B::Error: Into<BoxError>,
    {
        let req: SignupRequest = read_json(parts, body, BODY_LIMIT).await?;
        check_name(&req.name)
            .map_err(|e| Problem::unprocessable(e.reason).with_member("field", "name"))?;
        let email = Email::parse(&req.email)?;
        let sent = self
            .call(
                parts,
                "/otp/request",
                json!({ "email": email.as_str() }).to_string(),
                None,
            )
            .await;
        // Only an accepted request's name waits: a refused one (a limit,
        // a failed delivery) leaves the pending signup as it was.
        if sent.status() == StatusCode::ACCEPTED {
            let pending = serde_json::to_vec(&Pending { name: req.name })
                .map_err(|_| Problem::invalid_request("unusable name"))?;
            let now = self.tenants.now();
            self.tenants
                .store()
                .put_pending(&self.pending_key(&email), &pending, self.pending_ttl, now)
                .await
                .map_err(store_failed)?;
        }
        Ok(sent)
    }

    async fn verify<B>(&self, parts: &Parts, body: B) -> Answer
    where
        B: Body,
        B::Error: Into<BoxError>,
    {
        let req: VerifyRequest = read_json(parts, body, BODY_LIMIT).await?;
        let email = Email::parse(&req.email)?;
        let verified = self
            .call(
                parts,
                "/otp/verify",
                json!({ "email": email.as_str(), "code": req.code }).to_string(),
                None,
            )
            .await;
        if verified.status() != StatusCode::OK {
            return Ok(verified);
        }
        // The code was right and is spent. The session it opened is no
        // one's: end it before anything else can fail.
        let bytes = verified
            .into_body()
            .collect()
            .await
            .unwrap_or_else(|e| match e {})
            .to_bytes();
        match serde_json::from_slice::<Tokens>(&bytes) {
            Ok(tokens) => self.logout(parts, &tokens.access_token).await,
            Err(e) => {
                tracing::error!(target: "tower_otp", error = %e, "signup: the internal router's token answer is unreadable")
            }
        }
        let now = self.tenants.now();
        let pending = self
            .tenants
            .store()
            .take_pending(&self.pending_key(&email), now)
            .await
            .map_err(store_failed)?;
        // Gone: it expired with the code, or another verify took it.
        let Some(pending) = pending else {
            return Err(invalid_code());
        };
        let Pending { name } = serde_json::from_slice(&pending)
            .map_err(|e| store_failed(StoreError::Corrupt(format!("pending signup: {e}"))))?;
        let tenant = self.create_tenant(&name).await?;
        let key = self
            .tenants
            .issue_key(&tenant.id, FIRST_KEY_NAME, Vec::<String>::new())
            .await
            .map_err(|e| {
                tracing::error!(target: "tower_otp", tenant = %tenant.id, "signup: tenant created but its first API key could not be issued");
                refusal(e)
            })?;
        tracing::info!(target: "tower_otp", tenant = %tenant.id, key_id = %key.key_id(), "signup: tenant created");
        Ok(json(
            StatusCode::CREATED,
            &json!({ "tenant_id": tenant.id, "api_key": key.key() }),
        ))
    }

    /// Revokes the internal session of `access_token`.
    async fn logout(&self, parts: &Parts, access_token: &str) {
        let res = self
            .call(parts, "/logout", String::new(), Some(access_token))
            .await;
        if res.status() != StatusCode::NO_CONTENT {
            // Its tokens never left this router, so nobody can use it.
            tracing::warn!(target: "tower_otp", status = res.status().as_u16(), "signup: the internal session could not be revoked");
        }
    }

    async fn create_tenant(&self, name: &str) -> Result<Tenant, Problem> {
        for _ in 0..ID_ATTEMPTS {
            match self
                .tenants
                .create(&new_tenant_id(), name, TenantConfig::default())
                .await
            {
                Err(TenantError::Exists) => continue,
                other => return other.map_err(refusal),
            }
        }
        Err(refusal(TenantError::Conflict))
    }

    /// Calls the internal router with a synthesized POST to `path`: the
    /// client's address, user agent and request id handed on.
    async fn call(
        &self,
        parts: &Parts,
        path: &'static str,
        body: String,
        bearer: Option<&str>,
    ) -> Response<FullBody> {
        let mut req = Request::new(Full::new(Bytes::from(body)));
        *req.method_mut() = Method::POST;
        *req.uri_mut() = http::Uri::from_static(path);
        let headers = req.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        for name in [USER_AGENT, HeaderName::from_static("x-request-id")] {
            if let Some(value) = parts.headers.get(&name) {
                headers.insert(name, value.clone());
            }
        }
        if let Some(token) = bearer
            && let Ok(value) = HeaderValue::from_str(&format!("Bearer {token}"))
        {
            headers.insert(AUTHORIZATION, value);
        }
        if let Some(ip) = ClientIp::from_parts(parts) {
            req.extensions_mut().insert(ip);
        }
        self.otp
            .clone()
            .oneshot(req)
            .await
            .unwrap_or_else(|e| match e {})
    }

    /// The pending signup's store key: a keyed hash of the address.
    fn pending_key(&self, email: &Email) -> String {
        format!(
            "{KEY_PREFIX}{}",
            self.pending.hash_str("email", email.as_str())
        )
    }
}

fn store_failed(e: StoreError) -> Problem {
    refusal(TenantError::Store(e))
}

/// `t` and 12 random lowercase base32 characters (60 bits).
fn new_tenant_id() -> String {
    const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
    let mut bits: u64 = rand::random();
    let mut id = String::with_capacity(13);
    id.push('t');
    for _ in 0..12 {
        id.push(char::from(ALPHABET[(bits & 31) as usize]));
        bits >>= 5;
    }
    id
}

impl<S, N, B> tower::Service<Request<B>> for SignupRouter<S, N>
where
    S: Store,
    N: Notifier,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tenant::valid_tenant_id;

    #[test]
    fn tenant_ids_are_random_and_valid() {
        let ids: std::collections::HashSet<String> = (0..1000).map(|_| new_tenant_id()).collect();
        assert_eq!(ids.len(), 1000);
        for id in &ids {
            assert_eq!(id.len(), 13);
            assert!(id.starts_with('t'));
            assert!(valid_tenant_id(id), "{id}");
        }
    }

    #[cfg(feature = "moka")]
    #[test]
    fn settings_are_checked_at_build() {
        use crate::api_key::ApiKeys;
        use crate::notify::MemoryNotifier;
        use crate::secret::TEST_SECRET;
        use crate::store::MemoryStore;
        let builder = || {
            let store = MemoryStore::new();
            let keys = ApiKeys::builder(store.clone()).build().unwrap();
            SignupRouter::builder(
                Tenants::builder(store, keys).build().unwrap(),
                MemoryNotifier::new(),
            )
        };
        assert!(builder().secret(TEST_SECRET).build().is_ok());
        let setting = |b: SignupRouterBuilder<MemoryStore, MemoryNotifier>| {
            b.build().unwrap_err().setting.into_owned()
        };
        assert_eq!(setting(builder()), "signup secret");
        assert_eq!(setting(builder().secret("short")), "signup secret");
        let sms_too = builder()
            .secret(TEST_SECRET)
            .configure(|c| c.channels = vec![Channel::Email, Channel::Sms]);
        assert_eq!(setting(sms_too), "signup channels");
        let weak = builder()
            .secret(TEST_SECRET)
            .configure(|c| c.code_length = 4);
        assert_eq!(setting(weak), "code_length");
    }
}
