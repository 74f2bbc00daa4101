//! A fake Twilio Messages API on loopback: a real HTTP server that checks
//! what a real Twilio checks first — the path, HTTP basic auth, the form
//! fields — and answers from a per-request script, including answers that
//! break on the wire (a body cut short, an oversized body, a connection
//! closed before any answer).

use std::collections::{BTreeMap, VecDeque};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use http::{Request, Response};
use http_body::{Body, Frame, SizeHint};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use super::http_peer;

/// A test account SID (`AC` + 32 hex digits).
pub const ACCOUNT_SID: &str = "AC00000000000000000000000000000001";
/// The auth token the fake expects.
pub const AUTH_TOKEN: &str = "test-auth-token-0123456789";

/// What to answer to the next accepted request.
#[derive(Clone, Debug)]
pub enum Reply {
    /// `201` with a message resource (`sid` = `SM` + a counter).
    Created,
    /// A Twilio error document with `status` and `code`.
    Error { status: u16, code: u32 },
    /// A bare status with an optional `Retry-After`.
    Status {
        status: u16,
        retry_after: Option<u64>,
    },
    /// Never answers (the client has to time out).
    Stall,
    /// `201` whose `Content-Length` promises a message resource, of which
    /// only the first bytes arrive before the connection is cut.
    CreatedCut,
    /// `201` with a valid message resource padded past 64 KiB.
    CreatedOversized,
    /// Reads the whole request, then closes the connection without a word.
    Hangup,
}

/// One request as received.
#[derive(Clone, Debug)]
pub struct Received {
    pub path: String,
    pub authorized: bool,
    pub content_type: String,
    pub form: BTreeMap<String, String>,
}

#[derive(Debug, Default)]
struct State {
    script: VecDeque<Reply>,
    received: Vec<Received>,
}

/// A running fake. Unscripted requests get [`Reply::Created`].
#[derive(Debug)]
pub struct FakeTwilio {
    addr: std::net::SocketAddr,
    state: Arc<Mutex<State>>,
    task: JoinHandle<()>,
}

impl Drop for FakeTwilio {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A response body as the fake sends it.
#[derive(Debug)]
pub enum FakeBody {
    /// All of it.
    Whole(Option<Bytes>),
    /// `sent`, then the connection breaks; `size_hint` claims `claimed`
    /// bytes, so the head says `Content-Length: claimed`.
    Cut {
        sent: Option<Bytes>,
        claimed: u64,
        /// Yielded once after `sent`, so hyper flushes it before the break.
        yielded: bool,
    },
}

impl Body for FakeBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        match &mut *self {
            Self::Whole(data) => Poll::Ready(data.take().map(|d| Ok(Frame::data(d)))),
            Self::Cut { sent, yielded, .. } => {
                if let Some(data) = sent.take() {
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                if !*yielded {
                    // hyper flushes what it has buffered whenever the body
                    // is pending: the head and the first bytes leave now.
                    *yielded = true;
                    cx.waker().wake_by_ref();
                    return Poll::Pending;
                }
                Poll::Ready(Some(Err(std::io::Error::other("cut short"))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self, Self::Whole(None))
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Self::Whole(data) => SizeHint::with_exact(data.as_ref().map_or(0, |d| d.len() as u64)),
            Self::Cut { claimed, .. } => SizeHint::with_exact(*claimed),
        }
    }
}

/// What the handler decided: a response, or closing without one.
enum Answer {
    Respond(Response<FakeBody>),
    Hangup,
}

fn whole(res: Response<Full<Bytes>>) -> Answer {
    let (parts, body) = res.into_parts();
    // `Full` has its data at once.
    let data = body
        .collect()
        .now_or_never()
        .expect("a full body is ready")
        .expect("infallible")
        .to_bytes();
    Answer::Respond(Response::from_parts(parts, FakeBody::Whole(Some(data))))
}

/// `Future::now_or_never` without the futures crate.
trait NowOrNever: std::future::Future + Sized {
    fn now_or_never(self) -> Option<Self::Output> {
        let mut fut = std::pin::pin!(self);
        let mut cx = Context::from_waker(std::task::Waker::noop());
        match fut.as_mut().poll(&mut cx) {
            Poll::Ready(out) => Some(out),
            Poll::Pending => None,
        }
    }
}

impl<F: std::future::Future> NowOrNever for F {}

impl FakeTwilio {
    /// A fake for [`ACCOUNT_SID`] / [`AUTH_TOKEN`].
    pub async fn start() -> Self {
        Self::with_credentials(ACCOUNT_SID, AUTH_TOKEN).await
    }

