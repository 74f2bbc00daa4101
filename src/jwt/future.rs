//! The response future of [`JwtAuth`](super::JwtAuth).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::Response;
use pin_project::pin_project;

use crate::body::ResponseBody;

type Boxed<B, E> = Pin<Box<dyn Future<Output = Result<Response<ResponseBody<B>>, E>> + Send>>;

/// Either an immediate refusal, the inner service's future, or (with a
/// revocation check) a boxed future that awaits the store first.
#[pin_project]
pub struct ResponseFuture<F, B, E> {
    #[pin]
    state: State<F, B, E>,
}

#[pin_project(project = StateProj)]
enum State<F, B, E> {
    Refused(Option<Response<ResponseBody<B>>>),
    Inner(#[pin] F),
    Checking(Boxed<B, E>),
}

impl<F, B, E> ResponseFuture<F, B, E> {
    pub(crate) fn refused(res: Response<ResponseBody<B>>) -> Self {
        Self {
            state: State::Refused(Some(res)),
        }
    }

    pub(crate) fn inner(future: F) -> Self {
        Self {
            state: State::Inner(future),
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

impl<F, B, E> fmt::Debug for ResponseFuture<F, B, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("jwt::ResponseFuture")
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
            StateProj::Inner(fut) => fut
                .poll(cx)
                .map(|r| r.map(|res| res.map(ResponseBody::inner))),
            StateProj::Checking(fut) => fut.as_mut().poll(cx),
        }
    }
}
