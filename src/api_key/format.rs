//! The key format `<prefix>_<id>_<secret><checksum>`: its parser and
//! generator. The format and its checksum are described for users in the
//! docs of [`ApiKeys`](super::ApiKeys) (*Key format*); the parser is fuzzed
//! (`fuzz/`, target `api_key`).

use std::fmt;

use rand::Rng;
use rand::distr::Alphanumeric;

use crate::error::ConfigError;

/// Length of the id part.
pub(crate) const ID_LEN: usize = 16;
/// Length of the secret part.
pub(crate) const SECRET_LEN: usize = 43;
/// Length of the checksum part.
pub(crate) const CHECKSUM_LEN: usize = 6;
/// Longest prefix allowed.
pub(crate) const MAX_PREFIX_LEN: usize = 32;
/// Longest possible key; longer input is refused before any other work.
pub(crate) const MAX_KEY_LEN: usize = MAX_PREFIX_LEN + 1 + ID_LEN + 1 + SECRET_LEN + CHECKSUM_LEN;

const BASE32: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
pub(crate) const BASE62: &[u8; 62] =
    b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// Why a string is not a well-formed key. Every variant means "refuse, no
/// store lookup".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FormatError {
    /// Longer than any key can be (99 characters: a 32-character prefix
    /// and the fixed-length rest).
    TooLong,
    /// Not `<prefix>_<id>_<secret+checksum>`, or a part has the wrong length.
    Shape,
    /// The prefix is not lowercase segments joined by single `_`.
    Prefix,
    /// The id is not 16 base32 characters.
    Id,
    /// The secret or checksum is not base62.
    Secret,
    /// The checksum does not match: a typo, or not a key at all.
    Checksum,
}

impl FormatError {
    /// A short machine-readable reason, for events.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::TooLong => "too_long",
            Self::Shape => "malformed",
            Self::Prefix => "malformed_prefix",
            Self::Id => "malformed_id",
            Self::Secret => "malformed_secret",
            Self::Checksum => "checksum",
        }
    }
}

impl fmt::Display for FormatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::TooLong => "API key too long",
            Self::Shape => "not shaped like an API key",
            Self::Prefix => "malformed API key prefix",
            Self::Id => "malformed API key id",
            Self::Secret => "malformed API key secret",
            Self::Checksum => "API key checksum mismatch",
        })
    }
}

impl std::error::Error for FormatError {}

/// A validated key prefix: one or more segments of lowercase letters and
/// digits joined by single `_`, starting with a letter, at most 32
/// characters (`tok`, `sk_live`, `acme2_test`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct KeyPrefix(Box<str>);

impl KeyPrefix {
    /// Validates `prefix`.
    ///
    /// ```
    /// use tower_otp::api_key::KeyPrefix;
    ///
    /// assert!(KeyPrefix::new("sk_live").is_ok());
    /// assert!(KeyPrefix::new("Sk").is_err());
    /// assert!(KeyPrefix::new("sk__live").is_err());
    /// ```
    pub fn new(prefix: &str) -> Result<Self, ConfigError> {
        if valid_prefix(prefix) {
            Ok(Self(prefix.into()))
        } else {
            Err(ConfigError::new(
                "api key prefix",
                "must be 1-32 characters: segments of a-z and 0-9 joined by single '_', \
                 starting with a letter",
            ))
        }
    }

    /// The prefix text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for KeyPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn valid_prefix(p: &str) -> bool {
    let b = p.as_bytes();
    !b.is_empty()
        && b.len() <= MAX_PREFIX_LEN
        && b[0].is_ascii_lowercase()
        && b.split(|&c| c == b'_').all(|seg| {
            !seg.is_empty()
                && seg
                    .iter()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        })
}

/// A well-formed key, borrowed from the presented string. `Debug` redacts the
/// secret.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct ParsedKey<'a> {
    prefix: &'a str,
    id: &'a str,
    secret: &'a str,
}

impl<'a> ParsedKey<'a> {
    /// The prefix.
    pub(crate) fn prefix(&self) -> &'a str {
        self.prefix
    }

    /// The key id (not secret: it names the store record).
    pub(crate) fn id(&self) -> &'a str {
        self.id
    }

    /// The secret part (without the checksum).
    pub(crate) fn secret(&self) -> &'a str {
        self.secret
    }
}

