//! Test support shared by the integration tests.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

pub mod conformance;
pub mod fake_twilio;
pub mod http;
pub mod http_peer;
pub mod redis_server;
pub mod smtp_sink;
pub mod stress;
pub mod webhook_receiver;

/// A loopback port nothing listens on (bound, then released): connecting to
/// it is refused at once.
pub fn unused_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}
