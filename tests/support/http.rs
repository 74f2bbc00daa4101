//! Serving a tower service on a loopback port and calling it over real HTTP.

use std::net::SocketAddr;

use axum::Router;
use axum::extract::{ConnectInfo, Request};
use axum::middleware::{self, Next};
use axum::response::Response;
use bytes::Bytes;
use http::{Method, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;
use tower_otp::client_ip::PeerAddr;

/// A running axum server; stops when dropped.
#[derive(Debug)]
pub struct Served {
    pub base: String,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Served {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Serves `app` on a free loopback port, handing tower-otp the TCP peer.
pub async fn serve(app: Router) -> Served {
    let app = app.layer(middleware::from_fn(peer_addr));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        let _ = axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await;
    });
    Served { base, task }
}

async fn peer_addr(
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    mut req: Request,
    next: Next,
) -> Response {
    req.extensions_mut().insert(PeerAddr(addr));
    next.run(req).await
}

/// A keep-alive HTTP/1 client.
#[derive(Clone, Debug)]
pub struct HttpClient {
    client: Client<HttpConnector, Full<Bytes>>,
}

impl Default for HttpClient {
    fn default() -> Self {
        Self {
            client: Client::builder(TokioExecutor::new()).build_http(),
        }
    }
}

impl HttpClient {
    /// Sends a request with an optional JSON body; returns status and JSON
    /// body (`Null` when empty or not JSON).
    pub async fn send(
        &self,
        method: Method,
        url: &str,
        body: Option<&Value>,
    ) -> (StatusCode, Value) {
        let mut req = http::Request::builder().method(method).uri(url);
        let bytes = match body {
            Some(v) => {
                req = req.header("content-type", "application/json");
                Bytes::from(serde_json::to_vec(v).unwrap())
            }
            None => Bytes::new(),
        };
        let res = self
            .client
            .request(req.body(Full::new(bytes)).unwrap())
            .await
            .unwrap();
        let status = res.status();
        let body = res.into_body().collect().await.unwrap().to_bytes();
        (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
    }

    /// POST with a JSON body.
    pub async fn post(&self, url: &str, body: &Value) -> (StatusCode, Value) {
        self.send(Method::POST, url, Some(body)).await
    }

    /// GET.
    pub async fn get(&self, url: &str) -> (StatusCode, Value) {
        self.send(Method::GET, url, None).await
    }
}
