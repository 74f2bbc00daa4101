//! Entry points for the cargo-fuzz targets in `fuzz/`, also replayed over the
//! seed corpus by `tests/fuzz_corpus.rs` on every `cargo test`. One function
//! per parser; each must never panic, whatever the bytes.
//!
//! Not part of the public API.

use std::net::IpAddr;

use http::{HeaderMap, HeaderName, HeaderValue};

use crate::client_ip::{self, ClientIpLayer, ForwardingHeader};
use crate::identifier::{Email, Phone};

/// `Phone::parse` on arbitrary input.
pub fn phone(data: &[u8]) {
    if let Ok(s) = std::str::from_utf8(data)
        && let Ok(p) = Phone::parse(s)
    {
        // Normalising is idempotent.
        assert_eq!(Phone::parse(p.as_str()).ok().as_ref(), Some(&p));
    }
}

/// `Email::parse` on arbitrary input.
pub fn email(data: &[u8]) {
    if let Ok(s) = std::str::from_utf8(data)
        && let Ok(e) = Email::parse(s)
    {
        assert_eq!(Email::parse(e.as_str()).ok().as_ref(), Some(&e));
    }
}

/// The RFC 7239 `Forwarded` parser, and client-IP resolution over it.
pub fn forwarded(data: &[u8]) {
    forwarding_header(
        data,
        ForwardingHeader::Forwarded,
        client_ip::parse_forwarded,
        |ips| {
            ips.iter()
                .map(|ip| match ip {
                    IpAddr::V4(v4) => format!("for={v4}"),
                    IpAddr::V6(v6) => format!("for=\"[{v6}]:443\""),
                })
                .collect::<Vec<_>>()
                .join(", ")
        },
    );
}

/// The `X-Forwarded-For` parser, and client-IP resolution over it.
pub fn x_forwarded_for(data: &[u8]) {
    forwarding_header(
        data,
        ForwardingHeader::XForwardedFor,
        client_ip::parse_x_forwarded_for,
        |ips| {
            ips.iter()
                .map(IpAddr::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        },
    );
}

fn forwarding_header(
    data: &[u8],
    kind: ForwardingHeader,
    parse: fn(&str, &mut Vec<client_ip::Hop>),
    render: fn(&[IpAddr]) -> String,
) {
    let name = match kind {
        ForwardingHeader::Forwarded => HeaderName::from_static("forwarded"),
        _ => HeaderName::from_static("x-forwarded-for"),
    };
    if let Ok(s) = std::str::from_utf8(data) {
        let mut hops = Vec::new();
        parse(s, &mut hops);
        // Rendering the readable hops and parsing again gives them back.
        let ips: Vec<IpAddr> = hops.iter().flatten().copied().collect();
        let mut again = Vec::new();
        parse(&render(&ips), &mut again);
        if ips.is_empty() {
            assert!(again.iter().all(Option::is_none));
        } else {
            assert_eq!(again, ips.iter().copied().map(Some).collect::<Vec<_>>());
        }
    }
    // Resolution answers the peer or one of the hops, never anything else.
    let Ok(value) = HeaderValue::from_bytes(data) else {
        return;
    };
    let mut headers = HeaderMap::new();
    headers.insert(name.clone(), value);
    let layer = ClientIpLayer::builder()
        .trust_proxy("10.0.0.0/8")
        .trust_proxy("fd00::/8")
        .headers([kind])
        .build()
        .unwrap_or_default();
    let peer: IpAddr = IpAddr::from([10, 0, 0, 1]);
    let client = layer.resolve(peer, &headers);
    if client != peer {
        let mut hops = Vec::new();
        if let Ok(s) = std::str::from_utf8(data) {
            parse(s, &mut hops);
        }
        assert!(
            hops.iter().flatten().any(|h| h.to_canonical() == client),
            "{client} is neither the peer nor a hop"
        );
    }
}

/// `jwt::decode` and `bearer_token` on arbitrary input: never panics, and
/// never accepts a token it did not sign.
pub fn jwt_decode(data: &[u8]) {
    use std::time::{Duration, UNIX_EPOCH};

    use crate::jwt::{JwtKeys, Validation, bearer_token, decode};

    let Ok(keys) = JwtKeys::new("fuzz", [0x5a; 32]) else {
        return;
    };
    let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    if let Ok(s) = std::str::from_utf8(data) {
        let verified = decode::<serde_json::Value>(&keys, &Validation::default(), s, now);
        assert!(verified.is_err() || s.split('.').count() == 3);
    }
    if let Ok(value) = http::HeaderValue::from_bytes(data) {
        let _ = bearer_token(&value);
    }
}

/// The OTP request bodies: JSON parsing into each body type, then identifier
/// parsing, exactly as the router does it.
pub fn request_body(data: &[u8]) {
    crate::otp::fuzz_request_body(data);
}
