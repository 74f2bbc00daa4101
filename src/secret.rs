//! The one check every signing or MAC secret passes at build time.
//!
//! A secret is refused when it is shorter than [`MIN_LEN`] bytes, when it
//! holds an obvious placeholder (`changeme`, `secret`, `password`,
//! `example`, `placeholder`, a leading `your-…`, `xxxxxx`, …), or when it has low
//! entropy: fewer than [`MIN_DISTINCT`] distinct bytes, a repeating period
//! (`abcabc…`), a run of [`MAX_RUN`] equal bytes, or a run of [`MAX_RUN`]
//! consecutive bytes (`01234567`, `abcdefgh`, `98765432`).
//!
//! The rules are chosen so that a random secret of 32 or more characters —
//! hex, base64, base64url, or raw bytes — is never refused in practice: a
//! false refusal (a placeholder word, fewer than 8 distinct digits or a run
//! of 8 by chance) has a probability of about 10⁻⁶ at most, and the tests
//! check thousands of random secrets of each kind.

use crate::error::ConfigError;

/// Shortest secret accepted, in bytes: an HMAC-SHA256 key shorter than the
/// hash output weakens it (RFC 7518 §3.2).
pub(crate) const MIN_LEN: usize = 32;

/// Fewest distinct byte values a secret must contain.
pub(crate) const MIN_DISTINCT: usize = 8;

/// A run of this many equal bytes, or of consecutive byte values, is refused.
/// Ten, not eight: eight equal characters turn up in about one random
/// 64-character hex secret in five million, and a test drawing 16 000 random
/// secrets per run met one (`…c78dddddddde…`); ten is 256 times rarer.
pub(crate) const MAX_RUN: usize = 10;

/// Words that mark a secret as a placeholder, anywhere in it, compared
/// case-insensitively. Each is long enough that a random secret meets one
/// with negligible probability (the shortest, six letters, about 10⁻⁸ in an
/// 86-character base64url secret); shorter markers are left to the run rules.
const PLACEHOLDERS: [&str; 12] = [
    "changeme",
    "change-me",
    "change_me",
    "secret",
    "password",
    "passwd",
    "example",
    "placeholder",
    "xxxxxx",
    "replace",
    "insecure",
    "default",
];

/// Placeholders that mark a secret only where they start it
/// (`your-jwt-key-here`): anywhere, five characters turn up in random
/// base64url text too often (`…IxyouR-U…`: about 2·10⁻⁶ per 86-character
/// secret, and a test of 14 000 random secrets met one).
const PLACEHOLDER_PREFIXES: [&str; 2] = ["your-", "your_"];

/// Refuses `secret` (for `setting`) unless it is at least [`MIN_LEN`] bytes
/// and passes [`check_quality`].
pub(crate) fn check(setting: &'static str, secret: &[u8]) -> Result<(), ConfigError> {
    if secret.len() < MIN_LEN {
        return Err(ConfigError::new(
            setting,
            format!(
                "must be at least {MIN_LEN} bytes, got {}; generate one with `openssl rand -hex 32`",
                secret.len()
            ),
        ));
    }
    check_quality(setting, secret)
}

/// Refuses `secret` (for `setting`) if it holds a placeholder or has low
/// entropy; the length is the caller's to check.
pub(crate) fn check_quality(setting: &'static str, secret: &[u8]) -> Result<(), ConfigError> {
    let refuse = |why: String| {
        Err(ConfigError::new(
            setting,
            format!("{why}; use a random value, e.g. from `openssl rand -hex 32`"),
        ))
    };
    let mut seen = [false; 256];
    for &b in secret {
        seen[usize::from(b)] = true;
    }
    let distinct = seen.iter().filter(|&&s| s).count();
    if distinct < MIN_DISTINCT {
        return refuse(format!(
            "has low entropy: only {distinct} distinct byte values (at least {MIN_DISTINCT} needed)"
        ));
    }
    // A period shorter than MIN_LEN means fewer than MIN_LEN bytes of
    // content, however long the secret; longer periods are not searched.
    let periods = 1..=(secret.len() / 2).min(MIN_LEN - 1);
    if let Some(period) = periods
        .into_iter()
        .find(|&p| secret[p..] == secret[..secret.len() - p])
    {
        return refuse(format!("has low entropy: it repeats every {period} bytes"));
    }
    for step in [0i16, 1, -1] {
        let mut run = 1;
        for pair in secret.windows(2) {
            if i16::from(pair[1]) - i16::from(pair[0]) == step {
                run += 1;
                if run >= MAX_RUN {
                    let what = if step == 0 { "equal" } else { "consecutive" };
                    return refuse(format!("has low entropy: a run of {MAX_RUN} {what} bytes"));
                }
            } else {
                run = 1;
            }
        }
    }
    let lower = secret.to_ascii_lowercase();
    if let Some(word) = PLACEHOLDERS
        .iter()
        .find(|w| lower.windows(w.len()).any(|win| win == w.as_bytes()))
        .or_else(|| {
            PLACEHOLDER_PREFIXES
                .iter()
                .find(|p| lower.starts_with(p.as_bytes()))
        })
    {
        return refuse(format!("contains the placeholder {word:?}"));
    }
    Ok(())
}

