//! [`ResponseFuture`] of [`ApiKeyAuth`](super::ApiKeyAuth).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use http::Response;
use pin_project::pin_project;

use crate::body::ResponseBody;

/// What the store check ends with: the inner service's future, or a refusal.
pub(crate) type Checked<F, B> = Result<F, Response<ResponseBody<B>>>;

/// The store check, boxed (it awaits the store).
pub(crate) type BoxCheck<F, B> = Pin<Box<dyn Future<Output = Checked<F, B>> + Send>>;

/// The response future of [`ApiKeyAuth`](super::ApiKeyAuth).
///
/// A key decided without I/O (refused by its format or checksum, or found in
/// the cache) goes straight to a response or to the inner service's future
/// with no allocation; otherwise the store check runs as a boxed `Send`
/// future first.
#[pin_project]
pub struct ResponseFuture<F, B> {
    #[pin]
    state: State<F, B>,
}

#[pin_project(project = StateProj)]
enum State<F, B> {
    Refused {
        response: Option<Response<ResponseBody<B>>>,
    },
    Checking {
        check: BoxCheck<F, B>,
    },
    Inner {
        #[pin]
        future: F,
    },
}

impl<F, B> ResponseFuture<F, B> {
    pub(crate) fn refused(response: Response<ResponseBody<B>>) -> Self {
        Self {
            state: State::Refused {
                response: Some(response),
            },
        }
    }

    pub(crate) fn inner(future: F) -> Self {
        Self {
            state: State::Inner { future },
        }
    }

    pub(crate) fn checking(check: BoxCheck<F, B>) -> Self {
        Self {
            state: State::Checking { check },
        }
    }
}

impl<F, B> fmt::Debug for ResponseFuture<F, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match self.state {
            State::Refused { .. } => "Refused",
            State::Checking { .. } => "Checking",
            State::Inner { .. } => "Inner",
        };
        f.debug_struct("api_key::ResponseFuture")
            .field("state", &state)
            .finish()
    }
}

impl<F, B, E> Future for ResponseFuture<F, B>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<ResponseBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut state = self.project().state;
        loop {
            match state.as_mut().project() {
                StateProj::Refused { response } => {
                    let response = response
                        .take()
                        .expect("api_key::ResponseFuture polled after completion");
                    return Poll::Ready(Ok(response));
                }
                StateProj::Checking { check } => match ready!(check.as_mut().poll(cx)) {
                    Ok(future) => state.set(State::Inner { future }),
                    Err(response) => {
                        state.set(State::Refused { response: None });
                        return Poll::Ready(Ok(response));
                    }
                },
                StateProj::Inner { future } => {
                    return future
                        .poll(cx)
                        .map(|r| r.map(|res| res.map(ResponseBody::inner)));
                }
            }
        }
    }
}
