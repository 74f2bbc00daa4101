//! Errors: the RFC 9457 problem responses every HTTP client sees, and
//! [`ConfigError`] for configuration refused at start-up.
//!
//! Every refusal in `tower-otp` — from the `OtpRouter`
//! and from every layer — is an `application/problem+json` document with a
//! stable machine-readable `code`:
//!
//! ```json
//! {"type":"urn:tower-otp:problem:rate_limited","title":"Too Many Requests",
//!  "status":429,"detail":"Too many requests; retry later.","code":"rate_limited"}
//! ```
//!
//! The human `detail` never carries internals (store errors, provider
//! messages); those go to `tracing`.
//!
//! Each `code` has exactly one status, whoever answers with it:
//!
//! | status | codes |
//! |---|---|
//! | 400 | `invalid_request` (unreadable or malformed body), `invalid_phone`, `invalid_email`, `invalid_code`, `invalid_grant` (RFC 6749 §5.2), `rate_limit_key_missing` |
//! | 401 | `invalid_token` (always with `WWW-Authenticate: Bearer …`), `invalid_api_key` |
//! | 403 | `country_not_allowed`, `access_denied`, `insufficient_scope` |
//! | 404 | `not_found` |
//! | 405 | `method_not_allowed` |
//! | 409 | `tenant_exists`, `conflict` (a concurrent change won; retry) |
//! | 413 | `body_too_large` |
//! | 415 | `unsupported_media_type` |
//! | 422 | `unprocessable` (well-formed JSON with missing or wrong fields), `invalid_config` (a tenant setting refused; `"field"` names it) |
//! | 429 | `rate_limited`, `too_many_attempts` (with `Retry-After`, the `RateLimit` fields and `"violated-policies"`) |
//! | 500 | `client_ip_unavailable` |
//! | 502 | `delivery_failed` |
//! | 503 | `store_unavailable`, `notifier_unavailable`, `unavailable` |
//!
//! # Refusals of the layers
//!
//! A layer that refuses a request (`JwtLayer`, `ApiKeyLayer`,
//! `RateLimitLayer`) puts the [`Problem`] it refused with into the response's extensions, so middleware
//! further out can see why. An app with its own error format gives the
//! layer a [`MakeRejection`] — any closure `Fn(&Problem, &Parts) ->
//! Response<FullBody>` — which shapes status, headers and body; the default,
//! [`ProblemJson`], is the problem+json document above. Whatever the builder
//! returns, the layer then sets the headers the protocol requires from the
//! problem — `WWW-Authenticate` on `401`/`403`, `Retry-After` (and, from the
//! rate-limit layer, `RateLimit-Policy` / `RateLimit`) on `429` — replacing
//! any the builder set under those names, and inserts the `Problem`: a
//! builder cannot drop them.
//!
//! ```
//! use bytes::Bytes;
//! use http::request::Parts;
//! use http::{Request, Response};
//! use http_body_util::{BodyExt, Full};
//! use tower::{Layer, ServiceExt, service_fn};
//! use tower_otp::error::{FullBody, Problem};
//! use tower_otp::jwt::{JwtKeys, JwtLayer, Validation};
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let keys = JwtKeys::new("k1", rand::random::<[u8; 32]>())?;
//! let layer = JwtLayer::<serde_json::Value>::new(keys, Validation::default())
//!     .with_rejection(|problem: &Problem, _: &Parts| {
//!         let body = format!(r#"{{"error":"{}"}}"#, problem.code());
//!         let mut res = Response::new(FullBody::new(Bytes::from(body)));
//!         *res.status_mut() = problem.status();
//!         res
//!     });
//! let svc = layer.layer(service_fn(|_req: Request<()>| async {
//!     Ok::<_, std::convert::Infallible>(Response::new(Full::new(Bytes::new())))
//! }));
//! let res = svc.oneshot(Request::new(())).await?;
//! assert_eq!(res.status(), 401);
//! assert_eq!(res.headers()["www-authenticate"], "Bearer");
//! assert_eq!(res.extensions().get::<Problem>().unwrap().code(), "invalid_token");
//! let body = res.into_body().collect().await?.to_bytes();
//! assert_eq!(body, r#"{"error":"invalid_token"}"#);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```

use std::borrow::Cow;
use std::fmt;
use std::time::Duration;

use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue, RETRY_AFTER};
use http::request::Parts;
use http::{Response, StatusCode};
use http_body_util::Full;

