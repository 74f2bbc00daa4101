//! [`JwtKeys`]: the key set tokens are signed and verified with, and its
//! rotation (publish before signing, keep after retiring).

use std::fmt;

use bytes::Bytes;

use super::key::{Algorithm, Key, PublicKey, SigningKey};
use crate::error::ConfigError;

/// Shortest secret accepted: HS256 keys shorter than the hash output are
/// refused at start-up (RFC 7518 §3.2).
pub const MIN_SECRET_LEN: usize = crate::secret::MIN_LEN;

/// The `Cache-Control` to serve [`JwtKeys::jwks_json`] with: verifiers and
/// caches between them may keep the document five minutes. Publish a key at
/// least that long plus the verifiers' own refresh interval (five minutes
/// by default for a `JwtLayer` reading a remote JWKS) before it signs: ten
/// minutes, and no cache still serves a document without it.
pub const JWKS_CACHE_CONTROL: &str = "public, max-age=300";

/// Keys looked up by `kid` or by the exact encoded header of our own tokens.
#[derive(Clone, Default)]
pub(crate) struct KeySet {
    keys: Vec<Key>,
}

impl KeySet {
    pub(crate) fn from_keys(keys: Vec<Key>) -> Self {
        Self { keys }
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &Key> {
        self.keys.iter()
    }

    #[cfg_attr(not(any(feature = "jwks", test, fuzzing)), allow(dead_code))]
    pub(crate) fn len(&self) -> usize {
        self.keys.len()
    }

    pub(crate) fn by_kid(&self, kid: &str) -> Option<&Key> {
        self.keys.iter().find(|k| k.kid == kid)
    }

    pub(crate) fn by_encoded_header(&self, header: &str) -> Option<&Key> {
        self.keys.iter().find(|k| k.encoded_header == header)
    }

    /// Whether both sets hold the same public keys in the same order.
    #[cfg_attr(not(feature = "jwks"), allow(dead_code))]
    pub(crate) fn same_public_keys(&self, other: &Self) -> bool {
        self.keys.len() == other.keys.len()
            && self
                .keys
                .iter()
                .zip(&other.keys)
                .all(|(a, b)| a.same_public_key(b))
    }

    fn kids(&self) -> Vec<(&str, Algorithm)> {
        self.keys
            .iter()
            .map(|k| (k.kid.as_str(), k.algorithm()))
            .collect()
    }
}

/// The keys tokens are signed and verified with.
///
/// One key *signs*: new tokens carry its `kid`. Every key in the set
/// *verifies* the tokens whose `kid` names it, each pinned to its own
/// algorithm: a token whose `alg` is not its key's (an HS256 token naming an
/// Ed25519 key, `alg: none`, …) is refused, and a `kid` that is not in the
/// set is refused without any lookup or I/O. The public halves of the
/// EdDSA and ES256 keys are *published* in [`jwks_json`](Self::jwks_json);
/// HS256 secrets never are.
///
/// # Rotation
///
/// Keys rotate without a refused request:
///
/// 1. **Publish** the next key before it signs,
///    [`with_next_key`](Self::with_next_key): it verifies and is in the
///    JWKS, so services that verify from the JWKS have fetched it before the
///    first token names it.
/// 2. **Promote** it, [`promote`](Self::promote): it signs from now on, and
///    the former signing key is *retired* — it no longer signs but still
///    verifies and is still published, until the last token it signed has
///    expired.
/// 3. **Drop** the retired key, [`without_key`](Self::without_key).
///
/// A key whose private half lives elsewhere (another instance signs with it)
/// or is gone (retired) is added by its public half,
/// [`with_public_key`](Self::with_public_key).
///
/// ```
/// use tower_otp::jwt::{Algorithm, JwtKeys, SigningKey};
///
/// // In production, load the keys (`SigningKey::from_pkcs8_pem`); fresh
/// // ones keep this example self-contained.
/// let current = SigningKey::generate("2026-01", Algorithm::EdDSA)?;
/// let next = SigningKey::generate("2026-04", Algorithm::EdDSA)?;
/// let keys = JwtKeys::from_signing_key(current).with_next_key(next)?;
/// assert_eq!(keys.signing_kid(), "2026-01");
/// let jwks = String::from_utf8(keys.jwks_json().unwrap().to_vec()).unwrap();
/// assert!(jwks.contains(r#""kid":"2026-01""#) && jwks.contains(r#""kid":"2026-04""#));
///
/// // Weeks later: the next key signs, the old one is retired…
/// let keys = keys.promote("2026-04")?;
/// assert_eq!(keys.signing_kid(), "2026-04");
/// assert_eq!(keys.kids().collect::<Vec<_>>(), ["2026-01", "2026-04"]);
/// // …and dropped once its last token has expired.
/// let keys = keys.without_key("2026-01")?;
/// assert_eq!(keys.kids().collect::<Vec<_>>(), ["2026-04"]);
/// # Ok::<(), tower_otp::error::ConfigError>(())
/// ```
///
/// HS256 keys rotate the same way ([`new`](Self::new),
/// [`with_verification_key`](Self::with_verification_key)):
///
/// ```
/// use tower_otp::jwt::JwtKeys;
///
/// // In production, read the secrets from configuration (e.g. hex from
/// // `openssl rand -hex 32`); random ones keep this example self-contained.
/// let keys = JwtKeys::new("2025-06", rand::random::<[u8; 32]>())?
///     .with_verification_key("2025-01", rand::random::<[u8; 32]>())?;
/// assert_eq!(keys.signing_kid(), "2025-06");
/// assert!(keys.jwks_json().is_none());
/// assert!(JwtKeys::new("k", b"too short").is_err());
/// assert!(JwtKeys::new("k", "x".repeat(32)).is_err());
/// assert!(JwtKeys::new("k", "changeme-changeme-changeme-changeme").is_err());
/// # Ok::<(), tower_otp::error::ConfigError>(())
/// ```
#[derive(Clone)]
pub struct JwtKeys {
    set: KeySet,
    /// Index of the signing key in `set`.
    signing: usize,
    /// The JWKS document of the published keys, built with the set.
    jwks: Option<Bytes>,
}

impl JwtKeys {
    /// Signs (and verifies) with the HS256 `secret` under `kid`. Secrets
    /// shorter than 32 bytes, of low entropy (few distinct bytes, a short
    /// repeating pattern, a long run) or holding a placeholder (`changeme`,
    /// `secret`, `example`, …) are refused; any random 32-byte value passes.
    pub fn new(kid: impl Into<String>, secret: impl AsRef<[u8]>) -> Result<Self, ConfigError> {
        SigningKey::hs256(kid, secret).map(Self::from_signing_key)
    }

