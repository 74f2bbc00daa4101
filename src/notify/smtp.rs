//! `SmtpEmail`: multipart text + HTML email through an SMTP relay (lettre).

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use lettre::message::header::{HeaderName, HeaderValue, Headers};
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use super::builder::templates_option;
use super::template::Templates;
use super::{Channel, Delivery, Message, Notifier, NotifyError};
use crate::error::ConfigError;

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// RFC 5322 §2.1.1: a line SHOULD be at most 78 characters, CRLF excluded.
const SHOULD_LINE: usize = 78;
/// RFC 5322 §2.1.1 / RFC 5321 §4.5.3.1.6: a line MUST be at most 998
/// octets, CRLF excluded; relays refuse longer ones.
const MUST_LINE: usize = 998;
/// Bytes of subject per RFC 2047 encoded-word: 42 bytes are 56 base64
/// characters, 68 with `=?utf-8?b?` and `?=`, so even the first line
/// (`Subject: ` + word) stays within 78.
const ENCODED_WORD_BYTES: usize = 42;

/// How the connection to the relay is secured.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SmtpTls {
    /// TLS from the first byte ("SMTPS", port 465). `smtps://`.
    Implicit,
    /// Plain connection upgraded with STARTTLS, which the server *must*
    /// offer (port 587). `smtp://` (the default) or `?tls=required`.
    StartTls,
    /// STARTTLS when the server offers it, else plain: open to
    /// man-in-the-middle downgrade. `?tls=opportunistic`.
    Opportunistic,
    /// No TLS at all, for a relay on the same host (port 25). `?tls=none`.
    None,
}

/// Where and how to reach the SMTP relay. The password is redacted from `Debug`.
///
/// `SMTP_URL` forms ([`SmtpConfig::parse_url`]):
///
/// | URL | security | default port |
/// |---|---|---|
/// | `smtps://user:pass@smtp.example.com` | implicit TLS | 465 |
/// | `smtp://user:pass@smtp.example.com` | STARTTLS, required | 587 |
/// | `smtp://…?tls=required` | the same, spelled out | 587 |
/// | `smtp://…?tls=opportunistic` | STARTTLS if offered (not for production) | 587 |
/// | `smtp://localhost:2525?tls=none` | none (local relays, tests) | 25 |
///
/// User and password are optional and percent-decoded (`%40` for `@`).
/// An IPv6 host is written in brackets (`smtp://[::1]:25?tls=none`).
/// Credentials over `tls=none` are refused (by `parse_url`, and by
/// [`SmtpEmailBuilder::build`] for a config written in code) unless the
/// host is loopback (`localhost`, `127.0.0.0/8`, `::1`): they would cross
/// the network in clear text.
///
/// The relay's certificate is checked against the Mozilla roots (webpki)
/// and the host name. A relay behind a private CA:
/// [`with_root_certificate`](Self::with_root_certificate) adds that CA
/// (from the environment: `SMTP_CA_FILE`, a PEM file).
#[derive(Clone, PartialEq, Eq)]
pub struct SmtpConfig {
    host: String,
    port: u16,
    tls: SmtpTls,
    credentials: Option<(String, String)>,
    timeout: Duration,
    /// Extra trusted roots, PEM, as given.
    roots: Vec<Vec<u8>>,
}

impl fmt::Debug for SmtpConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls)
            .field(
                "credentials",
                &self
                    .credentials
                    .as_ref()
                    .map(|(user, _)| (user, "<redacted>")),
            )
            .field("timeout", &self.timeout)
            .field("extra_roots", &self.roots.len())
            .finish()
    }
}

fn url_error(reason: &'static str) -> ConfigError {
    ConfigError::new("SMTP_URL", reason)
}

fn default_port(tls: SmtpTls) -> u16 {
    match tls {
        SmtpTls::Implicit => 465,
        SmtpTls::StartTls | SmtpTls::Opportunistic => 587,
        SmtpTls::None => 25,
    }
}

fn percent_decode(s: &str) -> Result<String, ConfigError> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| url_error("has a bad %-escape in the user or password"))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| url_error("user or password is not UTF-8"))
}

fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

impl SmtpConfig {
    /// A relay at `host` secured with `tls`, on that mode's default port.
    pub fn new(host: impl Into<String>, tls: SmtpTls) -> Self {
        Self {
            host: host.into(),
            port: default_port(tls),
            tls,
            credentials: None,
            timeout: DEFAULT_TIMEOUT,
            roots: Vec::new(),
        }
    }

