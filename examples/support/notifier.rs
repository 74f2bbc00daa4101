//! The notifier of the reference servers (`examples/production.rs`,
//! `examples/multi_tenant.rs`): providers from the environment, and
//! `LogNotifier` (codes on stdout, development only) for a channel with none.

use std::time::Duration;

use tower_otp::notify::{ByChannel, Channel, LogNotifier};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Phones through Twilio and email through SMTP when configured (each with
/// a timeout per attempt and retries); `LogNotifier` for a channel that is not.
pub(crate) fn from_env() -> Result<ByChannel, BoxError> {
    #[cfg(any(feature = "twilio", feature = "smtp"))]
    use tower_otp::notify::{NotifierExt, RetryPolicy};

    let mut notifier = ByChannel::new();
    #[cfg(feature = "twilio")]
    if std::env::var_os("TWILIO_ACCOUNT_SID").is_some() {
        let twilio = tower_otp::notify::TwilioSms::from_env()?;
        notifier = notifier.phone(
            twilio
                .timeout(Duration::from_secs(10))
                .retry(RetryPolicy::new()),
        );
    }
    #[cfg(feature = "smtp")]
    if std::env::var_os("SMTP_URL").is_some() {
        let smtp = tower_otp::notify::SmtpEmail::from_env()?;
        notifier = notifier.email(
            smtp.timeout(Duration::from_secs(15))
                .retry(RetryPolicy::new()),
        );
    }
    let phone = [Channel::Sms, Channel::Whatsapp, Channel::Voice];
    for (channels, name) in [(&phone[..], "phone"), (&[Channel::Email][..], "email")] {
        if !notifier.handles(channels[0]) {
            tracing::warn!(
                channel = name,
                "no provider configured: codes are printed on stdout by LogNotifier (development only)"
            );
            for channel in channels {
                notifier = notifier.route(*channel, LogNotifier);
            }
        }
    }
    Ok(notifier)
}
