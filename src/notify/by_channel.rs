//! `ByChannel`: one notifier per channel.

use std::collections::HashMap;

use super::{BoxNotifier, Channel, Delivery, Message, Notifier, NotifyError};

/// Sends each message through the notifier registered for its channel:
/// typically SMS/WhatsApp/voice to a phone provider and email to SMTP.
///
/// A message on a channel with no notifier fails *permanently* with the
/// provider code `no_route` — a configuration gap, not something retrying
/// fixes.
///
/// ```
/// use std::time::Duration;
/// use tower_otp::notify::{ByChannel, Channel, MemoryNotifier, Message, Notifier};
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let email = MemoryNotifier::new();
/// let router = ByChannel::new().email(email.clone());
/// let sms = Message::new(Channel::Sms, "+14155550100", "123456", Duration::from_secs(600));
/// let err = router.send(&sms).await.unwrap_err();
/// assert!(!err.is_retryable());
/// assert_eq!(err.provider_code(), Some("no_route"));
/// # });
/// ```
#[derive(Clone, Debug, Default)]
pub struct ByChannel {
    routes: HashMap<Channel, BoxNotifier>,
}

impl ByChannel {
    /// No routes yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sends `channel` through `notifier` (replacing an earlier route).
    #[must_use]
    pub fn route(mut self, channel: Channel, notifier: impl Notifier) -> Self {
        self.routes.insert(channel, BoxNotifier::new(notifier));
        self
    }

    /// Sends SMS, WhatsApp and voice through `notifier` (one shared instance).
    #[must_use]
    pub fn phone(mut self, notifier: impl Notifier) -> Self {
        let boxed = BoxNotifier::new(notifier);
        for channel in [Channel::Sms, Channel::Whatsapp, Channel::Voice] {
            self.routes.insert(channel, boxed.clone());
        }
        self
    }

    /// Sends email through `notifier`.
    #[must_use]
    pub fn email(self, notifier: impl Notifier) -> Self {
        self.route(Channel::Email, notifier)
    }

    /// Whether `channel` has a notifier.
    pub fn handles(&self, channel: Channel) -> bool {
        self.routes.contains_key(&channel)
    }
}

impl Notifier for ByChannel {
    async fn send(&self, msg: &Message) -> Result<Delivery, NotifyError> {
        match self.routes.get(&msg.channel) {
            Some(notifier) => notifier.send(msg).await,
            None => Err(NotifyError::permanent(format!(
                "no notifier is configured for the {} channel",
                msg.channel
            ))
            .with_provider_code("no_route")),
        }
    }

    /// The first failure among the routes, else ready if any can tell.
    async fn ready(&self) -> Option<Result<(), NotifyError>> {
        let mut answer = None;
        for notifier in self.routes.values() {
            match notifier.ready().await {
                Some(Err(e)) => return Some(Err(e)),
                Some(Ok(())) => answer = Some(Ok(())),
                None => {}
            }
        }
        answer
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::notify::MemoryNotifier;

    fn msg(channel: Channel, to: &str) -> Message {
        Message::new(channel, to, "123456", Duration::from_secs(600))
    }

    #[tokio::test]
    async fn routes_by_channel() {
        let (phone, email) = (MemoryNotifier::new(), MemoryNotifier::new());
        let r = ByChannel::new().phone(phone.clone()).email(email.clone());
        for ch in [Channel::Sms, Channel::Whatsapp, Channel::Voice] {
            r.send(&msg(ch, "+14155550100")).await.unwrap();
        }
        r.send(&msg(Channel::Email, "a@b.example")).await.unwrap();
        assert_eq!(phone.attempts(), 3);
        assert_eq!(email.attempts(), 1);
        assert_eq!(email.last_code("a@b.example").as_deref(), Some("123456"));
    }

    #[tokio::test]
    async fn missing_route_is_permanent() {
        let phone = MemoryNotifier::new();
        let r = ByChannel::new().route(Channel::Sms, phone.clone());
        assert!(r.handles(Channel::Sms) && !r.handles(Channel::Whatsapp));
        let err = r
            .send(&msg(Channel::Email, "a@b.example"))
            .await
            .unwrap_err();
        assert!(!err.is_retryable());
        assert!(err.to_string().contains("email"));
        assert_eq!(phone.attempts(), 0);
    }
}
