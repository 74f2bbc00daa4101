//! What a request is counted under: key extractors.

use std::any::Any;
use std::borrow::Cow;
use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::StatusCode;
use http::header::HeaderName;
use http::request::Parts;
use sha2::{Digest, Sha256};

use crate::client_ip::{AddressText, ClientIp, ClientIpKey, DEFAULT_IPV6_PREFIX, limit_key_text};
use crate::error::{ConfigError, Problem};
use crate::log_throttle::LogThrottle;
use crate::stack_str::Text;

/// Says which bucket a request counts against.
///
/// Implemented for the unit-struct extractors [`ByClientIp`] and
/// [`ByHeader`], and for every closure `Fn(&Parts) -> Option<String>`, e.g.
/// one reading an identity an authentication layer put into extensions:
///
/// ```
/// use http::request::Parts;
/// use tower_otp::rate_limit::KeyExtractor;
///
/// #[derive(Clone)]
/// struct Tenant(String);
///
/// fn by_tenant(parts: &Parts) -> Option<String> {
///     parts.extensions.get::<Tenant>().map(|t| t.0.clone())
/// }
/// fn assert_extractor(_: impl KeyExtractor) {}
/// assert_extractor(by_tenant);
/// assert_extractor(|parts: &Parts| parts.uri.host().map(str::to_owned));
/// ```
///
/// Keys are namespaced by policy before they reach the store, and replaced
/// by their SHA-256 — all but the client addresses of [`ByClientIp`] and
/// [`ClientIpKey`], which are no secret — so API keys or tokens used as
/// limit keys never sit in the store in plain text.
pub trait KeyExtractor: Send + Sync + 'static {
    /// The key of this request, or `None` when it has none (see
    /// [`MissingKey`](super::MissingKey)).
    fn extract(&self, parts: &Parts) -> Option<String>;

    /// The refusal when the key is missing and the policy rejects such
    /// requests (default: `400 rate_limit_key_missing`).
    fn missing(&self) -> Problem {
        Problem::new(
            StatusCode::BAD_REQUEST,
            "rate_limit_key_missing",
            "The request lacks what this endpoint is rate-limited by.",
        )
    }
}

impl<F> KeyExtractor for F
where
    F: Fn(&Parts) -> Option<String> + Send + Sync + 'static,
{
    fn extract(&self, parts: &Parts) -> Option<String> {
        self(parts)
    }
}

/// This crate's address extractors: their key is no secret, so it goes into
/// the store key in the clear, written on the stack (no `String` of its own,
/// no hash).
pub(crate) trait AddressKey: KeyExtractor {
    /// This request's key, or `None` when it has none.
    fn address(&self, parts: &Parts) -> Option<AddressText>;
}

/// Keys on the client address: the [`ClientIp`] put in request extensions
/// by [`SetClientIpLayer`](crate::client_ip::SetClientIpLayer), else the TCP peer
/// ([`PeerAddr`](crate::client_ip::PeerAddr), or axum's `ConnectInfo` with
/// the `axum` feature) — the address every part of the app agrees on. IPv4
/// per address, IPv6 per /64, IPv4-mapped IPv6 as IPv4; the same as the
/// default [`ClientIpKey`], which configures the prefix and the shared
/// bucket.
///
/// Without any client address — a server set-up error, not the client's — a
/// rejecting policy answers `500 client_ip_unavailable` and logs at error
/// level (at most once a minute).
#[derive(Clone, Copy, Debug, Default)]
pub struct ByClientIp;

/// The log throttle of every [`ByClientIp`] (a unit struct has no room for
/// its own).
static BY_CLIENT_IP_LOG: LogThrottle = LogThrottle::missing_address();

/// The limit key of this request's client address, if it has one.
fn client_key(parts: &Parts, ipv6_prefix: u8) -> Option<AddressText> {
    ClientIp::from_extensions(&parts.extensions).map(|ClientIp(ip)| limit_key_text(ip, ipv6_prefix))
}

/// An address key as the `String` of [`KeyExtractor::extract`].
fn owned(key: Option<AddressText>) -> Option<String> {
    key.as_ref()
        .and_then(AddressText::as_str)
        .map(str::to_owned)
}

