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
//! use http::{Request, Response};
//! use http_body_util::{BodyExt, Full};
//! use tower::{Layer, ServiceExt, service_fn};
//! use tower_otp::body::ResponseBody;
//! use tower_otp::jwt::{JwtKeys, JwtLayer, Validation};
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let keys = JwtKeys::new("k1", rand::random::<[u8; 32]>())?;
//! let svc = JwtLayer::<serde_json::Value>::new(keys, Validation::default()).layer(
//!     service_fn(|_req: Request<()>| async {
//!         Ok::<_, std::convert::Infallible>(Response::new(Full::new(Bytes::from("hi"))))
//!     }),
//! );
//! // No token: the layer answers with its own body.
//! let res: Response<ResponseBody<Full<Bytes>>> = svc.oneshot(Request::new(())).await?;
//! assert_eq!(res.status(), 401);
//! let bytes = res.into_body().collect().await?.to_bytes();
//! assert!(bytes.starts_with(b"{"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::Full;
use pin_project::pin_project;

use crate::error::FullBody;

/// Either a complete body built by a layer (a problem document), or the
/// inner service's body, passed through untouched.
#[pin_project]
#[derive(Debug)]
pub struct ResponseBody<B> {
    #[pin]
    kind: Kind<B>,
}

#[pin_project(project = KindProj)]
#[derive(Debug)]
enum Kind<B> {
    Full(#[pin] Full<Bytes>),
    Inner(#[pin] B),
}

impl<B> ResponseBody<B> {
    /// Wraps the inner service's body.
    pub(crate) fn inner(body: B) -> Self {
        Self {
            kind: Kind::Inner(body),
        }
    }

    /// A complete body of `bytes`.
    #[cfg(test)]
    pub(crate) fn full(bytes: impl Into<Bytes>) -> Self {
        Self::from_full(Full::new(bytes.into()))
    }

    /// A complete body built by the layer.
    pub(crate) fn from_full(body: FullBody) -> Self {
        Self {
            kind: Kind::Full(body),
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
        match self.project().kind.project() {
            KindProj::Full(body) => body
                .poll_frame(cx)
                .map(|frame| frame.map(|r| r.map_err(|never| match never {}))),
            KindProj::Inner(body) => body.poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Full(body) => body.is_end_stream(),
            Kind::Inner(body) => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Full(body) => body.size_hint(),
            Kind::Inner(body) => body.size_hint(),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    #[tokio::test]
    async fn full_and_inner_bodies_stream() {
        let full: ResponseBody<Full<Bytes>> = ResponseBody::full(Bytes::from_static(b"{}"));
        assert_eq!(full.size_hint().exact(), Some(2));
        assert_eq!(full.collect().await.unwrap().to_bytes(), "{}");

        let inner = ResponseBody::inner(Full::new(Bytes::from_static(b"abc")));
        assert_eq!(inner.size_hint().exact(), Some(3));
        assert_eq!(inner.collect().await.unwrap().to_bytes(), "abc");
    }
}
