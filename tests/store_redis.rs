//! The store conformance suite, stress and layout checks on `RedisStore`
//! against a private redis-server shared by this test binary.
#![cfg(feature = "redis")]

mod support;

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use redis::AsyncCommands;
use support::conformance::unique;
use support::redis_server;
use tower_otp::quota::Quota;
use tower_otp::store::{
    ApiKeyStore, Attempt, Challenge, ChallengeStore, Limit, Limited, RateStore, RedisStore,
    SessionStore, StoreError, TenantStore,
};

async fn store_with_prefix(prefix: &str) -> Option<RedisStore> {
    let server = redis_server::shared()?;
    Some(
        RedisStore::builder(server.url())
            .prefix(prefix)
            .connect()
            .await
            .expect("connect to the private redis-server"),
    )
}

async fn store() -> Option<RedisStore> {
    store_with_prefix("tower-otp-test").await
}

store_conformance!(store());

fn t(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_800_000_000 + secs)
}

fn us(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).unwrap().as_micros() as u64
}

async fn raw() -> redis::aio::MultiplexedConnection {
    let server = redis_server::shared().unwrap();
    redis::Client::open(server.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
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

/// The Lua GCRA and the Rust one (the memory store's) agree step by step,
/// for several quotas and irregular arrival times.
#[cfg(feature = "moka")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hit_matches_memory_store_decisions() {
    let Some(redis) = store().await else { return };
    let memory = tower_otp::store::MemoryStore::new();
    let quotas = [
        Quota::per_hour(3),
        Quota::per_minute(10).with_burst(2),
        Quota::per_second(1000).with_burst(5),
        Quota::new(7, Duration::from_millis(1300)).with_burst(3),
        Quota::per_hour(1),
    ];
    for quota in quotas {
        let key = unique("parity");
        let mut now = us(t(0));
        for step in 0..300u64 {
            let a = redis
                .hit(&key, &quota, UNIX_EPOCH + Duration::from_micros(now))
                .await
                .unwrap();
            let b = memory
                .hit(&key, &quota, UNIX_EPOCH + Duration::from_micros(now))
                .await
                .unwrap();
            assert_eq!(a, b, "quota {quota:?}, step {step}");
            // Pseudo-random gaps from 0 µs to ~0.8 s, some long jumps.
            now += (step * 7919 % 997) * 797 + if step % 50 == 49 { 3_600_000_000 } else { 0 };
        }
    }
}

/// Every key lives under the prefix in a hash tag, and every key has a TTL
/// except API keys stored without one, tenant records, and their indexes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_key_is_prefixed_and_expires() {
    let prefix = unique("layout");
    let Some(store) = store_with_prefix(&prefix).await else {
        return;
    };
    let ttl = Duration::from_secs(3600);
    let c = Challenge {
        id: [1; 16],
        mac: [2; 32],
        expires_at_us: us(t(600)),
        channel: tower_otp::notify::Channel::Sms,
    };
    store.hit("rk", &Quota::per_hour(3), t(0)).await.unwrap();
    store.put_challenge("ck", &c, &[], t(0)).await.unwrap();
    store.put_challenge("ck2", &c, &[], t(0)).await.unwrap();
    store.attempt_challenge("ck2", 5, &[], t(1)).await.unwrap();
    store
        .create_session(
            support::conformance::new_session("sid", &[1; 32], b"d", ttl),
            t(0),
        )
        .await
        .unwrap();
    store
        .rotate_refresh(
            support::conformance::rotation("sid", &[1; 32], &[2; 32], Duration::from_secs(5), ttl),
            t(1),
        )
        .await
        .unwrap();
    store
        .create_session(
            support::conformance::new_session("sid2", &[1; 32], b"d", ttl),
            t(0),
        )
        .await
        .unwrap();
    store.revoke("sid2", ttl).await.unwrap();
    store.revoke("jti", ttl).await.unwrap();
    store.put_api_key("k1", b"r1", None).await.unwrap();
    store.put_api_key("k2", b"r2", Some(ttl)).await.unwrap();
    store.create_tenant("acme", b"t").await.unwrap();
    store
        .add_counters("acme", &[support::conformance::add("d:1", "n", 1)], t(0))
        .await
        .unwrap();
    store
        .put_pending("pk", b"p", Duration::from_secs(600), t(0))
        .await
        .unwrap();

    let mut conn = raw().await;
    let keys: Vec<String> = conn.keys(format!("*{prefix}*")).await.unwrap();
    let mut ttls = BTreeMap::new();
    for key in keys {
        let pttl: i64 = conn.pttl(&key).await.unwrap();
        ttls.insert(key, pttl);
    }
    let p = &prefix;
    let expected_forever = [
        format!("{{{p}:k}}:r:k1"),
        format!("{{{p}:k}}:i"),
        format!("{{{p}:t}}:r:acme"),
        format!("{{{p}:t}}:i"),
    ];
    let expected: Vec<String> = [
        format!("{{{p}:r}}:rk"),
        format!("{{{p}:r}}c:ck"),
        format!("{{{p}:r}}c:ck2"),
        format!("{{{p}:s:sid}}"),
        format!("{{{p}:u:sid}}"),
        format!("{{{p}:s:sid2}}:x"),
        format!("{{{p}:u:sid2}}"),
        format!("{{{p}:s:jti}}:x"),
        format!("{{{p}:k}}:r:k2"),
        format!("{{{p}:t:acme}}:c:d:1"),
        format!("{{{p}:p:pk}}"),
    ]
    .into_iter()
    .chain(expected_forever.iter().cloned())
    .collect();
    let mut got: Vec<&String> = ttls.keys().collect();
    let mut want: Vec<&String> = expected.iter().collect();
    got.sort();
    want.sort();
    assert_eq!(got, want, "key layout");
    for (key, pttl) in &ttls {
        if expected_forever.contains(key) {
            assert_eq!(*pttl, -1, "{key} should not expire");
        } else {
            assert!(*pttl > 0, "{key} has no TTL ({pttl})");
        }
    }
    // A family is reclaimed a minute after its deadline (an hour after its
    // rotation), its subject's index a minute after the longest absolute
    // deadline of its sessions (100 hours here).
    let family = ttls[&format!("{{{p}:s:sid}}")];
    assert!(family > 3600 * 1000 && family <= 3660 * 1000, "{family}");
    let index = ttls[&format!("{{{p}:u:sid}}")];
    assert!(
        index > 99 * 3600 * 1000 && index <= 100 * 3600 * 1000 + 60_000,
        "{index}"
    );
    // A challenge's TTL follows its expiry (600 s after t(0)).
    assert!(ttls[&format!("{{{p}:r}}c:ck")] <= 600_000);
    // The rate cell expires when the quota is full again (20 min for 3/h),
    // plus a second of slack for the callers' clocks.
    let rk = ttls[&format!("{{{p}:r}}:rk")];
    assert!(rk > 19 * 60 * 1000 && rk <= 20 * 60 * 1000 + 1000, "{rk}");
    // A counter group lives its change's ttl (an hour), a pending signup
    // its own (600 s).
    assert!(ttls[&format!("{{{p}:t:acme}}:c:d:1")] <= 3600 * 1000);
    assert!(ttls[&format!("{{{p}:p:pk}}")] <= 600_000);
}