use crate::clock::ceil_secs;

/// The body type of every response `tower-otp` builds itself.
pub type FullBody = Full<Bytes>;

/// An RFC 9457 problem document with a stable `code`.
///
/// A layer's refused response carries its `Problem` in the response
/// extensions (see [Refusals of the layers](self#refusals-of-the-layers)).
///
/// Boxed inside: refusals are the cold path, and a one-pointer error keeps
/// every `Result<_, Problem>` on the hot path small.
#[derive(Clone, Debug)]
pub struct Problem(Box<Inner>);

#[derive(Clone, Debug)]
struct Inner {
    status: StatusCode,
    code: &'static str,
    detail: Cow<'static, str>,
    retry_after: Option<u64>,
    headers: Vec<(HeaderName, HeaderValue)>,
    /// Extension members, in the order added (one per name).
    extra: Vec<(&'static str, serde_json::Value)>,
}

impl Problem {
    /// A problem with `status`, machine `code` and human `detail`.
    pub fn new(
        status: StatusCode,
        code: &'static str,
        detail: impl Into<Cow<'static, str>>,
    ) -> Self {
        Self(Box::new(Inner {
            status,
            code,
            detail: detail.into(),
            retry_after: None,
            headers: Vec::new(),
            extra: Vec::new(),
        }))
    }

    /// `400 invalid_request`: the body is not what the endpoint takes.
    pub fn invalid_request(detail: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", detail)
    }

    /// `422 unprocessable`: well-formed JSON with missing or wrong-typed
    /// fields, or values the endpoint cannot use.
    pub fn unprocessable(detail: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, "unprocessable", detail)
    }

