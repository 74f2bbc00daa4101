//! `OtpRouter` settings: every limit and default of DESIGN.md, as plain data
//! (checked when the router is built).

use std::time::Duration;

use super::code::{CODE_LENGTHS, WEAK_CODE_LENGTHS};
use crate::client_ip::ClientIpKey;
use crate::error::ConfigError;
use crate::notify::Channel;
use crate::quota::Quota;
use crate::store::SessionLifetime;

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
    /// Minimum time between two codes to one identifier (default 30 s;
    /// zero: none).
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
    /// A session's idle timeout: it ends when its refresh token goes unused
    /// this long (default 30 days). See also
    /// [`OtpRouterBuilder::session_lifetime`](super::OtpRouterBuilder::session_lifetime).
    pub refresh_ttl: Duration,
    /// A session's absolute lifetime: it ends this long after the login,
    /// refreshed or not (default 30 days, NIST SP 800-63B-4's reauthentication
    /// interval for AAL1).
    pub session_max_age: Duration,
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
            refresh_ttl: SessionLifetime::NIST_AAL1.idle,
            session_max_age: SessionLifetime::NIST_AAL1.absolute,
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
    /// The sessions' idle timeout and absolute lifetime.
    pub fn session_lifetime(&self) -> SessionLifetime {
        SessionLifetime {
            idle: self.refresh_ttl,
            absolute: self.session_max_age,
        }
    }

    /// Refuses settings the router cannot run with, naming the setting.
    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
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
            ("session_max_age", self.session_max_age),
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
