//! The per-client limit key ([`ClientIpKey`], `push_limit_key`) and the
//! refusal of a request that has no client address.

use std::fmt;
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::Arc;

use super::cidr::mask128;
use crate::error::{ConfigError, Problem};
use crate::log_throttle::LogThrottle;
use crate::stack_str::StackStr;

/// `500 client_ip_unavailable`: no client address could be determined (a
/// server set-up error, not the client's). The detail says what is missing.
pub(crate) fn unavailable() -> Problem {
    Problem::new(
        http::StatusCode::INTERNAL_SERVER_ERROR,
        "client_ip_unavailable",
        UNAVAILABLE_DETAIL,
    )
}

#[cfg(feature = "axum")]
const UNAVAILABLE_DETAIL: &str = "The server could not determine the client address, so it \
     cannot apply its per-client limits. The request carries no ConnectInfo<SocketAddr>: serve \
     the axum app with into_make_service_with_connect_info::<SocketAddr>() (or, with plain \
     hyper, insert tower_otp::client_ip::PeerAddr per connection). Behind a reverse proxy, \
     also add SetClientIpLayer trusting the proxy.";

#[cfg(not(feature = "axum"))]
const UNAVAILABLE_DETAIL: &str = "The server could not determine the client address, so it \
     cannot apply its per-client limits. tower-otp's `axum` feature is off, so axum's \
     ConnectInfo is not read: enable the feature and serve the axum app with \
     into_make_service_with_connect_info::<SocketAddr>() (or, with plain hyper, insert \
     tower_otp::client_ip::PeerAddr per connection). Behind a reverse proxy, also add \
     SetClientIpLayer trusting the proxy.";

/// The IPv6 prefix lengths a per-client limit may key on
/// ([`ClientIpKeyBuilder::ipv6_prefix`]).
pub const IPV6_PREFIX_RANGE: std::ops::RangeInclusive<u8> = 48..=128;

/// The default IPv6 prefix of a per-client limit key: one /64, the smallest
/// network an ISP or hosting provider hands to one customer (RFC 6177).
pub const DEFAULT_IPV6_PREFIX: u8 = 64;

/// The text of a per-client limit key, on the stack: the longest, an IPv6
/// network with its length (`ffff:…:ffff/128`), is 43 bytes.
pub(crate) type AddressText = StackStr<48>;

/// The per-client limit key of `ip`: the one function every per-IP limit
/// (the `RateLimitLayer` extractors, the `OtpRouter`) keys on.
///
/// * IPv4 (and IPv4-mapped IPv6, `::ffff:192.0.2.1`, unwrapped): the address,
///   `192.0.2.1`.
/// * IPv6: the network of its first `ipv6_prefix` bits (clamped to
///   [`IPV6_PREFIX_RANGE`]) with its length, `2001:db8:1:2::/64`, so a client
///   rotating addresses inside its own /64 stays one client.
///
/// Allocation-free; the IPv4 form is written by hand (the formatter costs
/// more than the rest of a rate-limit key).
pub(crate) fn limit_key_text(ip: IpAddr, ipv6_prefix: u8) -> AddressText {
    let mut out = AddressText::new();
    match ip.to_canonical() {
        IpAddr::V4(v4) => {
            for (i, octet) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    out.push_ascii(b'.');
                }
                if octet >= 100 {
                    out.push_ascii(b'0' + octet / 100);
                }
                if octet >= 10 {
                    out.push_ascii(b'0' + octet / 10 % 10);
                }
                out.push_ascii(b'0' + octet % 10);
            }
        }
        IpAddr::V6(v6) => {
            let prefix = ipv6_prefix.clamp(*IPV6_PREFIX_RANGE.start(), *IPV6_PREFIX_RANGE.end());
            let network = Ipv6Addr::from(u128::from(v6) & mask128(prefix));
            // At most 43 bytes: it fits.
            let _ = write!(out, "{network}/{prefix}");
        }
    }
    out
}

