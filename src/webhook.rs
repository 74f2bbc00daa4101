//! Standard Webhooks signatures: signing outgoing webhooks and verifying
//! them on the receiving side.
//!
//! Follows the [Standard Webhooks](https://www.standardwebhooks.com/) spec:
//!
//! * headers `webhook-id` (unique per message, the same on retries),
//!   `webhook-timestamp` (Unix seconds) and `webhook-signature`;
//! * the signature is `v1,` + base64 of HMAC-SHA256 over
//!   `"{id}.{timestamp}.{body}"`, keyed with the secret's bytes;
//! * secrets are written `whsec_` + base64 of 24–64 random bytes;
//! * `webhook-signature` may hold several space-separated signatures (during
//!   a secret rotation); one valid `v1` signature is enough.
//!
//! `notify::HttpNotifier` (codes to deliver) and `events::WebhookSink`
//! (security events) sign their requests with this module; an app
//! receiving them checks them with [`verify_webhook`]. This module depends
//! on neither: it sits below both.
//!
//! ```
//! use std::time::{Duration, SystemTime, UNIX_EPOCH};
//! use tower_otp::webhook::{self, WebhookSecret, DEFAULT_TOLERANCE};
//!
//! let secret = WebhookSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
//! let body = br#"{"type":"otp.message"}"#;
//! let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
//!
//! // Sender side.
//! let headers = webhook::signed_headers(&secret, "msg_1", 1_700_000_000, body);
//!
//! // Receiver side.
//! assert!(webhook::verify_webhook(&secret, &headers, body, now, DEFAULT_TOLERANCE).is_ok());
//! assert!(webhook::verify_webhook(&secret, &headers, b"{}", now, DEFAULT_TOLERANCE).is_err());
//! ```
//!
//! # Security
//!
//! Verify over the *raw* body bytes, before parsing JSON. Signatures are
//! compared in constant time. The timestamp tolerance (default 5 minutes,
//! both directions) limits replay; for full protection also remember
//! `webhook-id`s seen within the tolerance and refuse repeats. The secret is
//! redacted from `Debug`.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use http::{HeaderMap, HeaderName, HeaderValue};
use sha2::Sha256;

use crate::error::ConfigError;

/// `webhook-id`.
pub const HEADER_ID: HeaderName = HeaderName::from_static("webhook-id");
/// `webhook-timestamp`.
pub const HEADER_TIMESTAMP: HeaderName = HeaderName::from_static("webhook-timestamp");
/// `webhook-signature`.
pub const HEADER_SIGNATURE: HeaderName = HeaderName::from_static("webhook-signature");
/// How far a timestamp may be from `now`, either way, by default.
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(5 * 60);

const PREFIX: &str = "whsec_";
const MIN_SECRET: usize = 24;
const MAX_SECRET: usize = 64;

/// A webhook signing secret (24–64 bytes). Redacted from `Debug`.
#[derive(Clone)]
pub struct WebhookSecret {
    key: Vec<u8>,
    /// HMAC keyed with `key`, cloned for each use.
    keyed: Hmac<Sha256>,
}

impl WebhookSecret {
    /// Parses `whsec_<base64>` (the prefix may be left out).
    pub fn parse(secret: &str) -> Result<Self, ConfigError> {
        let b64 = secret.trim();
        let b64 = b64.strip_prefix(PREFIX).unwrap_or(b64);
        let key = STANDARD.decode(b64).map_err(|_| {
            ConfigError::new(
                "webhook secret",
                "must be `whsec_` followed by standard base64",
            )
        })?;
        Self::from_bytes(&key)
    }

    /// A secret from raw bytes (24–64 of them, not a placeholder, not of
    /// low entropy).
    pub fn from_bytes(key: &[u8]) -> Result<Self, ConfigError> {
        if !(MIN_SECRET..=MAX_SECRET).contains(&key.len()) {
            return Err(ConfigError::new(
                "webhook secret",
                format!(
                    "must decode to {MIN_SECRET}–{MAX_SECRET} bytes, not {}",
                    key.len()
                ),
            ));
        }
        // 24 bytes stay allowed (Standard Webhooks secrets are 24–64), but
        // a placeholder or low-entropy secret is refused like any other.
        crate::secret::check_quality("webhook secret", key)?;
        Ok(Self::new_unchecked(key))
    }

    fn new_unchecked(key: &[u8]) -> Self {
        Self {
            key: key.to_vec(),
            keyed: <Hmac<Sha256> as Mac>::new_from_slice(key)
                .expect("HMAC accepts keys of any length"),
        }
    }

    /// A new random 32-byte secret.
    pub fn generate() -> Self {
        Self::new_unchecked(&rand::random::<[u8; 32]>())
    }

    /// The `whsec_<base64>` form, to hand to the receiving side. This is
    /// the secret itself: keep it out of logs.
    pub fn to_whsec(&self) -> String {
        format!("{PREFIX}{}", STANDARD.encode(&self.key))
    }

