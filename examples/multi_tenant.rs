//! The reference server of a multi-tenant OTP service: one deployment, many
//! customer apps ("tenants"), each with its own API keys, config, limits,
//! quotas, CORS origins, templates and webhook (DESIGN.md, "Multi-tenant
//! service").
//!
//! Run: `ADMIN_TOKEN=$(openssl rand -hex 32) OTP_SECRET=$(openssl rand -hex 32) \
//!       cargo run --example multi_tenant`
//!
//! Configuration, all from the environment (refused at start-up when wrong):
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `ADMIN_TOKEN` | required | bearer token of `/admin`, ≥ 32 bytes and not repetitive |
//! | `OTP_SECRET` | required | server secret, ≥ 32 bytes and not repetitive (e.g. `openssl rand -hex 32`) |
//! | `REDIS_URL` | unset: `MemoryStore` | `redis://[:password@]host:port[/db]`: state shared by every instance (build with `--features redis`) |
//! | `REDIS_PREFIX` | `tower-otp` | key prefix in Redis |
//! | `REDIS_TIMEOUT_MS` | `500` | bound on every store call; past it requests get `503` |
//! | `PORT` | `3000` | port to listen on, on `BIND_HOST` |
//! | `BIND_HOST` | `127.0.0.1` | address to listen on |
//! | `WEBHOOK_ALLOW_HTTP` | unset | `1` lets tenants' webhooks use `http://` (development and tests only) |
//! | `SIGNUP` | `1` | `0` turns self-service signup (`/signup`) off |
//! | `SHUTDOWN_GRACE_SECS` | `10` | how long in-flight requests may finish after SIGTERM / Ctrl-C |
//! | `HEADER_TIMEOUT_SECS` | `10` | a request head must arrive within this, else the connection is closed |
//! | `BODY_TIMEOUT_SECS` | `10` | a request body must arrive within this of its head, else `408` and close |
//! | `IDLE_TIMEOUT_SECS` | `5` | an idle keep-alive connection is closed after this |
//! | `MAX_CONNECTIONS` | `1024` | open connections at most; more wait in the listen backlog |
//! | `TRUSTED_PROXIES` | unset | comma-separated CIDRs of reverse proxies whose forwarding headers are believed |
//! | `TWILIO_…`, `SMTP_URL`, `SMTP_FROM` | unset | real providers, as in `examples/production.rs` (features `twilio`, `smtp`) |
//! | `RUST_LOG` | `info` | log filter; logs are JSON lines on stderr |
//!
//! Endpoints: the OTP contract under `/v1/auth` for a tenant's API key in
//! `X-API-Key` (`/v1/auth/health/*` needs none), the admin API under
//! `/admin` (`Authorization: Bearer $ADMIN_TOKEN`), self-service signup at
//! `POST /signup` and `POST /signup/verify`. Without providers, codes are
//! printed on stdout by `LogNotifier`, one JSON line each.
//!
//! With Redis, API keys are read from the store on every request (no key
//! cache), so a revoked key fails at once on every instance; a tenant's
//! config and status are cached for at most 5 s per instance.

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use tower::ServiceBuilder;
use tower_otp::api_key::{ApiKeyLayer, ApiKeys};
use tower_otp::client_ip::SetClientIpLayer;
use tower_otp::otp::OtpRouter;
use tower_otp::security_headers::SecurityHeadersLayer;
use tower_otp::store::{MemoryStore, Store};
use tower_otp::tenant::{AdminRouter, SignupRouter, Tenants, WebhookUrls, key_free};

