//! Whether a verified token has been revoked: [`Revocation`].

use std::future::Future;

use super::token::RegisteredClaims;
use crate::store::{SessionStore, StoreError};

/// Decides whether a verified token has been revoked: [`NoRevocation`] (the
/// default of [`JwtLayer`](super::JwtLayer)) or [`StoreRevocation`]
/// ([`JwtLayer::with_store`](super::JwtLayer::with_store)).
///
/// Sealed: the layer skips the whole check — no store call, no boxed future,
/// no clone of the inner service — for `NoRevocation`, which it knows from
/// a crate-private constant.
pub trait Revocation: sealed::Checks + Clone + Send + Sync + 'static {
    /// Whether the token with these claims is revoked.
    fn is_revoked(
        &self,
        claims: &RegisteredClaims,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
}

pub(crate) mod sealed {
    /// Whether a [`Revocation`](super::Revocation) needs I/O at all (`false`
    /// skips it entirely).
    pub trait Checks {
        const CHECKS: bool;
    }
}

/// No revocation check: tokens are valid until they expire.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoRevocation;

impl sealed::Checks for NoRevocation {
    const CHECKS: bool = false;
}

impl Revocation for NoRevocation {
    async fn is_revoked(&self, _: &RegisteredClaims) -> Result<bool, StoreError> {
        Ok(false)
    }
}

/// Checks the token's session (`sid`) and then its `jti` against a [`SessionStore`]:
/// a logged-out session or an individually revoked token is refused.
#[derive(Clone, Debug)]
pub struct StoreRevocation<S>(pub S);

impl<S: SessionStore> sealed::Checks for StoreRevocation<S> {
    const CHECKS: bool = true;
}

impl<S: SessionStore> Revocation for StoreRevocation<S> {
    async fn is_revoked(&self, claims: &RegisteredClaims) -> Result<bool, StoreError> {
        for id in [&claims.sid, &claims.jti].into_iter().flatten() {
            if self.0.is_revoked(id).await? {
                return Ok(true);
            }
        }
        Ok(false)
    }
}