    /// `413 body_too_large`.
    pub fn body_too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!("The request body exceeds {limit} bytes."),
        )
    }

    /// `415 unsupported_media_type`.
    pub fn unsupported_media_type() -> Self {
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "Send the body as application/json.",
        )
    }

    /// `429 rate_limited` with `Retry-After` rounded up to whole seconds.
    pub fn rate_limited(retry_after: Duration) -> Self {
        Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            "Too many requests; retry later.",
        )
        .with_retry_after(retry_after)
    }

    /// `503 store_unavailable`.
    pub fn store_unavailable() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "store_unavailable",
            "The service is temporarily unavailable; retry later.",
        )
    }

    /// `401 invalid_token` with an RFC 6750 `WWW-Authenticate` challenge.
    pub fn invalid_token() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "invalid_token",
            "The access token is missing, malformed, expired or revoked.",
        )
        .with_header(
            http::header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer error=\"invalid_token\""),
        )
    }

    /// `401 invalid_token` for a request that carries no credentials (no
    /// `Authorization`, or another scheme than `Bearer`): the challenge is a
    /// bare `WWW-Authenticate: Bearer`, without an error code (RFC 6750 §3.1).
    pub fn no_credentials() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "invalid_token",
            "The request carries no Bearer access token.",
        )
        .with_header(
            http::header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer"),
        )
    }

    /// `404 not_found`.
    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", "No such endpoint.")
    }

    /// `405 method_not_allowed` with `Allow`.
    pub fn method_not_allowed(allow: &'static str) -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "This endpoint does not take that method.",
        )
        .with_header(http::header::ALLOW, HeaderValue::from_static(allow))
    }

    /// Adds `Retry-After` (whole seconds, rounded up, at least 1).
    pub fn with_retry_after(mut self, after: Duration) -> Self {
        self.0.retry_after = Some(ceil_secs(after).max(1));
        self
    }

    /// Adds a response header.
    pub fn with_header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.0.headers.push((name, value));
        self
    }

    /// Adds one extra string member to the document (e.g. `"component"`);
    /// a second member of the same name replaces the first.
    pub fn with_member(self, name: &'static str, value: impl Into<Cow<'static, str>>) -> Self {
        let value: Cow<'static, str> = value.into();
        self.with_value(name, serde_json::Value::String(value.into_owned()))
    }

    /// Adds the `"violated-policies"` member: the names of the rate-limit
    /// policies that refused the request (the extension member of the
    /// quota-exceeded problem type of draft-ietf-httpapi-ratelimit-headers).
    pub fn with_violated_policies<I, T>(self, names: I) -> Self
    where
        I: IntoIterator<Item = T>,
        T: Into<String>,
    {
        let names = names
            .into_iter()
            .map(|n| serde_json::Value::String(n.into()))
            .collect();
        self.with_value("violated-policies", serde_json::Value::Array(names))
    }

    fn with_value(mut self, name: &'static str, value: serde_json::Value) -> Self {
        self.0.extra.retain(|(n, _)| *n != name);
        self.0.extra.push((name, value));
        self
    }

    /// The extension member `name` of the document, if set.
    pub fn member(&self, name: &str) -> Option<&serde_json::Value> {
        self.0
            .extra
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v)
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.0.status
    }

    /// The stable machine-readable code.
    pub fn code(&self) -> &'static str {
        self.0.code
    }

    /// The human-readable explanation (never internals).
    pub fn detail(&self) -> &str {
        &self.0.detail
    }

    /// The `Retry-After` value in seconds, if any.
    pub fn retry_after(&self) -> Option<u64> {
        self.0.retry_after
    }

    /// Sets the headers this problem's protocol requires — its own headers
    /// (`WWW-Authenticate`, the `RateLimit` fields, `Allow`) and
    /// `Retry-After` — on a response someone else built, replacing any
    /// values under those names.
    pub(crate) fn set_protocol_headers(&self, headers: &mut HeaderMap) {
        for (name, _) in &self.0.headers {
            headers.remove(name);
        }
        for (name, value) in &self.0.headers {
            headers.append(name, value.clone());
        }
        if let Some(secs) = self.0.retry_after {
            headers.insert(RETRY_AFTER, HeaderValue::from(secs));
        }
    }

    /// The JSON document.
    pub fn to_json(&self) -> Vec<u8> {
        let mut doc = serde_json::Map::with_capacity(5 + self.0.extra.len());
        doc.insert(
            "type".into(),
            format!("urn:tower-otp:problem:{}", self.0.code).into(),
        );
        doc.insert(
            "title".into(),
            self.0.status.canonical_reason().unwrap_or("Error").into(),
        );
        doc.insert("status".into(), self.0.status.as_u16().into());
        doc.insert("detail".into(), self.0.detail.as_ref().into());
        doc.insert("code".into(), self.0.code.into());
        for (name, value) in &self.0.extra {
            doc.insert((*name).into(), value.clone());
        }
        serde_json::to_vec(&doc).unwrap_or_default()
    }

    /// Builds the response: problem+json, `Cache-Control: no-store`,
    /// `Retry-After` and any extra headers.
    pub fn into_response(self) -> Response<FullBody> {
        let mut res = Response::new(Full::new(Bytes::from(self.to_json())));
        *res.status_mut() = self.0.status;
        let h = res.headers_mut();
        h.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if let Some(secs) = self.0.retry_after {
            h.insert(RETRY_AFTER, HeaderValue::from(secs));
        }
        for (name, value) in self.0.headers {
            h.append(name, value);
        }
        res
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.0.status.as_u16(),
            self.0.code,
            self.0.detail
        )
    }
}

/// Builds the response a layer refuses a request with, from the [`Problem`]
/// it refused with and the request's parts: the extension point for apps
/// with their own error format (see
/// [Refusals of the layers](self#refusals-of-the-layers)).
///
/// Implemented by [`ProblemJson`] (the default) and by every closure
/// `Fn(&Problem, &Parts) -> Response<FullBody>`. The layer sets the
/// problem's protocol headers (`WWW-Authenticate`, `Retry-After`, the
/// `RateLimit` fields) on what this returns and inserts the `Problem` into
/// its extensions; status, other headers and body are the builder's.
pub trait MakeRejection: Send + Sync + 'static {
    /// The response refusing the request with these `parts` for `problem`.
    fn make_rejection(&self, problem: &Problem, parts: &Parts) -> Response<FullBody>;
}

impl<F> MakeRejection for F
where
    F: Fn(&Problem, &Parts) -> Response<FullBody> + Send + Sync + 'static,
{
    fn make_rejection(&self, problem: &Problem, parts: &Parts) -> Response<FullBody> {
        self(problem, parts)
    }
}

/// The default [`MakeRejection`]: the problem's own problem+json response
/// ([`Problem::into_response`]).
#[derive(Clone, Copy, Debug, Default)]
pub struct ProblemJson;

impl MakeRejection for ProblemJson {
    fn make_rejection(&self, problem: &Problem, _: &Parts) -> Response<FullBody> {
        problem.clone().into_response()
    }
}

