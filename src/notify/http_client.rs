//! The one outbound HTTP client shared by `TwilioSms`, `HttpNotifier`,
//! `events::WebhookSink` and `jwt::Jwks`, the settings their builders share
//! ([`HttpOptions`] → [`Endpoint`]), the one signed POST
//! ([`Endpoint::post_signed`]), and the helpers they use (status mapping,
//! `Retry-After`, form encoding, basic auth, base URLs).
//!
//! hyper-util's pooled client over hyper-rustls: HTTPS with the webpki
//! (Mozilla) roots and rustls' ring provider, HTTP/1.1, keep-alive
//! connection reuse across every notifier in the process. Plain `http://`
//! is accepted too (loopback tests, a sidecar); configuration decides.

#![cfg_attr(
    not(all(feature = "twilio", feature = "http-notifier")),
    allow(dead_code)
)]

use std::convert::Infallible;
use std::fmt;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
#[cfg(feature = "http-notifier")]
use http::Method;
#[cfg(feature = "http-notifier")]
use http::header::{CONTENT_TYPE, USER_AGENT};
use http::header::{DATE, RETRY_AFTER};
use http::{HeaderMap, HeaderValue, Request, StatusCode};
use http_body::{Body, Frame, SizeHint};
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use super::NotifyError;
use crate::error::ConfigError;

/// The `User-Agent` of every request.
pub(crate) const USER_AGENT_VALUE: &str = concat!("tower-otp/", env!("CARGO_PKG_VERSION"));
/// Time for one request, connection included, unless a builder says otherwise.
const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest response body read from a provider.
const MAX_RESPONSE: usize = 64 * 1024;
/// Longest wait honoured from a `Retry-After` header.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// A provider's answer. The status and headers are the answer; the body
/// may have failed to arrive whole.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Result<Bytes, BodyFault>,
}

impl Reply {
    /// The body, or nothing when it did not arrive whole.
    pub(crate) fn body_bytes(&self) -> &[u8] {
        self.body.as_deref().unwrap_or_default()
    }
}

/// Why a response body could not be read. The status still stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BodyFault {
    /// Longer than [`MAX_RESPONSE`].
    TooLarge,
    /// The connection failed before the body ended (cut short).
    Cut,
    /// Not complete within the request's time.
    TimedOut,
}

impl BodyFault {
    /// For logs.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::TooLarge => "too large",
            Self::Cut => "cut short",
            Self::TimedOut => "timed out",
        }
    }
}

/// A request body that records when hyper first polls it: hyper polls the
/// body only on an established connection, after the request head, so
/// until then the provider cannot have the request (its body is missing);
/// from then on it may.
#[derive(Debug)]
pub(crate) struct SentBody {
    inner: Full<Bytes>,
    polled: Arc<AtomicBool>,
}

impl Body for SentBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.polled.store(true, Ordering::Release);
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Cheap to clone: clones share the connection pool.
#[derive(Clone)]
pub(crate) struct HttpClient {
    client: Client<HttpsConnector<HttpConnector>, SentBody>,
}

impl fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("HttpClient(hyper-util + rustls)")
    }
}

impl HttpClient {
    /// The process-wide client (built on first use).
    pub(crate) fn shared() -> Result<Self, ConfigError> {
        static SHARED: OnceLock<Result<HttpClient, ConfigError>> = OnceLock::new();
        SHARED.get_or_init(Self::build).clone()
    }

    fn build() -> Result<Self, ConfigError> {
        let https = HttpsConnectorBuilder::new()
            .with_provider_and_webpki_roots(rustls::crypto::ring::default_provider())
            .map_err(|e| ConfigError::new("http client", format!("TLS setup failed: {e}")))?
            .https_or_http()
            .enable_http1()
            .wrap_connector(Self::connector());
        Ok(Self::pooled(https))
    }

    /// A client of its own (its own pool) that trusts only `roots`, not the
    /// webpki roots: for a peer behind a private CA (a JWKS endpoint of an
    /// internal issuer; tests with a CA made on the spot).
    #[cfg(feature = "jwks")]
    pub(crate) fn with_roots(
        roots: Vec<rustls::pki_types::CertificateDer<'static>>,
    ) -> Result<Self, ConfigError> {
        let tls_error =
            |e: rustls::Error| ConfigError::new("http client", format!("TLS setup failed: {e}"));
        let mut store = rustls::RootCertStore::empty();
        for root in roots {
            store.add(root).map_err(tls_error)?;
        }
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(tls_error)?
        .with_root_certificates(store)
        .with_no_client_auth();
        let https = HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(Self::connector());
        Ok(Self::pooled(https))
    }

