//! HS256 access tokens and opaque refresh tokens.
//!
//! Access tokens are JWTs signed with HMAC-SHA256, written directly on
//! `hmac` + `sha2`: the algorithm is pinned (a token's `alg` header can never
//! choose another), a `kid` selects among several configured keys so secrets
//! can rotate, and `exp`/`nbf`/`iat`/`iss`/`aud` are checked with leeway. A
//! configured issuer or audience must be present in the token.
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
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod claims;
#[cfg(feature = "axum")]
mod extract;
mod future;
mod keys;
mod layer;
mod refresh;
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

pub use keys::{JwtKeys, MIN_SECRET_LEN};
pub use refresh::RefreshToken;
pub use token::{
    Audience, JwtError, MAX_TOKEN_LEN, REGISTERED_CLAIM_NAMES, RegisteredClaims, Validation,
    Verified, decode, encode,
};
