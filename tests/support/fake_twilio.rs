//! A fake Twilio Messages API on loopback: a real HTTP server that checks
//! what a real Twilio checks first — the path, HTTP basic auth, the form
//! fields — and answers from a per-request script.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;

use super::http_peer::{self, HttpPeer};

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
    peer: HttpPeer,
    state: Arc<Mutex<State>>,
}

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
        let shared = Arc::clone(&state);
        let peer = http_peer::serve(move |req| {
            let state = Arc::clone(&shared);
            let expected_auth = expected_auth.clone();
            let path = path.clone();
            async move { handle(req, &state, &expected_auth, &path).await }
        })
        .await;
        Self { peer, state }
    }

    /// The base URL to give `TwilioSms::with_base_url`.
    pub fn base_url(&self) -> String {
        self.peer.url()
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
) -> Response<Full<Bytes>> {
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
            return error(401, 20003);
        }
        let body = serde_json::json!({ "sid": ACCOUNT_SID, "status": "active" });
        return http_peer::json(200, &body.to_string(), &[]);
    }
    if req.method() != http::Method::POST || received.path != path {
        return error(404, 20404);
    }
    if !received.authorized {
        return error(401, 20003);
    }
    let form = &received.form;
    let has = |k: &str| form.get(k).is_some_and(|v| !v.is_empty());
    if received.content_type != "application/x-www-form-urlencoded"
        || !has("To")
        || !(has("Body") || has("ContentSid"))
        || !(has("From") || has("MessagingServiceSid"))
    {
        // Twilio: "A 'To' phone number is required" and friends.
        return error(400, 21604);
    }
    let reply = state
        .lock()
        .unwrap()
        .script
        .pop_front()
        .unwrap_or(Reply::Created);
    match reply {
        Reply::Created => {
            let n = state.lock().unwrap().received.len();
            let body = serde_json::json!({
                "sid": format!("SM{n:032x}"),
                "status": "queued",
                "to": form.get("To"),
            });
            http_peer::json(201, &body.to_string(), &[])
        }
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
    }
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
