//! The forwarding headers (`X-Forwarded-For`, `X-Real-IP`, RFC 7239
//! `Forwarded`), their parsers, and the right-to-left walk to the first
//! untrusted hop.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use http::HeaderMap;
use http::header::{FORWARDED, HeaderName};

use super::Cidr;

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_REAL_IP: HeaderName = HeaderName::from_static("x-real-ip");

/// A forwarding header [`SetClientIpLayer`](super::SetClientIpLayer) may read
/// from a trusted proxy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ForwardingHeader {
    /// `X-Forwarded-For: client, proxy1, proxy2` (de-facto standard).
    XForwardedFor,
    /// `Forwarded: for=client, for="[2001:db8::1]:443"` (RFC 7239).
    Forwarded,
    /// `X-Real-IP: client` — a single address the proxy must *replace*, never
    /// append to (nginx `proxy_set_header X-Real-IP $remote_addr`).
    XRealIp,
}

/// The headers read by default: `X-Forwarded-For`, then `Forwarded`.
pub(super) fn default_headers() -> Vec<ForwardingHeader> {
    vec![ForwardingHeader::XForwardedFor, ForwardingHeader::Forwarded]
}

/// The rules a client address is resolved by: which peers are trusted
/// proxies, and which forwarding headers are read from them.
#[derive(Debug)]
pub(super) struct Resolver {
    trusted: Vec<Cidr>,
    headers: Vec<ForwardingHeader>,
}

impl Resolver {
    /// Trusts `trusted` and reads `headers` (in order of preference).
    pub(super) fn new(trusted: Vec<Cidr>, headers: Vec<ForwardingHeader>) -> Self {
        Self { trusted, headers }
    }

    fn is_trusted(&self, ip: IpAddr) -> bool {
        self.trusted.iter().any(|c| c.contains(ip))
    }

    /// The client address for a request from `peer` with `headers`.
    pub(super) fn resolve(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let peer = peer.to_canonical();
        if !self.is_trusted(peer) {
            return peer;
        }
        for kind in &self.headers {
            let (name, parse): (_, fn(&str, &mut Vec<Hop>)) = match kind {
                ForwardingHeader::XForwardedFor => (&X_FORWARDED_FOR, parse_x_forwarded_for),
                ForwardingHeader::Forwarded => (&FORWARDED, parse_forwarded),
                ForwardingHeader::XRealIp => (&X_REAL_IP, parse_x_real_ip),
            };
            let mut lines = headers.get_all(name).iter().peekable();
            if lines.peek().is_none() {
                continue;
            }
            let mut hops = Vec::new();
            let mut count = 0;
            for line in lines {
                count += 1;
                match line.to_str() {
                    Ok(s) => parse(s, &mut hops),
                    Err(_) => hops.push(None),
                }
            }
            if *kind == ForwardingHeader::XRealIp && (count > 1 || hops.len() != 1) {
                // One value, replaced by the proxy: several are a client's doing.
                return peer;
            }
            return self.walk(peer, &hops);
        }
        peer
    }

    /// Right to left from the trusted `peer`: the first untrusted hop, or the
    /// last trusted address when a hop is unreadable or the list ends.
    fn walk(&self, peer: IpAddr, hops: &[Hop]) -> IpAddr {
        let mut current = peer;
        for hop in hops.iter().rev() {
            let Some(ip) = hop else { return current };
            current = ip.to_canonical();
            if !self.is_trusted(current) {
                return current;
            }
        }
        current
    }
}

/// One hop of a forwarding header: its address, or `None` when it is
/// `unknown`, obfuscated or unreadable.
pub(crate) type Hop = Option<IpAddr>;

/// Parses an `X-Forwarded-For` value, appending one hop per entry.
pub(crate) fn parse_x_forwarded_for(value: &str, hops: &mut Vec<Hop>) {
    hops.extend(
        value
            .split(',')
            .map(|entry| parse_node(entry.trim(), false)),
    );
}

