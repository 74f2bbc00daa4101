//! [`ApiKeyIdentity`]: who a verified key belongs to.

use std::fmt;
use std::sync::Arc;

/// The verified identity behind an API key, put into request extensions by
/// [`ApiKeyLayer`](super::ApiKeyLayer) (and returned by
/// [`ApiKeys::verify`](super::ApiKeys::verify)).
///
/// Cloning is cheap (one `Arc`). It holds no secret.
///
/// ```
/// use tower_otp::api_key::ApiKeyIdentity;
///
/// let who = ApiKeyIdentity::new("abcdefghijklmnop", "acme", ["orders:read"], "ci");
/// assert!(who.has_scope("orders:read"));
/// assert!(!who.has_scope("orders:write"));
/// assert_eq!(who.tenant(), "acme");
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKeyIdentity(Arc<Inner>);

#[derive(PartialEq, Eq)]
struct Inner {
    key_id: String,
    tenant: String,
    scopes: Vec<String>,
    name: String,
}

impl ApiKeyIdentity {
    /// An identity (the layer builds these; apps may for tests).
    pub fn new(
        key_id: impl Into<String>,
        tenant: impl Into<String>,
        scopes: impl IntoIterator<Item = impl Into<String>>,
        name: impl Into<String>,
    ) -> Self {
        Self(Arc::new(Inner {
            key_id: key_id.into(),
            tenant: tenant.into(),
            scopes: scopes.into_iter().map(Into::into).collect(),
            name: name.into(),
        }))
    }

    /// The key id (the public part of the key; not secret).
    pub fn key_id(&self) -> &str {
        &self.0.key_id
    }

    /// The tenant the key was issued to.
    pub fn tenant(&self) -> &str {
        &self.0.tenant
    }

    /// The key's scopes.
    pub fn scopes(&self) -> &[String] {
        &self.0.scopes
    }

    /// The key's human-readable name.
    pub fn name(&self) -> &str {
        &self.0.name
    }

    /// Whether the key carries `scope` (exact match).
    pub fn has_scope(&self, scope: &str) -> bool {
        self.0.scopes.iter().any(|s| s == scope)
    }

    /// Whether the key carries every one of `scopes`.
    pub fn has_scopes<'a>(&self, scopes: impl IntoIterator<Item = &'a str>) -> bool {
        scopes.into_iter().all(|s| self.has_scope(s))
    }
}

impl fmt::Debug for ApiKeyIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiKeyIdentity")
            .field("key_id", &self.0.key_id)
            .field("tenant", &self.0.tenant)
            .field("scopes", &self.0.scopes)
            .field("name", &self.0.name)
            .finish()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn scopes_match_exactly() {
        let who = ApiKeyIdentity::new("id", "t", ["a:read", "b"], "n");
        assert!(who.has_scope("a:read"));
        assert!(!who.has_scope("a"));
        assert!(who.has_scopes(["a:read", "b"]));
        assert!(!who.has_scopes(["a:read", "c"]));
        assert!(who.has_scopes([]));
        assert_eq!(who.clone(), who);
    }
}