/// A secret that passes [`check`], for tests across the crate.
#[cfg(test)]
pub(crate) const TEST_SECRET: &str = "q7Vd2kLm9XwR4tBz6NcP1yHs8GfJ3aEu";

/// Another one, for a second key (rotation, a wrong key).
#[cfg(test)]
pub(crate) const TEST_SECRET_2: &str = "Zt5wK8pR2mX9vN4cQ7hB3jL6fD1sG0yA";

#[cfg(test)]
mod tests {
    use base64::Engine;
    use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};

    use super::*;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn random_secrets_always_pass() {
        for _ in 0..2_000 {
            let raw: [u8; 32] = rand::random();
            let long: [u8; 64] = rand::random();
            let half: [u8; 16] = rand::random();
            for s in [
                hex(&raw),
                hex(&long),
                hex(&half), // 32 hex characters: 32 bytes as text
                URL_SAFE_NO_PAD.encode(raw),
                URL_SAFE_NO_PAD.encode(long),
                STANDARD.encode(raw),
                hex(&raw).to_uppercase(),
            ] {
                assert!(check("s", s.as_bytes()).is_ok(), "{s}");
            }
            assert!(check("s", &raw).is_ok(), "{raw:?}");
            assert!(check("s", &long).is_ok(), "{long:?}");
        }
        // Met by this test in CI: `your-` inside random base64url text.
        let met = "hENLHv9HFFm0IFpIxyouR-U-4TLMyJMiekbBCgbF8s5nMSnH7FlljwMsYwD0gLZ94pCXZWEp1tqQHKfyqweKhg";
        assert!(check("s", met.as_bytes()).is_ok());
        assert!(check("s", TEST_SECRET.as_bytes()).is_ok());
        assert!(check("s", TEST_SECRET_2.as_bytes()).is_ok());
    }

    #[test]
    fn weak_secrets_are_refused_with_a_reason() {
        let weak: Vec<Vec<u8>> = vec![
            "x".repeat(32).into(),
            "x".repeat(31).into(),
            b"short".to_vec(),
            Vec::new(),
            [0u8; 32].to_vec(),
            [7u8; 64].to_vec(),
            "abc".repeat(11).into(),
            "k3j5h6g7".repeat(4).into(),
            "my-app-key-".repeat(3).into(),
            b"changeme-changeme-changeme-12345".to_vec(),
            b"CHANGEME_2025_0f3a9c7e1b5d8246af".to_vec(),
            b"an example secret of at least 32 bytes".to_vec(),
            b"a server secret of at least 32 bytes!".to_vec(),
            b"my super password for production!!".to_vec(),
            b"placeholder-0f3a9c7e1b5d8246af77".to_vec(),
            b"your-jwt-signing-key-goes-here-ok".to_vec(),
            b"0123456789012345678901234567890123".to_vec(),
            b"abcdefghijklmnopqrstuvwxyz012345".to_vec(),
            b"q7Vd2kLm9XwR4tBzaaaaaaaaaaaaaaaa".to_vec(),
            b"q7Vd2kLm9XwR4tBz6NcP1yHxxxxxxxxx".to_vec(),
            b"q7Vd2kLm98765432zyxwvutsrqJ3aEu0".to_vec(),
            b"default-key-q7Vd2kLm9XwR4tBz6NcP1y".to_vec(),
            b"insecure-q7Vd2kLm9XwR4tBz6NcP1yHs".to_vec(),
            b"replace-with-q7Vd2kLm9XwR4tBz6NcP".to_vec(),
            b"aaaabbbbccccddddaaaabbbbccccdddd".to_vec(),
            (0u8..32).collect(),
        ];
        for s in &weak {
            let err = check("jwt secret", s).unwrap_err();
            assert_eq!(err.setting, "jwt secret");
            assert!(!err.reason.is_empty());
            // The reason never echoes the secret.
            if s.len() >= 8 {
                assert!(
                    !err.reason.as_bytes().windows(s.len()).any(|w| w == &s[..]),
                    "{}",
                    err.reason
                );
            }
        }
    }

    #[test]
    fn each_rule_names_itself() {
        let reason = |s: &[u8]| check("s", s).unwrap_err().reason.into_owned();
        assert!(reason(b"short").contains("at least 32 bytes"));
        assert!(reason("x".repeat(32).as_bytes()).contains("1 distinct"));
        assert!(reason("k3j5h6g7".repeat(4).as_bytes()).contains("repeats every 8"));
        assert!(reason(b"q7Vd2kLm9XwR4tBzaaaaaaaaaaaaaaaa").contains("equal"));
        assert!(reason(b"q7Vd2kLm98765432zyxwvutsrqJ3aEu0").contains("consecutive"));
        assert!(reason(b"placeholder-0f3a9c7e1b5d8246af77").contains("\"placeholder\""));
        assert!(reason(b"Q7vD2-My-Secret-Key-9XwR4tBz6NcP").contains("\"secret\""));
    }

    #[test]
    fn quality_alone_does_not_check_the_length() {
        assert!(check_quality("s", b"q7Vd2kLm9XwR4tBz6NcP1y").is_ok());
        assert!(check_quality("s", b"xxxxxxxxxxxxxxxxxxxxxxxx").is_err());
    }
}
