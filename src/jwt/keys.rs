//! HS256 keys with `kid`, for signing and for verification during rotation.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::error::ConfigError;

/// Shortest secret accepted: HS256 keys shorter than the hash output are
/// refused at start-up (RFC 7518 §3.2).
pub const MIN_SECRET_LEN: usize = crate::secret::MIN_LEN;

/// One HS256 key: its `kid`, a pre-keyed HMAC, and the encoded JOSE header
/// tokens signed with it carry (so verifying our own tokens skips header JSON).
#[derive(Clone)]
pub(crate) struct Key {
    pub(crate) kid: String,
    pub(crate) mac: Hmac<Sha256>,
    pub(crate) encoded_header: String,
}

impl Key {
    fn new(kid: String, secret: &[u8]) -> Result<Self, ConfigError> {
        crate::secret::check("jwt secret", secret)?;
        if kid.is_empty()
            || kid.len() > 64
            || !kid
                .bytes()
                .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\')
        {
            return Err(ConfigError::new(
                "jwt kid",
                "must be 1-64 printable ASCII characters, no quotes",
            ));
        }
        let header = format!(r#"{{"alg":"HS256","typ":"JWT","kid":"{kid}"}}"#);
        Ok(Self {
            mac: Hmac::new_from_slice(secret)
                .map_err(|_| ConfigError::new("jwt secret", "unusable key"))?,
            encoded_header: URL_SAFE_NO_PAD.encode(header),
            kid,
        })
    }
}

/// The keys tokens are signed and verified with.
///
/// New tokens are signed with the *signing* key and carry its `kid`; tokens
/// are verified with whichever configured key their `kid` names, so a secret
/// can rotate: add the new key as signing key, keep the old one as a
/// verification key until the last token signed with it has expired. A `kid`
/// that is not configured is refused without any lookup or I/O.
///
/// ```
/// use tower_otp::jwt::JwtKeys;
///
/// // In production, read the secrets from configuration (e.g. hex from
/// // `openssl rand -hex 32`); random ones keep this example self-contained.
/// let keys = JwtKeys::new("2025-06", rand::random::<[u8; 32]>())?
///     .with_verification_key("2025-01", rand::random::<[u8; 32]>())?;
/// assert_eq!(keys.signing_kid(), "2025-06");
/// assert!(JwtKeys::new("k", b"too short").is_err());
/// assert!(JwtKeys::new("k", "x".repeat(32)).is_err());
/// assert!(JwtKeys::new("k", "changeme-changeme-changeme-changeme").is_err());
/// # Ok::<(), tower_otp::error::ConfigError>(())
/// ```
#[derive(Clone)]
pub struct JwtKeys {
    signing: Key,
    verifying: Vec<Key>,
}

impl JwtKeys {
    /// Signs (and verifies) with `secret` under `kid`. Secrets shorter than
    /// 32 bytes, of low entropy (few distinct bytes, a short repeating
    /// pattern, a long run) or holding a placeholder (`changeme`, `secret`,
    /// `example`, …) are refused; any random 32-byte value passes.
    pub fn new(kid: impl Into<String>, secret: impl AsRef<[u8]>) -> Result<Self, ConfigError> {
        let signing = Key::new(kid.into(), secret.as_ref())?;
        Ok(Self {
            verifying: vec![signing.clone()],
            signing,
        })
    }

    /// Also accepts tokens signed with `secret` under `kid` (rotation).
    pub fn with_verification_key(
        mut self,
        kid: impl Into<String>,
        secret: impl AsRef<[u8]>,
    ) -> Result<Self, ConfigError> {
        let key = Key::new(kid.into(), secret.as_ref())?;
        if self.verifying.iter().any(|k| k.kid == key.kid) {
            return Err(ConfigError::new(
                "jwt kid",
                format!("duplicate kid {:?}", key.kid),
            ));
        }
        self.verifying.push(key);
        Ok(self)
    }

    /// The `kid` new tokens carry.
    pub fn signing_kid(&self) -> &str {
        &self.signing.kid
    }

    pub(crate) fn signing(&self) -> &Key {
        &self.signing
    }

    pub(crate) fn by_kid(&self, kid: &str) -> Option<&Key> {
        self.verifying.iter().find(|k| k.kid == kid)
    }

    pub(crate) fn by_encoded_header(&self, header: &str) -> Option<&Key> {
        self.verifying.iter().find(|k| k.encoded_header == header)
    }
}

impl fmt::Debug for JwtKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kids: Vec<&str> = self.verifying.iter().map(|k| k.kid.as_str()).collect();
        f.debug_struct("JwtKeys")
            .field("signing_kid", &self.signing.kid)
            .field("kids", &kids)
            .field("secrets", &"<redacted>")
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::{TEST_SECRET, TEST_SECRET_2};

    #[test]
    fn refuses_short_secrets_and_bad_kids() {
        assert!(JwtKeys::new("k", &TEST_SECRET[..31]).is_err());
        assert!(JwtKeys::new("", TEST_SECRET).is_err());
        assert!(JwtKeys::new("a\"b", TEST_SECRET).is_err());
        assert!(
            JwtKeys::new("k", TEST_SECRET)
                .unwrap()
                .with_verification_key("k", TEST_SECRET_2)
                .is_err()
        );
    }

    #[test]
    fn refuses_weak_secrets_for_signing_and_verification() {
        for weak in [
            "x".repeat(32),
            "ab".repeat(20),
            "an example secret of at least 32 bytes".to_owned(),
            "changeme-0f3a9c7e1b5d8246af77c1d2".to_owned(),
        ] {
            let err = JwtKeys::new("k", &weak).unwrap_err();
            assert_eq!(err.setting, "jwt secret");
            assert!(
                JwtKeys::new("k", TEST_SECRET)
                    .unwrap()
                    .with_verification_key("old", &weak)
                    .is_err()
            );
        }
        assert!(JwtKeys::new("k", [0u8; 32]).is_err());
    }

    #[test]
    fn debug_redacts() {
        let keys = JwtKeys::new("k1", TEST_SECRET).unwrap();
        let dbg = format!("{keys:?}");
        assert!(dbg.contains("k1") && dbg.contains("redacted") && !dbg.contains(&TEST_SECRET[..8]));
    }
}
