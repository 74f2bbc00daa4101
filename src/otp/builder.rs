//! [`OtpRouterBuilder`]: checks the settings and builds an [`OtpRouter`].

use std::sync::Arc;

use super::browser::BrowserMode;
use super::config::{Limits, OtpConfig};
use super::router::{Inner, OtpRouter};
use super::secrets::{Secrets, derive};
use super::site::{Site, SiteQuotas, SiteSource};
use super::subject::{HashedSubject, SubjectResolver};
use crate::client_ip::ClientIpKey;
use crate::clock::{Clock, SystemClock};
use crate::error::ConfigError;
use crate::events::{EventSink, TracingSink};
use crate::jwt::{JwtKeys, Validation};
use crate::notify::Notifier;
use crate::quota::Quota;
use crate::store::{SessionLifetime, Store};
use crate::tenant::{TenantSites, Tenants};

impl<S: Store, N: Notifier> OtpRouter<S, N> {
    /// Starts configuring a router over `store` and `notifier`.
    pub fn builder(store: S, notifier: N) -> OtpRouterBuilder<S, N> {
        OtpRouterBuilder {
            store,
            notifier,
            resolver: HashedSubject,
            secret: None,
            keys: None,
            config: OtpConfig::default(),
            clock: Arc::new(SystemClock),
            events: Arc::new(TracingSink),
            key_prefix: String::new(),
            tenants: None,
            browser: None,
        }
    }
}

/// Builds an [`OtpRouter`]. See [`OtpRouter::builder`].
#[must_use]
pub struct OtpRouterBuilder<S, N, R = HashedSubject> {
    store: S,
    notifier: N,
    resolver: R,
    secret: Option<Vec<u8>>,
    keys: Option<JwtKeys>,
    config: OtpConfig,
    clock: Arc<dyn Clock>,
    events: Arc<dyn EventSink>,
    key_prefix: String,
    tenants: Option<Tenants<S>>,
    browser: Option<BrowserMode>,
}

impl<S, N, R> std::fmt::Debug for OtpRouterBuilder<S, N, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OtpRouterBuilder")
            .field("secret", &self.secret.as_ref().map(|_| "<redacted>"))
            .field("keys", &self.keys)
            .field("config", &self.config)
            .field("key_prefix", &self.key_prefix)
            .finish_non_exhaustive()
    }
}

impl<S: Store, N: Notifier, R: SubjectResolver> OtpRouterBuilder<S, N, R> {
    /// The server secret (required, at least 32 bytes). The code pepper, the
    /// identifier-hashing key and the refresh-successor key are derived from
    /// it, each under its own label; so is the JWT key unless
    /// [`jwt_keys`](Self::jwt_keys) is set.
    pub fn secret(mut self, secret: impl AsRef<[u8]>) -> Self {
        self.secret = Some(secret.as_ref().to_vec());
        self
    }

    /// The keys access tokens are signed with (for `kid` rotation, or to share
    /// keys with other services). Default: one key derived from the secret,
    /// `kid` `"default"`.
    pub fn jwt_keys(mut self, keys: JwtKeys) -> Self {
        self.keys = Some(keys);
        self
    }

    /// Changes part of the configuration in place.
    pub fn configure(mut self, f: impl FnOnce(&mut OtpConfig)) -> Self {
        f(&mut self.config);
        self
    }

    /// The rate limits.
    pub fn limits(mut self, limits: Limits) -> Self {
        self.config.limits = limits;
        self
    }

    /// Verifications per client IP (default 100 per hour, see
    /// [`Limits::verify_per_ip`]).
    pub fn verify_per_ip(mut self, quota: Quota) -> Self {
        self.config.limits.verify_per_ip = quota;
        self
    }

    /// Codes of `length` digits (default 6; 6–10 accepted, 4–5 only with
    /// [`allow_weak_codes`](Self::allow_weak_codes)).
    pub fn code_length(mut self, length: u8) -> Self {
        self.config.code_length = length;
        self
    }

    /// The explicit weak-code opt-in: accept 4- and 5-digit codes (default
    /// false). Only for a channel where 6 digits are impractical, with the
    /// attempt and verify limits kept tight: a 4-digit code is guessed with
    /// 5 attempts once in 2 000 challenges.
    pub fn allow_weak_codes(mut self, on: bool) -> Self {
        self.config.allow_weak_codes = on;
        self
    }

    /// How per-IP limits key client addresses: the IPv6 prefix (48–128,
    /// default 64) and whether requests without a client address share one
    /// bucket (default: refused with `500 client_ip_unavailable`).
    ///
    /// ```
    /// use tower_otp::client_ip::ClientIpKey;
    /// use tower_otp::notify::LogNotifier;
    /// use tower_otp::otp::OtpRouter;
    /// use tower_otp::store::MemoryStore;
    ///
    /// let router = OtpRouter::builder(MemoryStore::new(), LogNotifier)
    ///     .secret("9f2c47e1b8a03d56c4e7f1a2b9d80e3c")
    ///     .client_ip_key(ClientIpKey::builder().ipv6_prefix(56).build()?)
    ///     .build()?;
    /// assert_eq!(router.config().client_ip_key.ipv6_prefix(), 56);
    /// # Ok::<(), tower_otp::error::ConfigError>(())
    /// ```
    pub fn client_ip_key(mut self, key: ClientIpKey) -> Self {
        self.config.client_ip_key = key;
        self
    }

