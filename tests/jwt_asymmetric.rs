//! EdDSA and ES256 access tokens: interop with an independent JOSE
//! implementation (`jsonwebtoken` on RustCrypto, not our *ring*), and
//! `JwtLayer::from_jwks` reading `/.well-known/jwks.json` over HTTPS from
//! another server on loopback (behind a CA made here with rcgen): rotation
//! without a refused request, a forged-`kid` flood, failed fetches, and
//! algorithm confusion.
#![cfg(feature = "jwks")]
#![allow(clippy::unwrap_used)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use http::header::{AUTHORIZATION, CACHE_CONTROL, CONTENT_TYPE};
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;
use tower::{Layer, ServiceExt, service_fn};
use tower_otp::clock::ManualClock;
use tower_otp::jwt::{
    self, Algorithm, JWKS_CACHE_CONTROL, Jwks, JwksError, JwtError, JwtKeys, JwtLayer, PublicKey,
    SigningKey, Validation,
};

const ED25519_PEM: &str = include_str!("data/jwt-ed25519.pem");
const ED25519_PUB_PEM: &str = include_str!("data/jwt-ed25519.pub.pem");
const P256_PEM: &str = include_str!("data/jwt-p256.pem");
const P256_PUB_PEM: &str = include_str!("data/jwt-p256.pub.pem");

#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct Claims {
    sub: String,
    exp: u64,
    iss: String,
}

fn claims(sub: &str) -> Claims {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    Claims {
        sub: sub.into(),
        exp: now + 900,
        iss: "https://auth.example".into(),
    }
}

fn peer_alg(alg: Algorithm) -> jsonwebtoken::Algorithm {
    match alg {
        Algorithm::EdDSA => jsonwebtoken::Algorithm::EdDSA,
        Algorithm::ES256 => jsonwebtoken::Algorithm::ES256,
        _ => jsonwebtoken::Algorithm::HS256,
    }
}

fn peer_validation(alg: Algorithm) -> jsonwebtoken::Validation {
    let mut v = jsonwebtoken::Validation::new(peer_alg(alg));
    v.set_issuer(&["https://auth.example"]);
    v
}

/// Our tokens verify with jsonwebtoken, which knows the key only from our
/// JWKS document; a changed payload does not.
#[test]
fn our_tokens_verify_with_jsonwebtoken_from_our_jwks() {
    for alg in [Algorithm::EdDSA, Algorithm::ES256] {
        let keys = JwtKeys::from_signing_key(SigningKey::generate("k-now", alg).unwrap())
            .with_next_key(SigningKey::generate("k-next", alg).unwrap())
            .unwrap();
        let token = jwt::encode(&keys, &claims("usr_1")).unwrap();
        let set: jsonwebtoken::jwk::JwkSet =
            serde_json::from_slice(&keys.jwks_json().unwrap()).unwrap();
        assert_eq!(set.keys.len(), 2);
        let header = jsonwebtoken::decode_header(&token).unwrap();
        assert_eq!(header.kid.as_deref(), Some("k-now"));
        assert_eq!(header.alg, peer_alg(alg));
        let jwk = set.find("k-now").unwrap();
        let key = jsonwebtoken::DecodingKey::from_jwk(jwk).unwrap();
        let verified = jsonwebtoken::decode::<Claims>(&token, &key, &peer_validation(alg)).unwrap();
        assert_eq!(verified.claims, claims("usr_1"), "{alg}");

        // The other published key does not verify it, nor does a changed payload.
        let other = jsonwebtoken::DecodingKey::from_jwk(set.find("k-next").unwrap()).unwrap();
        assert!(jsonwebtoken::decode::<Claims>(&token, &other, &peer_validation(alg)).is_err());
        let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
        parts[1] = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims("usr_2")).unwrap());
        let forged = parts.join(".");
        assert!(jsonwebtoken::decode::<Claims>(&forged, &key, &peer_validation(alg)).is_err());
    }
}

