//! axum extractor for [`Claims`].

use axum::extract::FromRequestParts;
use axum::response::{IntoResponse, Response};
use http::request::Parts;

use super::claims::Claims;
use crate::error::Problem;

/// Rejection when no verified claims are on the request (the route is not
/// behind a [`JwtLayer`](super::JwtLayer)): `401 invalid_token`.
#[derive(Debug)]
pub struct MissingClaims;

impl IntoResponse for MissingClaims {
    fn into_response(self) -> Response {
        Problem::invalid_token().into_response().into_response()
    }
}

impl<C, St> FromRequestParts<St> for Claims<C>
where
    C: Send + Sync + 'static,
    St: Send + Sync,
{
    type Rejection = MissingClaims;

    async fn from_request_parts(parts: &mut Parts, _: &St) -> Result<Self, Self::Rejection> {
        parts.extensions.get::<Self>().cloned().ok_or(MissingClaims)
    }
}
