//! Message templates: per channel and locale, with `{{placeholders}}`.
//!
//! A [`Template`] is text with placeholders written `{{name}}` (spaces inside
//! the braces are allowed: `{{ code }}`). The names every message knows are
//!
//! | placeholder | value |
//! |---|---|
//! | `{{code}}` | the one-time code |
//! | `{{code_spaced}}` | the code with a space between characters (`1 2 3 4 5 6`), for voice |
//! | `{{app_name}}` | [`Message::app_name`] |
//! | `{{minutes}}` | validity in whole minutes, rounded up ([`Message::minutes`]) |
//!
//! and any name set with [`Message::with_var`]. The built-in names win over
//! [`Message::vars`] of the same name, so a variable cannot replace the code.
//!
//! # Predictable rules
//!
//! * A placeholder name is 1–64 ASCII letters, digits, `_`, `-` or `.`.
//!   Anything else between `{{` and `}}` is not a placeholder and is copied
//!   as written (`{{ not a name }}` stays as it is).
//! * An **unknown** name is kept verbatim (`{{unknown}}` appears in the
//!   output as `{{unknown}}`), so a typo shows up in the first test message
//!   instead of silently vanishing. [`Template::placeholders`] lists the names
//!   a template uses, to check them at start-up.
//! * Values are inserted once and never re-expanded: a variable whose value
//!   contains `{{code}}` inserts those characters literally.
//! * When rendering HTML ([`Escape::Html`]), every inserted *value* is
//!   HTML-escaped (`& < > " '`); the template's own text is trusted markup and
//!   copied unchanged.
//! * Email subjects have control characters (CR, LF, …) replaced by spaces.
//!
//! # Registry and locale fallback
//!
//! [`Templates`] holds one template per channel and locale, plus a default
//! per channel. The lookup for `de-CH` tries `de-ch`, then `de`, then the
//! default (locales match case-insensitively and `_` counts as `-`). The
//! built-in defaults are English.
//!
//! ```
//! use std::time::Duration;
//! use tower_otp::notify::{Channel, Message};
//! use tower_otp::notify::template::{Template, Templates};
//!
//! # fn main() -> Result<(), tower_otp::error::ConfigError> {
//! let templates = Templates::builder()
//!     .text(Channel::Sms, "de", "{{code}} ist Ihr {{app_name}}-Code.")
//!     .build()?;
//! let msg = Message::new(Channel::Sms, "+41445550100", "123456", Duration::from_secs(600))
//!     .with_app_name("Acme")
//!     .with_locale("de-CH");
//! assert_eq!(templates.render_text(&msg), "123456 ist Ihr Acme-Code.");
//!
//! let en = Message::new(Channel::Sms, "+14155550100", "123456", Duration::from_secs(600))
//!     .with_app_name("Acme");
//! assert_eq!(templates.render_text(&en), "123456 is your Acme code. It expires in 10 minutes.");
//! # Ok(())
//! # }
//! ```
//!
//! # SMS length and WebOTP
//!
//! The default SMS fits one GSM-7 segment (160 characters) for codes up to
//! 10 digits and app names up to 40 characters, also with the WebOTP line
//! `@example.com #123456` appended by [`TemplatesBuilder::webotp_domain`] (for
//! domains up to 40 characters), which lets browsers fill the code in
//! (`navigator.credentials.get({otp})`). [`gsm7_units`] measures a text.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;

use super::{Channel, Message};
use crate::error::ConfigError;

/// Longest placeholder name.
const MAX_NAME: usize = 64;

/// How inserted values are escaped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Escape {
    /// Values are inserted as they are (SMS, plain-text email, subjects).
    None,
    /// Values are HTML-escaped (HTML email bodies).
    Html,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Part {
    Text(String),
    /// A placeholder: its name and its source text (kept for unknown names).
    Var {
        name: String,
        source: String,
    },
}

/// A parsed template. Parsing never fails: see the module docs for the rules.
#[derive(Clone, PartialEq, Eq)]
pub struct Template {
    parts: Vec<Part>,
}

