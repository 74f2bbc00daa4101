//! [`Tenants`]: tenant records over a [`TenantStore`] — create, read,
//! change config and status, manage each tenant's API keys — with the
//! per-instance cache every request's resolution reads.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::analytics::{Analytics, AnalyticsReport};
use super::config::{TenantConfig, WebhookUrls};
use super::usage::{Day, UsageField, UsageReport, read_usage};
use crate::api_key::{ApiKeyError, ApiKeys, IssuedKey, KeyInfo};
use crate::clock::{Clock, SystemClock, unix_micros, unix_secs};
use crate::error::ConfigError;
use crate::store::{ApiKeyStore, StoreError, TenantStore};

/// How long a tenant read from the store is trusted by this instance
/// unless configured otherwise: a change made on another instance applies
/// here within this time (DESIGN.md: 5 s).
pub const DEFAULT_TENANT_CACHE_TTL: Duration = Duration::from_secs(5);
/// The longest cache TTL accepted.
pub const MAX_TENANT_CACHE_TTL: Duration = Duration::from_secs(5);
/// How often each instance writes its analytics and pending usage counts.
pub const FLUSH_EVERY: Duration = Duration::from_secs(1);
/// Most tenants cached per instance.
const CACHE_CAPACITY: usize = 100_000;
/// Attempts at a config or status change racing with others.
const UPDATE_ATTEMPTS: usize = 8;

/// Whether a tenant's keys work.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TenantStatus {
    /// Its keys work.
    Active,
    /// Every request with its keys is refused with `403 tenant_suspended`.
    Suspended,
}

/// A tenant: id, name, status and its versioned configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tenant {
    /// The id (`[a-z0-9][a-z0-9-]{0,62}`): the namespace of its store keys.
    pub id: String,
    /// A human-readable name.
    pub name: String,
    /// Active or suspended.
    pub status: TenantStatus,
    /// Its settings.
    pub config: TenantConfig,
    /// 1 when created, one more on every config or status change.
    pub config_version: u64,
    /// When it was created.
    pub created_at: SystemTime,
}

impl Tenant {
    /// The tenant as the admin API shows it (no webhook secret).
    pub fn public_json(&self) -> Value {
        serde_json::json!({
            "id": self.id,
            "name": self.name,
            "status": self.status,
            "config": self.config.public_json(),
            "config_version": self.config_version,
            "created_at": unix_secs(self.created_at),
        })
    }
}

/// What the store keeps (the version is the store's).
#[derive(Serialize, Deserialize)]
struct Stored {
    name: String,
    status: TenantStatus,
    config: TenantConfig,
    created_at_us: u64,
}

/// Why a tenant operation failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum TenantError {
    /// No tenant (or no key of this tenant) with that id.
    NotFound,
    /// A tenant with that id exists.
    Exists,
    /// The input is not acceptable; names the field.
    Invalid(ConfigError),
    /// Too many concurrent changes; retry.
    Conflict,
    /// The store failed.
    Store(StoreError),
}