fn unix_now() -> u64 {
    crate::clock::unix_secs(std::time::SystemTime::now())
}

impl KeyExtractor for ByClientIp {
    fn extract(&self, parts: &Parts) -> Option<String> {
        owned(self.address(parts))
    }

    fn missing(&self) -> Problem {
        BY_CLIENT_IP_LOG.refuse("RateLimitLayer", unix_now())
    }
}

impl AddressKey for ByClientIp {
    fn address(&self, parts: &Parts) -> Option<AddressText> {
        client_key(parts, DEFAULT_IPV6_PREFIX)
    }
}

/// The key of requests without a client address under a [`ClientIpKey`]
/// that opted into one shared bucket. No address key has a `!`.
const SHARED_CLIENT_KEY: &str = "!unknown";

impl KeyExtractor for ClientIpKey {
    fn extract(&self, parts: &Parts) -> Option<String> {
        owned(self.address(parts))
    }

    fn missing(&self) -> Problem {
        self.refuse_unknown("RateLimitLayer", unix_now())
    }
}

impl AddressKey for ClientIpKey {
    fn address(&self, parts: &Parts) -> Option<AddressText> {
        if let Some(key) = client_key(parts, self.ipv6_prefix()) {
            return Some(key);
        }
        if !self.shares_bucket_for_unknown_clients() {
            return None;
        }
        self.note_shared_bucket("RateLimitLayer", unix_now());
        let mut key = AddressText::new();
        key.push_str(SHARED_CLIENT_KEY);
        Some(key)
    }
}

/// Keys on the value of one request header (hashed before it reaches the
/// store). A request without it is refused with `400 rate_limit_key_missing`
/// unless the policy says otherwise.
#[derive(Clone, Debug)]
pub struct ByHeader(pub HeaderName);

impl ByHeader {
    /// Keys on header `name`, e.g. `ByHeader::new("x-tenant-id")`.
    pub fn new(name: &str) -> Result<Self, ConfigError> {
        HeaderName::from_bytes(name.as_bytes())
            .map(Self)
            .map_err(|_| {
                ConfigError::new(
                    "rate limit header",
                    format!("{name:?} is not a valid header name"),
                )
            })
    }
}

impl KeyExtractor for ByHeader {
    fn extract(&self, parts: &Parts) -> Option<String> {
        let value = parts.headers.get(&self.0)?;
        Some(match value.to_str() {
            Ok(s) => s.to_owned(),
            // Opaque bytes: keep them distinct from any text value.
            Err(_) => format!("\0{}", URL_SAFE_NO_PAD.encode(value.as_bytes())),
        })
    }

    fn missing(&self) -> Problem {
        Problem::new(
            StatusCode::BAD_REQUEST,
            "rate_limit_key_missing",
            format!("The request lacks the {} header.", self.0),
        )
    }
}

/// Writes this request's store key under the policy whose keys start with
/// `prefix` (`rl:<policy>:`) to `out`: `rl:<policy>:<address>` for an
/// address extractor, else `rl:<policy>:#<base64url(SHA-256(value))>`;
/// `false` (nothing written) when the request has no key.
pub(crate) fn write_store_key(
    out: &mut impl Text,
    prefix: &str,
    extractor: &DynExtractor,
    parts: &Parts,
) -> bool {
    // `fmt::Write` for `String` never fails; a `StackStr` keeps track of
    // what did not fit itself.
    match extractor {
        DynExtractor::Address(address) => {
            let Some(key) = address.address(parts) else {
                return false;
            };
            let _ = out.write_str(prefix);
            // An address key always fits its buffer (43 bytes at most).
            out.push_ascii_bytes(key.as_bytes().unwrap_or_default());
        }
        DynExtractor::Hashed(extractor) => {
            let Some(value) = extractor.extract(parts) else {
                return false;
            };
            let digest = Sha256::digest(value.as_bytes());
            let mut text = [0u8; 43];
            let written = URL_SAFE_NO_PAD
                .encode_slice(digest, &mut text)
                .unwrap_or_default();
            let _ = out.write_str(prefix);
            let _ = out.write_char('#');
            out.push_ascii_bytes(&text[..written]);
        }
    }
    true
}

