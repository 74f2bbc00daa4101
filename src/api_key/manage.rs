//! [`ApiKeys`]: issue, rotate, revoke and list keys over an [`ApiKeyStore`], and
//! the builder. Verification is in `verify.rs`.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use super::cache::{KeyCache, Usage};
use super::error::ApiKeyError;
use super::format::{self, KeyPrefix, KeyText};
use super::record::{KeyRecord, Previous, USED_SUFFIX, decode_used, secret_hash, time_from_us};
use crate::clock::{Clock, CoarseClock, unix_micros};
use crate::error::ConfigError;
use crate::store::ApiKeyStore;

/// The prefix used unless configured otherwise.
pub const DEFAULT_PREFIX: &str = "tok";
/// How long a verified key is cached unless configured otherwise.
pub const DEFAULT_CACHE_TTL: Duration = Duration::from_secs(5);
/// The longest cache TTL accepted: it bounds how long a revoked key keeps
/// working on *other* instances.
pub const MAX_CACHE_TTL: Duration = Duration::from_secs(60);
/// Most cached keys unless configured otherwise.
pub const DEFAULT_CACHE_CAPACITY: u64 = 10_000;
/// How often (at most) a key's last-used time is written, per instance,
/// unless configured otherwise.
pub const DEFAULT_LAST_USED_INTERVAL: Duration = Duration::from_secs(300);
/// How long a key's last-used record is kept after its last write (it is
/// rewritten while the key is used, and never outlives an expiring key).
/// [`KeyInfo::last_used`] is `None` for a key not used within this time.
/// It also bounds how long a last-used record can outlive its key when the
/// clean-up after a revocation fails (see [`ApiKeys`], *Last-used times*).
pub const LAST_USED_RETENTION: Duration = Duration::from_secs(90 * 24 * 3600);

const MAX_TENANT_LEN: usize = 128;
const MAX_NAME_LEN: usize = 128;
const MAX_SCOPES: usize = 64;
const MAX_SCOPE_LEN: usize = 64;

