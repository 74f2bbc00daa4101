//! The store conformance suites: every backend runs, unchanged, the suite of
//! each store trait it implements.
//!
//! Use `store_conformance!(async { make_store().await })` inside a test file
//! for a backend of every concern, or the suite of one trait for a partial
//! backend (`rate_store_conformance!`, `challenge_store_conformance!`,
//! `session_store_conformance!`, `api_key_store_conformance!`,
//! `tenant_store_conformance!`, `ping_conformance!`); each behaviour becomes
//! its own `#[tokio::test]`. Keys are random per test, so backends that
//! share a server (Redis) need no flushing.

#![allow(dead_code)]

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tower_otp::notify::Channel;
use tower_otp::quota::Quota;
use tower_otp::store::{
    ApiKeyStore, Attempt, Challenge, ChallengeStore, CounterAdd, CounterGuard, Guarded, Limit,
    Limited, MAX_SESSIONS_PER_SUBJECT, NewSession, Ping, RateStore, RefreshRotation, Rotation,
    SessionInfo, SessionLifetime, SessionStore, StoreError, TenantRecord, TenantStore,
};

/// A random key with a readable label.
pub fn unique(label: &str) -> String {
    format!("{label}-{:032x}", rand::random::<u128>())
}

/// A lifetime for tests that only need a session to live `ttl` since its
/// last use (its absolute lifetime is far longer).
pub fn for_ttl(ttl: Duration) -> SessionLifetime {
    SessionLifetime {
        idle: ttl,
        absolute: ttl * 100,
    }
}

/// A presentation of refresh token `presented` of family `sid`, whose
/// successor is `successor`, under [`for_ttl`]`(ttl)`.
pub fn rotation<'a>(
    sid: &'a str,
    presented: &'a [u8; 32],
    successor: &'a [u8; 32],
    grace: Duration,
    ttl: Duration,
) -> RefreshRotation<'a> {
    RefreshRotation {
        sid,
        presented,
        successor,
        grace,
        lifetime: for_ttl(ttl),
    }
}

/// A session family to start under [`for_ttl`]`(ttl)`, the only session of
/// its subject (the subject is the sid: random keys stay apart).
pub fn new_session<'a>(
    sid: &'a str,
    refresh_hash: &'a [u8; 32],
    data: &'a [u8],
    ttl: Duration,
) -> NewSession<'a> {
    NewSession {
        sid,
        refresh_hash,
        data,
        subject: sid,
        lifetime: for_ttl(ttl),
    }
}

fn t(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_800_000_000 + secs)
}

fn us(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).unwrap().as_micros() as u64
}

fn challenge(id: u8, mac: u8, expires: SystemTime) -> Challenge {
    Challenge {
        id: [id; 16],
        mac: [mac; 32],
        expires_at_us: us(expires),
        channel: Channel::Sms,
    }
}

pub async fn hit_counts_and_refuses<S: RateStore>(store: S) {
    let key = unique("hit");
    let q = Quota::per_hour(3);
    for i in 0..3 {
        let d = store.hit(&key, &q, t(i)).await.unwrap();
        assert!(d.allowed, "hit {i} refused");
        assert_eq!(d.remaining, 2 - i as u32);
    }
    let d = store.hit(&key, &q, t(3)).await.unwrap();
    assert!(!d.allowed);
    assert_eq!(d.remaining, 0);
    // 3/hour = one every 20 minutes; the first was at t(0).
    assert_eq!(d.retry_after, Duration::from_secs(20 * 60 - 3));
    // Another key is independent.
    assert!(store.hit(&unique("hit"), &q, t(3)).await.unwrap().allowed);
}

pub async fn refused_hit_changes_nothing<S: RateStore>(store: S) {
    let key = unique("hit");
    let q = Quota::per_minute(1);
    assert!(store.hit(&key, &q, t(0)).await.unwrap().allowed);
    for s in 1..50 {
        assert!(!store.hit(&key, &q, t(s)).await.unwrap().allowed);
    }
    assert!(store.hit(&key, &q, t(60)).await.unwrap().allowed);
}

pub async fn hit_refills<S: RateStore>(store: S) {
    let key = unique("hit");
    let q = Quota::per_second(10).with_burst(2);
    let base = t(0);
    assert!(store.hit(&key, &q, base).await.unwrap().allowed);
    assert!(store.hit(&key, &q, base).await.unwrap().allowed);
    assert!(!store.hit(&key, &q, base).await.unwrap().allowed);
    let later = base + Duration::from_millis(100);
    let d = store.hit(&key, &q, later).await.unwrap();
    assert!(d.allowed);
    assert_eq!(d.reset_after, Duration::from_millis(200));
}

pub async fn concurrent_hits_never_exceed<S: RateStore>(store: S) {
    let key = Arc::new(unique("hit"));
    let q = Quota::per_hour(10);
    let mut tasks = Vec::new();
    for _ in 0..100 {
        let (store, key) = (store.clone(), key.clone());
        tasks.push(tokio::spawn(async move {
            store.hit(&key, &q, t(0)).await.unwrap().allowed
        }));
    }
    let mut allowed = 0;
    for task in tasks {
        allowed += usize::from(task.await.unwrap());
    }
    assert_eq!(allowed, 10);
}

fn limit<'a>(key: &'a str, quota: &'a Quota) -> Limit<'a> {
    Limit { key, quota }
}

/// When every limit allows, every limit is counted, and the decisions come
/// back one per limit, in order.
pub async fn hit_all_counts_every_limit<S: RateStore>(store: S) {
    let (a, b) = (unique("all-a"), unique("all-b"));
    let (qa, qb) = (Quota::per_hour(3), Quota::per_hour(5));
    let d = store
        .hit_all(&[limit(&a, &qa), limit(&b, &qb)], t(0))
        .await
        .unwrap();
    assert_eq!(d.len(), 2);
    assert!(d[0].allowed && d[1].allowed);
    assert_eq!((d[0].remaining, d[1].remaining), (2, 4));
    // `hit` counts into the same cells.
    assert_eq!(store.hit(&a, &qa, t(1)).await.unwrap().remaining, 1);
    assert_eq!(store.hit(&b, &qb, t(1)).await.unwrap().remaining, 3);
    assert!(store.hit_all(&[], t(2)).await.unwrap().is_empty());
}

/// A request refused by one limit consumes none of the others, whichever
/// position the refusing limit has.
pub async fn refused_hit_all_changes_no_counter<S: RateStore>(store: S) {
    let spent = unique("all-spent");
    let (fresh1, fresh2) = (unique("all-fresh"), unique("all-fresh"));
    let one = Quota::per_hour(1);
    let three = Quota::per_hour(3);
    assert!(store.hit(&spent, &one, t(0)).await.unwrap().allowed);
    for s in 1..20 {
        let d = store
            .hit_all(
                &[
                    limit(&fresh1, &three),
                    limit(&spent, &one),
                    limit(&fresh2, &three),
                ],
                t(s),
            )
            .await
            .unwrap();
        assert!(d[0].allowed && !d[1].allowed && d[2].allowed, "{d:?}");
        assert_eq!(d[0].remaining, 2, "what it would have decided");
        assert_eq!(d[1].retry_after, Duration::from_secs(3600 - s));
    }
    // Neither fresh limit was counted, and the refused one did not grow.
    assert_eq!(
        store.hit(&fresh1, &three, t(20)).await.unwrap().remaining,
        2
    );
    assert_eq!(
        store.hit(&fresh2, &three, t(20)).await.unwrap().remaining,
        2
    );
    let d = store.hit(&spent, &one, t(20)).await.unwrap();
    assert_eq!(d.retry_after, Duration::from_secs(3600 - 20));
    assert!(store.hit(&spent, &one, t(3600)).await.unwrap().allowed);
}

/// A key named twice in one call is counted twice.
pub async fn hit_all_counts_a_repeated_key_twice<S: RateStore>(store: S) {
    let key = unique("all-twice");
    let q = Quota::per_hour(3);
    let d = store
        .hit_all(&[limit(&key, &q), limit(&key, &q)], t(0))
        .await
        .unwrap();
    assert_eq!((d[0].remaining, d[1].remaining), (2, 1));
    let d = store
        .hit_all(&[limit(&key, &q), limit(&key, &q)], t(1))
        .await
        .unwrap();
    assert!(d[0].allowed && !d[1].allowed, "{d:?}");
    assert_eq!(store.hit(&key, &q, t(1)).await.unwrap().remaining, 0);
}

/// 64 concurrent requests, each under a shared limit (10) and one of four
/// overlapping per-group limits (3 each): exactly 10 are admitted, and the
/// cells afterwards hold exactly the admitted ones — a refused request
/// counted nowhere.
pub async fn concurrent_hit_all_never_over_admits<S: RateStore>(store: S) {
    let shared = Arc::new(unique("all-shared"));
    let groups: Arc<Vec<String>> = Arc::new((0..4).map(|_| unique("all-group")).collect());
    let (qs, qg) = (Quota::per_hour(10), Quota::per_hour(3));
    let mut tasks = Vec::new();
    for i in 0..64 {
        let (store, shared, groups) = (store.clone(), shared.clone(), groups.clone());
        tasks.push(tokio::spawn(async move {
            let g = i % 4;
            let d = store
                .hit_all(&[limit(&groups[g], &qg), limit(&shared, &qs)], t(0))
                .await
                .unwrap();
            assert_eq!(d.len(), 2);
            let allowed = d.iter().all(|d| d.allowed);
            (g, allowed)
        }));
    }
    let mut per_group = [0u32; 4];
    for task in tasks {
        let (g, allowed) = task.await.unwrap();
        per_group[g] += u32::from(allowed);
    }
    // 4 × 3 group places exceed the 10 shared ones, so the shared limit
    // binds: exactly 10 admitted, no group over 3.
    assert_eq!(per_group.iter().sum::<u32>(), 10, "{per_group:?}");
    assert!(per_group.iter().all(|&n| n <= 3), "{per_group:?}");
    // The shared cell holds exactly 10 hits: one more waits one interval.
    let d = store.hit(&shared, &qs, t(0)).await.unwrap();
    assert!(!d.allowed);
    assert_eq!(d.retry_after, Duration::from_secs(360));
    // Each group cell holds exactly its admitted hits.
    for (g, key) in groups.iter().enumerate() {
        let d = store.hit(key, &qg, t(0)).await.unwrap();
        if per_group[g] < 3 {
            assert!(d.allowed);
            assert_eq!(d.remaining, 3 - per_group[g] - 1, "group {g}");
        } else {
            assert!(!d.allowed);
            assert_eq!(d.retry_after, Duration::from_secs(1200), "group {g}");
        }
    }
}

