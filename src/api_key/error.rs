//! Why a key was refused ([`Rejection`]) and why a management call failed
//! ([`ApiKeyError`]).

use std::fmt;

use super::format::FormatError;
use crate::store::StoreError;

/// Why a presented key was refused.
///
/// Everything except [`Rejection::Store`] is answered with the same
/// `401 invalid_api_key` (the client learns nothing about which check
/// failed); `Store` is answered `503 store_unavailable` (fail closed). The
/// distinction is kept for events and logs.
#[derive(Debug)]
#[non_exhaustive]
pub enum Rejection {
    /// No key was presented.
    Missing,
    /// Not a well-formed key, or its checksum does not match (no store lookup).
    Malformed(FormatError),
    /// A well-formed key with another prefix (no store lookup).
    WrongPrefix,
    /// No such key id: never issued, revoked, or expired and gone.
    Unknown,
    /// The id exists but the secret does not match (wrong, or replaced by a
    /// rotation whose grace period is over).
    Mismatch,
    /// The key has expired.
    Expired,
    /// The store failed; nothing could be decided.
    Store(StoreError),
}

impl Rejection {
    /// A short machine-readable reason, for events.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Missing => "missing",
            Self::Malformed(e) => e.as_str(),
            Self::WrongPrefix => "wrong_prefix",
            Self::Unknown => "unknown_key",
            Self::Mismatch => "secret_mismatch",
            Self::Expired => "expired",
            Self::Store(_) => "store_unavailable",
        }
    }

    /// Whether this is a store failure (answer 503) rather than a bad key (401).
    pub fn is_store_failure(&self) -> bool {
        matches!(self, Self::Store(_))
    }

    /// Whether the key was refused without any store round trip.
    pub fn is_offline(&self) -> bool {
        matches!(self, Self::Missing | Self::Malformed(_) | Self::WrongPrefix)
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Missing => f.write_str("no API key presented"),
            Self::Malformed(e) => e.fmt(f),
            Self::WrongPrefix => f.write_str("API key has another prefix"),
            Self::Unknown => f.write_str("unknown API key"),
            Self::Mismatch => f.write_str("API key secret does not match"),
            Self::Expired => f.write_str("API key expired"),
            Self::Store(e) => write!(f, "API key not checked: {e}"),
        }
    }
}

impl std::error::Error for Rejection {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Malformed(e) => Some(e),
            Self::Store(e) => Some(e),
            _ => None,
        }
    }
}

/// Why a management call ([`ApiKeys`](super::ApiKeys)) failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum ApiKeyError {
    /// The store failed.
    Store(StoreError),
    /// No live key with that id.
    NotFound,
    /// An argument is not acceptable; says which and why.
    Invalid(&'static str),
}

impl fmt::Display for ApiKeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Store(e) => e.fmt(f),
            Self::NotFound => f.write_str("no such API key"),
            Self::Invalid(why) => write!(f, "invalid API key request: {why}"),
        }
    }
}

impl std::error::Error for ApiKeyError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Store(e) => Some(e),
            _ => None,
        }
    }
}

impl From<StoreError> for ApiKeyError {
    fn from(e: StoreError) -> Self {
        Self::Store(e)
    }
}

/// `401 invalid_api_key`, the one answer to every bad key.
pub(crate) fn invalid_api_key() -> crate::error::Problem {
    crate::error::Problem::new(
        http::StatusCode::UNAUTHORIZED,
        "invalid_api_key",
        "The API key is missing, malformed, expired or revoked.",
    )
}