/// Appends [`limit_key_text`] of `ip` to `out`.
pub(crate) fn push_limit_key(out: &mut String, ip: IpAddr, ipv6_prefix: u8) {
    out.push_str(limit_key_text(ip, ipv6_prefix).as_str().unwrap_or_default());
}

/// How per-IP limits turn a client address into a limit key, and what they
/// do when a request has no client address. One value configures both the
/// `OtpRouter` (`OtpRouterBuilder::client_ip_key`) and a `RateLimitLayer`
/// policy (it is a `rate_limit::KeyExtractor`; the default is the same as
/// `rate_limit::ByClientIp`).
///
/// ```
/// use tower_otp::client_ip::ClientIpKey;
///
/// // Key IPv6 clients by /56 (some ISPs give each customer a /56).
/// let key = ClientIpKey::builder().ipv6_prefix(56).build().unwrap();
/// assert_eq!(key.key_of("2001:db8:1:2::7".parse().unwrap()), "2001:db8:1::/56");
/// assert_eq!(key.key_of("::ffff:192.0.2.1".parse().unwrap()), "192.0.2.1");
/// assert!(ClientIpKey::builder().ipv6_prefix(32).build().is_err());
/// ```
///
/// # Security
///
/// * IPv4 clients are keyed per address; IPv6 clients per /64 by default,
///   because one customer usually holds a whole /64 and can pick a new
///   address from it for every request: keyed per /128 a 5/hour limit let 30
///   of 30 requests through. A longer prefix (up to /128) re-opens that; a
///   shorter one (down to /48) counts a whole site as one client.
/// * A request with **no client address** is refused with
///   `500 client_ip_unavailable` and logged at error level (at most once a
///   minute per limit), because the alternative — one bucket shared by every
///   client — lets the first few requests of anyone lock everyone out.
///   [`shared_bucket_for_unknown_clients`](ClientIpKeyBuilder::shared_bucket_for_unknown_clients)
///   opts into that shared bucket explicitly.
#[derive(Clone)]
pub struct ClientIpKey {
    ipv6_prefix: u8,
    shared_bucket: bool,
    log: Arc<LogThrottle>,
}

impl fmt::Debug for ClientIpKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientIpKey")
            .field("ipv6_prefix", &self.ipv6_prefix)
            .field("shared_bucket", &self.shared_bucket)
            .finish_non_exhaustive()
    }
}

impl Default for ClientIpKey {
    fn default() -> Self {
        Self {
            ipv6_prefix: DEFAULT_IPV6_PREFIX,
            shared_bucket: false,
            log: Arc::new(LogThrottle::missing_address()),
        }
    }
}

impl ClientIpKey {
    /// A builder starting from the defaults (IPv6 per /64, no shared bucket).
    pub fn builder() -> ClientIpKeyBuilder {
        ClientIpKeyBuilder {
            ipv6_prefix: DEFAULT_IPV6_PREFIX,
            shared_bucket: false,
        }
    }

    /// The IPv6 prefix length clients are keyed by.
    pub fn ipv6_prefix(&self) -> u8 {
        self.ipv6_prefix
    }

    /// Whether requests without a client address share one bucket instead
    /// of being refused.
    pub fn shares_bucket_for_unknown_clients(&self) -> bool {
        self.shared_bucket
    }

    /// The limit key of `ip` (see the type docs): `192.0.2.1`,
    /// `2001:db8:1:2::/64`.
    pub fn key_of(&self, ip: IpAddr) -> String {
        let mut out = String::with_capacity(24);
        push_limit_key(&mut out, ip, self.ipv6_prefix);
        out
    }

    /// The refusal of a request without a client address, counted in
    /// `tower_otp_client_ip_unavailable_total` and logged at error level (at
    /// most once a minute). `component` names the limit in the log.
    pub(crate) fn refuse_unknown(&self, component: &'static str, now_secs: u64) -> Problem {
        self.log.refuse(component, now_secs)
    }

