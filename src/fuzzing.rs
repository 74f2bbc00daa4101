//! Entry points for the cargo-fuzz targets in `fuzz/`, also replayed over the
//! seed corpus by `tests/fuzz_corpus.rs` on every `cargo test`. One function
//! per parser; each must never panic, whatever the bytes.
//!
//! Not part of the public API.

use std::borrow::Cow;

use crate::identifier::{Email, Phone};
use crate::notify::template::{Escape, Template};

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
