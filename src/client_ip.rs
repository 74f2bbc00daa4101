//! The client's address, resolved once per request.
//!
//! [`ClientIp`] is what per-IP limits key on. [`ClientIpLayer`] puts it into
//! request extensions; everything downstream (rate limits, events, the
//! `OtpRouter`) reads it from there, so every part of the app agrees on one
//! address.
//!
//! The layer starts from the TCP peer address, read from the [`PeerAddr`]
//! extension (plain hyper servers insert it per connection) or, with the
//! `axum` feature, from axum's `ConnectInfo<SocketAddr>` (serve with
//! `into_make_service_with_connect_info::<SocketAddr>()`). When — and only
//! when — that peer is one of the configured trusted proxies, it reads the
//! forwarding headers right to left, skips hops that are themselves trusted
//! proxies, and takes the first untrusted hop as the client.
//!
//! ```
//! use std::net::SocketAddr;
//! use http::{Request, Response};
//! use tower::{Layer, ServiceExt, service_fn};
//! use tower_otp::client_ip::{ClientIp, ClientIpLayer, PeerAddr};
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! // Behind a load balancer on 10.0.0.0/8 that appends to X-Forwarded-For.
//! let layer = ClientIpLayer::builder().trust_proxy("10.0.0.0/8").build().unwrap();
//! let svc = layer.layer(service_fn(|req: Request<()>| async move {
//!     let ip = req.extensions().get::<ClientIp>().unwrap().0;
//!     Ok::<_, std::convert::Infallible>(Response::new(ip.to_string()))
//! }));
//! let mut req = Request::new(());
//! req.headers_mut().insert("x-forwarded-for", "6.6.6.6, 203.0.113.7".parse().unwrap());
//! req.extensions_mut().insert(PeerAddr("10.1.2.3:5555".parse::<SocketAddr>().unwrap()));
//! let res = svc.oneshot(req).await.unwrap();
//! assert_eq!(res.body(), "203.0.113.7"); // the right-most untrusted hop, not 6.6.6.6
//! # });
//! ```
//!
//! # Security
//!
//! Forwarding headers are written by whoever sends the request. A client that
//! talks to the server directly can send `X-Forwarded-For: 1.2.3.4` and, if
//! the server believed it, pick its own rate-limit key for every request and
//! never be limited. Hence:
//!
//! * With no trusted proxy configured ([`ClientIpLayer::new`]), forwarding
//!   headers are **ignored** and the client is the TCP peer. This is right
//!   for a server that faces the internet directly.
//! * Forwarding headers are read only when the TCP peer itself is a trusted
//!   proxy, and then **right to left**: each proxy appends the address it saw,
//!   so only the right-most entries were written by machines you control. The
//!   left-most entry is whatever the client typed. The first hop that is not
//!   a trusted proxy is the client.
//! * Configure exactly the header your proxy sets
//!   ([`ClientIpBuilder::headers`]). By default `X-Forwarded-For` is read, and
//!   `Forwarded` only when no `X-Forwarded-For` is present. If your proxy sets
//!   neither, or sets one but passes the other through from the client,
//!   restrict the list: a header the proxy does not control is a header the
//!   client controls. `X-Real-IP` is off by default because it is a single
//!   value a proxy must *replace*; enable it only if yours does.
//! * Trust only the proxies' own addresses, as narrowly as you can. Trusting a
//!   whole range that also holds clients (e.g. a shared office NAT) lets those
//!   clients spoof.
//! * An unreadable, `unknown` or obfuscated (`_hidden`) hop stops the walk:
//!   the client is then the last trusted address seen (the proxy), never a
//!   value from further left, and never an error response.
//! * IPv4-mapped IPv6 addresses (`::ffff:192.0.2.1`, from dual-stack sockets)
//!   are treated as the IPv4 address they carry, both for trust checks and in
//!   the resolved [`ClientIp`].
//!
//! When no peer address is known at all (the server was not started with
//! connect info and nothing inserted [`PeerAddr`]), the layer inserts no
//! [`ClientIp`], logs one warning per layer, and passes the request on.
//! Requests still work where no address is needed; anything that needs one
//! fails closed on its own (per-IP rate limits refuse with
//! `500 client_ip_unavailable`, and so does the `ClientIp` extractor), so a
//! misconfigured server is noticed at the first request instead of silently
//! sharing one limit among all clients.
//!
//! # Limit keys
//!
//! Per-IP limits — `RateLimitLayer` with [`ByClientIp`](crate::rate_limit::ByClientIp)
//! or a [`ClientIpKey`], and the `OtpRouter` — all key on the same function
//! of the resolved address: IPv4 per address, IPv6 per /64 by default
//! (configurable from /48 to /128 with [`ClientIpKey`]), IPv4-mapped IPv6 as
//! the IPv4 address. A client that owns a /64 cannot multiply its budget by
//! rotating addresses inside it.

