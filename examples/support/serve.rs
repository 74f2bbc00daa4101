//! Serving code shared by the reference servers (`examples/quickstart.rs`,
//! `examples/production.rs`, `examples/hyper_only.rs`) and tested over real
//! sockets by `tests/serve.rs`, which includes this very file.
//!
//! `axum::serve` (and a bare hyper accept loop) hold a connection for as long
//! as the client likes: a client that sends nothing, one byte a second, or
//! keeps an idle keep-alive open costs a file descriptor and memory forever,
//! and a thousand of them starve everyone else. [`serve`] bounds each stage:
//!
//! | variable | default | bound |
//! |---|---|---|
//! | `HEADER_TIMEOUT_SECS` | `10` | the request head must arrive within this; else the connection is closed (hyper's `header_read_timeout`) |
//! | `BODY_TIMEOUT_SECS` | `10` | the whole request body must arrive within this of its head; else `408 Request Timeout` and the connection is closed |
//! | `IDLE_TIMEOUT_SECS` | `5` | a kept-alive connection with no request in flight is closed after this (hyper's head timer also runs while it waits, so values above `HEADER_TIMEOUT_SECS` act as `HEADER_TIMEOUT_SECS`) |
//! | `MAX_CONNECTIONS` | `1024` | open connections; past it, new ones are not accepted (they wait in the kernel's listen backlog) until one closes |
//!
//! Over the cap, connections *wait* rather than being accepted and closed:
//! waiting costs the server no file descriptor, a client that gives up simply
//! goes away, and a normal client is served as soon as a slot frees — which
//! the timeouts above guarantee happens within seconds even when slow clients
//! hold every slot. (A per-address connection cap would also stop one
//! address from holding all slots; it is not done here.)
//!
//! On shutdown, [`serve`] stops accepting, lets each connection finish its
//! request in flight (closing it afterwards), and returns once every
//! connection is closed.

// Each file that includes this module uses a different part of it.
#![allow(dead_code)]

use std::convert::Infallible;
use std::error::Error as StdError;
use std::fmt;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::header::{CONNECTION, CONTENT_TYPE};
use http::{HeaderValue, Request, Response, StatusCode};
use http_body::{Body, Frame, SizeHint};
use http_body_util::{Either, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use pin_project::pin_project;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio::time::Sleep;
use tower::{Service, ServiceExt};

type BoxError = Box<dyn StdError + Send + Sync>;

/// The request body the served application receives: hyper's body under the
/// body deadline.
pub(crate) type RequestBody = TimedBody<Incoming>;

/// The bounds [`serve`] enforces (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Limits {
    /// The request head must be complete within this.
    pub(crate) header_timeout: Duration,
    /// The request body must be complete within this of its head.
    pub(crate) body_timeout: Duration,
    /// A connection with no request in flight, after its first one, is
    /// closed after this.
    pub(crate) idle_timeout: Duration,
    /// Open connections at most.
    pub(crate) max_connections: usize,
}

/// The largest `MAX_CONNECTIONS` accepted (far above any fd limit).
const MAX_CONNECTIONS_CEILING: usize = 1_000_000;

impl Default for Limits {
    fn default() -> Self {
        Self {
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(5),
            max_connections: 1024,
        }
    }
}

impl Limits {
    /// The defaults, overridden by `HEADER_TIMEOUT_SECS`, `BODY_TIMEOUT_SECS`,
    /// `IDLE_TIMEOUT_SECS` and `MAX_CONNECTIONS`. A value that is not a
    /// positive integer is refused (no bound can be switched off).
    pub(crate) fn from_env() -> Result<Self, String> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// [`Limits::from_env`] over any source of variables.
    pub(crate) fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let defaults = Self::default();
        let number = |name: &str, default: u64, max: u64| -> Result<u64, String> {
            match lookup(name) {
                None => Ok(default),
                Some(raw) => match raw.trim().parse::<u64>() {
                    Ok(n) if (1..=max).contains(&n) => Ok(n),
                    _ => Err(format!(
                        "{name} must be an integer from 1 to {max} (got {raw:?})"
                    )),
                },
            }
        };
        let secs = |name: &str, default: Duration| {
            number(name, default.as_secs(), 24 * 3600).map(Duration::from_secs)
        };
        Ok(Self {
            header_timeout: secs("HEADER_TIMEOUT_SECS", defaults.header_timeout)?,
            body_timeout: secs("BODY_TIMEOUT_SECS", defaults.body_timeout)?,
            idle_timeout: secs("IDLE_TIMEOUT_SECS", defaults.idle_timeout)?,
            max_connections: usize::try_from(number(
                "MAX_CONNECTIONS",
                defaults.max_connections as u64,
                MAX_CONNECTIONS_CEILING as u64,
            )?)
            .map_err(|_| "MAX_CONNECTIONS is too large".to_owned())?,
        })
    }
}