/// `hit` and `hit_all` racing on one key share its budget exactly.
pub async fn concurrent_hit_and_hit_all_share_a_key<S: RateStore>(store: S) {
    let key = Arc::new(unique("mixed"));
    let q = Quota::per_hour(10);
    let mut tasks = Vec::new();
    for i in 0..64 {
        let (store, key) = (store.clone(), key.clone());
        tasks.push(tokio::spawn(async move {
            if i % 2 == 0 {
                store.hit(&key, &q, t(0)).await.unwrap().allowed
            } else {
                let own = unique("mixed-own");
                let d = store
                    .hit_all(&[limit(&own, &q), limit(&key, &q)], t(0))
                    .await
                    .unwrap();
                d[1].allowed
            }
        }));
    }
    let mut allowed = 0;
    for task in tasks {
        allowed += usize::from(task.await.unwrap());
    }
    assert_eq!(allowed, 10);
}

/// Puts `c` under `key` with no limits.
async fn put<S: ChallengeStore>(store: &S, key: &str, c: &Challenge, now: SystemTime) {
    let put = store.put_challenge(key, c, &[], now).await.unwrap();
    assert_eq!(put, Limited::Passed(()));
}

/// One attempt (of at most `max`) at the challenge under `key`, no limits.
async fn attempt<S: ChallengeStore>(store: &S, key: &str, max: u32, now: SystemTime) -> Attempt {
    match store.attempt_challenge(key, max, &[], now).await.unwrap() {
        Limited::Passed(attempt) => attempt,
        Limited::Refused(d) => panic!("no limits, yet refused: {d:?}"),
    }
}

fn session_of<'a>(sid: &'a str, hash: &'a [u8; 32]) -> NewSession<'a> {
    new_session(sid, hash, b"d", Duration::from_secs(3600))
}

/// Whether the family `sid` exists with `hash` current.
async fn session_exists<S: SessionStore>(store: &S, sid: &str, hash: &[u8; 32]) -> bool {
    let ttl = Duration::from_secs(3600);
    let r = rotation(sid, hash, &[0xEE; 32], Duration::ZERO, ttl);
    matches!(
        store.rotate_refresh(r, t(2)).await.unwrap(),
        Rotation::Rotated(_)
    )
}

pub async fn challenge_round_trip<S: ChallengeStore>(store: S) {
    let key = unique("ch");
    // Not the default channel of any identifier: the stored one comes back.
    let c = Challenge {
        channel: Channel::Whatsapp,
        ..challenge(1, 7, t(600))
    };
    put(&store, &key, &c, t(0)).await;
    match attempt(&store, &key, 5, t(1)).await {
        Attempt::Open {
            challenge,
            remaining,
        } => {
            assert_eq!(challenge, c);
            assert_eq!(remaining, 4);
        }
        other => panic!("expected open, got {other:?}"),
    }
    assert!(store.remove_challenge(&key, &c.id).await.unwrap());
    assert!(!store.remove_challenge(&key, &c.id).await.unwrap());
    assert_eq!(attempt(&store, &key, 5, t(2)).await, Attempt::Missing);
    for channel in [
        Channel::Sms,
        Channel::Whatsapp,
        Channel::Voice,
        Channel::Email,
    ] {
        let key = unique("ch");
        let c = Challenge {
            channel,
            ..challenge(2, 8, t(600))
        };
        put(&store, &key, &c, t(0)).await;
        match attempt(&store, &key, 5, t(1)).await {
            Attempt::Open { challenge, .. } => assert_eq!(challenge.channel, channel),
            other => panic!("expected open, got {other:?}"),
        }
    }
}

pub async fn missing_challenge<S: ChallengeStore>(store: S) {
    let key = unique("ch");
    assert_eq!(attempt(&store, &key, 5, t(0)).await, Attempt::Missing);
    assert!(!store.remove_challenge(&key, &[0; 16]).await.unwrap());
    let sid = unique("sid");
    let consumed = store
        .consume_challenge(&key, &[0; 16], session_of(&sid, &[1; 32]), t(0))
        .await
        .unwrap();
    assert!(!consumed);
    assert!(
        !session_exists(&store, &sid, &[1; 32]).await,
        "a lost consume leaves no session"
    );
}

pub async fn challenge_burns_after_max_attempts<S: ChallengeStore>(store: S) {
    let key = unique("ch");
    put(&store, &key, &challenge(1, 7, t(600)), t(0)).await;
    for expected in (0..5).rev() {
        match attempt(&store, &key, 5, t(1)).await {
            Attempt::Open { remaining, .. } => assert_eq!(remaining, expected),
            other => panic!("expected open, got {other:?}"),
        }
    }
    assert_eq!(attempt(&store, &key, 5, t(2)).await, Attempt::Missing);
    // Burned: not even its id consumes it any more.
    let sid = unique("sid");
    let consumed = store
        .consume_challenge(&key, &[1; 16], session_of(&sid, &[1; 32]), t(3))
        .await
        .unwrap();
    assert!(!consumed);
}

/// The session a consumed challenge starts is one of its subject's.
pub async fn consumed_challenge_session_is_indexed<S: ChallengeStore>(store: S) {
    let key = unique("ch");
    put(&store, &key, &challenge(1, 7, t(600)), t(0)).await;
    let (subject, sid) = (unique("subject"), unique("sid"));
    let new = NewSession {
        sid: &sid,
        refresh_hash: &[4; 32],
        data: b"d",
        subject: &subject,
        lifetime: for_ttl(Duration::from_secs(3600)),
    };
    assert!(
        store
            .consume_challenge(&key, &[1; 16], new, t(5))
            .await
            .unwrap()
    );
    let list = store.list_sessions(&subject, t(6)).await.unwrap();
    assert_eq!(
        list,
        [SessionInfo {
            sid: sid.clone(),
            created_at: t(5),
            last_used_at: t(5),
        }]
    );
    assert_eq!(
        store
            .revoke_subject(&subject, None, Duration::from_secs(60), t(7))
            .await
            .unwrap(),
        1
    );
    assert!(store.is_revoked(&sid).await.unwrap());
}

/// A match on the last attempt can still be consumed, once.
pub async fn last_attempt_can_be_consumed<S: ChallengeStore>(store: S) {
    let key = unique("ch");
    put(&store, &key, &challenge(1, 7, t(600)), t(0)).await;
    assert!(matches!(
        attempt(&store, &key, 1, t(1)).await,
        Attempt::Open { remaining: 0, .. }
    ));
    let sid = unique("sid");
    let won = store
        .consume_challenge(&key, &[1; 16], session_of(&sid, &[4; 32]), t(1))
        .await
        .unwrap();
    assert!(won);
    assert!(session_exists(&store, &sid, &[4; 32]).await);
    assert_eq!(attempt(&store, &key, 1, t(2)).await, Attempt::Missing);
}

pub async fn challenge_expires<S: ChallengeStore>(store: S) {
    let key = unique("ch");
    put(&store, &key, &challenge(1, 7, t(600)), t(0)).await;
    assert!(matches!(
        attempt(&store, &key, 5, t(599)).await,
        Attempt::Open { .. }
    ));
    assert_eq!(attempt(&store, &key, 5, t(600)).await, Attempt::Missing);
}

pub async fn new_challenge_voids_old<S: ChallengeStore>(store: S) {
    let key = unique("ch");
    let old = challenge(1, 7, t(600));
    let new = challenge(2, 8, t(700));
    put(&store, &key, &old, t(0)).await;
    attempt(&store, &key, 5, t(1)).await;
    put(&store, &key, &new, t(100)).await;
    // Rollback or a late consume of the old one must not touch the new one.
    assert!(!store.remove_challenge(&key, &old.id).await.unwrap());
    let sid = unique("sid");
    let consumed = store
        .consume_challenge(&key, &old.id, session_of(&sid, &[1; 32]), t(100))
        .await
        .unwrap();
    assert!(!consumed);
    assert!(!session_exists(&store, &sid, &[1; 32]).await);
    match attempt(&store, &key, 5, t(101)).await {
        Attempt::Open {
            challenge,
            remaining,
        } => {
            assert_eq!(challenge, new);
            assert_eq!(remaining, 4, "attempts restart with a new challenge");
        }
        other => panic!("expected open, got {other:?}"),
    }
}

pub async fn concurrent_removal_has_one_winner<S: ChallengeStore>(store: S) {
    let key = Arc::new(unique("ch"));
    let c = challenge(3, 9, t(600));
    put(&store, &key, &c, t(0)).await;
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let (store, key) = (store.clone(), key.clone());
        tasks.push(tokio::spawn(async move {
            store.remove_challenge(&key, &[3; 16]).await.unwrap()
        }));
    }
    let mut wins = 0;
    for task in tasks {
        wins += usize::from(task.await.unwrap());
    }
    assert_eq!(wins, 1);
}

pub async fn concurrent_attempts_never_exceed_max<S: ChallengeStore>(store: S) {
    let key = Arc::new(unique("ch"));
    put(&store, &key, &challenge(4, 1, t(600)), t(0)).await;
    let mut tasks = Vec::new();
    for _ in 0..100 {
        let (store, key) = (store.clone(), key.clone());
        tasks.push(tokio::spawn(
            async move { attempt(&store, &key, 5, t(1)).await },
        ));
    }
    let mut open = Vec::new();
    for task in tasks {
        if let Attempt::Open { remaining, .. } = task.await.unwrap() {
            open.push(remaining);
        }
    }
    open.sort_unstable();
    assert_eq!(open, [0, 1, 2, 3, 4]);
}

