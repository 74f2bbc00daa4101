//! [`SetClientIpLayer`] and its builder: configuration only.

use std::net::IpAddr;
use std::sync::Arc;

use http::HeaderMap;
use tower::Layer;

use super::forwarded::{Resolver, default_headers};
use super::service::Shared;
use super::{Cidr, ForwardingHeader, SetClientIp};
use crate::error::ConfigError;

/// Resolves [`ClientIp`](super::ClientIp) and puts it into request
/// extensions. See the [module docs](super), in particular `# Security`.
#[derive(Clone, Debug)]
#[must_use]
pub struct SetClientIpLayer {
    shared: Arc<Shared>,
}

impl SetClientIpLayer {
    /// No trusted proxies: the client is the TCP peer, forwarding headers are
    /// ignored.
    pub fn new() -> Self {
        Self::from_parts(Vec::new(), default_headers())
    }

    /// A builder for trusted proxies and headers.
    pub fn builder() -> SetClientIpBuilder {
        SetClientIpBuilder {
            trusted: Vec::new(),
            headers: default_headers(),
            error: None,
        }
    }

    fn from_parts(trusted: Vec<Cidr>, headers: Vec<ForwardingHeader>) -> Self {
        Self {
            shared: Arc::new(Shared::new(Resolver::new(trusted, headers))),
        }
    }

    /// The client address for a request from `peer` with `headers`, by the
    /// rules of this layer.
    pub fn resolve(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        self.shared.resolver().resolve(peer, headers)
    }
}

impl Default for SetClientIpLayer {
    fn default() -> Self {
        Self::new()
    }
}

impl<S> Layer<S> for SetClientIpLayer {
    type Service = SetClientIp<S>;

    fn layer(&self, inner: S) -> Self::Service {
        SetClientIp::with_shared(inner, self.shared.clone())
    }
}

/// Builds a [`SetClientIpLayer`]; the first invalid setting is reported by
/// [`build`](Self::build).
#[derive(Clone, Debug)]
#[must_use]
pub struct SetClientIpBuilder {
    trusted: Vec<Cidr>,
    headers: Vec<ForwardingHeader>,
    error: Option<ConfigError>,
}

impl SetClientIpBuilder {
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
    pub fn build(self) -> Result<SetClientIpLayer, ConfigError> {
        match self.error {
            Some(e) => Err(e),
            None => Ok(SetClientIpLayer::from_parts(self.trusted, self.headers)),
        }
    }
}
