//! `OtpRouter` configuration: every limit and default of DESIGN.md.

use std::sync::Arc;
use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::code::{CODE_LENGTHS, WEAK_CODE_LENGTHS};
use super::router::{Inner, OtpRouter};
use super::subject::{HashedSubject, SubjectResolver};
use crate::client_ip::ClientIpKey;
use crate::clock::{Clock, SystemClock};
use crate::error::ConfigError;
use crate::events::{EventSink, TracingSink};
use crate::identifier::IdentifierHasher;
use crate::jwt::{JwtKeys, Validation};
use crate::notify::{Channel, Notifier};
use crate::quota::Quota;
use crate::store::Store;

/// Calling codes refused by default: premium-rate, shared-cost and
/// international-network ranges that SMS-pumping fraud favours (+800 UIFN,
/// +808 shared cost, +870 Inmarsat, +878 UPT, +881 GMSS, +882/+883
/// international networks, +888 OCHA, +979 international premium rate, +991 ITPCS).
pub const DEFAULT_DENIED_CALLING_CODES: [&str; 10] = [
    "800", "808", "870", "878", "881", "882", "883", "888", "979", "991",
];

/// Rate limits of the OTP endpoints (all configurable).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// Code requests per identifier (default 3 per hour).
    pub request_per_identifier: Quota,
    /// Code requests per client IP (default 5 per hour).
    pub request_per_ip: Quota,
    /// Minimum time between two codes to one identifier (default 30 s).
    pub resend_cooldown: Duration,
    /// Code requests per phone-number prefix (all but the last
    /// `prefix_hidden_digits` digits; default 20 per hour) — against
    /// sequential-number SMS pumping.
    pub request_per_number_prefix: Quota,
    /// Digits dropped from the end of a number to form its prefix (default 3).
    pub prefix_hidden_digits: u8,
    /// Messages sent by the whole deployment (default 1 000 per hour): a
    /// runaway or abused deployment stops spending.
    pub global_messages: Quota,
    /// Verifications per identifier, across all its challenges (default 5
    /// per hour): opening new challenges does not buy new guesses.
    pub verify_per_identifier: Quota,
    /// Verifications per client IP, whatever the identifier (default 100
    /// per hour): about a hundred logins an hour from one address — a
    /// NAT'd office, each user allowed a typo or two — while one address
    /// walking identifiers gets 100 guesses an hour, one expected hit per
    /// 10 000 hours at 6 digits. Raise it with
    /// [`request_per_ip`](Self::request_per_ip) for larger shared addresses.
    pub verify_per_ip: Quota,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            request_per_identifier: Quota::per_hour(3),
            request_per_ip: Quota::per_hour(5),
            resend_cooldown: Duration::from_secs(30),
            request_per_number_prefix: Quota::per_hour(20),
            prefix_hidden_digits: 3,
            global_messages: Quota::per_hour(1000),
            verify_per_identifier: Quota::per_hour(5),
            verify_per_ip: Quota::per_hour(100),
        }
    }
}

/// Everything the router does, with DESIGN.md's defaults.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct OtpConfig {
    /// Digits per code, 6–10 (default 6); 4–5 only with
    /// [`allow_weak_codes`](Self::allow_weak_codes).
    pub code_length: u8,
    /// Accept 4- and 5-digit codes (default false). Such codes are guessed
    /// 100 or 10 times more easily than 6 digits; NIST SP 800-63B-4 and
    /// ASVS 5.0 (6.5.4) ask for at least 6.
    pub allow_weak_codes: bool,
    /// Code lifetime (default 10 minutes).
    pub code_ttl: Duration,
    /// Verification attempts per challenge before it is burned (default 5).
    pub max_attempts: u32,
    /// Access-token lifetime (default 15 minutes).
    pub access_ttl: Duration,
    /// Refresh-token (session) lifetime, sliding (default 30 days).
    pub refresh_ttl: Duration,
    /// Window in which a just-rotated refresh token returns the same successor
    /// (default 5 s).
    pub refresh_grace: Duration,
    /// `iss` put into and required from access tokens.
    pub issuer: Option<String>,
    /// `aud` put into and required from access tokens.
    pub audience: Option<String>,
    /// Clock skew tolerated when checking tokens (default 30 s).
    pub leeway: Duration,
    /// Largest request body (default 8 KiB).
    pub body_limit: usize,
    /// Channels clients may ask for (default SMS and email).
    pub channels: Vec<Channel>,
    /// When set, only calling codes starting one of these are allowed.
    pub allowed_calling_codes: Option<Vec<String>>,
    /// Calling codes always refused (default [`DEFAULT_DENIED_CALLING_CODES`]).
    pub denied_calling_codes: Vec<String>,
    /// Only identifiers the resolver's `may_request` accepts get a message;
    /// delivery then runs off the request path for everyone (default false).
    pub known_users_only: bool,
    /// `{{app_name}}` in messages (default `"tower-otp"`).
    pub app_name: String,
    /// Rate limits.
    pub limits: Limits,
    /// How per-IP limits key client addresses (IPv6 per /64 by default) and
    /// whether requests without one share a bucket (default: refused with
    /// `500 client_ip_unavailable`).
    pub client_ip_key: ClientIpKey,
}