/// 64 concurrent consumes of one challenge, each with its own session:
/// exactly one wins, and only its session exists.
pub async fn concurrent_consume_has_one_winner<S: ChallengeStore>(store: S) {
    let key = Arc::new(unique("ch"));
    put(&store, &key, &challenge(5, 5, t(600)), t(0)).await;
    let mut tasks = Vec::new();
    for i in 0..64u8 {
        let (store, key) = (store.clone(), key.clone());
        tasks.push(tokio::spawn(async move {
            let sid = unique("sid");
            let won = store
                .consume_challenge(&key, &[5; 16], session_of(&sid, &[i; 32]), t(1))
                .await
                .unwrap();
            (won, sid, i)
        }));
    }
    let mut winners = 0;
    for task in tasks {
        let (won, sid, i) = task.await.unwrap();
        winners += usize::from(won);
        assert_eq!(
            session_exists(&store, &sid, &[i; 32]).await,
            won,
            "session {i}"
        );
    }
    assert_eq!(winners, 1);
    assert_eq!(attempt(&store, &key, 5, t(3)).await, Attempt::Missing);
}

/// Both gated steps count their limits, and refuse past them.
pub async fn gated_steps_count_their_limits<S: ChallengeStore>(store: S) {
    let (key, cell) = (unique("ch"), unique("gate"));
    let q = Quota::per_hour(2);
    let limits = [limit(&cell, &q)];
    let c = challenge(1, 7, t(600));
    let put = store.put_challenge(&key, &c, &limits, t(0)).await.unwrap();
    assert_eq!(put, Limited::Passed(()));
    let tried = store
        .attempt_challenge(&key, 5, &limits, t(1))
        .await
        .unwrap();
    assert!(matches!(
        tried,
        Limited::Passed(Attempt::Open { remaining: 4, .. })
    ));
    match store.put_challenge(&key, &c, &limits, t(2)).await.unwrap() {
        Limited::Refused(d) => {
            assert_eq!(d.len(), 1);
            assert!(!d[0].allowed);
            assert!(d[0].retry_after > Duration::ZERO);
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert!(matches!(
        store
            .attempt_challenge(&key, 5, &limits, t(3))
            .await
            .unwrap(),
        Limited::Refused(_)
    ));
}

/// A refused gated step counts none of its limits and leaves the challenge
/// as it was: a refused code request does not void the pending code, and a
/// refused verification uses no attempt.
pub async fn refused_gated_step_changes_nothing<S: ChallengeStore>(store: S) {
    let (key, open, full) = (unique("ch"), unique("open"), unique("full"));
    let (q2, q1) = (Quota::per_hour(2), Quota::per_hour(1));
    assert!(store.hit(&full, &q1, t(0)).await.unwrap().allowed);
    let limits = [limit(&open, &q2), limit(&full, &q1)];
    let old = challenge(1, 7, t(600));
    put(&store, &key, &old, t(0)).await;
    let refused = store
        .put_challenge(&key, &challenge(2, 8, t(700)), &limits, t(1))
        .await
        .unwrap();
    match refused {
        Limited::Refused(d) => {
            assert_eq!(d.len(), 2);
            assert!(d[0].allowed, "the open limit would have allowed");
            assert!(!d[1].allowed);
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    let refused = store
        .attempt_challenge(&key, 5, &limits, t(2))
        .await
        .unwrap();
    assert!(matches!(refused, Limited::Refused(_)));
    match attempt(&store, &key, 5, t(3)).await {
        Attempt::Open {
            challenge,
            remaining,
        } => {
            assert_eq!(challenge, old, "the refused put voided nothing");
            assert_eq!(remaining, 4, "the refused attempt was not counted");
        }
        other => panic!("expected open, got {other:?}"),
    }
    // Neither refusal counted the open limit: its two hits are left.
    assert!(store.hit(&open, &q2, t(4)).await.unwrap().allowed);
    assert!(store.hit(&open, &q2, t(4)).await.unwrap().allowed);
    assert!(!store.hit(&open, &q2, t(4)).await.unwrap().allowed);
}

/// 64 concurrent code requests and 64 concurrent verifications, each with a
/// shared limit of 10 and a wide global one: exactly 10 of each pass, and
/// the global counter counted exactly those.
pub async fn concurrent_gated_steps_never_over_admit<S: ChallengeStore>(store: S) {
    let (shared, global) = (Arc::new(unique("shared")), Arc::new(unique("global")));
    let key = Arc::new(unique("ch"));
    let (q10, wide) = (Quota::per_hour(10), Quota::per_hour(1000));
    let mut tasks = Vec::new();
    for i in 0..64u8 {
        let (store, shared, global, key) =
            (store.clone(), shared.clone(), global.clone(), key.clone());
        tasks.push(tokio::spawn(async move {
            let limits = [limit(&shared, &q10), limit(&global, &wide)];
            let c = challenge(i, i, t(600));
            let put = store.put_challenge(&key, &c, &limits, t(0)).await.unwrap();
            put.passed().is_some()
        }));
    }
    let mut passed = 0;
    for task in tasks {
        passed += usize::from(task.await.unwrap());
    }
    assert_eq!(passed, 10);
    let shared2 = Arc::new(unique("shared"));
    let mut tasks = Vec::new();
    for _ in 0..64 {
        let (store, shared2, global, key) =
            (store.clone(), shared2.clone(), global.clone(), key.clone());
        tasks.push(tokio::spawn(async move {
            let limits = [limit(&shared2, &q10), limit(&global, &wide)];
            match store
                .attempt_challenge(&key, 100, &limits, t(1))
                .await
                .unwrap()
            {
                Limited::Passed(Attempt::Open { remaining, .. }) => Some(remaining),
                Limited::Passed(other) => panic!("expected open, got {other:?}"),
                Limited::Refused(_) => None,
            }
        }));
    }
    let mut open = Vec::new();
    for task in tasks {
        open.extend(task.await.unwrap());
    }
    open.sort_unstable();
    assert_eq!(open, (90..100).collect::<Vec<u32>>());
    // 20 counted on the global limit: 1000 - 20 - this hit remain.
    let d = store.hit(&global, &wide, t(1)).await.unwrap();
    assert_eq!(d.remaining, 1000 - 21);
}

pub async fn refresh_rotates<S: SessionStore>(store: S) {
    let sid = unique("sid");
    let ttl = Duration::from_secs(3600);
    let grace = Duration::from_secs(5);
    store
        .create_session(new_session(&sid, &[1; 32], b"data", ttl), t(0))
        .await
        .unwrap();
    assert_eq!(
        store
            .rotate_refresh(rotation(&sid, &[1; 32], &[2; 32], grace, ttl), t(10))
            .await
            .unwrap(),
        Rotation::Rotated(b"data".to_vec())
    );
    assert_eq!(
        store
            .rotate_refresh(rotation(&sid, &[2; 32], &[3; 32], grace, ttl), t(20))
            .await
            .unwrap(),
        Rotation::Rotated(b"data".to_vec())
    );
    // Unknown token of a live family: refused, family intact.
    assert_eq!(
        store
            .rotate_refresh(rotation(&sid, &[9; 32], &[10; 32], grace, ttl), t(21))
            .await
            .unwrap(),
        Rotation::Invalid
    );
    assert_eq!(
        store
            .rotate_refresh(rotation(&sid, &[3; 32], &[4; 32], grace, ttl), t(22))
            .await
            .unwrap(),
        Rotation::Rotated(b"data".to_vec())
    );
}

pub async fn refresh_grace_returns_same_successor<S: SessionStore>(store: S) {
    let sid = unique("sid");
    let ttl = Duration::from_secs(3600);
    let grace = Duration::from_secs(5);
    store
        .create_session(new_session(&sid, &[1; 32], b"d", ttl), t(0))
        .await
        .unwrap();
    assert!(matches!(
        store
            .rotate_refresh(rotation(&sid, &[1; 32], &[2; 32], grace, ttl), t(10))
            .await
            .unwrap(),
        Rotation::Rotated(_)
    ));
    assert_eq!(
        store
            .rotate_refresh(rotation(&sid, &[1; 32], &[2; 32], grace, ttl), t(13))
            .await
            .unwrap(),
        Rotation::Grace(b"d".to_vec())
    );
    // The successor still works.
    assert!(matches!(
        store
            .rotate_refresh(rotation(&sid, &[2; 32], &[3; 32], grace, ttl), t(14))
            .await
            .unwrap(),
        Rotation::Rotated(_)
    ));
}

pub async fn refresh_reuse_revokes_family<S: SessionStore>(store: S) {
    let sid = unique("sid");
    let ttl = Duration::from_secs(3600);
    let grace = Duration::from_secs(5);
    store
        .create_session(new_session(&sid, &[1; 32], b"d", ttl), t(0))
        .await
        .unwrap();
    store
        .rotate_refresh(rotation(&sid, &[1; 32], &[2; 32], grace, ttl), t(10))
        .await
        .unwrap();
    assert_eq!(
        store
            .rotate_refresh(rotation(&sid, &[1; 32], &[2; 32], grace, ttl), t(100))
            .await
            .unwrap(),
        Rotation::Reused
    );
    assert!(store.is_revoked(&sid).await.unwrap());
    // The current token of the family is dead too.
    assert_eq!(
        store
            .rotate_refresh(rotation(&sid, &[2; 32], &[3; 32], grace, ttl), t(101))
            .await
            .unwrap(),
        Rotation::Invalid
    );
}

pub async fn older_spent_token_is_reuse<S: SessionStore>(store: S) {
    let sid = unique("sid");
    let ttl = Duration::from_secs(3600);
    let grace = Duration::from_secs(5);
    store
        .create_session(new_session(&sid, &[1; 32], b"d", ttl), t(0))
        .await
        .unwrap();
    for (i, step) in (1u8..5).enumerate() {
        let r = store
            .rotate_refresh(
                rotation(&sid, &[step; 32], &[step + 1; 32], grace, ttl),
                t(10 * (i as u64 + 1)),
            )
            .await
            .unwrap();
        assert!(matches!(r, Rotation::Rotated(_)));
    }
    assert_eq!(
        store
            .rotate_refresh(rotation(&sid, &[1; 32], &[77; 32], grace, ttl), t(100))
            .await
            .unwrap(),
        Rotation::Reused
    );
}

pub async fn concurrent_rotation_has_one_winner<S: SessionStore>(store: S) {
    let sid = Arc::new(unique("sid"));
    let ttl = Duration::from_secs(3600);
    store
        .create_session(new_session(&sid, &[1; 32], b"d", ttl), t(0))
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let (store, sid) = (store.clone(), sid.clone());
        tasks.push(tokio::spawn(async move {
            store
                .rotate_refresh(
                    rotation(&sid, &[1; 32], &[2; 32], Duration::from_secs(5), ttl),
                    t(1),
                )
                .await
                .unwrap()
        }));
    }
    let (mut rotated, mut grace) = (0, 0);
    for task in tasks {
        match task.await.unwrap() {
            Rotation::Rotated(_) => rotated += 1,
            Rotation::Grace(_) => grace += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!((rotated, grace), (1, 49));
}

pub async fn revoke_kills_session<S: SessionStore>(store: S) {
    let sid = unique("sid");
    let ttl = Duration::from_secs(3600);
    store
        .create_session(new_session(&sid, &[1; 32], b"d", ttl), t(0))
        .await
        .unwrap();
    assert!(!store.is_revoked(&sid).await.unwrap());
    store.revoke(&sid, ttl).await.unwrap();
    assert!(store.is_revoked(&sid).await.unwrap());
    assert_eq!(
        store
            .rotate_refresh(
                rotation(&sid, &[1; 32], &[2; 32], Duration::from_secs(5), ttl),
                t(1)
            )
            .await
            .unwrap(),
        Rotation::Invalid
    );
    let jti = unique("jti");
    assert!(!store.is_revoked(&jti).await.unwrap());
    store.revoke(&jti, Duration::from_secs(60)).await.unwrap();
    assert!(store.is_revoked(&jti).await.unwrap());
}

/// `is_any_revoked` agrees with `is_revoked`: none of the ids, the first,
/// the second, both, a later one of several (ids of different cluster
/// slots), and no ids at all.
pub async fn is_any_revoked_agrees_with_is_revoked<S: SessionStore>(store: S) {
    let ttl = Duration::from_secs(60);
    let (sid, jti) = (unique("sid"), unique("jti"));
    let (a, b) = (sid.as_str(), jti.as_str());
    assert!(!store.is_any_revoked(&[]).await.unwrap());
    assert!(!store.is_any_revoked(&[a, b]).await.unwrap());
    assert!(!store.is_any_revoked(&[a]).await.unwrap());
    store.revoke(a, ttl).await.unwrap();
    assert!(
        store.is_any_revoked(&[a, b]).await.unwrap(),
        "first revoked"
    );
    assert!(store.is_any_revoked(&[a]).await.unwrap());
    assert!(!store.is_any_revoked(&[b]).await.unwrap());
    assert!(!store.is_any_revoked(&[]).await.unwrap());

    let (sid, jti) = (unique("sid"), unique("jti"));
    let (a, b) = (sid.as_str(), jti.as_str());
    store.revoke(b, ttl).await.unwrap();
    assert!(
        store.is_any_revoked(&[a, b]).await.unwrap(),
        "second revoked"
    );
    assert!(store.is_any_revoked(&[b, a]).await.unwrap());
    assert!(!store.is_any_revoked(&[a, a]).await.unwrap());
    store.revoke(a, ttl).await.unwrap();
    assert!(store.is_any_revoked(&[a, b]).await.unwrap(), "both revoked");

    let many: Vec<String> = (0..8).map(|i| unique(&format!("id{i}"))).collect();
    let ids: Vec<&str> = many.iter().map(String::as_str).collect();
    assert!(!store.is_any_revoked(&ids).await.unwrap());
    store.revoke(ids[6], ttl).await.unwrap();
    assert!(
        store.is_any_revoked(&ids).await.unwrap(),
        "a later one revoked"
    );
    for id in &ids {
        assert_eq!(
            store.is_any_revoked(&[id]).await.unwrap(),
            store.is_revoked(id).await.unwrap(),
            "{id}"
        );
    }
}

pub async fn unknown_session_is_invalid<S: SessionStore>(store: S) {
    let sid = unique("sid");
    assert_eq!(
        store
            .rotate_refresh(
                rotation(
                    &sid,
                    &[1; 32],
                    &[2; 32],
                    Duration::from_secs(5),
                    Duration::from_secs(60)
                ),
                t(1)
            )
            .await
            .unwrap(),
        Rotation::Invalid
    );
}

const GRACE: Duration = Duration::from_secs(5);

fn lifetime(idle_secs: u64, absolute_secs: u64) -> SessionLifetime {
    SessionLifetime {
        idle: Duration::from_secs(idle_secs),
        absolute: Duration::from_secs(absolute_secs),
    }
}

/// A session of the hour-long default lifetime (a day absolute).
const HOURS: SessionLifetime = SessionLifetime {
    idle: Duration::from_secs(3600),
    absolute: Duration::from_secs(86_400),
};

/// Starts session `sid` of `subject` with first refresh token `hash`.
async fn start<S: SessionStore>(
    store: &S,
    subject: &str,
    sid: &str,
    hash: &[u8; 32],
    lifetime: SessionLifetime,
    now: SystemTime,
) {
    let new = NewSession {
        sid,
        refresh_hash: hash,
        data: b"d",
        subject,
        lifetime,
    };
    store.create_session(new, now).await.unwrap();
}

/// Presents `presented` of `sid` with successor `successor`.
async fn rotate<S: SessionStore>(
    store: &S,
    sid: &str,
    presented: &[u8; 32],
    successor: &[u8; 32],
    lifetime: SessionLifetime,
    now: SystemTime,
) -> Rotation {
    let r = RefreshRotation {
        sid,
        presented,
        successor,
        grace: GRACE,
        lifetime,
    };
    store.rotate_refresh(r, now).await.unwrap()
}

/// The ids `list_sessions` gives for `subject` at `now`, in its order.
async fn listed<S: SessionStore>(store: &S, subject: &str, now: SystemTime) -> Vec<String> {
    let list = store.list_sessions(subject, now).await.unwrap();
    list.into_iter().map(|s| s.sid).collect()
}

/// A listing shows every live session of its subject (and no other's),
/// oldest first, with its creation and last use; a rotation moves the last
/// use.
pub async fn sessions_listed_with_their_times<S: SessionStore>(store: S) {
    let (subject, other) = (unique("subject"), unique("subject"));
    let (a, b, c, d) = (unique("sid"), unique("sid"), unique("sid"), unique("sid"));
    start(&store, &subject, &a, &[1; 32], HOURS, t(0)).await;
    start(&store, &subject, &b, &[2; 32], HOURS, t(10)).await;
    start(&store, &subject, &c, &[3; 32], HOURS, t(5)).await;
    start(&store, &other, &d, &[4; 32], HOURS, t(1)).await;
    let info = |sid: &str, created: u64, used: u64| SessionInfo {
        sid: sid.to_owned(),
        created_at: t(created),
        last_used_at: t(used),
    };
    assert_eq!(
        store.list_sessions(&subject, t(20)).await.unwrap(),
        [info(&a, 0, 0), info(&c, 5, 5), info(&b, 10, 10)]
    );
    assert!(matches!(
        rotate(&store, &b, &[2; 32], &[12; 32], HOURS, t(30)).await,
        Rotation::Rotated(_)
    ));
    assert_eq!(
        store.list_sessions(&subject, t(31)).await.unwrap(),
        [info(&a, 0, 0), info(&c, 5, 5), info(&b, 10, 30)]
    );
    assert_eq!(listed(&store, &other, t(31)).await, [d]);
    assert!(listed(&store, &unique("nobody"), t(31)).await.is_empty());
}

/// The idle timeout, by the `now` passed in: a rotation a second before it
/// keeps the session alive for another timeout; at the timeout it is gone
/// from the listing and its token rotates no more.
pub async fn idle_timeout_ends_a_session<S: SessionStore>(store: S) {
    let subject = unique("subject");
    let life = lifetime(100, 1000);
    let (kept, idle) = (unique("sid"), unique("sid"));
    start(&store, &subject, &kept, &[1; 32], life, t(0)).await;
    start(&store, &subject, &idle, &[5; 32], life, t(1)).await;
    assert!(matches!(
        rotate(&store, &kept, &[1; 32], &[2; 32], life, t(99)).await,
        Rotation::Rotated(_)
    ));
    assert_eq!(
        listed(&store, &subject, t(100)).await,
        [kept.as_str(), idle.as_str()]
    );
    assert_eq!(listed(&store, &subject, t(101)).await, [kept.as_str()]);
    assert_eq!(
        rotate(&store, &idle, &[5; 32], &[6; 32], life, t(101)).await,
        Rotation::Invalid
    );
    assert_eq!(listed(&store, &subject, t(198)).await, [kept.as_str()]);
    assert!(listed(&store, &subject, t(199)).await.is_empty());
    assert_eq!(
        rotate(&store, &kept, &[2; 32], &[3; 32], life, t(199)).await,
        Rotation::Invalid
    );
}

/// The absolute lifetime: rotations keep a session alive only up to its
/// creation + absolute, whatever the idle timeout or a later, longer
/// absolute lifetime would allow; a shorter one ends it sooner.
pub async fn absolute_lifetime_ends_a_session<S: SessionStore>(store: S) {
    let subject = unique("subject");
    let life = lifetime(100, 250);
    let sid = unique("sid");
    start(&store, &subject, &sid, &[1; 32], life, t(0)).await;
    for (i, at) in [90u64, 180, 240].into_iter().enumerate() {
        let (cur, next) = ([i as u8 + 1; 32], [i as u8 + 2; 32]);
        // The last one asks for a far longer absolute lifetime: no effect.
        let asked = if at == 240 {
            lifetime(100, 10_000)
        } else {
            life
        };
        assert!(
            matches!(
                rotate(&store, &sid, &cur, &next, asked, t(at)).await,
                Rotation::Rotated(_)
            ),
            "rotation at {at}"
        );
    }
    assert_eq!(listed(&store, &subject, t(249)).await, [sid.as_str()]);
    assert!(listed(&store, &subject, t(250)).await.is_empty());
    assert_eq!(
        rotate(&store, &sid, &[4; 32], &[5; 32], life, t(250)).await,
        Rotation::Invalid
    );

    // A lowered absolute lifetime applies to a session already running.
    let (subject, shortened) = (unique("subject"), unique("sid"));
    start(&store, &subject, &shortened, &[1; 32], life, t(0)).await;
    assert!(matches!(
        rotate(
            &store,
            &shortened,
            &[1; 32],
            &[2; 32],
            lifetime(100, 120),
            t(60)
        )
        .await,
        Rotation::Rotated(_)
    ));
    assert_eq!(listed(&store, &subject, t(119)).await, [shortened.as_str()]);
    assert!(listed(&store, &subject, t(120)).await.is_empty());
    assert_eq!(
        rotate(&store, &shortened, &[2; 32], &[3; 32], life, t(120)).await,
        Rotation::Invalid
    );
}

/// `revoke_session` revokes a live session of its own subject only; for an
/// unknown id, another subject's session or a dead one it answers `false`
/// and changes nothing.
pub async fn revoke_session_only_of_its_subject<S: SessionStore>(store: S) {
    let (subject, other) = (unique("subject"), unique("subject"));
    let (a, b, theirs) = (unique("sid"), unique("sid"), unique("sid"));
    let ttl = Duration::from_secs(900);
    start(&store, &subject, &a, &[1; 32], HOURS, t(0)).await;
    start(&store, &subject, &b, &[2; 32], HOURS, t(1)).await;
    start(&store, &other, &theirs, &[3; 32], HOURS, t(2)).await;

    assert!(
        !store
            .revoke_session(&subject, &theirs, ttl, t(10))
            .await
            .unwrap()
    );
    assert!(!store.is_revoked(&theirs).await.unwrap());
    assert_eq!(listed(&store, &other, t(10)).await, [theirs.as_str()]);
    let unknown = unique("sid");
    assert!(
        !store
            .revoke_session(&subject, &unknown, ttl, t(10))
            .await
            .unwrap()
    );
    assert!(!store.is_revoked(&unknown).await.unwrap());
    assert_eq!(
        listed(&store, &subject, t(10)).await,
        [a.as_str(), b.as_str()]
    );

    assert!(
        store
            .revoke_session(&subject, &a, ttl, t(10))
            .await
            .unwrap()
    );
    assert!(store.is_revoked(&a).await.unwrap());
    assert_eq!(listed(&store, &subject, t(11)).await, [b.as_str()]);
    assert_eq!(
        rotate(&store, &a, &[1; 32], &[9; 32], HOURS, t(11)).await,
        Rotation::Invalid
    );
    assert!(
        !store
            .revoke_session(&subject, &a, ttl, t(12))
            .await
            .unwrap()
    );
    // The others still work.
    assert!(matches!(
        rotate(&store, &b, &[2; 32], &[12; 32], HOURS, t(12)).await,
        Rotation::Rotated(_)
    ));
    assert!(matches!(
        rotate(&store, &theirs, &[3; 32], &[13; 32], HOURS, t(12)).await,
        Rotation::Rotated(_)
    ));

    // A session past its idle timeout is dead: nothing to revoke.
    let dead = unique("sid");
    start(&store, &subject, &dead, &[4; 32], lifetime(10, 100), t(0)).await;
    assert!(
        !store
            .revoke_session(&subject, &dead, ttl, t(10))
            .await
            .unwrap()
    );
    assert!(!store.is_revoked(&dead).await.unwrap());
}

/// `revoke_subject` revokes every session of the subject but the one kept
/// (and no other subject's), counts the live ones, and is idempotent; the
/// revoked ids are revoked for access tokens too — an access token minted
/// just before carries its `sid`, and fails.
pub async fn revoke_subject_with_and_without_keep<S: SessionStore>(store: S) {
    let (subject, other) = (unique("subject"), unique("subject"));
    let (a, b, c, theirs) = (unique("sid"), unique("sid"), unique("sid"), unique("sid"));
    let ttl = Duration::from_secs(900);
    for (i, sid) in [&a, &b, &c].into_iter().enumerate() {
        start(
            &store,
            &subject,
            sid,
            &[i as u8 + 1; 32],
            HOURS,
            t(i as u64),
        )
        .await;
    }
    start(&store, &other, &theirs, &[9; 32], HOURS, t(0)).await;
    let jti = unique("jti");
    assert!(!store.is_any_revoked(&[&a, &jti]).await.unwrap());

    assert_eq!(
        store
            .revoke_subject(&subject, Some(&b), ttl, t(10))
            .await
            .unwrap(),
        2
    );
    assert!(store.is_any_revoked(&[&a, &jti]).await.unwrap());
    assert!(store.is_revoked(&c).await.unwrap());
    assert!(!store.is_revoked(&b).await.unwrap());
    assert_eq!(listed(&store, &subject, t(11)).await, [b.as_str()]);
    assert_eq!(
        rotate(&store, &a, &[1; 32], &[11; 32], HOURS, t(11)).await,
        Rotation::Invalid
    );
    assert_eq!(
        rotate(&store, &c, &[3; 32], &[13; 32], HOURS, t(11)).await,
        Rotation::Invalid
    );
    assert_eq!(
        store
            .revoke_subject(&subject, Some(&b), ttl, t(12))
            .await
            .unwrap(),
        0,
        "idempotent"
    );

    assert_eq!(
        store
            .revoke_subject(&subject, None, ttl, t(13))
            .await
            .unwrap(),
        1
    );
    assert!(store.is_revoked(&b).await.unwrap());
    assert!(listed(&store, &subject, t(14)).await.is_empty());
    assert_eq!(
        rotate(&store, &b, &[2; 32], &[12; 32], HOURS, t(14)).await,
        Rotation::Invalid
    );
    assert_eq!(
        store
            .revoke_subject(&subject, None, ttl, t(15))
            .await
            .unwrap(),
        0
    );
    // Another subject's session is untouched.
    assert!(!store.is_revoked(&theirs).await.unwrap());
    assert_eq!(listed(&store, &other, t(15)).await, [theirs.as_str()]);

    // Only live sessions count.
    let third = unique("subject");
    let (dead, live) = (unique("sid"), unique("sid"));
    start(&store, &third, &dead, &[1; 32], lifetime(10, 100), t(0)).await;
    start(&store, &third, &live, &[2; 32], HOURS, t(0)).await;
    assert_eq!(
        store
            .revoke_subject(&third, None, ttl, t(20))
            .await
            .unwrap(),
        1
    );
    assert!(store.is_revoked(&live).await.unwrap());
}

/// Sessions created while `revoke_subject` runs: every one that had been
/// created before it started is revoked, and none is left live outside the
/// index — whatever `list_sessions` does not show is dead, so a second
/// `revoke_subject` reaches everything still alive.
pub async fn concurrent_creates_during_revoke_subject<S: SessionStore>(store: S) {
    let subject = Arc::new(unique("subject"));
    let ttl = Duration::from_secs(900);
    let early: Vec<String> = (0..10).map(|_| unique("sid")).collect();
    for (i, sid) in early.iter().enumerate() {
        start(&store, &subject, sid, &[i as u8; 32], HOURS, t(0)).await;
    }
    let barrier = Arc::new(tokio::sync::Barrier::new(31));
    let mut creates = Vec::new();
    for i in 0..30u8 {
        let (store, subject, barrier) = (store.clone(), subject.clone(), barrier.clone());
        creates.push(tokio::spawn(async move {
            let sid = unique("sid");
            barrier.wait().await;
            start(&store, &subject, &sid, &[100 + i; 32], HOURS, t(1)).await;
            (sid, 100 + i)
        }));
    }
    let revoke = {
        let (store, subject, barrier) = (store.clone(), subject.clone(), barrier.clone());
        tokio::spawn(async move {
            barrier.wait().await;
            store
                .revoke_subject(&subject, None, ttl, t(1))
                .await
                .unwrap()
        })
    };
    let mut late = Vec::new();
    for task in creates {
        late.push(task.await.unwrap());
    }
    let revoked = revoke.await.unwrap();
    assert!(revoked >= early.len(), "{revoked} revoked");
    for sid in &early {
        assert!(store.is_revoked(sid).await.unwrap(), "{sid} survived");
    }
    let live = listed(&store, &subject, t(2)).await;
    let mut rotated = 0;
    for (sid, i) in &late {
        let r = rotate(&store, sid, &[*i; 32], &[0xEE; 32], HOURS, t(2)).await;
        if matches!(r, Rotation::Rotated(_)) {
            assert!(live.contains(sid), "{sid} is live but not indexed");
            rotated += 1;
        } else {
            assert_eq!(r, Rotation::Invalid);
        }
    }
    // A session indexed but not yet written when the revocation ran is
    // neither counted nor live: it was revoked before it began.
    assert!(rotated + revoked <= early.len() + late.len());
    assert_eq!(
        store
            .revoke_subject(&subject, None, ttl, t(3))
            .await
            .unwrap(),
        rotated
    );
    for (sid, _) in &late {
        assert_eq!(
            rotate(&store, sid, &[0xEE; 32], &[0xEF; 32], HOURS, t(4)).await,
            Rotation::Invalid
        );
    }
}

/// A family id revoked before its family is written (by a `revoke_subject`
/// that met its index entry first) gets no family: the create that follows
/// starts nothing live.
pub async fn a_revoked_id_starts_no_session<S: SessionStore>(store: S) {
    let (subject, sid) = (unique("subject"), unique("sid"));
    store.revoke(&sid, Duration::from_secs(60)).await.unwrap();
    start(&store, &subject, &sid, &[1; 32], HOURS, t(0)).await;
    assert!(store.is_revoked(&sid).await.unwrap());
    assert_eq!(
        rotate(&store, &sid, &[1; 32], &[2; 32], HOURS, t(1)).await,
        Rotation::Invalid
    );
    assert!(listed(&store, &subject, t(1)).await.is_empty());
    assert_eq!(
        store
            .revoke_subject(&subject, None, HOURS.idle, t(2))
            .await
            .unwrap(),
        0
    );
}

/// A subject holds at most `MAX_SESSIONS_PER_SUBJECT` sessions: a create
/// prunes dead ones to make room, refuses (`Full`, nothing started) when
/// all are live, and works again once some end.
pub async fn a_subject_holds_a_bounded_number_of_sessions<S: SessionStore>(store: S) {
    let subject = unique("subject");
    let short = lifetime(10, 100);
    for i in 0..MAX_SESSIONS_PER_SUBJECT {
        let life = if i < 2 { short } else { HOURS };
        start(
            &store,
            &subject,
            &format!("{subject}-{i}"),
            &[1; 32],
            life,
            t(0),
        )
        .await;
    }
    // Two are past their idle timeout: their room is taken back.
    for i in 0..2 {
        start(
            &store,
            &subject,
            &format!("{subject}-new{i}"),
            &[2; 32],
            HOURS,
            t(20),
        )
        .await;
    }
    let refused = unique("sid");
    let new = NewSession {
        sid: &refused,
        refresh_hash: &[3; 32],
        data: b"d",
        subject: &subject,
        lifetime: HOURS,
    };
    let err = store.create_session(new, t(21)).await.unwrap_err();
    assert!(matches!(err, StoreError::Full(_)), "{err:?}");
    assert_eq!(
        rotate(&store, &refused, &[3; 32], &[4; 32], HOURS, t(22)).await,
        Rotation::Invalid,
        "nothing started"
    );
    let live = listed(&store, &subject, t(22)).await;
    assert_eq!(live.len(), MAX_SESSIONS_PER_SUBJECT);
    assert!(!live.contains(&refused));
    assert!(
        store
            .revoke_session(&subject, &live[0], HOURS.idle, t(23))
            .await
            .unwrap()
    );
    store.create_session(new, t(24)).await.unwrap();
    assert_eq!(
        store
            .revoke_subject(&subject, None, HOURS.idle, t(25))
            .await
            .unwrap(),
        MAX_SESSIONS_PER_SUBJECT
    );
}

pub async fn api_keys_crud<S: ApiKeyStore>(store: S) {
    let id = unique("key");
    assert_eq!(store.get_api_key(&id).await.unwrap(), None);
    store.put_api_key(&id, b"record-1", None).await.unwrap();
    assert_eq!(
        store.get_api_key(&id).await.unwrap().as_deref(),
        Some(&b"record-1"[..])
    );
    store
        .put_api_key(&id, b"record-2", Some(Duration::from_secs(3600)))
        .await
        .unwrap();
    assert_eq!(
        store.get_api_key(&id).await.unwrap().as_deref(),
        Some(&b"record-2"[..])
    );
    let listed = store.list_api_keys().await.unwrap();
    assert!(
        listed.iter().any(|(k, v)| k == &id && v == b"record-2"),
        "{listed:?}"
    );
    assert!(store.delete_api_key(&id).await.unwrap());
    assert!(!store.delete_api_key(&id).await.unwrap());
    assert_eq!(store.get_api_key(&id).await.unwrap(), None);
    assert!(
        !store
            .list_api_keys()
            .await
            .unwrap()
            .iter()
            .any(|(k, _)| k == &id)
    );
}

/// A change of `field` in `group` by `delta`, kept an hour.
pub fn add<'a>(group: &'a str, field: &'a str, delta: i64) -> CounterAdd<'a> {
    CounterAdd {
        group,
        field,
        delta,
        ttl: Duration::from_secs(3600),
    }
}

/// `field` of `group` must stay below `max`.
pub fn guard<'a>(group: &'a str, field: &'a str, max: i64) -> CounterGuard<'a> {
    CounterGuard { group, field, max }
}

/// The counters of one group, as `(field, value)`.
fn fields(pairs: &[(&str, i64)]) -> Vec<(String, i64)> {
    pairs.iter().map(|(f, v)| ((*f).to_owned(), *v)).collect()
}

/// The counters of `groups` of `tenant` at `now`.
async fn read<S: TenantStore>(
    store: &S,
    tenant: &str,
    groups: &[&str],
    now: SystemTime,
) -> Vec<Vec<(String, i64)>> {
    store.counters(tenant, groups, now).await.unwrap()
}

fn record(version: u64, data: &[u8]) -> TenantRecord {
    TenantRecord {
        version,
        data: data.to_vec(),
    }
}

/// A new tenant is at version 1; a second create changes nothing.
pub async fn tenant_create_get<S: TenantStore>(store: S) {
    let id = unique("tenant");
    assert_eq!(store.get_tenant(&id).await.unwrap(), None);
    assert!(store.create_tenant(&id, b"{\"name\":\"a\"}").await.unwrap());
    assert_eq!(
        store.get_tenant(&id).await.unwrap(),
        Some(record(1, b"{\"name\":\"a\"}"))
    );
    assert!(!store.create_tenant(&id, b"other").await.unwrap());
    assert_eq!(
        store.get_tenant(&id).await.unwrap(),
        Some(record(1, b"{\"name\":\"a\"}")),
        "a second create changed the record"
    );
    // Empty data is a record too.
    let empty = unique("tenant");
    assert!(store.create_tenant(&empty, b"").await.unwrap());
    assert_eq!(
        store.get_tenant(&empty).await.unwrap(),
        Some(record(1, b""))
    );
}

/// An update with the current version replaces the record and bumps the
/// version; a stale or future version, or a missing tenant, changes nothing.
pub async fn tenant_update_checks_the_version<S: TenantStore>(store: S) {
    let id = unique("tenant");
    assert!(store.create_tenant(&id, b"v1").await.unwrap());
    assert!(store.update_tenant(&id, 1, b"v2").await.unwrap());
    assert_eq!(store.get_tenant(&id).await.unwrap(), Some(record(2, b"v2")));
    for wrong in [0, 1, 3, u64::MAX - 1] {
        assert!(!store.update_tenant(&id, wrong, b"lost").await.unwrap());
        assert_eq!(
            store.get_tenant(&id).await.unwrap(),
            Some(record(2, b"v2")),
            "version {wrong}"
        );
    }
    assert!(store.update_tenant(&id, 2, b"v3").await.unwrap());
    assert_eq!(store.get_tenant(&id).await.unwrap(), Some(record(3, b"v3")));
    let missing = unique("tenant");
    assert!(!store.update_tenant(&missing, 1, b"x").await.unwrap());
    assert_eq!(store.get_tenant(&missing).await.unwrap(), None);
}

/// 64 concurrent updates from the same version: exactly one wins.
pub async fn concurrent_updates_have_one_winner<S: TenantStore>(store: S) {
    let id = Arc::new(unique("tenant"));
    assert!(store.create_tenant(&id, b"v1").await.unwrap());
    let mut tasks = Vec::new();
    for i in 0..64u8 {
        let (store, id) = (store.clone(), id.clone());
        tasks.push(tokio::spawn(async move {
            (i, store.update_tenant(&id, 1, &[i]).await.unwrap())
        }));
    }
    let mut winners = Vec::new();
    for task in tasks {
        let (i, won) = task.await.unwrap();
        if won {
            winners.push(i);
        }
    }
    assert_eq!(winners.len(), 1, "{winners:?}");
    assert_eq!(
        store.get_tenant(&id).await.unwrap(),
        Some(record(2, &[winners[0]]))
    );
}

/// Every tenant is listed with its record, ordered by id.
pub async fn tenants_listed_by_id<S: TenantStore>(store: S) {
    let base = unique("tenant");
    // Created out of order.
    let ids = [
        format!("{base}-b"),
        format!("{base}-c"),
        format!("{base}-a"),
    ];
    for id in &ids {
        assert!(store.create_tenant(id, id.as_bytes()).await.unwrap());
    }
    assert!(store.update_tenant(&ids[1], 1, b"updated").await.unwrap());
    let listed = store.list_tenants().await.unwrap();
    assert!(
        listed.windows(2).all(|w| w[0].0 < w[1].0),
        "not ordered by id"
    );
    let ours: Vec<_> = listed
        .into_iter()
        .filter(|(id, _)| id.starts_with(&base))
        .collect();
    assert_eq!(
        ours,
        [
            (ids[2].clone(), record(1, ids[2].as_bytes())),
            (ids[0].clone(), record(1, ids[0].as_bytes())),
            (ids[1].clone(), record(2, b"updated")),
        ]
    );
}

/// Names outside the bounds: a write fails with `Invalid` and changes
/// nothing, a read finds nothing.
pub async fn invalid_tenant_ids_are_refused<S: TenantStore>(store: S) {
    let long = "t".repeat(65);
    for id in ["", "a b", "a{b", "a}b", long.as_str()] {
        let err = store.create_tenant(id, b"x").await.unwrap_err();
        assert!(matches!(err, StoreError::Invalid(_)), "{id:?}: {err:?}");
        assert_eq!(store.get_tenant(id).await.unwrap(), None, "{id:?}");
        assert!(!store.update_tenant(id, 1, b"x").await.unwrap(), "{id:?}");
        let err = store
            .add_counters(id, &[add("g", "f", 1)], t(0))
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Invalid(_)), "{id:?}: {err:?}");
        assert_eq!(read(&store, id, &["g"], t(0)).await, [vec![]], "{id:?}");
    }
    assert!(
        !store
            .list_tenants()
            .await
            .unwrap()
            .iter()
            .any(|(id, _)| id.is_empty() || id.contains([' ', '{', '}']))
    );
}

/// Several groups at once, negative deltas, a field named twice; a missing
/// group reads empty and fields come sorted.
pub async fn counters_add_and_read<S: TenantStore>(store: S) {
    let tenant = unique("tenant");
    assert_eq!(
        read(&store, &tenant, &["d:1", "m:1"], t(0)).await,
        [vec![], vec![]]
    );
    store
        .add_counters(
            &tenant,
            &[
                add("d:1", "otp_requested", 3),
                add("m:1", "otp_requested", 3),
                add("d:1", "messages_sent", 2),
                add("d:1", "otp_requested", 1),
            ],
            t(0),
        )
        .await
        .unwrap();
    store
        .add_counters(
            &tenant,
            &[add("d:1", "messages_sent", -1), add("d:1", "a_first", -5)],
            t(1),
        )
        .await
        .unwrap();
    assert_eq!(
        read(&store, &tenant, &["m:1", "missing", "d:1"], t(2)).await,
        [
            fields(&[("otp_requested", 3)]),
            vec![],
            fields(&[("a_first", -5), ("messages_sent", 1), ("otp_requested", 4)]),
        ]
    );
    // A group may be asked for twice; no groups is no answer; no adds is
    // no change.
    assert_eq!(
        read(&store, &tenant, &["m:1", "m:1"], t(2)).await,
        [
            fields(&[("otp_requested", 3)]),
            fields(&[("otp_requested", 3)])
        ]
    );
    assert!(read(&store, &tenant, &[], t(2)).await.is_empty());
    store.add_counters(&tenant, &[], t(2)).await.unwrap();
    assert_eq!(
        read(&store, &tenant, &["m:1"], t(2)).await,
        [fields(&[("otp_requested", 3)])]
    );
}

/// A group expires `ttl` after its change on the caller's clock; a later
/// change with a longer ttl extends it, a shorter one never shortens it,
/// and a change after expiry starts it afresh.
pub async fn counter_groups_expire<S: TenantStore>(store: S) {
    let tenant = unique("tenant");
    let ttl = |group, delta, secs| CounterAdd {
        ttl: Duration::from_secs(secs),
        ..add(group, "n", delta)
    };
    store
        .add_counters(&tenant, &[ttl("short", 1, 60), ttl("long", 1, 600)], t(0))
        .await
        .unwrap();
    assert_eq!(
        read(&store, &tenant, &["short", "long"], t(59)).await,
        [fields(&[("n", 1)]), fields(&[("n", 1)])]
    );
    assert_eq!(
        read(&store, &tenant, &["short", "long"], t(60)).await,
        [vec![], fields(&[("n", 1)])],
        "expired at its deadline"
    );
    // After expiry, a change starts the group afresh; a longer ttl then
    // moves its deadline (t(160) → t(710)).
    store
        .add_counters(&tenant, &[ttl("short", 5, 60)], t(100))
        .await
        .unwrap();
    assert_eq!(
        read(&store, &tenant, &["short"], t(100)).await,
        [fields(&[("n", 5)])]
    );
    store
        .add_counters(&tenant, &[ttl("short", 1, 600)], t(110))
        .await
        .unwrap();
    // A shorter ttl keeps the later deadline (t(600), not t(210)).
    store
        .add_counters(&tenant, &[ttl("long", 1, 10)], t(200))
        .await
        .unwrap();
    assert_eq!(
        read(&store, &tenant, &["short", "long"], t(599)).await,
        [fields(&[("n", 6)]), fields(&[("n", 2)])]
    );
    assert_eq!(
        read(&store, &tenant, &["short", "long"], t(600)).await,
        [fields(&[("n", 6)]), vec![]]
    );
    assert_eq!(
        read(&store, &tenant, &["short"], t(709)).await,
        [fields(&[("n", 6)])]
    );
    assert_eq!(read(&store, &tenant, &["short"], t(710)).await, [vec![]]);
}

/// The same group name under two tenants: two sets of counters.
pub async fn counters_are_per_tenant<S: TenantStore>(store: S) {
    let (a, b) = (unique("tenant"), unique("tenant"));
    store
        .add_counters(&a, &[add("d:1", "n", 7)], t(0))
        .await
        .unwrap();
    assert_eq!(read(&store, &b, &["d:1"], t(1)).await, [vec![]]);
    let g = guard("d:1", "n", 1);
    assert_eq!(
        store
            .add_counters_within(&b, &[g], &[add("d:1", "n", 1)], t(1))
            .await
            .unwrap(),
        Guarded::Added(vec![1]),
        "a's counter guarded b's"
    );
    assert_eq!(
        read(&store, &a, &["d:1"], t(2)).await,
        [fields(&[("n", 7)])]
    );
    assert_eq!(
        read(&store, &b, &["d:1"], t(2)).await,
        [fields(&[("n", 1)])]
    );
}

/// Guards that hold: the changes are made and each guard's value comes
/// back as after them, including a guard on a field no change names.
pub async fn guarded_add_within_limits<S: TenantStore>(store: S) {
    let tenant = unique("tenant");
    store
        .add_counters(
            &tenant,
            &[add("d:1", "sent", 2), add("m:1", "sent", 9)],
            t(0),
        )
        .await
        .unwrap();
    let guards = [
        guard("d:1", "sent", 10),
        guard("m:1", "sent", 100),
        guard("d:1", "unchanged", 1),
        guard("never", "n", 1),
    ];
    let adds = [
        add("d:1", "sent", 1),
        add("m:1", "sent", 1),
        add("d:1", "other", 4),
    ];
    assert_eq!(
        store
            .add_counters_within(&tenant, &guards, &adds, t(1))
            .await
            .unwrap(),
        Guarded::Added(vec![3, 10, 0, 0])
    );
    assert_eq!(
        read(&store, &tenant, &["d:1", "m:1", "never"], t(2)).await,
        [
            fields(&[("other", 4), ("sent", 3)]),
            fields(&[("sent", 10)]),
            vec![]
        ]
    );
    // Guards alone change nothing and report the values; no guards and no
    // changes is an empty success.
    assert_eq!(
        store
            .add_counters_within(&tenant, &guards[..2], &[], t(2))
            .await
            .unwrap(),
        Guarded::Added(vec![3, 10])
    );
    assert_eq!(
        store
            .add_counters_within(&tenant, &[], &[], t(2))
            .await
            .unwrap(),
        Guarded::Added(vec![])
    );
    // A guard holds below its max, not at it.
    let at_max = [guard("d:1", "sent", 4)];
    assert_eq!(
        store
            .add_counters_within(&tenant, &at_max, &adds[..1], t(3))
            .await
            .unwrap(),
        Guarded::Added(vec![4])
    );
    assert_eq!(
        store
            .add_counters_within(&tenant, &at_max, &adds[..1], t(3))
            .await
            .unwrap(),
        Guarded::Refused(vec![4])
    );
}

/// One failing guard refuses the call: the values come back as they are,
/// and no change is made — neither to the guarded counters nor to any
/// other group or field.
pub async fn refused_guarded_add_changes_nothing<S: TenantStore>(store: S) {
    let tenant = unique("tenant");
    store
        .add_counters(
            &tenant,
            &[add("d:1", "sent", 5), add("m:1", "sent", 5)],
            t(0),
        )
        .await
        .unwrap();
    let guards = [
        guard("d:1", "sent", 100),
        guard("m:1", "sent", 5),
        guard("d:1", "missing", 1),
    ];
    let adds = [
        add("d:1", "sent", 1),
        add("m:1", "sent", 1),
        add("d:1", "new_field", 1),
        add("new_group", "n", 1),
    ];
    for s in 1..4 {
        assert_eq!(
            store
                .add_counters_within(&tenant, &guards, &adds, t(s))
                .await
                .unwrap(),
            Guarded::Refused(vec![5, 5, 0])
        );
    }
    assert_eq!(
        read(&store, &tenant, &["d:1", "m:1", "new_group"], t(5)).await,
        [fields(&[("sent", 5)]), fields(&[("sent", 5)]), vec![]]
    );
    // A max of 0 refuses even a counter that was never counted.
    assert_eq!(
        store
            .add_counters_within(&tenant, &[guard("x", "y", 0)], &adds, t(5))
            .await
            .unwrap(),
        Guarded::Refused(vec![0])
    );
    assert_eq!(read(&store, &tenant, &["new_group"], t(5)).await, [vec![]]);
}

/// Input outside the bounds — a long, empty or spaced name, a delta or a
/// result past ±(2^53 − 1), a zero ttl — fails with `Invalid` and changes
/// nothing, in any position of the call.
pub async fn invalid_counter_changes_change_nothing<S: TenantStore>(store: S) {
    let tenant = unique("tenant");
    const MAX: i64 = (1 << 53) - 1;
    store
        .add_counters(
            &tenant,
            &[add("g", "near", MAX - 1), add("g", "n", 1)],
            t(0),
        )
        .await
        .unwrap();
    let long = "f".repeat(65);
    let zero_ttl = CounterAdd {
        ttl: Duration::ZERO,
        ..add("g", "n", 1)
    };
    let bad: [&[CounterAdd<'_>]; 7] = [
        &[add("g", "n", 1), add("g", &long, 1)],
        &[add("g", "n", 1), add("", "n", 1)],
        &[add("g", "n", 1), add("g", "a b", 1)],
        &[add("g", "n", 1), add("g", "n", MAX + 1)],
        &[add("g", "n", 1), zero_ttl],
        // In range alone, past it together.
        &[add("g", "n", 1), add("g", "near", 1), add("g", "near", 1)],
        &[add("g", "n", 1), add("g", "n", -MAX), add("g", "n", -MAX)],
    ];
    for (i, adds) in bad.iter().enumerate() {
        let err = store.add_counters(&tenant, adds, t(1)).await.unwrap_err();
        assert!(matches!(err, StoreError::Invalid(_)), "{i}: {err:?}");
        let err = store
            .add_counters_within(&tenant, &[guard("g", "n", 100)], adds, t(1))
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Invalid(_)), "{i}: {err:?}");
    }
    let err = store
        .add_counters_within(&tenant, &[guard("g", &long, 1)], &[], t(1))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Invalid(_)), "{err:?}");
    assert_eq!(
        read(&store, &tenant, &["g"], t(2)).await,
        [fields(&[("n", 1), ("near", MAX - 1)])]
    );
    // The bounds themselves are in range.
    store
        .add_counters(&tenant, &[add("g", "near", 1), add("g", "low", -MAX)], t(3))
        .await
        .unwrap();
    let guards = [guard("g", "near", i64::MAX), guard("g", "low", i64::MIN)];
    assert_eq!(
        store
            .add_counters_within(&tenant, &guards[..1], &[], t(3))
            .await
            .unwrap(),
        Guarded::Added(vec![MAX])
    );
    assert_eq!(
        store
            .add_counters_within(&tenant, &guards[1..], &[], t(3))
            .await
            .unwrap(),
        Guarded::Refused(vec![-MAX])
    );
}