    /// The TCP connector every client dials with.
    fn connector() -> HttpConnector {
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(Duration::from_secs(5)));
        http
    }

    fn pooled(https: HttpsConnector<HttpConnector>) -> Self {
        let client = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(Duration::from_secs(60))
            .build(https);
        Self { client }
    }

    /// Sends `req` and reads the answer, all within `timeout`, classifying
    /// failures by whether the request may have reached the provider
    /// ([the rule](super#which-failures-are-retried)):
    ///
    /// * connection failures, and a timeout or failure before the body
    ///   started to go out → retryable;
    /// * a failure or timeout after that, before the response head arrived
    ///   → [`MaybeDelivered`](super::NotifyErrorKind::MaybeDelivered);
    /// * a response head arrived → `Ok`: its status is the answer, even when
    ///   the body is then too large, cut short or late ([`Reply::body`]
    ///   says which).
    pub(crate) async fn send(
        &self,
        req: Request<Full<Bytes>>,
        timeout: Duration,
        provider: &'static str,
    ) -> Result<Reply, NotifyError> {
        let polled = Arc::new(AtomicBool::new(false));
        let req = req.map(|inner| SentBody {
            inner,
            polled: Arc::clone(&polled),
        });
        let may_have_sent = || polled.load(Ordering::Acquire);
        let deadline = tokio::time::Instant::now() + timeout;
        let res = match tokio::time::timeout_at(deadline, self.client.request(req)).await {
            Ok(Ok(res)) => res,
            Ok(Err(e)) if e.is_connect() => {
                return Err(
                    NotifyError::retryable(format!("{provider}: cannot connect"))
                        .with_provider_code("connect")
                        .with_source(e),
                );
            }
            Ok(Err(e)) if may_have_sent() => {
                return Err(NotifyError::maybe_delivered(format!(
                    "{provider}: connection lost after the request was sent, before the answer"
                ))
                .with_provider_code("io")
                .with_source(e));
            }
            Ok(Err(e)) => {
                return Err(
                    NotifyError::retryable(format!("{provider}: request failed"))
                        .with_provider_code("io")
                        .with_source(e),
                );
            }
            Err(_) if may_have_sent() => {
                return Err(NotifyError::maybe_delivered(format!(
                    "{provider}: no answer within {} ms after the request was sent",
                    timeout.as_millis()
                ))
                .with_provider_code("timeout"));
            }
            Err(_) => {
                return Err(NotifyError::retryable(format!(
                    "{provider}: no connection within {} ms",
                    timeout.as_millis()
                ))
                .with_provider_code("timeout"));
            }
        };
        let (parts, body) = res.into_parts();
        let collected =
            tokio::time::timeout_at(deadline, Limited::new(body, MAX_RESPONSE).collect());
        let body = match collected.await {
            Ok(Ok(body)) => Ok(body.to_bytes()),
            Ok(Err(e)) if e.is::<LengthLimitError>() => Err(BodyFault::TooLarge),
            Ok(Err(_)) => Err(BodyFault::Cut),
            Err(_) => Err(BodyFault::TimedOut),
        };
        if let Err(fault) = body {
            tracing::debug!(
                status = parts.status.as_u16(),
                fault = fault.as_str(),
                "{provider}: response body unreadable"
            );
        }
        Ok(Reply {
            status: parts.status,
            headers: parts.headers,
            body,
        })
    }
}

/// The outbound-HTTP settings a provider's builder holds until `build`:
/// the endpoint URL as given (checked by [`build`](Self::build)) and the
/// time for one request. `TwilioSms`, `HttpNotifier` and `WebhookSink`
/// builders each hold one in a field `http`, whose public setter the
/// `request_timeout_option!` macro writes.
#[derive(Clone, Debug)]
pub(crate) struct HttpOptions {
    pub(crate) url: String,
    pub(crate) request_timeout: Duration,
}

