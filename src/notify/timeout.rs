//! `Timeout`: bounds how long a notifier may take.

use std::time::Duration;

use super::{Delivery, Message, Notifier, NotifyError};

/// Fails with a *retryable* error when the inner notifier has not answered
/// within the limit; the inner send is dropped (cancelled) at that point.
///
/// Put it inside [`Retry`](super::Retry) to bound each attempt, outside to
/// bound the whole.
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
            Err(_) => Err(NotifyError::retryable(format!(
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
    async fn hanging_notifier_times_out_retryably() {
        let err = Timeout::new(Hang, Duration::from_secs(3))
            .send(&msg())
            .await
            .unwrap_err();
        assert!(err.is_retryable());
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
