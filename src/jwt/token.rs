//! Encoding and verification of JWS compact tokens (HS256, EdDSA, ES256),
//! each key pinned to its algorithm.

use std::borrow::Cow;
use std::fmt;
use std::time::{Duration, SystemTime};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::de::{DeserializeOwned, IgnoredAny};
use serde::{Deserialize, Deserializer, Serialize};

use super::key::Algorithm;
use super::keys::{JwtKeys, KeySet};
use crate::clock::unix_secs;

pub use crate::credentials::MAX_TOKEN_LEN;

/// Why a token was refused. Clients only ever see `401 invalid_token`; this
/// detail goes to `tracing`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum JwtError {
    /// Not three base64url segments of JSON, or too long.
    Malformed,
    /// `alg` is not one of ours (e.g. `none`, `HS512`, `RS256`), or not the
    /// algorithm of the key the `kid` names (an HS256 token naming an
    /// Ed25519 key).
    Algorithm,
    /// The `kid` names no configured key (no lookup is made), or is missing.
    UnknownKey,
    /// The signature does not match.
    Signature,
    /// `exp` is in the past (beyond leeway), or missing when required.
    Expired,
    /// `nbf` or `iat` is in the future (beyond leeway).
    NotYetValid,
    /// `iss` missing or not accepted.
    Issuer,
    /// `aud` missing, not accepted, or present while no audience is
    /// configured.
    Audience,
    /// The claims do not have the expected shape.
    Claims,
    /// Signing failed (the system random generator ES256 signing needs).
    Signing,
}

impl fmt::Display for JwtError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Malformed => "malformed token",
            Self::Algorithm => "algorithm not allowed",
            Self::UnknownKey => "unknown key id",
            Self::Signature => "bad signature",
            Self::Expired => "token expired",
            Self::NotYetValid => "token not yet valid",
            Self::Issuer => "issuer not accepted",
            Self::Audience => "audience not accepted",
            Self::Claims => "claims have an unexpected shape",
            Self::Signing => "signing failed",
        })
    }
}

impl std::error::Error for JwtError {}

/// `aud`: one string or an array of strings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
#[non_exhaustive]
pub enum Audience {
    /// A single audience.
    One(String),
    /// Several audiences.
    Many(Vec<String>),
}

impl Audience {
    fn contains(&self, aud: &str) -> bool {
        match self {
            Self::One(a) => a == aud,
            Self::Many(all) => all.iter().any(|a| a == aud),
        }
    }
}

/// The registered claims `tower-otp` issues and checks (plus `sid`, the
/// session family id).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegisteredClaims {
    /// Subject.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    /// Expiry, seconds since the epoch. A fractional NumericDate
    /// (RFC 7519 §2) is accepted, rounded down to a whole second.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[serde(deserialize_with = "floor_date")]
    pub exp: Option<u64>,
    /// Not before, seconds since the epoch. A fractional NumericDate
    /// (RFC 7519 §2) is accepted, rounded up to a whole second.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[serde(deserialize_with = "ceil_date")]
    pub nbf: Option<u64>,
    /// Issued at, seconds since the epoch. A fractional NumericDate
    /// (RFC 7519 §2) is accepted, rounded up to a whole second.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[serde(deserialize_with = "ceil_date")]
    pub iat: Option<u64>,
    /// Issuer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    /// Audience.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aud: Option<Audience>,
    /// Token id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
    /// Session family id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
}

/// A NumericDate (RFC 7519 §2: any JSON number of seconds, fractions
/// allowed) as whole seconds: `round` maps a fraction to the side that is
/// safe for the claim; negative values are 0 and huge ones saturate.
fn numeric_date<'de, D: Deserializer<'de>>(
    d: D,
    round: fn(f64) -> f64,
) -> Result<Option<u64>, D::Error> {
    Ok(
        Option::<serde_json::Number>::deserialize(d)?.map(|n| match n.as_u64() {
            Some(secs) => secs,
            // `as` saturates: negative (and NaN) to 0, too large to u64::MAX.
            None => n.as_f64().map_or(0, |secs| round(secs) as u64),
        }),
    )
}

