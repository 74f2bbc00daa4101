//! [`Store`]: every concern at once.

use super::{ApiKeyStore, ChallengeStore, Ping, RateStore, SessionStore, TenantStore};

/// Storage for limits, challenges, sessions, API keys and tenants, with a
/// readiness check: what the OTP router needs.
///
/// No methods of its own, and implemented for every type that implements
/// all six concern traits: a backend implements [`RateStore`],
/// [`ChallengeStore`], [`SessionStore`], [`ApiKeyStore`], [`TenantStore`] and [`Ping`], and is
/// a `Store`. Code generic over one concern takes that trait instead (the
/// rate-limit layer a [`RateStore`], the API-key layer an [`ApiKeyStore`]).
pub trait Store:
    RateStore + ChallengeStore + SessionStore + ApiKeyStore + TenantStore + Ping
{
}

impl<T: RateStore + ChallengeStore + SessionStore + ApiKeyStore + TenantStore + Ping> Store for T {}
