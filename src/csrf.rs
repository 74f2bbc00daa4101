//! CSRF defence for cookie-authenticated requests: [`CsrfPolicy`] and
//! [`CsrfLayer`].
//!
//! A browser attaches cookies to requests that other sites trigger, so a
//! request authenticated by a cookie must also prove it comes from the app's
//! own pages. Two checks, both required (OWASP's CSRF cheat sheet):
//!
//! * **Origin**: the `Origin` header names one of the configured origins;
//!   without `Origin`, `Sec-Fetch-Site: same-origin` (Fetch Metadata) is
//!   accepted. Neither header, or `Origin: null`: refused.
//! * **Double-submit token**: the `X-CSRF-Token` header equals the
//!   `otp_csrf` cookie (compared in constant time). Another site can make
//!   the browser *send* the cookie but cannot *read* it to copy it into a
//!   header.
//!
//! A refusal is `403 csrf_failed`. The [`OtpRouter`](crate::otp::OtpRouter)'s
//! browser mode runs the same checks on its cookie-authenticated endpoints
//! (and binds the token to the session); [`CsrfLayer`] runs them for an
//! app's own routes authenticated by a cookie (`JwtLayer::with_cookie`).
//!
//! ```
//! use tower_otp::csrf::{CsrfLayer, CsrfPolicy};
//!
//! let policy = CsrfPolicy::new(["https://app.example.com"])?;
//! // Unsafe methods carrying the `access` cookie (and no `Authorization`)
//! // must pass both checks; everything else passes untouched.
//! let layer = CsrfLayer::new(policy, "access");
//! # let _ = layer;
//! # Ok::<(), tower_otp::error::ConfigError>(())
//! ```

use std::fmt;
use std::sync::Arc;

use http::header::{AUTHORIZATION, HeaderName, ORIGIN};
use http::{HeaderMap, Method, Request, StatusCode};
use subtle::ConstantTimeEq;
use tower::{Layer, Service};

use crate::error::{ConfigError, Problem};
use crate::future::LayerFuture;
use crate::jwt::service::cookie_token;
use crate::refusal::Refusal;

/// The request header carrying the double-submit token.
pub const CSRF_HEADER: HeaderName = HeaderName::from_static("x-csrf-token");

/// The cookie carrying the double-submit token (readable by the app's
/// scripts, so not `HttpOnly`).
pub const CSRF_COOKIE: &str = "otp_csrf";

/// Longest token accepted in the header or the cookie.
const MAX_TOKEN_LEN: usize = 128;

/// The origins whose pages may send cookie-authenticated requests.
#[derive(Clone)]
pub struct CsrfPolicy {
    origins: Arc<[Box<str>]>,
}

impl CsrfPolicy {
    /// Accepts requests from `origins` (`https://host[:port]`; plain `http`
    /// only for `localhost`, `127.0.0.1` and `[::1]`, for development).
    /// Refused: a path, query or trailing `/`, userinfo, another scheme,
    /// `*`, `null`, no origin at all.
    pub fn new<I, T>(origins: I) -> Result<Self, ConfigError>
    where
        I: IntoIterator<Item = T>,
        T: Into<String>,
    {
        let origins = origins
            .into_iter()
            .map(|o| parse_origin(&o.into()))
            .collect::<Result<Vec<_>, _>>()?;
        if origins.is_empty() {
            return Err(ConfigError::new("csrf origins", "at least one origin"));
        }
        Ok(Self {
            origins: origins.into(),
        })
    }

    /// The accepted origins, normalised (lowercase).
    pub fn origins(&self) -> impl Iterator<Item = &str> {
        self.origins.iter().map(|o| &**o)
    }

    /// Whether every accepted origin is a loopback `http://` one (a
    /// development setup, where cookies may go without `Secure`).
    pub(crate) fn only_loopback_http(&self) -> bool {
        self.origins.iter().all(|o| o.starts_with("http://"))
    }

    /// Whether the request comes from an accepted origin: its `Origin` is one
    /// of them, or it has no `Origin` and says `Sec-Fetch-Site: same-origin`.
    pub fn same_origin(&self, headers: &HeaderMap) -> bool {
        match headers.get(ORIGIN) {
            Some(origin) => self.has_origin(origin.as_bytes()),
            None => headers
                .get("sec-fetch-site")
                .is_some_and(|v| v.as_bytes() == b"same-origin"),
        }
    }

    /// Whether `origin` (an `Origin` header's bytes) is accepted.
    pub(crate) fn has_origin(&self, origin: &[u8]) -> bool {
        self.origins
            .iter()
            .any(|o| o.as_bytes().eq_ignore_ascii_case(origin))
    }

