//! A backend of one concern: a store that implements only `RateStore` (a
//! mutex over a map, honest GCRA through `tower_otp::quota::gcra`) passes
//! the rate suite and serves `RateLimitLayer` — no other trait, no backend
//! feature needed.
#![allow(clippy::unwrap_used)]

mod support;

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use tower::{Layer, ServiceExt, service_fn};
use tower_otp::client_ip::ClientIp;
use tower_otp::clock::{ManualClock, unix_micros};
use tower_otp::quota::{Quota, RateDecision, gcra};
use tower_otp::rate_limit::{ByClientIp, RateLimitLayer};
use tower_otp::store::{Limit, RateStore, StoreError};

/// Theoretical arrival times (µs) per key, behind one lock: every call is
/// decided and written under it, so each is atomic.
#[derive(Clone, Debug, Default)]
struct MapStore(Arc<Mutex<HashMap<String, u64>>>);

impl RateStore for MapStore {
    async fn hit_all(
        &self,
        limits: &[Limit<'_>],
        now: SystemTime,
    ) -> Result<Vec<RateDecision>, StoreError> {
        let now_us = unix_micros(now);
        let mut cells = self.0.lock().unwrap();
        // The TATs this call would store; a key named twice sees its
        // earlier limit's count. Written only if every limit allows.
        let mut next: HashMap<&str, u64> = HashMap::new();
        let mut all = true;
        let mut decisions = Vec::with_capacity(limits.len());
        for limit in limits {
            let before = next
                .get(limit.key)
                .or_else(|| cells.get(limit.key))
                .copied();
            let (tat, decision) = gcra(before, now_us, limit.quota);
            match tat {
                Some(tat) => {
                    next.insert(limit.key, tat);
                }
                None => all = false,
            }
            decisions.push(decision);
        }
        if all {
            for (key, tat) in next {
                cells.insert(key.to_owned(), tat);
            }
        }
        Ok(decisions)
    }
}

rate_store_conformance!(async { Some(MapStore::default()) });

#[tokio::test]
async fn serves_the_rate_limit_layer() {
    let layer = RateLimitLayer::builder(MapStore::default())
        .limit("ip", Quota::per_hour(1), ByClientIp)
        .clock(ManualClock::default())
        .build()
        .unwrap();
    let svc = layer.layer(service_fn(|_: Request<()>| async {
        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"ok"))))
    }));
    let request = || {
        let mut req = Request::new(());
        req.extensions_mut()
            .insert(ClientIp("192.0.2.7".parse().unwrap()));
        req
    };
    let first = svc.clone().oneshot(request()).await.unwrap();
    assert_eq!(first.status(), StatusCode::OK);
    let second = svc.clone().oneshot(request()).await.unwrap();
    assert_eq!(second.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(second.headers()["ratelimit-policy"], "\"ip\";q=1;w=3600");
}
