//! The endpoint logic: request, verify, refresh, logout, session.

use http::header::{AUTHORIZATION, HeaderValue};
use http::request::Parts;
use http::{Response, StatusCode};
use http_body::Body;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::code;
use super::input::{is_json, parse_json, read_json, read_limited};
use super::router::{Call, json};
use super::secrets::Secrets;
use super::subject::{ResolveError, Subject, SubjectResolver};
use crate::clock::{ceil_secs, unix_micros, unix_secs};
use crate::credentials;
use crate::error::{FullBody, Problem};
use crate::events::EventKind;
use crate::identifier::{Email, HashedId, Identifier, Phone, ascii, base64url_16};
use crate::jwt::{self, REGISTERED_CLAIM_NAMES, RefreshToken, Verified};
use crate::notify::{Channel, Message, Notifier};
use crate::quota::Quota;
use crate::store::{
    Attempt, BoxError, Challenge, Limit, Limited, NewSession, RefreshRotation, Rotation, Store,
    StoreError,
};

type Answer = Result<Response<FullBody>, Problem>;

#[derive(Deserialize)]
struct IdentifierFields {
    phone: Option<String>,
    email: Option<String>,
}

impl IdentifierFields {
    fn parse(self) -> Result<Identifier, Problem> {
        match (self.phone, self.email) {
            (Some(p), None) => Ok(Identifier::Phone(Phone::parse(&p)?)),
            (None, Some(e)) => Ok(Identifier::Email(Email::parse(&e)?)),
            _ => Err(Problem::unprocessable(
                "Send exactly one of \"phone\" or \"email\".",
            )),
        }
    }
}

#[derive(Deserialize)]
struct CodeRequest {
    #[serde(flatten)]
    id: IdentifierFields,
    channel: Option<Channel>,
    locale: Option<String>,
}

#[derive(Deserialize)]
struct VerifyRequest {
    #[serde(flatten)]
    id: IdentifierFields,
    code: String,
}

#[derive(Deserialize)]
struct RefreshRequest {
    refresh_token: String,
}

#[derive(Serialize)]
struct Pending {
    status: &'static str,
    expires_in: u64,
    resend_after: u64,
}

/// The token response. In browser mode the refresh token goes into its
/// cookie instead, and `csrf_token` comes along.
#[derive(Serialize)]
struct TokenPair<'a> {
    access_token: String,
    token_type: &'static str,
    expires_in: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    refresh_token: Option<&'a str>,
    refresh_expires_in: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    csrf_token: Option<&'a str>,
}

/// `GET /sessions`.
#[derive(Serialize)]
struct SessionList<'a> {
    sessions: Vec<ListedSession<'a>>,
}

#[derive(Serialize)]
struct ListedSession<'a> {
    id: &'a str,
    created_at: u64,
    last_used_at: u64,
    current: bool,
}

/// What `POST /logout?scope=` ends.
#[derive(Clone, Copy, PartialEq, Eq)]
enum LogoutScope {
    /// This session (the default).
    Local,
    /// Every other session of the subject.
    Others,
    /// Every session of the subject, this one included.
    Global,
}

impl LogoutScope {
    /// The scope of a logout's query string; `400` for anything but one
    /// `scope` of the three values.
    fn of(query: Option<&str>) -> Result<Self, Problem> {
        match query.unwrap_or_default() {
            "" | "scope=local" => Ok(Self::Local),
            "scope=others" => Ok(Self::Others),
            "scope=global" => Ok(Self::Global),
            _ => Err(Problem::invalid_request(
                "The query may only be scope=local, scope=others or scope=global.",
            )),
        }
    }

    /// The `reason` of its `session.revoked` event.
    fn name(self) -> &'static str {
        match self {
            Self::Local => "local",
            Self::Others => "others",
            Self::Global => "global",
        }
    }
}

/// The subject of a verified access token (`401` without one: the router's
/// tokens always carry it).
fn subject_of(verified: &Verified<Map<String, Value>>) -> Result<&str, Problem> {
    verified
        .registered
        .sub
        .as_deref()
        .ok_or_else(Problem::invalid_token)
}

/// The store key of the index of `sub`'s sessions under key prefix
/// `prefix` (hashed: subject ids are the app's, of any length).
pub(super) fn subject_key(prefix: &str, secrets: &Secrets, sub: &str) -> String {
    let hash = secrets.identifiers.hash_str("subject", sub);
    let hash = hash.encoded();
    let mut key = String::with_capacity(prefix.len() + 4 + hash.len());
    key.push_str(prefix);
    key.push_str("sub:");
    key.push_str(ascii(&hash));
    key
}

