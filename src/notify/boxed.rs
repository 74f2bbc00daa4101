//! `BoxNotifier`: a type-erased notifier.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use super::{Delivery, Message, Notifier, NotifyError};

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The object-safe face of [`Notifier`].
trait DynNotifier: Send + Sync + fmt::Debug + 'static {
    fn send_boxed<'a>(&'a self, msg: &'a Message) -> BoxFuture<'a, Result<Delivery, NotifyError>>;
    fn ready_boxed(&self) -> BoxFuture<'_, Option<Result<(), NotifyError>>>;
}

impl<N: Notifier> DynNotifier for N {
    fn send_boxed<'a>(&'a self, msg: &'a Message) -> BoxFuture<'a, Result<Delivery, NotifyError>> {
        Box::pin(self.send(msg))
    }

    fn ready_boxed(&self) -> BoxFuture<'_, Option<Result<(), NotifyError>>> {
        Box::pin(self.ready())
    }
}

/// Any [`Notifier`] behind one type, for choosing providers at run time
/// (from configuration) or keeping different ones in one collection.
/// Cloning is cheap (an `Arc`).
///
/// ```
/// use tower_otp::notify::{BoxNotifier, LogNotifier, MemoryNotifier, NotifierExt};
///
/// let use_log = true;
/// let notifier: BoxNotifier = if use_log { LogNotifier.boxed() } else { MemoryNotifier::new().boxed() };
/// # let _ = notifier;
/// ```
#[derive(Clone)]
pub struct BoxNotifier {
    inner: Arc<dyn DynNotifier>,
}

impl BoxNotifier {
    /// Boxes `notifier`.
    pub fn new<N: Notifier>(notifier: N) -> Self {
        Self {
            inner: Arc::new(notifier),
        }
    }
}

impl fmt::Debug for BoxNotifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("BoxNotifier").field(&self.inner).finish()
    }
}

impl Notifier for BoxNotifier {
    async fn send(&self, msg: &Message) -> Result<Delivery, NotifyError> {
        self.inner.send_boxed(msg).await
    }

    fn ready(&self) -> impl Future<Output = Option<Result<(), NotifyError>>> + Send {
        self.inner.ready_boxed()
    }
}
