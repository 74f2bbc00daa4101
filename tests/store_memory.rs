//! The store conformance suite on `MemoryStore`, and its capacity rules:
//! a full store refuses new entries and never forgets live ones.
#![cfg(feature = "moka")]

mod support;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tower_otp::quota::Quota;
use tower_otp::store::{
    ApiKeyStore, Guarded, Limit, MemoryStore, RateStore, Rotation, SessionStore, StoreError,
    TenantStore,
};

store_conformance!(async { Some(MemoryStore::new()) });

fn t(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_800_000_000 + secs)
}

fn is_full(e: &StoreError) -> bool {
    matches!(e, StoreError::Full(_))
}

const HOUR: Duration = Duration::from_secs(3600);

/// Issue 10: with a full rate table, a flood of new keys reset a verify
/// lockout, an exhausted per-IP limit and a resend cooldown. Now the flood's
/// new keys are refused and the three stay refused.
#[tokio::test]
async fn a_flood_of_new_keys_never_resets_a_live_limit() {
    let store = MemoryStore::builder().max_rate_keys(256).build();
    let verify = Quota::per_hour(5);
    let per_ip = Quota::per_hour(5);
    let cooldown = Quota::new(1, Duration::from_secs(30));
    for _ in 0..5 {
        assert!(
            store
                .hit("verify:victim", &verify, t(0))
                .await
                .unwrap()
                .allowed
        );
        assert!(store.hit("ip:victim", &per_ip, t(0)).await.unwrap().allowed);
    }
    assert!(
        store
            .hit("resend:victim", &cooldown, t(0))
            .await
            .unwrap()
            .allowed
    );

    let flood = Quota::per_hour(1);
    let mut refused = 0;
    for i in 0..20_000u64 {
        let key = format!("flood{i}");
        // Both awaiting paths (the layer's fast path has its own flood test,
        // `a_flood_through_hit_now_never_resets_a_live_limit`, in the crate).
        match i % 2 {
            0 => match store.hit(&key, &flood, t(1)).await {
                Ok(d) => assert!(d.allowed),
                Err(e) => {
                    assert!(is_full(&e), "{e:?}");
                    refused += 1;
                }
            },
            _ => match store
                .hit_all(
                    &[Limit {
                        key: &key,
                        quota: &flood,
                    }],
                    t(1),
                )
                .await
            {
                Ok(d) => assert!(d[0].allowed),
                Err(e) => {
                    assert!(is_full(&e), "{e:?}");
                    refused += 1;
                }
            },
        }
    }

    assert!(
        !store
            .hit("verify:victim", &verify, t(2))
            .await
            .unwrap()
            .allowed,
        "lockout reset"
    );
    assert!(
        !store.hit("ip:victim", &per_ip, t(2)).await.unwrap().allowed,
        "per-IP limit reset"
    );
    assert!(
        !store
            .hit("resend:victim", &cooldown, t(2))
            .await
            .unwrap()
            .allowed,
        "cooldown reset"
    );
    let limits = [
        Limit {
            key: "ip:victim",
            quota: &per_ip,
        },
        Limit {
            key: "verify:victim",
            quota: &verify,
        },
    ];
    let d = store.hit_all(&limits, t(2)).await.unwrap();
    assert!(!d[0].allowed && !d[1].allowed);
    assert!(refused > 0, "the table never filled");

    // Once the flood's cells have expired, new keys reuse their room (64
    // keys: a quarter of the table, far from filling any of its 16 shards).
    for i in 0..64u64 {
        let key = format!("later{i}");
        assert!(
            store.hit(&key, &flood, t(2 * 3600)).await.unwrap().allowed,
            "{key}"
        );
    }
}

/// A store error (here: no room for a new key) counts nothing, not even the
/// limits whose cells exist.
#[tokio::test]
async fn a_full_rate_table_counts_nothing_of_a_refused_call() {
    let store = MemoryStore::builder().max_rate_keys(128).build();
    let q = Quota::per_hour(10);
    assert!(store.hit("known", &q, t(0)).await.unwrap().allowed);
    let mut i = 0;
    let stranger = loop {
        let key = format!("fill{i}");
        if store.hit(&key, &q, t(0)).await.is_err() {
            break key;
        }
        i += 1;
    };
    let limits = [
        Limit {
            key: "known",
            quota: &q,
        },
        Limit {
            key: &stranger,
            quota: &q,
        },
    ];
    let err = store.hit_all(&limits, t(1)).await.unwrap_err();
    assert!(is_full(&err), "{err:?}");
    assert_eq!(store.hit("known", &q, t(2)).await.unwrap().remaining, 8);
}

