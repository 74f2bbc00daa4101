//! `Retry`: retries retryable failures with exponential backoff and jitter.

use std::future::Future;
use std::time::Duration;

use rand::Rng;
use tokio::time::Instant;

use super::{Delivery, Message, Notifier, NotifyError};

/// How [`Retry`] retries.
///
/// Defaults: at most 3 attempts, first backoff 250 ms doubling up to 2 s,
/// full jitter, and 10 s in total — a user is waiting for the answer.
///
/// * The wait before retry *n* (n = 1, 2, …) is drawn uniformly from
///   `0 ..= min(max_backoff, initial_backoff · 2ⁿ⁻¹)` ("full jitter"), or is
///   exactly that bound with [`jitter(false)`](Self::jitter).
/// * An error that carries [`retry_after`](NotifyError::retry_after) (e.g.
///   from a provider's `429` + `Retry-After`) waits exactly that long instead.
/// * A retry whose wait would end past the total budget is not made: the
///   last error is returned at once. Attempts themselves are cut at the end
///   of the budget (a retryable error with provider code `retry_budget`), so
///   `max_elapsed` bounds the whole call.
///
/// For tests, [`RetryPolicy::immediate`] retries without waiting; with
/// `#[tokio::test(start_paused = true)]` real backoffs take no wall time.
///
/// The same type sets how `events::WebhookSink` retries an event
/// (`WebhookSinkBuilder::retry`, feature `http-notifier`; with other
/// defaults there: nobody waits for an event).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    max_attempts: u32,
    initial_backoff: Duration,
    max_backoff: Duration,
    max_elapsed: Duration,
    jitter: bool,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 3,
            initial_backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(2),
            max_elapsed: Duration::from_secs(10),
            jitter: true,
        }
    }
}

impl RetryPolicy {
    /// The defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// Up to `max_attempts` attempts with no wait between them (tests).
    pub fn immediate(max_attempts: u32) -> Self {
        Self::default()
            .max_attempts(max_attempts)
            .backoff(Duration::ZERO, Duration::ZERO)
    }

    /// Attempts in all, the first included (at least 1).
    #[must_use]
    pub fn max_attempts(mut self, n: u32) -> Self {
        self.max_attempts = n.max(1);
        self
    }