/// Parses an `X-Real-IP` value (one address).
fn parse_x_real_ip(value: &str, hops: &mut Vec<Hop>) {
    hops.push(parse_node(value.trim(), false));
}

/// Parses an RFC 7239 `Forwarded` value, appending the `for=` node of each
/// element (`None` when an element has no single readable `for=`).
pub(crate) fn parse_forwarded(value: &str, hops: &mut Vec<Hop>) {
    for element in split_unquoted(value, b',') {
        let mut found: Option<Hop> = None;
        let mut broken = false;
        for pair in split_unquoted(element, b';') {
            let pair = pair.trim_matches([' ', '\t']);
            if pair.is_empty() {
                continue;
            }
            let Some((name, raw)) = pair.split_once('=') else {
                broken = true;
                continue;
            };
            if !is_token(name) {
                broken = true;
                continue;
            }
            if name.eq_ignore_ascii_case("for") {
                if found.is_some() {
                    broken = true; // two `for=` in one element: ambiguous
                }
                found = Some(unquote(raw).and_then(|v| parse_node(&v, true)));
            } else if unquote(raw).is_none() {
                broken = true;
            }
        }
        hops.push(if broken { None } else { found.flatten() });
    }
}

/// Splits `s` at `sep` outside double-quoted strings (with `\` escapes).
fn split_unquoted(s: &str, sep: u8) -> impl Iterator<Item = &str> {
    let bytes = s.as_bytes();
    let mut start = 0;
    let mut pos = 0;
    let mut in_quotes = false;
    let mut done = false;
    std::iter::from_fn(move || {
        if done {
            return None;
        }
        while pos < bytes.len() {
            let b = bytes[pos];
            if in_quotes && b == b'\\' {
                pos += 2;
                continue;
            }
            if b == b'"' {
                in_quotes = !in_quotes;
            } else if b == sep && !in_quotes {
                let piece = &s[start..pos];
                pos += 1;
                start = pos;
                return Some(piece);
            }
            pos += 1;
        }
        done = true;
        // `pos` may have skipped past the end on a trailing backslash.
        Some(&s[start.min(s.len())..])
    })
}

fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// A token, or a quoted-string with its escapes resolved; `None` if neither.
fn unquote(raw: &str) -> Option<std::borrow::Cow<'_, str>> {
    let Some(inner) = raw.strip_prefix('"') else {
        return is_token(raw).then_some(std::borrow::Cow::Borrowed(raw));
    };
    let inner = inner.strip_suffix('"')?;
    if !inner.contains('\\') {
        return (!inner.contains('"')).then_some(std::borrow::Cow::Borrowed(inner));
    }
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.push(chars.next()?),
            '"' => return None,
            c => out.push(c),
        }
    }
    Some(std::borrow::Cow::Owned(out))
}

