//! `Fallback`: a second provider when the first fails.

use super::{Delivery, Message, Notifier, NotifyError};

/// Sends through `primary`; when it fails — permanently, or retryably after
/// whatever retries it does itself (wrap it in [`Retry`](super::Retry) for
/// those) — sends through `secondary` and answers with its result.
///
/// A [`MaybeDelivered`](super::NotifyErrorKind::MaybeDelivered) failure of
/// the primary is answered as it is: the message may be on its way, and a
/// second provider would send the code again
/// ([the rule](super#which-failures-are-retried)).
///
/// The primary's error is logged (it holds no recipient or code).
#[derive(Clone, Debug)]
pub struct Fallback<A, B> {
    primary: A,
    secondary: B,
}

impl<A, B> Fallback<A, B> {
    /// Tries `primary`, then `secondary`.
    pub fn new(primary: A, secondary: B) -> Self {
        Self { primary, secondary }
    }

    /// The primary notifier.
    pub fn primary(&self) -> &A {
        &self.primary
    }

    /// The secondary notifier.
    pub fn secondary(&self) -> &B {
        &self.secondary
    }
}

impl<A: Notifier, B: Notifier> Notifier for Fallback<A, B> {
    async fn send(&self, msg: &Message) -> Result<Delivery, NotifyError> {
        match self.primary.send(msg).await {
            Ok(delivery) => Ok(delivery),
            Err(err) if err.may_have_been_delivered() => Err(err),
            Err(err) => {
                tracing::warn!(channel = %msg.channel, error = %err, "notify: primary provider failed, trying the fallback");
                metrics::counter!("tower_otp_notify_fallback_total", "channel" => msg.channel.as_str())
                    .increment(1);
                self.secondary.send(msg).await
            }
        }
    }

    /// Ready when either provider is (or cannot tell).
    async fn ready(&self) -> Option<Result<(), NotifyError>> {
        match self.primary.ready().await {
            Some(Err(_)) => self.secondary.ready().await,
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::MemoryNotifier;

    use crate::test_helpers::sms as msg;

    #[tokio::test]
    async fn primary_success_skips_secondary() {
        let (a, b) = (MemoryNotifier::new(), MemoryNotifier::new());
        Fallback::new(a.clone(), b.clone())
            .send(&msg())
            .await
            .unwrap();
        assert_eq!((a.attempts(), b.attempts()), (1, 0));
    }

    #[tokio::test]
    async fn permanent_and_retryable_failures_fall_back() {
        for err in [
            NotifyError::permanent("no"),
            NotifyError::retryable("later"),
        ] {
            let (a, b) = (MemoryNotifier::new(), MemoryNotifier::new());
            a.fail_with(Some(err));
            let f = Fallback::new(a.clone(), b.clone());
            f.send(&msg()).await.unwrap();
            assert_eq!((a.attempts(), b.attempts()), (1, 1));
            assert_eq!(b.last_code("+14155550100").as_deref(), Some("123456"));
        }
    }

    #[tokio::test]
    async fn maybe_delivered_does_not_fall_back() {
        let (a, b) = (MemoryNotifier::new(), MemoryNotifier::new());
        a.fail_with(Some(
            NotifyError::maybe_delivered("reset").with_provider_code("io"),
        ));
        let err = Fallback::new(a.clone(), b.clone())
            .send(&msg())
            .await
            .unwrap_err();
        assert!(err.may_have_been_delivered());
        assert_eq!((a.attempts(), b.attempts()), (1, 0));
    }

    #[tokio::test]
    async fn both_failing_returns_the_secondary_error() {
        let (a, b) = (MemoryNotifier::new(), MemoryNotifier::new());
        a.fail_with(Some(NotifyError::retryable("a")));
        b.fail_with(Some(NotifyError::permanent("b").with_provider_code("B")));
        let err = Fallback::new(a, b).send(&msg()).await.unwrap_err();
        assert_eq!(err.provider_code(), Some("B"));
        assert!(!err.is_retryable());
    }
}
