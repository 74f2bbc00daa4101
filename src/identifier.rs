//! Phone numbers and email addresses: parsing, normalising, keyed hashing.
//!
//! A [`Phone`] is always E.164 (`+` and 7–15 digits, no leading zero);
//! separators people type (`+1 (415) 555-0100`) are accepted and dropped, and
//! so is a national trunk prefix `0` written after the country code
//! (`+44 (0)20 7946 0958`) where it is never part of the number (see
//! [`TRUNK_ZERO_CALLING_CODES`]). An [`Email`] is a plain `local@domain`
//! address in canonical lowercase form (ASCII only, no quoted local parts, no
//! IP-literal domains).
//!
//! Limits count per *mailbox*, not per typed address:
//! [`IdentifierHasher::limit_hash`] hashes [`Email::mailbox`], which drops
//! sub-address tags (`ada+news@`) and, for providers that ignore them, dots,
//! so aliases of one mailbox share one send budget. The address the user
//! typed is still the identity that logs in ([`IdentifierHasher::hash`]).
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
//! // The trunk prefix of a UK number is not part of it.
//! assert_eq!(Phone::parse("+44 (0)20 7946 0958").unwrap().as_str(), "+442079460958");
//!
//! let email = Email::parse(" Ada@Example.COM ").unwrap();
//! assert_eq!(email.as_str(), "ada@example.com");
//! let alias = Email::parse("A.da+news@googlemail.com").unwrap();
//! assert_eq!(alias.as_str(), "a.da+news@googlemail.com"); // what logs in
//! assert_eq!(alias.mailbox(), "ada@gmail.com"); // what limits count
//! ```

use std::borrow::Cow;
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

/// Calling codes whose numbers are dialled nationally with a trunk prefix
/// `0` that is never part of the international number, so
/// [`Phone::parse`] drops a `0` written right after them: `+44 (0)20 7946
/// 0958` and `+44 020 7946 0958` are both `+442079460958`, and cannot count
/// as a second identity of one number.
///
/// In each of these numbering plans no national significant number starts
/// with `0`, so the `0` can only be the trunk prefix; a second `0` after it
/// is refused. Countries where the `0` *is* part of the number are not here
/// — Italy (+39) and San Marino (+378), whose numbers keep it in E.164
/// (`+39 06 …`) — nor are countries without a trunk `0` (e.g. +1 NANP,
/// whose trunk prefix is `1`; +7, `8`), whose numbers are left as typed.
///
/// United Kingdom, Germany, France, Netherlands, Belgium, Switzerland,
/// Austria, Sweden, Finland, Ireland, Turkey, Israel, South Africa, India,
/// China, Japan, South Korea, Australia, New Zealand.
pub const TRUNK_ZERO_CALLING_CODES: [&str; 19] = [
    "44", "49", "33", "31", "32", "41", "43", "46", "358", "353", "90", "972", "27", "91", "86",
    "81", "82", "61", "64",
];

/// A phone number in E.164 form, e.g. `+14155550100`.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Phone(String);

impl Phone {
    /// Longest input accepted before normalising (separators included).
    pub const MAX_INPUT: usize = 32;