impl fmt::Debug for ParsedKey<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ParsedKey")
            .field("prefix", &self.prefix)
            .field("id", &self.id)
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// Parses `key` and checks its checksum. Never panics; does no I/O.
pub(crate) fn parse(key: &str) -> Result<ParsedKey<'_>, FormatError> {
    if key.len() > MAX_KEY_LEN {
        return Err(FormatError::TooLong);
    }
    let (head, tail) = key.rsplit_once('_').ok_or(FormatError::Shape)?;
    let (prefix, id) = head.rsplit_once('_').ok_or(FormatError::Shape)?;
    if id.len() != ID_LEN || tail.len() != SECRET_LEN + CHECKSUM_LEN {
        return Err(FormatError::Shape);
    }
    if !valid_prefix(prefix) {
        return Err(FormatError::Prefix);
    }
    if !valid_id(id) {
        return Err(FormatError::Id);
    }
    if !tail.bytes().all(|c| c.is_ascii_alphanumeric()) {
        return Err(FormatError::Secret);
    }
    // All ASCII from here on, so byte offsets are char boundaries.
    let (secret, checksum) = tail.split_at(SECRET_LEN);
    let body = &key[..key.len() - CHECKSUM_LEN];
    if checksum.as_bytes() != checksum_digits(body.as_bytes()) {
        return Err(FormatError::Checksum);
    }
    Ok(ParsedKey { prefix, id, secret })
}

/// Whether `id` is shaped like a key id (16 base32 characters).
pub(crate) fn valid_id(id: &str) -> bool {
    id.len() == ID_LEN && id.bytes().all(|c| matches!(c, b'a'..=b'z' | b'2'..=b'7'))
}

/// A freshly generated key's plaintext. `Debug` redacts it.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct KeyText(String);

impl KeyText {
    /// The full key, to hand to the client once.
    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }

    /// The key id.
    pub(crate) fn id(&self) -> &str {
        let start = self.0.len() - CHECKSUM_LEN - SECRET_LEN - 1 - ID_LEN;
        &self.0[start..start + ID_LEN]
    }

    /// The secret part (without the checksum).
    pub(crate) fn secret(&self) -> &str {
        let end = self.0.len() - CHECKSUM_LEN;
        &self.0[end - SECRET_LEN..end]
    }
}

impl fmt::Debug for KeyText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let id_start = self.0.len() - CHECKSUM_LEN - SECRET_LEN - 1 - ID_LEN;
        let prefix = self.0.get(..id_start.saturating_sub(1)).unwrap_or("");
        write!(f, "KeyText({prefix}_{}_<redacted>)", self.id())
    }
}

/// A new key with a random id and secret.
pub(crate) fn generate(prefix: &KeyPrefix) -> KeyText {
    let mut raw = [0u8; 10];
    rand::rng().fill(&mut raw);
    let id = base32_80(&raw);
    with_id(prefix, &id)
}

/// A new random secret for the existing key id `id` (rotation).
pub(crate) fn with_id(prefix: &KeyPrefix, id: &str) -> KeyText {
    let secret: String = rand::rng()
        .sample_iter(Alphanumeric)
        .take(SECRET_LEN)
        .map(char::from)
        .collect();
    assemble(prefix, id, &secret)
}

/// `<prefix>_<id>_<secret><checksum>`. The caller supplies a well-formed
/// id and secret (only the fuzz entry point passes anything but random ones).
pub(crate) fn assemble(prefix: &KeyPrefix, id: &str, secret: &str) -> KeyText {
    let mut key =
        String::with_capacity(prefix.as_str().len() + 2 + ID_LEN + SECRET_LEN + CHECKSUM_LEN);
    key.push_str(prefix.as_str());
    key.push('_');
    key.push_str(id);
    key.push('_');
    key.push_str(secret);
    let digits = checksum_digits(key.as_bytes());
    key.extend(digits.iter().map(|&d| char::from(d)));
    KeyText(key)
}

