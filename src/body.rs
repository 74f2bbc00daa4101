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

use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::Response;
use http::request::Parts;
use http_body::{Body, Frame, SizeHint};
use http_body_util::Full;
use pin_project::pin_project;

use crate::error::{FullBody, MakeRejection, Problem};

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

/// How a layer answers a request it refuses: the app's [`MakeRejection`],
/// or the problem+json document of the [`Problem`] (the default).
///
/// Either way the response carries the `Problem` in its extensions, and the
/// headers the protocol requires (`WWW-Authenticate`, `Retry-After`) are the
/// problem's, whatever the builder set.
#[derive(Clone, Default)]
pub(crate) struct Refusal {
    custom: Option<Arc<dyn MakeRejection>>,
}

impl Refusal {
    /// Refusals built by `make`.
    pub(crate) fn custom(make: impl MakeRejection) -> Self {
        Self {
            custom: Some(Arc::new(make)),
        }
    }

    /// The response refusing the request with these `parts` for `problem`.
    pub(crate) fn respond<B>(&self, problem: Problem, parts: &Parts) -> Response<ResponseBody<B>> {
        let mut res = match &self.custom {
            None => problem.clone().into_response(),
            Some(make) => {
                let mut res = make.make_rejection(&problem, parts);
                problem.set_protocol_headers(res.headers_mut());
                res
            }
        };
        res.extensions_mut().insert(problem);
        res.map(ResponseBody::from_full)
    }
}

impl fmt::Debug for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self.custom {
            None => "ProblemJson",
            Some(_) => "MakeRejection",
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use http::StatusCode;
    use http::header::{CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE};
    use http_body_util::BodyExt;

    fn parts() -> Parts {
        http::Request::new(()).into_parts().0
    }

    #[tokio::test]
    async fn full_and_inner_bodies_stream() {
        let res: Response<ResponseBody<Full<Bytes>>> =
            Refusal::default().respond(Problem::store_unavailable(), &parts());
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

    #[tokio::test]
    async fn a_custom_refusal_keeps_the_protocol_headers_and_the_problem() {
        let refusal = Refusal::custom(|problem: &Problem, parts: &Parts| {
            let mut res = Response::new(Full::new(Bytes::from(format!(
                "{} at {}",
                problem.code(),
                parts.uri.path()
            ))));
            *res.status_mut() = problem.status();
            let h = res.headers_mut();
            h.insert(CONTENT_TYPE, "text/plain".parse().unwrap());
            // Dropped: the layer's challenge and wait are the problem's.
            h.insert(WWW_AUTHENTICATE, "Basic".parse().unwrap());
            h.insert(RETRY_AFTER, "0".parse().unwrap());
            res
        });
        let problem = Problem::invalid_token().with_retry_after(std::time::Duration::from_secs(3));
        let res: Response<ResponseBody<Full<Bytes>>> = refusal.respond(problem, &parts());
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(res.headers()[CONTENT_TYPE], "text/plain");
        let challenges: Vec<_> = res.headers().get_all(WWW_AUTHENTICATE).iter().collect();
        assert_eq!(challenges, ["Bearer error=\"invalid_token\""]);
        assert_eq!(res.headers()[RETRY_AFTER], "3");
        assert_eq!(
            res.extensions().get::<Problem>().map(Problem::code),
            Some("invalid_token")
        );
        let body = res.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(body, "invalid_token at /");
    }

    #[test]
    fn the_default_refusal_is_the_problem_document_with_the_problem_attached() {
        let res: Response<ResponseBody<Full<Bytes>>> =
            Refusal::default().respond(Problem::invalid_token(), &parts());
        let challenges: Vec<_> = res.headers().get_all(WWW_AUTHENTICATE).iter().collect();
        assert_eq!(challenges, ["Bearer error=\"invalid_token\""]);
        assert_eq!(res.headers()[CONTENT_TYPE], "application/problem+json");
        assert!(res.extensions().get::<Problem>().is_some());
    }
}
