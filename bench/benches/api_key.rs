//! API-key verification next to its natural peer, measured in the same run.
//!
//! cargo bench --manifest-path bench/Cargo.toml --bench api_key
//!
//! * `verify_cached` — `ApiKeys::verify` of a hot key (SHA-256 of the key +
//!   moka get + the last-used throttle);
//! * `verify_refused_typo` — a one-character typo, refused by the checksum
//!   after a cache miss, no store call (the format and checksum check alone
//!   is crate-private, so this is its public figure);
//! * `verify_uncached_memory_store` — cache off: parse + one `MemoryStore`
//!   lookup + JSON record decode + SHA-256 + constant-time compare;
//! * `layer_cached_request` — a whole request through `ApiKeyLayer` over a
//!   trivial service (`tower::ServiceExt::oneshot`);
//! * peers: `sha256_32_bytes`, `moka_get_hit`, and the two together
//!   (`sha256_then_moka_get`), what DESIGN.md quotes at 0.055 µs and 0.42 µs;
//!   `sha256_same_key_then_moka_get` hashes the same 74-byte key we verify.

#![allow(missing_docs)] // criterion_group! generates undocumented items

use std::convert::Infallible;
use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use http::{Request, Response};
use http_body_util::Full;
use sha2::{Digest, Sha256};
use tower::{Layer, ServiceExt, service_fn};
use tower_otp::api_key::{ApiKeyLayer, ApiKeys};
use tower_otp::clock::ManualClock;
use tower_otp::store::MemoryStore;

/// Runs a future that completes without waiting (all of these do: the
/// memory store never pends), without a runtime's overhead in the figure.
fn now<F: Future>(fut: F) -> F::Output {
    let mut fut = pin!(fut);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(out) = fut.as_mut().poll(&mut cx) {
            return out;
        }
    }
}

fn keys(cache_ttl: Duration) -> ApiKeys<MemoryStore> {
    ApiKeys::builder(MemoryStore::new())
        .clock(ManualClock::default())
        .cache_ttl(cache_ttl)
        .build()
        .expect("valid settings")
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("api_key");

    let cached = keys(Duration::from_secs(60));
    let issued = now(cached.issue("acme", ["read"], "bench", None)).expect("issued");
    let key = issued.key().to_owned();
    now(cached.verify(&key)).expect("valid key");

    g.bench_function("verify_cached", |b| {
        b.iter(|| now(cached.verify(black_box(&key))).is_ok())
    });
    let mut typo = key.clone();
    let last = typo.pop().expect("non-empty");
    typo.push(if last == 'A' { 'B' } else { 'A' });
    g.bench_function("verify_refused_typo", |b| {
        b.iter(|| now(cached.verify(black_box(&typo))).is_err())
    });

    let uncached = keys(Duration::ZERO);
    let issued = now(uncached.issue("acme", ["read"], "bench", None)).expect("issued");
    let cold = issued.key().to_owned();
    now(uncached.verify(&cold)).expect("valid key");
    g.bench_function("verify_uncached_memory_store", |b| {
        b.iter(|| now(uncached.verify(black_box(&cold))).is_ok())
    });

    let svc = ApiKeyLayer::new(cached.clone()).layer(service_fn(|_: Request<Full<Bytes>>| async {
        Ok::<_, Infallible>(Response::new(Full::new(Bytes::new())))
    }));
    g.bench_function("layer_cached_request", |b| {
        b.iter(|| {
            let req = Request::builder()
                .header("x-api-key", key.as_str())
                .body(Full::default())
                .expect("request");
            now(svc.clone().oneshot(req)).map(|r| r.status())
        })
    });

    // The peer: a bare SHA-256 of a 32-byte key plus a moka get.
    let raw: [u8; 32] = rand::random();
    let cache: moka::sync::Cache<[u8; 32], Arc<String>> = moka::sync::Cache::new(10_000);
    let hashed: [u8; 32] = Sha256::digest(raw).into();
    cache.insert(hashed, Arc::new("acme".to_owned()));
    g.bench_function("sha256_32_bytes", |b| {
        b.iter(|| Sha256::digest(black_box(raw)))
    });
    g.bench_function("moka_get_hit", |b| b.iter(|| cache.get(black_box(&hashed))));
    g.bench_function("sha256_then_moka_get", |b| {
        b.iter(|| {
            let h: [u8; 32] = Sha256::digest(black_box(raw)).into();
            cache.get(&h)
        })
    });
    // The same peer handed our key: SHA-256 of the same 74 bytes.
    let same: [u8; 32] = Sha256::digest(key.as_bytes()).into();
    cache.insert(same, Arc::new("acme".to_owned()));
    g.bench_function("sha256_same_key_then_moka_get", |b| {
        b.iter(|| {
            let h: [u8; 32] = Sha256::digest(black_box(key.as_bytes())).into();
            cache.get(&h)
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
