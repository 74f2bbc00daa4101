//! Security response headers with safe defaults for APIs (helmet-like).
//!
//! [`SecurityHeadersLayer::new`] adds, to every response:
//!
//! | header | API default |
//! |---|---|
//! | `X-Content-Type-Options` | `nosniff` |
//! | `X-Frame-Options` | `DENY` |
//! | `Strict-Transport-Security` | `max-age=31536000; includeSubDomains` |
//! | `Content-Security-Policy` | `default-src 'none'; frame-ancestors 'none'` |
//! | `Referrer-Policy` | `no-referrer` |
//! | `Cross-Origin-Opener-Policy` | `same-origin` |
//! | `Cross-Origin-Resource-Policy` | `same-origin` |
//! | `X-XSS-Protection` | `0` (the legacy auditor did more harm than good) |
//! | `Permissions-Policy` | `camera=(), microphone=(), geolocation=(), payment=()` |
//!
//! [`SecurityHeadersLayer::html`] is a preset for apps that also serve HTML
//! pages (scripts, styles and images from the same origin, framing by the same
//! origin). Every header can be replaced or removed through
//! [`SecurityHeadersLayer::builder`]; values are parsed and validated once, at
//! build time, and only cloned per response.
//!
//! A header the inner service already set is **left alone** — a handler that
//! deliberately sets its own `Content-Security-Policy` keeps it — unless the
//! layer was built with [`override_existing(true)`](SecurityHeadersBuilder::override_existing)
//! or that one header with [`override_header`](SecurityHeadersBuilder::override_header).
//!
//! ```
//! use http::{Request, Response};
//! use tower::{ServiceBuilder, ServiceExt, service_fn};
//! use tower_otp::security_headers::SecurityHeadersLayer;
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let layer = SecurityHeadersLayer::builder()
//!     .content_security_policy("default-src 'none'; img-src 'self'")
//!     .remove("x-xss-protection")
//!     .build()
//!     .unwrap();
//! let svc = ServiceBuilder::new().layer(layer).service(service_fn(|_req: Request<()>| async {
//!     Ok::<_, std::convert::Infallible>(Response::new(String::from("ok")))
//! }));
//! let res = svc.oneshot(Request::new(())).await.unwrap();
//! assert_eq!(res.headers()["x-frame-options"], "DENY");
//! assert_eq!(res.headers()["content-security-policy"], "default-src 'none'; img-src 'self'");
//! assert!(res.headers().get("x-xss-protection").is_none());
//! # });
//! ```
//!
//! # Security
//!
//! `Strict-Transport-Security` is only honoured by browsers over HTTPS, and
//! once seen it pins the host (and, with `includeSubDomains`, every subdomain)
//! to HTTPS for a year: remove it with `.remove("strict-transport-security")`
//! if some subdomain must stay on plain HTTP. The API default CSP forbids
//! everything, which is right for JSON but breaks any HTML page: use
//! [`SecurityHeadersLayer::html`] (or your own CSP) for pages, rather than
//! turning the headers off.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::header::{
    CONTENT_SECURITY_POLICY, HeaderName, HeaderValue, REFERRER_POLICY, STRICT_TRANSPORT_SECURITY,
    X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS, X_XSS_PROTECTION,
};
use http::{HeaderMap, Request, Response};
use pin_project::pin_project;
use tower::{Layer, Service};

use crate::error::ConfigError;

const CROSS_ORIGIN_OPENER_POLICY: HeaderName =
    HeaderName::from_static("cross-origin-opener-policy");
const CROSS_ORIGIN_RESOURCE_POLICY: HeaderName =
    HeaderName::from_static("cross-origin-resource-policy");
const PERMISSIONS_POLICY: HeaderName = HeaderName::from_static("permissions-policy");

const PERMISSIONS_DEFAULT: &str = "camera=(), microphone=(), geolocation=(), payment=()";
const HSTS_DEFAULT: &str = "max-age=31536000; includeSubDomains";

