#![doc = include_str!("../README.md")]
#![cfg_attr(all(feature = "axum", feature = "moka"), doc = include_str!("../docs/layers.md"))]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![warn(clippy::unwrap_used)]
#![cfg_attr(test, allow(clippy::unwrap_used))]

// First: the layers' shared macros, in scope for every module below.
#[macro_use]
mod macros;

pub mod api_key;
pub mod body;
pub mod client_ip;
pub mod clock;
mod credentials;
pub mod csrf;
pub mod error;
pub mod events;
mod future;
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
mod refusal;
mod secret;
pub mod security_headers;
mod slot_cache;
mod stack_str;
pub mod store;
pub mod tenant;
pub mod webhook;

#[cfg(test)]
mod test_helpers;
