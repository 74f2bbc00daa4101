//! Entry points for the cargo-fuzz targets in `fuzz/`, also replayed over the
//! seed corpus (`fuzz/seeds/<target>/`) by this module's tests on every
//! `cargo test`. One function per parser; each must never panic, whatever
//! the bytes. The OTP request bodies have theirs in `otp::fuzzing`.
//!
//! Not part of the public API: the module exists only when cargo-fuzz builds
//! the crate (`--cfg fuzzing`) and in the crate's own tests.

use std::net::IpAddr;

use http::{HeaderMap, HeaderName, HeaderValue};

use crate::client_ip::{self, ForwardingHeader, SetClientIpLayer};
use std::borrow::Cow;

use crate::identifier::{Email, Phone};
use crate::notify::template::{Escape, Template};

/// `Phone::parse` on arbitrary input.
pub fn phone(data: &[u8]) {
    if let Ok(s) = std::str::from_utf8(data)
        && let Ok(p) = Phone::parse(s)
    {
        // Normalising is idempotent (the trunk `0` is dropped once).
        assert_eq!(Phone::parse(p.as_str()).ok().as_ref(), Some(&p));
        assert!(p.digits().len() <= 15 && !p.digits().starts_with('0'));
    }
}

/// `Email::parse` on arbitrary input.
pub fn email(data: &[u8]) {
    if let Ok(s) = std::str::from_utf8(data)
        && let Ok(e) = Email::parse(s)
    {
        assert_eq!(Email::parse(e.as_str()).ok().as_ref(), Some(&e));
        // The mailbox limits count under is a valid address, its own
        // mailbox, and never longer than the address.
        let mailbox = e.mailbox();
        assert!(mailbox.len() <= e.as_str().len());
        let again = Email::parse(&mailbox).expect("a mailbox is an address");
        assert_eq!(again.mailbox(), mailbox);
    }
}

/// `Template` parsing and rendering on arbitrary input.
///
/// The input is a template, then (after the first NUL byte) variables as
/// `name=value` lines. Checks: rendering never panics; a template without
/// `{{` renders as itself; inserted values are HTML-escaped, so a template
/// with no `<` renders HTML with no `<` whatever the values.
pub fn render_template(data: &[u8]) {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let (source, vars) = s.split_once('\0').unwrap_or((s, ""));
    let vars: Vec<(&str, &str)> = vars
        .lines()
        .filter_map(|line| line.split_once('='))
        .collect();
    let lookup = |name: &str| {
        vars.iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| Cow::Borrowed(*v))
    };
    let template = Template::new(source);
    let text = template.render_with(lookup, Escape::None);
    let html = template.render_with(lookup, Escape::Html);
    let _ = template.placeholders();
    if !source.contains("{{") {
        assert_eq!(text, source);
    }
    if !source.contains('<') {
        assert!(!html.contains('<'), "unescaped value in HTML");
    }
    if vars.is_empty() {
        // With no values every placeholder stays verbatim.
        assert_eq!(text, source);
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
    let layer = SetClientIpLayer::builder()
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

    use crate::credentials::bearer_token;
    use crate::jwt::{JwtKeys, Validation, decode};

    let Ok(keys) = JwtKeys::new("fuzz", "fz7Qm2Lx9Vr4Tk8Wc3Nb6Hp1Jd5Sa0Eu") else {
        return;
    };
    let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    if let Ok(s) = std::str::from_utf8(data) {
        let verified = decode::<serde_json::Value>(&keys, &Validation::default(), s, now);
        assert!(verified.is_err() || s.split('.').count() == 3);
    }
    if let Ok(value) = http::HeaderValue::from_bytes(data) {
        if let Some(token) = bearer_token(&value) {
            // Only RFC 6750 characters ever come out, and never the scheme.
            assert!(!token.is_empty() && !token.contains(' '));
            assert!(
                token
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-._~+/=".contains(&b))
            );
        }
        let mut headers = HeaderMap::new();
        headers.insert(http::header::COOKIE, value);
        if let Some(token) = crate::jwt::service::cookie_token(&headers, "access_token") {
            assert!(!token.is_empty() && token.len() <= crate::jwt::MAX_TOKEN_LEN);
        }
    }
}

/// The parser of remote JWK Set documents on arbitrary input: never panics;
/// whatever it accepts is at most `MAX_KEYS` EdDSA / ES256 public keys with
/// distinct, valid `kid`s, none able to sign; and the document we would
/// publish for them parses back to the same keys.
pub fn jwks(data: &[u8]) {
    use crate::jwt::Algorithm;
    use crate::jwt::jwk::{MAX_KEYS, parse_jwks, write_jwks};

    let Ok(keys) = parse_jwks(data) else {
        return;
    };
    assert!(keys.len() >= 1 && keys.len() <= MAX_KEYS);
    let mut kids: Vec<&str> = keys.iter().map(|k| k.kid.as_str()).collect();
    kids.sort_unstable();
    kids.dedup();
    assert_eq!(kids.len(), keys.len(), "repeated kid accepted");
    for key in keys.iter() {
        assert!(!key.can_sign(), "a remote key can sign");
        assert!(matches!(
            key.algorithm(),
            Algorithm::EdDSA | Algorithm::ES256
        ));
        assert!(crate::jwt::key::check_kid(&key.kid).is_ok());
        // Nothing verifies an empty signature.
        assert!(!key.verify(b"a.b", ""));
    }
    let again = write_jwks(keys.iter()).expect("accepted keys are published");
    let reparsed = parse_jwks(&again).expect("our own document parses");
    assert!(
        reparsed.same_public_keys(&keys),
        "round trip changed the keys"
    );
}

