//! `Timeout`: bounds how long a notifier may take.

use std::time::Duration;

use super::{Delivery, Message, Notifier, NotifyError};

/// Fails with a [`MaybeDelivered`](super::NotifyErrorKind::MaybeDelivered)
/// error (provider code `timeout`) when the inner notifier has not answered
/// within the limit; the inner send is dropped (cancelled) at that point.
///
/// The cut may come after the provider got the request, so the error is not
/// retried by [`Retry`](super::Retry) nor passed on by
/// [`Fallback`](super::Fallback) (see
/// [the rule](super#which-failures-are-retried)). Failures the inner
/// notifier reports before the limit keep their own kind: put `Timeout`
/// inside `Retry` to bound each attempt, outside to bound the whole. The
/// HTTP providers' own `request_timeout` (a builder setting of `TwilioSms`
/// and `HttpNotifier`) knows whether the request went out and answers
/// `Retryable` when it did not.
#[derive(Clone, Debug)]
pub struct Timeout<N> {
    inner: N,
    after: Duration,
}

impl<N> Timeout<N> {
    /// Wraps `inner` with a limit of `after`.
    pub fn new(inner: N, after: Duration) -> Self {
        Self { inner, after }
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

impl<N: Notifier> Notifier for Timeout<N> {
    async fn send(&self, msg: &Message) -> Result<Delivery, NotifyError> {
        match tokio::time::timeout(self.after, self.inner.send(msg)).await {
            Ok(result) => result,
            Err(_) => Err(NotifyError::maybe_delivered(format!(
                "no answer within {} ms",
                self.after.as_millis()
            ))
            .with_provider_code("timeout")),
        }
    }

    async fn ready(&self) -> Option<Result<(), NotifyError>> {
        match tokio::time::timeout(self.after, self.inner.ready()).await {
            Ok(result) => result,
            Err(_) => Some(Err(NotifyError::retryable("readiness check timed out"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::future::pending;

    use super::*;
    use crate::notify::MemoryNotifier;

    #[derive(Debug)]
    struct Hang;

    impl Notifier for Hang {
        async fn send(&self, _: &Message) -> Result<Delivery, NotifyError> {
            pending().await
        }
    }

    use crate::test_helpers::sms as msg;

    #[tokio::test(start_paused = true)]
    async fn hanging_notifier_times_out_as_maybe_delivered() {
        let err = Timeout::new(Hang, Duration::from_secs(3))
            .send(&msg())
            .await
            .unwrap_err();
        assert!(!err.is_retryable());
        assert!(err.may_have_been_delivered());
        assert_eq!(err.provider_code(), Some("timeout"));
    }

    #[tokio::test]
    async fn fast_notifier_passes_through() {
        let inner = MemoryNotifier::new();
        let d = Timeout::new(inner.clone(), Duration::from_secs(3))
            .send(&msg())
            .await
            .unwrap();
        assert_eq!(d.provider_id.as_deref(), Some("mem-1"));
        assert_eq!(inner.attempts(), 1);
    }
}
