//! Access tokens (HS256, EdDSA, ES256), JWKS, and opaque refresh tokens.
//!
//! Access tokens are JWTs (JWS compact form) signed with one of three
//! algorithms: HS256 (HMAC-SHA256 on `hmac` + `sha2`, the default), EdDSA
//! (Ed25519) or ES256 (ECDSA P-256, 64-byte `r‖s` signatures), the curves
//! from *ring*. A [`JwtKeys`] set holds one signing key and the keys that
//! verify, each under its `kid` and pinned to its [`Algorithm`]: a token's
//! `alg` header can never choose another (no `none`, no HS256 token checked
//! against a public key), and a `kid` that is not in the set is refused
//! without any lookup or I/O. Keys rotate by `kid` — publish the next key
//! before it signs, keep the retired one until its tokens have expired (see
//! [`JwtKeys`]). `exp`/`nbf`/`iat`/`iss`/`aud` are checked with leeway; a
//! configured issuer or audience must be present in the token.
//!
//! The public halves of the EdDSA and ES256 keys are published as a JWK Set
//! ([`JwtKeys::jwks_json`], the body of `GET /.well-known/jwks.json`), so
//! services that must not hold the signing key verify with them: under the
//! `jwks` feature, [`JwtLayer::from_jwks`] reads a remote JWK Set
//! ([`Jwks`]: fetched over HTTPS, cached, refreshed, at most one fetch per
//! interval however many unknown `kid`s arrive).
//!
//! [`JwtLayer`] requires such a token on every request and puts its
//! [`Claims`] into request extensions; its service is [`Jwt`].
//!
//! Refresh tokens are opaque 256-bit random strings, stored only as a
//! SHA-256 hash, rotated on every use, with reuse detection (see
//! [`crate::store::Rotation`]).
//!
//! ```
//! use std::time::{Duration, SystemTime};
//! use tower_otp::jwt::{self, JwtKeys, Validation};
//!
//! // From configuration in production (`openssl rand -hex 32`).
//! let keys = JwtKeys::new("k1", rand::random::<[u8; 32]>())?;
//! let exp = SystemTime::now() + Duration::from_secs(900);
//! let exp = exp.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs();
//! let token = jwt::encode(&keys, &serde_json::json!({"sub": "user-1", "exp": exp}))?;
//! let verified = jwt::decode::<serde_json::Value>(&keys, &Validation::default(), &token, SystemTime::now())?;
//! assert_eq!(verified.registered.sub.as_deref(), Some("user-1"));
//!
//! // The same with an Ed25519 key (from `openssl genpkey -algorithm ed25519`
//! // in production: `SigningKey::from_pkcs8_pem`); only its public half is
//! // published.
//! let keys = JwtKeys::generate_ed25519("2026-01")?;
//! let token = jwt::encode(&keys, &serde_json::json!({"sub": "user-1", "exp": exp}))?;
//! assert!(jwt::decode::<serde_json::Value>(&keys, &Validation::default(), &token, SystemTime::now()).is_ok());
//! assert!(keys.jwks_json().is_some());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod claims;
#[cfg(feature = "axum")]
mod extract;
mod future;
// Crate-visible for the fuzz entry point of the JWKS parser.
pub(crate) mod jwk;
pub(crate) mod key;
mod keys;
mod layer;
mod refresh;
#[cfg(feature = "jwks")]
mod remote;
mod revocation;
pub(crate) mod service;
mod token;

pub use claims::Claims;
#[cfg(feature = "axum")]
pub use extract::MissingClaims;
pub use future::ResponseFuture;
pub use layer::{DEFAULT_CACHE_CAPACITY, JwtLayer};
pub use revocation::{NoRevocation, Revocation, StoreRevocation};
pub use service::Jwt;

pub use key::{Algorithm, PublicKey, SigningKey};
pub use keys::{JWKS_CACHE_CONTROL, JwtKeys, MIN_SECRET_LEN};
pub use refresh::RefreshToken;
#[cfg(feature = "jwks")]
pub use remote::{
    DEFAULT_JWKS_TIMEOUT, DEFAULT_MIN_REFRESH_INTERVAL, DEFAULT_REFRESH_INTERVAL, Jwks,
    JwksBuilder, JwksError,
};
pub use token::{
    Audience, JwtError, MAX_TOKEN_LEN, REGISTERED_CLAIM_NAMES, RegisteredClaims, Validation,
    Verified, decode, encode,
};