    /// Warns (at most once a minute) that a request without a client address
    /// counts under the shared bucket the app opted into.
    pub(crate) fn note_shared_bucket(&self, component: &'static str, now_secs: u64) {
        self.log.warn_shared(component, now_secs);
    }
}

/// Builds a [`ClientIpKey`].
#[derive(Clone, Debug)]
#[must_use]
pub struct ClientIpKeyBuilder {
    ipv6_prefix: u8,
    shared_bucket: bool,
}

impl ClientIpKeyBuilder {
    /// Keys IPv6 clients by their first `bits` bits (48 to 128, default 64).
    pub fn ipv6_prefix(mut self, bits: u8) -> Self {
        self.ipv6_prefix = bits;
        self
    }

    /// Requests with no client address share one bucket instead of being
    /// refused with `500 client_ip_unavailable`. Only for servers where a
    /// missing address is expected and one shared limit is what you want:
    /// then the first few clients exhaust it for everyone.
    pub fn shared_bucket_for_unknown_clients(mut self) -> Self {
        self.shared_bucket = true;
        self
    }

    /// The key settings, or why they are invalid.
    pub fn build(self) -> Result<ClientIpKey, ConfigError> {
        if !IPV6_PREFIX_RANGE.contains(&self.ipv6_prefix) {
            return Err(ConfigError::new(
                "client_ip_key.ipv6_prefix",
                format!(
                    "/{} is outside /{}../{}: shorter counts whole sites as one client, \
                     longer than /128 is no address",
                    self.ipv6_prefix,
                    IPV6_PREFIX_RANGE.start(),
                    IPV6_PREFIX_RANGE.end()
                ),
            ));
        }
        Ok(ClientIpKey {
            ipv6_prefix: self.ipv6_prefix,
            shared_bucket: self.shared_bucket,
            log: Arc::new(LogThrottle::missing_address()),
        })
    }
}

/// Seconds between two log lines about requests without a client address.
const MISSING_ADDRESS_LOG_EVERY_SECS: u64 = 60;

/// The log lines about requests without a client address: the first at
/// once, then at most one a minute, each saying how many requests went
/// unreported in between.
impl LogThrottle {
    pub(crate) const fn missing_address() -> Self {
        Self::new(MISSING_ADDRESS_LOG_EVERY_SECS)
    }

    /// Counts and (rate-limited) logs a refusal; returns the problem.
    pub(crate) fn refuse(&self, component: &'static str, now_secs: u64) -> Problem {
        metrics::counter!("tower_otp_client_ip_unavailable_total", "component" => component)
            .increment(1);
        if let Some(unreported) = self.due(now_secs) {
            tracing::error!(
                target: "tower_otp",
                component,
                unreported,
                "client_ip_unavailable: no client address on the request, so per-IP limits \
                 refuse it with 500. {UNAVAILABLE_DETAIL}"
            );
        }
        unavailable()
    }

