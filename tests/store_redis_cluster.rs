//! The store conformance suite and stress tests on `RedisStore` over a
//! private 3-master Redis Cluster shared by this test binary.
#![cfg(feature = "redis-cluster")]

mod support;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use support::conformance::unique;
use support::redis_server;
use tower_otp::quota::Quota;
use tower_otp::store::{ApiKeyStore, RateStore, RedisStore, SessionStore};

async fn store() -> Option<RedisStore> {
    let cluster = redis_server::shared_cluster()?;
    Some(
        RedisStore::cluster_builder(cluster.urls())
            .prefix("tower-otp-cluster-test")
            .connect()
            .await
            .expect("connect to the private cluster"),
    )
}

store_conformance!(store());

fn t(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_800_000_000 + secs)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_concurrent_attempts_open_exactly_max() {
    let Some(store) = store().await else { return };
    support::stress::attempts_open_exactly_max(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_concurrent_removals_have_one_winner() {
    let Some(store) = store().await else { return };
    support::stress::removals_have_one_winner(store).await;
}

/// Keys spread over all three masters, and every operation still works:
/// each script's keys share one slot.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_spread_over_every_master() {
    let Some(store) = store().await else { return };
    let cluster = redis_server::shared_cluster().unwrap();
    let q = Quota::per_hour(5);
    for _ in 0..60 {
        assert!(
            store
                .hit(&unique("spread"), &q, t(0))
                .await
                .unwrap()
                .allowed
        );
        let sid = unique("spread-sid");
        store
            .create_session(
                support::conformance::new_session(&sid, &[1; 32], b"d", Duration::from_secs(60)),
                t(0),
            )
            .await
            .unwrap();
        store.revoke(&sid, Duration::from_secs(60)).await.unwrap();
        assert!(store.is_revoked(&sid).await.unwrap());
    }
    for node in cluster.nodes() {
        let reply = node.command(&["DBSIZE"]).unwrap();
        let n: u64 = String::from_utf8_lossy(&reply[1..]).trim().parse().unwrap();
        assert!(n > 0, "node {node:?} holds no keys");
    }
}

/// API keys listing works on a cluster (all API keys share one slot).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_keys_list_on_cluster() {
    let Some(store) = store().await else { return };
    let ids: Vec<String> = (0..20).map(|_| unique("ck")).collect();
    for id in &ids {
        store.put_api_key(id, id.as_bytes(), None).await.unwrap();
    }
    let listed = store.list_api_keys().await.unwrap();
    for id in &ids {
        assert!(listed.iter().any(|(k, v)| k == id && v == id.as_bytes()));
        assert!(store.delete_api_key(id).await.unwrap());
    }
}
