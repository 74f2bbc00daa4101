//! [`ApiKeyAuth`]: the API-key check as a `tower::Service`.

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response};
use tower::{Layer, Service};

use super::future::ResponseFuture;
use super::layer::{ApiKeyLayer, Shared};
use super::manage::{ApiKeys, Precheck};
use crate::body::ResponseBody;
use crate::store::Store;

/// Checks the API key of every request before the inner service sees it.
/// Built by [`ApiKeyLayer`]; see it for the behaviour.
pub struct ApiKeyAuth<S, I> {
    inner: I,
    shared: Arc<Shared<S>>,
}

impl<S, I: Clone> Clone for ApiKeyAuth<S, I> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<S: fmt::Debug, I: fmt::Debug> fmt::Debug for ApiKeyAuth<S, I> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiKeyAuth")
            .field("inner", &self.inner)
            .field("config", &self.shared)
            .finish()
    }
}

impl<S: Store, I> ApiKeyAuth<S, I> {
    /// Wraps `inner` with the default configuration (see [`ApiKeyLayer::new`]).
    pub fn new(inner: I, keys: ApiKeys<S>) -> Self {
        ApiKeyLayer::new(keys).layer(inner)
    }

    /// A layer with the default configuration.
    pub fn layer(keys: ApiKeys<S>) -> ApiKeyLayer<S> {
        ApiKeyLayer::new(keys)
    }
}

impl<S, I> ApiKeyAuth<S, I> {
    pub(crate) fn from_shared(inner: I, shared: Arc<Shared<S>>) -> Self {
        Self { inner, shared }
    }

    /// The inner service.
    pub fn get_ref(&self) -> &I {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut I {
        &mut self.inner
    }

    /// Unwraps the inner service.
    pub fn into_inner(self) -> I {
        self.inner
    }
}

impl<S, I, ReqB, ResB> Service<Request<ReqB>> for ApiKeyAuth<S, I>
where
    S: Store,
    I: Service<Request<ReqB>, Response = Response<ResB>> + Clone + Send + 'static,
    I::Future: Send + 'static,
    I::Error: 'static,
    ReqB: Send + 'static,
    ResB: 'static,
{
    type Response = Response<ResponseBody<ResB>>;
    type Error = I::Error;
    type Future = ResponseFuture<I::Future, ResB>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqB>) -> Self::Future {
        match self.shared.precheck(req.headers()) {
            Precheck::Refused(rejection) => {
                ResponseFuture::refused(self.shared.refuse(req, &rejection, None))
            }
            Precheck::Verified(identity) => match self.shared.admit(req, identity) {
                Ok(req) => ResponseFuture::inner(self.inner.call(req)),
                Err(refused) => ResponseFuture::refused(refused),
            },
            Precheck::Pending(pending) => {
                // The ready service goes into the future; a clone stays.
                let clone = self.inner.clone();
                let mut inner = std::mem::replace(&mut self.inner, clone);
                let shared = Arc::clone(&self.shared);
                ResponseFuture::checking(Box::pin(async move {
                    let key_id = pending.key_id().to_owned();
                    match shared.keys.complete(pending).await {
                        Ok(identity) => shared.admit(req, identity).map(|req| inner.call(req)),
                        Err(rejection) => Err(shared.refuse(req, &rejection, Some(&key_id))),
                    }
                }))
            }
        }
    }
}
