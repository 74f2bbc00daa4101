//! The response body of layers that may answer on their own.
//!
//! A layer is generic over the inner service's response body `B`, yet a
//! refusal (`429`, `503`, …) carries a problem+json document the layer builds
//! itself. [`ResponseBody`] is either of the two, and is a
//! [`http_body::Body`] with `Data = Bytes` and the inner body's error type, so
//! an axum `Router` accepts a layered service unchanged
//! (`axum::body::Body`'s error converts into a boxed error).
//!
//! ```
//! use bytes::Bytes;
//! use http_body_util::{BodyExt, Full};
//! use tower_otp::body::{ResponseBody, problem_response};
//! use tower_otp::error::Problem;
//!
//! # tokio_test_block_on(async {
//! let res = problem_response::<Full<Bytes>>(Problem::not_found());
//! assert_eq!(res.status(), 404);
//! let bytes = res.into_body().collect().await.unwrap().to_bytes();
//! assert!(bytes.starts_with(b"{"));
//!
//! let passed: ResponseBody<Full<Bytes>> = ResponseBody::inner(Full::new(Bytes::from("hi")));
//! assert_eq!(passed.collect().await.unwrap().to_bytes(), "hi");
//! # });
//! # fn tokio_test_block_on<F: std::future::Future>(f: F) -> F::Output {
//! #     tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
//! # }
//! ```

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::Response;
use http_body::{Body, Frame, SizeHint};
use http_body_util::Full;
use pin_project::pin_project;

use crate::error::Problem;

/// Either a complete body built by a layer, or the inner service's body.
#[pin_project(project = ResponseBodyProj)]
#[derive(Debug)]
pub enum ResponseBody<B> {
    /// A complete body built by the layer (a problem document).
    Full {
        /// The bytes.
        #[pin]
        body: Full<Bytes>,
    },
    /// The inner service's body, passed through untouched.
    Inner {
        /// The inner body.
        #[pin]
        body: B,
    },
}

impl<B> ResponseBody<B> {
    /// Wraps the inner service's body.
    pub fn inner(body: B) -> Self {
        Self::Inner { body }
    }

    /// A complete body of `bytes`.
    pub fn full(bytes: impl Into<Bytes>) -> Self {
        Self::Full {
            body: Full::new(bytes.into()),
        }
    }
}

impl<B> Body for ResponseBody<B>
where
    B: Body<Data = Bytes>,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        match self.project() {
            ResponseBodyProj::Full { body } => body
                .poll_frame(cx)
                .map(|frame| frame.map(|r| r.map_err(|never| match never {}))),
            ResponseBodyProj::Inner { body } => body.poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Self::Full { body } => body.is_end_stream(),
            Self::Inner { body } => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Self::Full { body } => body.size_hint(),
            Self::Inner { body } => body.size_hint(),
        }
    }
}

/// `problem` as a response whose body type matches a layered service.
pub fn problem_response<B>(problem: Problem) -> Response<ResponseBody<B>> {
    problem
        .into_response()
        .map(|body| ResponseBody::Full { body })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    #[tokio::test]
    async fn full_and_inner_bodies_stream() {
        let res = problem_response::<Full<Bytes>>(Problem::store_unavailable());
        assert_eq!(res.status(), 503);
        assert_eq!(res.headers()["content-type"], "application/problem+json");
        let body = res.into_body();
        assert!(body.size_hint().exact().is_some_and(|n| n > 0));
        let doc: serde_json::Value =
            serde_json::from_slice(&body.collect().await.unwrap().to_bytes()).unwrap();
        assert_eq!(doc["code"], "store_unavailable");

        let inner = ResponseBody::inner(Full::new(Bytes::from_static(b"abc")));
        assert_eq!(inner.size_hint().exact(), Some(3));
        assert_eq!(inner.collect().await.unwrap().to_bytes(), "abc");
    }
}
