//! `RedisStore` under faults: a killed and restarted server, a peer that
//! never answers, a peer that answers garbage. Each test runs its own private
//! redis-server. Time bounds here are generous upper bounds, not benchmarks.
#![cfg(feature = "redis")]

mod support;

use std::future::Future;
use std::time::{Duration, Instant, SystemTime};

use support::conformance::unique;
use support::redis_server::{FaultProxy, Mode, RedisServer, free_port};
use tower_otp::quota::Quota;
use tower_otp::store::{
    ChallengeStore, Limit, Ping, RateStore, RedisConnectError, RedisStore, SessionStore, StoreError,
};

const TIMEOUT: Duration = Duration::from_millis(300);
/// Upper bound for any single failing call with a 300 ms timeout.
const BOUND: Duration = Duration::from_secs(2);

async fn connect(url: String) -> RedisStore {
    RedisStore::builder(url)
        .timeout(TIMEOUT)
        .connect_timeout(Duration::from_millis(500))
        .connect()
        .await
        .expect("connect")
}

/// Runs `f`, asserting it finishes within [`BOUND`]; returns its output.
async fn bounded<T>(what: &str, f: impl Future<Output = T>) -> T {
    let started = Instant::now();
    let out = tokio::time::timeout(Duration::from_secs(10), f)
        .await
        .unwrap_or_else(|_| panic!("{what}: hung for 10 s"));
    let took = started.elapsed();
    assert!(took < BOUND, "{what}: took {took:?}, bound {BOUND:?}");
    out
}