/// API keys over an [`ApiKeyStore`]: the management API and the verifier the
/// [`ApiKeyLayer`](super::ApiKeyLayer) uses. Cloning is cheap (one `Arc`);
/// clones share the cache.
///
/// ```
/// use std::time::Duration;
/// use tower_otp::api_key::ApiKeys;
/// use tower_otp::store::MemoryStore;
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let keys = ApiKeys::builder(MemoryStore::new()).prefix("sk_live").build()?;
/// let issued = keys.issue("acme", ["orders:read"], "CI pipeline", None).await?;
/// // Show `issued.key()` to the user once; only a hash of its secret is stored.
/// let who = keys.verify(issued.key()).await?;
/// assert_eq!(who.tenant(), "acme");
///
/// let rotated = keys.rotate(issued.key_id(), Duration::from_secs(3600)).await?;
/// assert!(keys.verify(rotated.key()).await.is_ok());
/// assert!(keys.verify(issued.key()).await.is_ok()); // for the next hour
///
/// keys.revoke(issued.key_id()).await?;
/// assert!(keys.verify(rotated.key()).await.is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
///
/// # Key format
///
/// `<prefix>_<id>_<secret><checksum>`, for example
/// `tok_3mkqz5yh2wfd7nxa_<43-char secret><6-char checksum>`:
///
/// | part | length | alphabet | content |
/// |---|---|---|---|
/// | prefix | 1–32 | `a-z 0-9 _` | configured, e.g. `tok`, `sk_live` |
/// | id | 16 | `a-z 2-7` (RFC 4648 base32, lowercase) | 80 random bits, the store key |
/// | secret | 43 | `0-9 A-Z a-z` (base62) | 43 uniform characters = 256.03 random bits |
/// | checksum | 6 | base62 | CRC-32 of `<prefix>_<id>_<secret>` |
///
/// The prefix is one or more segments of lowercase letters and digits joined
/// by single underscores, starting with a letter (`tok`, `sk_live`,
/// `acme2_test`). Neither the id nor the secret can contain `_`, so a key is
/// parsed from the right: the last `_` ends the id, the one before it ends the
/// prefix. Parsing is therefore unambiguous whatever the prefix.
///
/// The checksum is CRC-32 (IEEE 802.3) written as 6 base62 digits
/// (`62^6 > 2^32`). It is not a security measure — anyone can compute it —
/// but it lets a server refuse typos and junk *without a store round trip*:
///
/// * every change confined to 4 consecutive bytes (any single-character
///   substitution, any swap of adjacent characters) is detected with
///   certainty — CRC-32 detects every burst error of up to 32 bits;
/// * a random, well-shaped string passes with probability 2⁻³² ≈ 2.3 × 10⁻¹⁰
///   (and then costs one store lookup, which finds nothing).
///
/// The checksum digits must spell exactly the CRC, so the 6-digit field has
/// one valid value per key: no alternative spellings.
///
/// # Verification
///
/// [`verify`](Self::verify) first looks for SHA-256 of the presented key in
/// the in-process cache (a hit is the exact string verified moments ago).
/// Otherwise it checks the format, prefix and checksum — typos and junk are
/// refused without touching the store — then reads the record with ONE
/// store lookup and compares SHA-256 of the presented secret with the stored
/// hash in constant time.
///
/// # Security
///
/// * Only SHA-256 of each secret is stored. A 256-bit random secret needs no
///   slow password hash: it cannot be guessed from its hash.
/// * **Revocation** ([`revoke`](Self::revoke)) deletes the record and clears
///   this instance's cache at once; other instances keep accepting a key
///   they verified within the last cache TTL (default 5 s, at most
///   [`MAX_CACHE_TTL`]). Set the TTL to zero to make revocation immediate
///   everywhere at the cost of one store read per request.
/// * **Rotation** ([`rotate`](Self::rotate)) keeps the previous secret
///   working until the grace deadline, then refuses it; rotating again
///   replaces the previous secret at once (only one previous secret is kept).
/// * **Last-used times** are not written on every request: each instance
///   writes a key's last-used time at most once per
///   [`last_used_interval`](ApiKeysBuilder::last_used_interval) (default
///   5 minutes), into a companion entry `<id>.used` beside the record, so
///   `last_used` is accurate to that interval. The record itself is only
///   written by `issue` and `rotate`: rewriting it from the request path
///   could race with a concurrent revoke and bring a revoked key back.
///   The companion entry expires with the key, and at the latest
///   [`LAST_USED_RETENTION`] after its last write; `revoke` deletes it, and
///   a write that lands after a revocation (from any instance) is followed
///   by a read of the record and removed when the key is gone. Only if that
///   clean-up fails (store error, crash) does it linger, until its TTL.
/// * A verification that was reading the record when `revoke` or `rotate`
///   ran on this instance is not cached: the key is refused from the next
///   request on, with no cache-TTL window on the revoking instance.
/// * Concurrent management calls on the same key are last-writer-wins (the
///   store has no compare-and-set for records): do not rotate and revoke the
///   same key at the same instant.
/// * The key id is public (it is in the key); log it, never the key.
pub struct ApiKeys<S> {
    pub(super) inner: Arc<Inner<S>>,
}

/// What clones of one [`ApiKeys`] share (`verify.rs` reads it too).
pub(super) struct Inner<S> {
    pub(super) store: S,
    pub(super) prefix: KeyPrefix,
    clock: Arc<dyn Clock>,
    pub(super) cache: KeyCache,
    pub(super) usage: Usage,
    /// Bumped by every `revoke` and `rotate` after the store write: a
    /// verification that read the record under an older generation may hold
    /// a stale record and must not leave it in the cache.
    pub(super) generation: AtomicU64,
}

impl<S> Clone for ApiKeys<S> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<S: fmt::Debug> fmt::Debug for ApiKeys<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiKeys")
            .field("store", &self.inner.store)
            .field("prefix", &self.inner.prefix)
            .field("cache", &self.inner.cache)
            .finish_non_exhaustive()
    }
}

/// Builder for [`ApiKeys`].
#[must_use]
pub struct ApiKeysBuilder<S> {
    store: S,
    prefix: String,
    clock: Arc<dyn Clock>,
    cache_ttl: Duration,
    cache_capacity: u64,
    last_used_interval: Duration,
}

impl<S: fmt::Debug> fmt::Debug for ApiKeysBuilder<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiKeysBuilder")
            .field("store", &self.store)
            .field("prefix", &self.prefix)
            .field("clock", &self.clock)
            .field("cache_ttl", &self.cache_ttl)
            .field("cache_capacity", &self.cache_capacity)
            .field("last_used_interval", &self.last_used_interval)
            .finish()
    }
}

