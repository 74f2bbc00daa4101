//! The reference server on the embedded store.
//!
//! Run: `cargo run --example quickstart`
//!
//! An axum app with its own protected route (`GET /api/me`), the OTP endpoints
//! nested at `/auth`, `MemoryStore`, and `LogNotifier`, which prints each code
//! as one JSON line on stdout. Everything else (this how-to, logs) goes to stderr.
//!
//! Optional settings, from the environment:
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `PORT` | `3000` | port on 127.0.0.1 (`0`: any free port; the banner shows it) |
//! | `OTP_SECRET` | random per run | server secret, ≥ 32 bytes (e.g. `openssl rand -hex 32`); unset, a fresh random one is made at start, so tokens die with the process |
//! | `HEADER_TIMEOUT_SECS` | `10` | a request head must arrive within this, else the connection is closed |
//! | `BODY_TIMEOUT_SECS` | `10` | a request body must arrive within this of its head, else `408` and close |
//! | `IDLE_TIMEOUT_SECS` | `5` | an idle keep-alive connection is closed after this |
//! | `MAX_CONNECTIONS` | `1024` | open connections at most; more wait (unaccepted) until one closes |
//! | `RUST_LOG` | `info` | log filter (logs go to stderr) |
//!
//! The serving code (timeouts, connection cap, graceful shutdown on Ctrl-C)
//! is `examples/support/serve.rs`, shared by the reference servers.

use std::net::SocketAddr;

use axum::routing::get;
use axum::{Extension, Json, Router};
use serde_json::{Value, json};
use tower::ServiceBuilder;
use tower_otp::client_ip::SetClientIpLayer;
use tower_otp::jwt::Claims;
use tower_otp::notify::LogNotifier;
use tower_otp::otp::OtpRouter;
use tower_otp::security_headers::SecurityHeadersLayer;
use tower_otp::store::MemoryStore;

#[path = "support/secret.rs"]
mod secret;
#[path = "support/serve.rs"]
mod serve;

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
    let limits = serve::Limits::from_env()?;
    let secret = secret::otp_secret_or_random();

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
            // No trusted proxies: the client is the TCP peer (axum's
            // `ConnectInfo`, read under tower-otp's `axum` feature), and forwarding
            // headers are ignored. Behind a proxy, trust its address here.
            .layer(SetClientIpLayer::new()),
    );

    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    let base = format!("http://{}", listener.local_addr()?);
    eprintln!(
        r#"tower-otp quickstart listening on {base}

Codes are printed on stdout, one JSON line each; to keep them in a file, start
me as `cargo run --example quickstart > codes.jsonl`. Then, in that directory
(the README's walk-through goes on with refresh and logout):

  1. ask for a code (202), and take it from the server's stdout:
     curl -si -X POST {base}/auth/otp/request -H 'content-type: application/json' -d '{{"phone":"+14155550100"}}'
     CODE=$(tail -n 1 codes.jsonl | sed -E 's/.*"code":"([0-9]+)".*/\1/')
  2. trade it for tokens:
     TOKENS=$(curl -s -X POST {base}/auth/otp/verify -H 'content-type: application/json' -d "{{\"phone\":\"+14155550100\",\"code\":\"$CODE\"}}")
     ACCESS=$(echo "$TOKENS" | sed -E 's/.*"access_token":"([^"]+)".*/\1/')
  3. call the protected route:
     curl -si {base}/api/me -H "authorization: Bearer $ACCESS"
"#
    );
    serve::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
        limits,
        async {
            let _ = tokio::signal::ctrl_c().await;
        },
    )
    .await?;
    Ok(())
}

async fn me(Extension(claims): Extension<Claims<Value>>) -> Json<Value> {
    Json(json!({
        "subject": claims.registered().sub,
        "session": claims.registered().sid,
        "expires_at": claims.registered().exp,
    }))
}
