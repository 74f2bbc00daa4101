//! JWK Set documents (RFC 7517): the one a [`JwtKeys`](super::JwtKeys)
//! publishes, and the parser of a remote one (keys a verifier accepts).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
#[cfg(any(feature = "jwks", test, fuzzing))]
use serde::{Deserialize, de::IgnoredAny};

use super::key::{Key, Material};
#[cfg(any(feature = "jwks", test, fuzzing))]
use super::key::{P256Point, check_kid};
#[cfg(any(feature = "jwks", test, fuzzing))]
use super::keys::KeySet;

/// Most keys taken from one remote document; the rest are ignored. A JWKS
/// in rotation holds two or three.
#[cfg(any(feature = "jwks", test, fuzzing))]
pub(crate) const MAX_KEYS: usize = 32;

/// One published key, members in the order RFC 7517's examples use.
#[derive(serde::Serialize)]
struct JwkOut<'a> {
    kty: &'static str,
    crv: &'static str,
    x: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    y: Option<String>,
    kid: &'a str,
    alg: &'static str,
    #[serde(rename = "use")]
    use_: &'static str,
}

#[derive(serde::Serialize)]
struct JwksOut<'a> {
    keys: Vec<JwkOut<'a>>,
}

/// The JWKS document of the public halves among `keys`, or `None` when there
/// is none (HS256 secrets are never written).
pub(crate) fn write_jwks<'a>(keys: impl Iterator<Item = &'a Key>) -> Option<Bytes> {
    let keys: Vec<JwkOut<'a>> = keys
        .filter_map(|key| {
            let (kty, crv, x, y) = match &key.material {
                Material::Hs256(_) => return None,
                Material::Ed25519 { public, .. } => {
                    ("OKP", "Ed25519", URL_SAFE_NO_PAD.encode(public), None)
                }
                Material::Es256 { public, .. } => (
                    "EC",
                    "P-256",
                    URL_SAFE_NO_PAD.encode(&public[1..33]),
                    Some(URL_SAFE_NO_PAD.encode(&public[33..])),
                ),
            };
            Some(JwkOut {
                kty,
                crv,
                x,
                y,
                kid: &key.kid,
                alg: key.algorithm().as_str(),
                use_: "sig",
            })
        })
        .collect();
    if keys.is_empty() {
        return None;
    }
    // Serialising strings and static names cannot fail.
    serde_json::to_vec(&JwksOut { keys }).ok().map(Bytes::from)
}

/// Why a remote document gave no keys.
#[cfg(any(feature = "jwks", test, fuzzing))]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ParseError {
    /// Not a JSON object with a `keys` array.
    NotJwks,
    /// A JWK Set, but no EdDSA or ES256 verification key in it.
    NoUsableKeys,
}

#[cfg(any(feature = "jwks", test, fuzzing))]
#[derive(Deserialize)]
struct Document {
    keys: Vec<serde_json::Value>,
}

/// The members of a JWK that decide whether we take it. Unknown members are
/// ignored (RFC 7517 §4).
#[cfg(any(feature = "jwks", test, fuzzing))]
#[derive(Deserialize)]
struct RawJwk<'a> {
    #[serde(borrow)]
    kty: &'a str,
    #[serde(borrow, default)]
    crv: Option<&'a str>,
    #[serde(borrow, default)]
    x: Option<&'a str>,
    #[serde(borrow, default)]
    y: Option<&'a str>,
    #[serde(borrow, default)]
    kid: Option<&'a str>,
    #[serde(borrow, default)]
    alg: Option<&'a str>,
    #[serde(borrow, default, rename = "use")]
    use_: Option<&'a str>,
    #[serde(borrow, default)]
    key_ops: Option<Vec<&'a str>>,
    /// A private key member: a key published with it is refused.
    #[serde(default)]
    d: Option<IgnoredAny>,
}

