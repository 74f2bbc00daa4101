//! The skeleton every layer shares, written once (tower-http `macros.rs`).
//!
//! Declared first in `lib.rs`, so every module of the crate can use them.

/// `get_ref`, `get_mut` and `into_inner` for a service whose inner service
/// is the field `inner` of the type parameter `S`; expands inside the
/// service's `impl<S, …> Foo<S, …>` block.
macro_rules! inner_service_accessors {
    () => {
        /// The inner service.
        pub fn get_ref(&self) -> &S {
            &self.inner
        }

        /// The inner service, mutably.
        pub fn get_mut(&mut self) -> &mut S {
            &mut self.inner
        }

        /// Consumes `self`, returning the inner service.
        pub fn into_inner(self) -> S {
            self.inner
        }
    };
}

/// The associated types and `poll_ready` of a layer service that may answer
/// on its own: its response body is [`ResponseBody`](crate::body::ResponseBody)
/// over `$body`, its future the module's `ResponseFuture`, and readiness is
/// the inner service's. Expands inside `impl Service<Request<_>> for Foo<S, …>`.
macro_rules! refusing_service_items {
    ($body:ident) => {
        type Response = http::Response<$crate::body::ResponseBody<$body>>;
        type Error = S::Error;
        type Future = ResponseFuture<S::Future, $body>;

        fn poll_ready(
            &mut self,
            cx: &mut ::std::task::Context<'_>,
        ) -> ::std::task::Poll<Result<(), Self::Error>> {
            self.inner.poll_ready(cx)
        }
    };
}

/// `events`, `events_arc` and `rejection` for the builder of a layer that
/// refuses requests, whose refusal settings are its field `refusal` (a
/// [`Refusal`](crate::refusal::Refusal)); expands inside the builder's
/// `impl` block. `events:` says what is reported, `refusals:` which
/// refusals there are and which headers the layer keeps on them.
macro_rules! refusal_settings {
    (events: $events:literal, refusals: $refusals:literal $(,)?) => {
        #[doc = concat!("Reports ", $events, " to `sink` (default: no events).")]
        pub fn events(self, sink: impl $crate::events::EventSink) -> Self {
            self.events_arc(::std::sync::Arc::new(sink))
        }

        /// Reports to a shared `sink` (see [`events`](Self::events)).
        pub fn events_arc(mut self, sink: ::std::sync::Arc<dyn $crate::events::EventSink>) -> Self {
            self.refusal.set_events(sink);
            self
        }

        #[doc = concat!(
                            "Builds refusals (", $refusals, ") with `rejection` instead of the ",
                            "problem+json default; those headers and the ",
                            "[`Problem`](crate::error::Problem) in the extensions are added ",
                            "whatever it returns (see ",
                            "[Refusals of the layers](crate::error#refusals-of-the-layers))."
                        )]
        pub fn rejection(mut self, rejection: impl $crate::error::MakeRejection) -> Self {
            self.refusal.set_rejection(rejection);
            self
        }
    };
}

/// The public `ResponseFuture<F, B>` of a layer that may answer on its own:
/// an opaque newtype over the crate's one
/// [`LayerFuture`](crate::future::LayerFuture), whose inner-future state ends
/// with `$finish` (a [`Finish`](crate::future::Finish); `()` for none).
///
/// ```text
/// response_future! {
///     /// Response future of [`Foo`](super::Foo).
///     ()
/// }
/// ```
macro_rules! response_future {
    ($(#[$attr:meta])* $finish:ty) => {
        $(#[$attr])*
        #[::pin_project::pin_project]
        pub struct ResponseFuture<F, B> {
            #[pin]
            inner: $crate::future::LayerFuture<F, B, $finish>,
        }

        impl<F, B> ResponseFuture<F, B> {
            pub(crate) fn new(inner: $crate::future::LayerFuture<F, B, $finish>) -> Self {
                Self { inner }
            }
        }

        impl<F, B> ::std::fmt::Debug for ResponseFuture<F, B> {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.debug_tuple("ResponseFuture").field(&self.inner).finish()
            }
        }

        impl<F, B, E> ::std::future::Future for ResponseFuture<F, B>
        where
            F: ::std::future::Future<Output = ::std::result::Result<::http::Response<B>, E>>,
        {
            type Output =
                ::std::result::Result<::http::Response<$crate::body::ResponseBody<B>>, E>;

            fn poll(
                self: ::std::pin::Pin<&mut Self>,
                cx: &mut ::std::task::Context<'_>,
            ) -> ::std::task::Poll<Self::Output> {
                self.project().inner.poll(cx)
            }
        }
    };
}