use std::fmt;
use std::fmt::Write as _;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use http::header::{FORWARDED, HeaderName};
use http::request::Parts;
use http::{Extensions, HeaderMap, Request};
use pin_project::pin_project;
use tower::{Layer, Service};

use crate::error::ConfigError;
use crate::log_throttle::LogThrottle;

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_REAL_IP: HeaderName = HeaderName::from_static("x-real-ip");

/// The resolved client address, in request extensions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ClientIp(pub IpAddr);

/// The TCP peer address of the connection, in request extensions (for plain
/// hyper servers; axum's `ConnectInfo` is read under the `axum` feature).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PeerAddr(pub SocketAddr);

impl ClientIp {
    /// The client address for a request: the [`ClientIp`] put there by
    /// [`ClientIpLayer`] if any, else the TCP peer ([`PeerAddr`], or axum's
    /// `ConnectInfo<SocketAddr>` with the `axum` feature) with no proxy
    /// trusted. `None` when neither is known.
    pub fn from_extensions(extensions: &Extensions) -> Option<Self> {
        if let Some(ip) = extensions.get::<ClientIp>() {
            return Some(*ip);
        }
        peer_addr(extensions).map(|peer| ClientIp(peer.ip().to_canonical()))
    }

    /// [`from_extensions`](Self::from_extensions) on request parts.
    pub fn from_parts(parts: &Parts) -> Option<Self> {
        Self::from_extensions(&parts.extensions)
    }
}

/// `500 client_ip_unavailable`: no client address could be determined (a
/// server set-up error, not the client's). The detail says what is missing.
pub(crate) fn unavailable() -> crate::error::Problem {
    crate::error::Problem::new(
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
     also add ClientIpLayer trusting the proxy.";

#[cfg(not(feature = "axum"))]
const UNAVAILABLE_DETAIL: &str = "The server could not determine the client address, so it \
     cannot apply its per-client limits. tower-otp's `axum` feature is off, so axum's \
     ConnectInfo is not read: enable the feature and serve the axum app with \
     into_make_service_with_connect_info::<SocketAddr>() (or, with plain hyper, insert \
     tower_otp::client_ip::PeerAddr per connection). Behind a reverse proxy, also add \
     ClientIpLayer trusting the proxy.";

/// The IPv6 prefix lengths a per-client limit may key on
/// ([`ClientIpKeyBuilder::ipv6_prefix`]).
pub const IPV6_PREFIX_RANGE: std::ops::RangeInclusive<u8> = 48..=128;

/// The default IPv6 prefix of a per-client limit key: one /64, the smallest
/// network an ISP or hosting provider hands to one customer (RFC 6177).
pub const DEFAULT_IPV6_PREFIX: u8 = 64;

/// Appends the per-client limit key of `ip` to `out`: the one function every
/// per-IP limit (the `RateLimitLayer` extractors, the `OtpRouter`) keys on.
///
/// * IPv4 (and IPv4-mapped IPv6, `::ffff:192.0.2.1`, unwrapped): the address,
///   `192.0.2.1`.
/// * IPv6: the network of its first `ipv6_prefix` bits (clamped to
///   [`IPV6_PREFIX_RANGE`]) with its length, `2001:db8:1:2::/64`, so a client
///   rotating addresses inside its own /64 stays one client.
///
/// Allocation-free when `out` has room; the IPv4 form is written by hand
/// (the formatter costs more than the rest of a rate-limit key).
pub(crate) fn push_limit_key(out: &mut String, ip: IpAddr, ipv6_prefix: u8) {
    match ip.to_canonical() {
        IpAddr::V4(v4) => {
            for (i, octet) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    out.push('.');
                }
                if octet >= 100 {
                    out.push(char::from(b'0' + octet / 100));
                }
                if octet >= 10 {
                    out.push(char::from(b'0' + octet / 10 % 10));
                }
                out.push(char::from(b'0' + octet % 10));
            }
        }
        IpAddr::V6(v6) => {
            let prefix = ipv6_prefix.clamp(*IPV6_PREFIX_RANGE.start(), *IPV6_PREFIX_RANGE.end());
            let network = Ipv6Addr::from(u128::from(v6) & mask128(prefix));
            // `fmt::Write` for `String` never fails.
            let _ = write!(out, "{network}/{prefix}");
        }
    }
}

