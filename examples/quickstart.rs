//! The reference server on the embedded store.
//!
//! Run: `cargo run --example quickstart` (optional: `PORT=3000`, `JWT_SECRET=<32+ bytes>`).
//!
//! An axum app with its own protected route (`GET /api/me`), the OTP endpoints
//! nested at `/auth`, `MemoryStore`, and `LogNotifier`, which prints each code
//! as one JSON line on stdout. Everything else (this how-to, logs) goes to stderr.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Request};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::get;
use axum::{Extension, Json, Router};
use serde_json::{Value, json};
use tower::ServiceBuilder;
use tower_otp::client_ip::{ClientIpLayer, PeerAddr};
use tower_otp::jwt::Claims;
use tower_otp::notify::LogNotifier;
use tower_otp::otp::OtpRouter;
use tower_otp::security_headers::SecurityHeadersLayer;
use tower_otp::store::MemoryStore;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();

    let port: u16 = std::env::var("PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(3000);
    let secret = match std::env::var("JWT_SECRET") {
        Ok(secret) => secret,
        Err(_) => {
            let bytes: [u8; 32] = rand::random();
            eprintln!(
                "JWT_SECRET is not set: generated a random secret for this run (tokens will not survive a restart)."
            );
            bytes.iter().map(|b| format!("{b:02x}")).collect()
        }
    };

    let auth = OtpRouter::builder(MemoryStore::new(), LogNotifier)
        .secret(&secret)
        .build()?;

    let api = Router::new()
        .route("/api/me", get(me))
        .route_layer(auth.jwt_layer::<Value>());
    let app = Router::new().merge(api).nest_service("/auth", auth).layer(
        // One ServiceBuilder: outermost first.
        ServiceBuilder::new()
            .layer(SecurityHeadersLayer::new())
            .layer(middleware::from_fn(peer_addr))
            // No trusted proxies: the client is the TCP peer, and forwarding
            // headers are ignored. Behind a proxy, trust its address here.
            .layer(ClientIpLayer::new()),
    );

    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    let base = format!("http://{}", listener.local_addr()?);
    eprintln!(
        "tower-otp quickstart listening on {base}

  1. ask for a code (it is printed below as a JSON line):
     curl -i -X POST {base}/auth/otp/request -H 'content-type: application/json' -d '{{\"phone\":\"+14155550100\"}}'
  2. trade it for tokens:
     curl -s -X POST {base}/auth/otp/verify -H 'content-type: application/json' -d '{{\"phone\":\"+14155550100\",\"code\":\"123456\"}}'
  3. call the protected route:
     curl -s {base}/api/me -H 'authorization: Bearer <access_token>'
"
    );
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await?;
    Ok(())
}

/// Hands the TCP peer address to tower-otp's per-IP limits.
async fn peer_addr(
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    mut req: Request,
    next: Next,
) -> Response {
    req.extensions_mut().insert(PeerAddr(addr));
    next.run(req).await
}

async fn me(Extension(claims): Extension<Claims<Value>>) -> Json<Value> {
    Json(json!({
        "subject": claims.registered().sub,
        "session": claims.registered().sid,
        "expires_at": claims.registered().exp,
    }))
}