    fn mac(&self, id: &str, timestamp: u64, body: &[u8]) -> Hmac<Sha256> {
        let mut mac = self.keyed.clone();
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        mac
    }

    /// HMAC-SHA256 under this secret of `label` and length-prefixed `data`
    /// (for deriving stable message ids that reveal nothing).
    #[cfg_attr(not(feature = "http-notifier"), allow(dead_code))]
    pub(crate) fn keyed_hash(&self, label: &str, data: &[&[u8]]) -> [u8; 32] {
        let mut mac = self.keyed.clone();
        mac.update(label.as_bytes());
        for part in data {
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part);
        }
        mac.finalize().into_bytes().into()
    }
}

impl fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WebhookSecret(<redacted>)")
    }
}

/// The `webhook-signature` value for one message: `v1,<base64>`.
pub fn sign(secret: &WebhookSecret, id: &str, timestamp: u64, body: &[u8]) -> String {
    let tag = secret.mac(id, timestamp, body).finalize().into_bytes();
    format!("v1,{}", STANDARD.encode(tag))
}

/// The three Standard Webhooks headers for one message.
///
/// An `id` that is not a valid header value (control characters) is replaced
/// by an empty one, which [`verify_webhook`] refuses.
pub fn signed_headers(secret: &WebhookSecret, id: &str, timestamp: u64, body: &[u8]) -> HeaderMap {
    let mut headers = HeaderMap::with_capacity(3);
    headers.insert(
        HEADER_ID,
        HeaderValue::from_str(id).unwrap_or(HeaderValue::from_static("")),
    );
    headers.insert(HEADER_TIMESTAMP, HeaderValue::from(timestamp));
    let signature = sign(secret, id, timestamp, body);
    headers.insert(
        HEADER_SIGNATURE,
        HeaderValue::from_str(&signature).unwrap_or(HeaderValue::from_static("")),
    );
    headers
}

/// Why a webhook was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum WebhookError {
    /// A required header is missing, empty or not text.
    MissingHeader(&'static str),
    /// `webhook-timestamp` is not Unix seconds.
    InvalidTimestamp,
    /// The timestamp is older than the tolerance.
    TimestampTooOld,
    /// The timestamp is further in the future than the tolerance.
    TimestampInFuture,
    /// No `v1` signature matches.
    InvalidSignature,
}

impl fmt::Display for WebhookError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::MissingHeader(name) => write!(f, "missing or empty {name} header"),
            Self::InvalidTimestamp => f.write_str("webhook-timestamp is not a Unix time"),
            Self::TimestampTooOld => f.write_str("webhook timestamp is too old"),
            Self::TimestampInFuture => f.write_str("webhook timestamp is in the future"),
            Self::InvalidSignature => f.write_str("no valid webhook signature"),
        }
    }
}

impl std::error::Error for WebhookError {}

