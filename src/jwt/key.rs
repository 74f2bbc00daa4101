//! One key of a [`JwtKeys`](super::JwtKeys) set: [`SigningKey`] (with its
//! private half) and [`PublicKey`], each pinned to one [`Algorithm`].
//!
//! HS256 is `hmac` + `sha2`; Ed25519 and P-256 are *ring* (the curve
//! arithmetic is never ours). Every key carries the encoded JOSE header its
//! tokens have, so our own tokens verify without parsing header JSON.

use std::fmt;
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use ring::rand::SystemRandom;
use ring::signature::{
    ECDSA_P256_SHA256_FIXED, ECDSA_P256_SHA256_FIXED_SIGNING, ED25519, EcdsaKeyPair,
    Ed25519KeyPair, KeyPair, UnparsedPublicKey,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{PrivatePkcs8KeyDer, SubjectPublicKeyInfoDer};
use sha2::Sha256;

use super::token::JwtError;
use crate::error::ConfigError;

/// A JWS algorithm tower-otp signs and verifies with (the `alg` header,
/// RFC 7518 §3.1 and RFC 8037 §3.1). Each key has exactly one: a token
/// whose `alg` is not its key's is refused.
#[allow(clippy::upper_case_acronyms)] // the JOSE names, as tokens spell them
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Algorithm {
    /// HMAC-SHA256 under a shared secret (the default).
    HS256,
    /// Ed25519 signatures (64 bytes).
    EdDSA,
    /// ECDSA on P-256 with SHA-256; signatures are the 64-byte `r‖s` form
    /// of RFC 7518 §3.4, not DER.
    ES256,
}

impl Algorithm {
    /// The `alg` value, as in a JOSE header.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::HS256 => "HS256",
            Self::EdDSA => "EdDSA",
            Self::ES256 => "ES256",
        }
    }

    /// The algorithm named `alg`, if it is one of ours.
    pub(crate) fn from_name(alg: &str) -> Option<Self> {
        match alg {
            "HS256" => Some(Self::HS256),
            "EdDSA" => Some(Self::EdDSA),
            "ES256" => Some(Self::ES256),
            _ => None,
        }
    }

    /// Signature length in bytes.
    fn signature_len(self) -> usize {
        match self {
            Self::HS256 => 32,
            Self::EdDSA | Self::ES256 => 64,
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An uncompressed SEC1 P-256 point: `0x04 ‖ x ‖ y`.
pub(crate) type P256Point = [u8; 65];

/// The key material. The private halves are behind `Arc` (*ring* key pairs
/// are not `Clone`).
#[derive(Clone)]
pub(crate) enum Material {
    /// A pre-keyed HMAC: the secret is both halves.
    Hs256(Hmac<Sha256>),
    Ed25519 {
        public: [u8; 32],
        private: Option<Arc<Ed25519KeyPair>>,
    },
    Es256 {
        public: Box<P256Point>,
        private: Option<Arc<EcdsaKeyPair>>,
    },
}

/// One key: `kid`, material, and the header its tokens carry.
#[derive(Clone)]
pub(crate) struct Key {
    pub(crate) kid: String,
    pub(crate) material: Material,
    /// base64url of `{"alg":…,"typ":"JWT","kid":…}`.
    pub(crate) encoded_header: String,
}

impl Key {
    /// A key under `kid` (checked: 1–64 printable ASCII characters, no
    /// quotes or backslashes, so it can be written into a header as is).
    pub(crate) fn new(kid: String, material: Material) -> Result<Self, ConfigError> {
        check_kid(&kid)?;
        let alg = material.algorithm();
        let header = format!(r#"{{"alg":"{alg}","typ":"JWT","kid":"{kid}"}}"#);
        Ok(Self {
            encoded_header: URL_SAFE_NO_PAD.encode(header),
            kid,
            material,
        })
    }

    pub(crate) fn algorithm(&self) -> Algorithm {
        self.material.algorithm()
    }

    /// Whether this key can sign (HS256 always; EdDSA / ES256 with the
    /// private half).
    pub(crate) fn can_sign(&self) -> bool {
        match &self.material {
            Material::Hs256(_) => true,
            Material::Ed25519 { private, .. } => private.is_some(),
            Material::Es256 { private, .. } => private.is_some(),
        }
    }

    /// The same key without its private half (`None` for HS256, which has
    /// no public half).
    pub(crate) fn public_only(&self) -> Option<Self> {
        let material = match &self.material {
            Material::Hs256(_) => return None,
            Material::Ed25519 { public, .. } => Material::Ed25519 {
                public: *public,
                private: None,
            },
            Material::Es256 { public, .. } => Material::Es256 {
                public: public.clone(),
                private: None,
            },
        };
        Some(Self {
            kid: self.kid.clone(),
            material,
            encoded_header: self.encoded_header.clone(),
        })
    }

    /// Whether `other` is the same verification key (kid, algorithm, public
    /// bytes): a refreshed JWKS that changes nothing keeps its cache.
    pub(crate) fn same_public_key(&self, other: &Self) -> bool {
        self.kid == other.kid
            && match (&self.material, &other.material) {
                (Material::Ed25519 { public: a, .. }, Material::Ed25519 { public: b, .. }) => {
                    a == b
                }
                (Material::Es256 { public: a, .. }, Material::Es256 { public: b, .. }) => a == b,
                _ => false,
            }
    }

    /// Appends `.` and the base64url signature of `signing_input` (the
    /// token so far) to `token`.
    pub(crate) fn sign_into(&self, token: &mut String) -> Result<(), JwtError> {
        let mut sig = [0u8; 64];
        let len = match &self.material {
            Material::Hs256(mac) => {
                let mut mac = mac.clone();
                mac.update(token.as_bytes());
                sig[..32].copy_from_slice(&mac.finalize().into_bytes());
                32
            }
            Material::Ed25519 {
                private: Some(pair),
                ..
            } => {
                sig.copy_from_slice(pair.sign(token.as_bytes()).as_ref());
                64
            }
            Material::Es256 {
                private: Some(pair),
                ..
            } => {
                let signed = pair
                    .sign(&SystemRandom::new(), token.as_bytes())
                    .map_err(|_| JwtError::Signing)?;
                let bytes = signed.as_ref();
                if bytes.len() != 64 {
                    return Err(JwtError::Signing);
                }
                sig.copy_from_slice(bytes);
                64
            }
            _ => return Err(JwtError::Signing),
        };
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(&sig[..len], token);
        Ok(())
    }

    /// Whether `signature` (base64url, canonical) is this key's signature
    /// of `signing_input`. HMACs are compared in constant time.
    pub(crate) fn verify(&self, signing_input: &[u8], signature: &str) -> bool {
        let expected = self.algorithm().signature_len();
        // One spare byte: a longer signature fills it and is refused.
        let mut sig = [0u8; 65];
        match URL_SAFE_NO_PAD.decode_slice(signature, &mut sig) {
            Ok(n) if n == expected => {}
            _ => return false,
        }
        let sig = &sig[..expected];
        match &self.material {
            Material::Hs256(mac) => {
                let mut mac = mac.clone();
                mac.update(signing_input);
                mac.verify_slice(sig).is_ok()
            }
            Material::Ed25519 { public, .. } => UnparsedPublicKey::new(&ED25519, public)
                .verify(signing_input, sig)
                .is_ok(),
            Material::Es256 { public, .. } => {
                UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, &public[..])
                    .verify(signing_input, sig)
                    .is_ok()
            }
        }
    }
}

impl Material {
    fn algorithm(&self) -> Algorithm {
        match self {
            Self::Hs256(_) => Algorithm::HS256,
            Self::Ed25519 { .. } => Algorithm::EdDSA,
            Self::Es256 { .. } => Algorithm::ES256,
        }
    }

    fn ed25519(pair: Ed25519KeyPair) -> Self {
        let mut public = [0u8; 32];
        public.copy_from_slice(pair.public_key().as_ref());
        Self::Ed25519 {
            public,
            private: Some(Arc::new(pair)),
        }
    }

    fn es256(pair: EcdsaKeyPair) -> Result<Self, ConfigError> {
        let public = P256Point::try_from(pair.public_key().as_ref())
            .map_err(|_| ConfigError::new("jwt key", "unexpected P-256 public key"))?;
        Ok(Self::Es256 {
            public: Box::new(public),
            private: Some(Arc::new(pair)),
        })
    }
}

/// Refuses a `kid` that is empty, longer than 64 bytes, or not printable
/// ASCII without quotes and backslashes.
pub(crate) fn check_kid(kid: &str) -> Result<(), ConfigError> {
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
    Ok(())
}

fn bad_key(reason: &'static str) -> ConfigError {
    ConfigError::new("jwt key", reason)
}

/// A key tokens are signed with: an HS256 secret, or the private half of an
/// Ed25519 (EdDSA) or P-256 (ES256) key pair, under its `kid`.
///
/// Asymmetric keys load from unencrypted PKCS#8, PEM or DER, as `openssl`
/// writes them:
///
/// ```sh
/// openssl genpkey -algorithm ed25519 -out jwt-ed25519.pem
/// openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out jwt-p256.pem
/// ```
///
/// ```
/// use tower_otp::jwt::{Algorithm, SigningKey};
///
/// // `openssl genpkey -algorithm ed25519`; in production, read it from a
/// // file or a secret store.
/// let pem = "-----BEGIN PRIVATE KEY-----\n\
///            MC4CAQAwBQYDK2VwBCIEIAOMsUeEZjgZMd9YC0mDjik9qUt5DPz0cAWj9qf82Hpu\n\
///            -----END PRIVATE KEY-----\n";
/// let key = SigningKey::from_pkcs8_pem("2026-01", pem)?;
/// assert_eq!(key.algorithm(), Algorithm::EdDSA);
/// assert_eq!(key.public_key().map(|k| k.kid().to_owned()).as_deref(), Some("2026-01"));
/// // Debug never shows the private half.
/// assert!(!format!("{key:?}").contains("MC4CAQ"));
/// # Ok::<(), tower_otp::error::ConfigError>(())
/// ```
#[derive(Clone)]
pub struct SigningKey(pub(crate) Key);

impl SigningKey {
    /// An HS256 key: `secret` under `kid` (secrets shorter than 32 bytes or
    /// of low entropy are refused, see [`JwtKeys::new`](super::JwtKeys::new)).
    pub fn hs256(kid: impl Into<String>, secret: impl AsRef<[u8]>) -> Result<Self, ConfigError> {
        let secret = secret.as_ref();
        crate::secret::check("jwt secret", secret)?;
        let mac = Hmac::new_from_slice(secret).map_err(|_| bad_key("unusable key"))?;
        Key::new(kid.into(), Material::Hs256(mac)).map(Self)
    }

    /// An Ed25519 or P-256 private key from a PEM `PRIVATE KEY` block
    /// (unencrypted PKCS#8); the algorithm follows from the key.
    pub fn from_pkcs8_pem(
        kid: impl Into<String>,
        pem: impl AsRef<[u8]>,
    ) -> Result<Self, ConfigError> {
        let der = PrivatePkcs8KeyDer::from_pem_slice(pem.as_ref()).map_err(|_| {
            bad_key(
                "not a PEM PRIVATE KEY block (PKCS#8; convert with `openssl pkcs8 -topk8 -nocrypt`)",
            )
        })?;
        Self::from_pkcs8_der(kid, der.secret_pkcs8_der())
    }

    /// An Ed25519 or P-256 private key from unencrypted PKCS#8 DER; the
    /// algorithm follows from the key.
    pub fn from_pkcs8_der(kid: impl Into<String>, der: &[u8]) -> Result<Self, ConfigError> {
        // openssl writes Ed25519 keys as PKCS#8 v1 (no public key): "maybe
        // unchecked" derives the public key; a v2 key's is checked.
        let material = if let Ok(pair) = Ed25519KeyPair::from_pkcs8_maybe_unchecked(der) {
            Material::ed25519(pair)
        } else {
            let pair = EcdsaKeyPair::from_pkcs8(
                &ECDSA_P256_SHA256_FIXED_SIGNING,
                der,
                &SystemRandom::new(),
            )
            .map_err(|_| bad_key("not an unencrypted PKCS#8 Ed25519 or P-256 private key"))?;
            Material::es256(pair)?
        };
        Key::new(kid.into(), material).map(Self)
    }

    /// A fresh random key for `algorithm` (development and tests; in
    /// production load a key that outlives the process, or every restart
    /// invalidates the tokens issued before it).
    pub fn generate(kid: impl Into<String>, algorithm: Algorithm) -> Result<Self, ConfigError> {
        let rng = SystemRandom::new();
        let failed = |_| bad_key("the system random generator failed");
        match algorithm {
            Algorithm::HS256 => Self::hs256(kid, rand::random::<[u8; 32]>()),
            Algorithm::EdDSA => {
                let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).map_err(failed)?;
                Self::from_pkcs8_der(kid, pkcs8.as_ref())
            }
            Algorithm::ES256 => {
                let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
                    .map_err(failed)?;
                Self::from_pkcs8_der(kid, pkcs8.as_ref())
            }
        }
    }

    /// The key id tokens signed with this key carry.
    pub fn kid(&self) -> &str {
        &self.0.kid
    }

    /// The algorithm this key signs with.
    pub fn algorithm(&self) -> Algorithm {
        self.0.algorithm()
    }

    /// The public half (EdDSA, ES256) for verifiers and the JWKS; `None` for
    /// HS256, whose secret is both halves.
    pub fn public_key(&self) -> Option<PublicKey> {
        self.0.public_only().map(PublicKey)
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.0.kid)
            .field("algorithm", &self.0.algorithm())
            .field("private", &"<redacted>")
            .finish()
    }
}