/// `exp` rounds down: a token never lives longer than it says.
fn floor_date<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    numeric_date(d, f64::floor)
}

/// `nbf` and `iat` round up: a token never starts earlier than it says.
fn ceil_date<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    numeric_date(d, f64::ceil)
}

/// Names of the claims above: extra claims may not override them.
pub const REGISTERED_CLAIM_NAMES: [&str; 8] =
    ["sub", "exp", "nbf", "iat", "iss", "aud", "jti", "sid"];

/// What a valid token must satisfy beyond its signature.
///
/// A configured issuer or audience must be *present* in the token, not only
/// checked when present. A token that carries an `aud` claim is refused
/// when no audience is configured: RFC 7519 §4.1.3 says a recipient that
/// does not identify itself with a value of `aud` must reject the token, so
/// a token minted for another service cannot be replayed here.
///
/// Built from [`Default`] and the methods below; the fields stay public to
/// read and set (`validation.require_exp = false`), but new ones may come,
/// so it cannot be written as a struct literal.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Validation {
    /// Accepted issuers (empty: `iss` not checked).
    pub issuers: Vec<String>,
    /// Accepted audiences (empty: a token carrying `aud` is refused).
    pub audiences: Vec<String>,
    /// Clock skew tolerated on `exp`, `nbf` and `iat` (default 30 s).
    pub leeway: Duration,
    /// Refuse tokens without `exp` (default true).
    pub require_exp: bool,
}

impl Default for Validation {
    fn default() -> Self {
        Self {
            issuers: Vec::new(),
            audiences: Vec::new(),
            leeway: Duration::from_secs(30),
            require_exp: true,
        }
    }
}

impl Validation {
    /// Requires `iss` to be present and equal to `iss`.
    #[must_use]
    pub fn issuer(mut self, iss: impl Into<String>) -> Self {
        self.issuers.push(iss.into());
        self
    }

    /// Requires `aud` to be present and contain `aud`.
    #[must_use]
    pub fn audience(mut self, aud: impl Into<String>) -> Self {
        self.audiences.push(aud.into());
        self
    }

    /// Sets the leeway.
    #[must_use]
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    pub(crate) fn check(&self, c: &RegisteredClaims, now: SystemTime) -> Result<(), JwtError> {
        self.check_at(c, unix_secs(now))
    }

    /// [`check`](Self::check) at `now` in whole seconds since the epoch (a
    /// cached token's check reads the clock in µs, not as a `SystemTime`).
    pub(crate) fn check_at(&self, c: &RegisteredClaims, now: u64) -> Result<(), JwtError> {
        let leeway = self.leeway.as_secs();
        match c.exp {
            Some(exp) if now > exp.saturating_add(leeway) => return Err(JwtError::Expired),
            None if self.require_exp => return Err(JwtError::Expired),
            _ => {}
        }
        if c.nbf.is_some_and(|nbf| nbf > now.saturating_add(leeway))
            || c.iat.is_some_and(|iat| iat > now.saturating_add(leeway))
        {
            return Err(JwtError::NotYetValid);
        }
        if !self.issuers.is_empty() && !c.iss.as_ref().is_some_and(|iss| self.issuers.contains(iss))
        {
            return Err(JwtError::Issuer);
        }
        // RFC 7519 §4.1.3: with `aud` present, one of its values must be
        // ours; with no audience configured, none can be.
        if (!self.audiences.is_empty() || c.aud.is_some())
            && !c
                .aud
                .as_ref()
                .is_some_and(|aud| self.audiences.iter().any(|a| aud.contains(a)))
        {
            return Err(JwtError::Audience);
        }
        Ok(())
    }
}

/// A verified token: its registered claims, the custom claims `C`, and the
/// `kid` it was verified with.
#[derive(Clone, Debug)]
pub struct Verified<C> {
    /// Registered claims.
    pub registered: RegisteredClaims,
    /// The application's claims, parsed from the same payload.
    pub claims: C,
    /// The key id that verified it.
    pub kid: String,
}

