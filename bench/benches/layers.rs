//! One request through each hardening layer, in process (no sockets), side by
//! side with the peer crates doing the same job, in one run:
//!
//! * `bare`: the inner service alone (building the request is in every row);
//! * `security_headers` (9 headers) vs six tower-http `SetResponseHeader`s;
//! * `client_ip_rate_limit`: `SetClientIpLayer` + `RateLimitLayer` on the memory
//!   store vs `tower_governor` (peer IP key);
//! * `jwt`: `JwtLayer` (the same token every time, as one client sends it;
//!   cached), `JwtLayer::without_cache`, and a layer calling `jsonwebtoken`;
//! * `stack`: all of ours vs all of the peers'.
//!
//! The figures to read are the differences from `bare`: what each layer adds
//! to a request. `bench/http_stack.sh` measures the same over real sockets.
//!
//! Run: `cargo bench --manifest-path bench/Cargo.toml --bench layers`

// `criterion_group!` generates an undocumented public function.
#![allow(missing_docs)]

use std::convert::Infallible;
use std::future::Future;
use std::hint::black_box;
use std::net::SocketAddr;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use criterion::{Criterion, criterion_group, criterion_main};
use http::header::{self, HeaderValue};
use http::{Request, Response, StatusCode};
use tower::{Layer, Service, ServiceBuilder, service_fn};
use tower_otp::client_ip::SetClientIpLayer;
use tower_otp::jwt::{JwtLayer, Validation};
use tower_otp::security_headers::SecurityHeadersLayer;
use tower_otp_bench::stacks;

/// Polls a future that must be ready at once (every layer here is).
fn now_or_never<F: Future>(f: F) -> F::Output {
    let mut f = pin!(f);
    match f.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(out) => out,
        Poll::Pending => panic!("a layer under benchmark was pending"),
    }
}

/// What a hello-world handler answers: a body, content type and length.
fn hello(_req: Request<Body>) -> std::future::Ready<Result<Response<Body>, Infallible>> {
    let mut res = Response::new(Body::from("Hello, World!"));
    let headers = res.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from_static("13"));
    std::future::ready(Ok(res))
}

fn request(auth: &HeaderValue) -> Request<Body> {
    let mut req = Request::new(Body::empty());
    req.headers_mut()
        .insert(header::AUTHORIZATION, auth.clone());
    req.extensions_mut()
        .insert(ConnectInfo(SocketAddr::from(([203, 0, 113, 7], 50_000))));
    req
}

/// Calls `svc` once with a fresh request and checks it was let through.
fn once<S>(svc: &mut S, auth: &HeaderValue)
where
    S: Service<Request<Body>, Response = Response<Body>>,
    S::Error: std::fmt::Debug,
{
    now_or_never(std::future::poll_fn(|cx| svc.poll_ready(cx))).expect("ready");
    let res = now_or_never(svc.call(request(auth))).expect("call");
    assert_eq!(res.status(), StatusCode::OK);
    black_box(res);
}

/// Boxes any of the stacks below into one type.
type Boxed = tower::util::BoxService<Request<Body>, Response<Body>, Infallible>;

fn boxed<S, B>(svc: S) -> Boxed
where
    S: Service<Request<Body>, Response = Response<B>, Error = Infallible> + Send + 'static,
    S::Future: Send + 'static,
    B: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    Boxed::new(tower::ServiceExt::map_response(svc, |res: Response<B>| {
        res.map(Body::new)
    }))
}

/// Above any rate the benchmark reaches: every request is counted, none refused.
const PER_SECOND: u32 = 1_000_000_000;

fn peer_governor<S>(inner: S) -> Boxed
where
    S: Service<Request<Body>, Response = Response<Body>, Error = Infallible>
        + Clone
        + Send
        + Sync
        + 'static,
    S::Future: Send + 'static,
{
    let config = tower_governor::governor::GovernorConfigBuilder::default()
        .per_nanosecond(1)
        .burst_size(1_000_000_000)
        .finish()
        .expect("governor config");
    let svc = tower_governor::GovernorLayer::new(Arc::new(config)).layer(inner);
    Boxed::new(tower::ServiceExt::map_err(svc, |_| -> Infallible {
        unreachable!("tower_governor turns its errors into responses")
    }))
}

/// The peer bearer check: `jsonwebtoken` in a layer, as an app writes it.
#[derive(Clone)]
struct JsonWebToken<S> {
    inner: S,
    key: Arc<jsonwebtoken::DecodingKey>,
    validation: Arc<jsonwebtoken::Validation>,
}

impl<S> JsonWebToken<S> {
    fn new(inner: S) -> Self {
        Self {
            inner,
            key: Arc::new(jsonwebtoken::DecodingKey::from_secret(stacks::SECRET)),
            validation: Arc::new(jsonwebtoken::Validation::new(
                jsonwebtoken::Algorithm::HS256,
            )),
        }
    }
}

impl<S> Service<Request<Body>> for JsonWebToken<S>
where
    S: Service<Request<Body>, Response = Response<Body>, Error = Infallible>,
    S::Future: Send + 'static,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<Body>) -> Self::Future {
        let token = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        match token
            .map(|t| jsonwebtoken::decode::<serde_json::Value>(t, &self.key, &self.validation))
        {
            Some(Ok(data)) => {
                req.extensions_mut().insert(data.claims);
                Box::pin(self.inner.call(req))
            }
            _ => {
                let mut res = Response::new(Body::empty());
                *res.status_mut() = StatusCode::UNAUTHORIZED;
                Box::pin(std::future::ready(Ok(res)))
            }
        }
    }
}

fn bench(c: &mut Criterion) {
    let auth = HeaderValue::try_from(format!("Bearer {}", stacks::token())).expect("header");
    let jwt_layer = || JwtLayer::<serde_json::Value>::new(stacks::keys(), Validation::default());
    let inner = service_fn(hello);

    let mut rows: Vec<(&str, Boxed)> = vec![
        ("bare", boxed(inner)),
        (
            "security_headers/tower_otp",
            boxed(SecurityHeadersLayer::new().layer(inner)),
        ),
        (
            "security_headers/tower_http",
            boxed(stacks::peer_headers().layer(inner)),
        ),
        (
            "client_ip_rate_limit/tower_otp",
            boxed(
                ServiceBuilder::new()
                    .layer(SetClientIpLayer::new())
                    .layer(stacks::per_ip_limit(PER_SECOND))
                    .service(inner),
            ),
        ),
        ("client_ip_rate_limit/tower_governor", peer_governor(inner)),
        ("jwt/tower_otp", boxed(jwt_layer().layer(inner))),
        (
            "jwt/tower_otp_without_cache",
            boxed(jwt_layer().without_cache().layer(inner)),
        ),
        ("jwt/jsonwebtoken", boxed(JsonWebToken::new(inner))),
        (
            "stack/tower_otp",
            boxed(stacks::stack(PER_SECOND).layer(inner)),
        ),
        (
            "stack/peers",
            boxed(
                stacks::peer_headers().layer(peer_governor(JsonWebToken::new(
                    tower::util::BoxCloneSyncService::new(inner),
                ))),
            ),
        ),
    ];

    let mut g = c.benchmark_group("layer_call");
    g.measurement_time(Duration::from_secs(3));
    for (name, svc) in &mut rows {
        once(svc, &auth); // warm caches and tables
        g.bench_function(*name, |b| b.iter(|| once(svc, &auth)));
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
