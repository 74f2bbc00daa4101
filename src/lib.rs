#![doc = include_str!("../README.md")]
#![cfg_attr(all(feature = "axum", feature = "moka"), doc = include_str!("../docs/layers.md"))]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![warn(clippy::unwrap_used)]
#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod api_key;
pub mod body;
pub mod client_ip;
pub mod clock;
pub mod error;
pub mod events;
#[cfg(feature = "axum")]
pub mod extract;
// The fuzz targets' entry points: only for cargo-fuzz (`--cfg fuzzing`) and
// the seed replay tests, never public API.
#[cfg(any(test, fuzzing))]
#[doc(hidden)]
pub mod fuzzing;
// Parsed only for a provider's `Retry-After` (and by its fuzz target).
#[cfg(any(feature = "http-client", test, fuzzing))]
mod http_date;
pub mod identifier;
pub mod jwt;
mod log_throttle;
pub mod notify;
pub mod otp;
pub mod quota;
pub mod rate_limit;
mod secret;
pub mod security_headers;
mod slot_cache;
pub mod store;
pub mod webhook;

#[cfg(test)]
mod test_helpers;