/// Configuration refused at build time: says which setting and why.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConfigError {
    /// The setting that is wrong (e.g. `"jwt secret"`, or a path such as
    /// `"limits.request_per_ip.n"` in a tenant's configuration).
    pub setting: Cow<'static, str>,
    /// What is wrong with it.
    pub reason: Cow<'static, str>,
}

impl ConfigError {
    /// A new error for `setting`.
    pub fn new(setting: &'static str, reason: impl Into<Cow<'static, str>>) -> Self {
        Self {
            setting: Cow::Borrowed(setting),
            reason: reason.into(),
        }
    }

    /// A new error for a setting named at run time (a field path).
    pub fn at(setting: impl Into<Cow<'static, str>>, reason: impl Into<Cow<'static, str>>) -> Self {
        Self {
            setting: setting.into(),
            reason: reason.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid configuration for {}: {}",
            self.setting, self.reason
        )
    }
}

impl std::error::Error for ConfigError {}

/// A handler (or an extractor's rejection) can answer with a [`Problem`].
#[cfg(feature = "axum")]
impl axum::response::IntoResponse for Problem {
    fn into_response(self) -> axum::response::Response {
        Problem::into_response(self).map(axum::body::Body::new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limited_response_has_headers_and_code() {
        let res = Problem::rate_limited(Duration::from_millis(1500)).into_response();
        assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(res.headers()[RETRY_AFTER], "2");
        assert_eq!(res.headers()[CACHE_CONTROL], "no-store");
        assert_eq!(res.headers()[CONTENT_TYPE], "application/problem+json");
    }

    #[test]
    fn a_problem_can_travel_in_response_extensions() {
        fn extension<T: Clone + Send + Sync + 'static>() {}
        extension::<Problem>();
    }

    #[test]
    fn protocol_headers_replace_the_builders() {
        let (parts, ()) = http::Request::new(()).into_parts();
        let problem = Problem::rate_limited(Duration::from_millis(1500)).with_header(
            http::header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer"),
        );
        let mut res = ProblemJson.make_rejection(&problem, &parts);
        assert_eq!(res.headers()[CONTENT_TYPE], "application/problem+json");
        res.headers_mut().append(
            http::header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic"),
        );
        res.headers_mut()
            .insert(RETRY_AFTER, HeaderValue::from_static("0"));
        problem.set_protocol_headers(res.headers_mut());
        let challenges: Vec<_> = res
            .headers()
            .get_all(http::header::WWW_AUTHENTICATE)
            .iter()
            .collect();
        assert_eq!(challenges, ["Bearer"]);
        assert_eq!(res.headers()[RETRY_AFTER], "2");
        assert_eq!(problem.detail(), "Too many requests; retry later.");
    }

    #[test]
    fn retry_after_never_zero() {
        let p = Problem::rate_limited(Duration::ZERO);
        assert_eq!(p.retry_after(), Some(1));
    }

    /// DESIGN.md's table: the one status of every problem `code`.
    const STATUS_OF: &[(&str, u16)] = &[
        ("invalid_request", 400),
        ("invalid_phone", 400),
        ("invalid_email", 400),
        ("invalid_code", 400),
        ("invalid_grant", 400),
        ("rate_limit_key_missing", 400),
        ("invalid_token", 401),
        ("invalid_api_key", 401),
        ("country_not_allowed", 403),
        ("access_denied", 403),
        ("insufficient_scope", 403),
        ("tenant_suspended", 403),
        ("csrf_failed", 403),
        ("not_found", 404),
        ("method_not_allowed", 405),
        ("tenant_exists", 409),
        ("conflict", 409),
        ("body_too_large", 413),
        ("unsupported_media_type", 415),
        ("unprocessable", 422),
        ("invalid_config", 422),
        ("rate_limited", 429),
        ("too_many_attempts", 429),
        ("quota_exceeded", 429),
        ("client_ip_unavailable", 500),
        ("delivery_failed", 502),
        ("store_unavailable", 503),
        ("notifier_unavailable", 503),
        ("unavailable", 503),
    ];

    fn status_of(code: &str) -> u16 {
        STATUS_OF
            .iter()
            .find(|(c, _)| *c == code)
            .map(|(_, s)| *s)
            .unwrap_or_else(|| panic!("problem code {code:?} is not in DESIGN.md's table"))
    }

    fn assert_mapped(p: &Problem) {
        assert_eq!(p.status().as_u16(), status_of(p.code()), "{p}");
        let doc: serde_json::Value = serde_json::from_slice(&p.to_json()).unwrap();
        assert_eq!(doc["status"], p.status().as_u16(), "{p}");
    }

    #[test]
    fn each_named_constructor_has_its_codes_one_status() {
        use crate::identifier::IdentifierError;
        let problems = [
            Problem::invalid_request("x"),
            Problem::unprocessable("x"),
            Problem::body_too_large(1),
            Problem::unsupported_media_type(),
            Problem::rate_limited(Duration::from_secs(1)),
            Problem::store_unavailable(),
            Problem::invalid_token(),
            Problem::no_credentials(),
            Problem::not_found(),
            Problem::method_not_allowed("GET"),
            crate::client_ip::unavailable(),
            IdentifierError::InvalidPhone("x").into(),
            IdentifierError::InvalidEmail("x").into(),
        ];
        for p in &problems {
            assert_mapped(p);
        }
        // Every 401 carries a challenge (RFC 9110 §11.6.1).
        for p in problems
            .iter()
            .filter(|p| p.status() == StatusCode::UNAUTHORIZED)
        {
            let res = p.clone().into_response();
            assert!(
                res.headers().contains_key(http::header::WWW_AUTHENTICATE),
                "{p}"
            );
        }
    }

    /// Every `Problem::new(StatusCode::…, "code", …)` in `src/` (and
    /// `Self::new` in this file) uses the status DESIGN.md gives its code,
    /// so no code comes back with two statuses.
    #[test]
    fn every_literal_problem_in_the_crate_has_its_codes_one_status() {
        fn status(ident: &str) -> u16 {
            match ident {
                "BAD_REQUEST" => 400,
                "UNAUTHORIZED" => 401,
                "FORBIDDEN" => 403,
                "NOT_FOUND" => 404,
                "METHOD_NOT_ALLOWED" => 405,
                "CONFLICT" => 409,
                "PAYLOAD_TOO_LARGE" => 413,
                "UNSUPPORTED_MEDIA_TYPE" => 415,
                "UNPROCESSABLE_ENTITY" => 422,
                "TOO_MANY_REQUESTS" => 429,
                "INTERNAL_SERVER_ERROR" => 500,
                "BAD_GATEWAY" => 502,
                "SERVICE_UNAVAILABLE" => 503,
                other => panic!("no status for StatusCode::{other}"),
            }
        }
        fn visit(dir: &std::path::Path, found: &mut Vec<(String, String, u16)>) {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    visit(&path, found);
                } else if path.extension().is_some_and(|e| e == "rs") {
                    let text = std::fs::read_to_string(&path).unwrap();
                    scan(&path.display().to_string(), &text, found);
                }
            }
        }
        fn scan(file: &str, text: &str, found: &mut Vec<(String, String, u16)>) {
            for (at, _) in text.match_indices("::new(") {
                let rest = text[at + 6..].trim_start();
                let rest = rest.strip_prefix("http::").unwrap_or(rest);
                let Some(rest) = rest.strip_prefix("StatusCode::") else {
                    continue;
                };
                let end = rest
                    .find(|c: char| !(c.is_ascii_uppercase() || c == '_'))
                    .unwrap();
                let ident = &rest[..end];
                let rest = rest[end..]
                    .trim_start()
                    .trim_start_matches(',')
                    .trim_start();
                // A code that is not a literal (identifier.rs picks one of
                // two) is covered by the named-constructor test.
                let Some(rest) = rest.strip_prefix('"') else {
                    continue;
                };
                let code = &rest[..rest.find('"').unwrap()];
                found.push((file.to_owned(), code.to_owned(), status(ident)));
            }
        }
        let mut found = Vec::new();
        visit(
            std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/src")),
            &mut found,
        );
        assert!(found.len() >= 20, "the scan found only {found:?}");
        for (file, code, status) in &found {
            assert_eq!(
                *status,
                status_of(code),
                "{file}: {code:?} answered with {status}"
            );
        }
    }

    #[test]
    fn document_members() {
        let doc: serde_json::Value =
            serde_json::from_slice(&Problem::not_found().to_json()).unwrap();
        assert_eq!(doc["status"], 404);
        assert_eq!(doc["code"], "not_found");
        assert_eq!(doc["title"], "Not Found");
        assert_eq!(doc["type"], "urn:tower-otp:problem:not_found");
    }
}
