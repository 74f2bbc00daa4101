//! Browser mode: the refresh token in an `HttpOnly` cookie instead of the
//! JSON body, and CSRF checks on the requests that cookie authenticates.

use std::fmt::Write as _;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use http::header::{HeaderValue, ORIGIN, SET_COOKIE};
use http::{HeaderMap, Response};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::csrf::{CSRF_COOKIE, CsrfPolicy, csrf_failed};
use crate::error::{ConfigError, Problem};
use crate::jwt::service::cookie_token;

/// The cookie that carries the refresh token in browser mode.
pub const REFRESH_COOKIE: &str = "otp_refresh";

/// Browser mode for [`OtpRouterBuilder::browser_mode`](super::OtpRouterBuilder::browser_mode).
///
/// A verify or refresh request whose `Origin` is one of the allowed origins
/// gets the refresh token as a cookie — `otp_refresh`, `HttpOnly; Secure;
/// SameSite=Strict; Path=<mount>/token`, so scripts never see it (NIST SP
/// 800-63B-4 §7.1: no session secrets in HTML5 storage) — and not in the
/// body. The body carries a `csrf_token` instead, also set as the
/// `otp_csrf` cookie (`Path=/`, readable by the page's scripts). A refresh
/// with an empty body then reads the token from the cookie and must pass
/// the CSRF checks of [`crate::csrf`]: an allowed `Origin` (or
/// `Sec-Fetch-Site: same-origin`) and an `X-CSRF-Token` header equal to the
/// `otp_csrf` cookie and bound to the session; else `403 csrf_failed`.
/// Logout answers with both cookies cleared.
///
/// Requests without an allowed `Origin` — mobile apps, servers, `curl` —
/// keep the JSON contract, so one router serves both.
///
/// ```
/// use tower_otp::otp::{BrowserMode, OtpRouter};
/// # use tower_otp::{notify::LogNotifier, store::MemoryStore};
///
/// let auth = OtpRouter::builder(MemoryStore::new(), LogNotifier)
///     .secret(rand::random::<[u8; 32]>())
///     .browser_mode(BrowserMode::new("/auth").allow_origin("https://app.example.com"))
///     .build()?;
/// # let _ = auth;
/// # Ok::<(), tower_otp::error::ConfigError>(())
/// ```
#[derive(Clone, Debug)]
#[must_use]
pub struct BrowserMode {
    mount: String,
    origins: Vec<String>,
    insecure_localhost: bool,
}

impl BrowserMode {
    /// Browser mode for a router mounted at `mount_path` (e.g. `"/auth"`,
    /// where `Router::nest_service` puts it): the refresh cookie's `Path` is
    /// `<mount_path>/token`.
    pub fn new(mount_path: impl Into<String>) -> Self {
        Self {
            mount: mount_path.into(),
            origins: Vec::new(),
            insecure_localhost: false,
        }
    }

    /// Lets pages of `origin` (`https://host[:port]`, or `http://` for
    /// `localhost`, `127.0.0.1`, `[::1]`) use the cookies. At least one.
    pub fn allow_origin(mut self, origin: impl Into<String>) -> Self {
        self.origins.push(origin.into());
        self
    }

    /// Development only: sets the cookies without `Secure`, for a page
    /// served over plain `http://` on loopback. Refused at build unless
    /// *every* allowed origin is a loopback `http://` one, so it cannot
    /// weaken a deployment with a real origin.
    pub fn insecure_localhost_cookies(mut self, on: bool) -> Self {
        self.insecure_localhost = on;
        self
    }

    /// Checks the settings; `csrf_key` binds CSRF tokens to sessions.
    pub(crate) fn build(self, csrf_key: &[u8; 32]) -> Result<Browser, ConfigError> {
        let mount = self.mount.trim_end_matches('/');
        let mount_ok = self.mount.starts_with('/')
            && self.mount.bytes().all(|b| {
                b.is_ascii_alphanumeric() || matches!(b, b'/' | b'-' | b'_' | b'.' | b'~')
            });
        if !mount_ok {
            return Err(ConfigError::new(
                "browser_mode mount path",
                "must start with '/' and hold only letters, digits and / - _ . ~",
            ));
        }
        if self.origins.is_empty() {
            return Err(ConfigError::new(
                "browser_mode origins",
                "allow at least one origin (the app's pages)",
            ));
        }
        let policy = CsrfPolicy::new(self.origins)?;
        if self.insecure_localhost && !policy.only_loopback_http() {
            return Err(ConfigError::new(
                "browser_mode insecure_localhost_cookies",
                "only when every allowed origin is http://localhost, http://127.0.0.1 or http://[::1]",
            ));
        }
        Ok(Browser {
            policy,
            refresh_path: format!("{mount}/token"),
            attributes: if self.insecure_localhost {
                "; SameSite=Strict"
            } else {
                "; Secure; SameSite=Strict"
            },
            csrf_key: Hmac::new_from_slice(csrf_key).expect("HMAC accepts any key length"),
        })
    }
}

/// Browser mode as the router runs it.
pub(crate) struct Browser {
    policy: CsrfPolicy,
    refresh_path: String,
    /// `Secure` (unless relaxed for loopback development) and `SameSite`.
    attributes: &'static str,
    csrf_key: Hmac<Sha256>,
}

impl Browser {
    /// Whether this request comes from an allowed page, so its tokens go
    /// into cookies: its `Origin` is allowed.
    pub(crate) fn is_page_request(&self, headers: &HeaderMap) -> bool {
        headers
            .get(ORIGIN)
            .is_some_and(|o| self.policy.has_origin(o.as_bytes()))
    }