    /// (Rate-limited) warns that a request counts under the shared bucket.
    fn warn_shared(&self, component: &'static str, now_secs: u64) {
        if let Some(unreported) = self.due(now_secs) {
            tracing::warn!(
                target: "tower_otp",
                component,
                unreported,
                "no client address on the request; it counts under the one shared per-IP bucket \
                 the app opted into (shared_bucket_for_unknown_clients)"
            );
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::test_helpers::ip;

    fn limit_key(ip_str: &str, prefix: u8) -> String {
        let mut out = String::new();
        push_limit_key(&mut out, ip(ip_str), prefix);
        out
    }

    #[test]
    fn limit_keys_ipv4_per_address() {
        for v4 in [
            "0.0.0.0",
            "1.2.3.4",
            "10.20.30.40",
            "192.0.2.1",
            "255.255.255.255",
            "100.9.99.250",
        ] {
            assert_eq!(limit_key(v4, 64), v4);
            assert_eq!(
                limit_key(v4, 128),
                v4,
                "the IPv6 prefix does not touch IPv4"
            );
        }
        assert_ne!(limit_key("192.0.2.1", 64), limit_key("192.0.2.2", 64));
    }

    #[test]
    fn limit_keys_ipv4_mapped_unwrapped() {
        assert_eq!(limit_key("::ffff:192.0.2.1", 64), "192.0.2.1");
        assert_eq!(limit_key("::ffff:192.0.2.1", 128), "192.0.2.1");
        assert_eq!(limit_key("::ffff:c000:201", 48), "192.0.2.1");
    }

    #[test]
    fn limit_keys_ipv6_per_prefix() {
        // Default /64: every address of one /64 is one key, with its length.
        let a = limit_key("2001:db8:1:2::1", DEFAULT_IPV6_PREFIX);
        assert_eq!(a, "2001:db8:1:2::/64");
        assert_eq!(limit_key("2001:db8:1:2:ffff:ffff:ffff:ffff", 64), a);
        assert_ne!(limit_key("2001:db8:1:3::1", 64), a);
        assert_eq!(limit_key("2001:db8:1:2::1", 48), "2001:db8:1::/48");
        assert_eq!(limit_key("2001:db8:1:ff00::1", 56), "2001:db8:1:ff00::/56");
        assert_eq!(limit_key("2001:db8:1:2::1", 128), "2001:db8:1:2::1/128");
        // Out-of-range prefixes are clamped (the builder refuses them).
        assert_eq!(limit_key("2001:db8:1:2::1", 0), "2001:db8:1::/48");
        assert_eq!(limit_key("2001:db8:1:2::1", 200), "2001:db8:1:2::1/128");
        // The longest key (43 bytes) fits the stack buffer whole.
        let longest = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff";
        assert_eq!(limit_key(longest, 128), format!("{longest}/128"));
        // An IPv6 key never equals an IPv4 key.
        assert_ne!(limit_key("::1.2.3.4", 128), "1.2.3.4");
    }

    #[test]
    fn client_ip_key_settings() {
        let default = ClientIpKey::default();
        assert_eq!(default.ipv6_prefix(), 64);
        assert!(!default.shares_bucket_for_unknown_clients());
        for bits in [48, 56, 64, 96, 128] {
            let key = ClientIpKey::builder().ipv6_prefix(bits).build().unwrap();
            assert_eq!(key.ipv6_prefix(), bits);
        }
        for bits in [0, 32, 47, 129, 255] {
            let err = ClientIpKey::builder()
                .ipv6_prefix(bits)
                .build()
                .unwrap_err();
            assert_eq!(err.setting, "client_ip_key.ipv6_prefix", "{bits}");
            assert!(err.reason.contains("/48../128"), "{err}");
        }
        let shared = ClientIpKey::builder()
            .shared_bucket_for_unknown_clients()
            .build()
            .unwrap();
        assert!(shared.shares_bucket_for_unknown_clients());
        assert_eq!(shared.key_of(ip("2001:db8::1")), "2001:db8::/64");
    }

    #[test]
    fn refusal_names_what_is_missing() {
        let p = unavailable();
        assert_eq!(p.code(), "client_ip_unavailable");
        assert_eq!(p.status(), http::StatusCode::INTERNAL_SERVER_ERROR);
        let doc: serde_json::Value = serde_json::from_slice(&p.to_json()).unwrap();
        let detail = doc["detail"].as_str().unwrap();
        assert!(
            detail.contains("into_make_service_with_connect_info::<SocketAddr>()"),
            "{detail}"
        );
        assert!(detail.contains("SetClientIpLayer"), "{detail}");
        if cfg!(feature = "axum") {
            assert!(detail.contains("no ConnectInfo<SocketAddr>"), "{detail}");
        } else {
            assert!(detail.contains("`axum` feature is off"), "{detail}");
        }
    }
}