/// jsonwebtoken's tokens, signed with keys openssl wrote, verify with us:
/// through the private key loaded from PKCS#8 PEM, and through the public
/// key alone (`openssl pkey -pubout`).
#[test]
fn jsonwebtoken_tokens_verify_with_us() {
    for (pem, pub_pem, alg) in [
        (ED25519_PEM, ED25519_PUB_PEM, Algorithm::EdDSA),
        (P256_PEM, P256_PUB_PEM, Algorithm::ES256),
    ] {
        let encoding = match alg {
            Algorithm::EdDSA => jsonwebtoken::EncodingKey::from_ed_pem(pem.as_bytes()),
            _ => jsonwebtoken::EncodingKey::from_ec_pem(pem.as_bytes()),
        }
        .unwrap();
        let mut header = jsonwebtoken::Header::new(peer_alg(alg));
        header.kid = Some("ossl".into());
        let token = jsonwebtoken::encode(&header, &claims("usr_p"), &encoding).unwrap();
        let validation = Validation::default().issuer("https://auth.example");

        let ours = JwtKeys::from_signing_key(SigningKey::from_pkcs8_pem("ossl", pem).unwrap());
        let verified =
            jwt::decode::<Claims>(&ours, &validation, &token, SystemTime::now()).unwrap();
        assert_eq!(verified.claims, claims("usr_p"), "{alg}");
        assert_eq!(verified.kid, "ossl");

        let public_only = JwtKeys::new("hs", rand::random::<[u8; 32]>())
            .unwrap()
            .with_public_key(PublicKey::from_spki_pem("ossl", pub_pem).unwrap())
            .unwrap();
        let verified =
            jwt::decode::<Claims>(&public_only, &validation, &token, SystemTime::now()).unwrap();
        assert_eq!(verified.claims.sub, "usr_p", "{alg}");

        // Both ways the signatures are the same shape: a token we sign with
        // the same key verifies with jsonwebtoken's view of the public key.
        let ours_token = jwt::encode(&ours, &claims("usr_o")).unwrap();
        let decoding = match alg {
            Algorithm::EdDSA => jsonwebtoken::DecodingKey::from_ed_pem(pub_pem.as_bytes()),
            _ => jsonwebtoken::DecodingKey::from_ec_pem(pub_pem.as_bytes()),
        }
        .unwrap();
        assert!(
            jsonwebtoken::decode::<Claims>(&ours_token, &decoding, &peer_validation(alg)).is_ok()
        );
    }
}

// ---------------------------------------------------------------------------
// A JWKS server on loopback, over TLS from a CA made here.

/// What the server answers on `/.well-known/jwks.json`.
#[derive(Clone)]
enum Answer {
    /// `200`, `application/json`, this body.
    Ok(Bytes),
    /// An empty answer with this status.
    Status(u16),
}