    /// Both checks: an accepted origin, and an `X-CSRF-Token` header equal
    /// to the `otp_csrf` cookie. Returns the token (the router also checks
    /// that it belongs to the session); `403 csrf_failed` otherwise.
    pub fn check<'h>(&self, headers: &'h HeaderMap) -> Result<&'h str, Problem> {
        if !self.same_origin(headers) {
            return Err(csrf_failed(
                "The request does not come from an allowed origin.",
            ));
        }
        let header = headers
            .get(&CSRF_HEADER)
            .and_then(|v| v.to_str().ok())
            .filter(|v| !v.is_empty() && v.len() <= MAX_TOKEN_LEN);
        let cookie = cookie_token(headers, CSRF_COOKIE).filter(|v| v.len() <= MAX_TOKEN_LEN);
        match (header, cookie) {
            (Some(h), Some(c)) if bool::from(h.as_bytes().ct_eq(c.as_bytes())) => Ok(h),
            _ => Err(csrf_failed(
                "The X-CSRF-Token header is missing or does not match the otp_csrf cookie.",
            )),
        }
    }
}

impl fmt::Debug for CsrfPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CsrfPolicy")
            .field("origins", &self.origins)
            .finish()
    }
}

/// `403 csrf_failed`.
pub(crate) fn csrf_failed(detail: &'static str) -> Problem {
    Problem::new(StatusCode::FORBIDDEN, "csrf_failed", detail)
}

/// `scheme://host[:port]`, lowercased, or why not.
fn parse_origin(origin: &str) -> Result<Box<str>, ConfigError> {
    let bad = |why: &str| ConfigError::at(format!("csrf origin {origin:?}"), why.to_owned());
    let lower = origin.to_ascii_lowercase();
    let (scheme, rest) = lower
        .split_once("://")
        .ok_or_else(|| bad("must be scheme://host[:port]"))?;
    // `[v6]` or a name / v4 address, then an optional `:port`.
    let host_end = if rest.starts_with('[') {
        rest.find(']').map_or(rest.len(), |i| i + 1)
    } else {
        rest.find(':').unwrap_or(rest.len())
    };
    let (host, port) = rest.split_at(host_end);
    if let Some(digits) = port.strip_prefix(':') {
        if digits.is_empty() || digits.len() > 5 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad("the port must be 1-5 digits"));
        }
    } else if !port.is_empty() {
        return Err(bad("no path, query or trailing '/'"));
    }
    let host_ok = !host.is_empty()
        && (host.len() > 2 && host.starts_with('[') && host.ends_with(']')
            || host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.'));
    if !host_ok {
        return Err(bad(
            "no path, query, userinfo or trailing '/'; a host name or address",
        ));
    }
    match scheme {
        "https" => {}
        "http" if matches!(host, "localhost" | "127.0.0.1" | "[::1]") => {}
        "http" => return Err(bad("plain http only for localhost, 127.0.0.1 and [::1]")),
        _ => return Err(bad("the scheme must be https (or http for loopback)")),
    }
    Ok(lower.into_boxed_str())
}

/// Runs [`CsrfPolicy::check`] on every request that a cookie authenticates:
/// an unsafe method (not `GET`, `HEAD`, `OPTIONS`, `TRACE`) carrying the
/// authentication cookie and no `Authorization` header (a bearer request
/// cannot be forged by another site). Put it outside the layer that reads
/// the cookie (e.g. `JwtLayer::with_cookie`).
#[derive(Clone)]
pub struct CsrfLayer {
    policy: CsrfPolicy,
    auth_cookie: Arc<str>,
    refusal: Refusal,
}

impl CsrfLayer {
    /// Checks requests authenticated by cookie `auth_cookie`.
    pub fn new(policy: CsrfPolicy, auth_cookie: impl Into<String>) -> Self {
        Self {
            policy,
            auth_cookie: auth_cookie.into().into(),
            refusal: Refusal::default(),
        }
    }

    refusal_settings!(events: "nothing", refusals: "`403 csrf_failed`");
}

impl fmt::Debug for CsrfLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CsrfLayer")
            .field("policy", &self.policy)
            .field("auth_cookie", &self.auth_cookie)
            .finish_non_exhaustive()
    }
}

