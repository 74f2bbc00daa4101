#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_auto_cfg))]

pub mod api_key;
pub mod body;
pub mod client_ip;
pub mod clock;
pub mod error;
pub mod events;
#[doc(hidden)]
pub mod fuzzing;
pub mod identifier;
pub mod jwt;
pub mod notify;
pub mod otp;
pub mod quota;
pub mod store;