struct JwksServer {
    addr: SocketAddr,
    ca_pem: String,
    answer: Arc<Mutex<Answer>>,
    fetches: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl Drop for JwksServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl JwksServer {
    /// Serves `keys`' JWKS over HTTPS on a fresh loopback port.
    async fn start(keys: &JwtKeys) -> Self {
        use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair, KeyUsagePurpose};
        let ca_key = KeyPair::generate().unwrap();
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign];
        ca.distinguished_name
            .push(rcgen::DnType::CommonName, "jwks test CA");
        let ca_cert = ca.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca, ca_key);
        let leaf_key = KeyPair::generate().unwrap();
        let leaf = CertificateParams::new(vec!["127.0.0.1".to_owned()])
            .unwrap()
            .signed_by(&leaf_key, &issuer)
            .unwrap();
        let tls = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![leaf.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into()),
        )
        .unwrap();
        let acceptor = TlsAcceptor::from(Arc::new(tls));

        let answer = Arc::new(Mutex::new(Answer::Ok(keys.jwks_json().unwrap())));
        let fetches = Arc::new(AtomicUsize::new(0));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (a, f) = (Arc::clone(&answer), Arc::clone(&fetches));
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let (acceptor, answer, fetches) =
                    (acceptor.clone(), Arc::clone(&a), Arc::clone(&f));
                tokio::spawn(async move {
                    let Ok(stream) = acceptor.accept(stream).await else {
                        return;
                    };
                    let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                        let res = if req.uri().path() == "/.well-known/jwks.json" {
                            fetches.fetch_add(1, Ordering::SeqCst);
                            match answer.lock().unwrap().clone() {
                                Answer::Ok(body) => Response::builder()
                                    .header(CONTENT_TYPE, "application/json")
                                    .header(CACHE_CONTROL, JWKS_CACHE_CONTROL)
                                    .body(Full::new(body)),
                                Answer::Status(status) => {
                                    Response::builder().status(status).body(Full::default())
                                }
                            }
                        } else {
                            Response::builder().status(404).body(Full::default())
                        };
                        std::future::ready(Ok::<_, Infallible>(res.unwrap()))
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Self {
            addr,
            ca_pem: ca_cert.pem(),
            answer,
            fetches,
            task,
        }
    }

    fn url(&self) -> String {
        format!("https://{}/.well-known/jwks.json", self.addr)
    }

    /// Publishes `keys`' JWKS from now on.
    fn publish(&self, keys: &JwtKeys) {
        self.answer(Answer::Ok(keys.jwks_json().unwrap()));
    }

    fn answer(&self, answer: Answer) {
        *self.answer.lock().unwrap() = answer;
    }

    fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }

    /// A `Jwks` trusting this server's CA, timed by `clock`.
    fn jwks(&self, clock: &ManualClock) -> Jwks {
        Jwks::builder(self.url())
            .root_certificate_pem(&self.ca_pem)
            .clock(clock.clone())
            .build()
            .unwrap()
    }
}

/// The status a `JwtLayer` over `jwks` gives a request bearing `token`.
async fn status(layer: &JwtLayer<serde_json::Value>, token: &str) -> StatusCode {
    let svc = layer.layer(service_fn(|_: Request<()>| async {
        Ok::<_, Infallible>(Response::new(String::new()))
    }));
    let req = Request::builder()
        .header(AUTHORIZATION, format!("Bearer {token}"))
        .body(())
        .unwrap();
    svc.oneshot(req).await.unwrap().status()
}

fn layer(jwks: Jwks) -> JwtLayer<serde_json::Value> {
    JwtLayer::from_jwks(jwks, Validation::default().issuer("https://auth.example"))
}

/// Waits until `jwks` holds exactly `kids` (a background refresh landing).
async fn until_kids(jwks: &Jwks, kids: &[&str]) {
    let wait = async {
        while jwks.kids() != kids {
            tokio::task::yield_now().await;
        }
    };
    // A guard against a hang, not a timing assertion.
    tokio::time::timeout(Duration::from_secs(30), wait)
        .await
        .unwrap_or_else(|_| panic!("keys never became {kids:?}: {:?}", jwks.kids()));
}