impl HttpOptions {
    /// `url`, with the default request timeout (10 s).
    pub(crate) fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
        }
    }

    /// Checks the URL ([`base_url`]; `setting` names it in the error) and
    /// takes the shared client. `provider` starts every error text.
    pub(crate) fn build(
        self,
        setting: &'static str,
        provider: &'static str,
    ) -> Result<Endpoint, ConfigError> {
        Ok(Endpoint {
            url: base_url(&self.url, setting)?,
            timeout: self.request_timeout,
            provider,
            client: HttpClient::shared()?,
        })
    }
}

/// A checked endpoint on the shared client: what a built provider sends with.
#[derive(Clone)]
pub(crate) struct Endpoint {
    /// Checked, without a trailing `/`.
    url: String,
    timeout: Duration,
    provider: &'static str,
    client: HttpClient,
}

impl fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Endpoint")
            .field("url", &self.url)
            .field("request_timeout", &self.timeout)
            .finish()
    }
}

impl Endpoint {
    /// The checked URL, without a trailing `/`.
    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    /// Sends `req` within the request timeout ([`HttpClient::send`]); a
    /// request that could not be built is a permanent error.
    pub(crate) async fn send(
        &self,
        req: http::Result<Request<Full<Bytes>>>,
    ) -> Result<Reply, NotifyError> {
        let req = req.map_err(|e| {
            NotifyError::permanent(format!("{}: cannot build the request", self.provider))
                .with_source(e)
        })?;
        self.client.send(req, self.timeout, self.provider).await
    }

    /// POSTs the JSON `body` to the endpoint, signed per Standard Webhooks
    /// (`webhook-id` = `id`, `webhook-timestamp` = `timestamp`): the one
    /// signed POST of `HttpNotifier` and `WebhookSink`.
    #[cfg(feature = "http-notifier")]
    pub(crate) async fn post_signed(
        &self,
        secret: &crate::webhook::WebhookSecret,
        id: &str,
        timestamp: u64,
        body: Bytes,
    ) -> Result<Reply, NotifyError> {
        let mut req = Request::builder()
            .method(Method::POST)
            .uri(&self.url)
            .header(CONTENT_TYPE, "application/json")
            .header(USER_AGENT, USER_AGENT_VALUE);
        if let Some(headers) = req.headers_mut() {
            headers.extend(crate::webhook::signed_headers(secret, id, timestamp, &body));
        }
        self.send(req.body(Full::new(body))).await
    }
}

/// The error for a non-2xx status: 408, 429 and 5xx are retryable (with
/// `Retry-After` when given in seconds), every other status is permanent.
pub(crate) fn status_error(status: StatusCode, headers: &HeaderMap, what: &str) -> NotifyError {
    let retryable = status.is_server_error()
        || status == StatusCode::TOO_MANY_REQUESTS
        || status == StatusCode::REQUEST_TIMEOUT;
    let err = if retryable {
        NotifyError::retryable(what.to_owned())
    } else {
        NotifyError::permanent(what.to_owned())
    };
    match retry_after(headers) {
        Some(after) if retryable => err.with_retry_after(after),
        _ => err,
    }
}

/// `Retry-After` (capped at an hour): delta-seconds, or an HTTP-date taken
/// relative to the response's own `Date` header, so neither clock skew nor
/// our clock enters. A date without a `Date` header is ignored: the retry
/// policy's own backoff applies then.
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    let secs =
        if !value.is_empty() && value.len() <= 10 && value.bytes().all(|b| b.is_ascii_digit()) {
            value.parse().ok()?
        } else {
            let at = crate::http_date::parse(value)?;
            let date = crate::http_date::parse(headers.get(DATE)?.to_str().ok()?.trim())?;
            at.saturating_sub(date)
        };
    Some(Duration::from_secs(secs).min(MAX_RETRY_AFTER))
}

/// `application/x-www-form-urlencoded` body from name/value pairs.
pub(crate) fn form_encode(pairs: &[(&str, &str)]) -> String {
    let mut out = String::new();
    for (i, (name, value)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        percent_encode_into(name, &mut out);
        out.push('=');
        percent_encode_into(value, &mut out);
    }
    out
}

fn percent_encode_into(s: &str, out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in s.as_bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'*' | b'-' | b'.' | b'_' => {
                out.push(char::from(b));
            }
            b' ' => out.push('+'),
            _ => {
                out.push('%');
                out.push(char::from(HEX[usize::from(b >> 4)]));
                out.push(char::from(HEX[usize::from(b & 15)]));
            }
        }
    }
}

