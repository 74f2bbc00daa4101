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

/// Checks the token's session (`sid`) and its `jti` against a [`SessionStore`]
/// in one call ([`SessionStore::is_any_revoked`]): a logged-out session or an
/// individually revoked token is refused. A token with neither claim makes
/// no call.
#[derive(Clone, Debug)]
pub struct StoreRevocation<S>(pub S);

impl<S: SessionStore> sealed::Checks for StoreRevocation<S> {
    const CHECKS: bool = true;
}

impl<S: SessionStore> Revocation for StoreRevocation<S> {
    async fn is_revoked(&self, claims: &RegisteredClaims) -> Result<bool, StoreError> {
        match (claims.sid.as_deref(), claims.jti.as_deref()) {
            (None, None) => Ok(false),
            (Some(id), None) | (None, Some(id)) => self.0.is_any_revoked(&[id]).await,
            (Some(sid), Some(jti)) => self.0.is_any_revoked(&[sid, jti]).await,
        }
    }
}
