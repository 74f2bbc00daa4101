//! The verification pipeline of [`ApiKeys`], which the
//! [`ApiKeyLayer`](super::ApiKeyLayer) runs on every request: the cache,
//! else parse (format, prefix, checksum: no I/O), then one store lookup, a
//! constant-time comparison of the secret's hash with the current and the
//! previous (rotated, in grace) hash, expiry, and the throttled last-used
//! write. It is split in two so that the layer decides without allocating a
//! future when no I/O is needed: [`ApiKeys::precheck`] (synchronous) and
//! [`ApiKeys::complete`] (the store part).

use std::sync::atomic::Ordering;
use std::time::Duration;

use subtle::{Choice, ConstantTimeEq};

use super::cache::KeyCache;
use super::error::Rejection;
use super::format::{self, FormatError};
use super::identity::ApiKeyIdentity;
use super::manage::{ApiKeys, LAST_USED_RETENTION};
use super::record::{KeyRecord, Previous, USED_SUFFIX, encode_used, secret_hash};
use crate::store::ApiKeyStore;

/// The outcome of the synchronous part of verification.
pub(crate) enum Precheck {
    /// Refused without I/O.
    Refused(Rejection),
    /// Verified from the cache; nothing left to do.
    Verified(ApiKeyIdentity),
    /// Store I/O is needed.
    Pending(Pending),
}

/// The asynchronous remainder of a verification (owns what it needs).
pub(crate) struct Pending {
    now_us: u64,
    step: Step,
}

enum Step {
    /// Read and check the record.
    Lookup {
        id: String,
        secret: String,
        cache_key: Option<[u8; 32]>,
    },
    /// Verified from the cache; write the last-used time, then done.
    Touch {
        identity: ApiKeyIdentity,
        expires_at_us: Option<u64>,
    },
}

impl Pending {
    /// The key id being verified.
    pub(crate) fn key_id(&self) -> &str {
        match &self.step {
            Step::Lookup { id, .. } => id,
            Step::Touch { identity, .. } => identity.key_id(),
        }
    }
}

impl<S: ApiKeyStore> ApiKeys<S> {
    /// Verifies a presented key: the cache, else format and checksum (no
    /// I/O), then one store lookup with a constant-time hash comparison.
    pub async fn verify(&self, presented: &str) -> Result<ApiKeyIdentity, Rejection> {
        match self.precheck(presented) {
            Precheck::Refused(r) => Err(r),
            Precheck::Verified(identity) => Ok(identity),
            Precheck::Pending(pending) => self.complete(pending).await,
        }
    }

    /// The part of verification that needs no I/O.
    pub(crate) fn precheck(&self, presented: &str) -> Precheck {
        // A hot key is found by the hash of the exact string that was
        // verified before, so the cache is asked first; the format and
        // checksum are checked before anything reaches the store.
        if presented.len() > format::MAX_KEY_LEN {
            return Precheck::Refused(Rejection::Malformed(FormatError::TooLong));
        }
        let now_us = self.now_us();
        let cache_key = self.inner.cache.enabled().then(|| KeyCache::key(presented));
        if let Some(hit) = cache_key.and_then(|k| self.inner.cache.get(&k, now_us)) {
            if !self.inner.usage.due(&hit.used, now_us) {
                return Precheck::Verified(hit.identity);
            }
            return Precheck::Pending(Pending {
                now_us,
                step: Step::Touch {
                    identity: hit.identity,
                    expires_at_us: hit.expires_at_us,
                },
            });
        }
        let parsed = match format::parse(presented) {
            Ok(parsed) => parsed,
            Err(e) => return Precheck::Refused(Rejection::Malformed(e)),
        };
        if parsed.prefix() != self.inner.prefix.as_str() {
            return Precheck::Refused(Rejection::WrongPrefix);
        }
        Precheck::Pending(Pending {
            now_us,
            step: Step::Lookup {
                id: parsed.id().to_owned(),
                secret: parsed.secret().to_owned(),
                cache_key,
            },
        })
    }

