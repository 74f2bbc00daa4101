//! `MemoryNotifier`: keeps messages in memory for tests.

use std::sync::{Arc, Mutex};

use super::{Delivery, Message, Notifier, NotifyError};

/// Test notifier: records every message; can be told to fail.
///
/// Clones share the same record, so a test keeps one clone and gives the
/// other to the router.
///
/// ```
/// # tokio_test_block_on(async {
/// use std::time::Duration;
/// use tower_otp::notify::{Channel, MemoryNotifier, Message, Notifier};
///
/// let notifier = MemoryNotifier::new();
/// let msg = Message::new(Channel::Email, "a@b.example", "123456", Duration::from_secs(600));
/// notifier.send(&msg).await.unwrap();
/// assert_eq!(notifier.last_code("a@b.example").as_deref(), Some("123456"));
/// # });
/// # fn tokio_test_block_on<F: std::future::Future>(f: F) -> F::Output {
/// #     tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
/// # }
/// ```
#[derive(Clone, Debug, Default)]
pub struct MemoryNotifier {
    inner: Arc<Mutex<State>>,
}

#[derive(Debug, Default)]
struct State {
    sent: Vec<Message>,
    fail_with: Option<NotifyError>,
    attempts: usize,
}

impl MemoryNotifier {
    /// An empty notifier that accepts everything.
    pub fn new() -> Self {
        Self::default()
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// From now on, fail every send with `err` (`None`: succeed again).
    pub fn fail_with(&self, err: Option<NotifyError>) {
        self.state().fail_with = err;
    }

    /// Every message delivered so far.
    pub fn messages(&self) -> Vec<Message> {
        self.state().sent.clone()
    }

    /// Calls to `send`, failed ones included.
    pub fn attempts(&self) -> usize {
        self.state().attempts
    }

    /// The code of the last message delivered to `to`.
    pub fn last_code(&self, to: &str) -> Option<String> {
        self.state()
            .sent
            .iter()
            .rev()
            .find(|m| m.to == to)
            .map(|m| m.code.clone())
    }
}

impl Notifier for MemoryNotifier {
    async fn send(&self, msg: &Message) -> Result<Delivery, NotifyError> {
        let mut state = self.state();
        state.attempts += 1;
        if let Some(err) = &state.fail_with {
            return Err(err.clone());
        }
        state.sent.push(msg.clone());
        Ok(Delivery::with_id(format!("mem-{}", state.sent.len())))
    }
}