/// Appends `n` in decimal (`itoa`: `write!` goes through the formatting
/// machinery, which costs as much as the rest of a key or header).
pub(crate) fn push_decimal(out: &mut impl fmt::Write, n: u64) {
    // Never fails for a `String`; a `StackStr` notes an overflow itself.
    let _ = out.write_str(itoa::Buffer::new().format(n));
}

/// A type-erased extractor with a readable `Debug`, sorted once (when the
/// policy is made) into this crate's address extractors and all others.
pub(crate) enum DynExtractor {
    /// [`ByClientIp`] or [`ClientIpKey`]: the address, in the clear.
    Address(Box<dyn AddressKey>),
    /// Any other extractor: its value may be secret, so it is hashed.
    Hashed(Box<dyn KeyExtractor>),
}

impl DynExtractor {
    /// Erases `extractor`, recognising this crate's address extractors by
    /// type (no public hook says which keys are secret).
    pub(crate) fn new<E: KeyExtractor>(extractor: E) -> Self {
        let any: &dyn Any = &extractor;
        if let Some(key) = any.downcast_ref::<ClientIpKey>() {
            return Self::Address(Box::new(key.clone()));
        }
        if any.is::<ByClientIp>() {
            return Self::Address(Box::new(ByClientIp));
        }
        Self::Hashed(Box::new(extractor))
    }

    /// The refusal of a request without a key (see [`KeyExtractor::missing`]).
    pub(crate) fn missing(&self) -> Problem {
        match self {
            Self::Address(e) => e.missing(),
            Self::Hashed(e) => e.missing(),
        }
    }
}

impl fmt::Debug for DynExtractor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KeyExtractor")
    }
}

