//! The client's address, resolved once per request.
//!
//! [`ClientIp`] is what per-IP limits key on. [`SetClientIpLayer`] puts it
//! into request extensions; everything downstream (rate limits, events, the
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
//! use tower_otp::client_ip::{ClientIp, PeerAddr, SetClientIpLayer};
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! // Behind a load balancer on 10.0.0.0/8 that appends to X-Forwarded-For.
//! let layer = SetClientIpLayer::builder().trust_proxy("10.0.0.0/8").build().unwrap();
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
//! * With no trusted proxy configured ([`SetClientIpLayer::new`]), forwarding
//!   headers are **ignored** and the client is the TCP peer. This is right
//!   for a server that faces the internet directly.
//! * Forwarding headers are read only when the TCP peer itself is a trusted
//!   proxy, and then **right to left**: each proxy appends the address it saw,
//!   so only the right-most entries were written by machines you control. The
//!   left-most entry is whatever the client typed. The first hop that is not
//!   a trusted proxy is the client.
//! * Configure exactly the header your proxy sets
//!   ([`SetClientIpBuilder::headers`]). By default `X-Forwarded-For` is read,
//!   and `Forwarded` only when no `X-Forwarded-For` is present. If your proxy
//!   sets neither, or sets one but passes the other through from the client,
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
//! Per-IP limits — `RateLimitLayer` with `rate_limit::ByClientIp` or a
//! [`ClientIpKey`], and the `OtpRouter` — all key on the same function of the
//! resolved address: IPv4 per address, IPv6 per /64 by default (configurable
//! from /48 to /128 with [`ClientIpKey`]), IPv4-mapped IPv6 as the IPv4
//! address. A client that owns a /64 cannot multiply its budget by rotating
//! addresses inside it.
//!
//! # Extractor (feature `axum`)
//!
//! [`ClientIp`] is an axum extractor. It reads what the layer put into
//! request extensions and, when that is missing, rejects with the same
//! problem+json document the layers answer with (`Problem` implements axum's
//! `IntoResponse`, so handlers can return it too):
//!
//! | extractor | put there by | when missing |
//! |---|---|---|
//! | [`ClientIp`] | [`SetClientIpLayer`], else the TCP peer (`ConnectInfo` / [`PeerAddr`]) | `500 client_ip_unavailable` |
//!
//! The example is on the extractor's `FromRequestParts` implementation.

mod addr;
mod cidr;
mod forwarded;
mod layer;
mod limit_key;
mod service;

pub use addr::{ClientIp, PeerAddr};
pub use cidr::Cidr;
pub use forwarded::ForwardingHeader;
pub use layer::{SetClientIpBuilder, SetClientIpLayer};
pub use limit_key::{ClientIpKey, ClientIpKeyBuilder, DEFAULT_IPV6_PREFIX, IPV6_PREFIX_RANGE};
pub use service::SetClientIp;

#[cfg(any(test, fuzzing))]
pub(crate) use forwarded::{Hop, parse_forwarded, parse_x_forwarded_for};
pub(crate) use limit_key::{AddressText, limit_key_text, push_limit_key};
// For the axum extractor and the error module's tests.
#[cfg(any(test, feature = "axum"))]
pub(crate) use limit_key::unavailable;