impl<S> Layer<S> for CsrfLayer {
    type Service = Csrf<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Csrf {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service of [`CsrfLayer`].
#[derive(Clone, Debug)]
pub struct Csrf<S> {
    inner: S,
    layer: CsrfLayer,
}

impl<S> Csrf<S> {
    inner_service_accessors!();
}

response_future! {
    /// The response future of [`Csrf`].
    ()
}

/// Whether a request with this method and these headers is authenticated
/// by cookie `auth_cookie` and changes state.
fn needs_check(method: &Method, headers: &HeaderMap, auth_cookie: &str) -> bool {
    !matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE
    ) && !headers.contains_key(AUTHORIZATION)
        && cookie_token(headers, auth_cookie).is_some()
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for Csrf<S>
where
    S: Service<Request<ReqBody>, Response = http::Response<ResBody>>,
{
    refusing_service_items!(ResBody);

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        let layer = &self.layer;
        if needs_check(req.method(), req.headers(), &layer.auth_cookie)
            && let Err(problem) = layer.policy.check(req.headers())
        {
            let (parts, _) = req.into_parts();
            return ResponseFuture::new(LayerFuture::decided(
                layer.refusal.respond(problem, &parts),
            ));
        }
        ResponseFuture::new(LayerFuture::inner(self.inner.call(req), ()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    #[test]
    fn origins_are_checked_at_build() {
        for ok in [
            "https://app.example.com",
            "https://APP.example.com:8443",
            "http://localhost:3000",
            "http://127.0.0.1",
            "http://[::1]:8080",
            "https://[2001:db8::1]",
        ] {
            assert!(CsrfPolicy::new([ok]).is_ok(), "{ok}");
        }
        for bad in [
            "app.example.com",
            "https://app.example.com/",
            "https://app.example.com/login",
            "https://user@app.example.com",
            "http://app.example.com",
            "ftp://localhost",
            "https://app.example.com:",
            "https://app.example.com:123456",
            "null",
            "*",
            "https://",
        ] {
            assert!(CsrfPolicy::new([bad]).is_err(), "{bad}");
        }
        assert!(CsrfPolicy::new(Vec::<String>::new()).is_err());
        let p = CsrfPolicy::new(["https://App.Example.com"]).unwrap();
        assert_eq!(p.origins().collect::<Vec<_>>(), ["https://app.example.com"]);
        assert!(!p.only_loopback_http());
        assert!(
            CsrfPolicy::new(["http://localhost:1"])
                .unwrap()
                .only_loopback_http()
        );
    }

    #[test]
    fn both_checks_are_required() {
        let p = CsrfPolicy::new(["https://app.example.com"]).unwrap();
        let good = [
            ("origin", "https://app.example.com"),
            ("cookie", "a=1; otp_csrf=tok123"),
            ("x-csrf-token", "tok123"),
        ];
        assert_eq!(p.check(&headers(&good)).unwrap(), "tok123");
        // Fetch Metadata stands in for a missing Origin.
        let fetch = [
            ("sec-fetch-site", "same-origin"),
            ("cookie", "otp_csrf=tok123"),
            ("x-csrf-token", "tok123"),
        ];
        assert!(p.check(&headers(&fetch)).is_ok());
        for bad in [
            // Foreign origin.
            &[("origin", "https://evil.example"), good[1], good[2]][..],
            &[("origin", "null"), good[1], good[2]],
            // No origin information at all.
            &[good[1], good[2]],
            &[("sec-fetch-site", "cross-site"), good[1], good[2]],
            // Missing or wrong token.
            &[good[0], good[1]],
            &[good[0], good[2]],
            &[good[0], good[1], ("x-csrf-token", "tok124")],
            &[good[0], ("cookie", "otp_csrf="), ("x-csrf-token", "")],
        ] {
            let err = p.check(&headers(bad)).unwrap_err();
            assert_eq!(
                (err.status(), err.code()),
                (StatusCode::FORBIDDEN, "csrf_failed")
            );
        }
    }

    #[test]
    fn only_cookie_authenticated_unsafe_requests_are_checked() {
        let cookie = [("cookie", "access=jwt")];
        assert!(needs_check(&Method::POST, &headers(&cookie), "access"));
        assert!(needs_check(&Method::DELETE, &headers(&cookie), "access"));
        assert!(!needs_check(&Method::GET, &headers(&cookie), "access"));
        assert!(!needs_check(
            &Method::POST,
            &headers(&[("cookie", "other=1")]),
            "access"
        ));
        assert!(!needs_check(
            &Method::POST,
            &headers(&[cookie[0], ("authorization", "Bearer x")]),
            "access"
        ));
    }

    #[tokio::test]
    async fn the_layer_refuses_forged_cookie_requests_only() {
        use tower::{ServiceExt, service_fn};
        let policy = CsrfPolicy::new(["https://app.example.com"]).unwrap();
        let svc = CsrfLayer::new(policy, "access").layer(service_fn(|_: Request<()>| async {
            Ok::<_, std::convert::Infallible>(http::Response::new(()))
        }));
        let send = |method: Method, pairs: &[(&str, &str)]| {
            let mut req = Request::builder().method(method);
            for (k, v) in pairs {
                req = req.header(*k, *v);
            }
            svc.clone().oneshot(req.body(()).unwrap())
        };
        let forged = [("cookie", "access=jwt"), ("origin", "https://evil.example")];
        let res = send(Method::POST, &forged).await.unwrap();
        assert_eq!(res.status(), StatusCode::FORBIDDEN);
        assert_eq!(
            res.extensions().get::<Problem>().unwrap().code(),
            "csrf_failed"
        );
        for (method, pairs) in [
            (Method::GET, &forged[..]),
            (Method::POST, &[("origin", "https://evil.example")][..]),
            (
                Method::POST,
                &[
                    ("cookie", "access=jwt; otp_csrf=t"),
                    ("origin", "https://app.example.com"),
                    ("x-csrf-token", "t"),
                ][..],
            ),
        ] {
            let res = send(method.clone(), pairs).await.unwrap();
            assert_eq!(res.status(), StatusCode::OK, "{method} {pairs:?}");
        }
    }
}
