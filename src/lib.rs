#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_auto_cfg))]

pub mod body;
pub mod client_ip;
pub mod clock;
pub mod error;
#[cfg(feature = "axum")]
pub mod extract;
#[doc(hidden)]
pub mod fuzzing;
pub mod identifier;
pub mod notify;
pub mod quota;
pub mod rate_limit;
pub mod security_headers;
pub mod store;
