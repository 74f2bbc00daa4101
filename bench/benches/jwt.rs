#![allow(missing_docs)] // criterion macros generate undocumented items
//! Verify and sign, HS256, EdDSA and ES256: tower-otp (HMAC on hmac + sha2,
//! the curves on ring) next to `jsonwebtoken` (RustCrypto), on the same
//! tokens and the same typed claims, in one run.
//!
//! Run: `cargo bench --manifest-path bench/Cargo.toml --bench jwt`
//! (a filter such as `jwt_eddsa` runs one group).

use std::hint::black_box;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use criterion::{Criterion, criterion_group, criterion_main};
use serde::{Deserialize, Serialize};
use tower_otp::jwt::{self, Algorithm, JwtKeys, SigningKey, Validation};

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

    for (alg, peer_alg, pem) in [
        (
            Algorithm::EdDSA,
            jsonwebtoken::Algorithm::EdDSA,
            ED25519_PEM,
        ),
        (Algorithm::ES256, jsonwebtoken::Algorithm::ES256, P256_PEM),
    ] {
        asymmetric(c, &claims, now, alg, peer_alg, pem);
    }
}

// The test keys of tests/data (openssl genpkey): both libraries sign with the
// same key pair, jsonwebtoken verifying with the public key from our JWKS.
const ED25519_PEM: &str = include_str!("../../tests/data/jwt-ed25519.pem");
const P256_PEM: &str = include_str!("../../tests/data/jwt-p256.pem");

/// The PKCS#8 DER inside a one-block PEM.
fn pem_der(pem: &str) -> Vec<u8> {
    use base64::Engine;
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    base64::engine::general_purpose::STANDARD
        .decode(body)
        .unwrap()
}

/// Verify (both libraries on the token we signed, then on the one
/// jsonwebtoken signed) and sign, for one asymmetric algorithm.
fn asymmetric(
    c: &mut Criterion,
    claims: &Claims,
    now: SystemTime,
    alg: Algorithm,
    peer_alg: jsonwebtoken::Algorithm,
    pem: &str,
) {
    let name = alg.as_str().to_ascii_lowercase();
    let keys = JwtKeys::from_signing_key(SigningKey::from_pkcs8_pem("k1", pem).unwrap());
    let ours_validation = Validation::default().issuer("https://auth.example");
    let token = jwt::encode(&keys, claims).unwrap();

    let enc = match alg {
        Algorithm::EdDSA => jsonwebtoken::EncodingKey::from_ed_der(&pem_der(pem)),
        _ => jsonwebtoken::EncodingKey::from_ec_der(&pem_der(pem)),
    };
    let jwks: jsonwebtoken::jwk::JwkSet =
        serde_json::from_slice(&keys.jwks_json().unwrap()).unwrap();
    let dec = jsonwebtoken::DecodingKey::from_jwk(jwks.find("k1").unwrap()).unwrap();
    let mut header = jsonwebtoken::Header::new(peer_alg);
    header.kid = Some("k1".into());
    let peer_token = jsonwebtoken::encode(&header, claims, &enc).unwrap();
    let mut peer_validation = jsonwebtoken::Validation::new(peer_alg);
    peer_validation.set_issuer(&["https://auth.example"]);
    peer_validation.leeway = 30;
    // Interop, both ways, before anything is measured.
    jsonwebtoken::decode::<Claims>(&token, &dec, &peer_validation).unwrap();
    jwt::decode::<Claims>(&keys, &ours_validation, &peer_token, now).unwrap();

    let mut g = c.benchmark_group(format!("jwt_{name}_verify"));
    g.measurement_time(Duration::from_secs(4));
    for (which, token) in [("our_token", &token), ("peer_token", &peer_token)] {
        g.bench_function(format!("tower_otp/{which}"), |b| {
            b.iter(|| {
                jwt::decode::<Claims>(&keys, &ours_validation, black_box(token), now).unwrap()
            })
        });
        g.bench_function(format!("jsonwebtoken/{which}"), |b| {
            b.iter(|| {
                jsonwebtoken::decode::<Claims>(black_box(token), &dec, &peer_validation).unwrap()
            })
        });
    }
    g.finish();

    let mut g = c.benchmark_group(format!("jwt_{name}_sign"));
    g.measurement_time(Duration::from_secs(3));
    g.bench_function("tower_otp", |b| {
        b.iter(|| jwt::encode(&keys, black_box(claims)).unwrap())
    });
    g.bench_function("jsonwebtoken", |b| {
        b.iter(|| jsonwebtoken::encode(&header, black_box(claims), &enc).unwrap())
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