/// The verification keys of a remote JWKS document: Ed25519 (`OKP`) keys
/// for EdDSA and P-256 (`EC`) keys for ES256, each with a valid `kid`
/// (the first of a repeated `kid` wins), at most [`MAX_KEYS`]. Skipped
/// without failing the document: other key types (RSA, `oct`) and curves,
/// an `alg` other than the curve's, `use` other than `sig`, `key_ops`
/// without `verify`, keys that carry a private member (`d`), and malformed
/// members.
#[cfg(any(feature = "jwks", test, fuzzing))]
pub(crate) fn parse_jwks(bytes: &[u8]) -> Result<KeySet, ParseError> {
    let doc: Document = serde_json::from_slice(bytes).map_err(|_| ParseError::NotJwks)?;
    let mut keys: Vec<Key> = Vec::new();
    for value in &doc.keys {
        if keys.len() == MAX_KEYS {
            tracing::debug!(target: "tower_otp", max = MAX_KEYS, "JWKS: keys beyond the limit ignored");
            break;
        }
        let Ok(raw) = RawJwk::deserialize(value) else {
            continue;
        };
        match accept(&raw) {
            Ok(key) if keys.iter().any(|k| k.kid == key.kid) => {
                tracing::debug!(target: "tower_otp", kid = key.kid, "JWKS: repeated kid ignored");
            }
            Ok(key) => keys.push(key),
            Err(why) => {
                tracing::debug!(target: "tower_otp", kid = raw.kid, kty = raw.kty, why, "JWKS: key ignored");
            }
        }
    }
    if keys.is_empty() {
        return Err(ParseError::NoUsableKeys);
    }
    Ok(KeySet::from_keys(keys))
}

