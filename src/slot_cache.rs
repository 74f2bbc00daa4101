//! A bounded, direct-mapped cache of verified credentials.
//!
//! Serves [`JwtLayer`](crate::jwt::JwtLayer) (key: the presented token,
//! value: its claims) and the API-key cache (key: SHA-256 of the presented
//! key, value: the identity). Verifying a credential costs several times what
//! finding it here does, and a client presents the same one request after
//! request.
//!
//! `capacity` slots, each holding one key and its value; a key that lands on
//! a taken slot replaces the one there, so memory is bounded with no eviction
//! bookkeeping. A hit is safe because:
//! - the whole presented key is compared with the cached one, in constant
//!   time;
//! - the slot comes from a randomly keyed hash, so a client cannot aim its
//!   credential at the slot of someone else's;
//! - callers re-check whatever can change (time limits, revocation) on every
//!   hit.

use std::hash::{BuildHasher, Hasher, RandomState};
use std::sync::RwLock;

/// Only the last 16 bytes are hashed: of a digest, or of a JWT's signature
/// segment (base64url of an HMAC: 96 random bits), enough to spread keys over
/// the slots on their own. The last 43 bytes with a length prefix cost 308
/// instructions per cached request, 16 bytes 174
/// (`bench/http_instructions.sh`, `stack`).
const HASHED_SUFFIX: usize = 16;

struct Slot<V> {
    key: Box<[u8]>,
    value: V,
}

pub(crate) struct SlotCache<V> {
    slots: Box<[RwLock<Option<Slot<V>>>]>,
    hasher: RandomState,
    mask: usize,
}

impl<V: Clone> SlotCache<V> {
    /// A cache of `capacity` slots (rounded up to a power of two, at least 1).
    pub(crate) fn new(capacity: usize) -> Self {
        let slots = capacity.max(1).next_power_of_two();
        Self {
            slots: (0..slots).map(|_| RwLock::new(None)).collect(),
            hasher: RandomState::new(),
            mask: slots - 1,
        }
    }

    pub(crate) fn capacity(&self) -> usize {
        self.slots.len()
    }

    fn slot(&self, key: &[u8]) -> &RwLock<Option<Slot<V>>> {
        let tail = &key[key.len().saturating_sub(HASHED_SUFFIX)..];
        // One `write`, no length prefix (`hash_one` of a slice adds one):
        // the slot depends on the bytes alone.
        let mut h = self.hasher.build_hasher();
        h.write(tail);
        // Truncation is the point: the low bits pick the slot.
        #[allow(clippy::cast_possible_truncation)]
        let index = h.finish() as usize & self.mask;
        &self.slots[index]
    }

    /// The value cached under `key`, if any.
    pub(crate) fn get(&self, key: &[u8]) -> Option<V> {
        let slot = self.slot(key).read().unwrap_or_else(|e| e.into_inner());
        let cached = slot.as_ref()?;
        constant_time_eq(&cached.key, key).then(|| cached.value.clone())
    }

    /// Caches `value` under `key`, replacing whatever held its slot.
    pub(crate) fn insert(&self, key: &[u8], value: V) {
        let mut slot = self.slot(key).write().unwrap_or_else(|e| e.into_inner());
        *slot = Some(Slot {
            key: key.into(),
            value,
        });
    }

    /// Forgets `key`.
    pub(crate) fn remove(&self, key: &[u8]) {
        let mut slot = self.slot(key).write().unwrap_or_else(|e| e.into_inner());
        if slot.as_ref().is_some_and(|s| constant_time_eq(&s.key, key)) {
            *slot = None;
        }
    }

    /// Forgets every entry whose value fails `keep` (a scan of all slots:
    /// for rare administrative changes such as revoking an API key).
    pub(crate) fn retain(&self, keep: impl Fn(&V) -> bool) {
        for slot in &self.slots {
            let mut slot = slot.write().unwrap_or_else(|e| e.into_inner());
            if slot.as_ref().is_some_and(|s| !keep(&s.value)) {
                *slot = None;
            }
        }
    }
}

/// Compares two byte strings in time that depends only on their lengths.
///
/// Word at a time: `subtle`'s slice comparison puts an optimisation barrier
/// on every byte, which for a 200-byte token costs more than the HMAC it
/// saves. The OR-accumulator has no data-dependent branch, and the final
/// test goes through `subtle` so the compiler cannot turn the loop into an
/// early exit.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;

    if a.len() != b.len() {
        return false;
    }
    let (a_words, a_rest) = a.as_chunks::<8>();
    let (b_words, b_rest) = b.as_chunks::<8>();
    let mut diff = 0u64;
    for (x, y) in a_words.iter().zip(b_words) {
        diff |= u64::from_ne_bytes(*x) ^ u64::from_ne_bytes(*y);
    }
    for (x, y) in a_rest.iter().zip(b_rest) {
        diff |= u64::from(x ^ y);
    }
    diff.ct_eq(&0).into()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn constant_time_eq_compares_every_byte() {
        let a = b"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl".to_vec();
        assert!(constant_time_eq(&a, &a.clone()));
        for i in 0..a.len() {
            let mut b = a.clone();
            b[i] ^= 1;
            assert!(!constant_time_eq(&a, &b), "difference at byte {i} missed");
        }
        assert!(!constant_time_eq(&a, &a[..a.len() - 1]));
        assert!(constant_time_eq(b"", b""));
    }

    #[test]
    fn hit_only_for_the_same_key() {
        let cache = SlotCache::new(64);
        let token = b"aaaa.bbbb.signature-of-token-one";
        assert!(cache.get(token).is_none());
        cache.insert(token, "one");
        assert_eq!(cache.get(token), Some("one"));
        // Same slot or not, a different key never reads another's value.
        assert!(cache.get(b"aaaa.bbbb.signature-of-token-two").is_none());
        assert!(cache.get(b"aaaa.bbbc.signature-of-token-one").is_none());
    }

    #[test]
    fn memory_is_bounded_by_the_slot_count() {
        let cache = SlotCache::new(3);
        assert_eq!(cache.capacity(), 4);
        for i in 0..1_000 {
            cache.insert(format!("t.{i}.sig{i}").as_bytes(), i);
        }
        let live = cache
            .slots
            .iter()
            .filter(|s| s.read().unwrap().is_some())
            .count();
        assert!(live <= 4);
        // The last key inserted is always found.
        assert_eq!(cache.get(b"t.999.sig999"), Some(999));
    }

    #[test]
    fn remove_and_retain_forget_only_what_they_name() {
        let cache = SlotCache::new(1);
        cache.insert(b"a.b.one", 1);
        cache.remove(b"a.b.two");
        assert_eq!(cache.get(b"a.b.one"), Some(1));
        cache.remove(b"a.b.one");
        assert!(cache.get(b"a.b.one").is_none());

        let cache = SlotCache::new(1024);
        for i in 0..10u8 {
            cache.insert(&[i; 32], i);
        }
        cache.retain(|v| v % 2 == 0);
        let kept = (0..10u8).filter(|&i| cache.get(&[i; 32]).is_some()).count();
        // Odd values all gone; even ones kept unless two shared a slot.
        assert!(
            (0..10u8)
                .filter(|i| i % 2 == 1)
                .all(|i| cache.get(&[i; 32]).is_none())
        );
        assert!(kept >= 4, "{kept}");
    }
}