#[path = "support/env.rs"]
mod env;
#[path = "support/notifier.rs"]
mod notifier;
use env::{env_or, parsed, required};
#[path = "support/serve.rs"]
mod serve;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What `run` needs besides the store.
struct Settings {
    secret: String,
    admin_token: String,
    bind: SocketAddr,
    webhook_urls: WebhookUrls,
    signup: bool,
    /// Several instances share the store: no API-key cache.
    shared: bool,
    trusted_proxies: Vec<String>,
    grace: Duration,
    limits: serve::Limits,
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
    let host: std::net::IpAddr = parsed("BIND_HOST", "127.0.0.1")?;
    let port: u16 = parsed("PORT", "3000")?;
    let mut settings = Settings {
        secret: required("OTP_SECRET")?,
        admin_token: required("ADMIN_TOKEN")?,
        bind: SocketAddr::new(host, port),
        webhook_urls: if env_or("WEBHOOK_ALLOW_HTTP", "") == "1" {
            tracing::warn!(
                "WEBHOOK_ALLOW_HTTP=1: tenants' webhooks may use plain http:// (development only)"
            );
            WebhookUrls::AllowHttp
        } else {
            WebhookUrls::HttpsOnly
        },
        signup: env_or("SIGNUP", "1") != "0",
        shared: false,
        trusted_proxies: env_or("TRUSTED_PROXIES", "")
            .split(',')
            .map(|c| c.trim().to_owned())
            .filter(|c| !c.is_empty())
            .collect(),
        grace: Duration::from_secs(parsed("SHUTDOWN_GRACE_SECS", "10")?),
        limits: serve::Limits::from_env()?,
    };
    match std::env::var("REDIS_URL") {
        Ok(url) => {
            settings.shared = true;
            run(redis(&url).await?, settings).await
        }
        Err(_) => {
            tracing::info!("REDIS_URL unset: MemoryStore (one process; state is lost on exit)");
            run(MemoryStore::new(), settings).await
        }
    }
}

#[cfg(feature = "redis")]
async fn redis(url: &str) -> Result<tower_otp::store::RedisStore, BoxError> {
    let store = tower_otp::store::RedisStore::builder(url)
        .prefix(env_or("REDIS_PREFIX", "tower-otp"))
        .timeout(Duration::from_millis(parsed("REDIS_TIMEOUT_MS", "500")?))
        .connect()
        .await?;
    tracing::info!(store = ?store, "connected to redis");
    Ok(store)
}

#[cfg(not(feature = "redis"))]
async fn redis(_: &str) -> Result<MemoryStore, BoxError> {
    Err("REDIS_URL is set but this build has no Redis support: run with --features redis".into())
}

async fn run<S: Store>(store: S, s: Settings) -> Result<(), BoxError> {
    let mut keys = ApiKeys::builder(store.clone()).prefix("otp");
    if s.shared {
        // A revoked key must fail at once on every instance.
        keys = keys.cache_ttl(Duration::ZERO);
    }
    let keys = keys.build()?;
    let tenants = Tenants::builder(store.clone(), keys.clone())
        .webhook_urls(s.webhook_urls)
        .build()?;
    let notifier = notifier::from_env()?;

    // The tenant API: the key names the tenant, whose config the router runs.
    let auth = OtpRouter::builder(store, notifier.clone())
        .secret(&s.secret)
        .tenants(tenants.clone())
        .build()?;
    let tenant_api = ServiceBuilder::new()
        .layer(ApiKeyLayer::builder(keys).exempt(key_free).build()?)
        .layer(tenants.cors_layer())
        .service(auth);
    let admin = AdminRouter::builder(tenants.clone())
        .admin_token(&s.admin_token)
        .build()?;
    let mut app = Router::new()
        .nest_service("/v1/auth", tenant_api)
        .nest_service("/admin", admin);
    if s.signup {
        let signup = SignupRouter::builder(tenants, notifier)
            .secret(&s.secret)
            .build()?;
        app = app
            .route_service("/signup", signup.clone())
            .route_service("/signup/verify", signup);
    }
    let mut client_ip = SetClientIpLayer::builder();
    for cidr in &s.trusted_proxies {
        client_ip = client_ip.trust_proxy(cidr);
    }
    let app = app.layer(
        ServiceBuilder::new()
            .layer(SecurityHeadersLayer::new())
            .layer(client_ip.build()?),
    );

    let listener = tokio::net::TcpListener::bind(s.bind).await?;
    let addr = listener.local_addr()?;
    tracing::info!(%addr, "tower-otp multi-tenant example listening");
    eprintln!("tower-otp multi-tenant service listening on http://{addr}");
    serve::serve_until_signal(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
        s.limits,
        s.grace,
    )
    .await
}