    /// A fake expecting basic auth `user:password` (`user` is the account
    /// SID, or an API key SID).
    pub async fn with_credentials(user: &str, password: &str) -> Self {
        let state = Arc::new(Mutex::new(State::default()));
        let expected_auth = format!("Basic {}", STANDARD.encode(format!("{user}:{password}")));
        let path = format!("/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json");
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let addr = listener.local_addr().expect("local addr");
        let shared = Arc::clone(&state);
        let task = tokio::spawn(async move {
            let mut connections = tokio::task::JoinSet::new();
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let state = Arc::clone(&shared);
                let (expected_auth, path) = (expected_auth.clone(), path.clone());
                connections.spawn(async move {
                    let service = service_fn(move |req: Request<Incoming>| {
                        let state = Arc::clone(&state);
                        let (expected_auth, path) = (expected_auth.clone(), path.clone());
                        async move {
                            let (parts, body) = req.into_parts();
                            let body = body
                                .collect()
                                .await
                                .map(|b| b.to_bytes())
                                .unwrap_or_default();
                            let req = Request::from_parts(parts, body);
                            match handle(req, &state, &expected_auth, &path).await {
                                Answer::Respond(res) => Ok::<_, std::io::Error>(res),
                                // An error from the service: hyper closes
                                // the connection without answering.
                                Answer::Hangup => Err(std::io::Error::other("hang up")),
                            }
                        }
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Self { addr, state, task }
    }

    /// The base URL to give `TwilioSmsBuilder::base_url`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Queues replies for the next requests, in order.
    pub fn script(&self, replies: impl IntoIterator<Item = Reply>) {
        self.state.lock().unwrap().script.extend(replies);
    }

    /// Every request received so far.
    pub fn received(&self) -> Vec<Received> {
        self.state.lock().unwrap().received.clone()
    }
}

async fn handle(
    req: Request<Bytes>,
    state: &Mutex<State>,
    expected_auth: &str,
    path: &str,
) -> Answer {
    let reply = answer(req, state, expected_auth, path).await;
    match reply {
        Ok(res) => whole(res),
        Err(answer) => answer,
    }
}

/// A whole response, or (`Err`) an answer that breaks on the wire.
async fn answer(
    req: Request<Bytes>,
    state: &Mutex<State>,
    expected_auth: &str,
    path: &str,
) -> Result<Response<Full<Bytes>>, Answer> {
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    };
    let received = Received {
        path: req.uri().path().to_owned(),
        authorized: header("authorization") == expected_auth,
        content_type: header("content-type"),
        form: parse_form(req.body()),
    };
    state.lock().unwrap().received.push(received.clone());

    // The account resource, which readiness probes fetch.
    let account = path.trim_end_matches("/Messages.json").to_owned() + ".json";
    if req.method() == http::Method::GET && received.path == account {
        if !received.authorized {
            return Ok(error(401, 20003));
        }
        let body = serde_json::json!({ "sid": ACCOUNT_SID, "status": "active" });
        return Ok(http_peer::json(200, &body.to_string(), &[]));
    }
    if req.method() != http::Method::POST || received.path != path {
        return Ok(error(404, 20404));
    }
    if !received.authorized {
        return Ok(error(401, 20003));
    }
    let form = &received.form;
    let has = |k: &str| form.get(k).is_some_and(|v| !v.is_empty());
    if received.content_type != "application/x-www-form-urlencoded"
        || !has("To")
        || !(has("Body") || has("ContentSid"))
        || !(has("From") || has("MessagingServiceSid"))
    {
        // Twilio: "A 'To' phone number is required" and friends.
        return Ok(error(400, 21604));
    }
    let reply = state
        .lock()
        .unwrap()
        .script
        .pop_front()
        .unwrap_or(Reply::Created);
    let n = state.lock().unwrap().received.len();
    let created = serde_json::json!({
        "sid": format!("SM{n:032x}"),
        "status": "queued",
        "to": form.get("To"),
    });
    Ok(match reply {
        Reply::Created => http_peer::json(201, &created.to_string(), &[]),
        Reply::Error { status, code } => error(status, code),
        Reply::Status {
            status,
            retry_after,
        } => match retry_after {
            Some(secs) => http_peer::json(status, "{}", &[("retry-after", &secs.to_string())]),
            None => http_peer::json(status, "{}", &[]),
        },
        Reply::Stall => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            http_peer::json(201, "{}", &[])
        }
        Reply::CreatedCut => {
            let full = created.to_string();
            let (parts, _) = http_peer::json(201, "", &[]).into_parts();
            let body = FakeBody::Cut {
                sent: Some(Bytes::from(full[..12].to_owned())),
                claimed: full.len() as u64,
                yielded: false,
            };
            return Err(Answer::Respond(Response::from_parts(parts, body)));
        }
        Reply::CreatedOversized => {
            let mut padded = created;
            padded["padding"] = "x".repeat(100 * 1024).into();
            http_peer::json(201, &padded.to_string(), &[])
        }
        Reply::Hangup => return Err(Answer::Hangup),
    })
}

/// A Twilio error document. Like the real one, its message repeats the
/// number, which the notifier must not log.
fn error(status: u16, code: u32) -> Response<Full<Bytes>> {
    let body = serde_json::json!({
        "code": code,
        "message": "The 'To' number +15005550001 is not a valid phone number.",
        "more_info": format!("https://www.twilio.com/docs/errors/{code}"),
        "status": status,
    });
    http_peer::json(status, &body.to_string(), &[])
}

/// Decodes `application/x-www-form-urlencoded`.
pub fn parse_form(body: &[u8]) -> BTreeMap<String, String> {
    let decode = |s: &str| {
        let bytes = s.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'+' => out.push(b' '),
                b'%' if i + 2 < bytes.len() => {
                    let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                    out.push(u8::from_str_radix(hex, 16).unwrap_or(b'?'));
                    i += 2;
                }
                b => out.push(b),
            }
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    };
    String::from_utf8_lossy(body)
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(k), decode(v))
        })
        .collect()
}
