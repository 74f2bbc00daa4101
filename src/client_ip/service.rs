//! [`SetClientIp`], the service: resolves the address of each request.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use http::Request;
use tower::{Layer, Service};

use super::addr::peer_addr;
use super::forwarded::Resolver;
use super::{ClientIp, SetClientIpLayer};

/// What every service built by one layer shares: the rules, and whether the
/// missing-peer warning was logged (once per layer).
#[derive(Debug)]
pub(super) struct Shared {
    resolver: Resolver,
    warned_no_peer: AtomicBool,
}

impl Shared {
    pub(super) fn new(resolver: Resolver) -> Self {
        Self {
            resolver,
            warned_no_peer: AtomicBool::new(false),
        }
    }

    pub(super) fn resolver(&self) -> &Resolver {
        &self.resolver
    }
}

/// The service built by [`SetClientIpLayer`]: puts the resolved
/// [`ClientIp`] into request extensions, then calls the inner service. Its
/// future is the inner service's, unchanged (resolution needs no I/O).
#[derive(Clone, Debug)]
pub struct SetClientIp<S> {
    inner: S,
    shared: Arc<Shared>,
}

impl<S> SetClientIp<S> {
    /// Wraps `inner`, trusting no proxy.
    pub fn new(inner: S) -> Self {
        Self::layer().layer(inner)
    }

    /// A layer trusting no proxy; see [`SetClientIpLayer::builder`] for more.
    pub fn layer() -> SetClientIpLayer {
        SetClientIpLayer::new()
    }

    pub(super) fn with_shared(inner: S, shared: Arc<Shared>) -> Self {
        Self { inner, shared }
    }

    inner_service_accessors!();
}

impl<S, B> Service<Request<B>> for SetClientIp<S>
where
    S: Service<Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        match peer_addr(req.extensions()) {
            Some(peer) => {
                let ip = self.shared.resolver.resolve(peer.ip(), req.headers());
                req.extensions_mut().insert(ClientIp(ip));
            }
            None => {
                if !self.shared.warned_no_peer.swap(true, Ordering::Relaxed) {
                    tracing::warn!(
                        "SetClientIpLayer: no peer address on the request (serve with \
                         into_make_service_with_connect_info::<SocketAddr>() or insert \
                         PeerAddr); no ClientIp is set and per-IP limits will refuse requests"
                    );
                }
            }
        }
        self.inner.call(req)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::convert::Infallible;

    use http::{HeaderValue, Response};
    use tower::{ServiceExt, service_fn};

    use super::*;
    use crate::client_ip::PeerAddr;
    use crate::test_helpers::ip;

    async fn through(layer: SetClientIpLayer, req: Request<()>) -> Option<ClientIp> {
        let svc = layer.layer(service_fn(|req: Request<()>| async move {
            Ok::<_, Infallible>(Response::new(req.extensions().get::<ClientIp>().copied()))
        }));
        svc.oneshot(req).await.unwrap().into_body()
    }

    #[tokio::test]
    async fn layer_inserts_client_ip_from_peer_addr() {
        let mut req = Request::new(());
        req.headers_mut()
            .insert("x-forwarded-for", HeaderValue::from_static("6.6.6.6"));
        req.extensions_mut()
            .insert(PeerAddr("192.0.2.1:4000".parse().unwrap()));
        assert_eq!(
            through(SetClientIpLayer::new(), req).await,
            Some(ClientIp(ip("192.0.2.1")))
        );

        let mut req = Request::new(());
        req.headers_mut()
            .insert("x-forwarded-for", HeaderValue::from_static("198.51.100.9"));
        req.extensions_mut()
            .insert(PeerAddr("127.0.0.1:4000".parse().unwrap()));
        let layer = SetClientIpLayer::builder()
            .trust_loopback()
            .build()
            .unwrap();
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
        let layer = SetClientIpLayer::builder()
            .trust_private_networks()
            .build()
            .unwrap();
        assert_eq!(through(layer.clone(), req).await, None);
        assert_eq!(through(layer, Request::new(())).await, None);
    }
}
