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

/// `api_key::format::parse` on arbitrary input; keys assembled from the input
/// round-trip, and any one-byte change to them is refused.
pub fn api_key(data: &[u8]) {
    use crate::api_key::KeyPrefix;
    use crate::api_key::format::{self, BASE62, CHECKSUM_LEN, SECRET_LEN};

    if let Ok(s) = std::str::from_utf8(data)
        && let Ok(k) = format::parse(s)
    {
        // A parsed key is exactly its parts plus the checksum.
        assert!(KeyPrefix::new(k.prefix()).is_ok());
        let body = format!("{}_{}_{}", k.prefix(), k.id(), k.secret());
        assert_eq!(s.len(), body.len() + CHECKSUM_LEN);
        assert!(s.starts_with(&body));
    }

    // Assemble a key from the bytes: 10 for the id, 43 for the secret, the
    // rest (when a valid prefix) for the prefix.
    let (Some(id_raw), Some(secret_raw)) = (data.get(..10), data.get(10..10 + SECRET_LEN)) else {
        return;
    };
    let mut raw = [0u8; 10];
    raw.copy_from_slice(id_raw);
    let id = format::base32_80(&raw);
    let secret: String = secret_raw
        .iter()
        .map(|&b| char::from(BASE62[usize::from(b % 62)]))
        .collect();
    let rest = std::str::from_utf8(&data[10 + SECRET_LEN..]).unwrap_or("");
    let Ok(prefix) = KeyPrefix::new(rest).or_else(|_| KeyPrefix::new("tok")) else {
        return;
    };
    let key = format::assemble(&prefix, &id, &secret);
    let parsed = format::parse(key.as_str());
    assert!(
        parsed.is_ok_and(|p| p.prefix() == prefix.as_str() && p.id() == id && p.secret() == secret),
        "assembled key did not round-trip"
    );
    // One byte changed anywhere (chosen by the input) is always refused.
    let mut bytes = key.as_str().as_bytes().to_vec();
    let at = usize::from(data[0]) * 7 % bytes.len();
    let to = data[1];
    if bytes[at] != to {
        bytes[at] = to;
        if let Ok(changed) = std::str::from_utf8(&bytes) {
            assert!(format::parse(changed).is_err(), "one-byte change accepted");
        }
    }
}
