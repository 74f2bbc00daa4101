//! [`AdminRouter`]: the admin API of a multi-tenant service (DESIGN.md,
//! "Admin endpoints") — tenants, their config and status, their API keys,
//! usage and analytics — behind one admin bearer token.

use std::convert::Infallible;
use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http::header::{AUTHORIZATION, CACHE_CONTROL, CONTENT_TYPE, HeaderValue, WWW_AUTHENTICATE};
use http::request::Parts;
use http::{Method, Request, Response, StatusCode};
use http_body::Body;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::config::TenantConfig;
use super::tenants::{TenantError, TenantStatus, Tenants, valid_tenant_id};
use super::usage::{Day, MAX_USAGE_DAYS};
use crate::api_key::KeyInfo;
use crate::clock::unix_secs;
use crate::credentials;
use crate::error::{ConfigError, FullBody, Problem};
use crate::log_throttle::LogThrottle;
use crate::otp::{ResponseFuture, is_json, json, parse_json, read_limited};
use crate::store::{ApiKeyStore, BoxError, TenantStore};

/// Largest admin request body, in bytes (a full tenant config fits).
pub const ADMIN_BODY_LIMIT: usize = 64 * 1024;
/// The grace period of a rotated key when the request names none: 7 days.
pub const DEFAULT_ROTATION_GRACE: Duration = Duration::from_secs(7 * 86_400);
/// The longest grace period a rotation accepts: 30 days.
pub const MAX_ROTATION_GRACE: Duration = Duration::from_secs(30 * 86_400);
/// The analytics window when the request names none: one hour.
pub const DEFAULT_ANALYTICS_WINDOW: Duration = Duration::from_secs(3600);
/// The analytics windows accepted, in seconds.
pub const ANALYTICS_WINDOW_SECS: std::ops::RangeInclusive<u64> = 60..=86_400;