/// After `SCRIPT FLUSH` (as after a restart) the scripts are reloaded
/// transparently.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scripts_reload_after_noscript() {
    let Some(store) = store().await else { return };
    let key = unique("noscript");
    assert!(
        store
            .hit(&key, &Quota::per_hour(2), t(0))
            .await
            .unwrap()
            .allowed
    );
    let mut conn = raw().await;
    let () = redis::cmd("SCRIPT")
        .arg("FLUSH")
        .query_async(&mut conn)
        .await
        .unwrap();
    let d = store.hit(&key, &Quota::per_hour(2), t(0)).await.unwrap();
    assert!(d.allowed);
    assert_eq!(d.remaining, 0);
    assert!(
        !store
            .hit(&key, &Quota::per_hour(2), t(0))
            .await
            .unwrap()
            .allowed
    );
}

/// Data of the wrong type under a key is `Corrupt`, not a panic or a success.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreadable_data_is_corrupt() {
    let prefix = unique("corrupt");
    let Some(store) = store_with_prefix(&prefix).await else {
        return;
    };
    let mut conn = raw().await;
    let () = conn
        .set(format!("{{{prefix}:r}}:k"), "not a number")
        .await
        .unwrap();
    let () = conn
        .set(format!("{{{prefix}:r}}c:k"), "a string, not a hash")
        .await
        .unwrap();
    let () = conn
        .hset_multiple(
            format!("{{{prefix}:r}}c:short"),
            &[
                ("id", "x"),
                ("mac", "y"),
                ("exp", "99999999999999999"),
                ("n", "0"),
            ],
        )
        .await
        .unwrap();
    let err = store.hit("k", &Quota::per_hour(3), t(0)).await.unwrap_err();
    assert!(matches!(err, StoreError::Corrupt(_)), "{err:?}");
    let err = store
        .attempt_challenge("k", 5, &[], t(0))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Corrupt(_)), "{err:?}");
    let err = store
        .attempt_challenge("short", 5, &[], t(0))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Corrupt(_)), "{err:?}");
    // A step that meets corrupt data counts none of its limits.
    let q = Quota::per_hour(1);
    let limits = [Limit {
        key: "fresh",
        quota: &q,
    }];
    let err = store
        .attempt_challenge("short", 5, &limits, t(0))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Corrupt(_)), "{err:?}");
    let c = Challenge {
        id: [1; 16],
        mac: [2; 32],
        expires_at_us: us(t(600)),
        channel: tower_otp::notify::Channel::Sms,
    };
    let bad = [
        limits[0],
        Limit {
            key: "k",
            quota: &q,
        },
    ];
    let err = store
        .put_challenge("new", &c, &bad, t(0))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Corrupt(_)), "{err:?}");
    assert!(
        store.hit("fresh", &q, t(0)).await.unwrap().allowed,
        "nothing counted"
    );
    assert_eq!(
        store.attempt_challenge("new", 5, &[], t(0)).await.unwrap(),
        Limited::Passed(Attempt::Missing),
        "nothing put"
    );
}

