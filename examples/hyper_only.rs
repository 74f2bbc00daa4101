//! The OTP endpoints and the hardening stack on plain hyper — no axum.
//!
//! Run: `cargo run --example hyper_only` (optional: `PORT=3001`, `JWT_SECRET=<32+ bytes>`).
//!
//! One `ServiceBuilder` stack: security headers → client IP → rate limit (per
//! IP) → a small router that sends `/auth/*` to the `OtpRouter` and guards
//! `/api/me` with the `JwtLayer`. Each connection's peer address goes into the
//! request as `PeerAddr`, which `ClientIpLayer` reads.

use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use http::{Request, Response, StatusCode, Uri};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use serde_json::{Value, json};
use tower::util::BoxCloneService;
use tower::{BoxError, Service, ServiceBuilder, ServiceExt, service_fn};
use tower_otp::client_ip::{ClientIpLayer, PeerAddr};
use tower_otp::jwt::Claims;
use tower_otp::notify::LogNotifier;
use tower_otp::otp::OtpRouter;
use tower_otp::quota::Quota;
use tower_otp::rate_limit::{ByClientIp, RateLimitLayer};
use tower_otp::security_headers::SecurityHeadersLayer;
use tower_otp::store::MemoryStore;

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
    let secret = std::env::var("JWT_SECRET").unwrap_or_else(|_| {
        eprintln!("JWT_SECRET is not set: generated a random secret for this run.");
        rand::random::<[u8; 32]>()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    });
    let store = MemoryStore::new();
    let auth = OtpRouter::builder(store.clone(), LogNotifier)
        .secret(&secret)
        .build()?;

    // `/api/me`: only with a valid access token of a live session.
    let me = ServiceBuilder::new()
        .layer(auth.jwt_layer::<Value>())
        .service(service_fn(|req: Request<Incoming>| async move {
            let claims = req.extensions().get::<Claims<Value>>().cloned();
            let body =
                json!({ "subject": claims.and_then(|c| c.registered().sub.clone()) }).to_string();
            Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(body))))
        }));

    let router = service_fn(move |mut req: Request<Incoming>| {
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
                let res = ServiceExt::<Request<Incoming>>::ready(&mut auth)
                    .await?
                    .call(req)
                    .await?;
                return Ok::<_, Infallible>(boxed(res));
            }
            if is_me {
                let res = ServiceExt::<Request<Incoming>>::ready(&mut me)
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
        .layer(ClientIpLayer::new())
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
    loop {
        let (stream, peer): (_, SocketAddr) = listener.accept().await?;
        let app = app.clone();
        tokio::spawn(async move {
            // Tell the stack who the TCP peer is.
            let svc = app.map_request(move |mut req: Request<Incoming>| {
                req.extensions_mut().insert(PeerAddr(peer));
                req
            });
            let conn = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), TowerToHyperService::new(svc));
            if let Err(err) = conn.await {
                eprintln!("connection from {peer}: {err}");
            }
        });
    }
}