/// The admin API as one `tower::Service`, serving DESIGN.md's admin table
/// relative to where it is mounted (the reference server mounts it at
/// `/admin`):
///
/// | method, path | body | success |
/// |---|---|---|
/// | `GET /tenants` | — | 200 `{"tenants":[tenant, …]}` |
/// | `POST /tenants` | `{"id","name","config"?}` | 201 tenant |
/// | `GET /tenants/{id}` | — | 200 `{"id","name","status","config","config_version","created_at"}` |
/// | `PUT /tenants/{id}/config` | a JSON merge patch of the config | 200 tenant, `config_version` + 1 |
/// | `POST /tenants/{id}/status` | `{"status":"active"\|"suspended"}` | 200 tenant |
/// | `POST /tenants/{id}/api-keys` | `{"name","scopes"?:[…]}` | 201 `{"key_id","key"}` (the key shown once) |
/// | `GET /tenants/{id}/api-keys` | — | 200 `{"keys":[{"key_id","name","scopes","created_at","last_used_at","expires_at","previous_secret_until"}]}` |
/// | `POST /tenants/{id}/api-keys/{key_id}/rotate` | `{"grace_secs"?}` or none | 201 `{"key_id","key","previous_secret_until"}` |
/// | `DELETE /tenants/{id}/api-keys/{key_id}` | — | 204 |
/// | `GET /tenants/{id}/usage?from=YYYY-MM-DD&to=YYYY-MM-DD` | — | 200 [`UsageReport`](super::usage::UsageReport) |
/// | `GET /tenants/{id}/analytics?window_secs=N` | — | 200 the tenant's analytics |
///
/// Times are Unix seconds (or `null`). The tenant's config is shown
/// without its webhook secret. The usage range defaults to today (UTC):
/// `to` defaults to today, `from` to `to`; at most
/// [`MAX_USAGE_DAYS`] days. A rotation's grace defaults to 7 days
/// ([`DEFAULT_ROTATION_GRACE`]), at most 30; the analytics window to
/// 3600 s, 60–86 400.
///
/// # Errors
///
/// Every refusal is a problem document (`application/problem+json`, see
/// [`crate::error`]) and changes nothing: `401 invalid_token` (with
/// `WWW-Authenticate: Bearer`), `400 invalid_request` (a body that is not
/// JSON, a bad date or range, an unknown query parameter), `404 not_found`
/// (an unknown tenant, or a key unknown or of another tenant),
/// `405 method_not_allowed`, `409 tenant_exists`, `409 conflict` (too many
/// concurrent changes; retry), `413 body_too_large`
/// (over [`ADMIN_BODY_LIMIT`]), `415 unsupported_media_type`,
/// `422 unprocessable` (missing or wrong-typed members), `422
/// invalid_config` (a value the service refuses; the `"field"` member names
/// it, e.g. `"limits.request_per_ip.n"`), `503 store_unavailable`. Every
/// response carries `Cache-Control: no-store`.
///
/// # Security
///
/// Every request needs `Authorization: Bearer <admin token>`, before any
/// routing: without it even an unknown path answers 401. A request with
/// no bearer credentials gets a bare `WWW-Authenticate: Bearer`; a wrong
/// token `Bearer error="invalid_token"` (RFC 6750 §3.1). Only a SHA-256
/// digest of the token is kept, and the presented token's digest is
/// compared with it in constant time, so neither the token's bytes nor its
/// length leak through timing. The token is never logged or echoed. Mount
/// the router on a path only operators reach, over TLS.
///
/// ```
/// use bytes::Bytes;
/// use http::{Request, StatusCode};
/// use http_body_util::Full;
/// use tower::ServiceExt;
/// use tower_otp::api_key::ApiKeys;
/// use tower_otp::store::MemoryStore;
/// use tower_otp::tenant::{AdminRouter, Tenants};
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let store = MemoryStore::new();
/// let tenants = Tenants::builder(store.clone(), ApiKeys::builder(store).build()?).build()?;
/// let token = "c1f0e9a7d35b42c8b6e04f9a17d2c3b8"; // from ADMIN_TOKEN in production
/// let admin = AdminRouter::builder(tenants).admin_token(token).build()?;
///
/// let create = Request::post("/tenants")
///     .header("authorization", format!("Bearer {token}"))
///     .header("content-type", "application/json")
///     .body(Full::new(Bytes::from_static(br#"{"id":"acme","name":"Acme Inc."}"#)))?;
/// assert_eq!(admin.clone().oneshot(create).await?.status(), StatusCode::CREATED);
///
/// let anonymous = Request::get("/tenants/acme").body(Full::<Bytes>::default())?;
/// let res = admin.oneshot(anonymous).await?;
/// assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
/// assert_eq!(res.headers()["www-authenticate"], "Bearer");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
pub struct AdminRouter<S> {
    inner: Arc<Inner<S>>,
}

struct Inner<S> {
    tenants: Tenants<S>,
    /// SHA-256 of the admin token: the token itself is not kept.
    token_digest: [u8; 32],
    /// Wrong tokens are logged at most once a minute, with a count.
    refused_log: LogThrottle,
}

impl<S> Clone for AdminRouter<S> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<S: fmt::Debug> fmt::Debug for AdminRouter<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AdminRouter")
            .field("tenants", &self.inner.tenants)
            .field("admin_token", &"<redacted>")
            .finish()
    }
}

/// Builds an [`AdminRouter`]; from [`AdminRouter::builder`].
#[must_use]
pub struct AdminRouterBuilder<S> {
    tenants: Tenants<S>,
    token: Option<Vec<u8>>,
}

impl<S> fmt::Debug for AdminRouterBuilder<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AdminRouterBuilder")
            .field("admin_token", &self.token.as_ref().map(|_| "<redacted>"))
            .finish_non_exhaustive()
    }
}

impl<S: TenantStore + ApiKeyStore> AdminRouter<S> {
    /// Starts configuring the admin API over `tenants`.
    pub fn builder(tenants: Tenants<S>) -> AdminRouterBuilder<S> {
        AdminRouterBuilder {
            tenants,
            token: None,
        }
    }

    /// The tenants it manages.
    pub fn tenants(&self) -> &Tenants<S> {
        &self.inner.tenants
    }
}

impl<S: TenantStore + ApiKeyStore> AdminRouterBuilder<S> {
    /// The admin token (required): at least 32 bytes of random, visible
    /// ASCII without spaces (it travels in a header), e.g. from
    /// `openssl rand -hex 32`.
    pub fn admin_token(mut self, token: impl AsRef<[u8]>) -> Self {
        self.token = Some(token.as_ref().to_vec());
        self
    }