/// Tenant keys holding the wrong type or unreadable values are `Corrupt`:
/// never overwritten, and a call that meets one writes nothing, even to
/// the keys it names before it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenant_keys_of_the_wrong_type_are_corrupt() {
    use support::conformance::{add, guard};
    let prefix = unique("corrupt-tenant");
    let Some(store) = store_with_prefix(&prefix).await else {
        return;
    };
    let p = &prefix;
    let mut conn = raw().await;
    let strings = [
        format!("{{{p}:t}}:r:str"),
        format!("{{{p}:t:acme}}:c:str"),
        format!("{{{p}:p:str}}"),
    ];
    for key in &strings {
        let () = conn.set(key, "x").await.unwrap();
    }
    let () = conn
        .hset_multiple(
            format!("{{{p}:t:acme}}:c:text"),
            &[(" exp", "99999999999999999"), ("n", "many")],
        )
        .await
        .unwrap();
    let () = conn
        .hset(format!("{{{p}:t:acme}}:c:bare"), "n", "1")
        .await
        .unwrap();
    let () = conn
        .hset_multiple(format!("{{{p}:t}}:r:badv"), &[("v", "one"), ("d", "x")])
        .await
        .unwrap();
    let () = conn
        .hset(format!("{{{p}:t}}:r:half"), "v", "1")
        .await
        .unwrap();
    let corrupt = |r: Result<_, StoreError>| match r {
        Err(StoreError::Corrupt(_)) => {}
        other => panic!("expected Corrupt, got {other:?}"),
    };

    corrupt(store.create_tenant("str", b"t").await.map(|_| ()));
    corrupt(store.get_tenant("str").await.map(|_| ()));
    corrupt(store.update_tenant("str", 1, b"t").await.map(|_| ()));
    corrupt(store.get_tenant("badv").await.map(|_| ()));
    corrupt(store.update_tenant("badv", 1, b"t").await.map(|_| ()));
    corrupt(store.get_tenant("half").await.map(|_| ()));
    for bad in ["str", "text", "bare"] {
        let adds = [add("good", "n", 1), add(bad, "n", 1)];
        corrupt(store.add_counters("acme", &adds, t(0)).await);
        let guards = [guard("good", "n", 10), guard(bad, "n", 10)];
        corrupt(
            store
                .add_counters_within("acme", &guards, &adds[..1], t(0))
                .await
                .map(|_| ()),
        );
        corrupt(
            store
                .counters("acme", &["good", bad], t(0))
                .await
                .map(|_| ()),
        );
    }
    assert_eq!(
        store.counters("acme", &["good"], t(0)).await.unwrap(),
        [vec![]],
        "a failed call wrote a group named before the bad one"
    );
    corrupt(
        store
            .put_pending("str", b"p", Duration::from_secs(60), t(0))
            .await,
    );
    corrupt(store.take_pending("str", t(0)).await.map(|_| ()));
    for key in &strings {
        let kept: String = conn.get(key).await.unwrap();
        assert_eq!(kept, "x", "{key} overwritten");
    }

    // An index of the wrong type: listing fails, and a create writes no
    // record.
    let () = conn.set(format!("{{{p}:t}}:i"), "x").await.unwrap();
    corrupt(store.list_tenants().await.map(|_| ()));
    corrupt(store.create_tenant("new", b"t").await.map(|_| ()));
    let exists: bool = conn.exists(format!("{{{p}:t}}:r:new")).await.unwrap();
    assert!(!exists, "create wrote a record it could not index");
}

