//! axum extractors (feature `axum`).
//!
//! Each extractor reads what a `tower-otp` layer put into request extensions
//! and, when it is missing, rejects with a problem+json response — the same
//! documents the layers answer with. [`Problem`] implements axum's
//! `IntoResponse`, so handlers can return it too.
//!
//! | extractor | put there by | when missing |
//! |---|---|---|
//! | [`ClientIp`] | [`ClientIpLayer`](crate::client_ip::ClientIpLayer), else the TCP peer (`ConnectInfo` / [`PeerAddr`](crate::client_ip::PeerAddr)) | `500 client_ip_unavailable` |
//!
//! ```
//! use std::net::SocketAddr;
//! use axum::{Router, routing::get};
//! use tower_otp::client_ip::{ClientIp, ClientIpLayer};
//!
//! async fn whoami(ClientIp(ip): ClientIp) -> String {
//!     ip.to_string()
//! }
//!
//! let app: Router = Router::new()
//!     .route("/whoami", get(whoami))
//!     .layer(ClientIpLayer::new());
//! // axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
//! # let _ = app;
//! ```

use axum::extract::FromRequestParts;
use axum::response::{IntoResponse, Response};
use http::request::Parts;

use crate::client_ip::ClientIp;

use crate::error::Problem;

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        Problem::into_response(self).map(axum::body::Body::new)
    }
}

// ---- ClientIp -------------------------------------------------------------

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        ClientIp::from_parts(parts).ok_or_else(|| {
            tracing::warn!(
                "no client address: serve with into_make_service_with_connect_info::<SocketAddr>() \
                 or add ClientIpLayer"
            );
            crate::client_ip::unavailable()
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use http::{Request, StatusCode};

    use super::*;
    use crate::client_ip::PeerAddr;

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