#[tokio::test]
async fn the_layer_verifies_eddsa_and_es256_from_a_jwks_over_https() {
    let issuer = JwtKeys::generate_ed25519("ed")
        .unwrap()
        .with_next_key(SigningKey::generate("ec", Algorithm::ES256).unwrap())
        .unwrap();
    let server = JwksServer::start(&issuer).await;
    let clock = ManualClock::default();
    let jwks = server.jwks(&clock);
    let layer = layer(jwks.clone());
    let ed_token = jwt::encode(&issuer, &claims("usr_ed")).unwrap();
    let ec_token = jwt::encode(&issuer.clone().promote("ec").unwrap(), &claims("usr_ec")).unwrap();
    assert_eq!(status(&layer, &ed_token).await, StatusCode::OK);
    assert_eq!(status(&layer, &ec_token).await, StatusCode::OK);
    assert_eq!(server.fetches(), 1, "the first request fetched, once");
    assert_eq!(jwks.kids(), ["ed", "ec"]);
    // A token of a key the issuer does not publish is refused.
    let stranger = JwtKeys::generate_ed25519("ed").unwrap();
    let forged = jwt::encode(&stranger, &claims("usr_ed")).unwrap();
    assert_eq!(status(&layer, &forged).await, StatusCode::UNAUTHORIZED);
    // A wrong issuer is refused even with a good signature.
    let mut other_iss = claims("usr_ed");
    other_iss.iss = "https://evil.example".into();
    let token = jwt::encode(&issuer, &other_iss).unwrap();
    assert_eq!(status(&layer, &token).await, StatusCode::UNAUTHORIZED);

    // Without the CA the TLS handshake fails: nothing verifies.
    let untrusting = Jwks::builder(server.url()).build().unwrap();
    assert_eq!(untrusting.refresh().await, Err(JwksError::Unreachable));
    assert_eq!(
        status(&self::layer(untrusting), &ed_token).await,
        StatusCode::UNAUTHORIZED
    );
}

/// Publish k2 → k1 tokens still verify; k2 signs → k2 tokens verify after
/// the one refresh their kid causes; k1, retired but published, still
/// verifies; k1 dropped → refused after the next background refresh, even
/// though its token was in the verified-token cache. No request is
/// refused before k1 is dropped.
#[tokio::test]
async fn keys_rotate_without_a_refused_request() {
    let k1 = SigningKey::generate("k1", Algorithm::EdDSA).unwrap();
    let k2 = SigningKey::generate("k2", Algorithm::ES256).unwrap();
    let issuer = JwtKeys::from_signing_key(k1);
    let server = JwksServer::start(&issuer).await;
    let clock = ManualClock::default();
    let jwks = server.jwks(&clock);
    let layer = layer(jwks.clone());
    let t1 = jwt::encode(&issuer, &claims("usr_1")).unwrap();
    assert_eq!(status(&layer, &t1).await, StatusCode::OK);
    assert_eq!(server.fetches(), 1);

    // 1. Publish k2 (it does not sign yet).
    let issuer = issuer.with_next_key(k2).unwrap();
    server.publish(&issuer);
    assert_eq!(status(&layer, &t1).await, StatusCode::OK);
    assert_eq!(server.fetches(), 1, "known kid: no fetch");

    // 2. k2 signs; k1 is retired but still published.
    clock.advance(Duration::from_secs(31));
    let issuer = issuer.promote("k2").unwrap();
    server.publish(&issuer);
    let t2 = jwt::encode(&issuer, &claims("usr_2")).unwrap();
    assert_eq!(status(&layer, &t2).await, StatusCode::OK);
    assert_eq!(server.fetches(), 2, "the one refresh k2's kid caused");
    assert_eq!(status(&layer, &t1).await, StatusCode::OK, "retired k1");
    let stranger = jwt::encode(&JwtKeys::generate_ed25519("k3").unwrap(), &claims("x")).unwrap();
    assert_eq!(status(&layer, &stranger).await, StatusCode::UNAUTHORIZED);
    assert_eq!(
        server.fetches(),
        2,
        "an unknown kid within the interval: no fetch"
    );

    // 3. k1 dropped: the background refresh after the refresh interval
    // removes it, and its cached token stops verifying.
    let issuer = issuer.without_key("k1").unwrap();
    server.publish(&issuer);
    assert_eq!(
        status(&layer, &t1).await,
        StatusCode::OK,
        "not refreshed yet"
    );
    clock.advance(jwt::DEFAULT_REFRESH_INTERVAL);
    assert_eq!(status(&layer, &t2).await, StatusCode::OK);
    until_kids(&jwks, &["k2"]).await;
    assert_eq!(server.fetches(), 3);
    assert_eq!(status(&layer, &t1).await, StatusCode::UNAUTHORIZED);
    assert_eq!(status(&layer, &t2).await, StatusCode::OK);
    assert_eq!(server.fetches(), 3);
}