/// Every tenant operation is one round trip: one `EVALSHA` (whatever the
/// number of groups), or the one `HMGET` of `get_tenant`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_tenant_operation_is_one_redis_call() {
    use support::conformance::{add, guard};
    // A private server: the shared one counts other tests' commands too.
    let Some(server) = redis_server::RedisServer::start() else {
        return;
    };
    let store = RedisStore::builder(server.url()).connect().await.unwrap();
    let adds = [
        add("d:1", "n", 1),
        add("m:1", "n", 1),
        add("d:1", "sent", 1),
    ];
    let one = |what: &str, before: &BTreeMap<String, u64>| {
        let calls = server.calls_since(before);
        assert_eq!(calls.get("evalsha"), Some(&1), "{what}: {calls:?}");
    };
    let before = server.command_calls();
    store.create_tenant("acme", b"t").await.unwrap();
    one("create_tenant", &before);
    let before = server.command_calls();
    store.update_tenant("acme", 1, b"t2").await.unwrap();
    one("update_tenant", &before);
    let before = server.command_calls();
    store.list_tenants().await.unwrap();
    one("list_tenants", &before);
    let before = server.command_calls();
    store.add_counters("acme", &adds, t(0)).await.unwrap();
    one("add_counters", &before);
    let before = server.command_calls();
    let guards = [guard("d:1", "n", 10), guard("m:1", "n", 10)];
    store
        .add_counters_within("acme", &guards, &adds, t(0))
        .await
        .unwrap();
    one("add_counters_within", &before);
    let before = server.command_calls();
    store.counters("acme", &["d:1", "m:1"], t(0)).await.unwrap();
    one("counters", &before);
    let before = server.command_calls();
    store
        .put_pending("p", b"p", Duration::from_secs(60), t(0))
        .await
        .unwrap();
    one("put_pending", &before);
    let before = server.command_calls();
    store.take_pending("p", t(0)).await.unwrap();
    one("take_pending", &before);
    let before = server.command_calls();
    store.get_tenant("acme").await.unwrap();
    assert_eq!(
        server.calls_since(&before),
        BTreeMap::from([("hmget".to_owned(), 1)])
    );
}