/// `verify_webhook` on arbitrary `webhook-id`, `webhook-timestamp` and
/// `webhook-signature` values (split at NUL bytes) and body: never panics,
/// never accepts what it did not sign.
pub fn webhook_verify(data: &[u8]) {
    use std::time::{Duration, UNIX_EPOCH};

    use crate::webhook::{DEFAULT_TOLERANCE, WebhookSecret, verify_webhook};

    let Ok(secret) = WebhookSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw") else {
        return;
    };
    let mut parts = data.splitn(4, |b| *b == 0);
    let (id, ts, sig, body) = (
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
    );
    let mut headers = HeaderMap::new();
    for (name, value) in [
        ("webhook-id", id),
        ("webhook-timestamp", ts),
        ("webhook-signature", sig),
    ] {
        if let Ok(value) = HeaderValue::from_bytes(value) {
            headers.insert(HeaderName::from_static(name), value);
        }
    }
    let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    // The fuzzer cannot forge an HMAC-SHA256: acceptance would be a bug.
    assert!(verify_webhook(&secret, &headers, body, now, DEFAULT_TOLERANCE).is_err());
}

/// `api_key::format::parse` on arbitrary input; keys assembled from the input
/// round-trip, and any one-byte change to them is refused.
pub fn api_key(data: &[u8]) {
    use crate::api_key::KeyPrefix;
    use crate::api_key::format::{self, BASE62, CHECKSUM_LEN, SECRET_LEN};

    if let Ok(s) = std::str::from_utf8(data)
        && let Ok(k) = format::parse(s)
    {
        // A parsed key is exactly its parts plus the checksum.
        assert!(KeyPrefix::new(k.prefix()).is_ok());
        let body = format!("{}_{}_{}", k.prefix(), k.id(), k.secret());
        assert_eq!(s.len(), body.len() + CHECKSUM_LEN);
        assert!(s.starts_with(&body));
    }

    // Assemble a key from the bytes: 10 for the id, 43 for the secret, the
    // rest (when a valid prefix) for the prefix.
    let (Some(id_raw), Some(secret_raw)) = (data.get(..10), data.get(10..10 + SECRET_LEN)) else {
        return;
    };
    let mut raw = [0u8; 10];
    raw.copy_from_slice(id_raw);
    let id = format::base32_80(&raw);
    let secret: String = secret_raw
        .iter()
        .map(|&b| char::from(BASE62[usize::from(b % 62)]))
        .collect();
    let rest = std::str::from_utf8(&data[10 + SECRET_LEN..]).unwrap_or("");
    let Ok(prefix) = KeyPrefix::new(rest).or_else(|_| KeyPrefix::new("tok")) else {
        return;
    };
    let key = format::assemble(&prefix, &id, &secret);
    let parsed = format::parse(key.as_str());
    assert!(
        parsed.is_ok_and(|p| p.prefix() == prefix.as_str() && p.id() == id && p.secret() == secret),
        "assembled key did not round-trip"
    );
    // One byte changed anywhere (chosen by the input) is always refused.
    let mut bytes = key.as_str().as_bytes().to_vec();
    let at = usize::from(data[0]) * 7 % bytes.len();
    let to = data[1];
    if bytes[at] != to {
        bytes[at] = to;
        if let Ok(changed) = std::str::from_utf8(&bytes) {
            assert!(format::parse(changed).is_err(), "one-byte change accepted");
        }
    }
}

/// The IMF-fixdate parser behind HTTP-date `Retry-After`: never panics, and
/// whatever it accepts is a 29-byte GMT date that parses the same again.
pub fn http_date(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Some(secs) = crate::http_date::parse(text) {
        assert!(text.len() == 29 && text.ends_with(" GMT"));
        assert_eq!(crate::http_date::parse(text), Some(secs));
        // Within what four-digit years can reach.
        assert!(secs <= 253_402_300_800);
    }
}