/// An empty `204 No Content`.
fn no_content() -> Response<FullBody> {
    let mut res = Response::new(FullBody::default());
    *res.status_mut() = StatusCode::NO_CONTENT;
    res
}

#[derive(Serialize)]
struct SessionInfo<'a> {
    subject: &'a str,
    expires_at: u64,
    claims: Map<String, Value>,
}

/// The claims of an access token: the subject's own (never a registered
/// name, see [`SessionData::of`]) and the registered ones the router sets.
#[derive(Serialize)]
struct AccessClaims<'a> {
    #[serde(flatten)]
    custom: &'a Map<String, Value>,
    sub: &'a str,
    iat: u64,
    exp: u64,
    jti: &'a str,
    sid: &'a str,
    /// How the subject authenticated (RFC 8176 values): `["otp","sms"]`.
    amr: [&'a str; 2],
    /// When the login happened (OpenID Connect Core §2): the session's
    /// start, unchanged by refreshes.
    auth_time: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    iss: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    aud: Option<&'a str>,
}

/// Claims the router sets besides the registered ones: the subject's own
/// claims may not use these names either.
const SESSION_CLAIM_NAMES: [&str; 2] = ["amr", "auth_time"];

/// Whether `name` is a claim the router sets itself.
fn router_claim(name: &str) -> bool {
    REGISTERED_CLAIM_NAMES.contains(&name) || SESSION_CLAIM_NAMES.contains(&name)
}

/// What a session stores: enough to mint access tokens on refresh.
#[derive(Serialize, Deserialize)]
struct SessionData {
    sub: String,
    #[serde(default)]
    claims: Map<String, Value>,
    /// The login's time, seconds since the epoch.
    auth_time: u64,
    /// The channel the code went out on, as its `amr` value.
    amr: String,
}

/// The RFC 8176 `amr` value for a code delivered on `channel` (`tel` is a
/// voice call; WhatsApp and email have no registered value and go by name).
fn amr_of(channel: Channel) -> &'static str {
    match channel {
        Channel::Voice => "tel",
        other => other.as_str(),
    }
}

impl SessionData {
    /// The subject's id and its claims, less those the router sets itself,
    /// logged in at `auth_time` with a code sent on `channel`.
    fn of(subject: Subject, channel: Channel, auth_time: u64) -> Self {
        Self {
            sub: subject.id,
            claims: subject
                .claims
                .into_iter()
                .filter(|(k, _)| !router_claim(k))
                .collect(),
            auth_time,
            amr: amr_of(channel).to_owned(),
        }
    }
}

/// Parses `data` as each request body the router accepts (fuzzing entry).
#[cfg(any(test, fuzzing))]
pub(super) fn fuzz_request_body(data: &[u8]) {
    use super::input::parse_json;
    if let Ok(req) = parse_json::<CodeRequest>(data) {
        let _ = req.id.parse();
        if let Some(locale) = req.locale {
            let _ = valid_locale(&locale);
        }
    }
    if let Ok(req) = parse_json::<VerifyRequest>(data) {
        let _ = req.id.parse();
        let _ = code::well_formed(&req.code, 6);
    }
    if let Ok(req) = parse_json::<RefreshRequest>(data) {
        let _ = RefreshToken::parse(&req.refresh_token);
    }
}

/// `400 invalid_code`: the one answer to a wrong, expired or unknown code.
pub(crate) fn invalid_code() -> Problem {
    Problem::new(
        StatusCode::BAD_REQUEST,
        "invalid_code",
        "The code is wrong, expired or was never sent.",
    )
}

/// The channel a code for `id` goes by when the request names none.
fn default_channel(id: &Identifier) -> Channel {
    match id {
        Identifier::Phone(_) => Channel::Sms,
        Identifier::Email(_) => Channel::Email,
    }
}

/// `400 invalid_grant` (RFC 6749 §5.2): the one answer to an unknown,
/// expired, revoked or reused refresh token.
fn invalid_grant() -> Problem {
    Problem::new(
        StatusCode::BAD_REQUEST,
        "invalid_grant",
        "The refresh token is invalid, expired or revoked.",
    )
}