impl<S: ApiKeyStore> ApiKeysBuilder<S> {
    /// The key prefix (default `tok`): segments of `a-z`/`0-9` joined by
    /// single `_`, starting with a letter, at most 32 characters. Keys with
    /// another prefix are refused, so changing it retires existing keys.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// The time source (default [`CoarseClock`]: expiry, grace periods and
    /// cache lifetimes are seconds or longer, so a reading a timer tick late
    /// changes nothing).
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// How long a verified key is cached (default 5 s, at most 60 s; zero
    /// disables the cache).
    pub fn cache_ttl(mut self, ttl: Duration) -> Self {
        self.cache_ttl = ttl;
        self
    }

    /// Slots in the cache of verified keys (default 10 000, rounded up to a
    /// power of two; zero disables the cache). Each slot holds one key; a
    /// key landing on a taken slot replaces the one there.
    pub fn cache_capacity(mut self, n: u64) -> Self {
        self.cache_capacity = n;
        self
    }

    /// Least time between two writes of a key's last-used time from this
    /// instance (default 5 minutes, at least 1 s).
    pub fn last_used_interval(mut self, every: Duration) -> Self {
        self.last_used_interval = every;
        self
    }

    /// Checks the settings and builds.
    pub fn build(self) -> Result<ApiKeys<S>, ConfigError> {
        let prefix = KeyPrefix::new(&self.prefix)?;
        if self.cache_ttl > MAX_CACHE_TTL {
            return Err(ConfigError::new(
                "api key cache_ttl",
                "at most 60 s: it bounds how long a revoked key keeps working on other instances",
            ));
        }
        if self.last_used_interval < Duration::from_secs(1) {
            return Err(ConfigError::new(
                "api key last_used_interval",
                "at least 1 s (a write per request would make every request a store write)",
            ));
        }
        Ok(ApiKeys {
            inner: Arc::new(Inner {
                store: self.store,
                prefix,
                clock: self.clock,
                cache: KeyCache::new(self.cache_ttl, self.cache_capacity),
                usage: Usage::new(self.last_used_interval),
                generation: AtomicU64::new(0),
            }),
        })
    }
}

/// What is known about a key (never its secret or hash).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct KeyInfo {
    /// The key id.
    pub key_id: String,
    /// The tenant it belongs to.
    pub tenant: String,
    /// Its scopes.
    pub scopes: Vec<String>,
    /// Its human-readable name.
    pub name: String,
    /// When it was issued.
    pub created_at: SystemTime,
    /// When it expires, if ever.
    pub expires_at: Option<SystemTime>,
    /// Until when the secret replaced by the last rotation still works.
    pub previous_secret_until: Option<SystemTime>,
    /// When it was last used, to within the last-used interval; `None` if
    /// never, or not within [`LAST_USED_RETENTION`].
    pub last_used: Option<SystemTime>,
}

impl KeyInfo {
    fn new(record: &KeyRecord, last_used_us: Option<u64>, now_us: u64) -> Self {
        Self {
            key_id: record.id.clone(),
            tenant: record.tenant.clone(),
            scopes: record.scopes.clone(),
            name: record.name.clone(),
            created_at: time_from_us(record.created_at_us),
            expires_at: record.expires_at_us.map(time_from_us),
            previous_secret_until: record
                .live_previous(now_us)
                .map(|p| time_from_us(p.until_us)),
            last_used: last_used_us.map(time_from_us),
        }
    }
}

/// A newly issued or rotated key. The plaintext exists only here: show it
/// once, it cannot be recovered. `Debug` redacts it.
#[derive(Clone, Debug)]
pub struct IssuedKey {
    key: KeyText,
    info: KeyInfo,
}

impl IssuedKey {
    /// The full key, for the client.
    pub fn key(&self) -> &str {
        self.key.as_str()
    }

    /// The key id (public; use it to rotate, revoke and in logs).
    pub fn key_id(&self) -> &str {
        &self.info.key_id
    }

    /// What is stored about it.
    pub fn info(&self) -> &KeyInfo {
        &self.info
    }
}

impl<S: ApiKeyStore> ApiKeys<S> {
    /// Starts configuring keys over `store`.
    pub fn builder(store: S) -> ApiKeysBuilder<S> {
        ApiKeysBuilder {
            store,
            prefix: DEFAULT_PREFIX.to_owned(),
            clock: Arc::new(CoarseClock),
            cache_ttl: DEFAULT_CACHE_TTL,
            cache_capacity: DEFAULT_CACHE_CAPACITY,
            last_used_interval: DEFAULT_LAST_USED_INTERVAL,
        }
    }

