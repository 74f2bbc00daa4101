//! The peer of the flow benchmarks: the request + verify contract of the
//! `OtpRouter` built by hand from the crates an app would reach for without
//! tower-otp — `governor` keyed limiters, a `moka` cache of HMAC'd codes,
//! `jsonwebtoken` HS256 access tokens and a `moka` cache of hashed refresh
//! tokens — behind an axum `Router`, driven by the same loop
//! ([`crate::flows::drive`]).
//!
//! It does less than tower-otp, so its figure is a floor for "write it
//! yourself", not an equal: each limit is decided on its own (a refusal by
//! one still counts the others), there is no per-prefix or global budget,
//! the limiters keep a key per identifier forever unless pruned, the
//! session cache evicts when full, and there are no events or problem
//! documents.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::{Extension, State};
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use hmac::{Hmac, Mac};
use jsonwebtoken::{EncodingKey, Header};
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tower_otp::client_ip::PeerAddr;

use crate::flows::Codes;

type Limiter = DefaultKeyedRateLimiter<String>;

struct Peer {
    codes: Codes,
    key: Hmac<Sha256>,
    jwt: EncodingKey,
    request_per_ip: Limiter,
    cooldown: Limiter,
    request_per_identifier: Limiter,
    verify_per_ip: Limiter,
    verify_per_identifier: Limiter,
    /// Hashed identifier → (code MAC, attempts), ten minutes.
    challenges: moka::sync::Cache<[u8; 32], ([u8; 32], u32)>,
    /// Refresh-token hash → subject, thirty days.
    sessions: moka::sync::Cache<[u8; 32], Arc<str>>,
}

#[derive(Deserialize)]
struct CodeRequest {
    phone: String,
}

#[derive(Deserialize)]
struct VerifyRequest {
    phone: String,
    code: String,
}

fn per_hour(n: u32) -> Quota {
    Quota::per_hour(NonZeroU32::new(n).expect("nonzero"))
}

fn valid_phone(p: &str) -> bool {
    p.len() >= 8
        && p.len() <= 16
        && p.starts_with('+')
        && p[1..].bytes().all(|b| b.is_ascii_digit())
}

impl Peer {
    fn mac(&self, parts: &[&[u8]]) -> [u8; 32] {
        let mut mac = self.key.clone();
        for part in parts {
            mac.update(part);
        }
        mac.finalize().into_bytes().into()
    }
}

async fn request(
    State(peer): State<Arc<Peer>>,
    Extension(PeerAddr(addr)): Extension<PeerAddr>,
    Json(req): Json<CodeRequest>,
) -> (StatusCode, Json<Value>) {
    if !valid_phone(&req.phone) {
        return (
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(json!({"code": "invalid_request"})),
        );
    }
    let ip = addr.ip().to_string();
    let id = req.phone.clone();
    let allowed = peer.request_per_ip.check_key(&ip).is_ok()
        && peer.cooldown.check_key(&id).is_ok()
        && peer.request_per_identifier.check_key(&id).is_ok();
    if !allowed {
        return (
            StatusCode::TOO_MANY_REQUESTS,
            Json(json!({"code": "rate_limited"})),
        );
    }
    let code = format!("{:06}", rand::random_range(0..1_000_000u32));
    let hashed = peer.mac(&[b"phone:", id.as_bytes()]);
    peer.challenges
        .insert(hashed, (peer.mac(&[&hashed, b":", code.as_bytes()]), 0));
    peer.codes.put(&req.phone, &code);
    (
        StatusCode::ACCEPTED,
        Json(json!({"status": "pending", "expires_in": 600, "resend_after": 30})),
    )
}

async fn verify(
    State(peer): State<Arc<Peer>>,
    Extension(PeerAddr(addr)): Extension<PeerAddr>,
    Json(req): Json<VerifyRequest>,
) -> (StatusCode, Json<Value>) {
    let invalid = || {
        (
            StatusCode::BAD_REQUEST,
            Json(json!({"code": "invalid_code"})),
        )
    };
    if !valid_phone(&req.phone) || req.code.len() != 6 {
        return invalid();
    }
    let ip = addr.ip().to_string();
    let allowed = peer.verify_per_ip.check_key(&ip).is_ok()
        && peer.verify_per_identifier.check_key(&req.phone).is_ok();
    if !allowed {
        return (
            StatusCode::TOO_MANY_REQUESTS,
            Json(json!({"code": "rate_limited"})),
        );
    }
    let hashed = peer.mac(&[b"phone:", req.phone.as_bytes()]);
    let Some((stored, attempts)) = peer.challenges.get(&hashed) else {
        return invalid();
    };
    let mut mac = peer.key.clone();
    mac.update(&hashed);
    mac.update(b":");
    mac.update(req.code.as_bytes());
    if mac.verify_slice(&stored).is_err() {
        if attempts + 1 >= 5 {
            peer.challenges.invalidate(&hashed);
        } else {
            peer.challenges.insert(hashed, (stored, attempts + 1));
        }
        return invalid();
    }
    // One winner: the remove that finds the entry.
    if peer.challenges.remove(&hashed).is_none() {
        return invalid();
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs();
    let sid = URL_SAFE_NO_PAD.encode(rand::random::<[u8; 16]>());
    let claims = json!({
        "sub": URL_SAFE_NO_PAD.encode(&hashed[..16]), "iat": now, "exp": now + 900,
        "jti": URL_SAFE_NO_PAD.encode(rand::random::<[u8; 16]>()), "sid": sid,
    });
    let Ok(access) = jsonwebtoken::encode(&Header::default(), &claims, &peer.jwt) else {
        return (StatusCode::INTERNAL_SERVER_ERROR, Json(json!({})));
    };
    let refresh = format!(
        "{sid}.{}",
        URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>())
    );
    peer.sessions.insert(
        Sha256::digest(refresh.as_bytes()).into(),
        Arc::from(claims["sub"].as_str().unwrap_or_default()),
    );
    (
        StatusCode::OK,
        Json(json!({
            "access_token": access, "token_type": "Bearer", "expires_in": 900,
            "refresh_token": refresh, "refresh_expires_in": 30 * 24 * 3600,
        })),
    )
}

/// The peer's router: `POST /otp/request`, `POST /otp/verify`, with the
/// limits of [`crate::flows::router`] (per-IP raised, the per-identifier
/// ones and the cooldown at the defaults) and stores bounded like
/// `MemoryStore`'s defaults.
pub fn router(codes: Codes) -> Router {
    let lots = per_hour(1_000_000_000);
    let secret: [u8; 32] = rand::random();
    let peer = Peer {
        codes,
        key: Hmac::new_from_slice(&rand::random::<[u8; 32]>()).expect("any key length"),
        jwt: EncodingKey::from_secret(&secret),
        request_per_ip: RateLimiter::keyed(lots),
        cooldown: RateLimiter::keyed(
            Quota::with_period(Duration::from_secs(30)).expect("nonzero period"),
        ),
        request_per_identifier: RateLimiter::keyed(per_hour(3)),
        verify_per_ip: RateLimiter::keyed(lots),
        verify_per_identifier: RateLimiter::keyed(per_hour(5)),
        challenges: moka::sync::Cache::builder()
            .max_capacity(1_000_000)
            .time_to_live(Duration::from_secs(600))
            .build(),
        sessions: moka::sync::Cache::builder()
            .max_capacity(1_000_000)
            .time_to_live(Duration::from_secs(30 * 24 * 3600))
            .build(),
    };
    Router::new()
        .route("/otp/request", post(request))
        .route("/otp/verify", post(verify))
        .with_state(Arc::new(peer))
}