/// One configured header: its value, and whether it replaces a value the
/// inner service set.
#[derive(Clone, Debug)]
struct Entry {
    name: HeaderName,
    value: HeaderValue,
    force: bool,
}

/// The configured headers, ready to apply.
#[derive(Debug)]
struct Prepared {
    entries: Box<[Entry]>,
    /// The headers as a map, hashed once here: each response starts from a
    /// copy of it and the inner service's headers are laid over it, which
    /// costs fewer hash-and-probe steps than adding ours to its map. Its
    /// index table has room for [`SPARE_HEADERS`] more, so the copy never
    /// rehashes (its entry list, copied without spare capacity, still grows
    /// once: one reallocation, no rehash).
    template: HeaderMap,
    /// Headers of ours that replace the inner service's.
    forced: Box<[HeaderName]>,
}

/// Adds security headers to every response. See the [module docs](self).
#[derive(Clone, Debug)]
#[must_use]
pub struct SecurityHeadersLayer {
    prepared: Arc<Prepared>,
}

impl SecurityHeadersLayer {
    /// The API defaults listed in the [module docs](self).
    pub fn new() -> Self {
        Self::from_entries(api_defaults())
    }

    /// The preset for HTML pages: same-origin scripts, styles, images, fonts
    /// and fetches; framing by the same origin only;
    /// `Referrer-Policy: strict-origin-when-cross-origin`.
    pub fn html() -> Self {
        Self::from_entries(html_defaults())
    }

    /// A builder starting from the API defaults.
    pub fn builder() -> SecurityHeadersBuilder {
        SecurityHeadersBuilder::from_entries(api_defaults())
    }

    /// A builder starting from the [`html`](Self::html) preset.
    pub fn html_builder() -> SecurityHeadersBuilder {
        SecurityHeadersBuilder::from_entries(html_defaults())
    }

    fn from_entries(entries: Vec<Entry>) -> Self {
        // Room for the headers the inner service and the server add
        // (content type and length, rate-limit headers, …): a copy of a map
        // with spare index slots takes them without rehashing. (`Clone`
        // keeps the index table's size but not the entry list's spare
        // capacity, so the first added header reallocates that list once.)
        let mut template = HeaderMap::with_capacity(entries.len() + SPARE_HEADERS);
        for e in &entries {
            template.insert(&e.name, e.value.clone());
        }
        let forced = entries
            .iter()
            .filter(|e| e.force)
            .map(|e| e.name.clone())
            .collect();
        Self {
            prepared: Arc::new(Prepared {
                entries: entries.into(),
                template,
                forced,
            }),
        }
    }

    /// The headers this layer sets, in order.
    pub fn headers(&self) -> impl Iterator<Item = (&HeaderName, &HeaderValue)> {
        self.prepared.entries.iter().map(|e| (&e.name, &e.value))
    }
}

impl Default for SecurityHeadersLayer {
    fn default() -> Self {
        Self::new()
    }
}

fn entry(name: HeaderName, value: &'static str) -> Entry {
    Entry {
        name,
        value: HeaderValue::from_static(value),
        force: false,
    }
}

fn api_defaults() -> Vec<Entry> {
    vec![
        entry(X_CONTENT_TYPE_OPTIONS, "nosniff"),
        entry(X_FRAME_OPTIONS, "DENY"),
        entry(STRICT_TRANSPORT_SECURITY, HSTS_DEFAULT),
        entry(
            CONTENT_SECURITY_POLICY,
            "default-src 'none'; frame-ancestors 'none'",
        ),
        entry(REFERRER_POLICY, "no-referrer"),
        entry(CROSS_ORIGIN_OPENER_POLICY, "same-origin"),
        entry(CROSS_ORIGIN_RESOURCE_POLICY, "same-origin"),
        entry(X_XSS_PROTECTION, "0"),
        entry(PERMISSIONS_POLICY, PERMISSIONS_DEFAULT),
    ]
}