/// 64 concurrent guarded adds under a max of 10: exactly 10 are added, the
/// counter ends at 10, and an unguarded field each added call changes ends
/// at 10 too — a refused call changed nothing.
pub async fn concurrent_guarded_adds_never_pass_max<S: TenantStore>(store: S) {
    let tenant = Arc::new(unique("tenant"));
    let mut tasks = Vec::new();
    for _ in 0..64 {
        let (store, tenant) = (store.clone(), tenant.clone());
        tasks.push(tokio::spawn(async move {
            store
                .add_counters_within(
                    &tenant,
                    &[guard("d:1", "quota", 10)],
                    &[
                        add("d:1", "quota", 1),
                        add("d:1", "sent", 1),
                        add("m:1", "sent", 1),
                    ],
                    t(0),
                )
                .await
                .unwrap()
        }));
    }
    let mut added = Vec::new();
    for task in tasks {
        match task.await.unwrap() {
            Guarded::Added(v) => added.push(v[0]),
            Guarded::Refused(v) => assert_eq!(v, [10], "refused below the max"),
        }
    }
    added.sort_unstable();
    assert_eq!(added, (1..=10).collect::<Vec<i64>>());
    assert_eq!(
        read(&store, &tenant, &["d:1", "m:1"], t(1)).await,
        [
            fields(&[("quota", 10), ("sent", 10)]),
            fields(&[("sent", 10)])
        ]
    );
}

