//! Entry points for the cargo-fuzz targets in `fuzz/`, also replayed over the
//! seed corpus by `tests/fuzz_corpus.rs` on every `cargo test`. One function
//! per parser; each must never panic, whatever the bytes.
//!
//! Not part of the public API.

use crate::identifier::{Email, Phone};

/// `Phone::parse` on arbitrary input.
pub fn phone(data: &[u8]) {
    if let Ok(s) = std::str::from_utf8(data)
        && let Ok(p) = Phone::parse(s)
    {
        // Normalising is idempotent.
        assert_eq!(Phone::parse(p.as_str()).ok().as_ref(), Some(&p));
    }
}

/// `Email::parse` on arbitrary input.
pub fn email(data: &[u8]) {
    if let Ok(s) = std::str::from_utf8(data)
        && let Ok(e) = Email::parse(s)
    {
        assert_eq!(Email::parse(e.as_str()).ok().as_ref(), Some(&e));
    }
}

/// `jwt::decode` and `bearer_token` on arbitrary input: never panics, and
/// never accepts a token it did not sign.
pub fn jwt_decode(data: &[u8]) {
    use std::time::{Duration, UNIX_EPOCH};

    use crate::jwt::{JwtKeys, Validation, bearer_token, decode};

    let Ok(keys) = JwtKeys::new("fuzz", [0x5a; 32]) else {
        return;
    };
    let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    if let Ok(s) = std::str::from_utf8(data) {
        let verified = decode::<serde_json::Value>(&keys, &Validation::default(), s, now);
        assert!(verified.is_err() || s.split('.').count() == 3);
    }
    if let Ok(value) = http::HeaderValue::from_bytes(data) {
        let _ = bearer_token(&value);
    }
}

/// The OTP request bodies: JSON parsing into each body type, then identifier
/// parsing, exactly as the router does it.
pub fn request_body(data: &[u8]) {
    crate::otp::fuzz_request_body(data);
}