fn html_defaults() -> Vec<Entry> {
    vec![
        entry(X_CONTENT_TYPE_OPTIONS, "nosniff"),
        entry(X_FRAME_OPTIONS, "SAMEORIGIN"),
        entry(STRICT_TRANSPORT_SECURITY, HSTS_DEFAULT),
        entry(
            CONTENT_SECURITY_POLICY,
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'self'; \
             form-action 'self'; frame-ancestors 'self'",
        ),
        entry(REFERRER_POLICY, "strict-origin-when-cross-origin"),
        entry(CROSS_ORIGIN_OPENER_POLICY, "same-origin"),
        entry(CROSS_ORIGIN_RESOURCE_POLICY, "same-origin"),
        entry(X_XSS_PROTECTION, "0"),
        entry(PERMISSIONS_POLICY, PERMISSIONS_DEFAULT),
    ]
}

/// Builds a [`SecurityHeadersLayer`]; the first invalid setting is reported
/// by [`build`](Self::build).
#[derive(Clone, Debug)]
#[must_use]
pub struct SecurityHeadersBuilder {
    entries: Vec<Entry>,
    override_all: bool,
    error: Option<ConfigError>,
}

impl SecurityHeadersBuilder {
    fn from_entries(entries: Vec<Entry>) -> Self {
        Self {
            entries,
            override_all: false,
            error: None,
        }
    }

    fn fail(&mut self, reason: String) {
        if self.error.is_none() {
            self.error = Some(ConfigError::new("security header", reason));
        }
    }

    fn parse_name(&mut self, name: &str) -> Option<HeaderName> {
        match HeaderName::from_bytes(name.as_bytes()) {
            Ok(n) => Some(n),
            Err(_) => {
                self.fail(format!("{name:?} is not a valid header name"));
                None
            }
        }
    }

    /// Sets header `name` to `value`, replacing a default of the same name.
    /// An invalid name or value is reported by [`build`](Self::build).
    pub fn header(mut self, name: &str, value: &str) -> Self {
        let Some(name) = self.parse_name(name) else {
            return self;
        };
        let value = match HeaderValue::from_str(value) {
            Ok(v) => v,
            Err(_) => {
                self.fail(format!("{value:?} is not a valid value for {name}"));
                return self;
            }
        };
        match self.entries.iter_mut().find(|e| e.name == name) {
            Some(e) => e.value = value,
            None => self.entries.push(Entry {
                name,
                value,
                force: false,
            }),
        }
        self
    }

    /// Stops setting header `name`.
    pub fn remove(mut self, name: &str) -> Self {
        if let Some(name) = self.parse_name(name) {
            self.entries.retain(|e| e.name != name);
        }
        self
    }

    /// `Content-Security-Policy`.
    pub fn content_security_policy(self, value: &str) -> Self {
        self.header(CONTENT_SECURITY_POLICY.as_str(), value)
    }

    /// `Strict-Transport-Security`.
    pub fn strict_transport_security(self, value: &str) -> Self {
        self.header(STRICT_TRANSPORT_SECURITY.as_str(), value)
    }

    /// `X-Frame-Options` (`DENY` or `SAMEORIGIN`).
    pub fn frame_options(self, value: &str) -> Self {
        self.header(X_FRAME_OPTIONS.as_str(), value)
    }

    /// `Referrer-Policy`.
    pub fn referrer_policy(self, value: &str) -> Self {
        self.header(REFERRER_POLICY.as_str(), value)
    }

    /// `Permissions-Policy`.
    pub fn permissions_policy(self, value: &str) -> Self {
        self.header(PERMISSIONS_POLICY.as_str(), value)
    }

