//! Phone numbers and email addresses: parsing, normalising, keyed hashing.
//!
//! A [`Phone`] is always E.164 (`+` and 7–15 digits, no leading zero);
//! separators people type (`+1 (415) 555-0100`) are accepted and dropped. An
//! [`Email`] is a plain `local@domain` address in canonical lowercase form
//! (ASCII only, no quoted local parts, no IP-literal domains).
//!
//! Raw identifiers are personal data: store keys, events and logs use the
//! [`HashedId`] from an [`IdentifierHasher`] (HMAC-SHA256 under a server key),
//! and the `Debug` output of [`Phone`] and [`Email`] is masked.
//!
//! ```
//! use tower_otp::identifier::{Email, Phone};
//!
//! let phone = Phone::parse("+1 (415) 555-0100").unwrap();
//! assert_eq!(phone.as_str(), "+14155550100");
//! assert!(Phone::parse("4155550100").is_err()); // no country code
//!
//! let email = Email::parse(" Ada@Example.COM ").unwrap();
//! assert_eq!(email.as_str(), "ada@example.com");
//! ```

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::error::Problem;

/// Why an identifier was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum IdentifierError {
    /// Not an E.164 phone number; the reason says why.
    InvalidPhone(&'static str),
    /// Not a usable email address; the reason says why.
    InvalidEmail(&'static str),
}

impl fmt::Display for IdentifierError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidPhone(why) => write!(f, "invalid phone number: {why}"),
            Self::InvalidEmail(why) => write!(f, "invalid email address: {why}"),
        }
    }
}

impl std::error::Error for IdentifierError {}

impl From<IdentifierError> for Problem {
    fn from(err: IdentifierError) -> Self {
        let code = match err {
            IdentifierError::InvalidPhone(_) => "invalid_phone",
            IdentifierError::InvalidEmail(_) => "invalid_email",
        };
        Problem::new(http::StatusCode::BAD_REQUEST, code, err.to_string())
    }
}

/// A phone number in E.164 form, e.g. `+14155550100`.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Phone(String);

impl Phone {
    /// Longest input accepted before normalising (separators included).
    pub const MAX_INPUT: usize = 32;

    /// Parses and normalises a phone number written with a leading `+`.
    pub fn parse(input: &str) -> Result<Self, IdentifierError> {
        let input = input.trim();
        if input.len() > Self::MAX_INPUT {
            return Err(IdentifierError::InvalidPhone("too long"));
        }
        let rest = input
            .strip_prefix('+')
            .ok_or(IdentifierError::InvalidPhone(
                "must start with + and the country code",
            ))?;
        let mut out = String::with_capacity(16);
        out.push('+');
        if !rest.starts_with(|c: char| c.is_ascii_digit()) {
            return Err(IdentifierError::InvalidPhone(
                "the country code must follow +",
            ));
        }
        for c in rest.chars() {
            match c {
                '0'..='9' => out.push(c),
                ' ' | '-' | '.' | '(' | ')' => {}
                _ => {
                    return Err(IdentifierError::InvalidPhone(
                        "only digits and separators allowed",
                    ));
                }
            }
        }
        let digits = out.len() - 1;
        if !(7..=15).contains(&digits) {
            return Err(IdentifierError::InvalidPhone("must have 7 to 15 digits"));
        }
        if out.as_bytes()[1] == b'0' {
            return Err(IdentifierError::InvalidPhone(
                "country code cannot start with 0",
            ));
        }
        Ok(Self(out))
    }

    /// The E.164 string, `+` included.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The digits, without `+`.
    pub fn digits(&self) -> &str {
        &self.0[1..]
    }

    /// Whether the number starts with the calling code `code` (digits only,
    /// e.g. `"44"`). Calling codes are prefix-free, so this is exact.
    pub fn has_calling_code(&self, code: &str) -> bool {
        self.digits().starts_with(code.trim_start_matches('+'))
    }
}

impl fmt::Debug for Phone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = self.digits();
        write!(
            f,
            "Phone(+{}…{})",
            &d[..2.min(d.len())],
            &d[d.len().saturating_sub(2)..]
        )
    }
}

impl fmt::Display for Phone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An email address in canonical lowercase form.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Email(String);

impl Email {
    /// Longest address accepted (RFC 5321 path limit).
    pub const MAX_LEN: usize = 254;

    /// Parses and lowercases an address.
    pub fn parse(input: &str) -> Result<Self, IdentifierError> {
        let input = input.trim();
        if input.len() > Self::MAX_LEN {
            return Err(IdentifierError::InvalidEmail("too long"));
        }
        if !input.is_ascii() {
            return Err(IdentifierError::InvalidEmail(
                "only ASCII addresses are accepted",
            ));
        }
        let (local, domain) = input
            .rsplit_once('@')
            .ok_or(IdentifierError::InvalidEmail("missing @"))?;
        if local.is_empty() || local.len() > 64 {
            return Err(IdentifierError::InvalidEmail(
                "local part must have 1 to 64 characters",
            ));
        }
        let atext = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~".contains(c);
        if !local
            .split('.')
            .all(|part| !part.is_empty() && part.chars().all(atext))
        {
            return Err(IdentifierError::InvalidEmail("invalid local part"));
        }
        let labels: Vec<&str> = domain.split('.').collect();
        if labels.len() < 2 || domain.len() > 253 {
            return Err(IdentifierError::InvalidEmail(
                "domain must have at least two labels",
            ));
        }
        let label_ok = |l: &str| {
            (1..=63).contains(&l.len())
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        };
        if !labels.iter().all(|l| label_ok(l)) {
            return Err(IdentifierError::InvalidEmail("invalid domain"));
        }
        let tld = labels[labels.len() - 1];
        if tld.len() < 2 || tld.chars().all(|c| c.is_ascii_digit()) {
            return Err(IdentifierError::InvalidEmail("invalid top-level domain"));
        }
        Ok(Self(input.to_ascii_lowercase()))
    }