/// Polls `store.ping()` + a hit until both succeed (at most ~10 s).
async fn wait_until_healthy(store: &RedisStore) -> usize {
    for attempt in 0..100 {
        let ok = store.ping().await.is_ok()
            && store
                .hit(&unique("probe"), &Quota::per_hour(9), SystemTime::now())
                .await
                .is_ok();
        if ok {
            eprintln!("recovered after {attempt} polls of 100 ms");
            return attempt;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the store did not recover within 10 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_server_fails_fast_and_recovers_after_restart() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let store = connect(server.url()).await;
    let key = unique("fault");
    let q = Quota::per_hour(100);
    assert!(
        store
            .hit(&key, &q, SystemTime::now())
            .await
            .unwrap()
            .allowed
    );

    server.kill();
    for i in 0..8 {
        let err = bounded(
            "call while redis is down",
            store.hit(&key, &q, SystemTime::now()),
        )
        .await
        .expect_err("redis is down");
        assert!(
            matches!(err, StoreError::Unavailable(_) | StoreError::Timeout(_)),
            "call {i}: {err:?}"
        );
        let err = bounded("ping while redis is down", store.ping()).await;
        assert!(err.is_err(), "ping {i} succeeded with redis down");
    }

    server.restart();
    wait_until_healthy(&store).await;
    // A fresh server (nothing persisted): the scripts are reloaded and
    // every kind of operation works on the same store.
    let d = store.hit(&key, &q, SystemTime::now()).await.unwrap();
    assert!(d.allowed);
    assert_eq!(d.remaining, 99);
    let sid = unique("sid");
    store
        .create_session(
            support::conformance::new_session(&sid, &[1; 32], b"d", Duration::from_secs(60)),
            SystemTime::now(),
        )
        .await
        .unwrap();
    store.revoke(&sid, Duration::from_secs(60)).await.unwrap();
    assert!(store.is_revoked(&sid).await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recovers_after_a_long_outage() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let store = connect(server.url()).await;
    store.ping().await.unwrap();
    server.kill();
    // Keep calling through a few seconds of outage, so the reconnect
    // backoff has run out more than once.
    let until = Instant::now() + Duration::from_secs(3);
    while Instant::now() < until {
        assert!(bounded("ping while down", store.ping()).await.is_err());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    server.restart();
    wait_until_healthy(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recovers_without_traffic_during_the_outage() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let store = connect(server.url()).await;
    store.ping().await.unwrap();
    server.kill();
    tokio::time::sleep(Duration::from_secs(1)).await;
    server.restart();
    wait_until_healthy(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_to_a_dead_port_fails_fast() {
    if !support::redis_server::redis_available() {
        return;
    }
    let url = format!("redis://127.0.0.1:{}", free_port());
    let result = bounded(
        "connect to a closed port",
        RedisStore::builder(url)
            .connect_timeout(Duration::from_millis(500))
            .connect(),
    )
    .await;
    assert!(
        matches!(
            result,
            Err(RedisConnectError::Store(
                StoreError::Unavailable(_) | StoreError::Timeout(_)
            ))
        ),
        "{result:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_to_a_silent_peer_times_out() {
    let peer = FaultProxy::start(None, Mode::Stall).await;
    let result = bounded(
        "connect to a silent peer",
        RedisStore::builder(peer.url())
            .connect_timeout(Duration::from_millis(500))
            .connect(),
    )
    .await;
    assert!(
        matches!(
            result,
            Err(RedisConnectError::Store(StoreError::Timeout(_)))
        ),
        "{result:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_to_a_garbage_peer_fails() {
    let peer = FaultProxy::start(None, Mode::Garbage).await;
    let result = bounded(
        "connect to a garbage peer",
        RedisStore::builder(peer.url())
            .connect_timeout(Duration::from_millis(500))
            .connect(),
    )
    .await;
    assert!(
        matches!(result, Err(RedisConnectError::Store(_))),
        "{result:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_peer_times_out_then_recovers() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let proxy = FaultProxy::start(Some(server.addr()), Mode::Forward).await;
    let store = connect(proxy.url()).await;
    let key = unique("stall");
    let q = Quota::per_hour(100);
    assert!(
        store
            .hit(&key, &q, SystemTime::now())
            .await
            .unwrap()
            .allowed
    );

    proxy.set_mode(Mode::Stall);
    for op in 0..3 {
        let err = bounded(
            "call to a stalled peer",
            store.hit(&key, &q, SystemTime::now()),
        )
        .await
        .expect_err("stalled");
        assert!(
            matches!(err, StoreError::Timeout(d) if d == TIMEOUT),
            "op {op}: {err:?}"
        );
    }
    let err = bounded("ping to a stalled peer", store.ping())
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Timeout(_)), "{err:?}");

    // The peer wakes up: the answers to the abandoned calls arrive and are
    // discarded; new calls get their own answers.
    proxy.set_mode(Mode::Forward);
    wait_until_healthy(&store).await;
    let d = store.hit(&key, &q, SystemTime::now()).await.unwrap();
    assert!(d.allowed);
    // 1 + 3 stalled (delivered late: a timed-out call may still have
    // happened) + this one.
    assert_eq!(d.remaining, 95, "the stalled hits were applied once each");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_replies_are_errors_then_recovers() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let proxy = FaultProxy::start(Some(server.addr()), Mode::Forward).await;
    let store = connect(proxy.url()).await;
    store.ping().await.unwrap();

    proxy.set_mode(Mode::Garbage);
    for _ in 0..3 {
        let result = bounded(
            "call answered with garbage",
            store.attempt_challenge(&unique("garbage"), 5, &[], SystemTime::now()),
        )
        .await;
        assert!(result.is_err(), "{result:?}");
    }
    proxy.set_mode(Mode::Forward);
    wait_until_healthy(&store).await;
}

/// A `hit_all` that fails inside Redis — an unreadable cell, a key of the
/// wrong type — counts nothing, not even the limits before the bad one: the
/// script reads and decides every cell before it writes any.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_hit_all_counts_nothing() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let store = connect(server.url()).await;
    let (good, garbled, hashed) = (unique("good"), unique("garbled"), unique("hashed"));
    let cell = |key: &str| format!("{{tower-otp:r}}:{key}");
    server
        .command(&["SET", &cell(&garbled), "not-a-number"])
        .unwrap();
    server
        .command(&["HSET", &cell(&hashed), "field", "1"])
        .unwrap();
    let q = Quota::per_hour(10);
    let now = SystemTime::now();
    for bad in [&garbled, &hashed] {
        let limits = [
            Limit {
                key: &good,
                quota: &q,
            },
            Limit {
                key: bad,
                quota: &q,
            },
        ];
        let err = bounded("hit_all over a bad cell", store.hit_all(&limits, now))
            .await
            .expect_err("a bad cell is an error");
        assert!(matches!(err, StoreError::Corrupt(_)), "{err:?}");
    }
    let d = store.hit(&good, &q, now).await.unwrap();
    assert_eq!(d.remaining, 9, "the failed calls counted the good limit");
}