    /// `Cross-Origin-Opener-Policy`.
    pub fn cross_origin_opener_policy(self, value: &str) -> Self {
        self.header(CROSS_ORIGIN_OPENER_POLICY.as_str(), value)
    }

    /// `Cross-Origin-Resource-Policy`.
    pub fn cross_origin_resource_policy(self, value: &str) -> Self {
        self.header(CROSS_ORIGIN_RESOURCE_POLICY.as_str(), value)
    }

    /// Whether every header replaces a value the inner service already set
    /// (default `false`: the handler's value wins).
    pub fn override_existing(mut self, yes: bool) -> Self {
        self.override_all = yes;
        self
    }

    /// Header `name` (which must be one this layer sets) replaces a value the
    /// inner service already set.
    pub fn override_header(mut self, name: &str) -> Self {
        let Some(name) = self.parse_name(name) else {
            return self;
        };
        match self.entries.iter_mut().find(|e| e.name == name) {
            Some(e) => e.force = true,
            None => self.fail(format!(
                "cannot override {name}: this layer does not set it"
            )),
        }
        self
    }

    /// The layer, or the first invalid setting.
    pub fn build(self) -> Result<SecurityHeadersLayer, ConfigError> {
        if let Some(e) = self.error {
            return Err(e);
        }
        let mut entries = self.entries;
        if self.override_all {
            entries.iter_mut().for_each(|e| e.force = true);
        }
        Ok(SecurityHeadersLayer::from_entries(entries))
    }
}

impl<S> Layer<S> for SecurityHeadersLayer {
    type Service = SecurityHeaders<S>;

    fn layer(&self, inner: S) -> Self::Service {
        SecurityHeaders {
            inner,
            prepared: self.prepared.clone(),
        }
    }
}

/// The service built by [`SecurityHeadersLayer`].
#[derive(Clone, Debug)]
pub struct SecurityHeaders<S> {
    inner: S,
    prepared: Arc<Prepared>,
}

impl<S> SecurityHeaders<S> {
    /// Wraps `inner` with the API defaults.
    pub fn new(inner: S) -> Self {
        SecurityHeadersLayer::new().layer(inner)
    }

    /// A layer with the API defaults.
    pub fn layer() -> SecurityHeadersLayer {
        SecurityHeadersLayer::new()
    }

    inner_service_accessors!();
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for SecurityHeaders<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        ResponseFuture {
            inner: self.inner.call(req),
            prepared: self.prepared.clone(),
        }
    }
}

/// How many headers besides ours a response may carry before its map has to
/// rehash (see [`SecurityHeadersLayer::from_entries`]).
const SPARE_HEADERS: usize = 12;

fn apply(prepared: &Prepared, headers: &mut HeaderMap) {
    let mut merged = prepared.template.clone();
    // A no-op unless the inner service set more headers than we left room for.
    merged.reserve(headers.len());
    // The inner service's headers, every value of each, over ours: its
    // value wins unless ours is forced.
    let mut inner = std::mem::take(headers).into_iter().peekable();
    // The name of a header with more values to come (`None` names follow).
    let mut current: Option<(HeaderName, bool)> = None;
    while let Some((name, value)) = inner.next() {
        if let Some(name) = name {
            let forced = prepared.forced.contains(&name);
            current = matches!(inner.peek(), Some((None, _))).then(|| (name.clone(), forced));
            if !forced {
                merged.insert(name, value);
            }
        } else if let Some((name, false)) = &current {
            merged.append(name, value);
        }
    }
    *headers = merged;
}

/// Response future of [`SecurityHeaders`].
#[pin_project]
#[derive(Debug)]
pub struct ResponseFuture<F> {
    #[pin]
    inner: F,
    prepared: Arc<Prepared>,
}