/// How per-IP limits turn a client address into a limit key, and what they
/// do when a request has no client address. One value configures both the
/// `OtpRouter` ([`OtpRouterBuilder::client_ip_key`](crate::otp::OtpRouterBuilder::client_ip_key))
/// and a `RateLimitLayer` policy (it is a
/// [`KeyExtractor`](crate::rate_limit::KeyExtractor); the default is the
/// same as [`ByClientIp`](crate::rate_limit::ByClientIp)).
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
    pub(crate) fn refuse_unknown(
        &self,
        component: &'static str,
        now_secs: u64,
    ) -> crate::error::Problem {
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
    pub(crate) fn refuse(&self, component: &'static str, now_secs: u64) -> crate::error::Problem {
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

/// The TCP peer address: [`PeerAddr`], else (feature `axum`) `ConnectInfo`.
fn peer_addr(extensions: &Extensions) -> Option<SocketAddr> {
    if let Some(PeerAddr(addr)) = extensions.get::<PeerAddr>() {
        return Some(*addr);
    }
    #[cfg(feature = "axum")]
    if let Some(info) = extensions.get::<axum::extract::ConnectInfo<SocketAddr>>() {
        return Some(info.0);
    }
    None
}

/// An IPv4 or IPv6 network in CIDR notation (`10.0.0.0/8`, `2001:db8::/32`);
/// a bare address is a network of one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// The network `addr/prefix`; refuses a prefix longer than the address
    /// or host bits set in `addr`.
    pub fn new(addr: IpAddr, prefix: u8) -> Result<Self, ConfigError> {
        // A v4-mapped network (`::ffff:10.0.0.0/104`) becomes its IPv4 form.
        if let IpAddr::V6(v6) = addr
            && let Some(v4) = v6.to_ipv4_mapped()
        {
            if prefix < 96 {
                return Err(ConfigError::new(
                    "trusted proxy",
                    format!(
                        "{addr}/{prefix}: an IPv4-mapped network needs a prefix of at least /96"
                    ),
                ));
            }
            return Self::new(IpAddr::V4(v4), prefix - 96);
        }
        let max = if addr.is_ipv4() { 32 } else { 128 };
        if prefix > max {
            return Err(ConfigError::new(
                "trusted proxy",
                format!("prefix /{prefix} is longer than the {max} bits of {addr}"),
            ));
        }
        let cidr = Self { addr, prefix };
        if !cidr.contains_bits(addr, true) {
            let network = cidr.network();
            return Err(ConfigError::new(
                "trusted proxy",
                format!("{addr}/{prefix} has host bits set; did you mean {network}/{prefix}?"),
            ));
        }
        Ok(cidr)
    }

    fn network(&self) -> IpAddr {
        match self.addr {
            IpAddr::V4(a) => IpAddr::V4(Ipv4Addr::from(u32::from(a) & mask32(self.prefix))),
            IpAddr::V6(a) => IpAddr::V6(Ipv6Addr::from(u128::from(a) & mask128(self.prefix))),
        }
    }

    /// Whether `ip` (IPv4-mapped IPv6 counts as IPv4) is in this network.
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.contains_bits(ip.to_canonical(), false)
    }

    /// With `exact_host_bits`, checks that `ip`'s host bits are all zero.
    fn contains_bits(&self, ip: IpAddr, exact_host_bits: bool) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let m = if exact_host_bits {
                    u32::MAX
                } else {
                    mask32(self.prefix)
                };
                u32::from(net) & mask32(self.prefix) == u32::from(ip) & m
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let m = if exact_host_bits {
                    u128::MAX
                } else {
                    mask128(self.prefix)
                };
                u128::from(net) & mask128(self.prefix) == u128::from(ip) & m
            }
            _ => false,
        }
    }
}

fn mask32(prefix: u8) -> u32 {
    u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0)
}

fn mask128(prefix: u8) -> u128 {
    u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0)
}

impl FromStr for Cidr {
    type Err = ConfigError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || {
            ConfigError::new(
                "trusted proxy",
                format!("{s:?} is not an IP address or CIDR network (e.g. 10.0.0.0/8, fd00::/8)"),
            )
        };
        let (addr, prefix) = match s.trim().split_once('/') {
            Some((addr, prefix)) => {
                // Digits only: `u8::from_str` would also take "+8".
                if prefix.is_empty()
                    || prefix.len() > 3
                    || !prefix.bytes().all(|b| b.is_ascii_digit())
                {
                    return Err(bad());
                }
                let addr: IpAddr = addr.parse().map_err(|_| bad())?;
                (addr, prefix.parse::<u8>().map_err(|_| bad())?)
            }
            None => {
                let addr: IpAddr = s.trim().parse().map_err(|_| bad())?;
                (addr, if addr.is_ipv4() { 32 } else { 128 })
            }
        };
        Self::new(addr, prefix)
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// A forwarding header [`ClientIpLayer`] may read from a trusted proxy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ForwardingHeader {
    /// `X-Forwarded-For: client, proxy1, proxy2` (de-facto standard).
    XForwardedFor,
    /// `Forwarded: for=client, for="[2001:db8::1]:443"` (RFC 7239).
    Forwarded,
    /// `X-Real-IP: client` — a single address the proxy must *replace*, never
    /// append to (nginx `proxy_set_header X-Real-IP $remote_addr`).
    XRealIp,
}

/// Resolves [`ClientIp`] and puts it into request extensions. See the
/// [module docs](self), in particular `# Security`.
#[derive(Clone, Debug)]
#[must_use]
pub struct ClientIpLayer {
    config: Arc<Config>,
}

#[derive(Debug)]
struct Config {
    trusted: Vec<Cidr>,
    headers: Vec<ForwardingHeader>,
    warned_no_peer: AtomicBool,
}

