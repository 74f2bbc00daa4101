//! The client's address, resolved once per request.
//!
//! [`ClientIp`] is what per-IP limits key on. It is put into request
//! extensions by the client-IP layer; hyper users who serve connections
//! themselves insert a [`PeerAddr`] per connection so it can be resolved.

use std::net::{IpAddr, SocketAddr};

/// The resolved client address, in request extensions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ClientIp(pub IpAddr);

/// The TCP peer address of the connection, in request extensions (for plain
/// hyper servers; axum's `ConnectInfo` is read under the `axum` feature).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PeerAddr(pub SocketAddr);