    /// Signs (and verifies) with `key`, of any [`Algorithm`].
    pub fn from_signing_key(key: SigningKey) -> Self {
        Self::from_parts(KeySet::from_keys(vec![key.0]), 0)
    }

    /// Signs with a fresh Ed25519 key under `kid` (development and tests:
    /// see [`SigningKey::generate`]).
    pub fn generate_ed25519(kid: impl Into<String>) -> Result<Self, ConfigError> {
        SigningKey::generate(kid, Algorithm::EdDSA).map(Self::from_signing_key)
    }

    /// Signs with a fresh P-256 (ES256) key under `kid` (development and
    /// tests: see [`SigningKey::generate`]).
    pub fn generate_es256(kid: impl Into<String>) -> Result<Self, ConfigError> {
        SigningKey::generate(kid, Algorithm::ES256).map(Self::from_signing_key)
    }

    /// Also accepts tokens signed with the HS256 `secret` under `kid`
    /// (rotation: the previous secret, or the next one before
    /// [`promote`](Self::promote)).
    pub fn with_verification_key(
        self,
        kid: impl Into<String>,
        secret: impl AsRef<[u8]>,
    ) -> Result<Self, ConfigError> {
        self.with_next_key(SigningKey::hs256(kid, secret)?)
    }

    /// Publishes `key` and accepts its tokens, but does not sign with it
    /// yet: verifiers learn it before the first token names it.
    /// [`promote`](Self::promote) makes it the signing key.
    pub fn with_next_key(self, key: SigningKey) -> Result<Self, ConfigError> {
        self.with(key.0)
    }

    /// Accepts (and publishes) tokens signed by the private half of `key`,
    /// which this set does not hold: a retired key, or one another instance
    /// signs with.
    pub fn with_public_key(self, key: PublicKey) -> Result<Self, ConfigError> {
        self.with(key.0)
    }

    fn with(mut self, key: Key) -> Result<Self, ConfigError> {
        if self.set.by_kid(&key.kid).is_some() {
            return Err(ConfigError::new(
                "jwt kid",
                format!("duplicate kid {:?}", key.kid),
            ));
        }
        self.set.keys.push(key);
        Ok(Self::from_parts(self.set, self.signing))
    }

    /// Signs with the key `kid` from now on; the former signing key is
    /// retired: it still verifies, and is still published, until
    /// [`without_key`](Self::without_key) drops it. Refused when `kid` is
    /// not in the set or only its public half is.
    pub fn promote(self, kid: &str) -> Result<Self, ConfigError> {
        let index = self
            .set
            .keys
            .iter()
            .position(|k| k.kid == kid)
            .ok_or_else(|| ConfigError::new("jwt kid", format!("no key {kid:?} to promote")))?;
        if !self.set.keys[index].can_sign() {
            return Err(ConfigError::new(
                "jwt kid",
                format!("key {kid:?} has no private half here: it cannot sign"),
            ));
        }
        Ok(Self::from_parts(self.set, index))
    }