impl fmt::Display for TenantError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotFound => f.write_str("no such tenant"),
            Self::Exists => f.write_str("a tenant with that id exists"),
            Self::Invalid(e) => e.fmt(f),
            Self::Conflict => f.write_str("the tenant changed concurrently; retry"),
            Self::Store(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for TenantError {}

impl From<StoreError> for TenantError {
    fn from(e: StoreError) -> Self {
        Self::Store(e)
    }
}

impl From<ConfigError> for TenantError {
    fn from(e: ConfigError) -> Self {
        Self::Invalid(e)
    }
}

impl From<ApiKeyError> for TenantError {
    fn from(e: ApiKeyError) -> Self {
        match e {
            ApiKeyError::Store(e) => Self::Store(e),
            ApiKeyError::NotFound => Self::NotFound,
            ApiKeyError::Invalid(why) => Self::Invalid(ConfigError::new("api key", why)),
        }
    }
}

/// Whether `id` is a valid tenant id: 1–63 of `a-z 0-9 -`, starting with a
/// letter or digit.
pub fn valid_tenant_id(id: &str) -> bool {
    (1..=63).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !id.starts_with('-')
}

/// A cached tenant, trusted until `fresh_until_us`.
#[derive(Clone)]
struct Cached {
    tenant: Arc<Tenant>,
    fresh_until_us: u64,
}

/// The origins some active tenant lists, read at most once per cache TTL.
#[derive(Default)]
struct Origins {
    set: HashSet<String>,
    read_at_us: Option<u64>,
}

struct Inner<S> {
    store: S,
    keys: ApiKeys<S>,
    analytics: Analytics<S>,
    /// Whether the analytics flusher runs (started with the first record).
    flusher: std::sync::atomic::AtomicBool,
    clock: Arc<dyn Clock>,
    cache_ttl: Duration,
    webhook_urls: WebhookUrls,
    cache: RwLock<HashMap<String, Cached>>,
    origins: tokio::sync::Mutex<Origins>,
}

/// The tenants of a multi-tenant service over a [`TenantStore`], with their
/// API keys (an [`ApiKeys`] over the same store). Cloning is cheap (one
/// `Arc`); clones share the cache.
///
/// **Propagation.** A change made through this instance applies here at
/// once (its cache entry is replaced); other instances trust what they
/// read for the cache TTL (default and at most 5 s), so a config, status or
/// key change applies everywhere within 5 s. A revoked key fails at once on
/// every instance whose [`ApiKeys`] has no cache (TTL zero), within the
/// key cache's TTL on others (see [`ApiKeys`]).
///
/// ```
/// use tower_otp::api_key::ApiKeys;
/// use tower_otp::store::MemoryStore;
/// use tower_otp::tenant::{TenantConfig, Tenants};
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let store = MemoryStore::new();
/// let tenants = Tenants::builder(store.clone(), ApiKeys::builder(store).build()?).build()?;
/// let acme = tenants.create("acme", "Acme Inc.", TenantConfig::default()).await?;
/// assert_eq!(acme.config_version, 1);
/// let key = tenants.issue_key("acme", "backend", Vec::<String>::new()).await?;
/// assert_eq!(tenants.keys("acme").await?.len(), 1);
/// # let _ = key;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
pub struct Tenants<S> {
    inner: Arc<Inner<S>>,
}

impl<S> Clone for Tenants<S> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<S: fmt::Debug> fmt::Debug for Tenants<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tenants")
            .field("store", &self.inner.store)
            .field("cache_ttl", &self.inner.cache_ttl)
            .field("webhook_urls", &self.inner.webhook_urls)
            .finish_non_exhaustive()
    }
}

/// Builds [`Tenants`]; from [`Tenants::builder`].
#[must_use]
pub struct TenantsBuilder<S> {
    store: S,
    keys: ApiKeys<S>,
    clock: Arc<dyn Clock>,
    cache_ttl: Duration,
    webhook_urls: WebhookUrls,
}

impl<S> fmt::Debug for TenantsBuilder<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TenantsBuilder")
            .field("cache_ttl", &self.cache_ttl)
            .field("webhook_urls", &self.webhook_urls)
            .finish_non_exhaustive()
    }
}

impl<S: TenantStore + ApiKeyStore> TenantsBuilder<S> {
    /// The time source (tests use `ManualClock`).
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// How long this instance trusts a tenant it read (default and at most
    /// 5 s; zero reads the store on every request).
    pub fn cache_ttl(mut self, ttl: Duration) -> Self {
        self.cache_ttl = ttl;
        self
    }

    /// Whether tenants' webhooks may use `http://` (default: `https://`
    /// only; allow plain HTTP for development and tests only).
    pub fn webhook_urls(mut self, urls: WebhookUrls) -> Self {
        self.webhook_urls = urls;
        self
    }

    /// Checks the settings and builds.
    pub fn build(self) -> Result<Tenants<S>, ConfigError> {
        if self.cache_ttl > MAX_TENANT_CACHE_TTL {
            return Err(ConfigError::new(
                "tenant cache_ttl",
                "at most 5 s: it bounds how long other instances serve a changed tenant",
            ));
        }
        let analytics = Analytics::builder(self.store.clone())
            .clock(Arc::clone(&self.clock))
            .build()?;
        Ok(Tenants {
            inner: Arc::new(Inner {
                store: self.store,
                keys: self.keys,
                analytics,
                flusher: std::sync::atomic::AtomicBool::new(false),
                clock: self.clock,
                cache_ttl: self.cache_ttl,
                webhook_urls: self.webhook_urls,
                cache: RwLock::new(HashMap::new()),
                origins: tokio::sync::Mutex::new(Origins::default()),
            }),
        })
    }
}