    /// Parses and normalises a phone number written with a leading `+`:
    /// separators (` -.()`) dropped, and for the countries in
    /// [`TRUNK_ZERO_CALLING_CODES`] a trunk prefix `0` after the country
    /// code dropped too.
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
        drop_trunk_zero(&mut out)?;
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

/// Drops the trunk `0` after a calling code of [`TRUNK_ZERO_CALLING_CODES`]
/// from `+<digits>`; refuses a second `0`, which no such number starts with
/// (and which would otherwise make parsing not idempotent).
fn drop_trunk_zero(number: &mut String) -> Result<(), IdentifierError> {
    let digits = &number[1..];
    // Calling codes are prefix-free: at most one matches.
    let Some(code) = TRUNK_ZERO_CALLING_CODES
        .iter()
        .find(|code| digits.starts_with(**code))
    else {
        return Ok(());
    };
    let at = 1 + code.len();
    if number.as_bytes().get(at) == Some(&b'0') {
        number.remove(at);
        if number.as_bytes().get(at) == Some(&b'0') {
            return Err(IdentifierError::InvalidPhone(
                "a number in this country cannot start with 0 after the trunk prefix",
            ));
        }
    }
    Ok(())
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

    /// The mailbox this address delivers to, which per-identifier limits
    /// count under ([`IdentifierHasher::limit_hash`]): the canonical address
    /// with
    ///
    /// * a sub-address tag dropped, for every domain: everything from the
    ///   first `+` of the local part (`ada+news@example.com` →
    ///   `ada@example.com`; a local part that *starts* with `+` is kept);
    /// * for providers that ignore dots in the local part — `gmail.com`
    ///   and `googlemail.com`, the latter counted as `gmail.com`, the only
    ///   ones that document both rules — every dot dropped
    ///   (`a.d.a@googlemail.com` → `ada@gmail.com`).
    ///
    /// Two addresses with one mailbox share one send budget; the address the
    /// user typed ([`as_str`](Self::as_str)) is still the identity that logs
    /// in. The list is deliberately short: a wrong entry would merge
    /// distinct people's budgets, a missing one only lets that provider's
    /// dot variants count separately.
    pub fn mailbox(&self) -> Cow<'_, str> {
        let Some((local, domain)) = self.0.rsplit_once('@') else {
            return Cow::Borrowed(&self.0);
        };
        let dotless = DOTLESS_PROVIDERS
            .iter()
            .find(|(d, _)| *d == domain)
            .map(|(_, counted_as)| *counted_as);
        let base = match local.split_once('+') {
            // `a.+tag`: the base would end in a dot, which no address does.
            Some((base, _)) if !base.is_empty() => base.trim_end_matches('.'),
            _ => local,
        };
        match dotless {
            None if base.len() == local.len() => Cow::Borrowed(&self.0),
            None => Cow::Owned(format!("{base}@{domain}")),
            Some(counted_as) => {
                let mut out = String::with_capacity(self.0.len());
                out.extend(base.chars().filter(|c| *c != '.'));
                out.push('@');
                out.push_str(counted_as);
                Cow::Owned(out)
            }
        }
    }
}