    /// Stops accepting tokens of the key `kid` and unpublishes it (a retired
    /// key whose last token has expired). The signing key cannot be dropped:
    /// [`promote`](Self::promote) another first.
    pub fn without_key(mut self, kid: &str) -> Result<Self, ConfigError> {
        let index = self
            .set
            .keys
            .iter()
            .position(|k| k.kid == kid)
            .ok_or_else(|| ConfigError::new("jwt kid", format!("no key {kid:?} to drop")))?;
        if index == self.signing {
            return Err(ConfigError::new(
                "jwt kid",
                format!("{kid:?} is the signing key: promote another first"),
            ));
        }
        self.set.keys.remove(index);
        let signing = self.signing - usize::from(index < self.signing);
        Ok(Self::from_parts(self.set, signing))
    }

    fn from_parts(set: KeySet, signing: usize) -> Self {
        let jwks = super::jwk::write_jwks(set.iter());
        Self { set, signing, jwks }
    }

    /// The `kid` new tokens carry.
    pub fn signing_kid(&self) -> &str {
        &self.signing().kid
    }

    /// The algorithm new tokens are signed with.
    pub fn signing_algorithm(&self) -> Algorithm {
        self.signing().algorithm()
    }

    /// The `kid` of every key that verifies, in the order they were added.
    pub fn kids(&self) -> impl Iterator<Item = &str> {
        self.set.iter().map(|k| k.kid.as_str())
    }

    /// The JWKS document (RFC 7517) of the published keys — the public
    /// halves of the EdDSA and ES256 keys, `{"keys":[{"kty":"OKP",
    /// "crv":"Ed25519","x":…,"kid":…,"alg":"EdDSA","use":"sig"}, …]}` — as
    /// the bytes of a `GET /.well-known/jwks.json` response body
    /// (`application/json`, [`JWKS_CACHE_CONTROL`]). Built once with the
    /// set; cloning is a reference count. `None` when no key is published
    /// (HS256 only).
    pub fn jwks_json(&self) -> Option<Bytes> {
        self.jwks.clone()
    }

    pub(crate) fn signing(&self) -> &Key {
        &self.set.keys[self.signing]
    }

    pub(crate) fn set(&self) -> &KeySet {
        &self.set
    }
}

impl fmt::Debug for JwtKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtKeys")
            .field("signing_kid", &self.signing().kid)
            .field("kids", &self.set.kids())
            .field("secrets", &"<redacted>")
            .finish()
    }
}

impl fmt::Debug for KeySet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeySet")
            .field("kids", &self.kids())
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
        let keys = JwtKeys::new("k1", TEST_SECRET)
            .unwrap()
            .with_next_key(SigningKey::generate("k2", Algorithm::ES256).unwrap())
            .unwrap();
        let dbg = format!("{keys:?}");
        assert!(dbg.contains("k1") && dbg.contains("ES256") && dbg.contains("redacted"));
        assert!(!dbg.contains(&TEST_SECRET[..8]));
    }

    #[test]
    fn promote_and_drop() {
        let pair = SigningKey::generate("a", Algorithm::EdDSA).unwrap();
        let public_only = SigningKey::generate("p", Algorithm::ES256)
            .unwrap()
            .public_key()
            .unwrap();
        let keys = JwtKeys::new("h", TEST_SECRET)
            .unwrap()
            .with_next_key(pair)
            .unwrap()
            .with_public_key(public_only)
            .unwrap();
        // A public half cannot sign; an unknown kid cannot be promoted.
        assert!(keys.clone().promote("p").is_err());
        assert!(keys.clone().promote("zz").is_err());
        // The signing key cannot be dropped; an unknown one neither.
        assert!(keys.clone().without_key("h").is_err());
        assert!(keys.clone().without_key("zz").is_err());
        let keys = keys.promote("a").unwrap();
        assert_eq!(keys.signing_kid(), "a");
        assert_eq!(keys.signing_algorithm(), Algorithm::EdDSA);
        // Dropping a key before the signing one keeps the signing key.
        let keys = keys.without_key("h").unwrap();
        assert_eq!(keys.signing_kid(), "a");
        assert_eq!(keys.kids().collect::<Vec<_>>(), ["a", "p"]);
        // The HS256 key, once promoted back, signs again.
        let back = JwtKeys::new("h", TEST_SECRET)
            .unwrap()
            .with_verification_key("h2", TEST_SECRET_2)
            .unwrap()
            .promote("h2")
            .unwrap();
        assert_eq!(back.signing_kid(), "h2");
    }

    #[test]
    fn only_asymmetric_public_halves_are_published() {
        let hs = JwtKeys::new("h", TEST_SECRET).unwrap();
        assert!(hs.jwks_json().is_none());
        let keys = hs
            .with_next_key(SigningKey::generate("e", Algorithm::EdDSA).unwrap())
            .unwrap();
        let doc: serde_json::Value = serde_json::from_slice(&keys.jwks_json().unwrap()).unwrap();
        let published = doc["keys"].as_array().unwrap();
        assert_eq!(published.len(), 1);
        assert_eq!(published[0]["kid"], "e");
        assert!(published[0].get("d").is_none());
        // Dropping the only published key unpublishes it.
        assert!(keys.without_key("e").unwrap().jwks_json().is_none());
    }
}