/// `TenantConfig::from_json` on arbitrary input, with and without plain
/// `http://` webhooks: never panics; a config that parses serialises
/// (`serde_json::to_vec`) to a document that parses to an equal config, is
/// its own empty merge patch, and neither its public view nor its `Debug`
/// shows the webhook secret (unless another field holds the same text).
pub fn tenant_config(data: &[u8]) {
    use crate::tenant::{TenantConfig, WebhookUrls};

    for urls in [WebhookUrls::HttpsOnly, WebhookUrls::AllowHttp] {
        let Ok(config) = TenantConfig::from_json(data, urls) else {
            continue;
        };
        let bytes = serde_json::to_vec(&config).expect("a parsed config serialises");
        let again = TenantConfig::from_json(&bytes, urls);
        assert_eq!(again.as_ref().ok(), Some(&config), "{again:?}");
        let patched = config.patched(&serde_json::json!({}), urls);
        assert_eq!(patched.as_ref().ok(), Some(&config), "{patched:?}");

        let shown = config.public_json();
        let Some(hook) = &config.webhook else {
            assert!(shown["webhook"].is_null());
            continue;
        };
        assert!(shown["webhook"].get("secret").is_none());
        assert_eq!(shown["webhook"]["url"].as_str(), Some(hook.url.as_str()));
        let mut blanked = config.clone();
        if let Some(h) = blanked.webhook.as_mut() {
            h.secret.clear();
        }
        let elsewhere = serde_json::to_string(&blanked)
            .expect("a parsed config serialises")
            .contains(&hook.secret);
        if !elsewhere {
            assert!(!shown.to_string().contains(&hook.secret), "secret shown");
            assert!(
                !format!("{config:?}").contains(&hook.secret),
                "secret in Debug"
            );
        }
    }
}

/// Runs `entry` over every seed of fuzz target `target`
/// (`fuzz/seeds/<target>/`); an empty seed directory fails.
///
/// The published crate has no `fuzz/` directory (Cargo.toml excludes it):
/// there the replay is skipped, loudly. In the repository the directory must
/// be there, and with `CI=true` its absence fails.
#[cfg(test)]
pub(crate) fn replay_seeds(target: &str, entry: fn(&[u8])) {
    use std::io::Write as _;
    use std::path::Path;

    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = root.join("fuzz/seeds").join(target);
    if !dir.is_dir() {
        // `cargo package` writes Cargo.toml.orig: this is the packaged crate.
        let packaged = root.join("Cargo.toml.orig").is_file();
        if !packaged && std::env::var("CI").as_deref() == Ok("true") {
            panic!(
                "{} is missing but CI=true: the seed corpus is tracked in the repository",
                dir.display()
            );
        }
        // Straight to the stderr handle: `eprintln!` would be captured by
        // the test harness and hidden for a passing (skipped) test.
        let _ = writeln!(
            std::io::stderr(),
            "\n*** SKIPPING FUZZ SEED REPLAY for {target}: {} not found{} ***\n",
            dir.display(),
            if packaged {
                " (the published crate has no fuzz/)"
            } else {
                ""
            },
        );
        return;
    }
    let mut n = 0;
    for file in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = file.expect("readable corpus directory").path();
        entry(&std::fs::read(&path).expect("readable corpus file"));
        n += 1;
    }
    assert!(n > 0, "empty seed corpus for {target}");
}

#[cfg(test)]
mod tests {
    use super::replay_seeds;

    macro_rules! seed_replays {
        ($($name:ident),* $(,)?) => {
            $(
                #[test]
                fn $name() {
                    replay_seeds(stringify!($name), super::$name);
                }
            )*
            /// The targets replayed here.
            const REPLAYED: &[&str] = &[$(stringify!($name)),*];
        };
    }

    seed_replays!(
        phone,
        email,
        jwt_decode,
        forwarded,
        x_forwarded_for,
        render_template,
        api_key,
        webhook_verify,
        http_date,
        tenant_config,
        jwks
    );

    /// Replayed next to its entry point, in `otp::fuzzing`.
    const REPLAYED_ELSEWHERE: &[&str] = &["request_body"];

    /// Every fuzz target has a seed directory and a replay test: a new
    /// target (or seed directory) without one fails here.
    #[test]
    fn every_fuzz_target_is_replayed() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
        let names = |dir: &str, strip: &str| -> Option<Vec<String>> {
            let entries = std::fs::read_dir(root.join(dir)).ok()?;
            let mut names: Vec<String> = entries
                .map(|e| e.expect("readable directory").file_name())
                .filter_map(|n| n.to_str()?.strip_suffix(strip).map(str::to_owned))
                .collect();
            names.sort();
            Some(names)
        };
        let (Some(targets), Some(seeds)) = (names("fuzz_targets", ".rs"), names("seeds", ""))
        else {
            // No fuzz/ at all: `replay_seeds` says so, or fails under CI.
            replay_seeds("phone", super::phone);
            return;
        };
        let mut replayed: Vec<String> = REPLAYED
            .iter()
            .chain(REPLAYED_ELSEWHERE)
            .map(|s| (*s).to_owned())
            .collect();
        replayed.sort();
        assert_eq!(targets, replayed, "fuzz targets vs replay tests");
        assert_eq!(seeds, replayed, "seed directories vs replay tests");
    }
}