/// 10 bytes as 16 base32 characters.
pub(crate) fn base32_80(raw: &[u8; 10]) -> String {
    let mut n = raw.iter().fold(0u128, |acc, &b| (acc << 8) | u128::from(b));
    let mut out = [0u8; ID_LEN];
    for slot in out.iter_mut().rev() {
        *slot = BASE32[(n & 31) as usize];
        n >>= 5;
    }
    out.iter().map(|&c| char::from(c)).collect()
}

/// The CRC-32 of `body` as 6 base62 digits, most significant first.
fn checksum_digits(body: &[u8]) -> [u8; CHECKSUM_LEN] {
    let mut n = crc32(body);
    let mut out = [b'0'; CHECKSUM_LEN];
    for slot in out.iter_mut().rev() {
        *slot = BASE62[(n % 62) as usize];
        n /= 62;
    }
    out
}

// A `static`, not a `const`: a const array indexed at run time may be
// materialised on the stack at every use.
static CRC_TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 == 1 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
            k += 1;
        }
        table[i] = c;
        i += 1;
    }
    table
};

/// CRC-32 (IEEE 802.3, reflected, as in zlib and PNG).
fn crc32(data: &[u8]) -> u32 {
    !data.iter().fold(!0u32, |c, &b| {
        CRC_TABLE[((c ^ u32::from(b)) & 0xFF) as usize] ^ (c >> 8)
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn prefix(p: &str) -> KeyPrefix {
        KeyPrefix::new(p).unwrap()
    }

    #[test]
    fn longest_key_is_99_characters() {
        // `FormatError::TooLong` states the figure.
        assert_eq!(MAX_KEY_LEN, 99);
        let longest = generate(&prefix(&"a".repeat(MAX_PREFIX_LEN)));
        assert_eq!(longest.as_str().len(), MAX_KEY_LEN);
        assert!(parse(longest.as_str()).is_ok());
    }

    #[test]
    fn crc32_known_vector() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
    }

    /// A key whose checksum was computed independently (Python's
    /// `zlib.crc32` + base62), so the format is not only self-consistent.
    #[test]
    fn independent_test_vector() {
        let key = "tok_oggibgq2wqsvmann_tJzMdEhLUjJjZiA977yD0x8dX3tKtogprl097BGzEIc0XK28U";
        let parsed = parse(key).unwrap();
        assert_eq!(parsed.id(), "oggibgq2wqsvmann");
        assert_eq!(
            parsed.secret(),
            "tJzMdEhLUjJjZiA977yD0x8dX3tKtogprl097BGzEIc"
        );
        assert_eq!(&key[key.len() - CHECKSUM_LEN..], "0XK28U");
    }

    #[test]
    fn round_trip_for_many_prefixes() {
        for p in ["tok", "sk_live", "a", "acme2_test_v1", "k0"] {
            let key = generate(&prefix(p));
            assert_eq!(
                key.as_str().len(),
                p.len() + 2 + ID_LEN + SECRET_LEN + CHECKSUM_LEN
            );
            let parsed = parse(key.as_str()).unwrap();
            assert_eq!(parsed.prefix(), p);
            assert_eq!(parsed.id(), key.id());
            assert_eq!(parsed.secret(), key.secret());
        }
    }

    #[test]
    fn ids_and_secrets_differ_between_keys() {
        let p = prefix("tok");
        let a = generate(&p);
        let b = generate(&p);
        assert_ne!(a.id(), b.id());
        assert_ne!(a.secret(), b.secret());
        let c = with_id(&p, a.id());
        assert_eq!(c.id(), a.id());
        assert_ne!(c.secret(), a.secret());
        assert!(parse(c.as_str()).is_ok());
    }

    #[test]
    fn prefix_rules() {
        for bad in [
            "",
            "Tok",
            "1tok",
            "_tok",
            "tok_",
            "sk__live",
            "to-k",
            "tök",
            &"a".repeat(33),
        ] {
            assert!(KeyPrefix::new(bad).is_err(), "{bad:?} accepted");
        }
        for good in ["t", "tok", "sk_live", "a1_b2_c3", &"a".repeat(32)] {
            assert!(KeyPrefix::new(good).is_ok(), "{good:?} refused");
        }
    }

    /// Every single-character substitution, adjacent swap, deletion and
    /// insertion of several keys is refused by the format or checksum.
    #[test]
    fn checksum_refuses_every_one_char_typo() {
        let alphabet: Vec<char> = BASE62
            .iter()
            .chain(b"_-.".iter())
            .map(|&c| char::from(c))
            .collect();
        let (mut tried, mut by_checksum) = (0u32, 0u32);
        for p in ["tok", "sk_live"] {
            for _ in 0..4 {
                let key = generate(&prefix(p));
                let chars: Vec<char> = key.as_str().chars().collect();
                for i in 0..chars.len() {
                    for &c in &alphabet {
                        if c == chars[i] {
                            continue;
                        }
                        let mut m = chars.clone();
                        m[i] = c;
                        let s: String = m.into_iter().collect();
                        match parse(&s) {
                            Ok(_) => panic!("substitution accepted: {s}"),
                            Err(FormatError::Checksum) => by_checksum += 1,
                            Err(_) => {}
                        }
                        tried += 1;
                    }
                    if i + 1 < chars.len() && chars[i] != chars[i + 1] {
                        let mut m = chars.clone();
                        m.swap(i, i + 1);
                        let s: String = m.into_iter().collect();
                        assert!(parse(&s).is_err(), "swap accepted: {s}");
                        tried += 1;
                    }
                    let mut m = chars.clone();
                    m.remove(i);
                    let s: String = m.iter().collect();
                    assert!(parse(&s).is_err(), "deletion accepted: {s}");
                    m.insert(i, 'x');
                    m.insert(i, 'x');
                    let s: String = m.iter().collect();
                    assert!(parse(&s).is_err(), "insertion accepted: {s}");
                    tried += 2;
                }
            }
        }
        assert!(tried > 30_000, "only {tried} mutations tried");
        // Most substitutions keep the shape: only the checksum catches them.
        assert!(
            by_checksum > 20_000,
            "only {by_checksum} refused by the checksum"
        );
    }

    #[test]
    fn refusal_reasons() {
        let key = generate(&prefix("tok"));
        let k = key.as_str();
        assert_eq!(parse(""), Err(FormatError::Shape));
        assert_eq!(
            parse(&"a".repeat(MAX_KEY_LEN + 1)),
            Err(FormatError::TooLong)
        );
        assert_eq!(parse("tok_abc_def"), Err(FormatError::Shape));
        assert_eq!(
            parse(&k.replacen("tok", "TOK", 1)),
            Err(FormatError::Prefix)
        );
        let id_upper = format!("tok_{}{}", key.id().to_uppercase(), &k[4 + ID_LEN..]);
        assert_eq!(parse(&id_upper), Err(FormatError::Id));
        let bad_secret = format!("{}!{}", &k[..k.len() - 10], &k[k.len() - 9..]);
        assert_eq!(parse(&bad_secret), Err(FormatError::Secret));
        let last = k.as_bytes()[k.len() - 1];
        let other = if last == b'0' { '1' } else { '0' };
        assert_eq!(
            parse(&format!("{}{other}", &k[..k.len() - 1])),
            Err(FormatError::Checksum)
        );
    }

    #[test]
    fn parse_never_panics_on_odd_input() {
        for s in [
            "_",
            "__",
            "___",
            "é_é_é",
            "tok__",
            "_tok_aaaaaaaaaaaaaaaa_",
            "\u{0}_\u{0}_\u{0}",
        ] {
            assert!(parse(s).is_err());
        }
        // Multi-byte characters right where the secret/checksum split falls.
        let key = generate(&prefix("tok"));
        let k = key.as_str();
        let split = k.len() - CHECKSUM_LEN;
        let weird = format!("{}é{}", &k[..split - 1], &k[split + 1..]);
        assert!(parse(&weird).is_err());
    }

    #[test]
    fn debug_redacts_secret() {
        let key = generate(&prefix("tok"));
        let parsed = parse(key.as_str()).unwrap();
        for shown in [format!("{key:?}"), format!("{parsed:?}")] {
            assert!(!shown.contains(key.secret()), "{shown}");
            assert!(shown.contains(key.id()), "{shown}");
        }
    }
}