/// Unreadable session state — an index entry, a family without its
/// deadlines, a key of the wrong type — is `Corrupt`, and a call that meets
/// it changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreadable_session_state_is_corrupt() {
    use support::conformance::{new_session, rotation};
    let prefix = unique("corrupt-session");
    let Some(store) = store_with_prefix(&prefix).await else {
        return;
    };
    let p = &prefix;
    let mut conn = raw().await;
    let corrupt = |r: Result<(), StoreError>| {
        let err = r.unwrap_err();
        assert!(matches!(err, StoreError::Corrupt(_)), "{err:?}");
    };
    let hour = Duration::from_secs(3600);
    // "good" is a live session of the subject "bad", whose index also holds
    // an unreadable entry.
    store
        .create_session(
            tower_otp::store::NewSession {
                subject: "bad",
                ..new_session("good", &[1; 32], b"d", hour)
            },
            t(0),
        )
        .await
        .unwrap();
    let () = conn
        .hset(format!("{{{p}:u:bad}}"), "x", "not:a:deadline")
        .await
        .unwrap();
    corrupt(store.list_sessions("bad", t(1)).await.map(|_| ()));
    corrupt(
        store
            .revoke_subject("bad", None, hour, t(1))
            .await
            .map(|_| ()),
    );
    corrupt(
        store
            .create_session(
                tower_otp::store::NewSession {
                    subject: "bad",
                    ..new_session("new", &[1; 32], b"d", hour)
                },
                t(1),
            )
            .await,
    );
    assert!(!store.is_revoked("good").await.unwrap(), "nothing revoked");
    let exists: bool = conn.exists(format!("{{{p}:s:new}}")).await.unwrap();
    assert!(!exists, "nothing started");

    // A family without its times, and a family key holding a string.
    let () = conn
        .hset_multiple(format!("{{{p}:s:old}}"), &[("cur", "c"), ("data", "d")])
        .await
        .unwrap();
    let r = store
        .rotate_refresh(rotation("old", &[1; 32], &[2; 32], hour, hour), t(1))
        .await;
    corrupt(r.map(|_| ()));
    let () = conn.set(format!("{{{p}:s:str}}"), "x").await.unwrap();
    let () = conn
        .hset(
            format!("{{{p}:u:s}}"),
            "str",
            format!("{}:{}", us(t(0)), us(t(99))),
        )
        .await
        .unwrap();
    corrupt(store.list_sessions("s", t(1)).await.map(|_| ()));
    corrupt(
        store
            .revoke_session("s", "str", hour, t(1))
            .await
            .map(|_| ()),
    );
}

