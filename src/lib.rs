#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_auto_cfg))]

pub mod client_ip;
pub mod clock;
pub mod error;
#[doc(hidden)]
pub mod fuzzing;
pub mod identifier;
pub mod notify;
pub mod quota;
pub mod store;
pub mod webhook;
