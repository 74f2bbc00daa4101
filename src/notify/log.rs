//! `LogNotifier`: prints codes for development.

use std::io::Write;

use serde::Serialize;

use super::{Channel, Delivery, Message, Notifier, NotifyError};

/// Development notifier: writes each message as one JSON line on stdout,
/// `{"channel":"sms","to":"+14155550100","code":"123456",...}`.
///
/// This is the one place `tower-otp` prints a code, by design: it lets a
/// developer, a test or a browser demo read the code without a provider.
/// Never use it in production.
#[derive(Clone, Copy, Debug, Default)]
pub struct LogNotifier;

#[derive(Serialize)]
struct Line<'a> {
    channel: Channel,
    to: &'a str,
    code: &'a str,
    expires_in: u64,
    app_name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    locale: Option<&'a str>,
}

impl LogNotifier {
    /// The JSON line for `msg` (without the newline).
    fn line(msg: &Message) -> String {
        let line = Line {
            channel: msg.channel,
            to: &msg.to,
            code: &msg.code,
            expires_in: msg.expires_in.as_secs(),
            app_name: &msg.app_name,
            locale: msg.locale.as_deref(),
        };
        serde_json::to_string(&line).unwrap_or_default()
    }
}

impl Notifier for LogNotifier {
    async fn send(&self, msg: &Message) -> Result<Delivery, NotifyError> {
        let mut line = Self::line(msg);
        line.push('\n');
        let mut out = std::io::stdout().lock();
        out.write_all(line.as_bytes())
            .and_then(|()| out.flush())
            .map_err(|e| NotifyError::retryable("cannot write to stdout").with_source(e))?;
        Ok(Delivery::default())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn line_shape() {
        let msg = Message::new(
            Channel::Sms,
            "+14155550100",
            "123456",
            Duration::from_secs(600),
        );
        let v: serde_json::Value = serde_json::from_str(&LogNotifier::line(&msg)).unwrap();
        assert_eq!(v["channel"], "sms");
        assert_eq!(v["to"], "+14155550100");
        assert_eq!(v["code"], "123456");
        assert_eq!(v["expires_in"], 600);
    }
}
