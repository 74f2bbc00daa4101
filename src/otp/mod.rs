//! The OTP login endpoints: [`OtpRouter`], its builder and its settings.
//!
//! See DESIGN.md's HTTP contract. The flow: `POST /otp/request` with a phone
//! number or email sends a code; `POST /otp/verify` with the code returns an
//! access token (JWT) and a refresh token; `POST /token/refresh` rotates the
//! refresh token; `POST /logout` revokes the session; `GET /session` shows it.
//!
//! # Errors
//!
//! Every error is a problem+json document with one status per `code` (the
//! table in [`crate::error`]). In particular:
//!
//! * `/token/refresh`: `400 invalid_grant` (RFC 6749 §5.2) for an unknown,
//!   expired, revoked or reused refresh token (reuse also revokes the family).
//! * `/session`, `/logout`: `401 invalid_token`. A request with no
//!   credentials (no `Authorization`, or another scheme than `Bearer`) gets
//!   `WWW-Authenticate: Bearer` without an error code; a Bearer token that
//!   fails gets `Bearer error="invalid_token"` (RFC 6750 §3.1).
//! * A body that is not JSON is `400 invalid_request`; JSON with missing or
//!   wrong fields is `422 unprocessable`.
//! * `429 rate_limited` names the refusing policies — the [`Limits`] field
//!   names: `request_per_ip`, `resend_cooldown`, `request_per_identifier`,
//!   `request_per_number_prefix`, `global_messages`, `verify_per_ip`,
//!   `verify_per_identifier` — in a `"violated-policies"` member and in the
//!   `RateLimit-Policy` / `RateLimit` fields (draft-ietf-httpapi-ratelimit-headers-10,
//!   as [`crate::rate_limit`] writes them), with `Retry-After` never shorter
//!   than any `t` and `Cache-Control: no-store`. Only the violated policies
//!   are listed: the others' figures (the deployment's global budget, another
//!   address's use of an identifier) are nobody's business.
//!   `429 too_many_attempts` (a challenge burned) names `max_attempts`.
//!
//! # Security
//!
//! Codes are 6 CSPRNG digits by default (6–10; 4–5 only behind the explicit
//! [`allow_weak_codes`](OtpRouterBuilder::allow_weak_codes) opt-in), valid
//! 10 minutes, single use, at most 5 attempts per challenge, stored only as
//! an HMAC under a pepper derived from the server secret, and compared in
//! constant time. Every limit of [`Limits`] applies by default.
//!
//! The limits of one request are decided together, in one all-or-nothing
//! store call ([`RateStore::hit_all`](crate::store::RateStore::hit_all)): a request
//! refused by one limit consumes none of the others, so a client refused
//! for its address cannot drain someone's per-identifier budget or the
//! global one. Per-identifier limits and the resend cooldown count per
//! mailbox or number ([`IdentifierHasher::limit_hash`](crate::identifier::IdentifierHasher::limit_hash)),
//! so aliases share one budget; the challenge belongs to the identifier as
//! typed. `/otp/verify` is limited per identifier *and* per client address
//! ([`Limits::verify_per_ip`], 100 per hour), so one address cannot walk
//! many identifiers.
//!
//! No enumeration: the same `202` answers every valid identifier, and a
//! challenge whose message was not delivered is deleted. In known-users-only
//! mode every request puts a decoy challenge that no code matches before
//! answering; only for identifiers the resolver accepts is it replaced by a
//! real one and a message sent (off the request path). Wrong codes therefore
//! count, burn (`too_many_attempts` on the 5th) and expire alike for known
//! and unknown identifiers: status, body and headers at verify are the same.

mod browser;
mod builder;
mod code;
mod config;
#[cfg(any(test, fuzzing))]
#[doc(hidden)]
pub mod fuzzing;
mod handlers;
mod input;
mod metering;
mod router;
mod secrets;
pub(crate) mod site;
mod subject;

pub use browser::{BrowserMode, REFRESH_COOKIE};
pub use builder::OtpRouterBuilder;
pub use code::{CODE_LENGTHS, WEAK_CODE_LENGTHS};
pub use config::{DEFAULT_DENIED_CALLING_CODES, Limits, OtpConfig};
pub use router::{OtpRouter, ResponseFuture};
pub use subject::{HashedSubject, ResolveError, Subject, SubjectResolver};

// For the routers built on top of this one (the tenant module's admin and
// signup routers): one way to read bodies and answer, one code refusal.
pub(crate) use handlers::invalid_code;
pub(crate) use input::{is_json, parse_json, read_json, read_limited};
pub(crate) use router::json;
pub(crate) use secrets::derive;
