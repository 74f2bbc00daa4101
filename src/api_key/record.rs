//! The stored record of one key (JSON, opaque to the store) and the
//! companion entry that holds its last-used time.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::identity::ApiKeyIdentity;
use crate::store::StoreError;

/// Record format version written by this crate.
const VERSION: u8 = 1;

/// Suffix of the store id of a key's last-used entry (`<id>.used`). Key ids
/// are base32 and never contain `.`, so these ids cannot collide with keys.
pub(crate) const USED_SUFFIX: &str = ".used";

/// One API key as stored: everything but the secret, which is only present
/// as a SHA-256 hash.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct KeyRecord {
    pub(crate) v: u8,
    pub(crate) id: String,
    pub(crate) tenant: String,
    pub(crate) scopes: Vec<String>,
    pub(crate) name: String,
    pub(crate) created_at_us: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) expires_at_us: Option<u64>,
    #[serde(with = "hex32")]
    pub(crate) hash: [u8; 32],
    /// The secret `hash` replaced at the last rotation, still accepted until
    /// `previous_until_us`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) previous: Option<Previous>,
}

/// The previous secret's hash and its grace deadline.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Previous {
    #[serde(with = "hex32")]
    pub(crate) hash: [u8; 32],
    pub(crate) until_us: u64,
}

impl fmt::Debug for KeyRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyRecord")
            .field("id", &self.id)
            .field("tenant", &self.tenant)
            .field("scopes", &self.scopes)
            .field("name", &self.name)
            .field("created_at_us", &self.created_at_us)
            .field("expires_at_us", &self.expires_at_us)
            .field("hash", &"<redacted>")
            .field(
                "previous_until_us",
                &self.previous.as_ref().map(|p| p.until_us),
            )
            .finish()
    }
}

impl KeyRecord {
    pub(crate) fn new(
        id: &str,
        tenant: String,
        scopes: Vec<String>,
        name: String,
        created_at_us: u64,
        expires_at_us: Option<u64>,
        secret: &str,
    ) -> Self {
        Self {
            v: VERSION,
            id: id.to_owned(),
            tenant,
            scopes,
            name,
            created_at_us,
            expires_at_us,
            hash: secret_hash(secret),
            previous: None,
        }
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<Self, StoreError> {
        let record: Self = serde_json::from_slice(bytes)
            .map_err(|e| StoreError::Corrupt(format!("API key record: {e}")))?;
        if record.v != VERSION {
            return Err(StoreError::Corrupt(format!(
                "API key record version {} (this build reads {VERSION})",
                record.v
            )));
        }
        Ok(record)
    }

    pub(crate) fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    pub(crate) fn identity(&self) -> ApiKeyIdentity {
        ApiKeyIdentity::new(
            self.id.clone(),
            self.tenant.clone(),
            self.scopes.clone(),
            self.name.clone(),
        )
    }

    pub(crate) fn is_expired(&self, now_us: u64) -> bool {
        self.expires_at_us.is_some_and(|exp| now_us >= exp)
    }

    /// The store TTL: until expiry, or none.
    pub(crate) fn ttl(&self, now_us: u64) -> Option<Duration> {
        self.expires_at_us
            .map(|exp| Duration::from_micros(exp.saturating_sub(now_us).max(1_000_000)))
    }

    /// The previous secret's grace deadline, if it is still running.
    pub(crate) fn live_previous(&self, now_us: u64) -> Option<&Previous> {
        self.previous.as_ref().filter(|p| now_us < p.until_us)
    }
}

/// SHA-256 of a key's secret part: the only form in which it is stored.
pub(crate) fn secret_hash(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

/// Encodes a last-used time for the companion entry.
pub(crate) fn encode_used(at_us: u64) -> Vec<u8> {
    at_us.to_string().into_bytes()
}

/// Decodes a companion entry; unreadable values count as "never".
pub(crate) fn decode_used(bytes: &[u8]) -> Option<u64> {
    std::str::from_utf8(bytes).ok()?.parse().ok()
}

/// Microseconds since the epoch back to a time.
pub(crate) fn time_from_us(us: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_micros(us)
}

mod hex32 {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    const HEX: &[u8; 16] = b"0123456789abcdef";

    pub(super) fn serialize<S: Serializer>(bytes: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
        let text: String = bytes
            .iter()
            .flat_map(|b| [HEX[usize::from(b >> 4)], HEX[usize::from(b & 15)]])
            .map(char::from)
            .collect();
        s.serialize_str(&text)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 32], D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        let nibble = |c: u8| match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            _ => None,
        };
        let raw = text.as_bytes();
        if raw.len() != 64 {
            return Err(D::Error::custom("hash must be 64 hex digits"));
        }
        let mut out = [0u8; 32];
        for (slot, pair) in out.iter_mut().zip(raw.chunks_exact(2)) {
            match (nibble(pair[0]), nibble(pair[1])) {
                (Some(hi), Some(lo)) => *slot = (hi << 4) | lo,
                _ => return Err(D::Error::custom("hash must be 64 hex digits")),
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn record() -> KeyRecord {
        let mut r = KeyRecord::new(
            "abcdefghijklmnop",
            "acme".into(),
            vec!["read".into(), "write".into()],
            "ci".into(),
            1_000,
            Some(5_000_000),
            "secret",
        );
        r.previous = Some(Previous {
            hash: secret_hash("old"),
            until_us: 2_000,
        });
        r
    }

    #[test]
    fn json_round_trip_keeps_only_the_hash() {
        let r = record();
        let bytes = r.encode();
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(!text.contains("\"secret\""), "{text}");
        assert!(text.contains("2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b"));
        assert_eq!(KeyRecord::decode(&bytes).unwrap(), r);
    }

    #[test]
    fn unreadable_records_are_corrupt() {
        for bad in [&b"{}"[..], b"not json", b"{\"v\":2}"] {
            assert!(matches!(
                KeyRecord::decode(bad),
                Err(StoreError::Corrupt(_))
            ));
        }
        let text = String::from_utf8(record().encode())
            .unwrap()
            .replace("2bb8", "2BB8");
        assert!(KeyRecord::decode(text.as_bytes()).is_err());
    }

    #[test]
    fn expiry_grace_and_ttl() {
        let r = record();
        assert!(!r.is_expired(4_999_999));
        assert!(r.is_expired(5_000_000));
        assert!(r.live_previous(1_999).is_some());
        assert!(r.live_previous(2_000).is_none());
        assert_eq!(r.ttl(1_000_000), Some(Duration::from_secs(4)));
        assert_eq!(r.ttl(4_999_999), Some(Duration::from_secs(1)));
    }

    #[test]
    fn used_entries_round_trip() {
        assert_eq!(decode_used(&encode_used(42)), Some(42));
        assert_eq!(decode_used(b"x"), None);
    }

    #[test]
    fn debug_redacts_hashes() {
        let shown = format!("{:?}", record());
        assert!(!shown.contains("[43, 184"), "{shown}");
        assert!(shown.contains("<redacted>"));
    }
}
