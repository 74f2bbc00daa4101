//! [`Claims`]: what the layer puts into request extensions.

use std::fmt;
use std::sync::Arc;

use super::token::RegisteredClaims;

/// The verified claims of the request's access token, in request extensions.
///
/// `C` is the application's own claims type, parsed from the token payload;
/// the registered claims (`sub`, `exp`, `sid`, …) are alongside. Cloning is
/// one reference count, whatever `C` is. Under the `axum` feature this is
/// also an extractor.
///
/// ```
/// use tower_otp::jwt::{Claims, RegisteredClaims};
///
/// let claims = Claims::new(
///     serde_json::json!({"plan": "pro"}),
///     RegisteredClaims { sub: Some("usr_1".into()), ..Default::default() },
/// );
/// assert_eq!(claims.custom()["plan"], "pro");
/// assert_eq!(claims.registered().sub.as_deref(), Some("usr_1"));
/// ```
pub struct Claims<C>(Arc<ClaimsParts<C>>);

struct ClaimsParts<C> {
    custom: C,
    registered: RegisteredClaims,
}

impl<C> Claims<C> {
    /// Claims from their two parts (tests and custom authenticators).
    pub fn new(custom: C, registered: RegisteredClaims) -> Self {
        Self(Arc::new(ClaimsParts { custom, registered }))
    }

    /// The application's claims.
    pub fn custom(&self) -> &C {
        &self.0.custom
    }

    /// Registered claims.
    pub fn registered(&self) -> &RegisteredClaims {
        &self.0.registered
    }
}

impl<C> Clone for Claims<C> {
    fn clone(&self) -> Self {
        Self(Arc::clone(&self.0))
    }
}

impl<C: fmt::Debug> fmt::Debug for Claims<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Claims")
            .field("custom", &self.0.custom)
            .field("registered", &self.0.registered)
            .finish()
    }
}