impl Template {
    /// Parses `source`.
    pub fn new(source: impl AsRef<str>) -> Self {
        let source = source.as_ref();
        let mut parts = Vec::new();
        let mut text = String::new();
        let mut rest = source;
        while let Some(open) = rest.find("{{") {
            text.push_str(&rest[..open]);
            let after = &rest[open + 2..];
            match placeholder(after) {
                Some((name, len)) => {
                    if !text.is_empty() {
                        parts.push(Part::Text(std::mem::take(&mut text)));
                    }
                    parts.push(Part::Var {
                        name: name.to_owned(),
                        source: rest[open..open + 2 + len].to_owned(),
                    });
                    rest = &after[len..];
                }
                None => {
                    // Not a placeholder: keep one `{` and look again from the next one.
                    text.push('{');
                    rest = &rest[open + 1..];
                }
            }
        }
        text.push_str(rest);
        if !text.is_empty() {
            parts.push(Part::Text(text));
        }
        Self { parts }
    }

    /// The placeholder names used, in order of first use.
    pub fn placeholders(&self) -> Vec<&str> {
        let mut names: Vec<&str> = Vec::new();
        for part in &self.parts {
            if let Part::Var { name, .. } = part
                && !names.contains(&name.as_str())
            {
                names.push(name);
            }
        }
        names
    }

    /// Renders with the values of `msg` (see the module docs for the names).
    pub fn render(&self, msg: &Message, escape: Escape) -> String {
        self.render_with(|name| message_var(msg, name), escape)
    }

    /// Renders with values from `lookup`; names it answers `None` for are
    /// kept verbatim.
    pub fn render_with<'a>(
        &self,
        lookup: impl Fn(&str) -> Option<Cow<'a, str>>,
        escape: Escape,
    ) -> String {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text(text) => out.push_str(text),
                Part::Var { name, source } => match lookup(name) {
                    Some(value) => match escape {
                        Escape::None => out.push_str(&value),
                        Escape::Html => escape_html_into(&value, &mut out),
                    },
                    None => out.push_str(source),
                },
            }
        }
        out
    }
}

impl fmt::Debug for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Template")
            .field("placeholders", &self.placeholders())
            .finish_non_exhaustive()
    }
}

impl From<&str> for Template {
    fn from(source: &str) -> Self {
        Self::new(source)
    }
}

/// `after` starts right after `{{`: answers the name and the length up to and
/// including `}}` when it is a placeholder.
fn placeholder(after: &str) -> Option<(&str, usize)> {
    let bytes = after.as_bytes();
    let mut i = 0;
    while bytes.get(i) == Some(&b' ') {
        i += 1;
    }
    let start = i;
    while bytes
        .get(i)
        .is_some_and(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
    {
        i += 1;
    }
    let end = i;
    if end == start || end - start > MAX_NAME {
        return None;
    }
    while bytes.get(i) == Some(&b' ') {
        i += 1;
    }
    if after.get(i..i + 2) != Some("}}") {
        return None;
    }
    Some((&after[start..end], i + 2))
}

/// The value of placeholder `name` for `msg`.
fn message_var<'a>(msg: &'a Message, name: &str) -> Option<Cow<'a, str>> {
    match name {
        "code" => Some(Cow::Borrowed(msg.code.as_str())),
        "code_spaced" => {
            let mut spaced = String::with_capacity(msg.code.len() * 2);
            for (i, c) in msg.code.chars().enumerate() {
                if i > 0 {
                    spaced.push(' ');
                }
                spaced.push(c);
            }
            Some(Cow::Owned(spaced))
        }
        "app_name" => Some(Cow::Borrowed(msg.app_name.as_str())),
        "minutes" => Some(Cow::Owned(msg.minutes().to_string())),
        other => msg.vars.get(other).map(|v| Cow::Borrowed(v.as_str())),
    }
}

/// Appends `value` to `out` with `& < > " '` escaped.
fn escape_html_into(value: &str, out: &mut String) {
    for c in value.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#x27;"),
            c => out.push(c),
        }
    }
}

/// Subject, plain text and HTML of one email.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct EmailTemplate {
    /// The `Subject` line (values not escaped; control characters removed).
    pub subject: Template,
    /// The `text/plain` part.
    pub text: Template,
    /// The `text/html` part (values HTML-escaped).
    pub html: Template,
}

impl EmailTemplate {
    /// An email template from its three parts.
    pub fn new(
        subject: impl Into<Template>,
        text: impl Into<Template>,
        html: impl Into<Template>,
    ) -> Self {
        Self {
            subject: subject.into(),
            text: text.into(),
            html: html.into(),
        }
    }

