//! The response future of every layer that may answer on its own.
//!
//! A request is either decided in `call` (a refusal, with no allocation), or
//! passed on to the inner service (its future polled in place), or — when
//! the check awaits the store — checked in a boxed `Send` future that ends
//! with one of the two. Each layer's public `ResponseFuture` is an opaque
//! newtype over [`LayerFuture`], made by `response_future!`.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use http::Response;
use pin_project::pin_project;

use crate::body::ResponseBody;

/// What a layer does to the inner service's response before handing it on
/// (the rate-limit layer adds its headers); `()` does nothing.
pub(crate) trait Finish {
    /// Finishes `response`.
    fn finish<B>(self, response: &mut Response<B>);
}

impl Finish for () {
    fn finish<B>(self, _: &mut Response<B>) {}
}

/// How a check that awaited the store ends.
pub(crate) enum Checked<F, B, X> {
    /// Passed: the inner service's future, and what finishes its response.
    Pass(F, X),
    /// Refused (or otherwise answered by the layer).
    Decided(Response<ResponseBody<B>>),
}

type Check<F, B, X> = Pin<Box<dyn Future<Output = Checked<F, B, X>> + Send>>;

/// A decided response, the inner service's future, or a store check that
/// leads to one of the two.
#[pin_project(project = StateProj)]
pub(crate) enum LayerFuture<F, B, X = ()> {
    Decided {
        response: Option<Response<ResponseBody<B>>>,
    },
    Inner {
        #[pin]
        future: F,
        finish: Option<X>,
    },
    Checking {
        check: Check<F, B, X>,
    },
}

impl<F, B, X> LayerFuture<F, B, X> {
    /// Answers `response` without calling the inner service.
    pub(crate) fn decided(response: Response<ResponseBody<B>>) -> Self {
        Self::Decided {
            response: Some(response),
        }
    }

    /// Polls the inner service's `future`, then `finish`es its response.
    pub(crate) fn inner(future: F, finish: X) -> Self {
        Self::Inner {
            future,
            finish: Some(finish),
        }
    }

    /// Awaits `check` (which owns the ready inner service), then goes on as
    /// it decides.
    pub(crate) fn checking(check: impl Future<Output = Checked<F, B, X>> + Send + 'static) -> Self {
        Self::Checking {
            check: Box::pin(check),
        }
    }
}

impl<F, B, X> fmt::Debug for LayerFuture<F, B, X> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Decided { .. } => "Decided",
            Self::Inner { .. } => "Inner",
            Self::Checking { .. } => "Checking",
        })
    }
}

impl<F, B, E, X> Future for LayerFuture<F, B, X>
where
    F: Future<Output = Result<Response<B>, E>>,
    X: Finish,
{
    type Output = Result<Response<ResponseBody<B>>, E>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        loop {
            match self.as_mut().project() {
                StateProj::Decided { response } => {
                    let response = response
                        .take()
                        .expect("response future polled after completion");
                    return Poll::Ready(Ok(response));
                }
                StateProj::Inner { future, finish } => {
                    let mut response = ready!(future.poll(cx))?.map(ResponseBody::inner);
                    if let Some(finish) = finish.take() {
                        finish.finish(&mut response);
                    }
                    return Poll::Ready(Ok(response));
                }
                StateProj::Checking { check } => match ready!(check.as_mut().poll(cx)) {
                    Checked::Pass(future, finish) => self.set(Self::inner(future, finish)),
                    Checked::Decided(response) => {
                        self.set(Self::Decided { response: None });
                        return Poll::Ready(Ok(response));
                    }
                },
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::convert::Infallible;
    use std::future::{Ready, ready};

    use bytes::Bytes;
    use http::HeaderValue;
    use http_body_util::{BodyExt, Full};

    use super::*;

    type Inner = Ready<Result<Response<Full<Bytes>>, Infallible>>;

    struct Tag;

    impl Finish for Tag {
        fn finish<B>(self, response: &mut Response<B>) {
            response
                .headers_mut()
                .insert("x-tag", HeaderValue::from_static("1"));
        }
    }

    fn inner() -> Inner {
        ready(Ok(Response::new(Full::new(Bytes::from_static(b"inner")))))
    }

    fn refusal() -> Response<ResponseBody<Full<Bytes>>> {
        let mut res = Response::new(ResponseBody::full(Bytes::from_static(b"no")));
        *res.status_mut() = http::StatusCode::FORBIDDEN;
        res
    }

    async fn body(res: Response<ResponseBody<Full<Bytes>>>) -> Bytes {
        res.into_body().collect().await.unwrap().to_bytes()
    }

    #[tokio::test]
    async fn each_state_ends_in_its_response() {
        let decided: LayerFuture<Inner, _, Tag> = LayerFuture::decided(refusal());
        let res = decided.await.unwrap();
        assert_eq!(res.status(), 403);
        assert!(res.headers().get("x-tag").is_none());

        let res = LayerFuture::inner(inner(), Tag).await.unwrap();
        assert_eq!(res.headers()["x-tag"], "1");
        assert_eq!(body(res).await, "inner");

        let passed = LayerFuture::checking(async { Checked::Pass(inner(), Tag) });
        let res = passed.await.unwrap();
        assert_eq!(res.headers()["x-tag"], "1");
        assert_eq!(body(res).await, "inner");

        let refused: LayerFuture<Inner, _, Tag> =
            LayerFuture::checking(async { Checked::Decided(refusal()) });
        let res = refused.await.unwrap();
        assert_eq!(res.status(), 403);
        assert_eq!(body(res).await, "no");
    }
}