/// Serves HTTP/1.1 on `listener` under `limits` until `shutdown` resolves,
/// then lets open connections finish and returns.
///
/// `make` is called once per accepted connection with the peer address and
/// returns that connection's service — for axum,
/// `router.into_make_service_with_connect_info::<SocketAddr>()`, which puts
/// `ConnectInfo<SocketAddr>` into every request.
pub(crate) async fn serve<M, S, B>(
    listener: TcpListener,
    mut make: M,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()>
where
    M: Service<SocketAddr, Response = S, Error = Infallible>,
    S: Service<Request<RequestBody>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError> + Send,
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let max = limits.max_connections.clamp(1, MAX_CONNECTIONS_CEILING);
    let slots = Arc::new(Semaphore::new(max));
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    tokio::pin!(shutdown);

    loop {
        // A slot first, then accept: over the cap nothing is accepted, and
        // new connections wait in the listen backlog.
        let slot = tokio::select! {
            () = &mut shutdown => break,
            slot = Arc::clone(&slots).acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => break, // never closed
            },
        };
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    // Per-connection errors (a reset before accept) and fd
                    // exhaustion: back off briefly instead of spinning.
                    tracing::warn!(error = %err, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let service = match make.ready().await {
            Ok(make) => match make.call(peer).await {
                Ok(service) => service,
                Err(never) => match never {},
            },
            Err(never) => match never {},
        };
        let connection = Connection {
            builder: builder.clone(),
            limits,
            stop: stop_rx.clone(),
        };
        tokio::spawn(async move {
            connection.run(stream, peer, service).await;
            drop(slot);
        });
    }

    drop(listener);
    let _ = stop_tx.send(true);
    // Every connection holds a slot until it is closed.
    let _ = slots.acquire_many(max as u32).await;
    Ok(())
}

/// What one connection's task needs.
struct Connection {
    builder: http1::Builder,
    limits: Limits,
    stop: watch::Receiver<bool>,
}

impl Connection {
    async fn run<S, B>(mut self, stream: tokio::net::TcpStream, peer: SocketAddr, service: S)
    where
        S: Service<Request<RequestBody>, Response = Response<B>> + Clone + Send + 'static,
        S::Future: Send + 'static,
        S::Error: Into<BoxError> + Send,
        B: Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        let (in_flight, in_flight_rx) = watch::channel(Activity::default());
        let in_flight = Arc::new(in_flight);
        let body_timeout = self.limits.body_timeout;
        let hyper_service = hyper::service::service_fn(move |req: Request<Incoming>| {
            handle(
                service.clone(),
                req,
                body_timeout,
                InFlight::new(&in_flight),
            )
        });
        let conn = self
            .builder
            .serve_connection(TokioIo::new(stream), hyper_service);
        tokio::pin!(conn);
        let idle = idle(in_flight_rx, self.limits.idle_timeout);
        tokio::pin!(idle);
        let mut closing = false;
        loop {
            tokio::select! {
                done = conn.as_mut() => {
                    if let Err(err) = done {
                        tracing::debug!(%peer, error = %err, "connection closed");
                    }
                    return;
                }
                () = &mut idle, if !closing => {
                    tracing::debug!(%peer, "idle keep-alive connection closed");
                    closing = true;
                    conn.as_mut().graceful_shutdown();
                }
                _ = self.stop.wait_for(|stop| *stop), if !closing => {
                    closing = true;
                    conn.as_mut().graceful_shutdown();
                }
            }
        }
    }
}

/// Requests of one connection: in flight now, and started so far (a watch
/// shows only the latest value, so a request that starts and ends between
/// two looks is seen through `started`).
#[derive(Clone, Copy, Debug, Default)]
struct Activity {
    in_flight: usize,
    started: u64,
}

/// Resolves once the connection, after its first request, has had no
/// request in flight for `after`. (Before the first request the head timer
/// alone bounds the wait.)
async fn idle(mut activity: watch::Receiver<Activity>, after: Duration) {
    // `wait_for` fails only once the counter is gone with its connection.
    if activity.wait_for(|a| a.started > 0).await.is_ok() {
        loop {
            let started = match activity.wait_for(|a| a.in_flight == 0).await {
                Ok(now) => now.started,
                Err(_) => break,
            };
            let busy = tokio::time::timeout(
                after,
                activity.wait_for(|a| a.in_flight > 0 || a.started != started),
            )
            .await
            .map(|woke| woke.is_ok());
            match busy {
                Err(_elapsed) => return,
                Ok(true) => continue,
                Ok(false) => break,
            }
        }
    }
    std::future::pending().await
}

