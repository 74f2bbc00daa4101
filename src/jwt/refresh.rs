//! Opaque refresh tokens: `<sid>.<secret>`.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

const SID_LEN: usize = 22; // 128 bits, base64url
const SECRET_LEN: usize = 43; // 256 bits, base64url

/// A refresh token: the session family id and a 256-bit secret, both
/// base64url, joined by `.`. Only its SHA-256 hash is ever stored.
///
/// The family id in the token lets a store keep all of a family's state
/// together (one Redis hash slot). A rotated token's successor is derived as
/// HMAC(server key, token), so two tabs presenting the same token within the
/// grace window get the *same* successor without the server storing it.
#[derive(Clone, PartialEq, Eq)]
pub struct RefreshToken(String);

impl RefreshToken {
    /// A new random session id (22 base64url characters).
    pub fn new_sid() -> String {
        URL_SAFE_NO_PAD.encode(rand::random::<[u8; 16]>())
    }

    /// A fresh random token for family `sid`.
    pub fn generate(sid: &str) -> Self {
        Self::joined(sid, &rand::random::<[u8; 32]>())
    }

    /// `<sid>.<base64url(secret)>`, in one allocation of the exact size.
    fn joined(sid: &str, secret: &[u8; 32]) -> Self {
        let mut token = String::with_capacity(sid.len() + 1 + SECRET_LEN);
        token.push_str(sid);
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(secret, &mut token);
        Self(token)
    }

    /// Checks the shape (no store lookup); `None` when malformed.
    pub fn parse(s: &str) -> Option<Self> {
        let (sid, secret) = s.split_once('.')?;
        (Self::valid_sid(sid) && base64url_of_len(secret, SECRET_LEN)).then(|| Self(s.to_owned()))
    }

    /// Whether `sid` has the shape of a session id ([`new_sid`](Self::new_sid)).
    pub fn valid_sid(sid: &str) -> bool {
        base64url_of_len(sid, SID_LEN)
    }

    /// The session family id.
    pub fn sid(&self) -> &str {
        &self.0[..SID_LEN]
    }

    /// The token text, to hand to the client.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// SHA-256 of the token: what stores keep.
    pub fn hash(&self) -> [u8; 32] {
        Sha256::digest(self.0.as_bytes()).into()
    }

    /// The deterministic successor under `key`.
    pub fn successor(&self, key: &Hmac<Sha256>) -> Self {
        let mut mac = key.clone();
        mac.update(b"refresh-successor:");
        mac.update(self.0.as_bytes());
        Self::joined(self.sid(), &mac.finalize().into_bytes().into())
    }
}

/// Whether `s` is `len` base64url characters.
fn base64url_of_len(s: &str, len: usize) -> bool {
    s.len() == len
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl fmt::Debug for RefreshToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RefreshToken({}.<redacted>)", self.sid())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shape_and_successor() {
        let sid = RefreshToken::new_sid();
        let t = RefreshToken::generate(&sid);
        assert_eq!(RefreshToken::parse(t.as_str()), Some(t.clone()));
        assert_eq!(t.sid(), sid);
        let key = Hmac::<Sha256>::new_from_slice(b"k").unwrap();
        let next = t.successor(&key);
        assert_eq!(next.sid(), sid);
        assert_eq!(next, t.successor(&key));
        assert_ne!(next, t);
        assert!(RefreshToken::parse(next.as_str()).is_some());
        assert!(!format!("{t:?}").contains(&t.as_str()[23..]));
    }

    #[test]
    fn malformed() {
        for bad in [
            "",
            ".",
            "abc.def",
            &format!("{}.{}", "a".repeat(22), "b".repeat(42)),
            &format!("{}.{}!", "a".repeat(22), "b".repeat(42)),
        ] {
            assert!(RefreshToken::parse(bad).is_none(), "{bad:?}");
        }
    }
}
