//! Mapping a verified phone number or email to the application's user.

use std::fmt;
use std::future::Future;

use serde_json::{Map, Value};

use crate::identifier::{HashedId, Identifier};

/// The user a verified identifier logs in as.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Subject {
    /// The `sub` claim: the application's user id.
    pub id: String,
    /// Extra claims for the access token. Registered names (`sub`, `exp`,
    /// `iat`, `nbf`, `iss`, `aud`, `jti`, `sid`) are ignored.
    pub claims: Map<String, Value>,
}

impl Subject {
    /// A subject with no extra claims.
    pub fn new(id: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            claims: Map::new(),
        }
    }

    /// Adds an extra claim.
    #[must_use]
    pub fn with_claim(mut self, name: impl Into<String>, value: impl Into<Value>) -> Self {
        self.claims.insert(name.into(), value.into());
        self
    }
}

/// Why the resolver could not produce a subject.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ResolveError {
    /// This identifier may not log in (answered `403 access_denied`).
    Refused,
    /// The app's user store failed (answered `503 unavailable`).
    Unavailable(String),
}

impl fmt::Display for ResolveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Refused => f.write_str("login refused for this identifier"),
            Self::Unavailable(why) => write!(f, "subject resolver unavailable: {why}"),
        }
    }
}

impl std::error::Error for ResolveError {}

/// The app's hook from a verified identifier to its own user.
///
/// `resolve` runs after a code has been verified: find or create the user and
/// return its id and extra claims. `may_request` is consulted only when the
/// router is configured with `known_users_only(true)`; then identifiers it
/// refuses get the same `202` as everyone else, and no message.
///
/// Closures `Fn(Identifier) -> impl Future<Output = Result<Subject, ResolveError>>`
/// implement this trait (with `may_request` always true).
pub trait SubjectResolver: Send + Sync + 'static {
    /// Maps a verified identifier to a subject.
    fn resolve(
        &self,
        id: &Identifier,
        hashed: &HashedId,
    ) -> impl Future<Output = Result<Subject, ResolveError>> + Send;

    /// Whether `id` may receive a code at all (default: yes).
    fn may_request(
        &self,
        id: &Identifier,
    ) -> impl Future<Output = Result<bool, ResolveError>> + Send {
        let _ = id;
        async { Ok(true) }
    }
}

/// The default resolver: the subject is `usr_` + the identifier's keyed hash,
/// stable per identifier and opaque to clients.
#[derive(Clone, Copy, Debug, Default)]
pub struct HashedSubject;

impl SubjectResolver for HashedSubject {
    async fn resolve(&self, _id: &Identifier, hashed: &HashedId) -> Result<Subject, ResolveError> {
        Ok(Subject::new(format!("usr_{hashed}")))
    }
}

impl<F, Fut> SubjectResolver for F
where
    F: Fn(Identifier) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Subject, ResolveError>> + Send,
{
    fn resolve(
        &self,
        id: &Identifier,
        _hashed: &HashedId,
    ) -> impl Future<Output = Result<Subject, ResolveError>> + Send {
        self(id.clone())
    }
}