/// Issue 10: at capacity, 20 of 20 freshly issued keys failed to verify.
/// Every key written while there was room stays readable; the write past
/// capacity fails.
#[tokio::test]
async fn api_keys_at_capacity_stay_readable_and_the_next_write_fails() {
    let store = MemoryStore::builder().max_records(20).build();
    let mut written = Vec::new();
    for i in 0..40 {
        let id = format!("key{i}");
        match store.put_api_key(&id, id.as_bytes(), None).await {
            Ok(()) => written.push(id),
            Err(e) => assert!(is_full(&e), "{e:?}"),
        }
    }
    for id in &written {
        assert_eq!(
            store.get_api_key(id).await.unwrap().as_deref(),
            Some(id.as_bytes()),
            "{id} was stored and is gone"
        );
    }
    assert_eq!(written.len(), 20, "writes past capacity must fail");
    assert_eq!(store.list_api_keys().await.unwrap().len(), 20);
    // Replacing and deleting need no room.
    store.put_api_key("key0", b"rotated", None).await.unwrap();
    assert!(store.delete_api_key("key1").await.unwrap());
    store.put_api_key("fits-now", b"r", None).await.unwrap();
}

/// Issue 10: at capacity `revoke()` returned Ok while the token stayed
/// valid. A revocation either is visible or fails.
#[tokio::test]
async fn revoke_at_capacity_is_never_ok_without_effect() {
    let store = MemoryStore::builder().max_records(10).build();
    let mut revoked = Vec::new();
    for i in 0..30 {
        let jti = format!("jti{i}");
        match store.revoke(&jti, HOUR).await {
            Ok(()) => revoked.push(jti),
            Err(e) => assert!(is_full(&e), "{e:?}"),
        }
    }
    for jti in &revoked {
        assert!(
            store.is_revoked(jti).await.unwrap(),
            "{jti}: revoke returned Ok, but it is not revoked"
        );
    }
    assert_eq!(revoked.len(), 10);
}

/// Session families at capacity: every one created stays usable, revoking
/// one needs no room (its record is reused), a new one fails. (Each
/// session here is its subject's only one: two records, its family and its
/// subject's index.)
#[tokio::test]
async fn sessions_at_capacity_stay_usable_and_revocable() {
    let store = MemoryStore::builder().max_records(16).build();
    for i in 0..8u8 {
        let sid = format!("sid{i}");
        store
            .create_session(
                support::conformance::new_session(&sid, &[i; 32], b"d", HOUR),
                t(0),
            )
            .await
            .unwrap();
    }
    let err = store
        .create_session(
            support::conformance::new_session("sid8", &[8; 32], b"d", HOUR),
            t(0),
        )
        .await
        .unwrap_err();
    assert!(is_full(&err), "{err:?}");
    for i in 0..8u8 {
        let sid = format!("sid{i}");
        let r = store
            .rotate_refresh(
                support::conformance::rotation(
                    &sid,
                    &[i; 32],
                    &[i + 100; 32],
                    Duration::from_secs(5),
                    HOUR,
                ),
                t(10),
            )
            .await
            .unwrap();
        assert!(matches!(r, Rotation::Rotated(_)), "{sid}: {r:?}");
    }
    store.revoke("sid3", HOUR).await.unwrap();
    assert!(store.is_revoked("sid3").await.unwrap());
    let r = store
        .rotate_refresh(
            support::conformance::rotation(
                "sid3",
                &[103; 32],
                &[1; 32],
                Duration::from_secs(5),
                HOUR,
            ),
            t(11),
        )
        .await
        .unwrap();
    assert_eq!(r, Rotation::Invalid);
    // Reuse detection at capacity revokes the family too.
    let r = store
        .rotate_refresh(
            support::conformance::rotation(
                "sid4",
                &[4; 32],
                &[1; 32],
                Duration::from_secs(5),
                HOUR,
            ),
            t(100),
        )
        .await
        .unwrap();
    assert_eq!(r, Rotation::Reused);
    assert!(store.is_revoked("sid4").await.unwrap());
    // A token jti needs a record of its own: refused, not silently dropped.
    let err = store.revoke("some-jti", HOUR).await.unwrap_err();
    assert!(is_full(&err), "{err:?}");
    assert!(!store.is_revoked("some-jti").await.unwrap());
}

