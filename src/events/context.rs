//! What an event records about the request that caused it.

use std::net::IpAddr;
use std::time::SystemTime;

use http::header::USER_AGENT;
use http::request::Parts;

use super::{Event, EventKind};
use crate::client_ip::ClientIp;

/// Who is asking: the request id, client address and user agent of a
/// request, read once and copied into every event it causes.
#[derive(Clone, Debug, Default)]
pub(crate) struct RequestContext {
    pub(crate) request_id: Option<String>,
    pub(crate) client_ip: Option<IpAddr>,
    pub(crate) user_agent: Option<String>,
}

impl RequestContext {
    /// What events record about the request with these parts.
    pub(crate) fn from_parts(parts: &Parts) -> Self {
        Self {
            request_id: header_text(parts, "x-request-id", 64),
            client_ip: ClientIp::from_parts(parts).map(|ip| ip.0),
            user_agent: header_text(parts, USER_AGENT.as_str(), 256),
        }
    }

    /// An event of `kind` at `at` carrying this request's context.
    pub(crate) fn event(&self, kind: EventKind, at: SystemTime) -> Event {
        let mut e = Event::new(kind, at);
        e.request_id.clone_from(&self.request_id);
        e.client_ip = self.client_ip;
        e.user_agent.clone_from(&self.user_agent);
        e
    }
}

/// The header's text (visible ASCII only: `to_str` refuses anything else),
/// cut to at most `max` bytes.
fn header_text(parts: &Parts, name: &str, max: usize) -> Option<String> {
    let v = parts.headers.get(name)?.to_str().ok()?;
    Some(v[..v.len().min(max)].to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_headers_are_cut() {
        let ua = "a".repeat(300);
        let (parts, ()) = http::Request::builder()
            .header(USER_AGENT, ua.as_str())
            .header("x-request-id", "r-1")
            .body(())
            .unwrap()
            .into_parts();
        let ctx = RequestContext::from_parts(&parts);
        assert_eq!(ctx.user_agent.as_deref(), Some(&ua[..256]));
        let e = ctx.event(EventKind::OtpRequested, SystemTime::UNIX_EPOCH);
        assert_eq!(e.request_id.as_deref(), Some("r-1"));
        assert_eq!(e.user_agent, ctx.user_agent);
    }
}
