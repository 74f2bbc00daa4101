//! Builder methods the providers share, written once.
//!
//! `TwilioSms`, `HttpNotifier` and `events::WebhookSink` builders hold an
//! [`HttpOptions`](super::http_client::HttpOptions) in a field `http`;
//! `TwilioSms`, `HttpNotifier` and `SmtpEmail` builders hold their
//! templates in a field `templates: Arc<Templates>`. These macros write the
//! public setters for those fields into the builder's `impl` block.

/// `request_timeout(d)`, for a builder with a field
/// `http: HttpOptions`.
#[cfg_attr(
    not(any(feature = "twilio", feature = "http-notifier")),
    allow(unused_macros)
)]
macro_rules! request_timeout_option {
    () => {
        /// Time for one HTTP request, connection included (default 10 s).
        ///
        /// A request cut before it went out is retryable; one cut after
        /// that may have reached the endpoint
        /// ([`MaybeDelivered`](crate::notify::NotifyErrorKind::MaybeDelivered)).
        /// Not to be confused with
        /// [`NotifierExt::timeout`](crate::notify::NotifierExt::timeout),
        /// which bounds a whole send from the outside and cannot tell
        /// whether the request went out.
        #[must_use]
        pub fn request_timeout(mut self, timeout: std::time::Duration) -> Self {
            self.http.request_timeout = timeout;
            self
        }
    };
}

/// `templates(t)`, for a builder with a field `templates: Arc<Templates>`.
#[cfg_attr(
    not(any(feature = "twilio", feature = "http-notifier", feature = "smtp")),
    allow(unused_macros)
)]
macro_rules! templates_option {
    () => {
        /// The message templates (default:
        /// [`Templates::default`](crate::notify::template::Templates), English).
        #[must_use]
        pub fn templates(
            mut self,
            templates: impl Into<std::sync::Arc<crate::notify::template::Templates>>,
        ) -> Self {
            self.templates = templates.into();
            self
        }
    };
}

#[cfg_attr(
    not(any(feature = "twilio", feature = "http-notifier")),
    allow(unused_imports)
)]
pub(crate) use request_timeout_option;
#[cfg_attr(
    not(any(feature = "twilio", feature = "http-notifier", feature = "smtp")),
    allow(unused_imports)
)]
pub(crate) use templates_option;