impl<S: TenantStore + ApiKeyStore> Tenants<S> {
    /// Starts configuring the tenants over `store`, their keys managed by
    /// `keys` (over the same store, typically).
    pub fn builder(store: S, keys: ApiKeys<S>) -> TenantsBuilder<S> {
        TenantsBuilder {
            store,
            keys,
            clock: Arc::new(SystemClock),
            cache_ttl: DEFAULT_TENANT_CACHE_TTL,
            webhook_urls: WebhookUrls::HttpsOnly,
        }
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.inner.store
    }

    /// The tenants' API keys.
    pub fn api_keys(&self) -> &ApiKeys<S> {
        &self.inner.keys
    }

    /// Whether webhooks may use `http://`.
    pub fn webhook_urls(&self) -> WebhookUrls {
        self.inner.webhook_urls
    }

    pub(crate) fn now(&self) -> SystemTime {
        self.inner.clock.now()
    }

    /// The clock.
    pub(crate) fn clock(&self) -> &Arc<dyn Clock> {
        &self.inner.clock
    }

    /// Creates an active tenant. Its config must be valid.
    pub async fn create(
        &self,
        id: &str,
        name: &str,
        config: TenantConfig,
    ) -> Result<Tenant, TenantError> {
        if !valid_tenant_id(id) {
            return Err(ConfigError::new(
                "id",
                "must be 1–63 of a-z, 0-9 and '-', not starting with '-'",
            )
            .into());
        }
        check_name(name)?;
        config.validate(self.inner.webhook_urls)?;
        let now = self.now();
        let stored = Stored {
            name: name.to_owned(),
            status: TenantStatus::Active,
            config,
            created_at_us: unix_micros(now),
        };
        let bytes = encode(&stored)?;
        if !self.inner.store.create_tenant(id, &bytes).await? {
            return Err(TenantError::Exists);
        }
        let tenant = decode(id, 1, stored);
        Ok(self.cache(tenant).as_ref().clone())
    }

    /// The tenant, read from the store (and cached).
    pub async fn get(&self, id: &str) -> Result<Tenant, TenantError> {
        Ok(self.load(id).await?.as_ref().clone())
    }

    /// Every tenant, ordered by id.
    pub async fn list(&self) -> Result<Vec<Tenant>, TenantError> {
        let mut out = Vec::new();
        for (id, record) in self.inner.store.list_tenants().await? {
            let stored = parse(&id, &record.data)?;
            out.push(decode(&id, record.version, stored));
        }
        Ok(out)
    }

    /// Applies `patch` (a JSON merge patch of the config: members replace,
    /// `null` restores a default) and bumps the version. Invalid results
    /// change nothing.
    pub async fn update_config(&self, id: &str, patch: &Value) -> Result<Tenant, TenantError> {
        let urls = self.inner.webhook_urls;
        self.update(id, |stored| {
            stored.config = stored.config.patched(patch, urls)?;
            Ok(())
        })
        .await
    }

    /// Sets the status and bumps the version.
    pub async fn set_status(&self, id: &str, status: TenantStatus) -> Result<Tenant, TenantError> {
        self.update(id, |stored| {
            stored.status = status;
            Ok(())
        })
        .await
    }

    /// Read, change, write if nobody else wrote meanwhile; a few attempts.
    async fn update(
        &self,
        id: &str,
        change: impl Fn(&mut Stored) -> Result<(), TenantError>,
    ) -> Result<Tenant, TenantError> {
        for _ in 0..UPDATE_ATTEMPTS {
            let (version, mut stored) = self.read(id).await?;
            change(&mut stored)?;
            let bytes = encode(&stored)?;
            if self.inner.store.update_tenant(id, version, &bytes).await? {
                let tenant = decode(id, version + 1, stored);
                return Ok(self.cache(tenant).as_ref().clone());
            }
        }
        Err(TenantError::Conflict)
    }

    /// The tenant as this instance trusts it: from the cache while fresh,
    /// else from the store. `None` for an unknown tenant.
    pub(crate) async fn resolve(&self, id: &str) -> Result<Option<Arc<Tenant>>, StoreError> {
        if let Some(tenant) = self.fresh(id) {
            return Ok(Some(tenant));
        }
        match self.load(id).await {
            Ok(t) => Ok(Some(t)),
            Err(TenantError::NotFound) => {
                self.write_cache().remove(id);
                Ok(None)
            }
            Err(TenantError::Store(e)) => Err(e),
            Err(e) => Err(StoreError::Corrupt(e.to_string())),
        }
    }