    /// Parses an `SMTP_URL` (forms in the type docs).
    pub fn parse_url(url: &str) -> Result<Self, ConfigError> {
        let url = url.trim();
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| url_error("must start with smtp:// or smtps://"))?;
        let (rest, query) = match rest.split_once('?') {
            Some((rest, query)) => (rest, Some(query)),
            None => (rest, None),
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.contains('/') {
            return Err(url_error("must not have a path"));
        }
        let mut tls = match scheme.to_ascii_lowercase().as_str() {
            "smtps" => SmtpTls::Implicit,
            "smtp" => SmtpTls::StartTls,
            _ => return Err(url_error("must start with smtp:// or smtps://")),
        };
        for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            match pair.split_once('=') {
                Some(("tls", value)) if tls != SmtpTls::Implicit => {
                    tls = match value {
                        "required" => SmtpTls::StartTls,
                        "opportunistic" => SmtpTls::Opportunistic,
                        "none" => SmtpTls::None,
                        _ => return Err(url_error("tls= takes required, opportunistic or none")),
                    };
                }
                Some(("tls", _)) => {
                    return Err(url_error("smtps:// is always TLS; tls= goes with smtp://"));
                }
                _ => return Err(url_error("the only query parameter is tls=")),
            }
        }
        let (userinfo, hostport) = match rest.rsplit_once('@') {
            Some((userinfo, hostport)) => (Some(userinfo), hostport),
            None => (None, rest),
        };
        let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
            let (addr, after) = v6
                .split_once(']')
                .ok_or_else(|| url_error("has an unclosed [IPv6] host"))?;
            if addr.parse::<std::net::Ipv6Addr>().is_err() {
                return Err(url_error("has an invalid IPv6 host"));
            }
            let port = match after {
                "" => None,
                p => Some(
                    p.strip_prefix(':')
                        .ok_or_else(|| url_error("has garbage after the host"))?,
                ),
            };
            (addr.to_owned(), port)
        } else {
            match hostport.rsplit_once(':') {
                Some((host, port)) => (host.to_owned(), Some(port)),
                None => (hostport.to_owned(), None),
            }
        };
        let host_ok = !host.is_empty()
            && host.len() <= 253
            && (host.contains(':')
                || host
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_'));
        if !host_ok {
            return Err(url_error("has no valid host"));
        }
        let mut config = Self::new(host, tls);
        if let Some(port) = port {
            config.port = port
                .parse::<u16>()
                .ok()
                .filter(|p| *p != 0)
                .ok_or_else(|| url_error("has an invalid port"))?;
        }
        if let Some(userinfo) = userinfo {
            let (user, password) = userinfo.split_once(':').unwrap_or((userinfo, ""));
            let user = percent_decode(user)?;
            if user.is_empty() {
                return Err(url_error("has credentials with an empty user"));
            }
            config = config.with_credentials(user, percent_decode(password)?);
            config.check_credentials()?;
        }
        Ok(config)
    }

    /// Another port.
    #[must_use]
    pub fn with_port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    /// Authenticates with `user` and `password` (AUTH PLAIN or LOGIN).
    /// Over [`SmtpTls::None`] to a host that is not loopback this is a
    /// [`ConfigError`] when the [`SmtpEmail`] is built.
    #[must_use]
    pub fn with_credentials(
        mut self,
        user: impl Into<String>,
        password: impl Into<String>,
    ) -> Self {
        self.credentials = Some((user.into(), password.into()));
        self
    }

    /// Refuses credentials that would cross the network in clear text.
    fn check_credentials(&self) -> Result<(), ConfigError> {
        if self.credentials.is_some() && self.tls == SmtpTls::None && !is_loopback(&self.host) {
            return Err(url_error(
                "credentials need TLS unless the relay is on loopback (drop tls=none)",
            ));
        }
        Ok(())
    }

    /// Time for each command of the SMTP conversation and its reply
    /// (default 10 s). Not to be confused with
    /// [`NotifierExt::timeout`](super::NotifierExt::timeout), which bounds
    /// a whole send.
    #[must_use]
    pub fn with_command_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Also trusts the CA certificate(s) in `pem` (one or more `-----BEGIN
    /// CERTIFICATE-----` blocks), besides the Mozilla roots: for a relay
    /// whose certificate a private CA issued. The certificate must still be
    /// valid for the host; no check is relaxed. Checked when the
    /// [`SmtpEmail`] is built: a PEM without a certificate, or a root with
    /// [`SmtpTls::None`], is a [`ConfigError`] there.
    #[must_use]
    pub fn with_root_certificate(mut self, pem: impl AsRef<[u8]>) -> Self {
        self.roots.push(pem.as_ref().to_vec());
        self
    }

    /// The host.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The TLS mode.
    pub fn tls(&self) -> SmtpTls {
        self.tls
    }

    /// The extra roots, parsed; a bad PEM is a [`ConfigError`].
    fn root_certificates(&self) -> Result<Vec<Certificate>, ConfigError> {
        let bad = |why: &'static str| ConfigError::new("SMTP_CA_FILE", why);
        if !self.roots.is_empty() && self.tls == SmtpTls::None {
            return Err(bad("a CA certificate needs TLS (drop tls=none)"));
        }
        self.roots
            .iter()
            .map(|pem| {
                // lettre's parser takes a PEM without certificates as an
                // empty list: insist on at least one.
                let has_certificate = pem
                    .windows(b"-----BEGIN CERTIFICATE-----".len())
                    .any(|w| w == b"-----BEGIN CERTIFICATE-----");
                if !has_certificate {
                    return Err(bad(
                        "holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
                    ));
                }
                Certificate::from_pem(pem).map_err(|_| bad("is not a valid PEM certificate"))
            })
            .collect()
    }

    fn transport(&self) -> Result<AsyncSmtpTransport<Tokio1Executor>, ConfigError> {
        self.check_credentials()?;
        let roots = self.root_certificates()?;
        let params = || {
            roots
                .iter()
                .cloned()
                .fold(TlsParameters::builder(self.host.clone()), |b, root| {
                    b.add_root_certificate(root)
                })
                .build()
                .map_err(|_| ConfigError::new("SMTP_URL", "TLS setup for this host failed"))
        };
        let tls = match self.tls {
            SmtpTls::Implicit => Tls::Wrapper(params()?),
            SmtpTls::StartTls => Tls::Required(params()?),
            SmtpTls::Opportunistic => Tls::Opportunistic(params()?),
            SmtpTls::None => Tls::None,
        };
        let mut builder =
            AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(self.host.as_str())
                .port(self.port)
                .tls(tls)
                .timeout(Some(self.timeout));
        if let Some((user, password)) = &self.credentials {
            builder = builder.credentials(Credentials::new(user.clone(), password.clone()));
        }
        Ok(builder.build())
    }
}