    /// First backoff and the cap it doubles up to.
    #[must_use]
    pub fn backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.initial_backoff = initial;
        self.max_backoff = max.max(initial);
        self
    }

    /// Total time for all attempts and waits. `Duration::MAX` (or any
    /// budget too long to count from now) means no bound.
    #[must_use]
    pub fn max_elapsed(mut self, total: Duration) -> Self {
        self.max_elapsed = total;
        self
    }

    /// Full jitter on (default) or off (waits are exactly the bound).
    #[must_use]
    pub fn jitter(mut self, on: bool) -> Self {
        self.jitter = on;
        self
    }

    /// The longest computed wait between attempts.
    #[cfg_attr(not(feature = "http-notifier"), allow(dead_code))]
    pub(crate) fn max_backoff(&self) -> Duration {
        self.max_backoff
    }

    /// The wait before retry number `retry` (1-based) when the error gave no
    /// `retry_after`.
    fn backoff_for(&self, retry: u32) -> Duration {
        let shift = retry.saturating_sub(1).min(31);
        let bound = self
            .initial_backoff
            .saturating_mul(1u32 << shift)
            .min(self.max_backoff);
        if self.jitter && !bound.is_zero() {
            let nanos = u64::try_from(bound.as_nanos()).unwrap_or(u64::MAX);
            Duration::from_nanos(rand::rng().random_range(0..=nanos))
        } else {
            bound
        }
    }

    /// The retry loop of [`Retry`] and of the event webhook sink: runs
    /// `attempt` until it succeeds, fails in a way `retry_after` answers
    /// `None` for (not worth retrying), the attempts are used up, or the
    /// next wait would end past the budget; answers the last error and the
    /// number of attempts made.
    ///
    /// `retry_after` answers `Some(wait)` for a failure worth retrying —
    /// `Some(Some(d))` waits exactly `d`, `Some(None)` the backoff. An
    /// attempt still running when the budget ends is dropped and counts as
    /// the error `cut(attempt)`. `on_retry(attempt, wait, &error)` runs
    /// before each wait (logs, metrics).
    pub(crate) async fn run<T, E, Fut>(
        &self,
        mut attempt: impl FnMut() -> Fut,
        retry_after: impl Fn(&E) -> Option<Option<Duration>>,
        cut: impl Fn(u32) -> E,
        mut on_retry: impl FnMut(u32, Duration, &E),
    ) -> Result<T, (E, u32)>
    where
        Fut: Future<Output = Result<T, E>>,
    {
        let deadline = Instant::now().checked_add(self.max_elapsed);
        let mut attempts = 0u32;
        loop {
            attempts += 1;
            let result = match deadline {
                Some(deadline) => tokio::time::timeout_at(deadline, attempt())
                    .await
                    .unwrap_or_else(|_| Err(cut(attempts))),
                None => attempt().await,
            };
            let err = match result {
                Ok(done) => return Ok(done),
                Err(err) => err,
            };
            let Some(after) = retry_after(&err) else {
                return Err((err, attempts));
            };
            if attempts >= self.max_attempts {
                return Err((err, attempts));
            }
            let wait = after.unwrap_or_else(|| self.backoff_for(attempts));
            let past_deadline = |deadline| {
                Instant::now()
                    .checked_add(wait)
                    .is_none_or(|end| end >= deadline)
            };
            if deadline.is_some_and(past_deadline) {
                tracing::debug!(
                    attempt = attempts,
                    wait_ms = wait.as_millis() as u64,
                    "no time left to retry"
                );
                return Err((err, attempts));
            }
            on_retry(attempts, wait, &err);
            if !wait.is_zero() {
                tokio::time::sleep(wait).await;
            }
        }
    }
}

/// Retries the inner notifier's [`Retryable`](super::NotifyErrorKind::Retryable)
/// failures per a [`RetryPolicy`]; every other kind returns at once.
///
/// [`MaybeDelivered`](super::NotifyErrorKind::MaybeDelivered) failures —
/// the request may have reached the provider and its answer was lost — are
/// never retried: Twilio has no idempotency key, and a retry could deliver
/// the code again ([the rule](super#which-failures-are-retried)).
#[derive(Clone, Debug)]
pub struct Retry<N> {
    inner: N,
    policy: RetryPolicy,
}

impl<N> Retry<N> {
    /// Wraps `inner`.
    pub fn new(inner: N, policy: RetryPolicy) -> Self {
        Self { inner, policy }
    }

    /// The policy.
    pub fn policy(&self) -> &RetryPolicy {
        &self.policy
    }

    /// The inner notifier.
    pub fn get_ref(&self) -> &N {
        &self.inner
    }

    /// The inner notifier, consuming the wrapper.
    pub fn into_inner(self) -> N {
        self.inner
    }
}

impl<N: Notifier> Notifier for Retry<N> {
    async fn send(&self, msg: &Message) -> Result<Delivery, NotifyError> {
        let budget = self.policy.max_elapsed;
        self.policy
            .run(
                || self.inner.send(msg),
                |err: &NotifyError| err.is_retryable().then(|| err.retry_after()),
                |attempt| {
                    NotifyError::retryable(format!(
                        "retry budget of {} ms used up during attempt {attempt}",
                        budget.as_millis()
                    ))
                    .with_provider_code("retry_budget")
                },
                |attempt, wait, err| {
                    tracing::debug!(attempt, wait_ms = wait.as_millis() as u64, error = %err, "notify: retrying");
                    metrics::counter!("tower_otp_notify_retries_total", "channel" => msg.channel.as_str())
                        .increment(1);
                },
            )
            .await
            .map_err(|(err, _)| err)
    }

