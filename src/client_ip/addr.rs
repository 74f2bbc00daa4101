//! The resolved client address and the TCP peer address, as request
//! extensions; reading them back (and, feature `axum`, the extractor).

use std::net::{IpAddr, SocketAddr};

use http::Extensions;
use http::request::Parts;

/// The resolved client address, in request extensions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ClientIp(pub IpAddr);

/// The TCP peer address of the connection, in request extensions (for plain
/// hyper servers; axum's `ConnectInfo` is read under the `axum` feature).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PeerAddr(pub SocketAddr);

impl ClientIp {
    /// The client address for a request: the [`ClientIp`] put there by
    /// [`SetClientIpLayer`](super::SetClientIpLayer) if any, else the TCP
    /// peer ([`PeerAddr`], or axum's `ConnectInfo<SocketAddr>` with the
    /// `axum` feature) with no proxy trusted. `None` when neither is known.
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

/// The TCP peer address: [`PeerAddr`], else (feature `axum`) `ConnectInfo`.
pub(super) fn peer_addr(extensions: &Extensions) -> Option<SocketAddr> {
    if let Some(PeerAddr(addr)) = extensions.get::<PeerAddr>() {
        return Some(*addr);
    }
    #[cfg(feature = "axum")]
    if let Some(info) = extensions.get::<axum::extract::ConnectInfo<SocketAddr>>() {
        return Some(info.0);
    }
    None
}

/// Extracts the [`ClientIp`] (see [`ClientIp::from_parts`]: the one
/// [`SetClientIpLayer`](super::SetClientIpLayer) put there, else the TCP
/// peer). Without either the request is refused with
/// `500 client_ip_unavailable`.
///
/// ```
/// use std::net::SocketAddr;
/// use axum::{Router, routing::get};
/// use tower_otp::client_ip::{ClientIp, SetClientIpLayer};
///
/// async fn whoami(ClientIp(ip): ClientIp) -> String {
///     ip.to_string()
/// }
///
/// let app: Router = Router::new()
///     .route("/whoami", get(whoami))
///     .layer(SetClientIpLayer::new());
/// // axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
/// # let _ = app;
/// ```
#[cfg(feature = "axum")]
impl<S: Send + Sync> axum::extract::FromRequestParts<S> for ClientIp {
    type Rejection = crate::error::Problem;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        ClientIp::from_parts(parts).ok_or_else(|| {
            tracing::warn!(
                "no client address: serve with into_make_service_with_connect_info::<SocketAddr>() \
                 or add SetClientIpLayer"
            );
            super::unavailable()
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::test_helpers::ip;

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

    #[cfg(feature = "axum")]
    mod extractor {
        use axum::extract::FromRequestParts;
        use axum::response::IntoResponse;
        use http::{Request, StatusCode};

        use super::super::*;
        use crate::error::Problem;

        async fn extract(req: Request<()>) -> Result<ClientIp, Problem> {
            let (mut parts, ()) = req.into_parts();
            ClientIp::from_request_parts(&mut parts, &()).await
        }

        #[tokio::test]
        async fn client_ip_from_layer_or_peer() {
            let mut req = Request::new(());
            req.extensions_mut()
                .insert(PeerAddr("192.0.2.1:80".parse().unwrap()));
            assert_eq!(
                extract(req).await.unwrap(),
                ClientIp("192.0.2.1".parse().unwrap())
            );
            let mut req = Request::new(());
            req.extensions_mut()
                .insert(ClientIp("198.51.100.4".parse().unwrap()));
            assert_eq!(
                extract(req).await.unwrap(),
                ClientIp("198.51.100.4".parse().unwrap())
            );
        }

        #[tokio::test]
        async fn missing_client_ip_is_a_problem_response() {
            let problem = extract(Request::new(())).await.unwrap_err();
            let res = IntoResponse::into_response(problem);
            assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
            assert_eq!(res.headers()["content-type"], "application/problem+json");
            let body = axum::body::to_bytes(res.into_body(), 4096).await.unwrap();
            let doc: serde_json::Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(doc["code"], "client_ip_unavailable");
        }
    }
}
