//! The reference servers' serving code (`examples/support/serve.rs`, included
//! here as it is in the examples) over real loopback sockets: slow and idle
//! clients are shed, the connection cap holds, normal clients are served.
//!
//! Timeouts are short (1 s) so the tests are quick; the outer bounds on each
//! wait (`GUARD`) only keep a broken server from hanging the suite.

#[path = "../examples/support/serve.rs"]
mod serve;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use serve::{Limits, RequestBody};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tower::service_fn;

/// Generous bound on any wait, far above the 1 s timeouts under test.
const GUARD: Duration = Duration::from_secs(20);
const SHORT: Duration = Duration::from_secs(1);
const LONG: Duration = Duration::from_secs(120);

struct Server {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    done: JoinHandle<std::io::Result<()>>,
}

/// Serves an app that reads the whole body and answers `200 ok:<body>`, or
/// `200 after-flag` once `flag` is set (for the cap test), or 400 when the
/// body read fails (as a real application would).
async fn start(limits: Limits, flag: Arc<AtomicBool>) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = service_fn(move |req: Request<RequestBody>| {
        let flag = Arc::clone(&flag);
        async move {
            let (status, text) = match req.into_body().collect().await {
                Ok(body) if flag.load(Ordering::SeqCst) => (
                    StatusCode::OK,
                    format!("after-flag:{}", String::from_utf8_lossy(&body.to_bytes())),
                ),
                Ok(body) => (
                    StatusCode::OK,
                    format!("ok:{}", String::from_utf8_lossy(&body.to_bytes())),
                ),
                Err(_) => (StatusCode::BAD_REQUEST, "bad body".to_owned()),
            };
            let mut res = Response::new(Full::new(Bytes::from(text)));
            *res.status_mut() = status;
            Ok::<_, Infallible>(res)
        }
    });
    let make =
        service_fn(move |_peer: SocketAddr| std::future::ready(Ok::<_, Infallible>(app.clone())));
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let done = tokio::spawn(serve::serve(listener, make, limits, async move {
        let _ = stop_rx.await;
    }));
    Server {
        addr,
        stop: Some(stop_tx),
        done,
    }
}

fn limits(header: Duration, body: Duration, idle: Duration, max: usize) -> Limits {
    Limits {
        header_timeout: header,
        body_timeout: body,
        idle_timeout: idle,
        max_connections: max,
    }
}

/// Reads until the peer closes the connection (EOF or reset) and returns
/// what came before; panics if it stays open past `GUARD`.
async fn read_until_closed(stream: &mut TcpStream) -> Vec<u8> {
    let mut seen = Vec::new();
    let closed = tokio::time::timeout(GUARD, async {
        let mut buf = [0u8; 1024];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => seen.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "the server kept the connection open");
    seen
}

/// Reads one response with a `content-length` body: (status line, body).
async fn read_response(stream: &mut TcpStream) -> (String, String) {
    let read = async {
        let mut data = Vec::new();
        let mut buf = [0u8; 1024];
        loop {
            if let Some(end) = data.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&data[..end]).to_string();
                let len: usize = head
                    .lines()
                    .find_map(|l| {
                        let (name, value) = l.split_once(':')?;
                        name.eq_ignore_ascii_case("content-length")
                            .then(|| value.trim().parse().ok())?
                    })
                    .unwrap_or(0);
                if data.len() >= end + 4 + len {
                    let body = String::from_utf8_lossy(&data[end + 4..end + 4 + len]).to_string();
                    let status = head.lines().next().unwrap_or_default().to_owned();
                    return (status, body);
                }
            }
            let n = stream.read(&mut buf).await.unwrap();
            assert!(n > 0, "connection closed before a full response: {data:?}");
            data.extend_from_slice(&buf[..n]);
        }
    };
    tokio::time::timeout(GUARD, read)
        .await
        .expect("no response in time")
}

const GET: &[u8] = b"GET / HTTP/1.1\r\nhost: t\r\n\r\n";

#[tokio::test]
async fn silent_client_is_disconnected_after_the_header_timeout() {
    let server = start(limits(SHORT, LONG, LONG, 16), Arc::default()).await;
    let mut silent = TcpStream::connect(server.addr).await.unwrap();
    let seen = read_until_closed(&mut silent).await;
    assert!(
        !seen.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&seen)
    );
}

#[tokio::test]
async fn partial_head_is_disconnected_after_the_header_timeout() {
    let server = start(limits(SHORT, LONG, LONG, 16), Arc::default()).await;
    let mut slow = TcpStream::connect(server.addr).await.unwrap();
    slow.write_all(b"POST / HTTP/1.1\r\nhost: t\r\ncontent-le")
        .await
        .unwrap();
    let seen = read_until_closed(&mut slow).await;
    assert!(
        !seen.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&seen)
    );
}

#[tokio::test]
async fn stalled_body_gets_408_and_a_close() {
    let server = start(limits(LONG, SHORT, LONG, 16), Arc::default()).await;
    let mut slow = TcpStream::connect(server.addr).await.unwrap();
    slow.write_all(b"POST / HTTP/1.1\r\nhost: t\r\ncontent-length: 10\r\n\r\nabc")
        .await
        .unwrap();
    let seen = String::from_utf8(read_until_closed(&mut slow).await).unwrap();
    assert!(seen.starts_with("HTTP/1.1 408 "), "{seen}");
    assert!(
        seen.to_ascii_lowercase().contains("connection: close"),
        "{seen}"
    );
}

