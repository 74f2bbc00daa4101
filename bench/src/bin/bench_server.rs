//! Hello-world axum server for the HTTP stack benchmark (`bench/http_stack.sh`).
//!
//! Run: `cargo run --release --manifest-path bench/Cargo.toml --bin bench_server -- stack 3000`
//!
//! `bare` serves `GET /` with no layers; `stack` adds the hardening layers the
//! way an app would: security headers, client IP, a per-IP rate limit with a
//! quota generous enough never to refuse, and HS256 bearer-token validation
//! (`JwtLayer`, no store lookup). `peer` is the same job done with the peer
//! crates, as DESIGN.md measured it: tower_governor, six tower-http
//! `SetResponseHeader` layers and a `jsonwebtoken` check. `token` prints a
//! valid bearer token (accepted by both) for the load generator. `only-headers`,
//! `only-client-ip`, `only-rate-limit`, `only-jwt`, `only-jwt-ignored` (claims
//! parsed into `IgnoredAny`) and `only-jsonwebtoken` run one layer at a time;
//! `bare-same-headers` has no layer but its handler sends the headers the
//! stack adds from a map built once (the floor: what sending those bytes
//! costs any implementation). `stack` and `peer` add their layers with
//! `Router::layer`, as most axum apps do; `stack-around` and `peer-around`
//! wrap the whole router instead, as a hyper or tower app would.
//! One runtime thread, so the benchmark can pin the server to one core.

use std::convert::Infallible;
use std::net::SocketAddr;

use axum::Router;
use axum::routing::get;
use tower::{Service, ServiceBuilder};
use tower_otp::client_ip::SetClientIpLayer;
use tower_otp::jwt::{JwtLayer, Validation};
use tower_otp::security_headers::SecurityHeadersLayer;
use tower_otp_bench::stacks;

/// Well above what one core serves: every request is counted, none refused.
const PER_SECOND: u32 = 1_000_000;

/// The peer crates' equivalent of the `stack` mode: tower_governor, six
/// tower-http header layers and a `jsonwebtoken` check, as one
/// `ServiceBuilder` (a macro: the builder's type cannot be named).
macro_rules! peer_layers {
    () => {{
        let governor = tower_governor::governor::GovernorConfigBuilder::default()
            .per_nanosecond(1)
            .burst_size(PER_SECOND)
            .finish()
            .ok_or("governor config")?;
        ServiceBuilder::new()
            .layer(stacks::peer_headers())
            .layer(tower_governor::GovernorLayer::new(governor))
            .layer(axum::middleware::from_fn(jsonwebtoken_check))
    }};
}

/// "Hello, World!" on `GET /`, the app every mode serves.
fn routes() -> Router {
    Router::new().route("/", get(|| async { "Hello, World!" }))
}

fn app(mode: &str) -> Result<Router, Box<dyn std::error::Error>> {
    let routes = routes();
    Ok(match mode {
        "bare" => routes,
        // No layer: the handler itself sends the headers the stack adds, the
        // floor any implementation of those headers pays in hyper and the kernel.
        "bare-same-headers" => Router::new().route("/", get(same_headers)),
        "stack" => routes.layer(stacks::stack(PER_SECOND)),
        "peer" => routes.layer(peer_layers!()),
        // One layer at a time, to see what each costs.
        "only-headers" => routes.layer(SecurityHeadersLayer::new()),
        "only-client-ip" => routes.layer(SetClientIpLayer::new()),
        "only-rate-limit" => {
            routes.layer((SetClientIpLayer::new(), stacks::per_ip_limit(PER_SECOND)))
        }
        "only-jwt-ignored" => routes.layer(JwtLayer::<serde::de::IgnoredAny>::new(
            stacks::keys(),
            Validation::default(),
        )),
        "only-jsonwebtoken" => routes.layer(axum::middleware::from_fn(jsonwebtoken_check)),
        "only-jwt" => routes.layer(JwtLayer::<serde_json::Value>::new(
            stacks::keys(),
            Validation::default(),
        )),
        other => return Err(format!("unknown mode {other:?}: use bare, stack or peer").into()),
    })
}

/// "Hello, World!" with the 9 security headers and 2 `RateLimit` headers the
/// `stack` mode sends, as static values: the response's header map is a copy
/// of one built once (with the `content-type` a `&str` body gets), the least
/// work any code can do to send them.
async fn same_headers() -> axum::response::Response {
    use axum::http::{HeaderMap, HeaderValue, header};
    use std::sync::LazyLock;
    static HEADERS: LazyLock<HeaderMap> = LazyLock::new(|| {
        let mut headers = HeaderMap::new();
        for (name, value) in SecurityHeadersLayer::new().headers() {
            headers.insert(name.clone(), value.clone());
        }
        let static_value = HeaderValue::from_static;
        headers.insert(
            header::CONTENT_TYPE,
            static_value("text/plain; charset=utf-8"),
        );
        headers.insert("ratelimit-policy", static_value("\"ip\";q=1000000;w=1"));
        headers.insert("ratelimit", static_value("\"ip\";r=999999;t=1"));
        headers
    });
    let mut res = axum::response::Response::new(axum::body::Body::from("Hello, World!"));
    *res.headers_mut() = HEADERS.clone();
    res
}

/// Bearer-token check with `jsonwebtoken`, as an app would write it.
async fn jsonwebtoken_check(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    use std::sync::LazyLock;
    static KEY: LazyLock<jsonwebtoken::DecodingKey> =
        LazyLock::new(|| jsonwebtoken::DecodingKey::from_secret(stacks::SECRET));
    static VALIDATION: LazyLock<jsonwebtoken::Validation> =
        LazyLock::new(|| jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256));
    let token = req
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match token.map(|t| jsonwebtoken::decode::<serde_json::Value>(t, &KEY, &VALIDATION)) {
        Some(Ok(_)) => next.run(req).await,
        _ => axum::http::StatusCode::UNAUTHORIZED.into_response(),
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let mode = args.next().unwrap_or_else(|| "bare".into());
    if mode == "token" {
        println!("{}", stacks::token());
        return Ok(());
    }
    let port: u16 = args.next().map_or(Ok(3000), |p| p.parse())?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let routes = routes();
    // `*-around` modes wrap the whole router in the layers (as a hyper or
    // tower app does) instead of adding them with `Router::layer`, which
    // makes axum box and clone the layered service on every request.
    let to_axum = |res: http::Response<_>| res.map(axum::body::Body::new);
    rt.block_on(async move {
        match mode.as_str() {
            "stack-around" => {
                let svc = ServiceBuilder::new()
                    .map_response(to_axum)
                    .layer(stacks::stack(PER_SECOND))
                    .service(routes.with_state(()));
                serve(&mode, port, svc).await
            }
            "peer-around" => {
                serve(&mode, port, peer_layers!().service(routes.with_state(()))).await
            }
            // `with_state` turns the routes into services once, as
            // `Router::into_make_service_with_connect_info` does.
            _ => serve(&mode, port, app(&mode)?.with_state(())).await,
        }
    })
}

async fn serve<S>(mode: &str, port: u16, svc: S) -> Result<(), Box<dyn std::error::Error>>
where
    S: Service<axum::extract::Request, Response = axum::response::Response, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send,
{
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let listener = tokio::net::TcpListener::bind(addr).await?;
    eprintln!("bench_server ({mode}) on http://{addr}");
    let make = axum::ServiceExt::<axum::extract::Request>::into_make_service_with_connect_info::<
        SocketAddr,
    >(svc);
    axum::serve(listener, make).await?;
    Ok(())
}