    /// Renders all three parts for `msg`.
    pub fn render(&self, msg: &Message) -> RenderedEmail {
        let subject = self
            .subject
            .render(msg, Escape::None)
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect::<String>()
            .trim()
            .to_owned();
        RenderedEmail {
            subject,
            text: self.text.render(msg, Escape::None),
            html: self.html.render(msg, Escape::Html),
        }
    }
}

/// A rendered email. Holds the code: do not log it.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RenderedEmail {
    /// Subject line.
    pub subject: String,
    /// Plain-text body.
    pub text: String,
    /// HTML body.
    pub html: String,
}

impl fmt::Debug for RenderedEmail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RenderedEmail").finish_non_exhaustive()
    }
}

/// Default SMS: one GSM-7 segment with room for a WebOTP line.
pub const DEFAULT_SMS: &str =
    "{{code}} is your {{app_name}} code. It expires in {{minutes}} minutes.";
/// Default WhatsApp message (`*…*` is bold in WhatsApp).
pub const DEFAULT_WHATSAPP: &str = "*{{code}}* is your {{app_name}} verification code. It expires in {{minutes}} minutes. Do not share it.";
/// Default text read by a voice call.
pub const DEFAULT_VOICE: &str =
    "Your {{app_name}} code is {{code_spaced}}. Again: {{code_spaced}}.";
/// Default email subject.
pub const DEFAULT_EMAIL_SUBJECT: &str = "Your {{app_name}} sign-in code";
/// Default plain-text email body.
pub const DEFAULT_EMAIL_TEXT: &str = "Your {{app_name}} sign-in code is:\n\n    {{code}}\n\nIt expires in {{minutes}} minutes. If you did not ask for it, you can ignore this email.\n";
/// Default HTML email body.
pub const DEFAULT_EMAIL_HTML: &str = "<!DOCTYPE html>\n<html><body style=\"font-family:sans-serif\">\n<p>Your {{app_name}} sign-in code is:</p>\n<p style=\"font-size:28px;font-weight:bold;letter-spacing:4px\">{{code}}</p>\n<p>It expires in {{minutes}} minutes. If you did not ask for it, you can ignore this email.</p>\n</body></html>\n";

/// Templates per channel and locale, with fallback `de-CH` → `de` → default.
///
/// `Templates::default()` holds the English defaults ([`DEFAULT_SMS`], …)
/// for every channel; [`Templates::builder`] starts from them and replaces
/// or adds what it is given.
#[derive(Clone, Debug)]
pub struct Templates {
    /// `(channel, normalised locale)`; the locale `""` is the default.
    text: HashMap<(Channel, String), Template>,
    email: HashMap<String, EmailTemplate>,
    webotp_domain: Option<String>,
}

impl Default for Templates {
    fn default() -> Self {
        let mut text = HashMap::new();
        text.insert((Channel::Sms, String::new()), Template::new(DEFAULT_SMS));
        text.insert(
            (Channel::Whatsapp, String::new()),
            Template::new(DEFAULT_WHATSAPP),
        );
        text.insert(
            (Channel::Voice, String::new()),
            Template::new(DEFAULT_VOICE),
        );
        let mut email = HashMap::new();
        email.insert(
            String::new(),
            EmailTemplate::new(
                DEFAULT_EMAIL_SUBJECT,
                DEFAULT_EMAIL_TEXT,
                DEFAULT_EMAIL_HTML,
            ),
        );
        Self {
            text,
            email,
            webotp_domain: None,
        }
    }
}

/// Builds [`Templates`]; from [`Templates::builder`]. The WebOTP domain is
/// checked by [`build`](Self::build).
#[derive(Clone, Debug, Default)]
pub struct TemplatesBuilder {
    templates: Templates,
    webotp_domain: Option<String>,
}

