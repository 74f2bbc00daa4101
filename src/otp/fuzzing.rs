//! The cargo-fuzz entry point for the OTP request bodies (`fuzz/`, target
//! `request_body`), replayed over its seed corpus by this module's test.
//!
//! Not part of the public API: the module exists only when cargo-fuzz builds
//! the crate (`--cfg fuzzing`) and in the crate's own tests.

/// The OTP request bodies: JSON parsing into each body type, then identifier
/// parsing, exactly as the router does it.
pub fn request_body(data: &[u8]) {
    super::handlers::fuzz_request_body(data);
}

#[cfg(test)]
mod tests {
    #[test]
    fn request_body() {
        crate::fuzzing::replay_seeds("request_body", super::request_body);
    }
}