    /// The configured prefix.
    pub fn prefix(&self) -> &KeyPrefix {
        &self.inner.prefix
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.inner.store
    }

    /// The current time by the configured clock.
    pub(crate) fn now(&self) -> SystemTime {
        self.inner.clock.now()
    }

    pub(super) fn now_us(&self) -> u64 {
        self.inner.clock.now_us()
    }

    /// Issues a key to `tenant` with `scopes`, a human-readable `name`, and
    /// an optional expiry. Returns the plaintext once.
    ///
    /// Tenant: 1–128 characters; name: at most 128; no control characters.
    /// Scopes: at most 64, each 1–64 printable ASCII characters without
    /// space, `"` or `\` (RFC 6749 scope tokens); duplicates are dropped.
    pub async fn issue(
        &self,
        tenant: impl Into<String>,
        scopes: impl IntoIterator<Item = impl Into<String>>,
        name: impl Into<String>,
        expires_at: Option<SystemTime>,
    ) -> Result<IssuedKey, ApiKeyError> {
        let (tenant, name) = (tenant.into(), name.into());
        check_text(
            &tenant,
            1,
            MAX_TENANT_LEN,
            "tenant must be 1-128 characters, no control characters",
        )?;
        check_text(
            &name,
            0,
            MAX_NAME_LEN,
            "name must be at most 128 characters, no control characters",
        )?;
        let mut list: Vec<String> = Vec::new();
        for scope in scopes {
            let scope = scope.into();
            if !valid_scope(&scope) {
                return Err(ApiKeyError::Invalid(
                    "scopes must be 1-64 printable ASCII characters without space, '\"' or '\\'",
                ));
            }
            if !list.contains(&scope) {
                list.push(scope);
            }
        }
        if list.len() > MAX_SCOPES {
            return Err(ApiKeyError::Invalid("at most 64 scopes"));
        }
        let now_us = self.now_us();
        let expires_at_us = expires_at.map(unix_micros);
        if expires_at_us.is_some_and(|exp| exp <= now_us) {
            return Err(ApiKeyError::Invalid("expires_at is not in the future"));
        }
        let key = format::generate(&self.inner.prefix);
        let record = KeyRecord::new(
            key.id(),
            tenant,
            list,
            name,
            now_us,
            expires_at_us,
            key.secret(),
        );
        self.inner
            .store
            .put_api_key(&record.id, &record.encode(), record.ttl(now_us))
            .await?;
        let info = KeyInfo::new(&record, None, now_us);
        Ok(IssuedKey { key, info })
    }

    /// Gives key `id` a new secret. The previous secret keeps working until
    /// `grace` from now (zero: refused at once), then not. Returns the new
    /// plaintext once.
    pub async fn rotate(&self, id: &str, grace: Duration) -> Result<IssuedKey, ApiKeyError> {
        let now_us = self.now_us();
        let mut record = self.load(id).await?.ok_or(ApiKeyError::NotFound)?;
        if record.is_expired(now_us) {
            return Err(ApiKeyError::NotFound);
        }
        let key = format::with_id(&self.inner.prefix, &record.id);
        let grace_us = u64::try_from(grace.as_micros()).unwrap_or(u64::MAX);
        record.previous = (grace_us > 0).then(|| Previous {
            hash: record.hash,
            until_us: now_us.saturating_add(grace_us),
        });
        record.hash = secret_hash(key.secret());
        self.inner
            .store
            .put_api_key(&record.id, &record.encode(), record.ttl(now_us))
            .await?;
        self.inner.generation.fetch_add(1, Ordering::SeqCst);
        self.inner.cache.invalidate(&record.id);
        let last_used = self.last_used(id).await?;
        let info = KeyInfo::new(&record, last_used, now_us);
        Ok(IssuedKey { key, info })
    }

    /// Revokes key `id` (deletes it). Refused at once on this instance, and
    /// on others within the cache TTL. Returns whether it existed.
    pub async fn revoke(&self, id: &str) -> Result<bool, ApiKeyError> {
        if !format::valid_id(id) {
            return Ok(false);
        }
        // Record first, then the generation, then the cache (see `complete`);
        // the last-used entry after the record (see `touch`).
        let existed = self.inner.store.delete_api_key(id).await;
        self.inner.generation.fetch_add(1, Ordering::SeqCst);
        self.inner.cache.invalidate(id);
        self.inner.usage.forget(id);
        let existed = existed?;
        self.inner
            .store
            .delete_api_key(&format!("{id}{USED_SUFFIX}"))
            .await?;
        Ok(existed)
    }

