//! Verified-token cache for [`JwtLayer`](super::JwtLayer).
//!
//! A client sends the same access token on every request until it expires,
//! and verifying it (base64, HMAC, two JSON parses) costs several times what
//! the rest of an API's hardening stack does. So the layer remembers the
//! tokens it verified: a direct-mapped table of `capacity` slots, each holding
//! one token and its parsed claims. A token that collides with another just
//! replaces it, so memory is bounded with no eviction bookkeeping.
//!
//! Safety of a hit rests on three things:
//! - The whole presented token is compared with the cached one, in constant
//!   time: equal bytes were verified by the same keys, which never change for
//!   the life of a layer.
//! - The slot comes from a randomly keyed hash, so a client cannot aim its
//!   token at the slot of someone else's.
//! - The time checks (`exp`, `nbf`, `iat`) run again on every request, and
//!   the revocation check is never cached.

use std::hash::{BuildHasher, RandomState};
use std::sync::RwLock;

use super::layer::Claims;

/// The signature segment (43 base64url characters for HS256) identifies a
/// token on its own; hashing only the tail keeps the slot lookup short.
const HASHED_SUFFIX: usize = 43;

struct Slot<C> {
    token: Box<[u8]>,
    claims: Claims<C>,
}

pub(crate) struct TokenCache<C> {
    slots: Box<[RwLock<Option<Slot<C>>>]>,
    hasher: RandomState,
    mask: usize,
}

impl<C> TokenCache<C> {
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

    fn slot(&self, token: &[u8]) -> &RwLock<Option<Slot<C>>> {
        let tail = &token[token.len().saturating_sub(HASHED_SUFFIX)..];
        // Truncation is the point: the low bits pick the slot.
        #[allow(clippy::cast_possible_truncation)]
        let index = self.hasher.hash_one(tail) as usize & self.mask;
        &self.slots[index]
    }

    /// The claims of `token` if it was verified before and is still cached.
    /// Takes the raw bytes: a hit needs no character check, since only
    /// tokens that passed every check are ever cached.
    pub(crate) fn get(&self, token: &[u8]) -> Option<Claims<C>> {
        let slot = self.slot(token).read().unwrap_or_else(|e| e.into_inner());
        let cached = slot.as_ref()?;
        constant_time_eq(&cached.token, token).then(|| cached.claims.clone())
    }

    /// Remembers that `token` verified to `claims`.
    pub(crate) fn insert(&self, token: &[u8], claims: &Claims<C>) {
        let mut slot = self.slot(token).write().unwrap_or_else(|e| e.into_inner());
        *slot = Some(Slot {
            token: token.into(),
            claims: claims.clone(),
        });
    }

    /// Forgets `token` (it no longer passes the time checks).
    pub(crate) fn remove(&self, token: &[u8]) {
        let mut slot = self.slot(token).write().unwrap_or_else(|e| e.into_inner());
        if slot
            .as_ref()
            .is_some_and(|s| constant_time_eq(&s.token, token))
        {
            *slot = None;
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
    use crate::jwt::RegisteredClaims;

    fn claims(sub: &str) -> Claims<()> {
        Claims::new(
            (),
            RegisteredClaims {
                sub: Some(sub.into()),
                ..RegisteredClaims::default()
            },
        )
    }

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
    fn hit_only_for_the_same_token() {
        let cache = TokenCache::new(64);
        let token = "aaaa.bbbb.signature-of-token-one";
        assert!(cache.get(token.as_bytes()).is_none());
        cache.insert(token.as_bytes(), &claims("one"));
        let hit = cache.get(token.as_bytes()).unwrap();
        assert_eq!(hit.registered().sub.as_deref(), Some("one"));
        // Same slot or not, a different token never reads another's claims.
        assert!(cache.get(b"aaaa.bbbb.signature-of-token-two").is_none());
        assert!(cache.get(b"aaaa.bbbc.signature-of-token-one").is_none());
    }

    #[test]
    fn memory_is_bounded_by_the_slot_count() {
        let cache = TokenCache::new(3);
        assert_eq!(cache.capacity(), 4);
        for i in 0..1_000 {
            cache.insert(format!("t.{i}.sig{i}").as_bytes(), &claims("x"));
        }
        let live = cache
            .slots
            .iter()
            .filter(|s| s.read().unwrap().is_some())
            .count();
        assert!(live <= 4);
        // The last token inserted is always found.
        assert!(cache.get(b"t.999.sig999").is_some());
    }

    #[test]
    fn remove_forgets_only_that_token() {
        let cache = TokenCache::new(1);
        cache.insert(b"a.b.one", &claims("one"));
        cache.remove(b"a.b.two");
        assert!(cache.get(b"a.b.one").is_some());
        cache.remove(b"a.b.one");
        assert!(cache.get(b"a.b.one").is_none());
    }
}
