//! [`StackStr`]: a short string built on the stack, for the per-request
//! keys and header values of the layers (a rate-limit store key, a client
//! address key, a `RateLimit` value), so building one costs no allocation.

use std::fmt;

/// Up to `N` bytes of text, on the stack. A write that does not fit is
/// dropped whole and marks the string as overflowed; [`as_str`](Self::as_str)
/// then answers `None`, so a caller never uses a truncated key.
pub(crate) struct StackStr<const N: usize> {
    buf: [u8; N],
    len: usize,
    overflowed: bool,
}

impl<const N: usize> StackStr<N> {
    pub(crate) const fn new() -> Self {
        Self {
            buf: [0; N],
            len: 0,
            overflowed: false,
        }
    }

    /// Appends `bytes`, which must be whole UTF-8 text (a `&str`'s bytes, or
    /// ASCII).
    fn push_bytes(&mut self, bytes: &[u8]) {
        let end = self.len + bytes.len();
        match self.buf.get_mut(self.len..end) {
            Some(dst) => {
                dst.copy_from_slice(bytes);
                self.len = end;
            }
            None => self.overflowed = true,
        }
    }

    /// Appends `s`.
    pub(crate) fn push_str(&mut self, s: &str) {
        self.push_bytes(s.as_bytes());
    }

    /// Appends the ASCII byte `b` (anything else is refused as an overflow:
    /// the text stays valid UTF-8).
    pub(crate) fn push_ascii(&mut self, b: u8) {
        self.push_ascii_bytes(&[b]);
    }

    /// Appends `bytes` if they are all ASCII, else refuses them as an
    /// overflow.
    pub(crate) fn push_ascii_bytes(&mut self, bytes: &[u8]) {
        if bytes.is_ascii() {
            self.push_bytes(bytes);
        } else {
            self.overflowed = true;
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The text's bytes, or `None` when a write did not fit: what the hot
    /// paths use, with no UTF-8 check (the rate table and `HeaderValue`
    /// take bytes).
    pub(crate) fn as_bytes(&self) -> Option<&[u8]> {
        (!self.overflowed).then(|| &self.buf[..self.len])
    }

    /// The text, or `None` when a write did not fit.
    pub(crate) fn as_str(&self) -> Option<&str> {
        if self.overflowed {
            return None;
        }
        // Only whole `&str`s and ASCII bytes are ever written, so this
        // always succeeds; an ASCII check of a few dozen bytes.
        std::str::from_utf8(&self.buf[..self.len]).ok()
    }
}

/// Where the layers write text: a `String`, or a [`StackStr`] on the hot
/// path (one formatting routine for both).
pub(crate) trait Text: fmt::Write {
    /// Whether nothing was written yet.
    fn is_empty(&self) -> bool;

    /// Appends `bytes` if they are all ASCII (a `StackStr` notes anything
    /// else as an overflow; a `String` ignores it).
    fn push_ascii_bytes(&mut self, bytes: &[u8]);
}

impl Text for String {
    fn is_empty(&self) -> bool {
        String::is_empty(self)
    }

    fn push_ascii_bytes(&mut self, bytes: &[u8]) {
        if let Ok(text) = std::str::from_utf8(bytes)
            && text.is_ascii()
        {
            self.push_str(text);
        }
    }
}

impl<const N: usize> Text for StackStr<N> {
    fn is_empty(&self) -> bool {
        StackStr::is_empty(self)
    }

    fn push_ascii_bytes(&mut self, bytes: &[u8]) {
        StackStr::push_ascii_bytes(self, bytes);
    }
}

impl<const N: usize> fmt::Write for StackStr<N> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.push_str(s);
        if self.overflowed {
            Err(fmt::Error)
        } else {
            Ok(())
        }
    }
}

impl<const N: usize> fmt::Debug for StackStr<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.as_str(), f)
    }
}

#[cfg(test)]
mod tests {
    use std::fmt::Write as _;

    use super::*;

    #[test]
    fn holds_what_fits_and_refuses_the_rest_whole() {
        let mut s = StackStr::<8>::new();
        assert!(s.is_empty());
        s.push_str("rl:");
        s.push_ascii(b'7');
        assert_eq!(s.as_str(), Some("rl:7"));
        assert!(write!(s, "{}", 1234).is_ok());
        assert_eq!(s.as_str(), Some("rl:71234"));
        assert_eq!(s.as_bytes(), Some(&b"rl:71234"[..]));
        // Full: one more byte overflows, and the text is never handed out
        // truncated.
        s.push_ascii(b'x');
        assert_eq!(s.as_str(), None);
        assert_eq!(s.as_bytes(), None);
        assert!(s.write_str("y").is_err());
        let mut t = StackStr::<4>::new();
        t.push_str("ab");
        t.push_str("cde");
        assert_eq!(t.as_str(), None, "a write that does not fit is not cut");
        let mut u = StackStr::<4>::new();
        u.push_ascii(0xff);
        assert_eq!(u.as_str(), None, "non-ASCII bytes are refused");
        let mut text = String::from("a");
        Text::push_ascii_bytes(&mut text, b"bc");
        Text::push_ascii_bytes(&mut text, "\u{e9}".as_bytes());
        assert_eq!(text, "abc");
        u = StackStr::new();
        u.push_str("é");
        assert_eq!(u.as_str(), Some("é"));
    }
}