impl<F, B, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<B>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let mut res = std::task::ready!(this.inner.poll(cx))?;
        apply(this.prepared, res.headers_mut());
        Poll::Ready(Ok(res))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::convert::Infallible;

    use http::StatusCode;
    use tower::{ServiceExt, service_fn};

    use super::*;

    async fn run(layer: SecurityHeadersLayer, csp: Option<&'static str>) -> Response<String> {
        let svc = layer.layer(service_fn(move |_req: Request<()>| async move {
            let mut res = Response::new(String::from("ok"));
            if let Some(csp) = csp {
                res.headers_mut()
                    .insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static(csp));
            }
            Ok::<_, Infallible>(res)
        }));
        svc.oneshot(Request::new(())).await.unwrap()
    }

    #[tokio::test]
    async fn api_defaults_on_every_response() {
        let res = run(SecurityHeadersLayer::new(), None).await;
        let h = res.headers();
        assert_eq!(h["x-content-type-options"], "nosniff");
        assert_eq!(h["x-frame-options"], "DENY");
        assert_eq!(
            h["strict-transport-security"],
            "max-age=31536000; includeSubDomains"
        );
        assert_eq!(
            h["content-security-policy"],
            "default-src 'none'; frame-ancestors 'none'"
        );
        assert_eq!(h["referrer-policy"], "no-referrer");
        assert_eq!(h["cross-origin-opener-policy"], "same-origin");
        assert_eq!(h["cross-origin-resource-policy"], "same-origin");
        assert_eq!(h["x-xss-protection"], "0");
        assert_eq!(h["permissions-policy"], PERMISSIONS_DEFAULT);
        assert_eq!(h.len(), 9);
    }

    #[tokio::test]
    async fn inner_header_is_left_alone() {
        let res = run(SecurityHeadersLayer::new(), Some("default-src 'self'")).await;
        assert_eq!(
            res.headers()["content-security-policy"],
            "default-src 'self'"
        );
        assert_eq!(res.headers()["x-frame-options"], "DENY");
    }

    #[tokio::test]
    async fn override_existing_replaces_inner_header() {
        let layer = SecurityHeadersLayer::builder()
            .override_existing(true)
            .build()
            .unwrap();
        let res = run(layer, Some("default-src 'self'")).await;
        assert_eq!(
            res.headers()["content-security-policy"],
            "default-src 'none'; frame-ancestors 'none'"
        );
        assert_eq!(
            res.headers()
                .get_all(CONTENT_SECURITY_POLICY)
                .iter()
                .count(),
            1
        );
    }

    #[tokio::test]
    async fn per_header_override() {
        let layer = SecurityHeadersLayer::builder()
            .content_security_policy("default-src 'none'; sandbox")
            .override_header("Content-Security-Policy")
            .build()
            .unwrap();
        let res = run(layer, Some("default-src *")).await;
        assert_eq!(
            res.headers()["content-security-policy"],
            "default-src 'none'; sandbox"
        );
    }

    #[tokio::test]
    async fn builder_replaces_removes_and_adds() {
        let layer = SecurityHeadersLayer::builder()
            .frame_options("SAMEORIGIN")
            .remove("strict-transport-security")
            .header("X-Permitted-Cross-Domain-Policies", "none")
            .build()
            .unwrap();
        let res = run(layer, None).await;
        let h = res.headers();
        assert_eq!(h["x-frame-options"], "SAMEORIGIN");
        assert!(h.get("strict-transport-security").is_none());
        assert_eq!(h["x-permitted-cross-domain-policies"], "none");
    }

    #[tokio::test]
    async fn html_preset_allows_same_origin_assets() {
        let res = run(SecurityHeadersLayer::html(), None).await;
        let h = res.headers();
        assert_eq!(h["x-frame-options"], "SAMEORIGIN");
        let csp = h["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("script-src 'self'"), "{csp}");
        assert!(csp.contains("style-src 'self'"), "{csp}");
        assert!(csp.contains("frame-ancestors 'self'"), "{csp}");
        assert_eq!(h["referrer-policy"], "strict-origin-when-cross-origin");
    }

    #[test]
    fn invalid_values_are_config_errors() {
        let err = SecurityHeadersLayer::builder()
            .content_security_policy("default-src 'none'\r\nX-Evil: 1")
            .build()
            .unwrap_err();
        assert_eq!(err.setting, "security header");
        assert!(err.reason.contains("content-security-policy"), "{err}");

        let err = SecurityHeadersLayer::builder()
            .header("bad name", "x")
            .build()
            .unwrap_err();
        assert!(err.reason.contains("bad name"), "{err}");

        let err = SecurityHeadersLayer::builder()
            .override_header("x-unknown")
            .build()
            .unwrap_err();
        assert!(err.reason.contains("does not set"), "{err}");
    }

    #[tokio::test]
    async fn error_statuses_get_headers_too() {
        let svc = SecurityHeaders::new(service_fn(|_req: Request<()>| async {
            let mut res = Response::new(String::new());
            *res.status_mut() = StatusCode::NOT_FOUND;
            Ok::<_, Infallible>(res)
        }));
        let res = svc.oneshot(Request::new(())).await.unwrap();
        assert_eq!(res.status(), StatusCode::NOT_FOUND);
        assert_eq!(res.headers()["x-content-type-options"], "nosniff");
    }

    #[tokio::test]
    async fn every_value_of_the_inner_headers_survives() {
        let inner = |_req: Request<()>| async {
            let mut res = Response::new(String::from("ok"));
            let h = res.headers_mut();
            h.append("set-cookie", HeaderValue::from_static("a=1"));
            h.append("set-cookie", HeaderValue::from_static("b=2"));
            h.append(
                CONTENT_SECURITY_POLICY,
                HeaderValue::from_static("img-src *"),
            );
            h.append(
                CONTENT_SECURITY_POLICY,
                HeaderValue::from_static("script-src 'self'"),
            );
            Ok::<_, Infallible>(res)
        };
        let values = |res: &Response<String>, name: &str| -> Vec<String> {
            res.headers()
                .get_all(name)
                .iter()
                .map(|v| v.to_str().unwrap().to_owned())
                .collect()
        };
        let kept = SecurityHeadersLayer::new()
            .layer(service_fn(inner))
            .oneshot(Request::new(()))
            .await
            .unwrap();
        assert_eq!(values(&kept, "set-cookie"), ["a=1", "b=2"]);
        assert_eq!(
            values(&kept, "content-security-policy"),
            ["img-src *", "script-src 'self'"]
        );
        assert_eq!(values(&kept, "x-frame-options"), ["DENY"]);

        let forced = SecurityHeadersLayer::builder()
            .override_header("content-security-policy")
            .build()
            .unwrap()
            .layer(service_fn(inner))
            .oneshot(Request::new(()))
            .await
            .unwrap();
        assert_eq!(values(&forced, "set-cookie"), ["a=1", "b=2"]);
        assert_eq!(
            values(&forced, "content-security-policy"),
            ["default-src 'none'; frame-ancestors 'none'"]
        );
    }

    #[test]
    fn a_typical_response_fits_without_regrowing() {
        // What a handler plus two rate-limit headers and the server's
        // content-length add: room was left for them in the template.
        let prepared = &SecurityHeadersLayer::new().prepared;
        let mut headers = HeaderMap::new();
        for name in [
            "content-type",
            "ratelimit-policy",
            "ratelimit",
            "x-request-id",
        ] {
            headers.insert(name, HeaderValue::from_static("v"));
        }
        apply(prepared, &mut headers);
        assert_eq!(headers.len(), prepared.entries.len() + 4);
        let capacity = headers.capacity();
        assert_eq!(capacity, prepared.template.capacity());
        headers.insert(http::header::CONTENT_LENGTH, HeaderValue::from_static("13"));
        assert_eq!(
            headers.capacity(),
            capacity,
            "content-length made the map regrow"
        );
    }
}