#[derive(Deserialize)]
struct Header<'a> {
    #[serde(borrow)]
    alg: Cow<'a, str>,
    #[serde(borrow, default)]
    kid: Option<Cow<'a, str>>,
    /// Critical extensions (RFC 7515 §4.1.11): we understand none, so a
    /// token that lists any is refused.
    #[serde(default)]
    crit: Option<IgnoredAny>,
}

/// Signs `claims` (any JSON object) with the signing key, in its algorithm.
pub fn encode<C: Serialize>(keys: &JwtKeys, claims: &C) -> Result<String, JwtError> {
    let key = keys.signing();
    // Room for a typical access token's claims: one allocation, no growth.
    let mut payload = Vec::with_capacity(256);
    serde_json::to_writer(&mut payload, claims).map_err(|_| JwtError::Claims)?;
    let mut token = String::with_capacity(key.encoded_header.len() + payload.len() * 4 / 3 + 96);
    token.push_str(&key.encoded_header);
    token.push('.');
    URL_SAFE_NO_PAD.encode_string(&payload, &mut token);
    key.sign_into(&mut token)?;
    Ok(token)
}

/// Verifies `token` — the `kid` selects the key, and the token's `alg` must
/// be that key's — and parses its claims into [`RegisteredClaims`] and `C`.
pub fn decode<C: DeserializeOwned>(
    keys: &JwtKeys,
    validation: &Validation,
    token: &str,
    now: SystemTime,
) -> Result<Verified<C>, JwtError> {
    decode_with(keys.set(), validation, token, now)
}

/// [`decode`] with the keys of `set` (a local key set or a remote JWKS).
pub(crate) fn decode_with<C: DeserializeOwned>(
    set: &KeySet,
    validation: &Validation,
    token: &str,
    now: SystemTime,
) -> Result<Verified<C>, JwtError> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(JwtError::Malformed);
    }
    let mut parts = token.splitn(3, '.');
    let (Some(header), Some(payload), Some(signature)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(JwtError::Malformed);
    };
    if signature.contains('.') {
        return Err(JwtError::Malformed);
    }
    // Our own tokens: the header segment is byte-identical to the one we sign
    // with (its `alg` is the key's), so no header JSON needs parsing.
    // Anything else is parsed.
    let key = match set.by_encoded_header(header) {
        Some(key) => key,
        None => {
            let bytes = URL_SAFE_NO_PAD
                .decode(header)
                .map_err(|_| JwtError::Malformed)?;
            let parsed: Header<'_> =
                serde_json::from_slice(&bytes).map_err(|_| JwtError::Malformed)?;
            let alg = Algorithm::from_name(&parsed.alg).ok_or(JwtError::Algorithm)?;
            if parsed.crit.is_some() {
                return Err(JwtError::Malformed);
            }
            let kid = parsed.kid.ok_or(JwtError::UnknownKey)?;
            let key = set.by_kid(&kid).ok_or(JwtError::UnknownKey)?;
            // Pinned: the key decides the algorithm, never the token.
            if key.algorithm() != alg {
                return Err(JwtError::Algorithm);
            }
            key
        }
    };
    let signing_input = &token.as_bytes()[..header.len() + 1 + payload.len()];
    if !key.verify(signing_input, signature) {
        return Err(JwtError::Signature);
    }

    let payload = URL_SAFE_NO_PAD
        .decode(payload)
        .map_err(|_| JwtError::Malformed)?;
    let registered: RegisteredClaims =
        serde_json::from_slice(&payload).map_err(|_| JwtError::Claims)?;
    validation.check(&registered, now)?;
    let claims = serde_json::from_slice(&payload).map_err(|_| JwtError::Claims)?;
    Ok(Verified {
        registered,
        claims,
        kid: key.kid.clone(),
    })
}

#[cfg(test)]
mod tests {
    use std::time::UNIX_EPOCH;

    use serde_json::json;

    use super::*;
    use crate::secret::{TEST_SECRET, TEST_SECRET_2};