    /// The part of verification that needs the store.
    pub(crate) async fn complete(&self, pending: Pending) -> Result<ApiKeyIdentity, Rejection> {
        let now_us = pending.now_us;
        let (id, secret, cache_key) = match pending.step {
            Step::Touch {
                identity,
                expires_at_us,
            } => {
                self.touch(identity.key_id(), now_us, expires_at_us).await;
                return Ok(identity);
            }
            Step::Lookup {
                id,
                secret,
                cache_key,
            } => (id, secret, cache_key),
        };
        // Read before the record: a revoke or rotate from here on bumps it.
        let generation = self.inner.generation.load(Ordering::SeqCst);
        let bytes = self
            .inner
            .store
            .get_api_key(&id)
            .await
            .map_err(Rejection::Store)?
            .ok_or(Rejection::Unknown)?;
        let record = KeyRecord::decode(&bytes).map_err(Rejection::Store)?;
        let presented = secret_hash(&secret);
        let current = presented.ct_eq(&record.hash);
        let previous = record.live_previous(now_us);
        let old = previous.map_or(Choice::from(0), |p: &Previous| presented.ct_eq(&p.hash));
        if !bool::from(current | old) || record.id != id {
            return Err(Rejection::Mismatch);
        }
        if record.is_expired(now_us) {
            return Err(Rejection::Expired);
        }
        let valid_until_us = match previous {
            Some(p) if !bool::from(current) => Some(
                record
                    .expires_at_us
                    .map_or(p.until_us, |exp| exp.min(p.until_us)),
            ),
            _ => record.expires_at_us,
        };
        let identity = record.identity();
        let used = self.inner.usage.slot(&id);
        let due = self.inner.usage.due(&used, now_us);
        if let Some(key) = cache_key {
            self.inner.cache.insert(
                key,
                identity.clone(),
                valid_until_us,
                record.expires_at_us,
                used,
                now_us,
            );
            // Checked after the insert, so it cannot slip between a check
            // and the insert: a revoke or rotate that bumped the generation
            // before this load finds the entry removed here; one that bumps
            // it later invalidates the entry itself.
            if self.inner.generation.load(Ordering::SeqCst) != generation {
                self.inner.cache.remove(&key);
            }
        }
        if due {
            self.touch(&id, now_us, record.expires_at_us).await;
        }
        Ok(identity)
    }

    /// Writes key `id`'s last-used time (best effort: a failure is logged).
    ///
    /// The entry expires with the key (at least 1 s from now) and at most
    /// [`LAST_USED_RETENTION`] from now. A write may land after the key was
    /// revoked (by this or another instance) and its entry deleted, so the
    /// record is read afterwards and the entry removed if the key is gone:
    /// with the revoke deleting the record before the entry, one of the two
    /// always removes it.
    async fn touch(&self, id: &str, now_us: u64, expires_at_us: Option<u64>) {
        let retention = u64::try_from(LAST_USED_RETENTION.as_micros()).unwrap_or(u64::MAX);
        let left_us = expires_at_us.map_or(retention, |exp| {
            exp.saturating_sub(now_us).clamp(1_000_000, retention)
        });
        let entry = format!("{id}{USED_SUFFIX}");
        let store = &self.inner.store;
        let written = store
            .put_api_key(
                &entry,
                &encode_used(now_us),
                Some(Duration::from_micros(left_us)),
            )
            .await;
        let cleaned = match written {
            Ok(()) => match store.get_api_key(id).await {
                Ok(Some(_)) => Ok(()),
                Ok(None) => store.delete_api_key(&entry).await.map(drop),
                Err(err) => Err(err),
            },
            Err(err) => {
                tracing::warn!(target: "tower_otp", key_id = id, error = %err, "could not record API key last-used time");
                return;
            }
        };
        if let Err(err) = cleaned {
            tracing::warn!(target: "tower_otp", key_id = id, error = %err, "could not check the API key after recording its last-used time; the entry expires by itself");
        }
    }
}

