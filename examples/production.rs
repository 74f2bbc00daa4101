//! The reference server for several instances behind a load balancer.
//!
//! Run: `REDIS_URL=redis://127.0.0.1:6379 OTP_SECRET=$(openssl rand -hex 32) \
//!       cargo run --release --features redis,twilio,smtp --example production`
//!
//! Configuration, all from the environment (refused at start-up when wrong):
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `REDIS_URL` | required | `redis://[:password@]host:port[/db]` of the shared store |
//! | `OTP_SECRET` | required | server secret, ≥ 32 bytes and not repetitive (e.g. `openssl rand -hex 32`) |
//! | `BIND_ADDR` | `127.0.0.1:3000` | address to listen on |
//! | `REDIS_PREFIX` | `tower-otp` | key prefix (one per application) |
//! | `REDIS_TIMEOUT_MS` | `500` | bound on every store call; past it requests get `503` |
//! | `OTP_ALLOWED_CALLING_CODES` | `1` | comma-separated calling codes that may receive SMS (toll-fraud guard) |
//! | `OTP_ISSUER` / `OTP_AUDIENCE` | unset | `iss` / `aud` put into and required from access tokens |
//! | `OTP_APP_NAME` | `tower-otp` | `{{app_name}}` in messages |
//! | `SHUTDOWN_GRACE_SECS` | `10` | how long in-flight requests may finish after SIGTERM / Ctrl-C |
//! | `HEADER_TIMEOUT_SECS` | `10` | a request head must arrive within this, else the connection is closed |
//! | `BODY_TIMEOUT_SECS` | `10` | a request body must arrive within this of its head, else `408` and close |
//! | `IDLE_TIMEOUT_SECS` | `5` | an idle keep-alive connection is closed after this |
//! | `MAX_CONNECTIONS` | `1024` | open connections at most; more wait (unaccepted, in the listen backlog) until one closes |
//! | `TRUSTED_PROXIES` | unset | comma-separated CIDRs of reverse proxies whose `X-Forwarded-For` / `Forwarded` are believed |
//! | `TWILIO_ACCOUNT_SID`, `TWILIO_AUTH_TOKEN` (or `TWILIO_API_KEY_SID` + `TWILIO_API_KEY_SECRET`), `TWILIO_FROM` or `TWILIO_MESSAGING_SERVICE_SID` | unset | SMS through Twilio (feature `twilio`); see `notify::TwilioSms::from_env` |
//! | `SMTP_URL`, `SMTP_FROM` | unset | email through SMTP (feature `smtp`); see `notify::SmtpEmail::from_env` |
//! | `RUST_LOG` | `info` | log filter; logs are JSON lines on stderr |
//!
//! Endpoints: the OTP contract under `/auth` (DESIGN.md), `GET /auth/health/live`
//! (process up) and `GET /auth/health/ready` (Redis answers; `503` otherwise —
//! point the load balancer's readiness probe here), and a protected
//! `GET /api/me`. A channel with no provider configured falls back to
//! `LogNotifier` (codes on stdout) and says so loudly at start-up.
//!
//! The serving code (the timeouts and connection cap above, graceful
//! shutdown) is `examples/support/serve.rs`, shared by the reference servers.

use std::net::SocketAddr;
use std::time::Duration;

use axum::routing::get;
use axum::{Extension, Json, Router};
use serde_json::{Value, json};
use tower::ServiceBuilder;
use tower_otp::client_ip::SetClientIpLayer;
use tower_otp::jwt::{Claims, MIN_SECRET_LEN};
use tower_otp::otp::OtpRouter;
use tower_otp::security_headers::SecurityHeadersLayer;
use tower_otp::store::RedisStore;

#[path = "support/env.rs"]
mod env;
#[path = "support/notifier.rs"]
mod notifier;
use env::{env_or, parsed, required};
#[path = "support/serve.rs"]
mod serve;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Refuses secrets that are short or obviously not random.
fn check_secret(secret: &str) -> Result<(), BoxError> {
    if secret.len() < MIN_SECRET_LEN {
        return Err(format!("OTP_SECRET must be at least {MIN_SECRET_LEN} bytes").into());
    }
    let mut seen = [false; 256];
    for b in secret.bytes() {
        seen[usize::from(b)] = true;
    }
    let distinct = seen.iter().filter(|s| **s).count();
    let lower = secret.to_ascii_lowercase();
    let placeholder = [
        "changeme",
        "change-me",
        "secret",
        "password",
        "example",
        "0123456789",
    ]
    .iter()
    .any(|w| lower.contains(w));
    if distinct < 12 || placeholder {
        return Err(
            "OTP_SECRET looks weak (repetitive or a placeholder); generate one with `openssl rand -hex 32`"
                .into(),
        );
    }
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    tracing_subscriber::fmt()
        .json()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();

    // The secret first: without it nothing else matters.
    let secret = required("OTP_SECRET")?;
    check_secret(&secret)?;
    let redis_url = required("REDIS_URL")?;
    let bind: SocketAddr = parsed("BIND_ADDR", "127.0.0.1:3000")?;
    let timeout = Duration::from_millis(parsed("REDIS_TIMEOUT_MS", "500")?);
    let grace = Duration::from_secs(parsed("SHUTDOWN_GRACE_SECS", "10")?);
    let limits = serve::Limits::from_env()?;
    let calling_codes: Vec<String> = env_or("OTP_ALLOWED_CALLING_CODES", "1")
        .split(',')
        .map(|c| c.trim().to_owned())
        .filter(|c| !c.is_empty())
        .collect();

    let store = RedisStore::builder(redis_url)
        .prefix(env_or("REDIS_PREFIX", "tower-otp"))
        .timeout(timeout)
        .connect()
        .await?;
    tracing::info!(store = ?store, "connected to redis");

    let notifier = notifier::from_env()?;
    let mut builder = OtpRouter::builder(store, notifier)
        .secret(&secret)
        .allow_calling_codes(calling_codes)
        .configure(|c| c.app_name = env_or("OTP_APP_NAME", "tower-otp"));
    if let Ok(iss) = std::env::var("OTP_ISSUER") {
        builder = builder.issuer(iss);
    }
    if let Ok(aud) = std::env::var("OTP_AUDIENCE") {
        builder = builder.audience(aud);
    }
    let auth = builder.build()?;

    let api = Router::new()
        .route("/api/me", get(me))
        .route_layer(auth.jwt_layer::<Value>());
    let mut client_ip = SetClientIpLayer::builder();
    for cidr in env_or("TRUSTED_PROXIES", "")
        .split(',')
        .map(str::trim)
        .filter(|c| !c.is_empty())
    {
        client_ip = client_ip.trust_proxy(cidr);
    }
    let app = Router::new().merge(api).nest_service("/auth", auth).layer(
        ServiceBuilder::new()
            .layer(SecurityHeadersLayer::new())
            // The TCP peer is axum's `ConnectInfo` (tower-otp's `axum` feature).
            .layer(client_ip.build()?),
    );

    let listener = tokio::net::TcpListener::bind(bind).await?;
    tracing::info!(addr = %listener.local_addr()?, "tower-otp production example listening");

    serve::serve_until_signal(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
        limits,
        grace,
    )
    .await
}

async fn me(Extension(claims): Extension<Claims<Value>>) -> Json<Value> {
    Json(json!({
        "subject": claims.registered().sub,
        "session": claims.registered().sid,
        "expires_at": claims.registered().exp,
    }))
}