    fn ready(&self) -> impl Future<Output = Option<Result<(), NotifyError>>> + Send {
        self.inner.ready()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;
    use crate::notify::MemoryNotifier;

    use crate::test_helpers::sms as msg;

    /// Fails retryably `failures` times, then succeeds; records when each
    /// attempt started (tokio time, so paused tests are exact).
    #[derive(Debug, Default)]
    struct Flaky {
        failures: u32,
        calls: AtomicU32,
        starts: Mutex<Vec<Instant>>,
        retry_after: Option<Duration>,
        attempt_takes: Duration,
    }

    impl Notifier for Flaky {
        async fn send(&self, _: &Message) -> Result<Delivery, NotifyError> {
            self.starts.lock().unwrap().push(Instant::now());
            let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
            if !self.attempt_takes.is_zero() {
                tokio::time::sleep(self.attempt_takes).await;
            }
            if n <= self.failures {
                let mut e = NotifyError::retryable(format!("failure {n}"));
                if let Some(after) = self.retry_after {
                    e = e.with_retry_after(after);
                }
                Err(e)
            } else {
                Ok(Delivery::with_id(format!("ok-{n}")))
            }
        }
    }

    #[tokio::test]
    async fn retries_until_success() {
        let flaky = Flaky {
            failures: 2,
            ..Flaky::default()
        };
        let r = Retry::new(flaky, RetryPolicy::immediate(3));
        let d = r.send(&msg()).await.unwrap();
        assert_eq!(d.provider_id.as_deref(), Some("ok-3"));
        assert_eq!(r.get_ref().calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn attempts_are_bounded() {
        let inner = MemoryNotifier::new();
        inner.fail_with(Some(NotifyError::retryable("down")));
        let err = Retry::new(inner.clone(), RetryPolicy::immediate(4))
            .send(&msg())
            .await
            .unwrap_err();
        assert!(err.is_retryable());
        assert_eq!(inner.attempts(), 4);
    }

    #[tokio::test]
    async fn permanent_is_not_retried() {
        let inner = MemoryNotifier::new();
        inner.fail_with(Some(NotifyError::permanent("invalid number")));
        let err = Retry::new(inner.clone(), RetryPolicy::immediate(5))
            .send(&msg())
            .await
            .unwrap_err();
        assert!(!err.is_retryable());
        assert_eq!(inner.attempts(), 1);
    }

    #[tokio::test]
    async fn maybe_delivered_is_not_retried() {
        let inner = MemoryNotifier::new();
        inner.fail_with(Some(NotifyError::maybe_delivered("connection reset")));
        let err = Retry::new(inner.clone(), RetryPolicy::immediate(5))
            .send(&msg())
            .await
            .unwrap_err();
        assert!(err.may_have_been_delivered());
        assert_eq!(inner.attempts(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn backoff_doubles_without_jitter() {
        let flaky = Flaky {
            failures: 3,
            ..Flaky::default()
        };
        let policy = RetryPolicy::new()
            .max_attempts(4)
            .backoff(Duration::from_millis(100), Duration::from_millis(250))
            .jitter(false);
        let r = Retry::new(flaky, policy);
        r.send(&msg()).await.unwrap();
        let starts = r.get_ref().starts.lock().unwrap().clone();
        let gaps: Vec<_> = starts.windows(2).map(|w| w[1] - w[0]).collect();
        assert_eq!(
            gaps,
            [
                Duration::from_millis(100),
                Duration::from_millis(200),
                Duration::from_millis(250)
            ]
        );
    }

    #[test]
    fn jittered_backoff_stays_within_bound() {
        let policy = RetryPolicy::new().backoff(Duration::from_millis(100), Duration::from_secs(1));
        for retry in 1..=6 {
            let bound = Duration::from_millis(100 * (1 << (retry - 1))).min(Duration::from_secs(1));
            for _ in 0..50 {
                assert!(policy.backoff_for(retry) <= bound);
            }
        }
        // Huge retry numbers do not overflow.
        assert!(policy.backoff_for(u32::MAX) <= Duration::from_secs(1));
    }

    #[tokio::test(start_paused = true)]
    async fn retry_after_is_honoured() {
        let flaky = Flaky {
            failures: 1,
            retry_after: Some(Duration::from_secs(3)),
            ..Flaky::default()
        };
        let r = Retry::new(
            flaky,
            RetryPolicy::new().backoff(Duration::from_millis(1), Duration::from_millis(1)),
        );
        r.send(&msg()).await.unwrap();
        let starts = r.get_ref().starts.lock().unwrap().clone();
        assert_eq!(starts[1] - starts[0], Duration::from_secs(3));
    }

    #[tokio::test(start_paused = true)]
    async fn retry_after_beyond_budget_gives_up_at_once() {
        let flaky = Flaky {
            failures: 5,
            retry_after: Some(Duration::from_secs(60)),
            ..Flaky::default()
        };
        let r = Retry::new(
            flaky,
            RetryPolicy::new()
                .max_attempts(5)
                .max_elapsed(Duration::from_secs(10)),
        );
        let started = Instant::now();
        let err = r.send(&msg()).await.unwrap_err();
        assert_eq!(err.retry_after(), Some(Duration::from_secs(60)));
        assert_eq!(r.get_ref().calls.load(Ordering::SeqCst), 1);
        assert_eq!(Instant::now(), started); // no waiting at all
    }

    #[tokio::test(start_paused = true)]
    async fn total_time_bounds_attempts() {
        // Each attempt takes 4 s and fails; budget 10 s, 10 attempts allowed:
        // attempts start at 0, 4 and 8 s; the third is cut at 10 s.
        let flaky = Flaky {
            failures: 100,
            attempt_takes: Duration::from_secs(4),
            ..Flaky::default()
        };
        let r = Retry::new(
            flaky,
            RetryPolicy::immediate(10).max_elapsed(Duration::from_secs(10)),
        );
        let started = Instant::now();
        let err = r.send(&msg()).await.unwrap_err();
        assert_eq!(err.provider_code(), Some("retry_budget"));
        assert_eq!(r.get_ref().calls.load(Ordering::SeqCst), 3);
        assert_eq!(Instant::now() - started, Duration::from_secs(10));
    }

    /// `Instant::now() + Duration::MAX` used to panic at send time.
    #[tokio::test(start_paused = true)]
    async fn an_unbounded_budget_neither_panics_nor_cuts() {
        let flaky = Flaky {
            failures: 2,
            attempt_takes: Duration::from_secs(3600),
            ..Flaky::default()
        };
        let r = Retry::new(flaky, RetryPolicy::immediate(3).max_elapsed(Duration::MAX));
        let d = r.send(&msg()).await.unwrap();
        assert_eq!(d.provider_id.as_deref(), Some("ok-3"));
        assert_eq!(r.get_ref().calls.load(Ordering::SeqCst), 3);
    }

    /// A backoff too long to count from now is past any budget: given up,
    /// where `Instant::now() + wait` used to panic.
    #[tokio::test(start_paused = true)]
    async fn an_endless_backoff_gives_up_within_the_budget() {
        let flaky = Flaky {
            failures: 1,
            ..Flaky::default()
        };
        let policy = RetryPolicy::new()
            .backoff(Duration::MAX, Duration::MAX)
            .jitter(false);
        let r = Retry::new(flaky, policy);
        let err = r.send(&msg()).await.unwrap_err();
        assert_eq!(err.to_string(), "retryable delivery failure: failure 1");
        assert_eq!(r.get_ref().calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn total_time_bounds_waits() {
        // Backoff 3 s, 6 s, …; budget 8 s: after the first retry (at 3 s)
        // the next wait would end at 9 s, so it stops after 2 attempts.
        let flaky = Flaky {
            failures: 100,
            ..Flaky::default()
        };
        let policy = RetryPolicy::new()
            .max_attempts(10)
            .backoff(Duration::from_secs(3), Duration::from_secs(60))
            .jitter(false)
            .max_elapsed(Duration::from_secs(8));
        let r = Retry::new(flaky, policy);
        let err = r.send(&msg()).await.unwrap_err();
        assert_eq!(err.to_string(), "retryable delivery failure: failure 2");
        assert_eq!(r.get_ref().calls.load(Ordering::SeqCst), 2);
    }
}