/// The recommended order: publish, let the verifiers refresh, then sign —
/// the first k2 token needs no fetch at all.
#[tokio::test]
async fn a_key_published_before_it_signs_needs_no_fetch() {
    let issuer = JwtKeys::generate_es256("k1").unwrap();
    let server = JwksServer::start(&issuer).await;
    let clock = ManualClock::default();
    let jwks = server.jwks(&clock);
    let layer = layer(jwks.clone());
    let t1 = jwt::encode(&issuer, &claims("usr_1")).unwrap();
    assert_eq!(status(&layer, &t1).await, StatusCode::OK);
    let issuer = issuer
        .with_next_key(SigningKey::generate("k2", Algorithm::EdDSA).unwrap())
        .unwrap();
    server.publish(&issuer);
    clock.advance(jwt::DEFAULT_REFRESH_INTERVAL);
    assert_eq!(status(&layer, &t1).await, StatusCode::OK);
    until_kids(&jwks, &["k1", "k2"]).await;
    assert_eq!(server.fetches(), 2);
    let t2 = jwt::encode(&issuer.promote("k2").unwrap(), &claims("usr_2")).unwrap();
    assert_eq!(status(&layer, &t2).await, StatusCode::OK);
    assert_eq!(server.fetches(), 2);
}

/// A token with `kid` and a junk signature, of `alg`.
fn forged(kid: &str, alg: &str) -> String {
    let header = format!(r#"{{"alg":"{alg}","typ":"JWT","kid":"{kid}"}}"#);
    let payload = serde_json::to_vec(&claims("usr_x")).unwrap();
    format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(payload),
        URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>().repeat(2))
    )
}