impl ClientIpLayer {
    /// No trusted proxies: the client is the TCP peer, forwarding headers are
    /// ignored.
    pub fn new() -> Self {
        Self::from_parts(Vec::new(), default_headers())
    }

    /// A builder for trusted proxies and headers.
    pub fn builder() -> ClientIpBuilder {
        ClientIpBuilder {
            trusted: Vec::new(),
            headers: default_headers(),
            error: None,
        }
    }

    fn from_parts(trusted: Vec<Cidr>, headers: Vec<ForwardingHeader>) -> Self {
        Self {
            config: Arc::new(Config {
                trusted,
                headers,
                warned_no_peer: AtomicBool::new(false),
            }),
        }
    }

    /// The client address for a request from `peer` with `headers`, by the
    /// rules of this layer.
    pub fn resolve(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        self.config.resolve(peer, headers)
    }
}

impl Default for ClientIpLayer {
    fn default() -> Self {
        Self::new()
    }
}

fn default_headers() -> Vec<ForwardingHeader> {
    vec![ForwardingHeader::XForwardedFor, ForwardingHeader::Forwarded]
}

/// Builds a [`ClientIpLayer`]; the first invalid setting is reported by
/// [`build`](Self::build).
#[derive(Clone, Debug)]
#[must_use]
pub struct ClientIpBuilder {
    trusted: Vec<Cidr>,
    headers: Vec<ForwardingHeader>,
    error: Option<ConfigError>,
}

impl ClientIpBuilder {
    /// Trusts the proxy (or proxies) at `cidr`: an address (`10.0.0.5`,
    /// `::1`) or a network (`10.0.0.0/8`, `fd00::/8`).
    pub fn trust_proxy(mut self, cidr: &str) -> Self {
        match cidr.parse::<Cidr>() {
            Ok(c) => self.trusted.push(c),
            Err(e) => {
                self.error.get_or_insert(e);
            }
        }
        self
    }

    /// [`trust_proxy`](Self::trust_proxy) for each of `cidrs`.
    pub fn trust_proxies<'a>(self, cidrs: impl IntoIterator<Item = &'a str>) -> Self {
        cidrs.into_iter().fold(self, Self::trust_proxy)
    }

    /// Trusts an already parsed network.
    pub fn trust_cidr(mut self, cidr: Cidr) -> Self {
        self.trusted.push(cidr);
        self
    }

    /// Trusts loopback (`127.0.0.0/8`, `::1`): a proxy on the same host.
    pub fn trust_loopback(self) -> Self {
        self.trust_proxies(["127.0.0.0/8", "::1"])
    }

    /// Trusts private networks (RFC 1918 `10/8`, `172.16/12`, `192.168/16`,
    /// IPv6 ULA `fc00::/7`) and loopback: a proxy inside the same private
    /// network. Only right if clients never reach the server from inside it.
    pub fn trust_private_networks(self) -> Self {
        self.trust_loopback().trust_proxies([
            "10.0.0.0/8",
            "172.16.0.0/12",
            "192.168.0.0/16",
            "fc00::/7",
        ])
    }

    /// The forwarding headers to read from a trusted proxy, in order of
    /// preference: the first one present in a request is used, the others are
    /// ignored (default: `X-Forwarded-For`, then `Forwarded`). An empty list
    /// ignores all of them.
    pub fn headers(mut self, headers: impl IntoIterator<Item = ForwardingHeader>) -> Self {
        self.headers.clear();
        for h in headers {
            if !self.headers.contains(&h) {
                self.headers.push(h);
            }
        }
        self
    }

    /// The layer, or the first invalid setting.
    pub fn build(self) -> Result<ClientIpLayer, ConfigError> {
        match self.error {
            Some(e) => Err(e),
            None => Ok(ClientIpLayer::from_parts(self.trusted, self.headers)),
        }
    }
}

impl Config {
    fn is_trusted(&self, ip: IpAddr) -> bool {
        self.trusted.iter().any(|c| c.contains(ip))
    }

    fn resolve(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let peer = peer.to_canonical();
        if !self.is_trusted(peer) {
            return peer;
        }
        for kind in &self.headers {
            let (name, parse): (_, fn(&str, &mut Vec<Hop>)) = match kind {
                ForwardingHeader::XForwardedFor => (&X_FORWARDED_FOR, parse_x_forwarded_for),
                ForwardingHeader::Forwarded => (&FORWARDED, parse_forwarded),
                ForwardingHeader::XRealIp => (&X_REAL_IP, parse_x_real_ip),
            };
            let mut lines = headers.get_all(name).iter().peekable();
            if lines.peek().is_none() {
                continue;
            }
            let mut hops = Vec::new();
            let mut count = 0;
            for line in lines {
                count += 1;
                match line.to_str() {
                    Ok(s) => parse(s, &mut hops),
                    Err(_) => hops.push(None),
                }
            }
            if *kind == ForwardingHeader::XRealIp && (count > 1 || hops.len() != 1) {
                // One value, replaced by the proxy: several are a client's doing.
                return peer;
            }
            return self.walk(peer, &hops);
        }
        peer
    }

