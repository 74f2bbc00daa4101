//! The response future of [`RateLimit`](super::RateLimit).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::{HeaderMap, HeaderValue, Response};
use pin_project::pin_project;

use super::service::{RATELIMIT, RATELIMIT_POLICY};
use crate::body::ResponseBody;

type Boxed<B, E> = Pin<Box<dyn Future<Output = Result<Response<ResponseBody<B>>, E>> + Send>>;

/// Response future of [`RateLimit`](super::RateLimit).
///
/// With a store that decides at once (the in-memory one) it is either the
/// refusal or the inner service's future plus the headers to add; with a
/// store that needs I/O it is one boxed future doing the store check and then
/// the inner call.
#[pin_project]
pub struct ResponseFuture<F, B, E> {
    #[pin]
    state: State<F, B, E>,
}

#[pin_project(project = StateProj)]
enum State<F, B, E> {
    Refused(Option<Response<ResponseBody<B>>>),
    Inner {
        #[pin]
        future: F,
        headers: Option<RateLimitHeaders>,
    },
    Checking(Boxed<B, E>),
}

/// The `RateLimit-Policy` and `RateLimit` values for one response.
#[derive(Debug)]
pub(crate) struct RateLimitHeaders {
    pub(crate) policy: HeaderValue,
    pub(crate) limit: Option<HeaderValue>,
}

impl RateLimitHeaders {
    pub(crate) fn add_to(self, headers: &mut HeaderMap) {
        // `append`: a layer further out adds its own policies beside ours.
        headers.append(RATELIMIT_POLICY, self.policy);
        if let Some(limit) = self.limit {
            headers.append(RATELIMIT, limit);
        }
    }
}

impl<F, B, E> ResponseFuture<F, B, E> {
    pub(crate) fn refused(res: Response<ResponseBody<B>>) -> Self {
        Self {
            state: State::Refused(Some(res)),
        }
    }

    pub(crate) fn inner(future: F, headers: RateLimitHeaders) -> Self {
        Self {
            state: State::Inner {
                future,
                headers: Some(headers),
            },
        }
    }

    pub(crate) fn boxed(
        future: impl Future<Output = Result<Response<ResponseBody<B>>, E>> + Send + 'static,
    ) -> Self {
        Self {
            state: State::Checking(Box::pin(future)),
        }
    }
}

impl<F, B, E> Future for ResponseFuture<F, B, E>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<ResponseBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().state.project() {
            StateProj::Refused(res) => {
                Poll::Ready(Ok(res.take().expect("polled after completion")))
            }
            StateProj::Inner { future, headers } => {
                let res = std::task::ready!(future.poll(cx))?;
                let mut res = res.map(ResponseBody::inner);
                if let Some(headers) = headers.take() {
                    headers.add_to(res.headers_mut());
                }
                Poll::Ready(Ok(res))
            }
            StateProj::Checking(future) => future.as_mut().poll(cx),
        }
    }
}

impl<F, B, E> fmt::Debug for ResponseFuture<F, B, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}