    /// The tenant, if this instance read it within the cache TTL (no I/O).
    pub(crate) fn fresh(&self, id: &str) -> Option<Arc<Tenant>> {
        let now_us = unix_micros(self.now());
        self.cached(id)
            .filter(|hit| now_us < hit.fresh_until_us)
            .map(|hit| hit.tenant)
    }

    fn cached(&self, id: &str) -> Option<Cached> {
        self.inner
            .cache
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .cloned()
    }

    fn write_cache(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<String, Cached>> {
        self.inner.cache.write().unwrap_or_else(|e| e.into_inner())
    }

    async fn load(&self, id: &str) -> Result<Arc<Tenant>, TenantError> {
        let (version, stored) = self.read(id).await?;
        Ok(self.cache(decode(id, version, stored)))
    }

    /// Tenant `id`'s record from the store, with its version.
    async fn read(&self, id: &str) -> Result<(u64, Stored), TenantError> {
        let record = self
            .inner
            .store
            .get_tenant(id)
            .await?
            .ok_or(TenantError::NotFound)?;
        Ok((record.version, parse(id, &record.data)?))
    }

    /// Caches `tenant` (unless an entry of a newer version is there).
    fn cache(&self, tenant: Tenant) -> Arc<Tenant> {
        let fresh_until_us = unix_micros(self.now())
            .saturating_add(u64::try_from(self.inner.cache_ttl.as_micros()).unwrap_or(u64::MAX));
        let tenant = Arc::new(tenant);
        let mut cache = self.write_cache();
        if cache.len() >= CACHE_CAPACITY && !cache.contains_key(&tenant.id) {
            // Not authoritative: forgetting costs a store read.
            cache.clear();
        }
        match cache.get_mut(&tenant.id) {
            Some(old) if old.tenant.config_version > tenant.config_version => old.tenant.clone(),
            _ => {
                cache.insert(
                    tenant.id.clone(),
                    Cached {
                        tenant: Arc::clone(&tenant),
                        fresh_until_us,
                    },
                );
                tenant
            }
        }
    }

    /// Counts one request of `tenant` in this instance's analytics (flushed
    /// to the store every [`FLUSH_EVERY`] by a task started with the first).
    pub(crate) fn record_request(&self, tenant: &str, latency: Duration, code: Option<&str>) {
        self.start_flusher();
        self.inner
            .analytics
            .record(tenant, latency, code.map_or(Ok(()), Err));
    }

    /// Changes a usage counter of `tenant` with the next analytics flush.
    pub(crate) fn count_usage(&self, tenant: &str, field: UsageField, delta: i64) {
        self.start_flusher();
        self.inner.analytics.count_usage(tenant, field, delta);
    }

    fn start_flusher(&self) {
        use std::sync::atomic::Ordering;
        if !self.inner.flusher.load(Ordering::Relaxed)
            && !self.inner.flusher.swap(true, Ordering::AcqRel)
            && let Err(e) = self.inner.analytics.spawn_flusher(FLUSH_EVERY)
        {
            // Outside a runtime: try again with the next request.
            self.inner.flusher.store(false, Ordering::Release);
            tracing::debug!(target: "tower_otp", error = %e, "analytics flusher not started");
        }
    }

    /// `tenant`'s usage from `from` to `to` (UTC days, inclusive; at most
    /// [`MAX_USAGE_DAYS`](super::usage::MAX_USAGE_DAYS)), after writing this
    /// instance's pending counts: exact for this instance, and at most one
    /// [`FLUSH_EVERY`] behind for the others.
    pub async fn usage(&self, id: &str, from: Day, to: Day) -> Result<UsageReport, TenantError> {
        self.load(id).await?;
        self.inner.analytics.flush().await?;
        Ok(read_usage(&self.inner.store, id, from, to, self.now()).await?)
    }

    /// `tenant`'s request analytics over the last `window` (see
    /// [`Analytics::report`]).
    pub async fn analytics(
        &self,
        id: &str,
        window: Duration,
    ) -> Result<AnalyticsReport, TenantError> {
        self.load(id).await?;
        Ok(self.inner.analytics.report(id, window).await?)
    }

    /// Whether some active tenant lists `origin` among its CORS origins
    /// (what a preflight, which carries no key, is answered for). Reads the
    /// tenants at most once per cache TTL.
    pub async fn any_tenant_allows_origin(&self, origin: &str) -> Result<bool, StoreError> {
        let mut origins = self.inner.origins.lock().await;
        let now_us = unix_micros(self.now());
        let ttl_us = u64::try_from(self.inner.cache_ttl.as_micros()).unwrap_or(u64::MAX);
        let stale = origins
            .read_at_us
            .is_none_or(|at| now_us >= at.saturating_add(ttl_us));
        if stale {
            let tenants = self.list().await.map_err(|e| match e {
                TenantError::Store(e) => e,
                e => StoreError::Corrupt(e.to_string()),
            })?;
            origins.set = tenants
                .into_iter()
                .filter(|t| t.status == TenantStatus::Active)
                .flat_map(|t| t.config.cors_origins)
                .collect();
            origins.read_at_us = Some(now_us);
        }
        Ok(origins.set.contains(origin))
    }

    /// Issues an API key for tenant `id` (which must exist). Show the key
    /// once; only a hash of its secret is stored.
    pub async fn issue_key(
        &self,
        id: &str,
        name: &str,
        scopes: Vec<String>,
    ) -> Result<IssuedKey, TenantError> {
        self.load(id).await?;
        Ok(self.inner.keys.issue(id, scopes, name, None).await?)
    }

    /// The API keys of tenant `id`, oldest first.
    pub async fn keys(&self, id: &str) -> Result<Vec<KeyInfo>, TenantError> {
        self.load(id).await?;
        Ok(self.inner.keys.list(Some(id)).await?)
    }

    /// Rotates key `key_id` of tenant `id`: a new secret, the old one working
    /// for `grace`.
    pub async fn rotate_key(
        &self,
        id: &str,
        key_id: &str,
        grace: Duration,
    ) -> Result<IssuedKey, TenantError> {
        self.own_key(id, key_id).await?;
        Ok(self.inner.keys.rotate(key_id, grace).await?)
    }

    /// Revokes key `key_id` of tenant `id`.
    pub async fn revoke_key(&self, id: &str, key_id: &str) -> Result<(), TenantError> {
        self.own_key(id, key_id).await?;
        self.inner.keys.revoke(key_id).await?;
        Ok(())
    }

    /// Key `key_id`, if it belongs to tenant `id` (another tenant's key is
    /// not found, like an unknown one).
    async fn own_key(&self, id: &str, key_id: &str) -> Result<KeyInfo, TenantError> {
        match self.inner.keys.get(key_id).await? {
            Some(info) if info.tenant == id => Ok(info),
            _ => Err(TenantError::NotFound),
        }
    }
}

/// Refuses a tenant name that is empty, over 128 characters or holds
/// control characters.
pub(crate) fn check_name(name: &str) -> Result<(), ConfigError> {
    let len = name.chars().count();
    if !(1..=128).contains(&len) || name.chars().any(char::is_control) {
        return Err(ConfigError::new(
            "name",
            "must be 1–128 characters without control characters",
        ));
    }
    Ok(())
}

/// A stored tenant record; unreadable is corrupt.
fn parse(id: &str, data: &[u8]) -> Result<Stored, StoreError> {
    serde_json::from_slice(data).map_err(|e| StoreError::Corrupt(format!("tenant {id}: {e}")))
}

fn encode(stored: &Stored) -> Result<Vec<u8>, TenantError> {
    serde_json::to_vec(stored)
        .map_err(|e| TenantError::Invalid(ConfigError::new("config", e.to_string())))
}

fn decode(id: &str, version: u64, stored: Stored) -> Tenant {
    Tenant {
        id: id.to_owned(),
        name: stored.name,
        status: stored.status,
        config: stored.config,
        config_version: version,
        created_at: SystemTime::UNIX_EPOCH + Duration::from_micros(stored.created_at_us),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_ids() {
        for ok in ["a", "acme", "acme-2", "0day", &"a".repeat(63)] {
            assert!(valid_tenant_id(ok), "{ok}");
        }
        for bad in [
            "",
            "-a",
            "Acme",
            "a_b",
            "a.b",
            "a b",
            "t:x",
            &"a".repeat(64),
        ] {
            assert!(!valid_tenant_id(bad), "{bad}");
        }
    }
}