/// Domains whose mail provider ignores dots in the local part, and the
/// domain their mailboxes are counted under (see [`Email::mailbox`]).
const DOTLESS_PROVIDERS: [(&str, &str); 2] =
    [("gmail.com", "gmail.com"), ("googlemail.com", "gmail.com")];

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
#[non_exhaustive]
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
    /// one mailbox ([`Email::mailbox`]: sub-address tags, provider dot
    /// rules) map to one key, so they share one budget. A phone is already
    /// one number per subscriber once parsed (E.164, trunk prefix dropped),
    /// so its limit hash is its [`hash`](Self::hash); so is an address that
    /// is its own mailbox.
    pub fn limit_hash(&self, id: &Identifier) -> HashedId {
        match id {
            Identifier::Email(email) => self.hash_str(id.kind(), &email.mailbox()),
            Identifier::Phone(_) => self.hash(id),
        }
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

/// 16 bytes as their 22 unpadded base64url characters, on the stack (a
/// hashed identifier, a token id).
pub(crate) fn base64url_16(bytes: &[u8; 16]) -> [u8; 22] {
    let mut out = [0u8; 22];
    // 16 bytes are always 22 characters unpadded.
    let _ = URL_SAFE_NO_PAD.encode_slice(bytes, &mut out);
    out
}

/// base64url output as text (it is ASCII).
pub(crate) fn ascii(encoded: &[u8]) -> &str {
    std::str::from_utf8(encoded).unwrap_or_default()
}

impl HashedId {
    /// The hash in base64url, on the stack (store keys are built from it
    /// in one allocation of the exact size).
    pub(crate) fn encoded(&self) -> [u8; 22] {
        base64url_16(&self.0)
    }
}

impl fmt::Display for HashedId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(ascii(&self.encoded()))
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

    /// The stack encoding and the store key spell the hash exactly as the
    /// base64 engine's own `encode` does.
    #[test]
    fn hashed_id_text_is_base64url_of_its_bytes() {
        let h = IdentifierHasher::new(b"k");
        for value in ["", "a", "+14155550100", "ada@example.com"] {
            let id = h.hash_str("x", value);
            let expected = URL_SAFE_NO_PAD.encode(id.as_bytes());
            assert_eq!(id.to_string(), expected);
            assert_eq!(ascii(&id.encoded()), expected);
        }
    }

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
    fn trunk_zero_is_dropped_where_it_is_no_part_of_the_number() {
        let uk = "+442079460958";
        for typed in [
            "+44 20 7946 0958",
            "+44 (0)20 7946 0958",
            "+44 (0) 20 7946 0958",
            "+44 020 7946 0958",
            "+44 0 20 7946 0958",
            "+4402079460958",
        ] {
            assert_eq!(Phone::parse(typed).unwrap().as_str(), uk, "{typed}");
        }
        assert_eq!(
            Phone::parse("+49 (0)30 1234567").unwrap().as_str(),
            "+49301234567"
        );
        assert_eq!(
            Phone::parse("+61 (0)4 1234 5678").unwrap().as_str(),
            "+61412345678"
        );
        // Italy keeps its 0: it is part of the number.
        assert_eq!(
            Phone::parse("+39 06 1234 5678").unwrap().as_str(),
            "+390612345678"
        );
        assert_ne!(
            Phone::parse("+39 06 1234 5678").unwrap(),
            Phone::parse("+39 6 1234 5678").unwrap()
        );
        // Countries without a trunk 0 are left as typed.
        assert_eq!(
            Phone::parse("+1 415 555 0100").unwrap().as_str(),
            "+14155550100"
        );
        // A second 0 is no number of these countries.
        assert!(Phone::parse("+44 00 20 7946 0958").is_err());
        // Dropping the trunk 0 may leave too few digits.
        assert!(Phone::parse("+44 0 1234").is_err());
    }

    #[test]
    fn trunk_zero_codes_are_prefix_free_and_exclude_italy() {
        for (i, a) in TRUNK_ZERO_CALLING_CODES.iter().enumerate() {
            assert!(a.bytes().all(|b| b.is_ascii_digit()) && !a.starts_with('0'));
            for b in &TRUNK_ZERO_CALLING_CODES[i + 1..] {
                assert!(!a.starts_with(b) && !b.starts_with(a), "{a} / {b}");
            }
        }
        assert!(!TRUNK_ZERO_CALLING_CODES.contains(&"39"));
        assert!(!TRUNK_ZERO_CALLING_CODES.contains(&"378"));
    }

    #[test]
    fn mailboxes() {
        let mailbox = |s: &str| Email::parse(s).unwrap().mailbox().into_owned();
        assert_eq!(mailbox("ada@example.com"), "ada@example.com");
        assert_eq!(mailbox("Ada+1@Example.com"), "ada@example.com");
        assert_eq!(mailbox("ada+a+b@example.com"), "ada@example.com");
        assert_eq!(mailbox("a.da+x@example.com"), "a.da@example.com");
        assert_eq!(mailbox("ada.+x@example.com"), "ada@example.com");
        // Dots count outside the providers that ignore them.
        assert_ne!(mailbox("a.da@example.com"), mailbox("ada@example.com"));
        assert_eq!(mailbox("a.d.a@gmail.com"), "ada@gmail.com");
        assert_eq!(mailbox("A.d.A+promo@GoogleMail.com"), "ada@gmail.com");
        // Lookalike domains are not the provider.
        assert_eq!(mailbox("a.da@gmail.com.example"), "a.da@gmail.com.example");
        assert_eq!(mailbox("a.da@notgmail.com"), "a.da@notgmail.com");
        // A local part that starts with `+` has no tag to drop.
        assert_eq!(mailbox("+tag@example.com"), "+tag@example.com");
        // Borrowed when nothing changes.
        assert!(matches!(
            Email::parse("ada@example.com").unwrap().mailbox(),
            Cow::Borrowed(_)
        ));
        // The mailbox is itself a valid address that is its own mailbox.
        for s in ["a.+b@gmail.com", "x.y+z@googlemail.com", "q+@example.org"] {
            let m = mailbox(s);
            assert_eq!(Email::parse(&m).unwrap().mailbox(), m, "{s}");
        }
    }

    #[test]
    fn limit_hash_counts_per_mailbox_and_hash_per_typed_address() {
        let h = IdentifierHasher::new(b"k");
        let email = |s: &str| Identifier::Email(Email::parse(s).unwrap());
        let base = email("ada@gmail.com");
        for alias in [
            "ada+1@gmail.com",
            "ada+2@gmail.com",
            "a.da@gmail.com",
            "A.D.A+x@googlemail.com",
        ] {
            let alias = email(alias);
            assert_eq!(h.limit_hash(&alias), h.limit_hash(&base));
            assert_ne!(h.hash(&alias), h.hash(&base), "the typed address logs in");
        }
        assert_eq!(h.limit_hash(&base), h.hash(&base));
        assert_ne!(h.limit_hash(&email("bob@gmail.com")), h.limit_hash(&base));
        let phone = |s: &str| Identifier::Phone(Phone::parse(s).unwrap());
        assert_eq!(
            h.limit_hash(&phone("+44 (0)20 7946 0958")),
            h.limit_hash(&phone("+44 20 7946 0958"))
        );
        assert_eq!(
            h.hash(&phone("+44 020 7946 0958")),
            h.hash(&phone("+44 20 7946 0958"))
        );
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
