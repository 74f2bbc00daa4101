//! The reference server on the embedded store, with a login page.
//!
//! Run: `cargo run --example quickstart`, then open the address it prints
//! (`http://127.0.0.1:3000`) in a browser.
//!
//! An axum app with a login page (`GET /`, `examples/support/login.html`), its
//! own protected route (`GET /api/me`), the OTP endpoints nested at `/auth`,
//! `MemoryStore`, and `LogNotifier`, which prints each code as one JSON line
//! on stdout. Everything else (this how-to, logs) goes to stderr.
//!
//! The router runs in browser mode for the two origins the page is served
//! from (`http://127.0.0.1:<port>`, `http://localhost:<port>`): a request from
//! the page gets its refresh token as an `HttpOnly` cookie and a double-submit
//! CSRF token, while a request without `Origin` (curl, the README's
//! walk-through, a mobile app) keeps the JSON contract. `Secure` is dropped
//! from the cookies for these plain-HTTP loopback origins only.
//!
//! The page is one self-contained file (no build step, no CDN). It is served
//! with the security headers' HTML preset and a CSP that allows only what it
//! uses: its one inline script and its one inline style, by the SHA-256 hashes
//! computed here at start-up, and `fetch` to this origin. The API routes keep
//! the API preset.
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

use axum::response::Html;
use axum::routing::get;
use axum::{Extension, Json, Router};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tower::ServiceBuilder;
use tower_otp::client_ip::SetClientIpLayer;
use tower_otp::jwt::Claims;
use tower_otp::notify::LogNotifier;
use tower_otp::otp::{BrowserMode, OtpRouter};
use tower_otp::security_headers::SecurityHeadersLayer;
use tower_otp::store::MemoryStore;

#[path = "support/secret.rs"]
mod secret;
#[path = "support/serve.rs"]
mod serve;

/// The login page served at `GET /`: one file, its script and style inline.
const LOGIN_PAGE: &str = include_str!("support/login.html");

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

    // Bound first: with `PORT=0` the allowed origins need the port it got.
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    let port = listener.local_addr()?.port();
    let base = format!("http://127.0.0.1:{port}");

    let browser = BrowserMode::new("/auth")
        .allow_origin(base.clone())
        .allow_origin(format!("http://localhost:{port}"))
        // Plain HTTP on loopback: a `Secure` cookie would never be sent back.
        .insecure_localhost_cookies(true);
    let auth = OtpRouter::builder(MemoryStore::new(), LogNotifier)
        .secret(&secret)
        .browser_mode(browser)
        .build()?;

    let page = Router::new()
        .route("/", get(login_page))
        // Inside the API preset below: the page's headers are set first, and
        // that layer leaves a header already set alone.
        .route_layer(page_headers(LOGIN_PAGE)?);
    let api = Router::new()
        .route("/api/me", get(me))
        .route_layer(auth.jwt_layer::<Value>());
    let app = Router::new()
        .merge(page)
        .merge(api)
        .nest_service("/auth", auth)
        .layer(
            // One ServiceBuilder: outermost first.
            ServiceBuilder::new()
                .layer(SecurityHeadersLayer::new())
                // No trusted proxies: the client is the TCP peer (axum's
                // `ConnectInfo`, read under tower-otp's `axum` feature), and forwarding
                // headers are ignored. Behind a proxy, trust its address here.
                .layer(SetClientIpLayer::new()),
        );

    eprintln!(
        r#"tower-otp quickstart: sign in at {base} (the login page, in a browser)

Codes are printed on stdout, one JSON line each; to keep them in a file, start
me as `cargo run --example quickstart > codes.jsonl`. Without a browser, in that
directory (the README's walk-through goes on with refresh and logout):

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

async fn login_page() -> Html<&'static str> {
    Html(LOGIN_PAGE)
}

/// The HTML preset with a CSP that allows what `page` uses and nothing
/// else: its inline scripts and styles by hash (no `'unsafe-inline'`, so an
/// injected script does not run), `fetch` to this origin, no framing.
fn page_headers(page: &str) -> Result<SecurityHeadersLayer, Box<dyn std::error::Error>> {
    let csp = format!(
        "default-src 'none'; script-src {}; style-src {}; connect-src 'self'; \
         form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        inline_hashes(page, "script")?,
        inline_hashes(page, "style")?,
    );
    Ok(SecurityHeadersLayer::html_builder()
        .content_security_policy(&csp)
        .frame_options("DENY")
        .build()?)
}

/// The CSP sources (`'sha256-…'`) of the text of every bare `<tag>` element
/// in `page`, or `'none'` when it has none. Hashed at start-up, so editing
/// the page needs no edit here.
fn inline_hashes(page: &str, tag: &str) -> Result<String, String> {
    let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
    let mut sources = Vec::new();
    let mut rest = page;
    while let Some(start) = rest.find(&open) {
        let text = &rest[start + open.len()..];
        let end = text
            .find(&close)
            .ok_or_else(|| format!("the login page has a {open} without {close}"))?;
        let hash = STANDARD.encode(Sha256::digest(&text[..end]));
        sources.push(format!("'sha256-{hash}'"));
        rest = &text[end + close.len()..];
    }
    Ok(if sources.is_empty() {
        "'none'".to_owned()
    } else {
        sources.join(" ")
    })
}

async fn me(Extension(claims): Extension<Claims<Value>>) -> Json<Value> {
    Json(json!({
        "subject": claims.registered().sub,
        "session": claims.registered().sid,
        "expires_at": claims.registered().exp,
    }))
}
