//! Store-level stress: many concurrent callers on one challenge.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tower_otp::store::{Attempt, Challenge, ChallengeStore, Limited};

use super::conformance::unique;

fn t(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_800_000_000 + secs)
}

fn challenge(id: u8) -> Challenge {
    Challenge {
        id: [id; 16],
        mac: [id; 32],
        expires_at_us: t(600).duration_since(UNIX_EPOCH).unwrap().as_micros() as u64,
        channel: tower_otp::notify::Channel::Sms,
    }
}

/// 200 concurrent attempts with max 5: exactly 5 are `Open`, with
/// remaining 4, 3, 2, 1, 0.
pub async fn attempts_open_exactly_max<S: ChallengeStore>(store: S) {
    let key = Arc::new(unique("stress"));
    store
        .put_challenge(&key, &challenge(5), &[], t(0))
        .await
        .unwrap();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..200 {
        let (store, key) = (store.clone(), key.clone());
        tasks.spawn(async move { store.attempt_challenge(&key, 5, &[], t(1)).await.unwrap() });
    }
    let mut open = Vec::new();
    while let Some(result) = tasks.join_next().await {
        if let Limited::Passed(Attempt::Open { remaining, .. }) = result.unwrap() {
            open.push(remaining);
        }
    }
    open.sort_unstable();
    assert_eq!(open, [0, 1, 2, 3, 4]);
}

/// 200 concurrent removals of one challenge: exactly one wins.
pub async fn removals_have_one_winner<S: ChallengeStore>(store: S) {
    let key = Arc::new(unique("stress"));
    store
        .put_challenge(&key, &challenge(6), &[], t(0))
        .await
        .unwrap();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..200 {
        let (store, key) = (store.clone(), key.clone());
        tasks.spawn(async move { store.remove_challenge(&key, &[6; 16]).await.unwrap() });
    }
    let mut wins = 0;
    while let Some(result) = tasks.join_next().await {
        wins += usize::from(result.unwrap());
    }
    assert_eq!(wins, 1);
}