/// On a single node each session operation is one script, the challenge
/// consume that starts a session included.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_session_operation_is_one_redis_call() {
    use support::conformance::new_session;
    // A private server: the shared one counts other tests' commands too.
    let Some(server) = redis_server::RedisServer::start() else {
        return;
    };
    let store = RedisStore::builder(server.url()).connect().await.unwrap();
    let one = |what: &str, before: &BTreeMap<String, u64>| {
        let calls = server.calls_since(before);
        assert_eq!(calls.get("evalsha"), Some(&1), "{what}: {calls:?}");
    };
    let hour = Duration::from_secs(3600);
    let new = |sid| tower_otp::store::NewSession {
        subject: "u",
        ..new_session(sid, &[1; 32], b"d", hour)
    };
    let before = server.command_calls();
    store.create_session(new("a"), t(0)).await.unwrap();
    one("create_session", &before);
    let c = Challenge {
        id: [1; 16],
        mac: [2; 32],
        expires_at_us: us(t(600)),
        channel: tower_otp::notify::Channel::Email,
    };
    store.put_challenge("ck", &c, &[], t(0)).await.unwrap();
    let before = server.command_calls();
    assert!(
        store
            .consume_challenge("ck", &[1; 16], new("b"), t(1))
            .await
            .unwrap()
    );
    one("consume_challenge", &before);
    let before = server.command_calls();
    assert_eq!(store.list_sessions("u", t(2)).await.unwrap().len(), 2);
    one("list_sessions", &before);
    let before = server.command_calls();
    assert!(store.revoke_session("u", "a", hour, t(3)).await.unwrap());
    one("revoke_session", &before);
    let before = server.command_calls();
    assert_eq!(
        store.revoke_subject("u", None, hour, t(4)).await.unwrap(),
        1
    );
    one("revoke_subject", &before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn debug_shows_target_but_no_password() {
    let Some(server) = redis_server::shared() else {
        return;
    };
    let builder = RedisStore::builder(format!(
        "redis://:hunter2hunter2@127.0.0.1:{}",
        server.port()
    ));
    let shown = format!("{builder:?}");
    assert!(!shown.contains("hunter2"), "{shown}");
    let store = store().await.unwrap();
    let shown = format!("{store:?}");
    assert!(shown.contains(&server.port().to_string()), "{shown}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clones_share_state() {
    let Some(store) = store().await else { return };
    let other = store.clone();
    let key = unique("clone");
    let q = Quota::per_hour(1);
    assert!(store.hit(&key, &q, t(0)).await.unwrap().allowed);
    assert!(!other.hit(&key, &q, t(0)).await.unwrap().allowed);
}

/// `RateLimitLayer` over Redis: the store needs I/O, so the layer takes its
/// awaiting path (the in-memory store never does).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limit_layer_counts_in_redis() {
    use http::{Request, Response, StatusCode};
    use tower::{Layer, ServiceExt, service_fn};
    use tower_otp::client_ip::ClientIp;
    use tower_otp::clock::ManualClock;
    use tower_otp::rate_limit::{ByClientIp, RateLimitLayer};

    let Some(store) = store_with_prefix(&unique("rl-layer")).await else {
        return;
    };
    let layer = RateLimitLayer::builder(store)
        .limit("ip", Quota::per_minute(2), ByClientIp)
        .clock(ManualClock::default())
        .build()
        .unwrap();
    let svc = layer.layer(service_fn(|_req: Request<()>| async {
        Ok::<_, std::convert::Infallible>(Response::new(String::from("ok")))
    }));
    let call = |ip: &str| {
        let mut req = Request::new(());
        req.extensions_mut().insert(ClientIp(ip.parse().unwrap()));
        svc.clone().oneshot(req)
    };
    for remaining in [1, 0] {
        let res = call("192.0.2.1").await.unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(res.headers()["ratelimit-policy"], "\"ip\";q=2;w=60");
        assert_eq!(
            res.headers()["ratelimit"],
            // `t`: one more request in 30 s (draft -10 §4.1.2).
            format!("\"ip\";r={remaining};t=30").as_str()
        );
    }
    let refused = call("192.0.2.1").await.unwrap();
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(refused.headers()["retry-after"], "30");
    // Another client has its own bucket.
    assert_eq!(call("192.0.2.2").await.unwrap().status(), StatusCode::OK);
}

/// API keys over Redis, as two instances of a service see them: one issues,
/// the other verifies from the store; rotation grace and revocation reach
/// both, a cached instance within its cache TTL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_keys_live_in_redis_across_instances() {
    use tower_otp::api_key::{ApiKeys, Rejection};
    use tower_otp::clock::ManualClock;

    let Some(store) = store_with_prefix(&unique("api-keys")).await else {
        return;
    };
    let clock = ManualClock::default();
    let instance = |ttl: Duration| {
        ApiKeys::builder(store.clone())
            .prefix("sk_test")
            .clock(clock.clone())
            .cache_ttl(ttl)
            .build()
            .unwrap()
    };
    let (cached, uncached) = (instance(Duration::from_secs(5)), instance(Duration::ZERO));

    let old = cached.issue("acme", ["read"], "ci", None).await.unwrap();
    let who = uncached.verify(old.key()).await.unwrap();
    assert_eq!((who.tenant(), who.has_scope("read")), ("acme", true));

    let new = cached
        .rotate(old.key_id(), Duration::from_secs(60))
        .await
        .unwrap();
    assert!(
        uncached.verify(old.key()).await.is_ok(),
        "old key in its grace period"
    );
    assert!(uncached.verify(new.key()).await.is_ok());
    clock.advance(Duration::from_secs(61));
    assert!(matches!(
        uncached.verify(old.key()).await,
        Err(Rejection::Mismatch)
    ));
    assert!(cached.verify(new.key()).await.is_ok());

    assert!(uncached.revoke(old.key_id()).await.unwrap());
    assert!(
        uncached.verify(new.key()).await.is_err(),
        "revoked: refused at once"
    );
    assert!(
        cached.verify(new.key()).await.is_ok(),
        "still in the other's cache"
    );
    clock.advance(Duration::from_secs(5));
    assert!(
        cached.verify(new.key()).await.is_err(),
        "refused once its cache entry aged out"
    );
    assert!(cached.list(None).await.unwrap().is_empty());
}