#[cfg(all(test, feature = "moka"))]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::api_key::manage::tests::{in_, keys};
    use crate::api_key::{ApiKeyError, KeyPrefix};
    use crate::clock::{Clock, ManualClock};
    use crate::store::MemoryStore;

    #[tokio::test]
    async fn issued_key_verifies_and_carries_its_identity() {
        let clock = ManualClock::default();
        let k = keys(&clock);
        let issued = k
            .issue("acme", ["read", "write", "read"], "ci", None)
            .await
            .unwrap();
        assert!(issued.key().starts_with("tok_"));
        let who = k.verify(issued.key()).await.unwrap();
        assert_eq!(who.key_id(), issued.key_id());
        assert_eq!(who.tenant(), "acme");
        assert_eq!(who.scopes(), ["read", "write"]);
        assert_eq!(who.name(), "ci");
        // Cached now; still the same answer.
        assert_eq!(k.verify(issued.key()).await.unwrap(), who);
    }

    #[tokio::test]
    async fn wrong_secret_prefix_and_unknown_id_are_refused() {
        let clock = ManualClock::default();
        let k = keys(&clock);
        let issued = k.issue("acme", ["read"], "ci", None).await.unwrap();
        // Same id, another (well-formed) secret.
        let forged = format::with_id(k.prefix(), issued.key_id());
        assert!(matches!(
            k.verify(forged.as_str()).await,
            Err(Rejection::Mismatch)
        ));
        // Another prefix.
        let other = format::generate(&KeyPrefix::new("sk").unwrap());
        assert!(matches!(
            k.verify(other.as_str()).await,
            Err(Rejection::WrongPrefix)
        ));
        // Never issued.
        let stranger = format::generate(k.prefix());
        assert!(matches!(
            k.verify(stranger.as_str()).await,
            Err(Rejection::Unknown)
        ));
        // Junk.
        assert!(matches!(
            k.verify("hello").await,
            Err(Rejection::Malformed(_))
        ));
    }

    #[tokio::test]
    async fn expiry_is_by_the_clock_even_when_cached() {
        let clock = ManualClock::default();
        let k = keys(&clock);
        let issued = k
            .issue("acme", ["read"], "ci", Some(in_(&clock, 60)))
            .await
            .unwrap();
        assert!(k.verify(issued.key()).await.is_ok());
        clock.advance(Duration::from_secs(59));
        // Cache entry from t=0 is stale (5 s TTL); a fresh lookup succeeds.
        assert!(k.verify(issued.key()).await.is_ok());
        clock.advance(Duration::from_secs(1));
        // Cached at t=59 with 5 s TTL, but the key expires at t=60.
        assert!(matches!(
            k.verify(issued.key()).await,
            Err(Rejection::Expired)
        ));
        assert!(k.list(None).await.unwrap().is_empty());
        assert!(matches!(
            k.rotate(issued.key_id(), Duration::ZERO).await,
            Err(ApiKeyError::NotFound)
        ));
    }

    #[tokio::test]
    async fn another_instance_sees_revocation_after_its_cache_ttl() {
        let clock = ManualClock::default();
        let store = MemoryStore::new();
        let build = || {
            ApiKeys::builder(store.clone())
                .clock(clock.clone())
                .cache_ttl(Duration::from_secs(5))
                .build()
                .unwrap()
        };
        let (a, b) = (build(), build());
        let issued = a.issue("acme", ["read"], "ci", None).await.unwrap();
        assert!(b.verify(issued.key()).await.is_ok());
        a.revoke(issued.key_id()).await.unwrap();
        // b still trusts its cache for up to the TTL...
        clock.advance(Duration::from_secs(4));
        assert!(b.verify(issued.key()).await.is_ok());
        // ...and not a moment longer.
        clock.advance(Duration::from_secs(1));
        assert!(matches!(
            b.verify(issued.key()).await,
            Err(Rejection::Unknown)
        ));
    }

    #[tokio::test]
    async fn last_used_is_written_at_most_once_per_interval() {
        let clock = ManualClock::default();
        let k = ApiKeys::builder(MemoryStore::new())
            .clock(clock.clone())
            .last_used_interval(Duration::from_secs(60))
            .build()
            .unwrap();
        let issued = k.issue("acme", ["read"], "ci", None).await.unwrap();
        assert_eq!(
            k.get(issued.key_id()).await.unwrap().unwrap().last_used,
            None
        );
        let t0 = clock.now();
        k.verify(issued.key()).await.unwrap();
        assert_eq!(
            k.get(issued.key_id()).await.unwrap().unwrap().last_used,
            Some(t0)
        );
        clock.advance(Duration::from_secs(30));
        k.verify(issued.key()).await.unwrap();
        assert_eq!(
            k.get(issued.key_id()).await.unwrap().unwrap().last_used,
            Some(t0)
        );
        clock.advance(Duration::from_secs(30));
        let t60 = clock.now();
        k.verify(issued.key()).await.unwrap();
        assert_eq!(
            k.get(issued.key_id()).await.unwrap().unwrap().last_used,
            Some(t60)
        );
        // The listing shows it too, and the companion entry is not a key.
        let listed = k.list(None).await.unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].last_used, Some(t60));
    }

    #[tokio::test]
    async fn corrupt_record_fails_closed() {
        let clock = ManualClock::default();
        let k = keys(&clock);
        let issued = k.issue("acme", ["read"], "ci", None).await.unwrap();
        k.store()
            .put_api_key(issued.key_id(), b"garbage", None)
            .await
            .unwrap();
        assert!(matches!(
            k.verify(issued.key()).await,
            Err(Rejection::Store(_))
        ));
    }
}