/// A node: `1.2.3.4`, `1.2.3.4:80`, `[2001:db8::1]`, `[2001:db8::1]:443`,
/// or a bare IPv6 address. `unknown` and obfuscated (`_x`) nodes are `None`.
/// Forwarded (`rfc7239`) also allows obfuscated ports (`:_abc`).
fn parse_node(node: &str, rfc7239: bool) -> Hop {
    if let Ok(ip) = node.parse::<IpAddr>() {
        return Some(ip);
    }
    let port_ok = |port: &str| {
        (!port.is_empty()
            && port.len() <= 5
            && port.bytes().all(|b| b.is_ascii_digit())
            && port.parse::<u16>().is_ok())
            || (rfc7239
                && port.len() > 1
                && port.starts_with('_')
                && port[1..]
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b)))
    };
    if let Some(rest) = node.strip_prefix('[') {
        let (addr, after) = rest.split_once(']')?;
        let ip = addr.parse::<Ipv6Addr>().ok()?;
        return match after.strip_prefix(':') {
            None if after.is_empty() => Some(IpAddr::V6(ip)),
            Some(port) if port_ok(port) => Some(IpAddr::V6(ip)),
            _ => None,
        };
    }
    let (addr, port) = node.split_once(':')?;
    let ip = addr.parse::<Ipv4Addr>().ok()?;
    port_ok(port).then_some(IpAddr::V4(ip))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use http::HeaderValue;

    use super::*;
    use crate::client_ip::SetClientIpLayer;
    use crate::test_helpers::ip;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (n, v) in pairs {
            h.append(*n, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    fn behind(proxies: &[&str]) -> SetClientIpLayer {
        SetClientIpLayer::builder()
            .trust_proxies(proxies.iter().copied())
            .build()
            .unwrap()
    }

    #[test]
    fn untrusted_peer_ignores_every_header() {
        let layer = behind(&["10.0.0.0/8"]);
        let h = headers(&[
            ("x-forwarded-for", "1.1.1.1"),
            ("forwarded", "for=2.2.2.2"),
            ("x-real-ip", "3.3.3.3"),
        ]);
        assert_eq!(layer.resolve(ip("203.0.113.9"), &h), ip("203.0.113.9"));
        let none = SetClientIpLayer::new();
        assert_eq!(none.resolve(ip("10.0.0.1"), &h), ip("10.0.0.1"));
    }

    #[test]
    fn x_forwarded_for_right_to_left() {
        let layer = behind(&["10.0.0.0/8"]);
        let h = headers(&[("x-forwarded-for", "6.6.6.6, 203.0.113.5, 10.0.0.2")]);
        assert_eq!(layer.resolve(ip("10.0.0.1"), &h), ip("203.0.113.5"));
        // Several header lines are one list, in order.
        let h = headers(&[
            ("x-forwarded-for", "6.6.6.6"),
            ("x-forwarded-for", "203.0.113.5"),
        ]);
        assert_eq!(layer.resolve(ip("10.0.0.1"), &h), ip("203.0.113.5"));
        // All hops trusted: the left-most one.
        let h = headers(&[("x-forwarded-for", "10.9.9.9, 10.0.0.2")]);
        assert_eq!(layer.resolve(ip("10.0.0.1"), &h), ip("10.9.9.9"));
        // Ports and brackets are tolerated.
        let h = headers(&[("x-forwarded-for", "[2001:db8::7]:1234, 198.51.100.1:80")]);
        assert_eq!(layer.resolve(ip("10.0.0.1"), &h), ip("198.51.100.1"));
    }

    #[test]
    fn malformed_hop_falls_back_to_last_trusted() {
        let layer = behind(&["10.0.0.0/8"]);
        for bad in [
            "garbage",
            "",
            "1.2.3.4.5",
            "unknown",
            "1.2.3.4:99999",
            "01.2.3.4",
        ] {
            let h = headers(&[("x-forwarded-for", &format!("6.6.6.6, {bad}, 10.0.0.3"))]);
            assert_eq!(layer.resolve(ip("10.0.0.1"), &h), ip("10.0.0.3"), "{bad:?}");
            let h = headers(&[("x-forwarded-for", bad)]);
            assert_eq!(layer.resolve(ip("10.0.0.1"), &h), ip("10.0.0.1"), "{bad:?}");
        }
        // Garbage to the left of the client does not matter.
        let h = headers(&[("x-forwarded-for", "%%%, 198.51.100.2")]);
        assert_eq!(layer.resolve(ip("10.0.0.1"), &h), ip("198.51.100.2"));
        // Non-UTF-8 bytes.
        let mut h = HeaderMap::new();
        h.insert(
            "x-forwarded-for",
            HeaderValue::from_bytes(b"\xff1.2.3.4").unwrap(),
        );
        assert_eq!(layer.resolve(ip("10.0.0.1"), &h), ip("10.0.0.1"));
    }

    #[test]
    fn forwarded_rfc7239() {
        let layer = behind(&["10.0.0.0/8", "2001:db8:ffff::/48"]);
        let cases = [
            (r#"for=192.0.2.60;proto=http;by=203.0.113.43"#, "192.0.2.60"),
            (r#"For="[2001:db8:cafe::17]:4711""#, "2001:db8:cafe::17"),
            (r#"for="[2001:db8:cafe::17]""#, "2001:db8:cafe::17"),
            (r#"for=192.0.2.43, for=198.51.100.17"#, "198.51.100.17"),
            (
                r#"for=198.51.100.17, for="[2001:db8:ffff::1]""#,
                "198.51.100.17",
            ),
            (r#"for="192.0.2.43:47011""#, "192.0.2.43"),
            (r#"for="_gazonk""#, "10.0.0.1"),
            (r#"for=unknown"#, "10.0.0.1"),
            (r#"for=192.0.2.43, for=unknown"#, "10.0.0.1"),
            (r#"for=192.0.2.43, for=unknown, for=10.0.0.8"#, "10.0.0.8"),
            (r#"for="[2001:db8::1]:_port""#, "2001:db8::1"),
            (r#"proto=https"#, "10.0.0.1"),
            (r#"for=1.2.3.4;for=5.6.7.8"#, "10.0.0.1"),
            (r#"for="1.2.3.4"#, "10.0.0.1"),
            (r#"for=[2001:db8::1]"#, "10.0.0.1"),
            (r#"for=1.2.3.4; proto="a,b", for=5.6.7.8"#, "5.6.7.8"),
            (r#"for="\1\.2.3.4""#, "1.2.3.4"),
        ];
        for (value, want) in cases {
            let h = headers(&[("forwarded", value)]);
            assert_eq!(layer.resolve(ip("10.0.0.1"), &h), ip(want), "{value}");
        }
    }

    #[test]
    fn header_choice() {
        let h = headers(&[
            ("x-forwarded-for", "198.51.100.1"),
            ("forwarded", "for=198.51.100.2"),
            ("x-real-ip", "198.51.100.3"),
        ]);
        let peer = ip("10.0.0.1");
        // Default: X-Forwarded-For first.
        assert_eq!(
            behind(&["10.0.0.0/8"]).resolve(peer, &h),
            ip("198.51.100.1")
        );
        let only = |kinds: &[ForwardingHeader]| {
            SetClientIpLayer::builder()
                .trust_proxy("10.0.0.0/8")
                .headers(kinds.iter().copied())
                .build()
                .unwrap()
        };
        assert_eq!(
            only(&[ForwardingHeader::Forwarded]).resolve(peer, &h),
            ip("198.51.100.2")
        );
        assert_eq!(
            only(&[ForwardingHeader::XRealIp]).resolve(peer, &h),
            ip("198.51.100.3")
        );
        assert_eq!(only(&[]).resolve(peer, &h), peer);
        // Default falls back to Forwarded when there is no X-Forwarded-For.
        let h2 = headers(&[
            ("forwarded", "for=198.51.100.2"),
            ("x-real-ip", "198.51.100.3"),
        ]);
        assert_eq!(
            behind(&["10.0.0.0/8"]).resolve(peer, &h2),
            ip("198.51.100.2")
        );
        // X-Real-IP is off by default.
        let h3 = headers(&[("x-real-ip", "198.51.100.3")]);
        assert_eq!(behind(&["10.0.0.0/8"]).resolve(peer, &h3), peer);
        // Two X-Real-IP values: ambiguous, ignored.
        let h4 = headers(&[("x-real-ip", "198.51.100.3"), ("x-real-ip", "198.51.100.4")]);
        assert_eq!(only(&[ForwardingHeader::XRealIp]).resolve(peer, &h4), peer);
    }

    #[test]
    fn ipv4_mapped_peers_are_canonical() {
        let layer = behind(&["127.0.0.0/8"]);
        let h = headers(&[("x-forwarded-for", "::ffff:198.51.100.1")]);
        assert_eq!(
            layer.resolve(ip("::ffff:127.0.0.1"), &h),
            ip("198.51.100.1")
        );
        assert_eq!(
            SetClientIpLayer::new().resolve(ip("::ffff:192.0.2.1"), &HeaderMap::new()),
            ip("192.0.2.1")
        );
    }
}