/// Checks a received webhook: headers present, timestamp within `tolerance`
/// of `now` (either way), and at least one `v1` signature in
/// `webhook-signature` (space-separated list) matching `body` in constant
/// time. Pass the raw body bytes.
pub fn verify_webhook(
    secret: &WebhookSecret,
    headers: &HeaderMap,
    body: &[u8],
    now: SystemTime,
    tolerance: Duration,
) -> Result<(), WebhookError> {
    let header = |name: &HeaderName, label: &'static str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .filter(|v| !v.is_empty())
            .ok_or(WebhookError::MissingHeader(label))
    };
    let id = header(&HEADER_ID, "webhook-id")?;
    let timestamp = header(&HEADER_TIMESTAMP, "webhook-timestamp")?;
    let signatures = header(&HEADER_SIGNATURE, "webhook-signature")?;

    if timestamp.is_empty()
        || timestamp.len() > 19
        || !timestamp.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(WebhookError::InvalidTimestamp);
    }
    let timestamp: u64 = timestamp
        .parse()
        .map_err(|_| WebhookError::InvalidTimestamp)?;
    let sent = UNIX_EPOCH
        .checked_add(Duration::from_secs(timestamp))
        .ok_or(WebhookError::InvalidTimestamp)?;
    match now.duration_since(sent) {
        Ok(age) if age > tolerance => return Err(WebhookError::TimestampTooOld),
        Err(ahead) if ahead.duration() > tolerance => return Err(WebhookError::TimestampInFuture),
        _ => {}
    }

    let mac = secret.mac(id, timestamp, body);
    let mut matched = false;
    for candidate in signatures.split(' ').filter(|s| !s.is_empty()) {
        let Some(b64) = candidate.strip_prefix("v1,") else {
            continue;
        };
        let Ok(tag) = STANDARD.decode(b64) else {
            continue;
        };
        // Constant-time comparison; keep checking the rest so the time does
        // not depend on which signature matched.
        matched |= mac.clone().verify_slice(&tag).is_ok();
    }
    if matched {
        Ok(())
    } else {
        Err(WebhookError::InvalidSignature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example from the Standard Webhooks reference implementations.
    #[test]
    fn matches_reference_vector() {
        let secret = WebhookSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let sig = sign(
            &secret,
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1_614_265_330,
            br#"{"test": 2432232314}"#,
        );
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    fn fixture() -> (WebhookSecret, HeaderMap, &'static [u8], SystemTime) {
        let secret = WebhookSecret::generate();
        let body: &[u8] = b"{\"a\":1}";
        let headers = signed_headers(&secret, "msg_x", 1_700_000_000, body);
        (
            secret,
            headers,
            body,
            UNIX_EPOCH + Duration::from_secs(1_700_000_000),
        )
    }

    #[test]
    fn round_trip_and_tamper() {
        let (secret, headers, body, now) = fixture();
        assert_eq!(
            verify_webhook(&secret, &headers, body, now, DEFAULT_TOLERANCE),
            Ok(())
        );
        assert_eq!(
            verify_webhook(&secret, &headers, b"{\"a\":2}", now, DEFAULT_TOLERANCE),
            Err(WebhookError::InvalidSignature)
        );
        let other = WebhookSecret::generate();
        assert_eq!(
            verify_webhook(&other, &headers, body, now, DEFAULT_TOLERANCE),
            Err(WebhookError::InvalidSignature)
        );
        let mut h = headers.clone();
        h.insert(HEADER_ID, HeaderValue::from_static("msg_y"));
        assert_eq!(
            verify_webhook(&secret, &h, body, now, DEFAULT_TOLERANCE),
            Err(WebhookError::InvalidSignature)
        );
    }

    #[test]
    fn timestamp_tolerance_both_ways() {
        let (secret, headers, body, now) = fixture();
        let tol = DEFAULT_TOLERANCE;
        assert!(verify_webhook(&secret, &headers, body, now + tol, tol).is_ok());
        assert_eq!(
            verify_webhook(
                &secret,
                &headers,
                body,
                now + tol + Duration::from_secs(1),
                tol
            ),
            Err(WebhookError::TimestampTooOld)
        );
        assert_eq!(
            verify_webhook(
                &secret,
                &headers,
                body,
                now - tol - Duration::from_secs(1),
                tol
            ),
            Err(WebhookError::TimestampInFuture)
        );
        let mut h = headers.clone();
        h.insert(HEADER_TIMESTAMP, HeaderValue::from_static("17e8"));
        assert_eq!(
            verify_webhook(&secret, &h, body, now, tol),
            Err(WebhookError::InvalidTimestamp)
        );
        h.insert(
            HEADER_TIMESTAMP,
            HeaderValue::from_static("99999999999999999999"),
        );
        assert_eq!(
            verify_webhook(&secret, &h, body, now, tol),
            Err(WebhookError::InvalidTimestamp)
        );
    }

    #[test]
    fn several_signatures_one_valid_is_enough() {
        let (secret, mut headers, body, now) = fixture();
        let good = headers[HEADER_SIGNATURE].to_str().unwrap().to_owned();
        let list = format!("v1,AAAA v1a,xyz garbage  {good} v1,not-base64!");
        headers.insert(HEADER_SIGNATURE, HeaderValue::from_str(&list).unwrap());
        assert!(verify_webhook(&secret, &headers, body, now, DEFAULT_TOLERANCE).is_ok());
        headers.insert(
            HEADER_SIGNATURE,
            HeaderValue::from_static("v1,AAAA v2,BBBB"),
        );
        assert_eq!(
            verify_webhook(&secret, &headers, body, now, DEFAULT_TOLERANCE),
            Err(WebhookError::InvalidSignature)
        );
    }

    #[test]
    fn missing_headers() {
        let (secret, headers, body, now) = fixture();
        for (name, label) in [
            (HEADER_ID, "webhook-id"),
            (HEADER_TIMESTAMP, "webhook-timestamp"),
            (HEADER_SIGNATURE, "webhook-signature"),
        ] {
            let mut h = headers.clone();
            h.remove(&name);
            assert_eq!(
                verify_webhook(&secret, &h, body, now, DEFAULT_TOLERANCE),
                Err(WebhookError::MissingHeader(label))
            );
        }
    }

    #[test]
    fn secret_parsing() {
        assert!(WebhookSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").is_ok());
        assert!(WebhookSecret::parse("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").is_ok());
        assert!(WebhookSecret::parse("whsec_c2hvcnQ=").is_err()); // 5 bytes
        assert!(WebhookSecret::parse("whsec_!!!").is_err());
        // Placeholders and low-entropy raw secrets are refused.
        assert!(WebhookSecret::from_bytes(&[0u8; 32]).is_err());
        assert!(WebhookSecret::from_bytes(b"changeme-changeme-changeme").is_err());
        assert!(WebhookSecret::from_bytes(&rand::random::<[u8; 24]>()).is_ok());
        let s = WebhookSecret::generate();
        let again = WebhookSecret::parse(&s.to_whsec()).unwrap();
        assert_eq!(sign(&s, "i", 1, b"b"), sign(&again, "i", 1, b"b"));
        assert_eq!(format!("{s:?}"), "WebhookSecret(<redacted>)");
    }
}