    /// Only these country calling codes may receive codes (e.g. `["1", "44"]`).
    pub fn allow_calling_codes<I: IntoIterator<Item = T>, T: Into<String>>(
        mut self,
        codes: I,
    ) -> Self {
        self.config.allowed_calling_codes = Some(codes.into_iter().map(Into::into).collect());
        self
    }

    /// Issuer put into and required from access tokens.
    pub fn issuer(mut self, iss: impl Into<String>) -> Self {
        self.config.issuer = Some(iss.into());
        self
    }

    /// Audience put into and required from access tokens.
    pub fn audience(mut self, aud: impl Into<String>) -> Self {
        self.config.audience = Some(aud.into());
        self
    }

    /// Only identifiers the resolver's `may_request` accepts get a message.
    pub fn known_users_only(mut self, on: bool) -> Self {
        self.config.known_users_only = on;
        self
    }

    /// The time source (tests use `ManualClock`).
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Where security events go (default [`TracingSink`]).
    pub fn events(mut self, sink: impl EventSink) -> Self {
        self.events = Arc::new(sink);
        self
    }

    /// Serves many tenants: each request's settings come from the tenant
    /// of its API key — the [`ApiKeyIdentity`](crate::api_key::ApiKeyIdentity)
    /// an [`ApiKeyLayer`](crate::api_key::ApiKeyLayer) in front put in its
    /// extensions (`401 invalid_api_key` without one, `403
    /// tenant_suspended` for a suspended tenant). The tenant's
    /// [`TenantConfig`](crate::tenant::TenantConfig) is laid over this
    /// builder's configuration; every store key is namespaced by the
    /// tenant's id and its tokens carry `aud` = the tenant id. See the
    /// [`tenant`](crate::tenant) module.
    pub fn tenants(mut self, tenants: Tenants<S>) -> Self {
        self.tenants = Some(tenants);
        self
    }

    /// The hook mapping verified identifiers to the app's users.
    pub fn subject_resolver<R2: SubjectResolver>(self, resolver: R2) -> OtpRouterBuilder<S, N, R2> {
        OtpRouterBuilder {
            store: self.store,
            notifier: self.notifier,
            resolver,
            secret: self.secret,
            keys: self.keys,
            config: self.config,
            clock: self.clock,
            events: self.events,
            key_prefix: self.key_prefix,
            tenants: self.tenants,
            browser: self.browser,
        }
    }

    /// Sets the sessions' idle timeout ([`OtpConfig::refresh_ttl`]) and
    /// absolute lifetime ([`OtpConfig::session_max_age`]), e.g.
    /// [`SessionLifetime::NIST_AAL2`] (default [`SessionLifetime::NIST_AAL1`]:
    /// 30 days each).
    pub fn session_lifetime(mut self, lifetime: SessionLifetime) -> Self {
        self.config.refresh_ttl = lifetime.idle;
        self.config.session_max_age = lifetime.absolute;
        self
    }

    /// Serves web pages of the given origins with the refresh token in an
    /// `HttpOnly` cookie and CSRF checks (see [`BrowserMode`]); requests
    /// from elsewhere keep the JSON contract. Not available with tenants.
    pub fn browser_mode(mut self, browser: BrowserMode) -> Self {
        self.browser = Some(browser);
        self
    }

    /// Puts every store key of this router — challenges, limit cells,
    /// sessions — under `prefix` (default none, so a single app's keys stay
    /// as they always were): a router for another purpose on the same store
    /// (the tenant module's signup router) shares no state with the app's.
    /// 1–32 visible ASCII characters ending in `:`, not starting with `t:`
    /// (the tenants' namespace).
    ///
    /// Crate-private on purpose: [`OtpRouter::jwt_layer`]'s revocation
    /// check reads the token's unprefixed `sid`, so a prefixed router's
    /// logged-out tokens would pass it.
    pub(crate) fn key_prefix(mut self, prefix: &str) -> Self {
        prefix.clone_into(&mut self.key_prefix);
        self
    }

