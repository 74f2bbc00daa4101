//! The response future of [`RateLimit`](super::RateLimit).

response_future! {
    /// Response future of [`RateLimit`](super::RateLimit).
    ///
    /// With a store that decides at once (the in-memory one) it is either the
    /// refusal or the inner service's future, whose response gets the
    /// `RateLimit-Policy` / `RateLimit` headers; with a store that needs I/O
    /// the store check runs as a boxed future first.
    super::fields::RateLimitHeaders
}
