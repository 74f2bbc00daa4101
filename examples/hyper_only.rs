//! The OTP endpoints and the hardening stack on plain hyper — no axum.
//!
//! Run: `cargo run --example hyper_only`
//!
//! One `ServiceBuilder` stack: security headers → client IP → rate limit (per
//! IP) → a small router that sends `/auth/*` to the `OtpRouter` and guards
//! `/api/me` with the `JwtLayer`. Each connection's peer address goes into the
//! request as `PeerAddr` (tower-otp's way for servers without axum), which
//! `SetClientIpLayer` reads.
//!
//! Optional settings, from the environment:
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `PORT` | `3001` | port on 127.0.0.1 (`0`: any free port) |
//! | `OTP_SECRET` | random per run | server secret, ≥ 32 bytes (e.g. `openssl rand -hex 32`); unset, a fresh random one is made at start, so tokens die with the process |
//! | `HEADER_TIMEOUT_SECS` | `10` | a request head must arrive within this, else the connection is closed |
//! | `BODY_TIMEOUT_SECS` | `10` | a request body must arrive within this of its head, else `408` and close |
//! | `IDLE_TIMEOUT_SECS` | `5` | an idle keep-alive connection is closed after this |
//! | `MAX_CONNECTIONS` | `1024` | open connections at most; more wait (unaccepted) until one closes |
//!
//! The serving code (timeouts, connection cap, graceful shutdown on Ctrl-C)
//! is `examples/support/serve.rs`, shared by the reference servers.

use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use http::{Request, Response, StatusCode, Uri};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full};
use serde_json::{Value, json};
use tower::util::BoxCloneService;
use tower::{BoxError, Service, ServiceBuilder, ServiceExt, service_fn};
use tower_otp::client_ip::{PeerAddr, SetClientIpLayer};
use tower_otp::jwt::Claims;
use tower_otp::notify::LogNotifier;
use tower_otp::otp::OtpRouter;
use tower_otp::quota::Quota;
use tower_otp::rate_limit::{ByClientIp, RateLimitLayer};
use tower_otp::security_headers::SecurityHeadersLayer;
use tower_otp::store::MemoryStore;

#[path = "support/secret.rs"]
mod secret;
#[path = "support/serve.rs"]
mod serve;

use serve::RequestBody;

type Body = UnsyncBoxBody<Bytes, BoxError>;

fn boxed<B>(res: Response<B>) -> Response<Body>
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    res.map(|b| b.map_err(Into::into).boxed_unsync())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let port: u16 = std::env::var("PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(3001);
    let limits = serve::Limits::from_env()?;
    let secret = secret::otp_secret_or_random();
    let store = MemoryStore::new();
    let auth = OtpRouter::builder(store.clone(), LogNotifier)
        .secret(&secret)
        .build()?;

    // `/api/me`: only with a valid access token of a live session.
    let me = ServiceBuilder::new()
        .layer(auth.jwt_layer::<Value>())
        .service(service_fn(|req: Request<RequestBody>| async move {
            let claims = req.extensions().get::<Claims<Value>>().cloned();
            let body =
                json!({ "subject": claims.and_then(|c| c.registered().sub.clone()) }).to_string();
            Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(body))))
        }));

    let router = service_fn(move |mut req: Request<RequestBody>| {
        let (mut auth, mut me) = (auth.clone(), me.clone());
        async move {
            // The OtpRouter serves paths relative to its mount point.
            let auth_path = req
                .uri()
                .path()
                .strip_prefix("/auth/")
                .map(|rest| format!("/{rest}"));
            let is_me = req.uri().path() == "/api/me";
            if let Some(auth_path) = auth_path {
                *req.uri_mut() = Uri::try_from(auth_path).unwrap_or_default();
                let res = ServiceExt::<Request<RequestBody>>::ready(&mut auth)
                    .await?
                    .call(req)
                    .await?;
                return Ok::<_, Infallible>(boxed(res));
            }
            if is_me {
                let res = ServiceExt::<Request<RequestBody>>::ready(&mut me)
                    .await?
                    .call(req)
                    .await?;
                return Ok(boxed(res));
            }
            let mut res = Response::new(Full::new(Bytes::from_static(b"not found")));
            *res.status_mut() = StatusCode::NOT_FOUND;
            Ok(boxed(res))
        }
    });

    let app = ServiceBuilder::new()
        .layer(SecurityHeadersLayer::new())
        .layer(SetClientIpLayer::new())
        .layer(
            RateLimitLayer::builder(store)
                .limit("ip", Quota::per_second(50).with_burst(100), ByClientIp)
                .build()?,
        )
        .service(router);
    // One concrete, `Send` service type for hyper (and for rustc's Send inference).
    let app = BoxCloneService::new(app);

    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    eprintln!(
        "hyper-only tower-otp server on http://{0}\n  curl -i -X POST http://{0}/auth/otp/request -H 'content-type: application/json' -d '{{\"email\":\"ada@example.com\"}}'",
        listener.local_addr()?
    );
    // One service per connection, told who the TCP peer is.
    let per_connection = service_fn(move |peer: SocketAddr| {
        let svc = app
            .clone()
            .map_request(move |mut req: Request<RequestBody>| {
                req.extensions_mut().insert(PeerAddr(peer));
                req
            });
        std::future::ready(Ok::<_, Infallible>(svc))
    });
    serve::serve(listener, per_connection, limits, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await?;
    Ok(())
}
