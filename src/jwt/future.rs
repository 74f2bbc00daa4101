//! The response future of [`Jwt`](super::Jwt).

response_future! {
    /// Response future of [`Jwt`](super::Jwt): an immediate refusal, the
    /// inner service's future, or (with a revocation check) a boxed future
    /// that awaits the store first.
    ()
}