    /// Right to left from the trusted `peer`: the first untrusted hop, or the
    /// last trusted address when a hop is unreadable or the list ends.
    fn walk(&self, peer: IpAddr, hops: &[Hop]) -> IpAddr {
        let mut current = peer;
        for hop in hops.iter().rev() {
            let Some(ip) = hop else { return current };
            current = ip.to_canonical();
            if !self.is_trusted(current) {
                return current;
            }
        }
        current
    }
}

/// One hop of a forwarding header: its address, or `None` when it is
/// `unknown`, obfuscated or unreadable.
pub(crate) type Hop = Option<IpAddr>;

/// Parses an `X-Forwarded-For` value, appending one hop per entry.
pub(crate) fn parse_x_forwarded_for(value: &str, hops: &mut Vec<Hop>) {
    hops.extend(
        value
            .split(',')
            .map(|entry| parse_node(entry.trim(), false)),
    );
}

/// Parses an `X-Real-IP` value (one address).
fn parse_x_real_ip(value: &str, hops: &mut Vec<Hop>) {
    hops.push(parse_node(value.trim(), false));
}

/// Parses an RFC 7239 `Forwarded` value, appending the `for=` node of each
/// element (`None` when an element has no single readable `for=`).
pub(crate) fn parse_forwarded(value: &str, hops: &mut Vec<Hop>) {
    for element in split_unquoted(value, b',') {
        let mut found: Option<Hop> = None;
        let mut broken = false;
        for pair in split_unquoted(element, b';') {
            let pair = pair.trim_matches([' ', '\t']);
            if pair.is_empty() {
                continue;
            }
            let Some((name, raw)) = pair.split_once('=') else {
                broken = true;
                continue;
            };
            if !is_token(name) {
                broken = true;
                continue;
            }
            if name.eq_ignore_ascii_case("for") {
                if found.is_some() {
                    broken = true; // two `for=` in one element: ambiguous
                }
                found = Some(unquote(raw).and_then(|v| parse_node(&v, true)));
            } else if unquote(raw).is_none() {
                broken = true;
            }
        }
        hops.push(if broken { None } else { found.flatten() });
    }
}

/// Splits `s` at `sep` outside double-quoted strings (with `\` escapes).
fn split_unquoted(s: &str, sep: u8) -> impl Iterator<Item = &str> {
    let bytes = s.as_bytes();
    let mut start = 0;
    let mut pos = 0;
    let mut in_quotes = false;
    let mut done = false;
    std::iter::from_fn(move || {
        if done {
            return None;
        }
        while pos < bytes.len() {
            let b = bytes[pos];
            if in_quotes && b == b'\\' {
                pos += 2;
                continue;
            }
            if b == b'"' {
                in_quotes = !in_quotes;
            } else if b == sep && !in_quotes {
                let piece = &s[start..pos];
                pos += 1;
                start = pos;
                return Some(piece);
            }
            pos += 1;
        }
        done = true;
        // `pos` may have skipped past the end on a trailing backslash.
        Some(&s[start.min(s.len())..])
    })
}

fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// A token, or a quoted-string with its escapes resolved; `None` if neither.
fn unquote(raw: &str) -> Option<std::borrow::Cow<'_, str>> {
    let Some(inner) = raw.strip_prefix('"') else {
        return is_token(raw).then_some(std::borrow::Cow::Borrowed(raw));
    };
    let inner = inner.strip_suffix('"')?;
    if !inner.contains('\\') {
        return (!inner.contains('"')).then_some(std::borrow::Cow::Borrowed(inner));
    }
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.push(chars.next()?),
            '"' => return None,
            c => out.push(c),
        }
    }
    Some(std::borrow::Cow::Owned(out))
}

/// A node: `1.2.3.4`, `1.2.3.4:80`, `[2001:db8::1]`, `[2001:db8::1]:443`,
/// or a bare IPv6 address. `unknown` and obfuscated (`_x`) nodes are `None`.
/// Forwarded (`rfc7239`) also allows obfuscated ports (`:_abc`).
fn parse_node(node: &str, rfc7239: bool) -> Hop {
    if let Ok(ip) = node.parse::<IpAddr>() {
        return Some(ip);
    }
    let port_ok = |port: &str| {
        (!port.is_empty()
            && port.len() <= 5
            && port.bytes().all(|b| b.is_ascii_digit())
            && port.parse::<u16>().is_ok())
            || (rfc7239
                && port.len() > 1
                && port.starts_with('_')
                && port[1..]
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b)))
    };
    if let Some(rest) = node.strip_prefix('[') {
        let (addr, after) = rest.split_once(']')?;
        let ip = addr.parse::<Ipv6Addr>().ok()?;
        return match after.strip_prefix(':') {
            None if after.is_empty() => Some(IpAddr::V6(ip)),
            Some(port) if port_ok(port) => Some(IpAddr::V6(ip)),
            _ => None,
        };
    }
    let (addr, port) = node.split_once(':')?;
    let ip = addr.parse::<Ipv4Addr>().ok()?;
    port_ok(port).then_some(IpAddr::V4(ip))
}