    /// The refresh token of the request's cookie, if any.
    pub(crate) fn refresh_cookie<'h>(&self, headers: &'h HeaderMap) -> Option<&'h str> {
        cookie_token(headers, REFRESH_COOKIE)
    }

    /// The CSRF token of session `sid`: HMAC under the router's CSRF key, so
    /// a token planted by a sibling subdomain (cookie tossing) does not
    /// match the session it is sent with.
    pub(crate) fn csrf_token(&self, sid: &str) -> String {
        let mut mac = self.csrf_key.clone();
        mac.update(sid.as_bytes());
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    }

    /// The CSRF checks of a request authenticated by the refresh cookie of
    /// session `sid`.
    pub(crate) fn check(&self, headers: &HeaderMap, sid: &str) -> Result<(), Problem> {
        let presented = self.policy.check(headers)?;
        if bool::from(presented.as_bytes().ct_eq(self.csrf_token(sid).as_bytes())) {
            Ok(())
        } else {
            Err(csrf_failed(
                "The CSRF token does not belong to this session.",
            ))
        }
    }

    /// Sets the refresh cookie (`refresh` for `max_age` seconds) and the
    /// CSRF cookie of session `sid`.
    pub(crate) fn set_cookies<B>(
        &self,
        res: &mut Response<B>,
        refresh: &str,
        csrf: &str,
        max_age: u64,
    ) {
        self.push(
            res,
            REFRESH_COOKIE,
            refresh,
            &self.refresh_path,
            max_age,
            true,
        );
        self.push(res, CSRF_COOKIE, csrf, "/", max_age, false);
    }

    /// Clears both cookies.
    pub(crate) fn clear_cookies<B>(&self, res: &mut Response<B>) {
        self.push(res, REFRESH_COOKIE, "", &self.refresh_path, 0, true);
        self.push(res, CSRF_COOKIE, "", "/", 0, false);
    }

    fn push<B>(
        &self,
        res: &mut Response<B>,
        name: &str,
        value: &str,
        path: &str,
        max_age: u64,
        http_only: bool,
    ) {
        let mut cookie = String::with_capacity(160);
        let _ = write!(cookie, "{name}={value}; Path={path}; Max-Age={max_age}");
        if http_only {
            cookie.push_str("; HttpOnly");
        }
        cookie.push_str(self.attributes);
        // Every part is token characters or checked at build: valid.
        if let Ok(value) = HeaderValue::try_from(cookie) {
            res.headers_mut().append(SET_COOKIE, value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: [u8; 32] = [7; 32];

    #[test]
    fn settings_are_checked() {
        let ok = BrowserMode::new("/auth").allow_origin("https://app.example.com");
        assert!(ok.clone().build(&KEY).is_ok());
        assert!(BrowserMode::new("/auth").build(&KEY).is_err(), "no origin");
        for bad in ["auth", "/a;b", "/a b", ""] {
            assert!(
                BrowserMode::new(bad)
                    .allow_origin("https://app.example.com")
                    .build(&KEY)
                    .is_err(),
                "{bad:?}"
            );
        }
        assert!(
            ok.insecure_localhost_cookies(true).build(&KEY).is_err(),
            "Secure may not be dropped for a real origin"
        );
        let dev = BrowserMode::new("/auth/")
            .allow_origin("http://127.0.0.1:3000")
            .allow_origin("http://localhost:3000")
            .insecure_localhost_cookies(true)
            .build(&KEY)
            .unwrap();
        assert_eq!(dev.refresh_path, "/auth/token");
        assert!(!dev.attributes.contains("Secure"));
    }

    #[test]
    fn cookies_carry_their_attributes() {
        let b = BrowserMode::new("/auth")
            .allow_origin("https://app.example.com")
            .build(&KEY)
            .unwrap();
        let mut res = Response::new(());
        b.set_cookies(&mut res, "sid.secret", "csrf", 600);
        b.clear_cookies(&mut res);
        let set: Vec<_> = res.headers().get_all(SET_COOKIE).iter().collect();
        assert_eq!(
            set,
            [
                "otp_refresh=sid.secret; Path=/auth/token; Max-Age=600; HttpOnly; Secure; SameSite=Strict",
                "otp_csrf=csrf; Path=/; Max-Age=600; Secure; SameSite=Strict",
                "otp_refresh=; Path=/auth/token; Max-Age=0; HttpOnly; Secure; SameSite=Strict",
                "otp_csrf=; Path=/; Max-Age=0; Secure; SameSite=Strict",
            ]
        );
    }

    #[test]
    fn csrf_tokens_are_bound_to_the_session() {
        let b = BrowserMode::new("/auth")
            .allow_origin("https://app.example.com")
            .build(&KEY)
            .unwrap();
        let token = b.csrf_token("sid-1");
        assert_ne!(token, b.csrf_token("sid-2"));
        let mut h = HeaderMap::new();
        h.insert(ORIGIN, HeaderValue::from_static("https://app.example.com"));
        h.insert(
            "cookie",
            HeaderValue::from_str(&format!("otp_csrf={token}")).unwrap(),
        );
        h.insert("x-csrf-token", HeaderValue::from_str(&token).unwrap());
        assert!(b.check(&h, "sid-1").is_ok());
        assert_eq!(b.check(&h, "sid-2").unwrap_err().code(), "csrf_failed");
    }
}
