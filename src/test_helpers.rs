//! Helpers shared by the unit tests (compiled only for `cargo test`).

use std::time::Duration;

use crate::notify::{Channel, Message};

/// An SMS with code `123456` to `+14155550100`, valid 10 minutes.
pub(crate) fn sms() -> Message {
    Message::new(
        Channel::Sms,
        "+14155550100",
        "123456",
        Duration::from_secs(600),
    )
}

/// An IP address from its text form (panics on a typo in the test).
pub(crate) fn ip(s: &str) -> std::net::IpAddr {
    s.parse().unwrap()
}
