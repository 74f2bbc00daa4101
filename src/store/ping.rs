//! [`Ping`]: whether a backend answers.

use std::fmt;
use std::future::Future;

use super::StoreError;

/// A backend's readiness check, for `GET /health/ready`.
///
/// Its own trait, not a method every concern trait carries: a backend for
/// one concern (rate limits only, say) needs no readiness endpoint to serve
/// its layer, and a fake for a test implements just the concern it fakes.
pub trait Ping: Clone + Send + Sync + fmt::Debug + 'static {
    /// Checks that the backend answers.
    fn ping(&self) -> impl Future<Output = Result<(), StoreError>> + Send;
}