#[cfg(any(feature = "jwks", test, fuzzing))]
fn accept(raw: &RawJwk<'_>) -> Result<Key, &'static str> {
    if raw.use_.is_some_and(|u| u != "sig") {
        return Err("use is not sig");
    }
    if raw
        .key_ops
        .as_ref()
        .is_some_and(|ops| !ops.contains(&"verify"))
    {
        return Err("key_ops without verify");
    }
    if raw.d.is_some() {
        // A published private key can sign for anyone: refuse it loudly.
        tracing::warn!(target: "tower_otp", kid = raw.kid, "JWKS publishes a private key; key ignored");
        return Err("private key published");
    }
    let kid = raw.kid.ok_or("no kid")?;
    check_kid(kid).map_err(|_| "unusable kid")?;
    let coordinate = |c: Option<&str>| -> Result<[u8; 32], &'static str> {
        let mut out = [0u8; 33];
        match URL_SAFE_NO_PAD.decode_slice(c.ok_or("missing coordinate")?, &mut out) {
            Ok(32) => Ok(out[..32].try_into().unwrap_or_default()),
            _ => Err("coordinate is not 32 bytes of base64url"),
        }
    };
    let material = match (raw.kty, raw.crv, raw.alg) {
        ("OKP", Some("Ed25519"), None | Some("EdDSA")) => Material::Ed25519 {
            public: coordinate(raw.x)?,
            private: None,
        },
        ("EC", Some("P-256"), None | Some("ES256")) => {
            let mut point: P256Point = [0x04; 65];
            point[1..33].copy_from_slice(&coordinate(raw.x)?);
            point[33..].copy_from_slice(&coordinate(raw.y)?);
            Material::Es256 {
                public: Box::new(point),
                private: None,
            }
        }
        _ => return Err("not an EdDSA or ES256 key"),
    };
    Key::new(kid.to_owned(), material).map_err(|_| "unusable kid")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::jwt::{Algorithm, JwtKeys, SigningKey};

    fn published() -> (JwtKeys, Bytes) {
        let keys = JwtKeys::generate_ed25519("ed")
            .unwrap()
            .with_next_key(SigningKey::generate("ec", Algorithm::ES256).unwrap())
            .unwrap();
        let doc = keys.jwks_json().unwrap();
        (keys, doc)
    }

    #[test]
    fn our_document_has_the_rfc_members_and_parses_back() {
        let (keys, doc) = published();
        let value: serde_json::Value = serde_json::from_slice(&doc).unwrap();
        let ed = &value["keys"][0];
        assert_eq!(
            (ed["kty"].as_str(), ed["crv"].as_str(), ed["alg"].as_str()),
            (Some("OKP"), Some("Ed25519"), Some("EdDSA"))
        );
        assert_eq!(
            (ed["kid"].as_str(), ed["use"].as_str()),
            (Some("ed"), Some("sig"))
        );
        assert_eq!(ed["x"].as_str().unwrap().len(), 43);
        assert!(ed.get("y").is_none());
        let ec = &value["keys"][1];
        assert_eq!(
            (ec["kty"].as_str(), ec["crv"].as_str(), ec["alg"].as_str()),
            (Some("EC"), Some("P-256"), Some("ES256"))
        );
        assert_eq!(ec["y"].as_str().unwrap().len(), 43);
        let parsed = parse_jwks(&doc).unwrap();
        let publics: Vec<Key> = keys.set().iter().filter_map(Key::public_only).collect();
        assert!(parsed.same_public_keys(&KeySet::from_keys(publics)));
        assert!(parsed.iter().all(|k| !k.can_sign()));
    }

    #[test]
    fn takes_only_eddsa_and_es256_verification_keys() {
        let (_, doc) = published();
        let value: serde_json::Value = serde_json::from_slice(&doc).unwrap();
        let ed = value["keys"][0].clone();
        let with = |patch: serde_json::Value| {
            let mut key = ed.clone();
            key.as_object_mut()
                .unwrap()
                .extend(patch.as_object().unwrap().clone());
            key
        };
        let x = ed["x"].clone();
        let skipped = [
            json!({"kty": "RSA", "n": "AQAB", "e": "AQAB", "kid": "rsa", "alg": "RS256"}),
            json!({"kty": "oct", "k": "c2VjcmV0", "kid": "oct", "alg": "HS256"}),
            with(json!({"kid": "a1", "alg": "ES256"})),
            with(json!({"kid": "a2", "alg": "HS256"})),
            with(json!({"kid": "a3", "alg": "none"})),
            with(json!({"kid": "u", "use": "enc"})),
            with(json!({"kid": "o", "key_ops": ["sign"]})),
            with(json!({"kid": "d", "d": x})),
            with(json!({"kid": "c", "crv": "Ed448"})),
            with(json!({"kid": "short", "x": "AAAA"})),
            with(json!({"kid": "pad", "x": format!("{}=", x.as_str().unwrap())})),
            with(json!({"kid": "num", "x": 7})),
            with(json!({"kid": "q\"uote"})),
            with(json!({"kid": null})),
            json!({"kty": "EC", "crv": "P-256", "x": x, "kid": "no-y"}),
            json!("not an object"),
        ];
        for key in &skipped {
            let doc = json!({ "keys": [key] }).to_string();
            assert_eq!(
                parse_jwks(doc.as_bytes()).map(|s| s.len()),
                Err(ParseError::NoUsableKeys),
                "{key}"
            );
        }
        // Beside a good key they change nothing; missing alg/use are fine,
        // unknown members are ignored, a repeated kid keeps the first.
        let mut all = skipped.to_vec();
        all.push(with(
            json!({"kid": "plain", "alg": null, "use": null, "x5t": "…"}),
        ));
        all.push(with(json!({"kid": "ops", "key_ops": ["verify"]})));
        all.push(with(json!({"kid": "plain", "x": value["keys"][1]["x"]})));
        let parsed = parse_jwks(json!({ "keys": all }).to_string().as_bytes()).unwrap();
        let kids: Vec<&str> = parsed.iter().map(|k| k.kid.as_str()).collect();
        assert_eq!(kids, ["plain", "ops"]);
        let Material::Ed25519 { public, .. } = parsed.by_kid("plain").unwrap().material else {
            panic!("plain is an Ed25519 key");
        };
        assert_eq!(URL_SAFE_NO_PAD.encode(public), x.as_str().unwrap());
    }

    #[test]
    fn refuses_what_is_no_jwk_set_and_bounds_the_keys() {
        for bad in [
            &b""[..],
            b"[]",
            b"{}",
            b"{\"keys\":{}}",
            b"\xff",
            b"{\"keys\":[]",
        ] {
            assert_eq!(
                parse_jwks(bad).map(|_| ()),
                Err(ParseError::NotJwks),
                "{bad:?}"
            );
        }
        assert_eq!(
            parse_jwks(b"{\"keys\":[]}").map(|_| ()),
            Err(ParseError::NoUsableKeys)
        );
        let (_, doc) = published();
        let value: serde_json::Value = serde_json::from_slice(&doc).unwrap();
        let many: Vec<serde_json::Value> = (0..MAX_KEYS + 5)
            .map(|i| {
                let mut k = value["keys"][0].clone();
                k["kid"] = json!(format!("k{i}"));
                k
            })
            .collect();
        let parsed = parse_jwks(json!({ "keys": many }).to_string().as_bytes()).unwrap();
        assert_eq!(parsed.len(), MAX_KEYS);
    }
}