/// DER `SubjectPublicKeyInfo` prefix of an Ed25519 key (RFC 8410 §4), the
/// 32 key bytes follow.
const ED25519_SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];
/// DER `SubjectPublicKeyInfo` prefix of an uncompressed P-256 key (RFC 5480):
/// id-ecPublicKey, prime256v1, then the 65-byte point.
const P256_SPKI_PREFIX: [u8; 26] = [
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];

/// The public half of an Ed25519 (EdDSA) or P-256 (ES256) key, under its
/// `kid`: verifies tokens and is published in the JWKS, but cannot sign.
///
/// From [`SigningKey::public_key`], or from the `PUBLIC KEY` PEM that
/// `openssl pkey -in key.pem -pubout` writes (the private half held by
/// another instance, or destroyed after the key retired).
#[derive(Clone)]
pub struct PublicKey(pub(crate) Key);

impl PublicKey {
    /// An Ed25519 or uncompressed P-256 key from a PEM `PUBLIC KEY` block
    /// (`SubjectPublicKeyInfo`).
    pub fn from_spki_pem(
        kid: impl Into<String>,
        pem: impl AsRef<[u8]>,
    ) -> Result<Self, ConfigError> {
        let der = SubjectPublicKeyInfoDer::from_pem_slice(pem.as_ref())
            .map_err(|_| bad_key("not a PEM PUBLIC KEY block"))?;
        Self::from_spki_der(kid, der.as_ref())
    }

