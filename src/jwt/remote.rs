//! [`Jwks`]: the verification keys of a remote JWK Set document, for a
//! [`JwtLayer`](super::JwtLayer) in a service that must not hold the
//! signing key.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use bytes::Bytes;
use http::header::{ACCEPT, USER_AGENT};
use http::{Request, StatusCode};
use http_body_util::Full;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

use super::jwk::{ParseError, parse_jwks};
use super::keys::KeySet;
use crate::clock::{Clock, SystemClock};
use crate::error::ConfigError;
use crate::notify::http_client::{HttpClient, USER_AGENT_VALUE, base_url};

/// How old the keys may get before a request starts a refresh in the
/// background, unless set with [`JwksBuilder::refresh_interval`].
pub const DEFAULT_REFRESH_INTERVAL: Duration = Duration::from_secs(300);

/// Least time between two fetches, unless set with
/// [`JwksBuilder::min_refresh_interval`]: however many tokens name unknown
/// keys, the document is fetched at most once in this time.
pub const DEFAULT_MIN_REFRESH_INTERVAL: Duration = Duration::from_secs(30);

/// Time for one fetch, connection included, unless set with
/// [`JwksBuilder::request_timeout`].
pub const DEFAULT_JWKS_TIMEOUT: Duration = Duration::from_secs(5);

/// No fetch yet (a time no clock reads).
const NEVER: u64 = u64::MAX;

/// Why a fetch of the JWK Set failed. The keys fetched before stay in use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum JwksError {
    /// No answer: connection refused or failed, TLS refused, timed out.
    Unreachable,
    /// An answer other than `200 OK` (redirects are not followed).
    Status(u16),
    /// The body was larger than 64 KiB, cut short, or late.
    Body,
    /// The body is not a JWK Set (`{"keys":[…]}`).
    NotJwks,
    /// A JWK Set without any EdDSA or ES256 verification key.
    NoUsableKeys,
}

impl fmt::Display for JwksError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unreachable => f.write_str("JWKS endpoint unreachable"),
            Self::Status(status) => write!(f, "JWKS endpoint answered {status}"),
            Self::Body => f.write_str("JWKS response body too large, cut short or late"),
            Self::NotJwks => f.write_str("JWKS response is not a JWK Set"),
            Self::NoUsableKeys => f.write_str("JWKS holds no EdDSA or ES256 verification key"),
        }
    }
}

impl std::error::Error for JwksError {}

/// The keys in use and a number that changes whenever they do (the
/// verified-token cache re-verifies a token cached under another number, so
/// a key dropped from the document stops verifying its cached tokens too).
pub(crate) struct Current {
    pub(crate) keys: KeySet,
    pub(crate) generation: u64,
}

/// The EdDSA and ES256 verification keys of a remote JWK Set document
/// (RFC 7517), fetched over HTTPS and cached, for
/// [`JwtLayer::from_jwks`](super::JwtLayer::from_jwks). Clones share the
/// keys, the cache and the fetches.
///
/// * **Fetched on demand.** A token whose `kid` is not among the keys makes
///   the layer fetch the document and verify the token with what it gets;
///   requests that miss while a fetch is under way wait for that fetch (one
///   flight). Fetches are at least
///   [`min_refresh_interval`](JwksBuilder::min_refresh_interval) apart
///   (30 s by default), so a flood of tokens with forged `kid`s costs at
///   most one fetch per interval — the other misses are refused at once,
///   without I/O.
/// * **Refreshed.** A request that finds the keys older than
///   [`refresh_interval`](JwksBuilder::refresh_interval) (5 minutes) starts
///   a fetch in the background and is served with the keys at hand; a key
///   dropped from the document stops verifying after that refresh.
/// * **Fails closed.** A failed fetch (unreachable, not `200`, over 64 KiB,
///   not a JWK Set, no usable key) keeps the keys fetched before; a `kid`
///   that is not among them is refused (`401`). The first fetch happens with
///   the first request, or with [`refresh`](Self::refresh) at start-up.
/// * **Only EdDSA and ES256.** Ed25519 (`OKP`) and P-256 (`EC`) keys with a
///   `kid`, an `alg` (when given) of their curve and `use` (when given)
///   `sig`; RSA, `oct` and every other key are ignored, as is a key that
///   publishes its private half. Each key verifies only tokens of its own
///   algorithm.
///
/// ```no_run
/// use tower_otp::jwt::{Jwks, JwtLayer, Validation};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let jwks = Jwks::builder("https://auth.example/auth/.well-known/jwks.json").build()?;
/// // Optional: fail at start-up rather than with the first request.
/// jwks.refresh().await?;
/// let layer = JwtLayer::<serde_json::Value>::from_jwks(
///     jwks,
///     Validation::default().issuer("https://auth.example"),
/// );
/// # let _ = layer;
/// # Ok(())
/// # }
/// ```
///
/// # Security
///
/// The document decides which tokens verify: fetch it over HTTPS only
/// (plain `http://` is refused except to a loopback address or after
/// [`allow_http`](JwksBuilder::allow_http)), from the issuer you trust, and
/// configure the issuer (and audience) in the layer's
/// [`Validation`](super::Validation) as well.
#[derive(Clone)]
pub struct Jwks {
    shared: Arc<Shared>,
}