/// Email through an SMTP relay, as `multipart/alternative` with the text and
/// HTML parts of the [email template](super::template::EmailTemplate) for
/// the message's locale.
///
/// ```
/// use tower_otp::notify::{SmtpConfig, SmtpEmail};
///
/// # fn main() -> Result<(), tower_otp::error::ConfigError> {
/// let config = SmtpConfig::parse_url("smtp://apikey:secret@smtp.example.com:587")?;
/// let email = SmtpEmail::builder(config, "Acme <no-reply@acme.example>").build()?;
/// # let _ = email;
/// # Ok(())
/// # }
/// ```
///
/// Only [`Channel::Email`] is delivered (others fail permanently). SMTP
/// errors map by reply class: `5xx` (mailbox unknown, relay denied,
/// authentication failed) → **permanent**; `4xx` (greylisting, mailbox
/// busy), timeouts, connection and TLS failures → **retryable**. The reply
/// code is the error's [`provider_code`](NotifyError::provider_code).
/// A connection is opened per message (no pool).
///
/// # Security
///
/// Use `smtps://` or the default STARTTLS-required `smtp://` for any relay
/// off the host. The SMTP password is redacted from `Debug`. Errors carry
/// the reply code, never the server's reply text (which often quotes the
/// recipient).
#[derive(Clone)]
pub struct SmtpEmail {
    config: SmtpConfig,
    from: Mailbox,
    transport: AsyncSmtpTransport<Tokio1Executor>,
    templates: Arc<Templates>,
}

impl fmt::Debug for SmtpEmail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpEmail")
            .field("config", &self.config)
            .field("from", &self.from.to_string())
            .finish_non_exhaustive()
    }
}