/// A subject's index is an authoritative record too: a full table refuses
/// a session that finds no room for its family or its index, leaves the
/// index as it was, and revoking the subject needs no room.
#[tokio::test]
async fn a_full_table_refuses_a_session_and_keeps_its_index_whole() {
    use tower_otp::store::NewSession;
    let store = MemoryStore::builder().max_records(3).build();
    let of = |subject, sid| NewSession {
        subject,
        ..support::conformance::new_session(sid, &[1; 32], b"d", HOUR)
    };
    // Three records: u's index and two families.
    store.create_session(of("u", "s1"), t(0)).await.unwrap();
    store.create_session(of("u", "s2"), t(1)).await.unwrap();
    let err = store.create_session(of("u", "s3"), t(2)).await.unwrap_err();
    assert!(is_full(&err), "{err:?}");
    let err = store.create_session(of("v", "s4"), t(2)).await.unwrap_err();
    assert!(is_full(&err), "{err:?}");
    let listed: Vec<String> = store
        .list_sessions("u", t(3))
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.sid)
        .collect();
    assert_eq!(listed, ["s1", "s2"]);
    for sid in ["s3", "s4"] {
        let r = store
            .rotate_refresh(
                support::conformance::rotation(sid, &[1; 32], &[2; 32], HOUR, HOUR),
                t(3),
            )
            .await
            .unwrap();
        assert_eq!(r, Rotation::Invalid, "{sid}");
    }
    assert_eq!(
        store.revoke_subject("u", None, HOUR, t(4)).await.unwrap(),
        2
    );
    assert!(store.is_revoked("s1").await.unwrap());
    assert!(store.is_revoked("s2").await.unwrap());
    // The index went with its last session: its room takes a new record.
    store.revoke("some-jti", HOUR).await.unwrap();
}

/// Expired records are reclaimed: a full store of expired revocations takes
/// new records.
#[tokio::test]
async fn expired_records_make_room() {
    let store = MemoryStore::builder().max_records(4).build();
    for i in 0..4 {
        store
            .revoke(&format!("old{i}"), Duration::from_millis(1))
            .await
            .unwrap();
    }
    // The records' TTL runs on the process clock; after this they are expired.
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(!store.is_revoked("old0").await.unwrap());
    for i in 0..4 {
        store
            .put_api_key(&format!("new{i}"), b"r", None)
            .await
            .unwrap();
    }
    let err = store.put_api_key("new4", b"r", None).await.unwrap_err();
    assert!(is_full(&err), "{err:?}");
}

/// Tenants and their counters are authoritative records: at capacity a
/// write that needs a new record fails with `Full` and changes nothing —
/// the counters of a new tenant stay empty, a guarded change counts
/// nothing — while tenants and counters already stored stay readable and
/// writable (a tenant's counter groups share its one record).
#[tokio::test]
async fn a_full_record_table_refuses_tenants_and_counters_and_changes_nothing() {
    let store = MemoryStore::builder().max_records(4).build();
    let add = |group, delta| support::conformance::add(group, "n", delta);
    assert!(store.create_tenant("old", b"v1").await.unwrap());
    store
        .add_counters("old", &[add("d:1", 1)], t(0))
        .await
        .unwrap();
    store.put_api_key("k1", b"r", None).await.unwrap();
    store.put_api_key("k2", b"r", None).await.unwrap();

    let err = store.create_tenant("new", b"v1").await.unwrap_err();
    assert!(is_full(&err), "{err:?}");
    assert_eq!(store.get_tenant("new").await.unwrap(), None);
    assert!(
        !store
            .list_tenants()
            .await
            .unwrap()
            .iter()
            .any(|(id, _)| id == "new")
    );
    let err = store
        .add_counters("new", &[add("d:1", 1), add("m:1", 1)], t(1))
        .await
        .unwrap_err();
    assert!(is_full(&err), "{err:?}");
    let guard = support::conformance::guard("d:1", "n", 10);
    let err = store
        .add_counters_within("new", &[guard], &[add("d:1", 1), add("m:1", 1)], t(1))
        .await
        .unwrap_err();
    assert!(is_full(&err), "{err:?}");
    assert_eq!(
        store.counters("new", &["d:1", "m:1"], t(2)).await.unwrap(),
        [vec![], vec![]],
        "a refused change counted"
    );
    // Guards alone need no record: they answer.
    assert_eq!(
        store
            .add_counters_within("new", &[guard], &[], t(2))
            .await
            .unwrap(),
        Guarded::Added(vec![0])
    );

    // What is stored stays usable: a new group of an old tenant needs no
    // new record, nor does an update.
    store
        .add_counters("old", &[add("d:1", 1), add("d:2", 5)], t(3))
        .await
        .unwrap();
    assert_eq!(
        store.counters("old", &["d:1", "d:2"], t(4)).await.unwrap(),
        [vec![("n".to_owned(), 2)], vec![("n".to_owned(), 5)]]
    );
    assert!(store.update_tenant("old", 1, b"v2").await.unwrap());
    assert_eq!(store.get_tenant("old").await.unwrap().unwrap().version, 2);
    // Room made, room used.
    assert!(store.delete_api_key("k1").await.unwrap());
    assert!(store.create_tenant("new", b"v1").await.unwrap());
}