/// One request: the body under its deadline, the response carrying the
/// in-flight mark until hyper has written it, `408` if the body stalled.
async fn handle<S, B>(
    mut service: S,
    req: Request<Incoming>,
    body_timeout: Duration,
    in_flight: InFlight,
) -> Result<Response<ServedBody<B>>, BoxError>
where
    S: Service<Request<RequestBody>, Response = Response<B>>,
    S::Error: Into<BoxError> + Send,
    B: Body<Data = Bytes>,
{
    let expired = Arc::new(AtomicBool::new(false));
    let req = req.map(|body| TimedBody::new(body, body_timeout, Arc::clone(&expired)));
    let outcome = match service.ready().await {
        Ok(ready) => ready.call(req).await,
        Err(err) => Err(err),
    };
    // The body deadline decides, whatever the application made of the
    // error its body read returned.
    if expired.load(Ordering::Acquire) {
        let mut res = Response::new(Either::Right(Full::new(Bytes::from_static(
            b"request body timed out\n",
        ))));
        *res.status_mut() = StatusCode::REQUEST_TIMEOUT;
        res.headers_mut()
            .insert(CONNECTION, HeaderValue::from_static("close"));
        res.headers_mut().insert(
            CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        return Ok(res.map(|body| ServedBody {
            body,
            _in_flight: in_flight,
        }));
    }
    let res = outcome.map_err(Into::into)?;
    Ok(res.map(|body| ServedBody {
        body: Either::Left(body),
        _in_flight: in_flight,
    }))
}

/// Counts a request as in flight from its head until its response is
/// written (or dropped).
struct InFlight(Arc<watch::Sender<Activity>>);

impl InFlight {
    fn new(activity: &Arc<watch::Sender<Activity>>) -> Self {
        activity.send_modify(|a| {
            a.in_flight += 1;
            a.started += 1;
        });
        Self(Arc::clone(activity))
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0
            .send_modify(|a| a.in_flight = a.in_flight.saturating_sub(1));
    }
}

/// The response body: the application's, or the `408`, plus the in-flight
/// mark.
#[pin_project]
pub(crate) struct ServedBody<B> {
    #[pin]
    body: Either<B, Full<Bytes>>,
    _in_flight: InFlight,
}

impl<B> Body for ServedBody<B>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        self.project().body.poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// The request body failed to arrive within `BODY_TIMEOUT_SECS`.
#[derive(Debug)]
pub(crate) struct BodyTimeout;

impl fmt::Display for BodyTimeout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("request body timed out")
    }
}

impl StdError for BodyTimeout {}

/// A request body that must be complete by a deadline; past it, reading
/// yields [`BodyTimeout`].
#[pin_project]
pub(crate) struct TimedBody<B> {
    #[pin]
    inner: B,
    #[pin]
    deadline: Sleep,
    expired: Arc<AtomicBool>,
    done: bool,
}

impl<B> TimedBody<B> {
    fn new(inner: B, within: Duration, expired: Arc<AtomicBool>) -> Self {
        Self {
            inner,
            deadline: tokio::time::sleep(within),
            expired,
            done: false,
        }
    }
}

impl<B> Body for TimedBody<B>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.project();
        if *this.done {
            return Poll::Ready(None);
        }
        if let Poll::Ready(frame) = this.inner.poll_frame(cx) {
            return Poll::Ready(frame.map(|frame| frame.map_err(Into::into)));
        }
        if this.deadline.poll(cx).is_ready() {
            *this.done = true;
            this.expired.store(true, Ordering::Release);
            return Poll::Ready(Some(Err(Box::new(BodyTimeout))));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.done || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Serves `make_service` with [`serve`] until Ctrl-C or SIGTERM, then lets
/// in-flight requests finish for up to `grace`.
pub(crate) async fn serve_until_signal<M, S, B>(
    listener: TcpListener,
    make_service: M,
    limits: Limits,
    grace: Duration,
) -> Result<(), BoxError>
where
    M: Service<SocketAddr, Response = S, Error = Infallible> + Send + 'static,
    M::Future: Send,
    S: Service<Request<RequestBody>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError> + Send,
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let (stop_tx, mut stop_rx) = watch::channel(false);
    let server = tokio::spawn(serve(listener, make_service, limits, async move {
        let _ = stop_rx.wait_for(|stop| *stop).await;
    }));
    shutdown_signal().await;
    tracing::info!(
        ?grace,
        "shutting down: no new connections, finishing in-flight requests"
    );
    let _ = stop_tx.send(true);
    match tokio::time::timeout(grace, server).await {
        Ok(joined) => joined??,
        Err(_) => tracing::warn!("in-flight requests did not finish within the grace period"),
    }
    Ok(())
}

/// Resolves on Ctrl-C or SIGTERM (what orchestrators send).
pub(crate) async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}