    /// An Ed25519 or uncompressed P-256 key from DER `SubjectPublicKeyInfo`.
    pub fn from_spki_der(kid: impl Into<String>, der: &[u8]) -> Result<Self, ConfigError> {
        let material = if let Some(key) = der.strip_prefix(&ED25519_SPKI_PREFIX[..]) {
            Material::Ed25519 {
                public: key.try_into().map_err(|_| bad_key("bad Ed25519 key"))?,
                private: None,
            }
        } else if let Some(point) = der.strip_prefix(&P256_SPKI_PREFIX[..]) {
            let point = P256Point::try_from(point)
                .ok()
                .filter(|p| p[0] == 0x04)
                .ok_or_else(|| bad_key("not an uncompressed P-256 point"))?;
            Material::Es256 {
                public: Box::new(point),
                private: None,
            }
        } else {
            return Err(bad_key("not an Ed25519 or P-256 SubjectPublicKeyInfo"));
        };
        Key::new(kid.into(), material).map(Self)
    }

    /// The key id of the tokens this key verifies.
    pub fn kid(&self) -> &str {
        &self.0.kid
    }

    /// The algorithm of the tokens this key verifies.
    pub fn algorithm(&self) -> Algorithm {
        self.0.algorithm()
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PublicKey")
            .field("kid", &self.0.kid)
            .field("algorithm", &self.0.algorithm())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Written by openssl 3.0 (see tests/data/README.md).
    const ED25519_PEM: &str = include_str!("../../tests/data/jwt-ed25519.pem");
    const ED25519_PUB_PEM: &str = include_str!("../../tests/data/jwt-ed25519.pub.pem");
    const P256_PEM: &str = include_str!("../../tests/data/jwt-p256.pem");
    const P256_PUB_PEM: &str = include_str!("../../tests/data/jwt-p256.pub.pem");

    fn signed(key: &Key, input: &str) -> String {
        let mut token = input.to_owned();
        key.sign_into(&mut token).unwrap();
        token
    }

    #[test]
    fn every_algorithm_signs_and_verifies_and_refuses_a_changed_input() {
        for alg in [Algorithm::HS256, Algorithm::EdDSA, Algorithm::ES256] {
            let key = SigningKey::generate("k", alg).unwrap().0;
            let token = signed(&key, "head.body");
            let (input, sig) = token.rsplit_once('.').unwrap();
            assert!(key.verify(input.as_bytes(), sig), "{alg}");
            assert!(!key.verify(b"head.bodY", sig), "{alg}");
            if let Some(public) = key.public_only() {
                assert!(public.verify(input.as_bytes(), sig), "{alg}");
                assert!(!public.can_sign());
                let mut t = String::from("x");
                assert_eq!(public.sign_into(&mut t), Err(JwtError::Signing));
            }
            // Another key of the same algorithm never verifies it.
            let other = SigningKey::generate("k", alg).unwrap().0;
            assert!(!other.verify(input.as_bytes(), sig), "{alg}");
        }
    }

    #[test]
    fn signatures_have_the_jws_lengths() {
        for (alg, len) in [
            (Algorithm::HS256, 32),
            (Algorithm::EdDSA, 64),
            (Algorithm::ES256, 64),
        ] {
            let key = SigningKey::generate("k", alg).unwrap().0;
            let token = signed(&key, "a.b");
            let sig = token.rsplit('.').next().unwrap();
            assert_eq!(URL_SAFE_NO_PAD.decode(sig).unwrap().len(), len, "{alg}");
            // One byte more or less, or padding, is refused.
            let mut long = URL_SAFE_NO_PAD.decode(sig).unwrap();
            long.push(0);
            assert!(!key.verify(b"a.b", &URL_SAFE_NO_PAD.encode(&long)));
            assert!(!key.verify(b"a.b", &URL_SAFE_NO_PAD.encode(&long[..len - 1])));
            assert!(!key.verify(b"a.b", &format!("{sig}=")));
        }
    }

    #[test]
    fn loads_openssl_keys_and_their_public_halves() {
        for (private, public, alg) in [
            (ED25519_PEM, ED25519_PUB_PEM, Algorithm::EdDSA),
            (P256_PEM, P256_PUB_PEM, Algorithm::ES256),
        ] {
            let key = SigningKey::from_pkcs8_pem("k", private).unwrap();
            assert_eq!(key.algorithm(), alg);
            let public = PublicKey::from_spki_pem("k", public).unwrap();
            assert_eq!(public.algorithm(), alg);
            assert!(key.public_key().unwrap().0.same_public_key(&public.0));
            let token = signed(&key.0, "a.b");
            let (input, sig) = token.rsplit_once('.').unwrap();
            assert!(public.0.verify(input.as_bytes(), sig), "{alg}");
        }
    }

    #[test]
    fn refuses_what_is_not_a_usable_key() {
        for bad in [
            "",
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
            ED25519_PUB_PEM,
        ] {
            assert!(SigningKey::from_pkcs8_pem("k", bad).is_err(), "{bad:?}");
        }
        assert!(SigningKey::from_pkcs8_der("k", &[0x30, 0x00]).is_err());
        assert!(PublicKey::from_spki_der("k", &ED25519_SPKI_PREFIX).is_err());
        let mut compressed = P256_SPKI_PREFIX.to_vec();
        compressed.extend([0x02; 65]);
        assert!(PublicKey::from_spki_der("k", &compressed).is_err());
        assert!(SigningKey::from_pkcs8_pem("a\"b", ED25519_PEM).is_err());
        assert!(SigningKey::from_pkcs8_pem("", ED25519_PEM).is_err());
    }

    #[test]
    fn debug_never_shows_private_halves() {
        for alg in [Algorithm::HS256, Algorithm::EdDSA, Algorithm::ES256] {
            let key = SigningKey::generate("kid-1", alg).unwrap();
            let dbg = format!("{key:?}");
            assert!(dbg.contains("kid-1") && dbg.contains("redacted"), "{dbg}");
        }
        let key = SigningKey::from_pkcs8_pem("ed", ED25519_PEM).unwrap();
        assert!(!format!("{key:?}").contains("MC4CAQ"));
        assert!(PublicKey::from_spki_pem("k", ED25519_PEM).is_err());
    }
}
