//! Test support shared by the integration tests.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

pub mod conformance;
pub mod fake_twilio;
pub mod http;
pub mod http_peer;
pub mod redis_server;
pub mod smtp_sink;
pub mod stress;
