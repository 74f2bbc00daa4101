//! axum extractor for [`ApiKeyIdentity`] (feature `axum`).

use std::convert::Infallible;
use std::fmt;

use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use axum::response::{IntoResponse, Response};
use http::request::Parts;

use super::error::invalid_api_key;
use super::identity::ApiKeyIdentity;

/// Extracts the [`ApiKeyIdentity`] the [`ApiKeyLayer`](super::ApiKeyLayer)
/// put into request extensions. Without it (the route is not behind the
/// layer) the request is refused with `401 invalid_api_key`;
/// `Option<ApiKeyIdentity>` never refuses.
///
/// ```
/// use axum::{Router, routing::get};
/// use tower_otp::api_key::{ApiKeyIdentity, ApiKeyLayer, ApiKeys};
/// use tower_otp::store::MemoryStore;
///
/// async fn whoami(who: ApiKeyIdentity) -> String {
///     format!("{} ({})", who.tenant(), who.key_id())
/// }
///
/// let keys = ApiKeys::builder(MemoryStore::new()).build()?;
/// let app: Router = Router::new()
///     .route("/whoami", get(whoami))
///     .layer(ApiKeyLayer::new(keys));
/// # let _ = app;
/// # Ok::<(), tower_otp::error::ConfigError>(())
/// ```
impl<St: Send + Sync> FromRequestParts<St> for ApiKeyIdentity {
    type Rejection = MissingApiKeyIdentity;

    async fn from_request_parts(parts: &mut Parts, _: &St) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<ApiKeyIdentity>()
            .cloned()
            .ok_or(MissingApiKeyIdentity)
    }
}

impl<St: Send + Sync> OptionalFromRequestParts<St> for ApiKeyIdentity {
    type Rejection = Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        _: &St,
    ) -> Result<Option<Self>, Self::Rejection> {
        Ok(parts.extensions.get::<ApiKeyIdentity>().cloned())
    }
}

/// The request carries no verified API key: answered `401 invalid_api_key`
/// (problem+json).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct MissingApiKeyIdentity;

impl fmt::Display for MissingApiKeyIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("no verified API key on the request")
    }
}

impl std::error::Error for MissingApiKeyIdentity {}

impl IntoResponse for MissingApiKeyIdentity {
    fn into_response(self) -> Response {
        invalid_api_key().into_response().map(axum::body::Body::new)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn extracts_or_refuses_with_problem_json() {
        let (mut parts, ()) = http::Request::new(()).into_parts();
        let refused = <ApiKeyIdentity as FromRequestParts<()>>::from_request_parts(&mut parts, &())
            .await
            .unwrap_err()
            .into_response();
        assert_eq!(refused.status(), 401);
        assert_eq!(
            refused.headers()["content-type"],
            "application/problem+json"
        );
        let none =
            <ApiKeyIdentity as OptionalFromRequestParts<()>>::from_request_parts(&mut parts, &())
                .await
                .unwrap();
        assert!(none.is_none());

        let who = ApiKeyIdentity::new("id", "acme", ["read"], "ci");
        parts.extensions.insert(who.clone());
        let got = <ApiKeyIdentity as FromRequestParts<()>>::from_request_parts(&mut parts, &())
            .await
            .unwrap();
        assert_eq!(got, who);
    }
}