    /// Checks the configuration and builds the router.
    pub fn build(self) -> Result<OtpRouter<S, N, R>, ConfigError> {
        let secret = self.secret.ok_or_else(|| {
            ConfigError::new("secret", "a server secret of at least 32 bytes is required")
        })?;
        crate::secret::check("secret", &secret)?;
        self.config.validate()?;
        check_key_prefix(&self.key_prefix)?;
        if self.tenants.is_some() && !self.key_prefix.is_empty() {
            return Err(ConfigError::new(
                "key_prefix",
                "not available with tenants: each tenant's keys are under t:<id>:",
            ));
        }
        if self.tenants.is_some() && self.config.known_users_only {
            return Err(ConfigError::new(
                "known_users_only",
                "not available with tenants: a tenant's users are its own",
            ));
        }
        if self.tenants.is_some() && self.browser.is_some() {
            return Err(ConfigError::new(
                "browser_mode",
                "not available with tenants: their clients authenticate with API keys",
            ));
        }
        let browser = self
            .browser
            .map(|b| b.build(&derive(&secret, "csrf")))
            .transpose()?;
        let keys = match self.keys {
            Some(keys) => keys,
            None => JwtKeys::new("default", derive(&secret, "jwt"))?,
        };
        let mut validation = Validation::default().leeway(self.config.leeway);
        if let Some(iss) = &self.config.issuer {
            validation = validation.issuer(iss.clone());
        }
        if let Some(aud) = &self.config.audience {
            validation = validation.audience(aud.clone());
        }
        let secrets = Secrets::derive(&secret);
        let site = Arc::new(Site {
            config: self.config,
            validation,
            key_prefix: self.key_prefix,
            tenant: None,
            events: self.events,
            templates: None,
            quotas: SiteQuotas::default(),
            version: 0,
        });
        let tenants = self
            .tenants
            .map(|t| Arc::new(TenantSites::new(t, Arc::clone(&site))) as Arc<dyn SiteSource>);
        Ok(OtpRouter::from_inner(Inner {
            store: self.store,
            notifier: self.notifier,
            resolver: self.resolver,
            keys,
            secrets,
            clock: self.clock,
            site,
            tenants,
            browser,
        }))
    }
}

fn check_key_prefix(prefix: &str) -> Result<(), ConfigError> {
    let ok = prefix.is_empty()
        || ((1..=32).contains(&prefix.len())
            && prefix.bytes().all(|b| b.is_ascii_graphic())
            && prefix.ends_with(':')
            && !prefix.starts_with("t:"));
    if ok {
        Ok(())
    } else {
        Err(ConfigError::new(
            "key_prefix",
            "must be 1–32 visible ASCII characters ending in ':', not starting with 't:'",
        ))
    }
}

#[cfg(all(test, feature = "moka"))]
mod tests {
    use bytes::Bytes;
    use http::{Request, StatusCode};
    use http_body_util::{BodyExt, Full};
    use tower::ServiceExt;

    use super::*;
    use crate::client_ip::ClientIp;
    use crate::notify::MemoryNotifier;
    use crate::secret::TEST_SECRET;
    use crate::store::MemoryStore;

    fn router(
        store: &MemoryStore,
        notifier: &MemoryNotifier,
        prefix: &str,
    ) -> OtpRouter<MemoryStore, MemoryNotifier> {
        OtpRouter::builder(store.clone(), notifier.clone())
            .secret(TEST_SECRET)
            .key_prefix(prefix)
            .build()
            .unwrap()
    }

    async fn post(
        router: &OtpRouter<MemoryStore, MemoryNotifier>,
        path: &str,
        body: String,
    ) -> (StatusCode, serde_json::Value) {
        let mut req = Request::post(path)
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body)))
            .unwrap();
        req.extensions_mut()
            .insert(ClientIp(crate::test_helpers::ip("192.0.2.7")));
        let res = router.clone().oneshot(req).await.unwrap();
        let status = res.status();
        let bytes = res.into_body().collect().await.unwrap().to_bytes();
        (status, serde_json::from_slice(&bytes).unwrap_or_default())
    }

    #[tokio::test]
    async fn a_key_prefix_separates_challenges_and_limits() {
        let (store, notifier) = (MemoryStore::new(), MemoryNotifier::new());
        let plain = router(&store, &notifier, "");
        let prefixed = router(&store, &notifier, "signup:");
        let ask = || r#"{"email":"ada@example.com"}"#.to_owned();
        assert_eq!(
            post(&plain, "/otp/request", ask()).await.0,
            StatusCode::ACCEPTED
        );
        let code = notifier.last_code("ada@example.com").unwrap();
        let verify = format!(r#"{{"email":"ada@example.com","code":"{code}"}}"#);
        // Same secret, same store: only the prefix tells the two apart.
        let (status, doc) = post(&prefixed, "/otp/verify", verify.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(doc["code"], "invalid_code");
        assert_eq!(post(&plain, "/otp/verify", verify).await.0, StatusCode::OK);
        // The plain router's cooldown for this address does not hold the
        // prefixed one back.
        assert_eq!(
            post(&plain, "/otp/request", ask()).await.0,
            StatusCode::TOO_MANY_REQUESTS
        );
        assert_eq!(
            post(&prefixed, "/otp/request", ask()).await.0,
            StatusCode::ACCEPTED
        );
    }

    #[test]
    fn key_prefixes_are_checked() {
        let build = |prefix: &str| {
            OtpRouter::builder(MemoryStore::new(), MemoryNotifier::new())
                .secret(TEST_SECRET)
                .key_prefix(prefix)
                .build()
                .map(|_| ())
        };
        assert!(build("").is_ok());
        assert!(build("signup:").is_ok());
        for bad in ["signup", "t:acme:", "a b:", &format!("{}:", "a".repeat(32))] {
            let err = build(bad).unwrap_err();
            assert_eq!(err.setting, "key_prefix", "{bad}");
        }
    }
}