impl<S> Layer<S> for ClientIpLayer {
    type Service = ClientIpService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ClientIpService {
            inner,
            config: self.config.clone(),
        }
    }
}

/// The service built by [`ClientIpLayer`] (the name `ClientIp` is taken by
/// the extension type).
#[derive(Clone, Debug)]
pub struct ClientIpService<S> {
    inner: S,
    config: Arc<Config>,
}

impl<S> ClientIpService<S> {
    /// Wraps `inner`, trusting no proxy.
    pub fn new(inner: S) -> Self {
        ClientIpLayer::new().layer(inner)
    }

    /// A layer trusting no proxy; see [`ClientIpLayer::builder`] for more.
    pub fn layer() -> ClientIpLayer {
        ClientIpLayer::new()
    }

    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Consumes `self`, returning the inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, B> Service<Request<B>> for ClientIpService<S>
where
    S: Service<Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        match peer_addr(req.extensions()) {
            Some(peer) => {
                let ip = self.config.resolve(peer.ip(), req.headers());
                req.extensions_mut().insert(ClientIp(ip));
            }
            None => {
                if !self.config.warned_no_peer.swap(true, Ordering::Relaxed) {
                    tracing::warn!(
                        "ClientIpLayer: no peer address on the request (serve with \
                         into_make_service_with_connect_info::<SocketAddr>() or insert \
                         PeerAddr); no ClientIp is set and per-IP limits will refuse requests"
                    );
                }
            }
        }
        ResponseFuture {
            inner: self.inner.call(req),
        }
    }
}

/// Response future of [`ClientIpService`]: the inner future, unchanged.
#[pin_project]
#[derive(Debug)]
pub struct ResponseFuture<F> {
    #[pin]
    inner: F,
}