/// `Authorization: Basic …`, marked sensitive (hyper never logs it).
pub(crate) fn basic_auth(user: &str, password: &str) -> HeaderValue {
    let token = STANDARD.encode(format!("{user}:{password}"));
    let mut value = HeaderValue::from_str(&format!("Basic {token}"))
        .unwrap_or(HeaderValue::from_static("Basic"));
    value.set_sensitive(true);
    value
}

/// Checks an `http(s)://host[:port][/path]` base URL (no query, no
/// userinfo) and returns it without a trailing `/`.
pub(crate) fn base_url(url: &str, setting: &'static str) -> Result<String, ConfigError> {
    let bad = |why: &'static str| ConfigError::new(setting, why);
    let uri: http::Uri = url.trim().parse().map_err(|_| bad("not a valid URL"))?;
    match uri.scheme_str() {
        Some("https" | "http") => {}
        _ => return Err(bad("must start with https:// (or http:// for local tests)")),
    }
    let authority = uri.authority().ok_or_else(|| bad("has no host"))?;
    if authority.as_str().contains('@') {
        return Err(bad("must not contain credentials"));
    }
    if uri.query().is_some() {
        return Err(bad("must not contain a query"));
    }
    Ok(url.trim().trim_end_matches('/').to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_encoding() {
        assert_eq!(
            form_encode(&[("To", "+14155550100"), ("Body", "a b&c=d/é")]),
            "To=%2B14155550100&Body=a+b%26c%3Dd%2F%C3%A9"
        );
    }

    #[test]
    fn status_mapping() {
        let h = HeaderMap::new();
        for (code, retryable) in [
            (400, false),
            (401, false),
            (403, false),
            (404, false),
            (408, true),
            (429, true),
            (500, true),
            (503, true),
            (302, false),
        ] {
            let e = status_error(StatusCode::from_u16(code).unwrap(), &h, "x");
            assert_eq!(e.is_retryable(), retryable, "{code}");
        }
    }

    #[test]
    fn retry_after_parsing() {
        let mut h = HeaderMap::new();
        assert_eq!(retry_after(&h), None);
        h.insert(RETRY_AFTER, HeaderValue::from_static("7"));
        assert_eq!(retry_after(&h), Some(Duration::from_secs(7)));
        assert_eq!(
            status_error(StatusCode::TOO_MANY_REQUESTS, &h, "x").retry_after(),
            Some(Duration::from_secs(7))
        );
        // Not attached to permanent errors.
        assert_eq!(
            status_error(StatusCode::BAD_REQUEST, &h, "x").retry_after(),
            None
        );
        h.insert(RETRY_AFTER, HeaderValue::from_static("999999999"));
        assert_eq!(retry_after(&h), Some(MAX_RETRY_AFTER));
        for bad in ["Wed, 21 Oct 2015 07:28:00 GMT", "-1", "1.5", ""] {
            h.insert(RETRY_AFTER, HeaderValue::from_static(bad));
            assert_eq!(retry_after(&h), None, "{bad}");
        }
        // An HTTP-date counts from the response's own Date.
        h.insert(
            RETRY_AFTER,
            HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        for (date, wait) in [
            ("Wed, 21 Oct 2015 07:27:15 GMT", Duration::from_secs(45)),
            ("Wed, 21 Oct 2015 07:29:00 GMT", Duration::ZERO),
            ("Tue, 20 Oct 2015 07:28:00 GMT", MAX_RETRY_AFTER),
        ] {
            h.insert(DATE, HeaderValue::from_static(date));
            assert_eq!(retry_after(&h), Some(wait), "{date}");
        }
        h.insert(DATE, HeaderValue::from_static("yesterday"));
        assert_eq!(retry_after(&h), None);
    }

    #[test]
    fn base_urls() {
        assert_eq!(
            base_url("https://api.twilio.com/", "x").unwrap(),
            "https://api.twilio.com"
        );
        assert_eq!(
            base_url("http://127.0.0.1:8080", "x").unwrap(),
            "http://127.0.0.1:8080"
        );
        for bad in [
            "ftp://x",
            "api.twilio.com",
            "https://u:p@x.com",
            "https://x.com/?a=1",
            "not a url",
        ] {
            assert!(base_url(bad, "x").is_err(), "{bad}");
        }
    }

    #[test]
    fn basic_auth_is_sensitive() {
        let v = basic_auth("AC1", "tok");
        assert!(v.is_sensitive());
        assert_eq!(v, "Basic QUMxOnRvaw==");
    }
}
