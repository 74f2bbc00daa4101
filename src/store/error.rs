//! Why a store operation failed.

use std::error::Error as StdError;
use std::fmt;
use std::time::Duration;

/// A boxed error from a store backend.
pub type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// Why a store operation failed. The HTTP layer turns every one of these into
/// `503 store_unavailable` (fail closed); the details go to `tracing` only.
#[derive(Debug)]
#[non_exhaustive]
pub enum StoreError {
    /// The backend did not answer within the configured timeout.
    Timeout(Duration),
    /// The backend is unreachable or refused the command.
    Unavailable(BoxError),
    /// The backend returned something this version cannot read.
    Corrupt(String),
    /// A bounded store is at capacity and refuses the write rather than
    /// forget live state (names the table: `"rate table"`, `"records"`).
    /// Nothing was changed.
    Full(&'static str),
    /// The call asked for something outside the operation's documented
    /// bounds (a counter field longer than 64 bytes, a counter taken past
    /// its range…): a bug of the caller, not of the backend. Nothing was
    /// changed.
    Invalid(&'static str),
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Timeout(d) => write!(f, "store did not answer within {d:?}"),
            Self::Unavailable(e) => write!(f, "store unavailable: {e}"),
            Self::Corrupt(what) => write!(f, "store returned unreadable data: {what}"),
            Self::Full(what) => write!(f, "store is full: {what} at capacity"),
            Self::Invalid(what) => write!(f, "store refused the call: {what}"),
        }
    }
}

impl StdError for StoreError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match self {
            Self::Unavailable(e) => Some(e.as_ref()),
            _ => None,
        }
    }
}