/// Builds an [`SmtpEmail`]; from [`SmtpEmail::builder`] or
/// [`SmtpEmail::builder_from_env`]. The sender, the credentials and the
/// extra roots are checked by [`build`](Self::build).
#[derive(Clone)]
pub struct SmtpEmailBuilder {
    config: SmtpConfig,
    from: String,
    templates: Arc<Templates>,
}

impl fmt::Debug for SmtpEmailBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpEmailBuilder")
            .field("config", &self.config)
            .field("from", &self.from)
            .finish_non_exhaustive()
    }
}

impl SmtpEmailBuilder {
    templates_option!();

    /// Checks the sender (`"Name <addr>"` or `addr`), the credentials
    /// (not over [`SmtpTls::None`] off loopback) and the extra roots, and
    /// builds the notifier. The error names the setting that is wrong.
    pub fn build(self) -> Result<SmtpEmail, ConfigError> {
        let from: Mailbox =
            self.from.trim().parse().map_err(|_| {
                ConfigError::new("SMTP_FROM", "must be an address or `Name <address>`")
            })?;
        Ok(SmtpEmail {
            transport: self.config.transport()?,
            config: self.config,
            from,
            templates: self.templates,
        })
    }
}

impl SmtpEmail {
    /// A builder sending through `config` as `from` (`"Name <addr>"` or
    /// `addr`).
    pub fn builder(config: SmtpConfig, from: impl Into<String>) -> SmtpEmailBuilder {
        SmtpEmailBuilder {
            config,
            from: from.into(),
            templates: Arc::new(Templates::default()),
        }
    }

    /// A notifier configured from the environment
    /// ([`builder_from_env`](Self::builder_from_env), then
    /// [`build`](SmtpEmailBuilder::build)).
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::builder_from_env()?.build()
    }

    /// A builder configured from the environment, for settings the
    /// environment does not give (templates): reads `SMTP_URL`
    /// ([forms](SmtpConfig)), `SMTP_FROM` (`"Name <addr>"`) and,
    /// optionally, `SMTP_CA_FILE` (a PEM file of CA certificates to trust
    /// besides the Mozilla roots, [`SmtpConfig::with_root_certificate`]).
    /// The error names what is missing or wrong.
    pub fn builder_from_env() -> Result<SmtpEmailBuilder, ConfigError> {
        Self::builder_from_vars(|name| std::env::var(name).ok())
    }

    /// [`builder_from_env`](Self::builder_from_env) with variables from
    /// `lookup`.
    pub fn builder_from_vars(
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<SmtpEmailBuilder, ConfigError> {
        let var = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let url = var("SMTP_URL").ok_or_else(|| {
            ConfigError::new(
                "SMTP_URL",
                "is not set (e.g. smtps://user:pass@smtp.example.com)",
            )
        })?;
        let from = var("SMTP_FROM").ok_or_else(|| {
            ConfigError::new(
                "SMTP_FROM",
                "is not set (e.g. `Acme <no-reply@acme.example>`)",
            )
        })?;
        let mut config = SmtpConfig::parse_url(&url)?;
        if let Some(path) = var("SMTP_CA_FILE") {
            let pem = std::fs::read(path.trim())
                .map_err(|_| ConfigError::new("SMTP_CA_FILE", "cannot be read"))?;
            config = config.with_root_certificate(pem);
        }
        Ok(Self::builder(config, from))
    }

    /// The connection settings.
    pub fn config(&self) -> &SmtpConfig {
        &self.config
    }

    /// The email for `msg` and its `Message-ID`.
    fn compose(&self, msg: &Message) -> Result<(lettre::Message, String), NotifyError> {
        if msg.channel != Channel::Email {
            return Err(NotifyError::permanent(format!(
                "smtp: SmtpEmail does not deliver the {} channel",
                msg.channel
            ))
            .with_provider_code("unsupported_channel"));
        }
        let to: Mailbox = msg.to.parse().map_err(|_| {
            NotifyError::permanent("smtp: the recipient is not a valid address")
                .with_provider_code("invalid_recipient")
        })?;
        let rendered = msg.templates_or(&self.templates).render_email(msg);
        let id = format!(
            "<{:032x}@{}>",
            rand::random::<u128>(),
            self.from.email.domain()
        );
        let email = lettre::Message::builder()
            .from(self.from.clone())
            .to(to)
            .raw_header(subject_header(&rendered.subject))
            .message_id(Some(id.clone()))
            .multipart(MultiPart::alternative_plain_html(
                rendered.text.clone(),
                rendered.html.clone(),
            ))
            .map_err(|e| NotifyError::permanent("smtp: cannot build the message").with_source(e))?;
        Ok((email, id))
    }
}