impl TemplatesBuilder {
    /// Sets the text template of a phone channel (SMS, WhatsApp, voice) for
    /// `locale`; `""` replaces the default. For [`Channel::Email`] it sets
    /// the plain-text body of that locale's email (starting from the email
    /// template that locale falls back to).
    #[must_use]
    pub fn text(mut self, channel: Channel, locale: &str, template: impl Into<Template>) -> Self {
        let t = &mut self.templates;
        let locale = normalise_locale(locale).unwrap_or_default();
        if channel == Channel::Email {
            let base = t.email_for(Some(&locale)).clone();
            t.email.insert(
                locale,
                EmailTemplate {
                    text: template.into(),
                    ..base
                },
            );
        } else {
            t.text.insert((channel, locale), template.into());
        }
        self
    }

    /// Sets the email template for `locale`; `""` replaces the default.
    #[must_use]
    pub fn email(mut self, locale: &str, template: EmailTemplate) -> Self {
        self.templates
            .email
            .insert(normalise_locale(locale).unwrap_or_default(), template);
        self
    }

    /// Appends the WebOTP line `@domain #code` to every SMS, after a blank
    /// line, so browsers can offer the code to the page on `domain`.
    /// [`build`](Self::build) refuses a domain that is not a plain host
    /// name (letters, digits, `-`, `.`; at most 253 characters).
    #[must_use]
    pub fn webotp_domain(mut self, domain: impl Into<String>) -> Self {
        self.webotp_domain = Some(domain.into());
        self
    }

    /// Checks the WebOTP domain and builds the registry.
    pub fn build(self) -> Result<Templates, ConfigError> {
        let mut templates = self.templates;
        if let Some(domain) = self.webotp_domain {
            let ok = !domain.is_empty()
                && domain.len() <= 253
                && domain
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
                && !domain.starts_with(['.', '-'])
                && !domain.ends_with(['.', '-']);
            if !ok {
                return Err(ConfigError::new(
                    "webotp domain",
                    "must be a plain host name such as `example.com`",
                ));
            }
            templates.webotp_domain = Some(domain.to_ascii_lowercase());
        }
        Ok(templates)
    }
}

impl Templates {
    /// A builder starting from the English defaults.
    pub fn builder() -> TemplatesBuilder {
        TemplatesBuilder::default()
    }

    /// The text template for `channel` and `locale`, after fallback. For
    /// [`Channel::Email`] it is the plain-text body.
    pub fn text_for(&self, channel: Channel, locale: Option<&str>) -> &Template {
        if channel == Channel::Email {
            return &self.email_for(locale).text;
        }
        for candidate in locale_chain(locale) {
            if let Some(t) = self.text.get(&(channel, candidate)) {
                return t;
            }
        }
        // Every phone channel has a default; SMS is the last resort for a
        // channel added later.
        self.text
            .get(&(channel, String::new()))
            .or_else(|| self.text.get(&(Channel::Sms, String::new())))
            .unwrap_or(&FALLBACK.0)
    }

    /// The email template for `locale`, after fallback.
    pub fn email_for(&self, locale: Option<&str>) -> &EmailTemplate {
        for candidate in locale_chain(locale) {
            if let Some(t) = self.email.get(&candidate) {
                return t;
            }
        }
        &FALLBACK.1
    }

    /// The text for `msg` on its channel (plain-text body for email), with
    /// the WebOTP line for SMS when configured.
    pub fn render_text(&self, msg: &Message) -> String {
        let mut text = self
            .text_for(msg.channel, msg.locale.as_deref())
            .render(msg, Escape::None);
        if msg.channel == Channel::Sms
            && let Some(domain) = &self.webotp_domain
        {
            text.push_str("\n\n@");
            text.push_str(domain);
            text.push_str(" #");
            text.push_str(&msg.code);
        }
        text
    }

    /// Subject, text and HTML for `msg`.
    pub fn render_email(&self, msg: &Message) -> RenderedEmail {
        self.email_for(msg.locale.as_deref()).render(msg)
    }
}

/// Used only if a registry was somehow left without a default.
static FALLBACK: std::sync::LazyLock<(Template, EmailTemplate)> = std::sync::LazyLock::new(|| {
    (
        Template::new(DEFAULT_SMS),
        EmailTemplate::new(
            DEFAULT_EMAIL_SUBJECT,
            DEFAULT_EMAIL_TEXT,
            DEFAULT_EMAIL_HTML,
        ),
    )
});

