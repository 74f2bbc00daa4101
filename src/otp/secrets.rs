//! The keys the router derives from the one server secret, each under its
//! own label, so that no two purposes share a key.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::identifier::IdentifierHasher;

/// Keys derived from the one server secret, each for one purpose.
#[derive(Clone)]
pub(crate) struct Secrets {
    /// Pepper of the code MACs the store keeps.
    pub(crate) pepper: Hmac<Sha256>,
    /// Key of the identifier hashes (store keys, limit keys, events).
    pub(crate) identifiers: IdentifierHasher,
    /// Key of the refresh-token successors.
    pub(crate) refresh: Hmac<Sha256>,
}

impl Secrets {
    /// The router's keys from `server_secret` (already checked by the
    /// builder).
    pub(crate) fn derive(server_secret: &[u8]) -> Self {
        Self {
            pepper: hmac_key(&derive(server_secret, "code pepper")),
            identifiers: IdentifierHasher::new(&derive(server_secret, "identifier")),
            refresh: hmac_key(&derive(server_secret, "refresh successor")),
        }
    }
}

/// HMAC-SHA256(secret, `"tower-otp v1 " ‖ label`): the key for `label`.
pub(crate) fn derive(secret: &[u8], label: &str) -> [u8; 32] {
    let mut mac = <Hmac<Sha256>>::new_from_slice(secret).expect("HMAC accepts any key length");
    mac.update(b"tower-otp v1 ");
    mac.update(label.as_bytes());
    mac.finalize().into_bytes().into()
}

fn hmac_key(key: &[u8]) -> Hmac<Sha256> {
    <Hmac<Sha256>>::new_from_slice(key).expect("HMAC accepts any key length")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_purpose_gets_its_own_key() {
        let secret = b"9f2c47e1b8a03d56c4e7f1a2b9d80e3c";
        let labels = ["code pepper", "identifier", "refresh successor", "jwt"];
        let keys: Vec<[u8; 32]> = labels.iter().map(|l| derive(secret, l)).collect();
        for (i, a) in keys.iter().enumerate() {
            for b in &keys[i + 1..] {
                assert_ne!(a, b);
            }
        }
        assert_eq!(derive(secret, "jwt"), keys[3], "deterministic");
        assert_ne!(derive(b"another secret, 32 bytes long!!!", "jwt"), keys[3]);
    }
}
