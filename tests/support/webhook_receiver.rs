//! An app's webhook endpoint on loopback: records every request, checks its
//! Standard Webhooks signature with the public `verify_webhook` helper (real
//! clock), answers 401 to a bad one, else the next scripted reply (default
//! 204). Used by the `HttpNotifier` and `WebhookSink` tests.
#![cfg(feature = "http-notifier")]

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use http::HeaderMap;
use tokio::sync::Semaphore;
use tower_otp::webhook::{self, DEFAULT_TOLERANCE, WebhookError, WebhookSecret};

use super::http_peer::{self, HttpPeer};

/// The signing secret both sides use.
pub const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// One request as the receiver saw it.
#[derive(Clone, Debug)]
pub struct Hit {
    pub headers: HeaderMap,
    pub body: Bytes,
    pub verdict: Result<(), WebhookError>,
}

impl Hit {
    pub fn id(&self) -> String {
        self.headers["webhook-id"].to_str().unwrap().to_owned()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

/// Scripted answers: a status and an optional `Retry-After` in seconds.
type Script = Arc<Mutex<VecDeque<(u16, Option<u64>)>>>;

pub struct Receiver {
    peer: HttpPeer,
    hits: Arc<Mutex<Vec<Hit>>>,
    script: Script,
}

impl Receiver {
    pub async fn start() -> Self {
        Self::gated(None).await
    }

    /// A receiver checking signatures with its own `secret` (`whsec_…`).
    pub async fn with_secret(secret: &str) -> Self {
        Self::new(None, WebhookSecret::parse(secret).unwrap()).await
    }

    /// Like [`start`](Self::start), but each answer waits for a permit from
    /// `gate` (when set), so a test can hold deliveries in flight.
    pub async fn gated(gate: Option<Arc<Semaphore>>) -> Self {
        Self::new(gate, WebhookSecret::parse(SECRET).unwrap()).await
    }

    async fn new(gate: Option<Arc<Semaphore>>, secret: WebhookSecret) -> Self {
        let hits: Arc<Mutex<Vec<Hit>>> = Arc::default();
        let script: Script = Arc::default();
        let (h, s) = (Arc::clone(&hits), Arc::clone(&script));
        let peer = http_peer::serve(move |req| {
            let verdict = webhook::verify_webhook(
                &secret,
                req.headers(),
                req.body(),
                SystemTime::now(),
                DEFAULT_TOLERANCE,
            );
            h.lock().unwrap().push(Hit {
                headers: req.headers().clone(),
                body: req.body().clone(),
                verdict,
            });
            let reply = s.lock().unwrap().pop_front();
            let gate = gate.clone();
            async move {
                if let Some(gate) = gate {
                    gate.acquire().await.unwrap().forget();
                }
                match (verdict, reply) {
                    (Err(_), _) => http_peer::json(401, r#"{"error":"bad signature"}"#, &[]),
                    (Ok(()), None) => http_peer::json(204, "", &[]),
                    (Ok(()), Some((status, None))) => http_peer::json(status, "{}", &[]),
                    (Ok(()), Some((status, Some(after)))) => {
                        http_peer::json(status, "{}", &[("retry-after", &after.to_string())])
                    }
                }
            }
        })
        .await;
        Self { peer, hits, script }
    }

    /// The endpoint's URL.
    pub fn url(&self) -> String {
        format!("{}/hooks", self.peer.url())
    }

    pub fn hits(&self) -> Vec<Hit> {
        self.hits.lock().unwrap().clone()
    }

    /// Queues replies for the next validly signed requests.
    pub fn script(&self, replies: impl IntoIterator<Item = (u16, Option<u64>)>) {
        self.script.lock().unwrap().extend(replies);
    }

    /// Queues plain statuses (no `Retry-After`).
    pub fn script_statuses(&self, statuses: impl IntoIterator<Item = u16>) {
        self.script(statuses.into_iter().map(|status| (status, None)));
    }

    /// Waits (up to 2 s) until at least `n` requests arrived.
    pub async fn wait_for_hits(&self, n: usize) -> Vec<Hit> {
        let started = Instant::now();
        loop {
            let hits = self.hits();
            if hits.len() >= n || started.elapsed() > Duration::from_secs(2) {
                return hits;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}