    /// The canonical address.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The domain part.
    pub fn domain(&self) -> &str {
        self.0.rsplit_once('@').map_or("", |(_, d)| d)
    }
}

impl fmt::Debug for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let first = self.0.chars().next().unwrap_or('?');
        write!(f, "Email({first}…@{})", self.domain())
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A verified-to-be-well-formed login identifier.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Identifier {
    /// A phone number.
    Phone(Phone),
    /// An email address.
    Email(Email),
}

impl Identifier {
    /// The normalised string (E.164 or lowercase email).
    pub fn as_str(&self) -> &str {
        match self {
            Self::Phone(p) => p.as_str(),
            Self::Email(e) => e.as_str(),
        }
    }

    /// `"phone"` or `"email"`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Phone(_) => "phone",
            Self::Email(_) => "email",
        }
    }

    /// The phone number, if this is one.
    pub fn phone(&self) -> Option<&Phone> {
        match self {
            Self::Phone(p) => Some(p),
            Self::Email(_) => None,
        }
    }
}

/// Keyed hashing of identifiers (HMAC-SHA256 under a server key).
#[derive(Clone)]
pub struct IdentifierHasher {
    mac: Hmac<Sha256>,
}

impl IdentifierHasher {
    /// A hasher keyed with `key` (any length; use ≥ 32 random bytes).
    pub fn new(key: &[u8]) -> Self {
        Self {
            mac: Hmac::new_from_slice(key).expect("HMAC accepts keys of any length"),
        }
    }

    /// The keyed hash of `id`, domain-separated by kind.
    pub fn hash(&self, id: &Identifier) -> HashedId {
        self.hash_str(id.kind(), id.as_str())
    }

    /// The keyed hash of the *mailbox* behind `id`, for limits: aliases of
    /// one mailbox or number map to one key, so they share one budget.
    //
    // SEAM (lead, issue 10): today the same as `hash`; the identifier work
    // makes it canonicalise (sub-address tags, provider dot rules).
    pub fn limit_hash(&self, id: &Identifier) -> HashedId {
        self.hash(id)
    }

    /// The keyed hash of an arbitrary labelled string (e.g. a number prefix).
    pub fn hash_str(&self, label: &str, value: &str) -> HashedId {
        let mut mac = self.mac.clone();
        mac.update(label.as_bytes());
        mac.update(b":");
        mac.update(value.as_bytes());
        let full = mac.finalize().into_bytes();
        let mut out = [0u8; 16];
        out.copy_from_slice(&full[..16]);
        HashedId(out)
    }
}

impl fmt::Debug for IdentifierHasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("IdentifierHasher { key: <redacted> }")
    }
}

/// A 128-bit keyed hash of an identifier; displays as 22 base64url chars.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct HashedId([u8; 16]);

impl HashedId {
    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }
}

impl fmt::Display for HashedId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&URL_SAFE_NO_PAD.encode(self.0))
    }
}

impl fmt::Debug for HashedId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HashedId({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phones_normalise() {
        for ok in [
            "+14155550100",
            " +1 415 555 0100 ",
            "+1 (415) 555-0100",
            "+44.20.7946.0958",
        ] {
            assert!(Phone::parse(ok).is_ok(), "{ok}");
        }
        assert_eq!(
            Phone::parse("+1 (415) 555-0100").unwrap().as_str(),
            "+14155550100"
        );
    }

    #[test]
    fn phones_refused() {
        for bad in [
            "",
            "+",
            "14155550100",
            "+0123456789",
            "+1415555010012345",
            "+123456",
            "+1 415 555 0100 ext 2",
            "+１４１５５５５０１００",
            "++14155550100",
            "+1415555010\u{0}",
            "+-14155550100",
        ] {
            assert!(Phone::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn calling_codes() {
        let p = Phone::parse("+447700900123").unwrap();
        assert!(p.has_calling_code("44"));
        assert!(p.has_calling_code("+44"));
        assert!(!p.has_calling_code("1"));
    }

    #[test]
    fn emails() {
        assert_eq!(
            Email::parse("A.B+tag@Sub.Example.org").unwrap().as_str(),
            "a.b+tag@sub.example.org"
        );
        for bad in [
            "",
            "@",
            "a@",
            "@b.example",
            "a@b",
            "a..b@c.example",
            ".a@c.example",
            "a@-c.example",
            "a@c.1",
            "a b@c.example",
            "\"q\"@c.example",
            "ä@c.example",
            "a@[127.0.0.1]",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?}");
        }
        assert!(Email::parse(&format!("{}@x.example", "a".repeat(65))).is_err());
    }

    #[test]
    fn debug_masks() {
        let p = Phone::parse("+14155550100").unwrap();
        let e = Email::parse("ada@example.com").unwrap();
        assert!(!format!("{p:?}").contains("4155550100"));
        assert!(!format!("{e:?}").contains("ada@"));
    }

    #[test]
    fn hashes_are_keyed_and_separated() {
        let a = IdentifierHasher::new(b"k1");
        let b = IdentifierHasher::new(b"k2");
        let id = Identifier::Email(Email::parse("a@b.example").unwrap());
        assert_ne!(a.hash(&id), b.hash(&id));
        assert_eq!(a.hash(&id), a.hash(&id));
        assert_ne!(a.hash_str("phone", "x"), a.hash_str("email", "x"));
        assert_eq!(a.hash(&id).to_string().len(), 22);
    }
}
