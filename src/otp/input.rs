//! Reading request bodies: content type, size limit, JSON — each failure a
//! clear 4xx problem, never a 5xx.

use bytes::Bytes;
use http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use http::request::Parts;
use http_body::Body;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use serde::de::DeserializeOwned;

use crate::error::Problem;
use crate::store::BoxError;

/// Whether the request says its body is JSON (`application/json`, any
/// parameters, any case).
pub(crate) fn is_json(parts: &Parts) -> bool {
    parts
        .headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("application/json"))
}

/// Collects at most `limit` bytes of `body`.
pub(crate) async fn read_limited<B>(parts: &Parts, body: B, limit: usize) -> Result<Bytes, Problem>
where
    B: Body,
    B::Error: Into<BoxError>,
{
    let declared = parts
        .headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(Problem::body_too_large(limit));
    }
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => {
            Err(Problem::body_too_large(limit))
        }
        Err(_) => Err(Problem::invalid_request(
            "The request body could not be read.",
        )),
    }
}

/// Parses a JSON body: syntax errors are `400`, wrong or missing fields `422`.
pub(crate) fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Problem> {
    serde_json::from_slice(bytes).map_err(|e| match e.classify() {
        serde_json::error::Category::Data => {
            let mut msg = e.to_string();
            msg.truncate(200);
            Problem::unprocessable(msg)
        }
        _ => Problem::invalid_request("The request body is not valid JSON."),
    })
}

/// Content type, limit and JSON together.
pub(crate) async fn read_json<T, B>(parts: &Parts, body: B, limit: usize) -> Result<T, Problem>
where
    T: DeserializeOwned,
    B: Body,
    B::Error: Into<BoxError>,
{
    if !is_json(parts) {
        return Err(Problem::unsupported_media_type());
    }
    let bytes = read_limited(parts, body, limit).await?;
    parse_json(&bytes)
}