impl Default for OtpConfig {
    fn default() -> Self {
        Self {
            code_length: 6,
            allow_weak_codes: false,
            code_ttl: Duration::from_secs(600),
            max_attempts: 5,
            access_ttl: Duration::from_secs(900),
            refresh_ttl: Duration::from_secs(30 * 24 * 3600),
            refresh_grace: Duration::from_secs(5),
            issuer: None,
            audience: None,
            leeway: Duration::from_secs(30),
            body_limit: 8 * 1024,
            channels: vec![Channel::Sms, Channel::Email],
            allowed_calling_codes: None,
            denied_calling_codes: DEFAULT_DENIED_CALLING_CODES
                .iter()
                .map(|s| (*s).to_owned())
                .collect(),
            known_users_only: false,
            app_name: "tower-otp".into(),
            limits: Limits::default(),
            client_ip_key: ClientIpKey::default(),
        }
    }
}

impl OtpConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        let weak = WEAK_CODE_LENGTHS.contains(&self.code_length);
        if weak && !self.allow_weak_codes {
            return Err(ConfigError::new(
                "code_length",
                "codes shorter than 6 digits need the weak-code opt-in (allow_weak_codes)",
            ));
        }
        if !weak && !CODE_LENGTHS.contains(&self.code_length) {
            return Err(ConfigError::new(
                "code_length",
                "must be between 6 and 10 (4 or 5 only with allow_weak_codes)",
            ));
        }
        if self.max_attempts == 0 {
            return Err(ConfigError::new("max_attempts", "must be at least 1"));
        }
        for (name, d) in [
            ("code_ttl", self.code_ttl),
            ("access_ttl", self.access_ttl),
            ("refresh_ttl", self.refresh_ttl),
        ] {
            if d < Duration::from_secs(1) {
                return Err(ConfigError::new(name, "must be at least one second"));
            }
        }
        if self.body_limit < 256 {
            return Err(ConfigError::new("body_limit", "must be at least 256 bytes"));
        }
        if self.channels.is_empty() {
            return Err(ConfigError::new("channels", "enable at least one channel"));
        }
        let codes = self
            .allowed_calling_codes
            .iter()
            .flatten()
            .chain(&self.denied_calling_codes);
        for code in codes {
            let digits = code.trim_start_matches('+');
            if digits.is_empty() || digits.len() > 6 || !digits.bytes().all(|b| b.is_ascii_digit())
            {
                return Err(ConfigError::new(
                    "calling codes",
                    format!("{code:?} is not a calling code"),
                ));
            }
        }
        let l = &self.limits;
        for (name, q) in [
            ("limits.request_per_identifier", &l.request_per_identifier),
            ("limits.request_per_ip", &l.request_per_ip),
            (
                "limits.request_per_number_prefix",
                &l.request_per_number_prefix,
            ),
            ("limits.global_messages", &l.global_messages),
            ("limits.verify_per_identifier", &l.verify_per_identifier),
            ("limits.verify_per_ip", &l.verify_per_ip),
        ] {
            q.validate(name)?;
        }
        Ok(())
    }
}

/// Keys derived from the one server secret, each for one purpose.
#[derive(Clone)]
pub(crate) struct Secrets {
    pub(crate) pepper: Hmac<Sha256>,
    pub(crate) identifiers: IdentifierHasher,
    pub(crate) refresh: Hmac<Sha256>,
}

fn derive(secret: &[u8], label: &str) -> [u8; 32] {
    let mut mac = <Hmac<Sha256>>::new_from_slice(secret).expect("HMAC accepts any key length");
    mac.update(b"tower-otp v1 ");
    mac.update(label.as_bytes());
    mac.finalize().into_bytes().into()
}

fn hmac_key(key: &[u8]) -> Hmac<Sha256> {
    <Hmac<Sha256>>::new_from_slice(key).expect("HMAC accepts any key length")
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
}

impl<S, N, R> std::fmt::Debug for OtpRouterBuilder<S, N, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OtpRouterBuilder")
            .field("secret", &self.secret.as_ref().map(|_| "<redacted>"))
            .field("keys", &self.keys)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl<S: Store, N: Notifier> OtpRouterBuilder<S, N> {
    pub(crate) fn new(store: S, notifier: N) -> Self {
        Self {
            store,
            notifier,
            resolver: HashedSubject,
            secret: None,
            keys: None,
            config: OtpConfig::default(),
            clock: Arc::new(SystemClock),
            events: Arc::new(TracingSink),
        }
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

    /// The whole configuration at once.
    pub fn config(mut self, config: OtpConfig) -> Self {
        self.config = config;
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
        }
    }

    /// Checks the configuration and builds the router.
    pub fn build(self) -> Result<OtpRouter<S, N, R>, ConfigError> {
        let secret = self.secret.ok_or_else(|| {
            ConfigError::new("secret", "a server secret of at least 32 bytes is required")
        })?;
        crate::secret::check("secret", &secret)?;
        self.config.validate()?;
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
        let secrets = Secrets {
            pepper: hmac_key(&derive(&secret, "code pepper")),
            identifiers: IdentifierHasher::new(&derive(&secret, "identifier")),
            refresh: hmac_key(&derive(&secret, "refresh successor")),
        };
        Ok(OtpRouter::from_inner(Inner {
            store: self.store,
            notifier: self.notifier,
            resolver: self.resolver,
            config: self.config,
            keys,
            validation,
            secrets,
            clock: self.clock,
            events: self.events,
        }))
    }
}