/// A protected request through `JwtLayer::with_store(RedisStore)` with a
/// token carrying both `sid` and `jti` is one command on the server — one
/// `EXISTS` naming both markers — and a revoked `sid` or `jti` refuses.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_protected_request_is_one_redis_command() {
    use http::{Request, Response, StatusCode};
    use tower::{Layer, ServiceExt, service_fn};
    use tower_otp::jwt::{JwtKeys, JwtLayer, Validation, encode};

    // A private server: the shared one counts other tests' commands too.
    let Some(server) = redis_server::RedisServer::start() else {
        return;
    };
    let keys = JwtKeys::new("k1", "Wq4zT8mK1xV6nR3bH9cL2pJ7fD5sG0yA").unwrap();
    let exp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 600;
    let claims = serde_json::json!({"sub": "usr_a", "sid": "fam1", "jti": "tok1", "exp": exp});
    let bearer = format!("Bearer {}", encode(&keys, &claims).unwrap());
    // A layer over its own prefix, and the status of one protected request.
    let protect = async |revoked: Option<&str>| {
        let store = RedisStore::builder(server.url())
            .prefix(unique("jwt"))
            .connect()
            .await
            .unwrap();
        if let Some(id) = revoked {
            store.revoke(id, Duration::from_secs(60)).await.unwrap();
        }
        let svc = JwtLayer::<serde_json::Value>::new(keys.clone(), Validation::default())
            .with_store(store)
            .layer(service_fn(|_req: Request<()>| async {
                Ok::<_, std::convert::Infallible>(Response::new(String::from("ok")))
            }));
        let bearer = bearer.clone();
        move || {
            let req = Request::builder()
                .header("authorization", bearer.as_str())
                .body(())
                .unwrap();
            let svc = svc.clone();
            async move { svc.oneshot(req).await.unwrap().status() }
        }
    };

    let call = protect(None).await;
    let before = server.command_calls();
    const REQUESTS: u64 = 20;
    for _ in 0..REQUESTS {
        assert_eq!(call().await, StatusCode::OK);
    }
    assert_eq!(
        server.calls_since(&before),
        BTreeMap::from([("exists".to_owned(), REQUESTS)]),
        "one EXISTS per request"
    );

    for id in ["tok1", "fam1"] {
        let call = protect(Some(id)).await;
        assert_eq!(call().await, StatusCode::UNAUTHORIZED, "{id} revoked");
    }
}
