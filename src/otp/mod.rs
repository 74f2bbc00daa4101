//! The OTP login endpoints: [`OtpRouter`] and its configuration.
//!
//! See DESIGN.md's HTTP contract. The flow: `POST /otp/request` with a phone
//! number or email sends a code; `POST /otp/verify` with the code returns an
//! access token (JWT) and a refresh token; `POST /token/refresh` rotates the
//! refresh token; `POST /logout` revokes the session; `GET /session` shows it.
//!
//! # Security
//!
//! Codes are 6 CSPRNG digits by default, valid 10 minutes, single use, at most
//! 5 attempts per challenge, stored only as an HMAC under a pepper derived
//! from the server secret, and compared in constant time. Every limit of
//! [`Limits`] applies by default; the same `202` answers every valid
//! identifier, and a challenge whose message was not delivered is deleted.

mod code;
mod config;
mod handlers;
mod input;
mod router;
mod subject;

pub use code::{CODE_LENGTHS, WEAK_CODE_LENGTHS};
pub use config::{DEFAULT_DENIED_CALLING_CODES, Limits, OtpConfig, OtpRouterBuilder};
pub(crate) use handlers::fuzz_request_body;
pub(crate) use router::RequestContext;
pub use router::{OtpRouter, ResponseFuture};
pub use subject::{HashedSubject, ResolveError, Subject, SubjectResolver};
