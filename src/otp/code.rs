//! One-time codes: generation, MAC under the server pepper, format check.

use hmac::{Hmac, Mac};
use rand::Rng;
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::identifier::HashedId;

/// Code lengths always accepted by configuration: 6 to 10 digits (NIST SP
/// 800-63B-4, ASVS 5.0 6.5.4).
pub const CODE_LENGTHS: std::ops::RangeInclusive<u8> = 6..=10;

/// Code lengths accepted only behind the explicit weak-code opt-in
/// ([`allow_weak_codes`](super::OtpRouterBuilder::allow_weak_codes)): 4 and
/// 5 digits, 10 000 and 100 000 codes.
pub const WEAK_CODE_LENGTHS: std::ops::RangeInclusive<u8> = 4..=5;

/// A code of `len` decimal digits from the thread-local CSPRNG. Each digit is
/// drawn uniformly (rejection sampling inside `random_range`, no modulo bias).
pub(crate) fn generate(len: u8) -> String {
    let mut rng = rand::rng();
    (0..len)
        .map(|_| char::from(b'0' + rng.random_range(0..10u8)))
        .collect()
}

/// Whether `code` has the configured shape: exactly `len` ASCII digits.
pub(crate) fn well_formed(code: &str, len: u8) -> bool {
    code.len() == usize::from(len) && code.bytes().all(|b| b.is_ascii_digit())
}

/// HMAC-SHA256(pepper, hashed identifier ‖ code): what the store keeps. Binding
/// the identifier means a code can only ever verify for the identifier it was
/// sent to.
pub(crate) fn mac(pepper: &Hmac<Sha256>, id: &HashedId, code: &str) -> [u8; 32] {
    let mut mac = pepper.clone();
    mac.update(id.as_bytes());
    mac.update(b":");
    mac.update(code.as_bytes());
    mac.finalize().into_bytes().into()
}

/// Constant-time equality of two MACs.
pub(crate) fn mac_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.ct_eq(b).into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identifier::{Email, Identifier, IdentifierHasher};

    #[test]
    fn codes_have_the_length_and_digits() {
        for len in WEAK_CODE_LENGTHS.chain(CODE_LENGTHS) {
            let c = generate(len);
            assert!(well_formed(&c, len), "{c}");
        }
    }

    #[test]
    fn digits_are_roughly_uniform() {
        let mut counts = [0u32; 10];
        for _ in 0..2000 {
            for b in generate(10).bytes() {
                counts[usize::from(b - b'0')] += 1;
            }
        }
        // 20 000 digits, 2 000 expected each; 5 sigma is ~212.
        for (digit, n) in counts.iter().enumerate() {
            assert!((1700..2300).contains(n), "digit {digit}: {n}");
        }
    }

    #[test]
    fn shape_check() {
        assert!(well_formed("123456", 6));
        for bad in ["12345", "1234567", "12345a", "١٢٣٤٥٦", "12 456", "+12345"] {
            assert!(!well_formed(bad, 6), "{bad}");
        }
    }

    #[test]
    fn mac_binds_identifier() {
        let pepper = Hmac::<Sha256>::new_from_slice(b"pepper").unwrap();
        let h = IdentifierHasher::new(b"k");
        let a = h.hash(&Identifier::Email(Email::parse("a@b.example").unwrap()));
        let b = h.hash(&Identifier::Email(Email::parse("c@b.example").unwrap()));
        assert!(mac_eq(
            &mac(&pepper, &a, "123456"),
            &mac(&pepper, &a, "123456")
        ));
        assert!(!mac_eq(
            &mac(&pepper, &a, "123456"),
            &mac(&pepper, &b, "123456")
        ));
        assert!(!mac_eq(
            &mac(&pepper, &a, "123456"),
            &mac(&pepper, &a, "123457")
        ));
    }
}