fn valid_locale(locale: &str) -> bool {
    (2..=35).contains(&locale.len())
        && locale
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// One limit of a request: the policy (named as its [`Limits`] field),
/// the store key it counts under and its quota.
///
/// [`Limits`]: super::Limits
struct Check {
    policy: &'static str,
    key: String,
    quota: Quota,
}

impl Check {
    fn new(policy: &'static str, key: String, quota: Quota) -> Self {
        Self { policy, key, quota }
    }

    /// The store's view of `checks`.
    fn limits(checks: &[Self]) -> Vec<Limit<'_>> {
        checks
            .iter()
            .map(|c| Limit {
                key: &c.key,
                quota: &c.quota,
            })
            .collect()
    }
}

impl<S: Store, N: Notifier, R: SubjectResolver> Call<S, N, R> {
    /// `429 too_many_attempts`: the challenge burned after `max_attempts`
    /// wrong codes. Names the policy `max_attempts` and carries its
    /// `RateLimit` fields (per challenge, so no window); more attempts come
    /// with a new code, which may be requested after the resend cooldown.
    fn too_many_attempts(&self) -> Problem {
        let wait = self.site.config.limits.resend_cooldown;
        let secs = ceil_secs(wait).max(1);
        let mut problem = Problem::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_attempts",
            "Too many wrong codes; request a new code.",
        )
        .with_retry_after(wait)
        .with_violated_policies(["max_attempts"]);
        let fields = [
            (
                crate::rate_limit::RATELIMIT_POLICY,
                format!("\"max_attempts\";q={}", self.site.config.max_attempts),
            ),
            (
                crate::rate_limit::RATELIMIT,
                format!("\"max_attempts\";r=0;t={secs}"),
            ),
        ];
        for (name, value) in fields {
            if let Ok(value) = HeaderValue::try_from(value) {
                problem = problem.with_header(name, value);
            }
        }
        problem
    }

    /// The outcome of a store step gated by the limits `checks` (one
    /// all-or-nothing decision with the step, see [`ChallengeStore`]): a
    /// refusal is a `429` naming the refusing policies with their
    /// `RateLimit` fields (nothing was counted), a store failure a `503`.
    ///
    /// [`ChallengeStore`]: crate::store::ChallengeStore
    fn gate<T>(
        &self,
        checks: &[Check],
        id: &HashedId,
        outcome: Result<Limited<T>, StoreError>,
    ) -> Result<T, Problem> {
        let decisions = match outcome {
            Ok(Limited::Passed(t)) => return Ok(t),
            Ok(Limited::Refused(d)) if d.len() == checks.len() => d,
            Ok(Limited::Refused(d)) => {
                let err = StoreError::Corrupt(format!(
                    "{} rate decisions for {} limits",
                    d.len(),
                    checks.len()
                ));
                return Err(self.store_failed(&err));
            }
            Err(e) => return Err(self.store_failed(&e)),
        };
        let violated: Vec<_> = checks
            .iter()
            .zip(&decisions)
            .filter(|(_, d)| !d.allowed)
            .map(|(c, d)| (c.policy, &c.quota, d))
            .collect();
        for (policy, _, _) in &violated {
            self.event(EventKind::RateLimitExceeded, Some(id), Some(policy));
        }
        Err(crate::rate_limit::refused(&violated))
    }

    /// The store key of identifier hash `id` under `namespace`, in this
    /// request's key space.
    fn id_key(&self, namespace: &str, id: &HashedId) -> String {
        self.site.key(namespace, ascii(&id.encoded()))
    }

    /// The store id of session family `sid` in this request's key space
    /// (the token carries only `sid`: another tenant's token names no family
    /// of this one).
    fn family<'a>(&self, sid: &'a str) -> std::borrow::Cow<'a, str> {
        if self.site.key_prefix.is_empty() {
            std::borrow::Cow::Borrowed(sid)
        } else {
            std::borrow::Cow::Owned(self.site.key("", sid))
        }
    }

    /// The store key of the index of `sub`'s sessions, in this request's
    /// key space.
    fn subject_key(&self, sub: &str) -> String {
        subject_key(&self.site.key_prefix, &self.secrets, sub)
    }

    /// A challenge no code matches: its MAC is random, not a code's.
    fn decoy(&self, id: &Identifier, now: std::time::SystemTime) -> Challenge {
        Challenge {
            id: rand::random(),
            mac: rand::random(),
            expires_at_us: unix_micros(now + self.site.config.code_ttl),
            channel: default_channel(id),
        }
    }

    fn channel_for(&self, id: &Identifier, asked: Option<Channel>) -> Result<Channel, Problem> {
        let channel = asked.unwrap_or(default_channel(id));
        let fits = matches!(
            (id, channel),
            (
                Identifier::Phone(_),
                Channel::Sms | Channel::Whatsapp | Channel::Voice
            ) | (Identifier::Email(_), Channel::Email)
        );
        if !fits || !self.site.config.channels.contains(&channel) {
            return Err(Problem::invalid_request(format!(
                "The channel {channel} is not available for this identifier."
            )));
        }
        Ok(channel)
    }

    fn country_allowed(&self, phone: &Phone) -> bool {
        let denied = self
            .site
            .config
            .denied_calling_codes
            .iter()
            .any(|c| phone.has_calling_code(c));
        let allowed = self
            .site
            .config
            .allowed_calling_codes
            .as_ref()
            .is_none_or(|list| list.iter().any(|c| phone.has_calling_code(c)));
        allowed && !denied
    }

    pub(crate) async fn request_code(
        &self,
        parts: &Parts,
        body: impl Body<Error: Into<BoxError>>,
    ) -> Answer {
        let req: CodeRequest = read_json(parts, body, self.site.config.body_limit).await?;
        let id = req.id.parse()?;
        let channel = self.channel_for(&id, req.channel)?;
        if let Some(locale) = &req.locale
            && !valid_locale(locale)
        {
            {
                return Err(Problem::unprocessable(
                    "\"locale\" must be a BCP 47 language tag.",
                ));
            }
        }
        let hashed = self.secrets.identifiers.hash(&id);
        if let Identifier::Phone(phone) = &id
            && !self.country_allowed(phone)
        {
            {
                self.event(EventKind::CountryRefused, Some(&hashed), None);
                return Err(Problem::new(
                    StatusCode::FORBIDDEN,
                    "country_not_allowed",
                    "Codes cannot be sent to numbers in this country or range.",
                ));
            }
        }

        let limits = &self.site.config.limits;
        // Limits count per mailbox / number, whatever alias was typed.
        let limit_id = self.secrets.identifiers.limit_hash(&id);
        let mut checks = vec![Check::new(
            "request_per_ip",
            self.ip_key("otp:req:ip:")?,
            limits.request_per_ip,
        )];
        // A zero cooldown is none (a tenant's `resend_cooldown_secs: 0`).
        if !limits.resend_cooldown.is_zero() {
            checks.push(Check::new(
                "resend_cooldown",
                self.id_key("otp:req:cd:", &limit_id),
                Quota::new(1, limits.resend_cooldown),
            ));
        }
        checks.push(Check::new(
            "request_per_identifier",
            self.id_key("otp:req:id:", &limit_id),
            limits.request_per_identifier,
        ));
        if let Identifier::Phone(phone) = &id {
            let digits = phone.digits();
            let prefix = &digits[..digits
                .len()
                .saturating_sub(usize::from(limits.prefix_hidden_digits))];
            let prefix_key = self.secrets.identifiers.hash_str("prefix", prefix);
            checks.push(Check::new(
                "request_per_number_prefix",
                self.id_key("otp:req:px:", &prefix_key),
                limits.request_per_number_prefix,
            ));
        }
        checks.push(Check::new(
            "global_messages",
            self.site.key("otp:req:global", ""),
            limits.global_messages,
        ));
        let pending = json(
            StatusCode::ACCEPTED,
            &Pending {
                status: "pending",
                expires_in: ceil_secs(self.site.config.code_ttl),
                resend_after: ceil_secs(limits.resend_cooldown),
            },
        );
        if self.site.config.known_users_only {
            // Everyone gets the same 202 at the same moment, after the same
            // work: a decoy challenge no code matches (put with the limits,
            // in one step), so that attempts at verify count and burn alike
            // for identifiers that get a code and for those that never will.
            // Whether a message goes out (and a real challenge replaces the
            // decoy) is decided off the request path.
            let now = self.now();
            self.put_requested(&hashed, &self.decoy(&id, now), &checks, now)
                .await?;
            let this = self.clone();
            tokio::spawn(async move {
                match this.resolver.may_request(&id).await {
                    Ok(true) => {
                        let _ = this.deliver(&id, &hashed, channel, req.locale, None).await;
                    }
                    Ok(false) => {}
                    Err(e) => {
                        tracing::error!(target: "tower_otp", error = %e, "may_request failed; no message sent")
                    }
                }
            });
            return Ok(pending);
        }
        let metered = self.meter_request().await?;
        let delivered = self
            .deliver(&id, &hashed, channel, req.locale, Some(&checks))
            .await;
        self.settle_request(&metered, delivered.as_ref().copied())
            .await;
        delivered?;
        let mut pending = pending;
        super::metering::add_quota_fields(&mut pending, &metered);
        Ok(pending)
    }

    /// The store step of a code request: puts `challenge` for `hashed` with
    /// the request's limits `checks`, all or nothing (a `429` when one
    /// refuses, `503` on a store error), then emits `otp.requested`.
    async fn put_requested(
        &self,
        hashed: &HashedId,
        challenge: &Challenge,
        checks: &[Check],
        now: std::time::SystemTime,
    ) -> Result<(), Problem> {
        let put = self
            .store
            .put_challenge(
                &self.id_key("", hashed),
                challenge,
                &Check::limits(checks),
                now,
            )
            .await;
        self.gate(checks, hashed, put)?;
        self.event(EventKind::OtpRequested, Some(hashed), None);
        Ok(())
    }

    /// Puts a fresh challenge and sends its code; rolls the challenge back
    /// when delivery fails.
    ///
    /// `checks` are the request's limits, decided with the put in one store
    /// step (the request path). `None` is known-users mode off the request
    /// path, after the decoy was put with the limits: then a failed delivery
    /// rolls back to a decoy, as an identifier must never be left without
    /// the challenge an unknown one would have.
    async fn deliver(
        &self,
        id: &Identifier,
        hashed: &HashedId,
        channel: Channel,
        locale: Option<String>,
        checks: Option<&[Check]>,
    ) -> Result<(), Problem> {
        let now = self.now();
        let code = code::generate(self.site.config.code_length);
        let challenge = Challenge {
            id: rand::random(),
            mac: code::mac(&self.secrets.pepper, hashed, &code),
            expires_at_us: unix_micros(now + self.site.config.code_ttl),
            channel,
        };
        let key = self.id_key("", hashed);
        match checks {
            Some(checks) => {
                self.put_requested(hashed, &challenge, checks, now).await?;
            }
            None => {
                if let Err(e) = self.store.put_challenge(&key, &challenge, &[], now).await {
                    return Err(self.store_failed(&e));
                }
            }
        }
        let mut msg = Message::new(channel, id.as_str(), code, self.site.config.code_ttl)
            .with_app_name(self.site.config.app_name.clone());
        msg.locale = locale;
        msg.templates.clone_from(&self.site.templates);
        match self.notifier.send(&msg).await {
            Ok(_) => {
                self.event(EventKind::OtpSent, Some(hashed), None);
                Ok(())
            }
            Err(err) => {
                tracing::warn!(target: "tower_otp", error = %err, channel = %channel, "delivery failed; challenge rolled back");
                match self.store.remove_challenge(&key, &challenge.id).await {
                    Ok(true) if checks.is_none() => {
                        if let Err(e) = self
                            .store
                            .put_challenge(&key, &self.decoy(id, now), &[], now)
                            .await
                        {
                            tracing::error!(target: "tower_otp", error = %e, "could not put a decoy challenge after a failed delivery");
                        }
                    }
                    Ok(_) => {}
                    Err(e) => {
                        tracing::error!(target: "tower_otp", error = %e, "could not roll back challenge; it expires on its own");
                    }
                }
                self.event(EventKind::OtpDeliveryFailed, Some(hashed), None);
                Err(Problem::new(
                    StatusCode::BAD_GATEWAY,
                    "delivery_failed",
                    "The code could not be delivered; try again later.",
                ))
            }
        }
    }

    pub(crate) async fn verify_code(
        &self,
        parts: &Parts,
        body: impl Body<Error: Into<BoxError>>,
    ) -> Answer {
        let answer = self.verify(parts, body).await;
        self.count_verification(answer.as_ref().map(|_| ()));
        answer
    }

    async fn verify(&self, parts: &Parts, body: impl Body<Error: Into<BoxError>>) -> Answer {
        let req: VerifyRequest = read_json(parts, body, self.site.config.body_limit).await?;
        let id = req.id.parse()?;
        if !code::well_formed(&req.code, self.site.config.code_length) {
            return Err(invalid_code());
        }
        let hashed = self.secrets.identifiers.hash(&id);
        let limits = &self.site.config.limits;
        let limit_id = self.secrets.identifiers.limit_hash(&id);
        let checks = [
            Check::new(
                "verify_per_ip",
                self.ip_key("otp:verify:ip:")?,
                limits.verify_per_ip,
            ),
            Check::new(
                "verify_per_identifier",
                self.id_key("otp:verify:id:", &limit_id),
                limits.verify_per_identifier,
            ),
        ];
        let key = self.id_key("", &hashed);
        let attempt = self
            .store
            .attempt_challenge(
                &key,
                self.site.config.max_attempts,
                &Check::limits(&checks),
                self.now(),
            )
            .await;
        let Attempt::Open {
            challenge,
            remaining,
        } = self.gate(&checks, &hashed, attempt)?
        else {
            self.event(EventKind::OtpFailed, Some(&hashed), Some("no_challenge"));
            return Err(invalid_code());
        };
        let presented = code::mac(&self.secrets.pepper, &hashed, &req.code);
        if !code::mac_eq(&challenge.mac, &presented) {
            if remaining == 0 {
                self.event(EventKind::OtpLocked, Some(&hashed), None);
                return Err(self.too_many_attempts());
            }
            self.event(EventKind::OtpFailed, Some(&hashed), Some("mismatch"));
            return Err(invalid_code());
        }
        // The subject comes first: consuming the code starts the session in
        // the same store step, so nothing is spent when the resolver is down.
        let subject = match self.resolver.resolve(&id, &hashed).await {
            Ok(subject) => subject,
            Err(ResolveError::Refused) => {
                // The code was right: it is spent, but opens no session.
                if let Err(e) = self.store.remove_challenge(&key, &challenge.id).await {
                    return Err(self.store_failed(&e));
                }
                return Err(Problem::new(
                    StatusCode::FORBIDDEN,
                    "access_denied",
                    "This account may not log in.",
                ));
            }
            Err(ResolveError::Unavailable(why)) => {
                tracing::error!(target: "tower_otp", error = %why, "subject resolver failed");
                return Err(Problem::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "The service is temporarily unavailable; retry later.",
                ));
            }
        };
        let sid = RefreshToken::new_sid();
        let refresh = RefreshToken::generate(&sid);
        let data = SessionData::of(subject, challenge.channel, unix_secs(self.now()));
        let bytes =
            serde_json::to_vec(&data).map_err(|_| Problem::invalid_request("unusable claims"))?;
        // Exactly one concurrent winner consumes the challenge, and only its
        // session exists; a store failure spends nothing.
        let won = self
            .store
            .consume_challenge(
                &key,
                &challenge.id,
                NewSession {
                    sid: &self.family(&sid),
                    refresh_hash: &refresh.hash(),
                    data: &bytes,
                    subject: &self.subject_key(&data.sub),
                    lifetime: self.site.config.session_lifetime(),
                },
                self.now(),
            )
            .await
            .map_err(|e| self.store_failed(&e))?;
        if !won {
            self.event(EventKind::OtpFailed, Some(&hashed), Some("already_used"));
            return Err(invalid_code());
        }
        let answer = self.token_pair(parts, &sid, &data, &refresh)?;
        self.event(EventKind::OtpVerified, Some(&hashed), None);
        Ok(answer)
    }

    /// Mints an access token for session `sid` and answers it with
    /// `refresh`: in the body, or (browser mode, a request from an allowed
    /// page) in the refresh cookie.
    fn token_pair(
        &self,
        parts: &Parts,
        sid: &str,
        data: &SessionData,
        refresh: &RefreshToken,
    ) -> Answer {
        // The custom claims sit beside the registered ones in one JSON
        // object: a registered name among them would be a duplicate key.
        if data.claims.keys().any(|k| router_claim(k)) {
            return Err(Problem::invalid_request("unusable claims"));
        }
        let config = &self.site.config;
        let iat = unix_secs(self.now());
        // Nothing outlives the session's absolute lifetime.
        let session_left = (data.auth_time + ceil_secs(config.session_max_age)).saturating_sub(iat);
        let expires_in = ceil_secs(config.access_ttl).min(session_left);
        let refresh_expires_in = ceil_secs(config.refresh_ttl).min(session_left);
        let jti = base64url_16(&rand::random());
        let claims = AccessClaims {
            custom: &data.claims,
            sub: &data.sub,
            iat,
            exp: iat + expires_in,
            jti: ascii(&jti),
            sid,
            amr: ["otp", &data.amr],
            auth_time: data.auth_time,
            iss: config.issuer.as_deref(),
            aud: config.audience.as_deref(),
        };
        let access_token = jwt::encode(&self.keys, &claims).map_err(|e| match e {
            // ES256 signing needs the system random generator.
            jwt::JwtError::Signing => {
                tracing::error!(target: "tower_otp", error = %e, "access token not signed");
                Problem::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "The service is temporarily unavailable; retry later.",
                )
            }
            _ => Problem::invalid_request("unusable claims"),
        })?;
        let browser = self
            .browser
            .as_ref()
            .filter(|b| b.is_page_request(&parts.headers));
        let csrf = browser.map(|b| b.csrf_token(sid));
        let mut res = json(
            StatusCode::OK,
            &TokenPair {
                access_token,
                token_type: "Bearer",
                expires_in,
                refresh_token: browser.is_none().then(|| refresh.as_str()),
                refresh_expires_in,
                csrf_token: csrf.as_deref(),
            },
        );
        if let (Some(b), Some(csrf)) = (browser, &csrf) {
            b.set_cookies(&mut res, refresh.as_str(), csrf, refresh_expires_in);
        }
        Ok(res)
    }

    pub(crate) async fn refresh<B>(&self, parts: &Parts, body: B) -> Answer
    where
        B: Body,
        B::Error: Into<BoxError>,
    {
        let presented = self.presented_refresh(parts, body).await?;
        let successor = presented.successor(&self.secrets.refresh);
        let rotation = self
            .store
            .rotate_refresh(
                RefreshRotation {
                    sid: &self.family(presented.sid()),
                    presented: &presented.hash(),
                    successor: &successor.hash(),
                    grace: self.site.config.refresh_grace,
                    lifetime: self.site.config.session_lifetime(),
                },
                self.now(),
            )
            .await
            .map_err(|e| self.store_failed(&e))?;
        let data = match rotation {
            Rotation::Rotated(data) | Rotation::Grace(data) => data,
            Rotation::Reused => {
                self.event(EventKind::TokenReuseDetected, None, None);
                return Err(invalid_grant());
            }
            Rotation::Invalid => return Err(invalid_grant()),
        };
        let data: SessionData = serde_json::from_slice(&data).map_err(|_| invalid_grant())?;
        self.event(EventKind::TokenRefreshed, None, None);
        self.token_pair(parts, presented.sid(), &data, &successor)
    }

    /// The refresh token of a refresh request: `{"refresh_token"}` in the
    /// body, or — browser mode, empty body — the refresh cookie, once the
    /// request has passed the CSRF checks (`403 csrf_failed` before any
    /// store call).
    async fn presented_refresh<B>(&self, parts: &Parts, body: B) -> Result<RefreshToken, Problem>
    where
        B: Body,
        B::Error: Into<BoxError>,
    {
        let limit = self.site.config.body_limit;
        let Some(browser) = &self.browser else {
            let req: RefreshRequest = read_json(parts, body, limit).await?;
            return RefreshToken::parse(&req.refresh_token).ok_or_else(invalid_grant);
        };
        let bytes = read_limited(parts, body, limit).await?;
        if !bytes.is_empty() {
            if !is_json(parts) {
                return Err(Problem::unsupported_media_type());
            }
            let req: RefreshRequest = parse_json(&bytes)?;
            return RefreshToken::parse(&req.refresh_token).ok_or_else(invalid_grant);
        }
        let token = browser
            .refresh_cookie(&parts.headers)
            .and_then(RefreshToken::parse)
            .ok_or_else(invalid_grant)?;
        browser.check(&parts.headers, token.sid())?;
        Ok(token)
    }

    /// Verifies the bearer access token, including the revocation check.
    async fn authenticate(&self, parts: &Parts) -> Result<Verified<Map<String, Value>>, Problem> {
        // RFC 6750 §3.1: no credentials (or another scheme) get a bare
        // `Bearer` challenge; a Bearer token that fails gets `invalid_token`.
        let header = parts
            .headers
            .get(AUTHORIZATION)
            .filter(|v| credentials::is_bearer_scheme(v))
            .ok_or_else(Problem::no_credentials)?;
        let token = credentials::bearer_token(header).ok_or_else(Problem::invalid_token)?;
        let verified: Verified<Map<String, Value>> =
            jwt::decode(&self.keys, &self.site.validation, token, self.now()).map_err(|e| {
                tracing::debug!(target: "tower_otp", reason = %e, "access token refused");
                Problem::invalid_token()
            })?;
        let sid = verified
            .registered
            .sid
            .as_deref()
            .ok_or_else(Problem::invalid_token)?;
        if self
            .store
            .is_revoked(&self.family(sid))
            .await
            .map_err(|e| self.store_failed(&e))?
        {
            return Err(Problem::invalid_token());
        }
        Ok(verified)
    }

    /// `POST /logout?scope=`: ends this session (`local`, the default),
    /// every other session of the subject (`others`), or all of them
    /// (`global`).
    pub(crate) async fn logout(&self, parts: &Parts) -> Answer {
        let scope = LogoutScope::of(parts.uri.query())?;
        let verified = self.authenticate(parts).await?;
        let sid = self.family(verified.registered.sid.as_deref().unwrap_or_default());
        let ttl = self.site.config.session_max_age;
        let now = self.now();
        let ended = match scope {
            LogoutScope::Local => self.store.revoke(&sid, ttl).await,
            LogoutScope::Others | LogoutScope::Global => {
                let subject = self.subject_key(subject_of(&verified)?);
                let keep = (scope == LogoutScope::Others).then_some(&*sid);
                match self.store.revoke_subject(&subject, keep, ttl, now).await {
                    // The current session is revoked by id too: it may
                    // predate the index (or its entry have been pruned).
                    Ok(_) if keep.is_none() => self.store.revoke(&sid, ttl).await,
                    other => other.map(drop),
                }
            }
        };
        ended.map_err(|e| self.store_failed(&e))?;
        self.event(EventKind::SessionRevoked, None, Some(scope.name()));
        let mut res = no_content();
        if scope != LogoutScope::Others {
            self.clear_cookies(parts, &mut res);
        }
        Ok(res)
    }

    /// `GET /sessions`: the subject's live sessions, oldest first.
    pub(crate) async fn sessions(&self, parts: &Parts) -> Answer {
        let verified = self.authenticate(parts).await?;
        let subject = self.subject_key(subject_of(&verified)?);
        let current = self.family(verified.registered.sid.as_deref().unwrap_or_default());
        let sessions = self
            .store
            .list_sessions(&subject, self.now())
            .await
            .map_err(|e| self.store_failed(&e))?;
        let prefix = self.site.key_prefix.as_str();
        let sessions: Vec<ListedSession<'_>> = sessions
            .iter()
            .map(|s| ListedSession {
                id: s.sid.strip_prefix(prefix).unwrap_or(&s.sid),
                created_at: unix_secs(s.created_at),
                last_used_at: unix_secs(s.last_used_at),
                current: s.sid == *current,
            })
            .collect();
        Ok(json(StatusCode::OK, &SessionList { sessions }))
    }

    /// `DELETE /sessions/{id}`: ends one of the subject's own sessions; an
    /// unknown id and another subject's session are the same `404`.
    pub(crate) async fn end_session(&self, parts: &Parts, id: &str) -> Answer {
        let verified = self.authenticate(parts).await?;
        let subject = self.subject_key(subject_of(&verified)?);
        if !RefreshToken::valid_sid(id) {
            return Err(Problem::not_found());
        }
        let ended = self
            .store
            .revoke_session(
                &subject,
                &self.family(id),
                self.site.config.session_max_age,
                self.now(),
            )
            .await
            .map_err(|e| self.store_failed(&e))?;
        if !ended {
            return Err(Problem::not_found());
        }
        self.event(EventKind::SessionRevoked, None, Some("session"));
        let mut res = no_content();
        if verified.registered.sid.as_deref() == Some(id) {
            self.clear_cookies(parts, &mut res);
        }
        Ok(res)
    }

    /// Clears the browser-mode cookies on `res` for a request from a page.
    fn clear_cookies(&self, parts: &Parts, res: &mut Response<FullBody>) {
        if let Some(b) = self
            .browser
            .as_ref()
            .filter(|b| b.is_page_request(&parts.headers))
        {
            b.clear_cookies(res);
        }
    }

    pub(crate) async fn session(&self, parts: &Parts) -> Answer {
        let verified = self.authenticate(parts).await?;
        let claims = verified
            .claims
            .into_iter()
            .filter(|(k, _)| !router_claim(k))
            .collect();
        Ok(json(
            StatusCode::OK,
            &SessionInfo {
                subject: verified.registered.sub.as_deref().unwrap_or_default(),
                expires_at: verified.registered.exp.unwrap_or_default(),
                claims,
            },
        ))
    }
}