    /// What is known about key `id`, if it is live.
    pub async fn get(&self, id: &str) -> Result<Option<KeyInfo>, ApiKeyError> {
        let now_us = self.now_us();
        match self.load(id).await? {
            Some(record) if !record.is_expired(now_us) => {
                let last_used = self.last_used(id).await?;
                Ok(Some(KeyInfo::new(&record, last_used, now_us)))
            }
            _ => Ok(None),
        }
    }

    /// Every live key, of `tenant` only when given, oldest first.
    pub async fn list(&self, tenant: Option<&str>) -> Result<Vec<KeyInfo>, ApiKeyError> {
        let now_us = self.now_us();
        let entries = self.inner.store.list_api_keys().await?;
        let used: HashMap<&str, u64> = entries
            .iter()
            .filter_map(|(id, bytes)| Some((id.strip_suffix(USED_SUFFIX)?, decode_used(bytes)?)))
            .collect();
        let mut out: Vec<KeyInfo> = entries
            .iter()
            .filter(|(id, _)| format::valid_id(id))
            .filter_map(|(id, bytes)| match KeyRecord::decode(bytes) {
                Ok(record) => Some(record),
                Err(err) => {
                    tracing::warn!(target: "tower_otp", key_id = %id, error = %err, "skipping unreadable API key record");
                    None
                }
            })
            .filter(|r| tenant.is_none_or(|t| r.tenant == t) && !r.is_expired(now_us))
            .map(|r| KeyInfo::new(&r, used.get(r.id.as_str()).copied(), now_us))
            .collect();
        out.sort_by(|a, b| (a.created_at, &a.key_id).cmp(&(b.created_at, &b.key_id)));
        Ok(out)
    }

    async fn load(&self, id: &str) -> Result<Option<KeyRecord>, ApiKeyError> {
        if !format::valid_id(id) {
            return Ok(None);
        }
        match self.inner.store.get_api_key(id).await? {
            Some(bytes) => Ok(Some(KeyRecord::decode(&bytes)?)),
            None => Ok(None),
        }
    }

    async fn last_used(&self, id: &str) -> Result<Option<u64>, ApiKeyError> {
        let entry = format!("{id}{USED_SUFFIX}");
        Ok(self
            .inner
            .store
            .get_api_key(&entry)
            .await?
            .as_deref()
            .and_then(decode_used))
    }
}

fn check_text(s: &str, min: usize, max: usize, why: &'static str) -> Result<(), ApiKeyError> {
    let n = s.chars().count();
    if n < min || n > max || s.chars().any(char::is_control) {
        return Err(ApiKeyError::Invalid(why));
    }
    Ok(())
}

/// An RFC 6749 scope token of at most 64 characters.
pub(crate) fn valid_scope(s: &str) -> bool {
    (1..=MAX_SCOPE_LEN).contains(&s.len())
        && s.bytes()
            .all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b))
}

#[cfg(all(test, feature = "moka"))]
#[allow(clippy::unwrap_used)]
pub(super) mod tests {
    use super::*;
    use crate::api_key::Rejection;
    use crate::clock::ManualClock;
    use crate::store::MemoryStore;

    /// Keys over a fresh memory store, on `clock` (also for `verify.rs`).
    pub(in crate::api_key) fn keys(clock: &ManualClock) -> ApiKeys<MemoryStore> {
        ApiKeys::builder(MemoryStore::new())
            .clock(clock.clone())
            .build()
            .unwrap()
    }

    /// `secs` seconds after `clock`'s now.
    pub(in crate::api_key) fn in_(clock: &ManualClock, secs: u64) -> SystemTime {
        clock.now() + Duration::from_secs(secs)
    }

    #[tokio::test]
    async fn store_holds_only_the_hash() {
        let clock = ManualClock::default();
        let k = keys(&clock);
        let issued = k.issue("acme", ["read"], "ci", None).await.unwrap();
        let secret = format::parse(issued.key()).unwrap().secret().to_owned();
        for (_, bytes) in k.store().list_api_keys().await.unwrap() {
            let text = String::from_utf8(bytes).unwrap();
            assert!(!text.contains(&secret), "{text}");
            assert!(!text.contains(issued.key()));
        }
        assert!(!format!("{issued:?}").contains(&secret));
    }

