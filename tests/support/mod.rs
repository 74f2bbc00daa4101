//! Test support shared by the integration tests.
#![allow(dead_code, unreachable_pub)]

pub mod conformance;
pub mod http;
pub mod http_server;
pub mod redis_server;
pub mod stress;