/// The `Subject` header for `subject`, every line within 78 octets.
///
/// lettre encodes non-ASCII words (RFC 2047) and folds at spaces, but
/// writes a run of ASCII without a space as one line, however long (a long
/// `{{app_name}}`, a URL): past 998 octets a relay refuses the message.
/// When lettre's encoding has a line over 78 octets, the whole subject is
/// written as RFC 2047 encoded-words of at most 42 bytes each, one per
/// folded line, as mail clients do for long subjects; a reader decodes
/// exactly the original text (whitespace between adjacent encoded-words is
/// not part of the text, RFC 2047 §6.2).
fn subject_header(subject: &str) -> HeaderValue {
    let name = || HeaderName::new_from_ascii_str("Subject");
    let lettre = HeaderValue::new(name(), subject.to_owned());
    let mut headers = Headers::new();
    headers.insert_raw(lettre.clone());
    let formatted = headers.to_string();
    if formatted
        .split("\r\n")
        .all(|line| line.len() <= SHOULD_LINE)
    {
        return lettre;
    }
    let mut encoded = String::with_capacity(subject.len() * 2);
    let mut rest = subject;
    while !rest.is_empty() {
        let mut end = rest.len().min(ENCODED_WORD_BYTES);
        while !rest.is_char_boundary(end) {
            end -= 1;
        }
        if !encoded.is_empty() {
            encoded.push_str("\r\n ");
        }
        encoded.push_str("=?utf-8?b?");
        encoded.push_str(&STANDARD.encode(&rest.as_bytes()[..end]));
        encoded.push_str("?=");
        rest = &rest[end..];
    }
    // Pure ASCII (base64 and the encoded-word markers) folded with CRLF +
    // space: nothing of the subject reaches the header unencoded.
    HeaderValue::dangerous_new_pre_encoded(name(), subject.to_owned(), encoded)
}

/// The first line of `email` longer than 998 octets (CRLF excluded), if any.
fn overlong_line(email: &[u8]) -> Option<usize> {
    email
        .split(|b| *b == b'\n')
        .map(|line| line.strip_suffix(b"\r").unwrap_or(line).len())
        .find(|len| *len > MUST_LINE)
}

/// Whether a connection error is a failed TLS handshake (an untrusted or
/// wrong-name certificate, no shared cipher): lettre reports those as
/// connection errors, with rustls' error inside an `io::Error` of kind
/// `InvalidData`.
fn is_handshake_failure(e: &lettre::transport::smtp::Error) -> bool {
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        if cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::InvalidData)
        {
            return true;
        }
        source = cause.source();
    }
    false
}

/// Maps a lettre error by SMTP reply class; never includes the reply text.
fn smtp_error(e: lettre::transport::smtp::Error) -> NotifyError {
    let code = e.status().map(|c| c.to_string());
    let err = if e.is_permanent() {
        NotifyError::permanent(format!(
            "smtp: server refused with {}",
            code.as_deref().unwrap_or("5xx")
        ))
    } else if e.is_transient() {
        NotifyError::retryable(format!(
            "smtp: server deferred with {}",
            code.as_deref().unwrap_or("4xx")
        ))
    } else if e.is_timeout() {
        return NotifyError::retryable("smtp: timed out").with_provider_code("timeout");
    } else if e.is_response() {
        // A reply we could not parse: its text is not ours to log.
        return NotifyError::retryable("smtp: unreadable server reply")
            .with_provider_code("protocol");
    } else if e.is_tls() || is_handshake_failure(&e) {
        return NotifyError::retryable("smtp: TLS failed")
            .with_provider_code("tls")
            .with_source(e);
    } else {
        return NotifyError::retryable("smtp: connection failed")
            .with_provider_code("connect")
            .with_source(e);
    };
    match code {
        Some(code) => err.with_provider_code(code),
        None => err,
    }
}