    #[tokio::test]
    async fn rotation_keeps_the_old_secret_for_the_grace_period_only() {
        let clock = ManualClock::default();
        let k = keys(&clock);
        let old = k.issue("acme", ["read"], "ci", None).await.unwrap();
        assert!(k.verify(old.key()).await.is_ok()); // cached
        let new = k
            .rotate(old.key_id(), Duration::from_secs(30))
            .await
            .unwrap();
        assert_eq!(new.key_id(), old.key_id());
        assert_ne!(new.key(), old.key());
        assert_eq!(new.info().previous_secret_until, Some(in_(&clock, 30)));
        assert!(k.verify(new.key()).await.is_ok());
        clock.advance(Duration::from_secs(29));
        assert!(k.verify(old.key()).await.is_ok());
        clock.advance(Duration::from_secs(1));
        // Grace over: refused, though it was cached a moment ago.
        assert!(matches!(
            k.verify(old.key()).await,
            Err(Rejection::Mismatch)
        ));
        assert!(k.verify(new.key()).await.is_ok());

        // Zero grace: the old secret stops at once, even from the cache.
        let newer = k.rotate(old.key_id(), Duration::ZERO).await.unwrap();
        assert!(matches!(
            k.verify(new.key()).await,
            Err(Rejection::Mismatch)
        ));
        assert!(k.verify(newer.key()).await.is_ok());
    }

    #[tokio::test]
    async fn revocation_is_immediate_on_this_instance() {
        let clock = ManualClock::default();
        let k = keys(&clock);
        let issued = k.issue("acme", ["read"], "ci", None).await.unwrap();
        assert!(k.verify(issued.key()).await.is_ok()); // cached
        assert!(k.revoke(issued.key_id()).await.unwrap());
        assert!(matches!(
            k.verify(issued.key()).await,
            Err(Rejection::Unknown)
        ));
        assert!(!k.revoke(issued.key_id()).await.unwrap());
        assert!(!k.revoke("not an id").await.unwrap());
        assert!(matches!(
            k.rotate(issued.key_id(), Duration::ZERO).await,
            Err(ApiKeyError::NotFound)
        ));
    }

    #[tokio::test]
    async fn list_filters_by_tenant_and_orders_by_creation() {
        let clock = ManualClock::default();
        let k = keys(&clock);
        let a1 = k.issue("a", ["x"], "first", None).await.unwrap();
        clock.advance(Duration::from_secs(1));
        let _b = k.issue("b", ["x"], "other", None).await.unwrap();
        clock.advance(Duration::from_secs(1));
        let a2 = k.issue("a", ["x"], "second", None).await.unwrap();
        let only_a: Vec<String> = k
            .list(Some("a"))
            .await
            .unwrap()
            .into_iter()
            .map(|i| i.key_id)
            .collect();
        assert_eq!(only_a, [a1.key_id().to_owned(), a2.key_id().to_owned()]);
        assert_eq!(k.list(None).await.unwrap().len(), 3);
        assert!(k.list(Some("c")).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn bad_arguments_and_settings_are_refused() {
        let clock = ManualClock::default();
        let k = keys(&clock);
        let none: [&str; 0] = [];
        assert!(matches!(
            k.issue("", none, "n", None).await,
            Err(ApiKeyError::Invalid(_))
        ));
        assert!(matches!(
            k.issue("t", ["a b"], "n", None).await,
            Err(ApiKeyError::Invalid(_))
        ));
        assert!(matches!(
            k.issue("t", ["a\"b"], "n", None).await,
            Err(ApiKeyError::Invalid(_))
        ));
        assert!(matches!(
            k.issue("t", none, "n\n", None).await,
            Err(ApiKeyError::Invalid(_))
        ));
        assert!(matches!(
            k.issue("t", none, "n", Some(clock.now())).await,
            Err(ApiKeyError::Invalid(_))
        ));
        let many: Vec<String> = (0..65).map(|i| format!("s{i}")).collect();
        assert!(matches!(
            k.issue("t", many, "n", None).await,
            Err(ApiKeyError::Invalid(_))
        ));
        assert!(k.list(None).await.unwrap().is_empty());

        assert!(
            ApiKeys::builder(MemoryStore::new())
                .prefix("Bad")
                .build()
                .is_err()
        );
        assert!(
            ApiKeys::builder(MemoryStore::new())
                .cache_ttl(Duration::from_secs(61))
                .build()
                .is_err()
        );
        assert!(
            ApiKeys::builder(MemoryStore::new())
                .last_used_interval(Duration::ZERO)
                .build()
                .is_err()
        );
    }
}