/// Name check shared by policies: a short token safe in store keys and in
/// structured header strings.
pub(crate) fn check_policy_name(name: &str) -> Result<(), Cow<'static, str>> {
    if name.is_empty() || name.len() > 64 {
        return Err("a policy name must be 1 to 64 characters".into());
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b))
    {
        return Err(format!(
            "policy name {name:?} may only hold ASCII letters, digits, '_', '-' and '.'"
        )
        .into());
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use http::{HeaderValue, Request};

    use super::*;
    use crate::client_ip::PeerAddr;

    fn key_of(prefix: &str, extractor: impl KeyExtractor, parts: &Parts) -> Option<String> {
        let mut key = String::new();
        write_store_key(&mut key, prefix, &DynExtractor::new(extractor), parts).then_some(key)
    }

    fn parts(f: impl FnOnce(&mut Request<()>)) -> Parts {
        let mut req = Request::new(());
        f(&mut req);
        req.into_parts().0
    }

    #[test]
    fn by_client_ip_reads_the_extension() {
        let p = parts(|r| {
            r.extensions_mut()
                .insert(ClientIp("2001:db8::1".parse().unwrap()));
        });
        assert_eq!(ByClientIp.extract(&p).as_deref(), Some("2001:db8::/64"));
        assert_eq!(ByClientIp.extract(&parts(|_| {})), None);
        assert_eq!(ByClientIp.missing().code(), "client_ip_unavailable");
    }

    #[test]
    fn by_client_ip_falls_back_to_the_peer() {
        // The same address the router and the `ClientIp` extractor use.
        let p = parts(|r| {
            r.extensions_mut()
                .insert(PeerAddr("[::ffff:192.0.2.9]:4000".parse().unwrap()));
        });
        assert_eq!(ByClientIp.extract(&p).as_deref(), Some("192.0.2.9"));
        let p = parts(|r| {
            r.extensions_mut()
                .insert(PeerAddr("[2001:db8:5:6::9]:4000".parse().unwrap()));
            r.extensions_mut()
                .insert(ClientIp("2001:db8:7:8::1".parse().unwrap()));
        });
        assert_eq!(ByClientIp.extract(&p).as_deref(), Some("2001:db8:7:8::/64"));
    }

    #[test]
    fn client_ip_key_extracts_with_its_prefix_and_shared_bucket() {
        let p = parts(|r| {
            r.extensions_mut()
                .insert(ClientIp("2001:db8:1:2:3::1".parse().unwrap()));
        });
        let key = ClientIpKey::builder().ipv6_prefix(56).build().unwrap();
        assert_eq!(key.extract(&p).as_deref(), Some("2001:db8:1::/56"));
        assert_eq!(key.extract(&parts(|_| {})), None);
        assert_eq!(key.missing().code(), "client_ip_unavailable");
        assert_eq!(
            key_of("rl:ip:", ClientIpKey::default(), &p).unwrap(),
            "rl:ip:2001:db8:1:2::/64"
        );
        let shared = ClientIpKey::builder()
            .shared_bucket_for_unknown_clients()
            .build()
            .unwrap();
        assert_eq!(
            key_of("rl:ip:", shared.clone(), &parts(|_| {})).unwrap(),
            "rl:ip:!unknown"
        );
        assert_eq!(
            key_of("rl:ip:", shared, &p).unwrap(),
            "rl:ip:2001:db8:1:2::/64"
        );
    }

    #[test]
    fn by_header_reads_the_value() {
        assert!(ByHeader::new("bad name").is_err());
        let h = ByHeader::new("X-Tenant").unwrap();
        let p = parts(|r| {
            r.headers_mut()
                .insert("x-tenant", HeaderValue::from_static("acme"));
        });
        assert_eq!(h.extract(&p).as_deref(), Some("acme"));
        let p = parts(|r| {
            r.headers_mut()
                .insert("x-tenant", HeaderValue::from_bytes(b"\xffacme").unwrap());
        });
        assert!(
            h.extract(&p)
                .is_some_and(|k| k != "acme" && k.starts_with('\0'))
        );
        assert_eq!(h.extract(&parts(|_| {})), None);
        assert_eq!(h.missing().code(), "rate_limit_key_missing");
    }

    #[test]
    fn secret_keys_are_hashed_and_namespaced() {
        let secret = |value: &'static str| move |_: &Parts| Some(value.to_owned());
        let p = parts(|r| {
            r.extensions_mut()
                .insert(ClientIp("192.0.2.1".parse().unwrap()));
        });
        let key = key_of("rl:api:", secret("sk_live_secret"), &p).unwrap();
        assert!(key.starts_with("rl:api:#"), "{key}");
        assert!(!key.contains("sk_live_secret"));
        assert_eq!(key.len(), "rl:api:#".len() + 43);
        assert_ne!(
            key,
            key_of("rl:api:", secret("sk_live_secret2"), &p).unwrap()
        );
        assert_ne!(
            key,
            key_of("rl:other:", secret("sk_live_secret"), &p).unwrap()
        );
        assert_eq!(key_of("rl:ip:", ByClientIp, &p).unwrap(), "rl:ip:192.0.2.1");
        let v6 = parts(|r| {
            r.extensions_mut()
                .insert(ClientIp("2001:db8::1".parse().unwrap()));
        });
        assert_eq!(
            key_of("rl:ip:", ByClientIp, &v6).unwrap(),
            "rl:ip:2001:db8::/64"
        );
        assert_eq!(key_of("rl:ip:", ByClientIp, &parts(|_| {})), None);
        // Only this crate's address extractors go in the clear: the same
        // address from any other extractor is hashed.
        let wrapped = key_of("rl:ip:", |p: &Parts| ByClientIp.extract(p), &p).unwrap();
        assert!(wrapped.starts_with("rl:ip:#"), "{wrapped}");
        let header = parts(|r| {
            r.headers_mut()
                .insert("x-tenant", HeaderValue::from_static("192.0.2.1"));
        });
        let by_header = key_of("rl:t:", ByHeader::new("x-tenant").unwrap(), &header).unwrap();
        assert!(by_header.starts_with("rl:t:#"), "{by_header}");
    }

    #[test]
    fn policy_names() {
        assert!(check_policy_name("per-ip_1.x").is_ok());
        assert!(check_policy_name("").is_err());
        assert!(check_policy_name("a\"b").is_err());
        assert!(check_policy_name("a:b").is_err());
        assert!(check_policy_name(&"x".repeat(65)).is_err());
    }
}