    /// Checks the token and builds.
    pub fn build(self) -> Result<AdminRouter<S>, ConfigError> {
        let token = self.token.ok_or_else(|| {
            ConfigError::new(
                "admin token",
                "an admin token of at least 32 bytes is required",
            )
        })?;
        crate::secret::check("admin token", &token)?;
        if !token.iter().all(u8::is_ascii_graphic) {
            return Err(ConfigError::new(
                "admin token",
                "must be visible ASCII without spaces: it is sent in the Authorization header",
            ));
        }
        Ok(AdminRouter {
            inner: Arc::new(Inner {
                tenants: self.tenants,
                token_digest: Sha256::digest(&token).into(),
                refused_log: LogThrottle::new(60),
            }),
        })
    }
}

/// What a path names, with the ids it carries.
#[derive(Clone, Copy)]
enum Route<'a> {
    Tenants,
    Tenant(&'a str),
    Config(&'a str),
    Status(&'a str),
    Keys(&'a str),
    Key(&'a str, &'a str),
    Rotate(&'a str, &'a str),
    Usage(&'a str),
    Analytics(&'a str),
}

impl<'a> Route<'a> {
    fn parse(path: &'a str) -> Option<Self> {
        let mut segments = path.strip_prefix('/')?.split('/');
        let mut next = || segments.next();
        let route = match (next()?, next(), next(), next(), next()) {
            ("tenants", None, ..) => Self::Tenants,
            ("tenants", Some(id), None, ..) => Self::Tenant(id),
            ("tenants", Some(id), Some("config"), None, _) => Self::Config(id),
            ("tenants", Some(id), Some("status"), None, _) => Self::Status(id),
            ("tenants", Some(id), Some("api-keys"), None, _) => Self::Keys(id),
            ("tenants", Some(id), Some("usage"), None, _) => Self::Usage(id),
            ("tenants", Some(id), Some("analytics"), None, _) => Self::Analytics(id),
            ("tenants", Some(id), Some("api-keys"), Some(key), None) => Self::Key(id, key),
            ("tenants", Some(id), Some("api-keys"), Some(key), Some("rotate")) => {
                Self::Rotate(id, key)
            }
            _ => return None,
        };
        // Nothing after `rotate`, no empty segment (`/tenants//config`).
        let rest_empty = next().is_none();
        (rest_empty && route.ids().all(|s| !s.is_empty())).then_some(route)
    }

    fn ids(self) -> impl Iterator<Item = &'a str> {
        let (a, b) = match self {
            Self::Tenants => (None, None),
            Self::Tenant(id)
            | Self::Config(id)
            | Self::Status(id)
            | Self::Keys(id)
            | Self::Usage(id)
            | Self::Analytics(id) => (Some(id), None),
            Self::Key(id, key) | Self::Rotate(id, key) => (Some(id), Some(key)),
        };
        a.into_iter().chain(b)
    }

    /// The tenant id in the path, if any.
    fn tenant(self) -> Option<&'a str> {
        self.ids().next()
    }

    /// The methods the path takes (the `Allow` of a 405).
    fn allow(self) -> &'static str {
        match self {
            Self::Tenants | Self::Keys(_) => "GET, POST",
            Self::Tenant(_) | Self::Usage(_) | Self::Analytics(_) => "GET",
            Self::Config(_) => "PUT",
            Self::Status(_) | Self::Rotate(..) => "POST",
            Self::Key(..) => "DELETE",
        }
    }
}

type Answer = Result<Response<FullBody>, Problem>;

impl<S: TenantStore + ApiKeyStore> Inner<S> {
    async fn handle<B>(self: Arc<Self>, req: Request<B>) -> Response<FullBody>
    where
        B: Body + Send,
        B::Data: Send,
        B::Error: Into<BoxError>,
    {
        let (parts, body) = req.into_parts();
        self.route(&parts, body)
            .await
            .unwrap_or_else(Problem::into_response)
    }

    async fn route<B>(&self, parts: &Parts, body: B) -> Answer
    where
        B: Body,
        B::Error: Into<BoxError>,
    {
        self.authorize(parts)?;
        let route = Route::parse(parts.uri.path()).ok_or_else(Problem::not_found)?;
        // An id that cannot exist names no tenant: answered without I/O.
        if route.tenant().is_some_and(|id| !valid_tenant_id(id)) {
            return Err(no_such("No such tenant."));
        }
        let t = &self.tenants;
        match (route, &parts.method) {
            (Route::Tenants, &Method::GET) => {
                let list = t.list().await.map_err(refusal)?;
                let tenants: Vec<Value> = list.iter().map(|t| t.public_json()).collect();
                Ok(json(StatusCode::OK, &json!({ "tenants": tenants })))
            }
            (Route::Tenants, &Method::POST) => {
                let new: NewTenant = read_body(parts, body, false).await?;
                let config = match new.config {
                    None => TenantConfig::default(),
                    Some(doc) => {
                        TenantConfig::from_value(doc, t.webhook_urls()).map_err(invalid_config)?
                    }
                };
                let tenant = t
                    .create(&new.id, &new.name, config)
                    .await
                    .map_err(refusal)?;
                tracing::info!(target: "tower_otp", tenant = %tenant.id, "admin: tenant created");
                Ok(json(StatusCode::CREATED, &tenant.public_json()))
            }
            (Route::Tenant(id), &Method::GET) => {
                let tenant = t.get(id).await.map_err(refusal)?;
                Ok(json(StatusCode::OK, &tenant.public_json()))
            }
            (Route::Config(id), &Method::PUT) => {
                let patch: Value = read_body(parts, body, true).await?;
                let tenant = t.update_config(id, &patch).await.map_err(refusal)?;
                tracing::info!(target: "tower_otp", tenant = %id, version = tenant.config_version, "admin: config changed");
                Ok(json(StatusCode::OK, &tenant.public_json()))
            }
            (Route::Status(id), &Method::POST) => {
                let change: StatusChange = read_body(parts, body, false).await?;
                let tenant = t.set_status(id, change.status).await.map_err(refusal)?;
                tracing::info!(target: "tower_otp", tenant = %id, status = ?change.status, "admin: status changed");
                Ok(json(StatusCode::OK, &tenant.public_json()))
            }
            (Route::Keys(id), &Method::GET) => {
                let keys = t.keys(id).await.map_err(refusal)?;
                let keys: Vec<Value> = keys.iter().map(key_json).collect();
                Ok(json(StatusCode::OK, &json!({ "keys": keys })))
            }
            (Route::Keys(id), &Method::POST) => {
                let new: NewKey = read_body(parts, body, false).await?;
                let issued = t
                    .issue_key(id, &new.name, new.scopes)
                    .await
                    .map_err(refusal)?;
                tracing::info!(target: "tower_otp", tenant = %id, key_id = %issued.key_id(), "admin: API key issued");
                Ok(json(
                    StatusCode::CREATED,
                    &json!({ "key_id": issued.key_id(), "key": issued.key() }),
                ))
            }
            (Route::Rotate(id, key_id), &Method::POST) => {
                let grace = rotation_grace(parts, body).await?;
                let issued = t.rotate_key(id, key_id, grace).await.map_err(refusal)?;
                tracing::info!(target: "tower_otp", tenant = %id, key_id = %key_id, grace_secs = grace.as_secs(), "admin: API key rotated");
                Ok(json(
                    StatusCode::CREATED,
                    &json!({
                        "key_id": issued.key_id(),
                        "key": issued.key(),
                        "previous_secret_until": issued.info().previous_secret_until.map(unix_secs),
                    }),
                ))
            }
            (Route::Key(id, key_id), &Method::DELETE) => {
                t.revoke_key(id, key_id).await.map_err(refusal)?;
                tracing::info!(target: "tower_otp", tenant = %id, key_id = %key_id, "admin: API key revoked");
                let mut res = Response::new(FullBody::default());
                *res.status_mut() = StatusCode::NO_CONTENT;
                res.headers_mut()
                    .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
                Ok(res)
            }
            (Route::Usage(id), &Method::GET) => {
                let [from, to] = query(parts, ["from", "to"])?;
                let today = Day::of(t.now());
                let to = to.map_or(Ok(today), date)?;
                let from = from.map_or(Ok(to), date)?;
                check_range(from, to)?;
                let report = t.usage(id, from, to).await.map_err(refusal)?;
                Ok(json(StatusCode::OK, &report))
            }
            (Route::Analytics(id), &Method::GET) => {
                let [secs] = query(parts, ["window_secs"])?;
                let window = secs.map_or(Ok(DEFAULT_ANALYTICS_WINDOW), window)?;
                analytics(t, id, window).await
            }
            (route, _) => Err(Problem::method_not_allowed(route.allow())),
        }
    }

    /// `Authorization: Bearer <admin token>`, compared in constant time.
    fn authorize(&self, parts: &Parts) -> Result<(), Problem> {
        let value = match credentials::single(&parts.headers, &AUTHORIZATION) {
            Ok(Some(value)) if credentials::is_bearer_scheme(value) => value,
            // Two Authorization headers are two credentials: neither counts.
            Err(credentials::Malformed) => return Err(wrong_token()),
            Ok(_) => return Err(no_token()),
        };
        let presented = credentials::bearer_bytes(value).ok_or_else(wrong_token)?;
        // Digests of equal length: the comparison's time says nothing about
        // the token's bytes or length.
        let digest: [u8; 32] = Sha256::digest(presented).into();
        if bool::from(digest.ct_eq(&self.token_digest)) {
            Ok(())
        } else {
            if let Some(unreported) = self.refused_log.due(unix_secs(self.tenants.now())) {
                tracing::warn!(target: "tower_otp", unreported, "admin: request with a wrong admin token refused");
            }
            Err(wrong_token())
        }
    }
}

/// `GET /tenants/{id}/analytics`.
///
/// `GET /tenants/{id}/analytics`: the tenant's report over `window`.
async fn analytics<S: TenantStore + ApiKeyStore>(
    tenants: &Tenants<S>,
    id: &str,
    window: Duration,
) -> Answer {
    let report = tenants.analytics(id, window).await.map_err(refusal)?;
    Ok(json(StatusCode::OK, &report))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewTenant {
    id: String,
    name: String,
    #[serde(default)]
    config: Option<Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StatusChange {
    status: TenantStatus,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewKey {
    name: String,
    #[serde(default)]
    scopes: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Rotation {
    grace_secs: Option<u64>,
}

/// A JSON body of at most [`ADMIN_BODY_LIMIT`] bytes; `merge_patch`
/// accepts `application/merge-patch+json` (RFC 7396) too.
async fn read_body<T, B>(parts: &Parts, body: B, merge_patch: bool) -> Result<T, Problem>
where
    T: DeserializeOwned,
    B: Body,
    B::Error: Into<BoxError>,
{
    if !(is_json(parts) || merge_patch && is_merge_patch(parts)) {
        return Err(Problem::unsupported_media_type());
    }
    let bytes = read_limited(parts, body, ADMIN_BODY_LIMIT).await?;
    parse(&bytes)
}

/// Not JSON is `400`; JSON of the wrong shape `422`. In two steps: read
/// directly, serde_json calls some wrong values (`null` for an enum) a
/// syntax error.
fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Problem> {
    let value: Value = parse_json(bytes)?;
    serde_json::from_value(value).map_err(|e| {
        let mut detail = e.to_string();
        detail.truncate(200);
        Problem::unprocessable(detail)
    })
}

fn is_merge_patch(parts: &Parts) -> bool {
    parts
        .headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|e| {
            e.trim()
                .eq_ignore_ascii_case("application/merge-patch+json")
        })
}

/// The grace of a rotation: from `{"grace_secs"}`, or the default when the
/// request has no body.
async fn rotation_grace<B>(parts: &Parts, body: B) -> Result<Duration, Problem>
where
    B: Body,
    B::Error: Into<BoxError>,
{
    let bytes = read_limited(parts, body, ADMIN_BODY_LIMIT).await?;
    if bytes.is_empty() {
        return Ok(DEFAULT_ROTATION_GRACE);
    }
    if !is_json(parts) {
        return Err(Problem::unsupported_media_type());
    }
    let rotation: Rotation = parse(&bytes)?;
    let grace = rotation
        .grace_secs
        .map_or(DEFAULT_ROTATION_GRACE, Duration::from_secs);
    if grace > MAX_ROTATION_GRACE {
        return Err(Problem::unprocessable(format!(
            "grace_secs must be at most {}",
            MAX_ROTATION_GRACE.as_secs()
        ))
        .with_member("field", "grace_secs"));
    }
    Ok(grace)
}

/// The values of the query parameters `names` (each at most once); any
/// other parameter is refused.
fn query<'a, const N: usize>(
    parts: &'a Parts,
    names: [&str; N],
) -> Result<[Option<&'a str>; N], Problem> {
    let mut values = [None; N];
    for pair in parts.uri.query().unwrap_or_default().split('&') {
        if pair.is_empty() {
            continue;
        }
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let i = names.iter().position(|n| *n == name).ok_or_else(|| {
            Problem::invalid_request(format!(
                "Unknown query parameter; this endpoint takes {}.",
                names.join(", ")
            ))
        })?;
        if values[i].replace(value).is_some() {
            return Err(Problem::invalid_request(format!(
                "The query parameter {} is given twice.",
                names[i]
            )));
        }
    }
    Ok(values)
}

fn date(s: &str) -> Result<Day, Problem> {
    Day::parse(s).ok_or_else(|| {
        Problem::invalid_request("Dates are YYYY-MM-DD (UTC), a real day from 1970 on.")
    })
}

/// `from` ≤ `to`, at most [`MAX_USAGE_DAYS`] days.
fn check_range(from: Day, to: Day) -> Result<(), Problem> {
    if from > to {
        return Err(Problem::invalid_request("from is after to."));
    }
    // Days in `from..=day`.
    let (mut day, mut days) = (from, 1);
    while day < to {
        if days == MAX_USAGE_DAYS {
            return Err(Problem::invalid_request(format!(
                "The range covers more than {MAX_USAGE_DAYS} days."
            )));
        }
        day = day.next();
        days += 1;
    }
    Ok(())
}

fn window(s: &str) -> Result<Duration, Problem> {
    s.parse::<u64>()
        .ok()
        .filter(|secs| ANALYTICS_WINDOW_SECS.contains(secs))
        .map(Duration::from_secs)
        .ok_or_else(|| {
            Problem::invalid_request(format!(
                "window_secs must be a whole number of seconds from {} to {}.",
                ANALYTICS_WINDOW_SECS.start(),
                ANALYTICS_WINDOW_SECS.end()
            ))
        })
}

fn key_json(info: &KeyInfo) -> Value {
    json!({
        "key_id": info.key_id,
        "name": info.name,
        "scopes": info.scopes,
        "created_at": unix_secs(info.created_at),
        "last_used_at": info.last_used.map(unix_secs),
        "expires_at": info.expires_at.map(unix_secs),
        "previous_secret_until": info.previous_secret_until.map(unix_secs),
    })
}

/// `401 invalid_token` for a request without bearer credentials: a bare
/// challenge (RFC 6750 §3.1).
fn no_token() -> Problem {
    Problem::new(
        StatusCode::UNAUTHORIZED,
        "invalid_token",
        "The request carries no Bearer admin token.",
    )
    .with_header(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"))
}

/// `401 invalid_token` for a wrong admin token.
fn wrong_token() -> Problem {
    Problem::new(
        StatusCode::UNAUTHORIZED,
        "invalid_token",
        "The admin token is wrong.",
    )
    .with_header(
        WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer error=\"invalid_token\""),
    )
}

fn no_such(detail: &'static str) -> Problem {
    Problem::new(StatusCode::NOT_FOUND, "not_found", detail)
}

/// `422 invalid_config` naming the field.
fn invalid_config(e: ConfigError) -> Problem {
    let mut detail = format!("{}: {}", e.setting, e.reason);
    detail.truncate(300);
    Problem::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_config", detail)
        .with_member("field", e.setting)
}

/// The answer to a failed tenant operation (also the signup router's).
pub(super) fn refusal(e: TenantError) -> Problem {
    match e {
        TenantError::NotFound => no_such("No such tenant, or no such API key of this tenant."),
        TenantError::Exists => Problem::new(
            StatusCode::CONFLICT,
            "tenant_exists",
            "A tenant with that id exists.",
        ),
        TenantError::Invalid(e) => invalid_config(e),
        TenantError::Conflict => Problem::new(
            StatusCode::CONFLICT,
            "conflict",
            "The tenant changed concurrently; retry.",
        ),
        TenantError::Store(e) => {
            tracing::error!(target: "tower_otp", error = %e, "tenant store operation failed; refusing request");
            Problem::store_unavailable()
        }
    }
}

impl<S, B> tower::Service<Request<B>> for AdminRouter<S>
where
    S: TenantStore + ApiKeyStore,
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

    #[test]
    fn routes() {
        fn ok(p: &str) -> Option<(&'static str, Vec<&str>)> {
            Route::parse(p).map(|r| (r.allow(), r.ids().collect()))
        }
        assert_eq!(ok("/tenants"), Some(("GET, POST", vec![])));
        assert_eq!(ok("/tenants/acme"), Some(("GET", vec!["acme"])));
        assert_eq!(ok("/tenants/acme/config"), Some(("PUT", vec!["acme"])));
        assert_eq!(
            ok("/tenants/acme/api-keys/k1/rotate"),
            Some(("POST", vec!["acme", "k1"]))
        );
        assert_eq!(
            ok("/tenants/acme/api-keys/k1"),
            Some(("DELETE", vec!["acme", "k1"]))
        );
        for bad in [
            "",
            "/",
            "/tenants/",
            "/tenants//config",
            "/tenants/acme/",
            "/tenants/acme/nope",
            "/tenants/acme/api-keys/",
            "/tenants/acme/api-keys/k1/rotate/x",
            "/tenants/acme/api-keys/k1/other",
            "/tenants/acme/usage/x",
            "tenants",
        ] {
            assert!(Route::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn usage_ranges() {
        let d = |s| Day::parse(s).unwrap();
        assert!(check_range(d("2026-01-01"), d("2026-01-01")).is_ok());
        // 2024 is a leap year: 366 days from Jan 1 to Dec 31.
        assert!(check_range(d("2024-01-01"), d("2024-12-31")).is_ok());
        assert!(check_range(d("2024-01-01"), d("2025-01-01")).is_err());
        assert!(check_range(d("2026-01-02"), d("2026-01-01")).is_err());
    }

    #[test]
    fn query_parameters() {
        let parts = |uri: &str| Request::get(uri).body(()).unwrap().into_parts().0;
        let p = parts("/x?to=2026-01-02&from=2026-01-01");
        assert_eq!(
            query(&p, ["from", "to"]).unwrap(),
            [Some("2026-01-01"), Some("2026-01-02")]
        );
        assert_eq!(query(&parts("/x"), ["from", "to"]).unwrap(), [None, None]);
        assert!(query(&parts("/x?from=a&from=b"), ["from", "to"]).is_err());
        assert!(query(&parts("/x?since=a"), ["from", "to"]).is_err());
        assert!(window("59").is_err());
        assert!(window("86401").is_err());
        assert!(window("-1").is_err());
        assert_eq!(window("60").unwrap(), Duration::from_secs(60));
    }

    #[test]
    fn config_refusals_name_the_field() {
        let p = invalid_config(ConfigError::at("limits.request_per_ip.n", "too small"));
        assert_eq!(p.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(p.code(), "invalid_config");
        assert_eq!(p.member("field"), Some(&json!("limits.request_per_ip.n")));
    }

    #[cfg(feature = "moka")]
    #[test]
    fn the_admin_token_is_checked_at_build() {
        use crate::api_key::ApiKeys;
        use crate::secret::TEST_SECRET;
        use crate::store::MemoryStore;
        let build = |token: Option<&str>| {
            let store = MemoryStore::new();
            let keys = ApiKeys::builder(store.clone()).build().unwrap();
            let b = AdminRouter::builder(Tenants::builder(store, keys).build().unwrap());
            match token {
                Some(t) => b.admin_token(t),
                None => b,
            }
            .build()
            .map(|_| ())
        };
        assert!(build(Some(TEST_SECRET)).is_ok());
        for bad in [
            None,
            Some(&TEST_SECRET[..31]),
            Some("changeme-changeme-changeme-12345"),
            Some("q7Vd2kLm9XwR4tBz 6NcP1yHs8GfJ3aEu"),
        ] {
            let err = build(bad).unwrap_err();
            assert_eq!(err.setting, "admin token", "{bad:?}");
            if let Some(t) = bad {
                assert!(!err.reason.contains(t), "the token is never echoed");
            }
        }
    }
}