struct Shared {
    url: String,
    client: HttpClient,
    timeout: Duration,
    refresh_us: u64,
    min_us: u64,
    clock: Arc<dyn Clock>,
    current: RwLock<Arc<Current>>,
    /// Clock µs when the last fetch started ([`NEVER`] before the first).
    attempted_us: AtomicU64,
    /// Clock µs of the last successful fetch ([`NEVER`] before the first).
    fetched_us: AtomicU64,
    /// Held for the whole of a fetch: concurrent misses queue here and
    /// share its result.
    fetch: tokio::sync::Mutex<()>,
    /// A background refresh is spawned and not finished.
    background: AtomicBool,
}

/// Settings of a [`Jwks`]; see [`Jwks::builder`].
#[must_use]
pub struct JwksBuilder {
    url: String,
    allow_http: bool,
    roots: Vec<String>,
    refresh_interval: Duration,
    min_refresh_interval: Duration,
    timeout: Duration,
    clock: Arc<dyn Clock>,
}

impl fmt::Debug for JwksBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwksBuilder")
            .field("url", &self.url)
            .field("allow_http", &self.allow_http)
            .field("root_certificates", &self.roots.len())
            .field("refresh_interval", &self.refresh_interval)
            .field("min_refresh_interval", &self.min_refresh_interval)
            .field("request_timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl JwksBuilder {
    /// Refresh keys older than this in the background (default
    /// [`DEFAULT_REFRESH_INTERVAL`], 5 minutes; at least the minimum
    /// interval).
    pub fn refresh_interval(mut self, interval: Duration) -> Self {
        self.refresh_interval = interval;
        self
    }

    /// Least time between two fetches (default
    /// [`DEFAULT_MIN_REFRESH_INTERVAL`], 30 s; at least 1 s): the bound on
    /// the I/O that tokens with unknown `kid`s can cause.
    pub fn min_refresh_interval(mut self, interval: Duration) -> Self {
        self.min_refresh_interval = interval;
        self
    }

    /// Time for one fetch, connection included (default
    /// [`DEFAULT_JWKS_TIMEOUT`], 5 s). Requests waiting for a fetch wait at
    /// most this long.
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Also accepts a plain `http://` URL to a host that is not loopback
    /// (a sidecar on a private network). Anyone on the path can then replace
    /// the keys: avoid it.
    pub fn allow_http(mut self) -> Self {
        self.allow_http = true;
        self
    }

    /// Trusts the CA certificate(s) in `pem` — and only the certificates
    /// given this way — instead of the Mozilla roots: an issuer behind a
    /// private CA. May be called several times.
    pub fn root_certificate_pem(mut self, pem: impl Into<String>) -> Self {
        self.roots.push(pem.into());
        self
    }

    /// The clock fetch times are measured on (default [`SystemClock`];
    /// tests use `ManualClock`).
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Checks the settings. Nothing is fetched yet.
    pub fn build(self) -> Result<Jwks, ConfigError> {
        let url = check_url(&self.url, self.allow_http)?;
        if self.min_refresh_interval < Duration::from_secs(1) {
            return Err(ConfigError::new(
                "jwks min_refresh_interval",
                "must be at least 1 s",
            ));
        }
        if self.refresh_interval < self.min_refresh_interval {
            return Err(ConfigError::new(
                "jwks refresh_interval",
                "must be at least min_refresh_interval",
            ));
        }
        if self.timeout.is_zero() {
            return Err(ConfigError::new("jwks request_timeout", "must not be zero"));
        }
        let client = if self.roots.is_empty() {
            HttpClient::shared()?
        } else {
            let mut roots = Vec::new();
            for pem in &self.roots {
                let before = roots.len();
                for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
                    roots.push(cert.map_err(|_| {
                        ConfigError::new("jwks root_certificate", "not a PEM certificate")
                    })?);
                }
                if roots.len() == before {
                    return Err(ConfigError::new(
                        "jwks root_certificate",
                        "no PEM CERTIFICATE block",
                    ));
                }
            }
            HttpClient::with_roots(roots)?
        };
        let micros = |d: Duration| u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        Ok(Jwks {
            shared: Arc::new(Shared {
                url,
                client,
                timeout: self.timeout,
                refresh_us: micros(self.refresh_interval),
                min_us: micros(self.min_refresh_interval),
                clock: self.clock,
                current: RwLock::new(Arc::new(Current {
                    keys: KeySet::default(),
                    generation: 0,
                })),
                attempted_us: AtomicU64::new(NEVER),
                fetched_us: AtomicU64::new(NEVER),
                fetch: tokio::sync::Mutex::new(()),
                background: AtomicBool::new(false),
            }),
        })
    }
}