    fn keys() -> JwtKeys {
        JwtKeys::new("k1", TEST_SECRET).unwrap()
    }

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn sign_raw(header: &str, payload: &str, secret: &[u8]) -> String {
        use hmac::Mac;
        let mut mac = <hmac::Hmac<sha2::Sha256>>::new_from_slice(secret).unwrap();
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header),
            URL_SAFE_NO_PAD.encode(payload)
        );
        mac.update(signing_input.as_bytes());
        format!(
            "{signing_input}.{}",
            URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
        )
    }

    #[test]
    fn round_trip() {
        let token = encode(&keys(), &json!({"sub": "u1", "exp": 2000, "role": "admin"})).unwrap();
        let v: Verified<serde_json::Value> =
            decode(&keys(), &Validation::default(), &token, at(1000)).unwrap();
        assert_eq!(v.registered.sub.as_deref(), Some("u1"));
        assert_eq!(v.claims["role"], "admin");
        assert_eq!(v.kid, "k1");
    }

    #[test]
    fn foreign_header_with_same_key_verifies() {
        let token = sign_raw(
            r#"{"kid":"k1","alg":"HS256"}"#,
            r#"{"exp":2000}"#,
            TEST_SECRET.as_bytes(),
        );
        assert!(
            decode::<serde_json::Value>(&keys(), &Validation::default(), &token, at(1)).is_ok()
        );
    }

    #[test]
    fn refusals() {
        let v = Validation::default();
        let d = |t: &str, now| {
            decode::<serde_json::Value>(&keys(), &v, t, at(now))
                .map(|_| ())
                .unwrap_err()
        };
        let good = encode(&keys(), &json!({"exp": 2000, "nbf": 500})).unwrap();
        assert_eq!(d(&good, 2031), JwtError::Expired);
        assert_eq!(d(&good, 469), JwtError::NotYetValid);
        let none = format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"none"}"#),
            URL_SAFE_NO_PAD.encode("{}")
        );
        assert_eq!(d(&none, 1000), JwtError::Algorithm);
        // (header, signing secret, expected refusal) for a live payload.
        for (header, secret, expected) in [
            (
                r#"{"alg":"HS512","kid":"k1"}"#,
                TEST_SECRET,
                JwtError::Algorithm,
            ),
            (
                r#"{"alg":"HS256","kid":"k9"}"#,
                TEST_SECRET,
                JwtError::UnknownKey,
            ),
            (
                r#"{"alg":"HS256","kid":"k1"}"#,
                TEST_SECRET_2,
                JwtError::Signature,
            ),
        ] {
            let token = sign_raw(header, r#"{"exp":2000}"#, secret.as_bytes());
            assert_eq!(d(&token, 1000), expected, "{header} signed with {secret:?}");
        }
        let mut parts: Vec<&str> = good.split('.').collect();
        let tampered_payload = URL_SAFE_NO_PAD.encode(r#"{"exp":9999999999}"#);
        parts[1] = &tampered_payload;
        assert_eq!(d(&parts.join("."), 1000), JwtError::Signature);
        for junk in [
            "",
            ".",
            "..",
            "a.b.c",
            "a.b.c.d",
            &"x".repeat(MAX_TOKEN_LEN + 1),
        ] {
            assert!(
                decode::<serde_json::Value>(&keys(), &v, junk, at(1)).is_err(),
                "{junk:?}"
            );
        }
        let no_exp = encode(&keys(), &json!({"sub": "x"})).unwrap();
        assert_eq!(d(&no_exp, 1), JwtError::Expired);
    }

    #[test]
    fn issuer_and_audience_must_be_present() {
        let v = Validation::default().issuer("me").audience("app");
        let check = |claims: serde_json::Value| {
            let token = encode(&keys(), &claims).unwrap();
            decode::<serde_json::Value>(&keys(), &v, &token, at(1)).map(|_| ())
        };
        assert_eq!(
            check(json!({"exp": 9, "aud": "app"})),
            Err(JwtError::Issuer)
        );
        assert_eq!(
            check(json!({"exp": 9, "iss": "me"})),
            Err(JwtError::Audience)
        );
        assert_eq!(
            check(json!({"exp": 9, "iss": "you", "aud": "app"})),
            Err(JwtError::Issuer)
        );
        assert_eq!(
            check(json!({"exp": 9, "iss": "me", "aud": ["x", "app"]})),
            Ok(())
        );
    }

    #[test]
    fn a_token_with_aud_is_refused_when_no_audience_is_configured() {
        let check = |v: &Validation, claims: serde_json::Value| {
            let token = encode(&keys(), &claims).unwrap();
            decode::<serde_json::Value>(&keys(), v, &token, at(1)).map(|_| ())
        };
        let none = Validation::default();
        for aud in [json!("app"), json!(["app"]), json!([]), json!("")] {
            assert_eq!(
                check(&none, json!({"exp": 9, "aud": aud})),
                Err(JwtError::Audience),
                "{aud}"
            );
        }
        assert_eq!(check(&none, json!({"exp": 9})), Ok(()));
        let app = Validation::default().audience("app");
        assert_eq!(check(&app, json!({"exp": 9, "aud": "app"})), Ok(()));
        assert_eq!(
            check(&app, json!({"exp": 9, "aud": "other"})),
            Err(JwtError::Audience)
        );
        assert_eq!(check(&app, json!({"exp": 9})), Err(JwtError::Audience));
        // A configured issuer alone must be present too.
        let me = Validation::default().issuer("me");
        assert_eq!(check(&me, json!({"exp": 9})), Err(JwtError::Issuer));
        assert_eq!(check(&me, json!({"exp": 9, "iss": "me"})), Ok(()));
    }

    #[test]
    fn fractional_numeric_dates_are_accepted() {
        const T: u64 = 1_700_000_000;
        let v = Validation::default().leeway(Duration::ZERO);
        let token = encode(
            &keys(),
            &json!({"exp": 1.7e9 + 0.5, "iat": 1.7e9 - 0.5, "nbf": 1.7e9 - 0.25}),
        )
        .unwrap();
        let verified = decode::<serde_json::Value>(&keys(), &v, &token, at(T)).unwrap();
        assert_eq!(verified.registered.exp, Some(T));
        assert_eq!(verified.registered.iat, Some(T));
        assert_eq!(verified.registered.nbf, Some(T));
        // Rounded to the safe side: expired a second early at worst, never late.
        assert_eq!(
            decode::<serde_json::Value>(&keys(), &v, &token, at(T + 1)).map(|_| ()),
            Err(JwtError::Expired)
        );
        let future = encode(&keys(), &json!({"exp": 1.8e9, "nbf": 1.7e9 + 0.5})).unwrap();
        assert_eq!(
            decode::<serde_json::Value>(&keys(), &v, &future, at(T)).map(|_| ()),
            Err(JwtError::NotYetValid)
        );
        // Integers as before; negative dates are the distant past; junk is refused.
        let old = encode(&keys(), &json!({"exp": T + 9, "nbf": -5, "iat": -0.5})).unwrap();
        assert!(decode::<serde_json::Value>(&keys(), &v, &old, at(T)).is_ok());
        let junk = encode(&keys(), &json!({"exp": "soon"})).unwrap();
        assert_eq!(
            decode::<serde_json::Value>(&keys(), &v, &junk, at(T)).map(|_| ()),
            Err(JwtError::Claims)
        );
    }

    #[test]
    fn rotation() {
        let old = JwtKeys::new("old", TEST_SECRET).unwrap();
        let token = encode(&old, &json!({"exp": 9})).unwrap();
        let rotated = JwtKeys::new("new", TEST_SECRET_2)
            .unwrap()
            .with_verification_key("old", TEST_SECRET)
            .unwrap();
        let v =
            decode::<serde_json::Value>(&rotated, &Validation::default(), &token, at(1)).unwrap();
        assert_eq!(v.kid, "old");
        let fresh = encode(&rotated, &json!({"exp": 9})).unwrap();
        assert_eq!(
            decode::<serde_json::Value>(&rotated, &Validation::default(), &fresh, at(1))
                .unwrap()
                .kid,
            "new"
        );
        assert!(decode::<serde_json::Value>(&old, &Validation::default(), &fresh, at(1)).is_err());
    }
}