#[tokio::test]
async fn idle_keep_alive_is_closed() {
    // Head timer long: the close comes from the idle bound.
    let server = start(limits(LONG, LONG, SHORT, 16), Arc::default()).await;
    let mut client = TcpStream::connect(server.addr).await.unwrap();
    client.write_all(GET).await.unwrap();
    let (status, body) = read_response(&mut client).await;
    assert_eq!((status.as_str(), body.as_str()), ("HTTP/1.1 200 OK", "ok:"));
    // Kept alive after the response, then closed for idling.
    let rest = read_until_closed(&mut client).await;
    assert!(rest.is_empty(), "{}", String::from_utf8_lossy(&rest));
}

#[tokio::test]
async fn keep_alive_serves_a_second_request_before_the_idle_bound() {
    let server = start(limits(LONG, LONG, LONG, 16), Arc::default()).await;
    let mut client = TcpStream::connect(server.addr).await.unwrap();
    for _ in 0..2 {
        client.write_all(GET).await.unwrap();
        let (status, _) = read_response(&mut client).await;
        assert_eq!(status, "HTTP/1.1 200 OK");
    }
}

#[tokio::test]
async fn connections_past_the_cap_wait_until_one_closes() {
    let closed_first = Arc::new(AtomicBool::new(false));
    let server = start(limits(LONG, LONG, LONG, 1), Arc::clone(&closed_first)).await;
    // The one slot, held by a kept-alive connection.
    let mut first = TcpStream::connect(server.addr).await.unwrap();
    first.write_all(GET).await.unwrap();
    let (_, body) = read_response(&mut first).await;
    assert_eq!(body, "ok:");

    // The kernel completes the handshake; the server must not serve it.
    let mut second = TcpStream::connect(server.addr).await.unwrap();
    second.write_all(GET).await.unwrap();
    // Give a server without a cap the time to answer before the flag is
    // set; with the cap the outcome does not depend on this pause.
    tokio::time::sleep(Duration::from_millis(300)).await;
    closed_first.store(true, Ordering::SeqCst);
    drop(first);

    let (status, body) = read_response(&mut second).await;
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert_eq!(body, "after-flag:", "served while the cap was full");
}

#[tokio::test]
async fn normal_client_is_served_while_slow_clients_are_connected() {
    let server = start(limits(LONG, LONG, LONG, 8), Arc::default()).await;
    let mut slow = Vec::new();
    for _ in 0..5 {
        let mut s = TcpStream::connect(server.addr).await.unwrap();
        s.write_all(b"GET / HTTP/1.1\r\nho").await.unwrap();
        slow.push(s);
    }
    let mut normal = TcpStream::connect(server.addr).await.unwrap();
    normal
        .write_all(b"POST / HTTP/1.1\r\nhost: t\r\ncontent-length: 2\r\n\r\nhi")
        .await
        .unwrap();
    let (status, body) = read_response(&mut normal).await;
    assert_eq!(
        (status.as_str(), body.as_str()),
        ("HTTP/1.1 200 OK", "ok:hi")
    );
    // The slow ones are still connected (no EOF waiting for them).
    let mut buf = [0u8; 16];
    for s in &slow {
        let err = s.try_read(&mut buf).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::WouldBlock);
    }
}

#[tokio::test]
async fn normal_client_is_served_once_slow_clients_holding_every_slot_time_out() {
    let server = start(limits(SHORT, LONG, LONG, 2), Arc::default()).await;
    let mut slow = Vec::new();
    for _ in 0..2 {
        let mut s = TcpStream::connect(server.addr).await.unwrap();
        s.write_all(b"GET / HTTP/1.1\r\nho").await.unwrap();
        slow.push(s);
    }
    let mut normal = TcpStream::connect(server.addr).await.unwrap();
    normal.write_all(GET).await.unwrap();
    let (status, body) = read_response(&mut normal).await;
    assert_eq!((status.as_str(), body.as_str()), ("HTTP/1.1 200 OK", "ok:"));
    for s in &mut slow {
        read_until_closed(s).await;
    }
}

#[tokio::test]
async fn shutdown_closes_idle_connections_and_returns() {
    let mut server = start(limits(LONG, LONG, LONG, 16), Arc::default()).await;
    let mut client = TcpStream::connect(server.addr).await.unwrap();
    client.write_all(GET).await.unwrap();
    read_response(&mut client).await;
    let _ = server.stop.take().unwrap().send(());
    read_until_closed(&mut client).await;
    let served = tokio::time::timeout(GUARD, server.done).await;
    assert!(matches!(served, Ok(Ok(Ok(())))), "{served:?}");
    assert!(TcpStream::connect(server.addr).await.is_err());
}

#[test]
fn limits_from_the_environment() {
    let none = |_: &str| None;
    assert_eq!(Limits::from_lookup(none).unwrap(), Limits::default());
    assert_eq!(Limits::default().header_timeout, Duration::from_secs(10));

    let set = |name: &str| match name {
        "HEADER_TIMEOUT_SECS" => Some("3".to_owned()),
        "BODY_TIMEOUT_SECS" => Some("4".to_owned()),
        "IDLE_TIMEOUT_SECS" => Some("2".to_owned()),
        "MAX_CONNECTIONS" => Some("7".to_owned()),
        _ => None,
    };
    assert_eq!(
        Limits::from_lookup(set).unwrap(),
        limits(
            Duration::from_secs(3),
            Duration::from_secs(4),
            Duration::from_secs(2),
            7
        )
    );
    for bad in ["0", "-1", "ten", "", "99999999999"] {
        let err =
            Limits::from_lookup(|name: &str| (name == "MAX_CONNECTIONS").then(|| bad.to_owned()))
                .unwrap_err();
        assert!(err.contains("MAX_CONNECTIONS"), "{err}");
        let err =
            Limits::from_lookup(|name: &str| (name == "BODY_TIMEOUT_SECS").then(|| bad.to_owned()))
                .unwrap_err();
        assert!(err.contains("BODY_TIMEOUT_SECS"), "{err}");
    }
}