impl<F: Future> Future for ResponseFuture<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.project().inner.poll(cx)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::convert::Infallible;

    use http::{HeaderValue, Response};
    use tower::{ServiceExt, service_fn};

    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (n, v) in pairs {
            h.append(*n, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    fn behind(proxies: &[&str]) -> ClientIpLayer {
        ClientIpLayer::builder()
            .trust_proxies(proxies.iter().copied())
            .build()
            .unwrap()
    }

    async fn through(layer: ClientIpLayer, req: Request<()>) -> Option<ClientIp> {
        let svc = layer.layer(service_fn(|req: Request<()>| async move {
            Ok::<_, Infallible>(Response::new(req.extensions().get::<ClientIp>().copied()))
        }));
        svc.oneshot(req).await.unwrap().into_body()
    }

    #[test]
    fn cidr_parsing() {
        let c: Cidr = "10.0.0.0/8".parse().unwrap();
        assert!(c.contains(ip("10.255.1.2")));
        assert!(!c.contains(ip("11.0.0.1")));
        assert!(c.contains(ip("::ffff:10.1.1.1")), "v4-mapped counts as v4");
        let c: Cidr = "2001:db8::/32".parse().unwrap();
        assert!(c.contains(ip("2001:db8:ffff::1")));
        assert!(!c.contains(ip("2001:db9::1")));
        assert!(!c.contains(ip("10.0.0.1")));
        let c: Cidr = "192.0.2.7".parse().unwrap();
        assert_eq!(c.to_string(), "192.0.2.7/32");
        assert!(c.contains(ip("192.0.2.7")) && !c.contains(ip("192.0.2.8")));
        let all: Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains(ip("8.8.8.8")));
        let all6: Cidr = "::/0".parse().unwrap();
        assert!(all6.contains(ip("2001:db8::1")) && !all6.contains(ip("8.8.8.8")));
        let mapped: Cidr = "::ffff:10.0.0.0/104".parse().unwrap();
        assert_eq!(mapped.to_string(), "10.0.0.0/8");
    }

    #[test]
    fn bad_cidrs_are_config_errors() {
        for bad in [
            "10.0.0.0/33",
            "::/129",
            "10.0.0.1/8",
            "10.0.0/8",
            "10.0.0.0/",
            "10.0.0.0/+8",
            "hello",
            "",
            "::ffff:10.0.0.0/8",
        ] {
            let err = ClientIpLayer::builder()
                .trust_proxy(bad)
                .build()
                .unwrap_err();
            assert_eq!(err.setting, "trusted proxy", "{bad}");
        }
        let err = "10.0.0.1/8".parse::<Cidr>().unwrap_err();
        assert!(err.reason.contains("did you mean 10.0.0.0/8"), "{err}");
    }

    #[test]
    fn untrusted_peer_ignores_every_header() {
        let layer = behind(&["10.0.0.0/8"]);
        let h = headers(&[
            ("x-forwarded-for", "1.1.1.1"),
            ("forwarded", "for=2.2.2.2"),
            ("x-real-ip", "3.3.3.3"),
        ]);
        assert_eq!(layer.resolve(ip("203.0.113.9"), &h), ip("203.0.113.9"));
        let none = ClientIpLayer::new();
        assert_eq!(none.resolve(ip("10.0.0.1"), &h), ip("10.0.0.1"));
    }

    #[test]
    fn x_forwarded_for_right_to_left() {
        let layer = behind(&["10.0.0.0/8"]);
        let h = headers(&[("x-forwarded-for", "6.6.6.6, 203.0.113.5, 10.0.0.2")]);
        assert_eq!(layer.resolve(ip("10.0.0.1"), &h), ip("203.0.113.5"));
        // Several header lines are one list, in order.
        let h = headers(&[
            ("x-forwarded-for", "6.6.6.6"),
            ("x-forwarded-for", "203.0.113.5"),
        ]);
        assert_eq!(layer.resolve(ip("10.0.0.1"), &h), ip("203.0.113.5"));
        // All hops trusted: the left-most one.
        let h = headers(&[("x-forwarded-for", "10.9.9.9, 10.0.0.2")]);
        assert_eq!(layer.resolve(ip("10.0.0.1"), &h), ip("10.9.9.9"));
        // Ports and brackets are tolerated.
        let h = headers(&[("x-forwarded-for", "[2001:db8::7]:1234, 198.51.100.1:80")]);
        assert_eq!(layer.resolve(ip("10.0.0.1"), &h), ip("198.51.100.1"));
    }

    #[test]
    fn malformed_hop_falls_back_to_last_trusted() {
        let layer = behind(&["10.0.0.0/8"]);
        for bad in [
            "garbage",
            "",
            "1.2.3.4.5",
            "unknown",
            "1.2.3.4:99999",
            "01.2.3.4",
        ] {
            let h = headers(&[("x-forwarded-for", &format!("6.6.6.6, {bad}, 10.0.0.3"))]);
            assert_eq!(layer.resolve(ip("10.0.0.1"), &h), ip("10.0.0.3"), "{bad:?}");
            let h = headers(&[("x-forwarded-for", bad)]);
            assert_eq!(layer.resolve(ip("10.0.0.1"), &h), ip("10.0.0.1"), "{bad:?}");
        }
        // Garbage to the left of the client does not matter.
        let h = headers(&[("x-forwarded-for", "%%%, 198.51.100.2")]);
        assert_eq!(layer.resolve(ip("10.0.0.1"), &h), ip("198.51.100.2"));
        // Non-UTF-8 bytes.
        let mut h = HeaderMap::new();
        h.insert(
            "x-forwarded-for",
            HeaderValue::from_bytes(b"\xff1.2.3.4").unwrap(),
        );
        assert_eq!(layer.resolve(ip("10.0.0.1"), &h), ip("10.0.0.1"));
    }

    #[test]
    fn forwarded_rfc7239() {
        let layer = behind(&["10.0.0.0/8", "2001:db8:ffff::/48"]);
        let cases = [
            (r#"for=192.0.2.60;proto=http;by=203.0.113.43"#, "192.0.2.60"),
            (r#"For="[2001:db8:cafe::17]:4711""#, "2001:db8:cafe::17"),
            (r#"for="[2001:db8:cafe::17]""#, "2001:db8:cafe::17"),
            (r#"for=192.0.2.43, for=198.51.100.17"#, "198.51.100.17"),
            (
                r#"for=198.51.100.17, for="[2001:db8:ffff::1]""#,
                "198.51.100.17",
            ),
            (r#"for="192.0.2.43:47011""#, "192.0.2.43"),
            (r#"for="_gazonk""#, "10.0.0.1"),
            (r#"for=unknown"#, "10.0.0.1"),
            (r#"for=192.0.2.43, for=unknown"#, "10.0.0.1"),
            (r#"for=192.0.2.43, for=unknown, for=10.0.0.8"#, "10.0.0.8"),
            (r#"for="[2001:db8::1]:_port""#, "2001:db8::1"),
            (r#"proto=https"#, "10.0.0.1"),
            (r#"for=1.2.3.4;for=5.6.7.8"#, "10.0.0.1"),
            (r#"for="1.2.3.4"#, "10.0.0.1"),
            (r#"for=[2001:db8::1]"#, "10.0.0.1"),
            (r#"for=1.2.3.4; proto="a,b", for=5.6.7.8"#, "5.6.7.8"),
            (r#"for="\1\.2.3.4""#, "1.2.3.4"),
        ];
        for (value, want) in cases {
            let h = headers(&[("forwarded", value)]);
            assert_eq!(layer.resolve(ip("10.0.0.1"), &h), ip(want), "{value}");
        }
    }

    #[test]
    fn header_choice() {
        let h = headers(&[
            ("x-forwarded-for", "198.51.100.1"),
            ("forwarded", "for=198.51.100.2"),
            ("x-real-ip", "198.51.100.3"),
        ]);
        let peer = ip("10.0.0.1");
        // Default: X-Forwarded-For first.
        assert_eq!(
            behind(&["10.0.0.0/8"]).resolve(peer, &h),
            ip("198.51.100.1")
        );
        let only = |kinds: &[ForwardingHeader]| {
            ClientIpLayer::builder()
                .trust_proxy("10.0.0.0/8")
                .headers(kinds.iter().copied())
                .build()
                .unwrap()
        };
        assert_eq!(
            only(&[ForwardingHeader::Forwarded]).resolve(peer, &h),
            ip("198.51.100.2")
        );
        assert_eq!(
            only(&[ForwardingHeader::XRealIp]).resolve(peer, &h),
            ip("198.51.100.3")
        );
        assert_eq!(only(&[]).resolve(peer, &h), peer);
        // Default falls back to Forwarded when there is no X-Forwarded-For.
        let h2 = headers(&[
            ("forwarded", "for=198.51.100.2"),
            ("x-real-ip", "198.51.100.3"),
        ]);
        assert_eq!(
            behind(&["10.0.0.0/8"]).resolve(peer, &h2),
            ip("198.51.100.2")
        );
        // X-Real-IP is off by default.
        let h3 = headers(&[("x-real-ip", "198.51.100.3")]);
        assert_eq!(behind(&["10.0.0.0/8"]).resolve(peer, &h3), peer);
        // Two X-Real-IP values: ambiguous, ignored.
        let h4 = headers(&[("x-real-ip", "198.51.100.3"), ("x-real-ip", "198.51.100.4")]);
        assert_eq!(only(&[ForwardingHeader::XRealIp]).resolve(peer, &h4), peer);
    }

    #[test]
    fn ipv4_mapped_peers_are_canonical() {
        let layer = behind(&["127.0.0.0/8"]);
        let h = headers(&[("x-forwarded-for", "::ffff:198.51.100.1")]);
        assert_eq!(
            layer.resolve(ip("::ffff:127.0.0.1"), &h),
            ip("198.51.100.1")
        );
        assert_eq!(
            ClientIpLayer::new().resolve(ip("::ffff:192.0.2.1"), &HeaderMap::new()),
            ip("192.0.2.1")
        );
    }

    #[tokio::test]
    async fn layer_inserts_client_ip_from_peer_addr() {
        let mut req = Request::new(());
        req.headers_mut()
            .insert("x-forwarded-for", HeaderValue::from_static("6.6.6.6"));
        req.extensions_mut()
            .insert(PeerAddr("192.0.2.1:4000".parse().unwrap()));
        assert_eq!(
            through(ClientIpLayer::new(), req).await,
            Some(ClientIp(ip("192.0.2.1")))
        );

        let mut req = Request::new(());
        req.headers_mut()
            .insert("x-forwarded-for", HeaderValue::from_static("198.51.100.9"));
        req.extensions_mut()
            .insert(PeerAddr("127.0.0.1:4000".parse().unwrap()));
        let layer = ClientIpLayer::builder().trust_loopback().build().unwrap();
        assert_eq!(
            through(layer, req).await,
            Some(ClientIp(ip("198.51.100.9")))
        );
    }

    #[tokio::test]
    async fn no_peer_means_no_client_ip() {
        let mut req = Request::new(());
        req.headers_mut()
            .insert("x-forwarded-for", HeaderValue::from_static("198.51.100.9"));
        let layer = ClientIpLayer::builder()
            .trust_private_networks()
            .build()
            .unwrap();
        assert_eq!(through(layer.clone(), req).await, None);
        assert_eq!(through(layer, Request::new(())).await, None);
    }

    #[test]
    fn from_extensions_falls_back_to_peer() {
        let mut ext = Extensions::new();
        assert_eq!(ClientIp::from_extensions(&ext), None);
        ext.insert(PeerAddr("[::ffff:192.0.2.5]:80".parse().unwrap()));
        assert_eq!(
            ClientIp::from_extensions(&ext),
            Some(ClientIp(ip("192.0.2.5")))
        );
        ext.insert(ClientIp(ip("198.51.100.1")));
        assert_eq!(
            ClientIp::from_extensions(&ext),
            Some(ClientIp(ip("198.51.100.1")))
        );
    }

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
        assert!(detail.contains("ClientIpLayer"), "{detail}");
        if cfg!(feature = "axum") {
            assert!(detail.contains("no ConnectInfo<SocketAddr>"), "{detail}");
        } else {
            assert!(detail.contains("`axum` feature is off"), "{detail}");
        }
    }

    #[cfg(feature = "axum")]
    #[test]
    fn from_extensions_reads_connect_info() {
        let mut ext = Extensions::new();
        ext.insert(axum::extract::ConnectInfo::<SocketAddr>(
            "192.0.2.9:1".parse().unwrap(),
        ));
        assert_eq!(
            ClientIp::from_extensions(&ext),
            Some(ClientIp(ip("192.0.2.9")))
        );
    }
}
