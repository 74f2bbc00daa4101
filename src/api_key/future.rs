//! The response future of [`ApiKey`](super::ApiKey).

response_future! {
    /// The response future of [`ApiKey`](super::ApiKey).
    ///
    /// A key decided without I/O (refused by its format or checksum, or found
    /// in the cache) goes straight to a response or to the inner service's
    /// future with no allocation; otherwise the store check runs as a boxed
    /// `Send` future first.
    ()
}