/// 64 concurrent unguarded adds over two groups: exact sums.
pub async fn concurrent_adds_sum_exactly<S: TenantStore>(store: S) {
    let tenant = Arc::new(unique("tenant"));
    let mut tasks = Vec::new();
    for i in 0..64i64 {
        let (store, tenant) = (store.clone(), tenant.clone());
        tasks.push(tokio::spawn(async move {
            store
                .add_counters(
                    &tenant,
                    &[
                        add("d:1", "n", i),
                        add("m:1", "n", 1),
                        add("d:1", "back", -1),
                    ],
                    t(0),
                )
                .await
                .unwrap();
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(
        read(&store, &tenant, &["d:1", "m:1"], t(1)).await,
        [
            fields(&[("back", -64), ("n", 63 * 64 / 2)]),
            fields(&[("n", 64)])
        ]
    );
}

/// A pending signup is taken once; a put replaces it; a zero ttl removes.
pub async fn pending_taken_once<S: TenantStore>(store: S) {
    let key = unique("pending");
    let ttl = Duration::from_secs(600);
    assert_eq!(store.take_pending(&key, t(0)).await.unwrap(), None);
    store.put_pending(&key, b"first", ttl, t(0)).await.unwrap();
    store.put_pending(&key, b"second", ttl, t(1)).await.unwrap();
    assert_eq!(
        store.take_pending(&key, t(2)).await.unwrap().as_deref(),
        Some(&b"second"[..])
    );
    assert_eq!(store.take_pending(&key, t(3)).await.unwrap(), None);
    store.put_pending(&key, b"", ttl, t(4)).await.unwrap();
    assert_eq!(
        store.take_pending(&key, t(5)).await.unwrap().as_deref(),
        Some(&b""[..])
    );
    store.put_pending(&key, b"x", ttl, t(6)).await.unwrap();
    store
        .put_pending(&key, b"y", Duration::ZERO, t(7))
        .await
        .unwrap();
    assert_eq!(store.take_pending(&key, t(8)).await.unwrap(), None);
}

/// A pending signup is gone `ttl` after its put, on the caller's clock.
pub async fn pending_expires<S: TenantStore>(store: S) {
    let (a, b) = (unique("pending"), unique("pending"));
    let ttl = Duration::from_secs(600);
    store.put_pending(&a, b"a", ttl, t(0)).await.unwrap();
    store.put_pending(&b, b"b", ttl, t(0)).await.unwrap();
    assert_eq!(
        store.take_pending(&a, t(599)).await.unwrap().as_deref(),
        Some(&b"a"[..])
    );
    assert_eq!(store.take_pending(&b, t(600)).await.unwrap(), None);
    // Expired is gone: no later (or earlier) clock brings it back.
    assert_eq!(store.take_pending(&b, t(0)).await.unwrap(), None);
}

/// 64 concurrent takes of one pending signup: exactly one gets it.
pub async fn concurrent_takes_have_one_winner<S: TenantStore>(store: S) {
    let key = Arc::new(unique("pending"));
    store
        .put_pending(&key, b"signup", Duration::from_secs(600), t(0))
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for _ in 0..64 {
        let (store, key) = (store.clone(), key.clone());
        tasks.push(tokio::spawn(async move {
            store.take_pending(&key, t(1)).await.unwrap()
        }));
    }
    let mut taken = Vec::new();
    for task in tasks {
        taken.extend(task.await.unwrap());
    }
    assert_eq!(taken, [b"signup".to_vec()]);
}

pub async fn ping_answers<S: Ping>(store: S) {
    store.ping().await.unwrap();
}

/// One `#[tokio::test]` per named suite fn, each with a fresh store from
/// `$make` (an expression evaluating to a future of `Option<store>`; `None`
/// skips the test, e.g. when no redis-server is installed).
#[macro_export]
macro_rules! conformance_tests {
    ($make:expr; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let Some(store) = $make.await else { return };
                $crate::support::conformance::$name(store).await;
            }
        )*
    };
}

/// The [`RateStore`] suite.
#[macro_export]
macro_rules! rate_store_conformance {
    ($make:expr) => {
        $crate::conformance_tests!($make;
            hit_counts_and_refuses, refused_hit_changes_nothing, hit_refills,
            concurrent_hits_never_exceed, hit_all_counts_every_limit,
            refused_hit_all_changes_no_counter, hit_all_counts_a_repeated_key_twice,
            concurrent_hit_all_never_over_admits, concurrent_hit_and_hit_all_share_a_key);
    };
}

/// The [`ChallengeStore`] suite.
#[macro_export]
macro_rules! challenge_store_conformance {
    ($make:expr) => {
        $crate::conformance_tests!($make;
            challenge_round_trip, missing_challenge, consumed_challenge_session_is_indexed,
            challenge_burns_after_max_attempts, last_attempt_can_be_consumed, challenge_expires,
            new_challenge_voids_old, concurrent_removal_has_one_winner,
            concurrent_attempts_never_exceed_max, concurrent_consume_has_one_winner,
            gated_steps_count_their_limits, refused_gated_step_changes_nothing,
            concurrent_gated_steps_never_over_admit);
    };
}

/// The [`SessionStore`] suite.
#[macro_export]
macro_rules! session_store_conformance {
    ($make:expr) => {
        $crate::conformance_tests!($make;
            refresh_rotates, refresh_grace_returns_same_successor, refresh_reuse_revokes_family,
            older_spent_token_is_reuse, concurrent_rotation_has_one_winner, revoke_kills_session,
            is_any_revoked_agrees_with_is_revoked, unknown_session_is_invalid,
            sessions_listed_with_their_times, idle_timeout_ends_a_session,
            absolute_lifetime_ends_a_session, revoke_session_only_of_its_subject,
            revoke_subject_with_and_without_keep, concurrent_creates_during_revoke_subject,
            a_revoked_id_starts_no_session, a_subject_holds_a_bounded_number_of_sessions);
    };
}

/// The [`ApiKeyStore`] suite.
#[macro_export]
macro_rules! api_key_store_conformance {
    ($make:expr) => {
        $crate::conformance_tests!($make; api_keys_crud);
    };
}

/// The [`TenantStore`] suite.
#[macro_export]
macro_rules! tenant_store_conformance {
    ($make:expr) => {
        $crate::conformance_tests!($make;
            tenant_create_get, tenant_update_checks_the_version,
            concurrent_updates_have_one_winner, tenants_listed_by_id,
            invalid_tenant_ids_are_refused, counters_add_and_read, counter_groups_expire,
            counters_are_per_tenant, guarded_add_within_limits,
            refused_guarded_add_changes_nothing, invalid_counter_changes_change_nothing,
            concurrent_guarded_adds_never_pass_max, concurrent_adds_sum_exactly,
            pending_taken_once, pending_expires, concurrent_takes_have_one_winner);
    };
}

/// The [`Ping`] suite.
#[macro_export]
macro_rules! ping_conformance {
    ($make:expr) => {
        $crate::conformance_tests!($make; ping_answers);
    };
}

/// Every suite, for a backend of every concern (a `Store`).
#[macro_export]
macro_rules! store_conformance {
    ($make:expr) => {
        $crate::rate_store_conformance!($make);
        $crate::challenge_store_conformance!($make);
        $crate::session_store_conformance!($make);
        $crate::api_key_store_conformance!($make);
        $crate::tenant_store_conformance!($make);
        $crate::ping_conformance!($make);
    };
}
