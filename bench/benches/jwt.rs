#![allow(missing_docs)] // criterion macros generate undocumented items
//! HS256 verify: tower-otp's hand-written decoder next to `jsonwebtoken`, on
//! the same token and the same typed claims, in one run.
//!
//! Run: `cargo bench --manifest-path bench/Cargo.toml --bench jwt`

use std::hint::black_box;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use criterion::{Criterion, criterion_group, criterion_main};
use serde::{Deserialize, Serialize};
use tower_otp::jwt::{self, JwtKeys, Validation};

/// A typical access token's claims, as the OtpRouter issues them.
#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    iat: u64,
    exp: u64,
    jti: String,
    sid: String,
    iss: String,
    plan: String,
}

const SECRET: &[u8] = b"jM5wQ8xT2kV7nR4bZ9cL1pH6fD3sG0yEaU8iO5eK2wXqz";

fn bench(c: &mut Criterion) {
    let now = SystemTime::now();
    let iat = now.duration_since(UNIX_EPOCH).unwrap().as_secs();
    let claims = Claims {
        sub: "usr_NMwc4quil8iIFkec-yybCw".into(),
        iat,
        exp: iat + 900,
        jti: "WK_zffVk3t2AUsyDCa8Taw".into(),
        sid: "R_zYXflC7urY-jXVGZMqFw".into(),
        iss: "https://auth.example".into(),
        plan: "pro".into(),
    };
    let keys = JwtKeys::new("k1", SECRET).unwrap();
    let token = jwt::encode(&keys, &claims).unwrap();
    let ours_validation = Validation::default().issuer("https://auth.example");

    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    header.kid = Some("k1".into());
    let peer_token = jsonwebtoken::encode(
        &header,
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(SECRET),
    )
    .unwrap();
    let peer_key = jsonwebtoken::DecodingKey::from_secret(SECRET);
    let mut peer_validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
    peer_validation.set_issuer(&["https://auth.example"]);
    peer_validation.leeway = 30;
    // Interop: each accepts the other's token (header field order differs).
    jsonwebtoken::decode::<Claims>(&token, &peer_key, &peer_validation).unwrap();
    jwt::decode::<Claims>(&keys, &ours_validation, &peer_token, now).unwrap();

    let mut g = c.benchmark_group("jwt_hs256_verify");
    g.measurement_time(Duration::from_secs(4));
    g.bench_function("tower_otp", |b| {
        b.iter(|| jwt::decode::<Claims>(&keys, &ours_validation, black_box(&token), now).unwrap())
    });
    g.bench_function("jsonwebtoken", |b| {
        b.iter(|| {
            jsonwebtoken::decode::<Claims>(black_box(&token), &peer_key, &peer_validation).unwrap()
        })
    });
    g.finish();

    let mut g = c.benchmark_group("jwt_hs256_sign");
    g.measurement_time(Duration::from_secs(3));
    g.bench_function("tower_otp", |b| {
        b.iter(|| jwt::encode(&keys, black_box(&claims)).unwrap())
    });
    let enc = jsonwebtoken::EncodingKey::from_secret(SECRET);
    g.bench_function("jsonwebtoken", |b| {
        b.iter(|| jsonwebtoken::encode(&header, black_box(&claims), &enc).unwrap())
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