/// The URL, checked: `https://`, or `http://` to a loopback host (or any
/// host with `allow_http`); no credentials, no query.
fn check_url(url: &str, allow_http: bool) -> Result<String, ConfigError> {
    let url = base_url(url, "jwks url")?;
    let uri: http::Uri = url
        .parse()
        .map_err(|_| ConfigError::new("jwks url", "not a valid URL"))?;
    if uri.scheme_str() == Some("http") && !allow_http && !is_loopback(uri.host().unwrap_or("")) {
        return Err(ConfigError::new(
            "jwks url",
            "must start with https:// (http:// only to a loopback address, or with allow_http)",
        ));
    }
    Ok(url)
}

fn is_loopback(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Whether `now` is less than `span` µs after `then`. A clock that went
/// back before `then` (a system clock stepped back) counts as past the
/// span, or no fetch would happen until it caught up again.
fn within(then: u64, now: u64, span: u64) -> bool {
    now >= then && now - then < span
}

impl Jwks {
    /// Starts configuring the keys of the JWK Set at `url` (e.g.
    /// `https://auth.example/auth/.well-known/jwks.json`).
    pub fn builder(url: impl Into<String>) -> JwksBuilder {
        JwksBuilder {
            url: url.into(),
            allow_http: false,
            roots: Vec::new(),
            refresh_interval: DEFAULT_REFRESH_INTERVAL,
            min_refresh_interval: DEFAULT_MIN_REFRESH_INTERVAL,
            timeout: DEFAULT_JWKS_TIMEOUT,
            clock: Arc::new(SystemClock),
        }
    }

    /// Fetches the document now (after a fetch under way, if any), whatever
    /// the minimum interval, and returns how many keys it gave. On failure
    /// the keys fetched before stay in use.
    pub async fn refresh(&self) -> Result<usize, JwksError> {
        let _flight = self.shared.fetch.lock().await;
        self.fetch_and_install().await
    }

    /// The `kid`s of the keys in use.
    pub fn kids(&self) -> Vec<String> {
        self.current().keys.iter().map(|k| k.kid.clone()).collect()
    }

    pub(crate) fn current(&self) -> Arc<Current> {
        let current = self
            .shared
            .current
            .read()
            .unwrap_or_else(|e| e.into_inner());
        Arc::clone(&current)
    }

    /// Whether a request whose `kid` is unknown should wait for a fetch:
    /// one is under way, or the last started at least the minimum interval
    /// ago. Otherwise it is refused at once.
    pub(crate) fn miss_should_wait(&self) -> bool {
        self.fetch_due(self.shared.clock.now_us()) || self.shared.fetch.try_lock().is_err()
    }

    /// After a miss: fetches unless another fetch started within the
    /// minimum interval — in particular one that this caller waited for.
    pub(crate) async fn refresh_after_miss(&self) {
        let _flight = self.shared.fetch.lock().await;
        if self.fetch_due(self.shared.clock.now_us()) {
            let _ = self.fetch_and_install().await;
        }
    }

    /// On every request: when the keys are older than the refresh interval
    /// (and no fetch is due to wait for), a refresh starts in the
    /// background. Needs a Tokio runtime; without one the keys refresh on
    /// the next miss.
    pub(crate) fn refresh_if_stale(&self) {
        let now = self.shared.clock.now_us();
        let fetched = self.shared.fetched_us.load(Ordering::Acquire);
        let stale = fetched == NEVER || !within(fetched, now, self.shared.refresh_us);
        if !stale || !self.fetch_due(now) || self.shared.background.swap(true, Ordering::AcqRel) {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            self.shared.background.store(false, Ordering::Release);
            return;
        };
        let jwks = self.clone();
        runtime.spawn(async move {
            jwks.refresh_after_miss().await;
            jwks.shared.background.store(false, Ordering::Release);
        });
    }

    fn fetch_due(&self, now: u64) -> bool {
        let attempted = self.shared.attempted_us.load(Ordering::Acquire);
        attempted == NEVER || !within(attempted, now, self.shared.min_us)
    }

    /// One fetch; the caller holds the flight lock.
    async fn fetch_and_install(&self) -> Result<usize, JwksError> {
        let shared = &*self.shared;
        shared
            .attempted_us
            .store(shared.clock.now_us(), Ordering::Release);
        let keys = match self.fetch().await {
            Ok(keys) => keys,
            Err(err) => {
                tracing::warn!(target: "tower_otp", url = %shared.url, error = %err, "JWKS fetch failed; keeping the keys fetched before");
                return Err(err);
            }
        };
        let count = keys.len();
        let mut current = shared.current.write().unwrap_or_else(|e| e.into_inner());
        if !current.keys.same_public_keys(&keys) {
            tracing::info!(target: "tower_otp", url = %shared.url, keys = count, "JWKS keys changed");
            *current = Arc::new(Current {
                keys,
                generation: current.generation + 1,
            });
        }
        drop(current);
        shared
            .fetched_us
            .store(shared.clock.now_us(), Ordering::Release);
        Ok(count)
    }

    async fn fetch(&self) -> Result<KeySet, JwksError> {
        let shared = &*self.shared;
        let req = Request::get(&shared.url)
            .header(ACCEPT, "application/jwk-set+json, application/json")
            .header(USER_AGENT, USER_AGENT_VALUE)
            .body(Full::new(Bytes::new()))
            .map_err(|_| JwksError::Unreachable)?;
        let reply = shared
            .client
            .send(req, shared.timeout, "jwks")
            .await
            .map_err(|err| {
                tracing::debug!(target: "tower_otp", error = %err, "JWKS request failed");
                JwksError::Unreachable
            })?;
        if reply.status != StatusCode::OK {
            return Err(JwksError::Status(reply.status.as_u16()));
        }
        let body = reply.body.map_err(|_| JwksError::Body)?;
        parse_jwks(&body).map_err(|err| match err {
            ParseError::NotJwks => JwksError::NotJwks,
            ParseError::NoUsableKeys => JwksError::NoUsableKeys,
        })
    }
}

impl fmt::Debug for Jwks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Jwks")
            .field("url", &self.shared.url)
            .field("kids", &self.kids())
            .field("request_timeout", &self.shared.timeout)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_https_unless_loopback_or_allowed() {
        let build = |url: &str| Jwks::builder(url).build().map(|_| ());
        for ok in [
            "https://auth.example/.well-known/jwks.json",
            "http://127.0.0.1:8080/.well-known/jwks.json",
            "http://127.7.0.1/jwks",
            "http://[::1]:80/jwks",
            "http://localhost:3000/jwks",
        ] {
            assert!(build(ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://auth.example/.well-known/jwks.json",
            "http://10.0.0.1/jwks",
            "ftp://auth.example/jwks",
            "https://user:pw@auth.example/jwks",
            "https://auth.example/jwks?x=1",
            "not a url",
        ] {
            assert!(build(bad).is_err(), "{bad}");
        }
        assert!(
            Jwks::builder("http://auth.example/jwks")
                .allow_http()
                .build()
                .is_ok()
        );
    }

    #[test]
    fn intervals_and_roots_are_checked() {
        let b = || Jwks::builder("https://auth.example/jwks");
        assert!(
            b().min_refresh_interval(Duration::from_millis(10))
                .build()
                .is_err()
        );
        assert!(
            b().min_refresh_interval(Duration::from_secs(60))
                .refresh_interval(Duration::from_secs(30))
                .build()
                .is_err()
        );
        assert!(b().request_timeout(Duration::ZERO).build().is_err());
        assert!(b().root_certificate_pem("not pem").build().is_err());
        let dbg = format!("{:?}", b());
        assert!(dbg.contains("auth.example"));
    }

    #[test]
    fn a_clock_stepped_back_does_not_stop_refreshes() {
        assert!(within(100, 100, 30) && within(100, 129, 30));
        assert!(!within(100, 130, 30));
        assert!(!within(100, 99, 30), "clock went back");
    }
}