/// Lowercase, `_` → `-`; `None` for anything that is not a plausible BCP 47
/// tag (ASCII letters, digits, `-`; at most 35 characters).
fn normalise_locale(locale: &str) -> Option<String> {
    let locale = locale.trim();
    if locale.len() > 35
        || !locale
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return None;
    }
    Some(locale.to_ascii_lowercase().replace('_', "-"))
}

/// `de-CH-x` → `["de-ch-x", "de-ch", "de", ""]`.
fn locale_chain(locale: Option<&str>) -> Vec<String> {
    let mut chain = Vec::new();
    if let Some(mut tag) = locale.and_then(normalise_locale) {
        loop {
            let trimmed = tag.trim_end_matches('-');
            if !trimmed.is_empty() {
                chain.push(trimmed.to_owned());
            }
            match trimmed.rfind('-') {
                Some(i) => tag.truncate(i),
                None => break,
            }
        }
    }
    chain.push(String::new());
    chain
}

/// GSM 03.38 basic character set (one septet each).
const GSM7_BASIC: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
/// GSM 03.38 extension table (escape + septet: two each).
const GSM7_EXTENSION: &str = "\x0c^{}\\[~]|€";

/// Septets `text` takes in GSM-7, or `None` when a character is outside
/// GSM-7 (the message would then be sent as UCS-2, 70 characters a segment).
/// One SMS segment holds 160 septets.
///
/// ```
/// use tower_otp::notify::template::gsm7_units;
/// assert_eq!(gsm7_units("123456 is your code"), Some(19));
/// assert_eq!(gsm7_units("€"), Some(2));
/// assert_eq!(gsm7_units("😀"), None);
/// ```
pub fn gsm7_units(text: &str) -> Option<usize> {
    text.chars().try_fold(0usize, |n, c| {
        if GSM7_BASIC.contains(c) {
            Some(n + 1)
        } else if GSM7_EXTENSION.contains(c) {
            Some(n + 2)
        } else {
            None
        }
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn msg(channel: Channel) -> Message {
        Message::new(channel, "+14155550100", "123456", Duration::from_secs(600))
            .with_app_name("Acme")
    }

    #[test]
    fn placeholders_are_replaced() {
        let t = Template::new("{{code}}/{{ app_name }}/{{minutes}}/{{code_spaced}}");
        assert_eq!(
            t.render(&msg(Channel::Sms), Escape::None),
            "123456/Acme/10/1 2 3 4 5 6"
        );
        assert_eq!(
            t.placeholders(),
            ["code", "app_name", "minutes", "code_spaced"]
        );
    }

    #[test]
    fn minutes_round_up() {
        let m = Message::new(Channel::Sms, "x", "1", Duration::from_secs(61));
        assert_eq!(Template::new("{{minutes}}").render(&m, Escape::None), "2");
    }

    #[test]
    fn extra_vars_and_builtins_win() {
        let m = msg(Channel::Email)
            .with_var("name", "Ada")
            .with_var("code", "000000");
        let t = Template::new("Hi {{name}}, {{code}}");
        assert_eq!(t.render(&m, Escape::None), "Hi Ada, 123456");
    }

    #[test]
    fn unknown_and_malformed_placeholders_stay_verbatim() {
        let t = Template::new("a {{nope}} b {{ two words }} c {{code d {{}} e {{{code}}} }}{{");
        assert_eq!(
            t.render(&msg(Channel::Sms), Escape::None),
            "a {{nope}} b {{ two words }} c {{code d {{}} e {123456} }}{{"
        );
        assert_eq!(t.placeholders(), ["nope", "code"]);
    }

    #[test]
    fn values_are_not_re_expanded() {
        let m = msg(Channel::Sms).with_var("x", "{{code}}");
        assert_eq!(Template::new("{{x}}").render(&m, Escape::None), "{{code}}");
    }

    #[test]
    fn html_escapes_values_not_markup() {
        let m = msg(Channel::Email)
            .with_app_name("<script>alert('x')</script> & \"co\"")
            .with_var("name", "<b>");
        let t = Template::new("<p>{{app_name}}</p><i>{{name}}</i>");
        assert_eq!(
            t.render(&m, Escape::Html),
            "<p>&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; &quot;co&quot;</p><i>&lt;b&gt;</i>"
        );
        // Plain text is left alone.
        assert_eq!(Template::new("{{name}}").render(&m, Escape::None), "<b>");
    }

    #[test]
    fn email_defaults_render_all_parts() {
        let r = Templates::default().render_email(&msg(Channel::Email).with_app_name("A<B"));
        assert_eq!(r.subject, "Your A<B sign-in code");
        assert!(r.text.contains("123456") && r.text.contains("A<B"));
        assert!(r.html.contains("123456") && r.html.contains("A&lt;B"));
        assert!(!r.html.contains("A<B"));
        assert!(r.text.contains("10 minutes"));
    }

    #[test]
    fn subject_loses_control_characters() {
        let m = msg(Channel::Email).with_app_name("Acme\r\nBcc: evil@example.com");
        let r = Templates::default().render_email(&m);
        assert!(!r.subject.contains('\r') && !r.subject.contains('\n'));
    }

    #[test]
    fn locale_fallback_chain() {
        let t = Templates::builder()
            .text(Channel::Sms, "de", "de {{code}}")
            .text(Channel::Sms, "de-AT", Template::new("at {{code}}"))
            .text(Channel::Sms, "", "default {{code}}")
            .build()
            .unwrap();
        let render = |loc: Option<&str>| {
            let mut m = msg(Channel::Sms);
            m.locale = loc.map(str::to_owned);
            t.render_text(&m)
        };
        assert_eq!(render(Some("de-CH")), "de 123456");
        assert_eq!(render(Some("de_at")), "at 123456");
        assert_eq!(render(Some("DE")), "de 123456");
        assert_eq!(render(Some("fr-FR")), "default 123456");
        assert_eq!(render(None), "default 123456");
        assert_eq!(render(Some("../../etc")), "default 123456");
        // Other channels keep their own defaults.
        let mut wa = msg(Channel::Whatsapp);
        wa.locale = Some("de-CH".into());
        assert!(t.render_text(&wa).starts_with("*123456*"));
    }

    #[test]
    fn email_locale_fallback() {
        let t = Templates::builder()
            .email(
                "fr",
                EmailTemplate::new("Code {{app_name}}", "fr {{code}}", "<p>fr {{code}}</p>"),
            )
            .text(Channel::Email, "fr-CA", "ca {{code}}")
            .build()
            .unwrap();
        let mut m = msg(Channel::Email).with_locale("fr-BE");
        assert_eq!(t.render_email(&m).text, "fr 123456");
        m.locale = Some("fr-CA".into());
        let r = t.render_email(&m);
        assert_eq!(
            (r.subject.as_str(), r.text.as_str()),
            ("Code Acme", "ca 123456")
        );
        m.locale = Some("en".into());
        assert!(t.render_email(&m).subject.starts_with("Your Acme"));
    }

    #[test]
    fn default_sms_fits_one_gsm7_segment_with_webotp() {
        let domain = "login.a-rather-long-company-name.example"; // 40 characters
        assert_eq!(domain.len(), 40);
        let t = Templates::builder().webotp_domain(domain).build().unwrap();
        let m = Message::new(Channel::Sms, "+1", "1234567890", Duration::from_secs(6000))
            .with_app_name("An Application Name Of Forty Characters!");
        assert_eq!(m.app_name.len(), 40);
        let text = t.render_text(&m);
        let units = gsm7_units(&text).unwrap();
        assert!(units <= 160, "{units} septets: {text}");
        assert!(text.ends_with("\n\n@login.a-rather-long-company-name.example #1234567890"));
        // Without WebOTP nothing is appended.
        assert!(Templates::default().render_text(&m).ends_with("minutes."));
        // WebOTP is SMS only.
        let mut wa = m.clone();
        wa.channel = Channel::Whatsapp;
        assert!(!t.render_text(&wa).contains('@'));
    }

    #[test]
    fn webotp_domain_is_validated() {
        for bad in ["", "a b.com", "x.com #1", "-x.com", "x.com.", "ex/ample"] {
            let err = Templates::builder().webotp_domain(bad).build().unwrap_err();
            assert_eq!(err.setting, "webotp domain", "{bad}");
        }
    }

    #[test]
    fn gsm7_counting() {
        assert_eq!(gsm7_units("abc"), Some(3));
        assert_eq!(gsm7_units("[x]"), Some(5));
        assert_eq!(gsm7_units("Grüße"), Some(5));
        assert_eq!(gsm7_units("Cześć"), None);
    }
}
