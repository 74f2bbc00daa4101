//! Entry points for the cargo-fuzz targets in `fuzz/`, also replayed over the
//! seed corpus by `tests/fuzz_corpus.rs` on every `cargo test`. One function
//! per parser; each must never panic, whatever the bytes.
//!
//! Not part of the public API.

use crate::identifier::{Email, Phone};

/// `Phone::parse` on arbitrary input.
pub fn phone(data: &[u8]) {
    if let Ok(s) = std::str::from_utf8(data) {
        if let Ok(p) = Phone::parse(s) {
            // Normalising is idempotent.
            assert_eq!(Phone::parse(p.as_str()).ok().as_ref(), Some(&p));
        }
    }
}

/// `Email::parse` on arbitrary input.
pub fn email(data: &[u8]) {
    if let Ok(s) = std::str::from_utf8(data) {
        if let Ok(e) = Email::parse(s) {
            assert_eq!(Email::parse(e.as_str()).ok().as_ref(), Some(&e));
        }
    }
}
