//! Reading credentials out of request headers: `Authorization: Bearer`
//! (RFC 6750) and a key header such as `X-API-Key`. One place, below every
//! layer that takes credentials (JWT, API keys) and the router's logout and
//! session endpoints.

use http::{HeaderMap, HeaderName, HeaderValue, header::AUTHORIZATION};

/// Longest token accepted; anything longer is refused before decoding.
pub const MAX_TOKEN_LEN: usize = 8 * 1024;

/// Whether an `Authorization` value uses the `Bearer` scheme (any case),
/// well-formed or not: another scheme (`Basic`) is no bearer credential at
/// all (RFC 6750 §3.1), a bad bearer token is an invalid one.
pub(crate) fn is_bearer_scheme(value: &HeaderValue) -> bool {
    let bytes = value.as_bytes();
    let scheme = bytes
        .iter()
        .position(|&b| b == b' ')
        .map_or(bytes, |space| &bytes[..space]);
    scheme.eq_ignore_ascii_case(b"bearer")
}

/// Pulls the token out of an `Authorization: Bearer <token>` value: scheme
/// case-insensitive, exactly one space-separated token of RFC 6750 characters.
pub(crate) fn bearer_token(value: &HeaderValue) -> Option<&str> {
    b64token(bearer_bytes(value)?)
}

/// The bytes after `Bearer `, not yet checked character by character.
pub(crate) fn bearer_bytes(value: &HeaderValue) -> Option<&[u8]> {
    let bytes = value.as_bytes();
    let space = bytes.iter().position(|&b| b == b' ')?;
    let (scheme, token) = (&bytes[..space], &bytes[space + 1..]);
    (scheme.eq_ignore_ascii_case(b"bearer") && !token.is_empty() && token.len() <= MAX_TOKEN_LEN)
        .then_some(token)
}

/// `token` if it is all RFC 6750 `b64token` characters.
pub(crate) fn b64token(token: &[u8]) -> Option<&str> {
    if !token.iter().all(|&b| B68[usize::from(b)]) {
        return None;
    }
    // All ASCII by now, so this cannot fail (and checks ASCII a word at a time).
    std::str::from_utf8(token).ok()
}

/// RFC 6750 `b64token` characters, as a table: one load per byte.
const B68: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] = c.is_ascii_alphanumeric()
            || matches!(c, b'-' | b'.' | b'_' | b'~' | b'+' | b'/' | b'=');
        b += 1;
    }
    table
};

/// A credential was presented but cannot be one: a repeated header, a
/// header that is not text, or a `Bearer` credential that is no token.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Malformed;

/// The one value of header `name`: `None` when absent, [`Malformed`] when
/// repeated (two values are two credentials, and neither can be trusted).
pub(crate) fn single<'h>(
    headers: &'h HeaderMap,
    name: &HeaderName,
) -> Result<Option<&'h HeaderValue>, Malformed> {
    let mut all = headers.get_all(name).iter();
    match (all.next(), all.next()) {
        (None, _) => Ok(None),
        (Some(v), None) => Ok(Some(v)),
        (Some(_), Some(_)) => Err(Malformed),
    }
}

/// The key presented in header `header` (when given) or, when `bearer`, in
/// `Authorization: Bearer`; the header wins when both are present. `None`
/// when none is presented (another `Authorization` scheme, such as `Basic`,
/// presents none).
pub(crate) fn presented_key<'h>(
    headers: &'h HeaderMap,
    header: Option<&HeaderName>,
    bearer: bool,
) -> Result<Option<&'h str>, Malformed> {
    if let Some(name) = header
        && let Some(v) = single(headers, name)?
    {
        return v.to_str().map(Some).map_err(|_| Malformed);
    }
    if !bearer {
        return Ok(None);
    }
    let Some(v) = single(headers, &AUTHORIZATION)? else {
        return Ok(None);
    };
    match bearer_token(v) {
        Some(token) => Ok(Some(token)),
        None if is_bearer_scheme(v) => Err(Malformed),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_parsing() {
        let hv = |s: &str| HeaderValue::from_str(s).unwrap();
        assert_eq!(bearer_token(&hv("Bearer abc.def.ghi")), Some("abc.def.ghi"));
        assert_eq!(bearer_token(&hv("bearer abc")), Some("abc"));
        for bad in [
            "",
            "Bearer",
            "Bearer ",
            "Basic abc",
            "Bearer a b",
            "Bearer a\"b",
        ] {
            assert_eq!(bearer_token(&hv(bad)), None, "{bad:?}");
        }
        assert_eq!(
            bearer_token(&HeaderValue::from_bytes(b"Bearer \xff").unwrap()),
            None
        );
    }

    #[test]
    fn presented_key_reads_the_header_then_bearer() {
        let x = HeaderName::from_static("x-api-key");
        let mut h = HeaderMap::new();
        assert_eq!(presented_key(&h, Some(&x), true), Ok(None));
        h.insert(AUTHORIZATION, HeaderValue::from_static("Basic dXNlcg=="));
        assert_eq!(
            presented_key(&h, Some(&x), true),
            Ok(None),
            "another scheme"
        );
        h.insert(AUTHORIZATION, HeaderValue::from_static("Bearer a b"));
        assert_eq!(presented_key(&h, Some(&x), true), Err(Malformed));
        assert_eq!(presented_key(&h, Some(&x), false), Ok(None), "bearer off");
        h.insert(AUTHORIZATION, HeaderValue::from_static("Bearer k1"));
        assert_eq!(presented_key(&h, None, true), Ok(Some("k1")));
        h.insert(&x, HeaderValue::from_static("k2"));
        assert_eq!(
            presented_key(&h, Some(&x), true),
            Ok(Some("k2")),
            "header wins"
        );
        h.append(&x, HeaderValue::from_static("k3"));
        assert_eq!(
            presented_key(&h, Some(&x), true),
            Err(Malformed),
            "repeated"
        );
    }
}