impl Notifier for SmtpEmail {
    async fn send(&self, msg: &Message) -> Result<Delivery, NotifyError> {
        let (email, id) = self.compose(msg)?;
        let raw = email.formatted();
        // Headers are folded and bodies transfer-encoded, so this holds; the
        // check keeps it so for anything lettre writes in future (a From
        // name, a recipient): refuse here rather than at the relay.
        if let Some(len) = overlong_line(&raw) {
            return Err(NotifyError::permanent(format!(
                "smtp: the message has a line of {len} octets (RFC 5322 allows 998)"
            ))
            .with_provider_code("line_too_long"));
        }
        match self.transport.send_raw(email.envelope(), &raw).await {
            Ok(_) => Ok(Delivery::with_id(id)),
            Err(e) => {
                let err = smtp_error(e);
                tracing::debug!(
                    code = err.provider_code().unwrap_or(""),
                    "smtp: message not accepted"
                );
                Err(err)
            }
        }
    }

    /// Connects to the relay (TLS and AUTH as configured) and sends `NOOP`:
    /// the relay is reachable and takes our credentials. No message is sent.
    async fn ready(&self) -> Option<Result<(), NotifyError>> {
        Some(match self.transport.test_connection().await {
            Ok(true) => Ok(()),
            Ok(false) => Err(
                NotifyError::retryable("smtp: the relay did not answer NOOP")
                    .with_provider_code("noop"),
            ),
            Err(e) => Err(smtp_error(e)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build(config: SmtpConfig, from: &str) -> Result<SmtpEmail, ConfigError> {
        SmtpEmail::builder(config, from).build()
    }

    fn from_vars(lookup: impl Fn(&str) -> Option<String>) -> Result<SmtpEmail, ConfigError> {
        SmtpEmail::builder_from_vars(lookup)?.build()
    }

    #[test]
    fn url_forms() {
        let c = SmtpConfig::parse_url("smtp://user:p%40ss@smtp.example.com:587").unwrap();
        assert_eq!(
            (c.host(), c.port(), c.tls()),
            ("smtp.example.com", 587, SmtpTls::StartTls)
        );
        assert_eq!(c.credentials, Some(("user".into(), "p@ss".into())));
        let c = SmtpConfig::parse_url("smtps://u:p@mail.example.com").unwrap();
        assert_eq!((c.port(), c.tls()), (465, SmtpTls::Implicit));
        let c = SmtpConfig::parse_url("smtp://relay.example.com").unwrap();
        assert_eq!(
            (c.port(), c.tls(), c.credentials.is_none()),
            (587, SmtpTls::StartTls, true)
        );
        let c = SmtpConfig::parse_url("smtp://localhost:2525?tls=none").unwrap();
        assert_eq!(
            (c.host(), c.port(), c.tls()),
            ("localhost", 2525, SmtpTls::None)
        );
        let c = SmtpConfig::parse_url("smtp://relay.example.com/?tls=opportunistic").unwrap();
        assert_eq!((c.port(), c.tls()), (587, SmtpTls::Opportunistic));
        let c = SmtpConfig::parse_url("smtp://[::1]:2525?tls=none").unwrap();
        assert_eq!((c.host(), c.port()), ("::1", 2525));
        let c = SmtpConfig::parse_url("smtp://u:p@127.0.0.1:2525?tls=none").unwrap();
        assert!(c.credentials.is_some());
        let c = SmtpConfig::parse_url("smtp://relay?tls=none").unwrap();
        assert_eq!(c.port(), 25);
    }

    #[test]
    fn bad_urls_say_why() {
        for bad in [
            "relay.example.com",
            "http://relay.example.com",
            "smtp://",
            "smtp://host:0",
            "smtp://host:99999",
            "smtp://host/path",
            "smtp://host?tls=maybe",
            "smtp://host?foo=bar",
            "smtps://host?tls=none",
            "smtp://u:p@relay.example.com?tls=none",
            "smtp://u:%zz@host",
            "smtp://[::1",
            "smtp://ho st",
        ] {
            let err = SmtpConfig::parse_url(bad).unwrap_err();
            assert_eq!(err.setting, "SMTP_URL", "{bad}");
        }
    }

    #[test]
    fn clear_text_credentials_off_loopback_are_refused_at_build() {
        let config = SmtpConfig::new("relay.example.com", SmtpTls::None).with_credentials("u", "p");
        assert_eq!(
            build(config, "a@b.example").unwrap_err().setting,
            "SMTP_URL"
        );
        let local = SmtpConfig::new("127.0.0.1", SmtpTls::None).with_credentials("u", "p");
        assert!(build(local, "a@b.example").is_ok());
        let tls =
            SmtpConfig::new("relay.example.com", SmtpTls::StartTls).with_credentials("u", "p");
        assert!(build(tls, "a@b.example").is_ok());
    }

    #[test]
    fn root_certificates_are_checked_at_build() {
        let config = SmtpConfig::new("relay.example.com", SmtpTls::StartTls);
        for bad in [
            &b""[..],
            b"not a certificate",
            b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        ] {
            let err = build(config.clone().with_root_certificate(bad), "a@b.example").unwrap_err();
            assert_eq!(err.setting, "SMTP_CA_FILE");
        }
        let broken = b"-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n";
        let err = build(config.with_root_certificate(broken), "a@b.example").unwrap_err();
        assert_eq!(err.setting, "SMTP_CA_FILE");
        let plain = SmtpConfig::new("localhost", SmtpTls::None)
            .with_root_certificate(b"-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n");
        let err = build(plain, "a@b.example").unwrap_err();
        assert_eq!(err.setting, "SMTP_CA_FILE");
        let lookup = |k: &str| match k {
            "SMTP_URL" => Some("smtps://relay.example.com".to_owned()),
            "SMTP_FROM" => Some("a@b.example".to_owned()),
            "SMTP_CA_FILE" => Some("/nonexistent/ca.pem".to_owned()),
            _ => None,
        };
        assert_eq!(from_vars(lookup).unwrap_err().setting, "SMTP_CA_FILE");
    }

    #[test]
    fn short_subjects_keep_lettres_encoding() {
        let h = subject_header("Your Acme sign-in code");
        let mut headers = Headers::new();
        headers.insert_raw(h);
        assert_eq!(headers.to_string(), "Subject: Your Acme sign-in code\r\n");
    }

    #[test]
    fn long_words_become_folded_encoded_words() {
        for subject in [
            "x".repeat(3000),
            format!("Your {} code", "x".repeat(100)),
            format!("a  {}  b", "c".repeat(100)),
        ] {
            let mut headers = Headers::new();
            headers.insert_raw(subject_header(&subject));
            let text = headers.to_string();
            let mut decoded = Vec::new();
            for line in text.trim_end().split("\r\n") {
                assert!(line.len() <= SHOULD_LINE, "{line}");
                let word = line
                    .trim_start_matches("Subject:")
                    .trim_start()
                    .strip_prefix("=?utf-8?b?")
                    .and_then(|w| w.strip_suffix("?="))
                    .expect("an encoded-word per line");
                decoded.extend(STANDARD.decode(word).unwrap());
            }
            assert_eq!(String::from_utf8(decoded).unwrap(), subject);
        }
    }

    #[test]
    fn overlong_lines_are_found() {
        assert_eq!(overlong_line(b"a\r\nb\r\n"), None);
        let mut long = vec![b'x'; 998];
        assert_eq!(overlong_line(&long), None);
        long.extend_from_slice(b"y\r\n");
        assert_eq!(overlong_line(&long), Some(999));
    }

    #[test]
    fn from_vars_and_redaction() {
        let err = from_vars(|_| None).unwrap_err();
        assert_eq!(err.setting, "SMTP_URL");
        let err = from_vars(|k| (k == "SMTP_URL").then(|| "smtp://h".to_owned())).unwrap_err();
        assert_eq!(err.setting, "SMTP_FROM");
        let lookup = |k: &str| match k {
            "SMTP_URL" => Some("smtps://me:hunter2@smtp.example.com".to_owned()),
            "SMTP_FROM" => Some("not an address".to_owned()),
            _ => None,
        };
        assert_eq!(from_vars(lookup).unwrap_err().setting, "SMTP_FROM");
        let lookup = |k: &str| match k {
            "SMTP_URL" => Some("smtps://me:hunter2@smtp.example.com".to_owned()),
            "SMTP_FROM" => Some("Acme Login <no-reply@acme.example>".to_owned()),
            _ => None,
        };
        let email = from_vars(lookup).unwrap();
        let debug = format!("{email:?}");
        assert!(!debug.contains("hunter2"), "{debug}");
        assert!(debug.contains("Acme Login"), "{debug}");
    }
}