/// `n` concurrent requests, each with a new random `kid`: all refused.
async fn flood(layer: &JwtLayer<serde_json::Value>, n: usize) {
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..n {
        let layer = layer.clone();
        let kid = format!("forged-{:016x}", rand::random::<u64>());
        tasks.spawn(async move { status(&layer, &forged(&kid, "EdDSA")).await });
    }
    while let Some(status) = tasks.join_next().await {
        assert_eq!(status.unwrap(), StatusCode::UNAUTHORIZED);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_kid_flood_costs_at_most_one_fetch_per_interval() {
    let issuer = JwtKeys::generate_ed25519("real").unwrap();
    let server = JwksServer::start(&issuer).await;
    let clock = ManualClock::default();
    let layer = layer(server.jwks(&clock));

    // Before any key is known: the whole flood shares one fetch.
    flood(&layer, 1000).await;
    assert_eq!(server.fetches(), 1);
    // Within the interval: no fetch at all.
    clock.advance(Duration::from_secs(29));
    flood(&layer, 1000).await;
    assert_eq!(server.fetches(), 1);
    // Each new interval: one.
    for round in 2..=3 {
        clock.advance(jwt::DEFAULT_MIN_REFRESH_INTERVAL);
        flood(&layer, 1000).await;
        assert_eq!(server.fetches(), round);
    }
    // The real key still verifies, without a fetch.
    let token = jwt::encode(&issuer, &claims("usr_1")).unwrap();
    assert_eq!(status(&layer, &token).await, StatusCode::OK);
    assert_eq!(server.fetches(), 3);
}

#[tokio::test]
async fn a_failed_fetch_keeps_the_keys_fetched_before() {
    let issuer = JwtKeys::generate_ed25519("k1").unwrap();
    let server = JwksServer::start(&issuer).await;
    let clock = ManualClock::default();
    let jwks = server.jwks(&clock);
    let layer = layer(jwks.clone());
    let t1 = jwt::encode(&issuer, &claims("usr_1")).unwrap();
    assert_eq!(jwks.refresh().await, Ok(1));

    let huge = format!(r#"{{"keys":[],"pad":"{}"}}"#, "x".repeat(70 * 1024));
    let rsa_only = r#"{"keys":[{"kty":"RSA","kid":"r","n":"AQAB","e":"AQAB","alg":"RS256"}]}"#;
    for (answer, error) in [
        (Answer::Status(500), JwksError::Status(500)),
        (Answer::Status(302), JwksError::Status(302)),
        (
            Answer::Ok(Bytes::from_static(b"<html>")),
            JwksError::NotJwks,
        ),
        (Answer::Ok(Bytes::from(huge)), JwksError::Body),
        (
            Answer::Ok(Bytes::from_static(rsa_only.as_bytes())),
            JwksError::NoUsableKeys,
        ),
    ] {
        server.answer(answer);
        assert_eq!(jwks.refresh().await, Err(error));
        assert_eq!(jwks.kids(), ["k1"]);
        assert_eq!(status(&layer, &t1).await, StatusCode::OK, "{error}");
    }
    // A token of a new key while the server fails: one fetch, then 401.
    let fetches = server.fetches();
    clock.advance(jwt::DEFAULT_MIN_REFRESH_INTERVAL);
    let new_key = JwtKeys::generate_ed25519("k2").unwrap();
    let t2 = jwt::encode(&new_key, &claims("usr_2")).unwrap();
    assert_eq!(status(&layer, &t2).await, StatusCode::UNAUTHORIZED);
    assert_eq!(status(&layer, &t2).await, StatusCode::UNAUTHORIZED);
    assert_eq!(server.fetches(), fetches + 1);
    assert_eq!(status(&layer, &t1).await, StatusCode::OK);
}

/// An HMAC made with `secret` over `header.payload`.
fn hs256(header: &str, payload: &[u8], secret: &[u8]) -> String {
    use hmac::Mac;
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(payload)
    );
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret).unwrap();
    mac.update(input.as_bytes());
    format!(
        "{input}.{}",
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    )
}

#[tokio::test]
async fn algorithm_confusion_is_refused() {
    let ed = SigningKey::from_pkcs8_pem("ed", ED25519_PEM).unwrap();
    let ec = SigningKey::from_pkcs8_pem("ec", P256_PEM).unwrap();
    let keys = JwtKeys::from_signing_key(ed)
        .with_next_key(ec)
        .unwrap()
        .with_verification_key("hs", rand::random::<[u8; 32]>())
        .unwrap();
    let payload = serde_json::to_vec(&claims("usr_x")).unwrap();
    let v = Validation::default();
    let check = |token: &str| {
        jwt::decode::<serde_json::Value>(&keys, &v, token, SystemTime::now()).map(|_| ())
    };

    // HS256 "signed" with the Ed25519 public key as the HMAC secret — the
    // classic confusion — under the Ed25519 key's kid.
    let doc: serde_json::Value = serde_json::from_slice(&keys.jwks_json().unwrap()).unwrap();
    let x = doc["keys"][0]["x"].as_str().unwrap();
    for secret in [x.as_bytes().to_vec(), URL_SAFE_NO_PAD.decode(x).unwrap()] {
        let token = hs256(r#"{"alg":"HS256","kid":"ed"}"#, &payload, &secret);
        assert_eq!(check(&token), Err(JwtError::Algorithm));
    }
    let spki = ED25519_PUB_PEM.as_bytes();
    assert_eq!(
        check(&hs256(r#"{"alg":"HS256","kid":"ed"}"#, &payload, spki)),
        Err(JwtError::Algorithm)
    );
    // `alg: none`, with or without a signature; other algorithms.
    for header in [
        r#"{"alg":"none","kid":"ed"}"#,
        r#"{"alg":"None","kid":"ed"}"#,
        r#"{"alg":"RS256","kid":"ed"}"#,
        r#"{"alg":"ES256","kid":"ed"}"#,
        r#"{"alg":"EdDSA","kid":"ec"}"#,
        r#"{"alg":"EdDSA","kid":"hs"}"#,
        r#"{"alg":"Ed25519","kid":"ed"}"#,
    ] {
        let unsigned = format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(header),
            URL_SAFE_NO_PAD.encode(&payload)
        );
        assert_eq!(check(&unsigned), Err(JwtError::Algorithm), "{header}");
    }
    // An ES256 signature in DER (what generic ECDSA APIs emit) is refused:
    // RFC 7518 §3.4 wants the 64-byte r‖s form.
    let good = jwt::encode(&keys.clone().promote("ec").unwrap(), &claims("usr_x")).unwrap();
    assert_eq!(check(&good), Ok(()));
    let (input, sig) = good.rsplit_once('.').unwrap();
    let der = der_signature(&URL_SAFE_NO_PAD.decode(sig).unwrap());
    let with_der = format!("{input}.{}", URL_SAFE_NO_PAD.encode(&der));
    assert_eq!(check(&with_der), Err(JwtError::Signature));
    // A critical header extension we do not understand is refused, though
    // the signature is good.
    let crit = ed25519_signed(
        r#"{"alg":"EdDSA","kid":"ed","crit":["b64"],"b64":false}"#,
        &payload,
    );
    assert_eq!(check(&crit), Err(JwtError::Malformed));
    let plain = ed25519_signed(r#"{"alg":"EdDSA","kid":"ed"}"#, &payload);
    assert_eq!(check(&plain), Ok(()));

    // Through the layer (keys from a JWKS): all refused, none fetched twice.
    let issuer = JwtKeys::from_signing_key(SigningKey::from_pkcs8_pem("ed", ED25519_PEM).unwrap());
    let server = JwksServer::start(&issuer).await;
    let layer = layer(server.jwks(&ManualClock::default()));
    let ok = jwt::encode(&issuer, &claims("usr_x")).unwrap();
    assert_eq!(status(&layer, &ok).await, StatusCode::OK);
    for token in [
        hs256(r#"{"alg":"HS256","kid":"ed"}"#, &payload, x.as_bytes()),
        format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"none","kid":"ed"}"#),
            URL_SAFE_NO_PAD.encode(&payload)
        ),
        forged("ed", "ES256"),
        forged("new", "RS256"),
    ] {
        assert_eq!(
            status(&layer, &token).await,
            StatusCode::UNAUTHORIZED,
            "{token}"
        );
    }
    assert_eq!(server.fetches(), 1);
}

/// A token with this header JSON, signed with the openssl Ed25519 key by
/// *ring* directly.
fn ed25519_signed(header: &str, payload: &[u8]) -> String {
    use rustls_pki_types::pem::PemObject;
    let der = rustls_pki_types::PrivatePkcs8KeyDer::from_pem_slice(ED25519_PEM.as_bytes()).unwrap();
    let pair = ring::signature::Ed25519KeyPair::from_pkcs8_maybe_unchecked(der.secret_pkcs8_der())
        .unwrap();
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(payload)
    );
    let sig = pair.sign(input.as_bytes());
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig.as_ref()))
}

/// The DER `ECDSA-Sig-Value` of a 64-byte `r‖s` signature.
fn der_signature(fixed: &[u8]) -> Vec<u8> {
    let int = |bytes: &[u8]| {
        let trimmed: Vec<u8> = bytes.iter().copied().skip_while(|&b| b == 0).collect();
        let mut out = vec![0x02];
        if trimmed.first().is_some_and(|&b| b >= 0x80) {
            out.push(u8::try_from(trimmed.len() + 1).unwrap());
            out.push(0);
        } else {
            out.push(u8::try_from(trimmed.len()).unwrap());
        }
        out.extend(trimmed);
        out
    };
    let body = [int(&fixed[..32]), int(&fixed[32..])].concat();
    let mut out = vec![0x30, u8::try_from(body.len()).unwrap()];
    out.extend(body);
    out
}
