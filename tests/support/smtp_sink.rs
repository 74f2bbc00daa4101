//! A small SMTP server on loopback that captures messages: EHLO/HELO,
//! optional AUTH PLAIN/LOGIN, MAIL, RCPT, DATA, RSET, NOOP, QUIT, and
//! optionally TLS — STARTTLS or implicit (SMTPS) — with a certificate the
//! test made ([`TestPki`]). Plus a minimal MIME reader to check what arrived.
//!
//! Like a real relay it refuses a message with a DATA line longer than
//! 1000 octets, CRLF included (RFC 5321 §4.5.3.1.6; RFC 5322 §2.1.1's 998
//! characters + CRLF): `500 5.5.2 line too long`, and nothing is queued.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls;

/// Longest line a relay takes in DATA: 998 octets + CRLF.
pub const MAX_DATA_LINE: usize = 1000;

/// A private CA and a leaf certificate for `127.0.0.1` / `localhost` it
/// signed, made fresh per test (rcgen): the relay "behind a private CA".
#[derive(Debug)]
pub struct TestPki {
    /// The CA certificate, PEM: what the client is told to trust.
    pub ca_pem: String,
    leaf_der: Vec<u8>,
    leaf_key_der: Vec<u8>,
}

impl TestPki {
    /// A new CA and a leaf for `127.0.0.1` and `localhost`.
    pub fn new() -> Self {
        Self::for_names(&["127.0.0.1", "localhost"])
    }

    /// A new CA and a leaf for `names` (DNS names or IP addresses).
    pub fn for_names(names: &[&str]) -> Self {
        use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair, KeyUsagePurpose};
        let ca_key = KeyPair::generate().expect("CA key");
        let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        ca.distinguished_name
            .push(rcgen::DnType::CommonName, "tower-otp test CA");
        let ca_cert = ca.self_signed(&ca_key).expect("CA certificate");
        let issuer = Issuer::new(ca, ca_key);
        let leaf_key = KeyPair::generate().expect("leaf key");
        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let leaf = CertificateParams::new(names)
            .expect("leaf params")
            .signed_by(&leaf_key, &issuer)
            .expect("leaf certificate");
        Self {
            ca_pem: ca_cert.pem(),
            leaf_der: leaf.der().to_vec(),
            leaf_key_der: leaf_key.serialize_der(),
        }
    }

    fn acceptor(&self) -> TlsAcceptor {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("protocol versions")
            .with_no_client_auth()
            .with_single_cert(
                vec![self.leaf_der.clone().into()],
                rustls::pki_types::PrivateKeyDer::Pkcs8(self.leaf_key_der.clone().into()),
            )
            .expect("server certificate");
        TlsAcceptor::from(Arc::new(config))
    }
}

/// How the sink secures connections.
#[derive(Clone)]
enum Security {
    Plain,
    /// Offers STARTTLS and refuses MAIL before it.
    StartTls(TlsAcceptor),
    /// TLS from the first byte.
    Implicit(TlsAcceptor),
}

/// One message as received.
#[derive(Clone, Debug)]
pub struct Mail {
    pub helo: String,
    /// `(user, password)` the client authenticated with.
    pub auth: Option<(String, String)>,
    pub mail_from: String,
    pub rcpt_to: Vec<String>,
    /// The DATA, dot-unstuffed, CRLF line ends.
    pub data: String,
    /// Whether the message came over TLS.
    pub tls: bool,
}

#[derive(Debug, Default)]
struct State {
    mails: Vec<Mail>,
    /// Reply to every RCPT with this line instead of 250 (e.g. `550 …`).
    rcpt_reply: Option<String>,
    /// Required credentials; `None`: AUTH not offered.
    credentials: Option<(String, String)>,
    auth_failures: usize,
    /// Messages refused for a DATA line over [`MAX_DATA_LINE`].
    long_lines: usize,
    /// TLS handshakes that failed (e.g. the client did not trust us).
    tls_failures: usize,
}

/// A running sink; aborted when dropped.
#[derive(Debug)]
pub struct SmtpSink {
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
    task: JoinHandle<()>,
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl SmtpSink {
    /// A sink that accepts everything without AUTH.
    pub async fn start() -> Self {
        Self::start_with(None).await
    }

    /// A sink that offers AUTH PLAIN/LOGIN and requires `user`/`password`.
    pub async fn with_credentials(user: &str, password: &str) -> Self {
        Self::start_with(Some((user.to_owned(), password.to_owned()))).await
    }

    /// A sink that offers STARTTLS with `pki`'s leaf certificate and
    /// accepts mail only after it.
    pub async fn starttls(pki: &TestPki) -> Self {
        Self::start_secured(None, Security::StartTls(pki.acceptor())).await
    }

    /// A sink that speaks TLS from the first byte (SMTPS) with `pki`'s leaf.
    pub async fn implicit_tls(pki: &TestPki) -> Self {
        Self::start_secured(None, Security::Implicit(pki.acceptor())).await
    }

    async fn start_with(credentials: Option<(String, String)>) -> Self {
        Self::start_secured(credentials, Security::Plain).await
    }

    async fn start_secured(credentials: Option<(String, String)>, security: Security) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let addr = listener.local_addr().expect("local addr");
        let state = Arc::new(Mutex::new(State {
            credentials,
            ..State::default()
        }));
        let shared = Arc::clone(&state);
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let state = Arc::clone(&shared);
                let security = security.clone();
                tokio::spawn(async move {
                    let _ = connection(stream, &state, security).await;
                });
            }
        });
        Self { addr, state, task }
    }

    /// `smtp://127.0.0.1:port?tls=none`, with credentials when given.
    pub fn url(&self, credentials: Option<(&str, &str)>) -> String {
        match credentials {
            Some((user, password)) => format!("smtp://{user}:{password}@{}?tls=none", self.addr),
            None => format!("smtp://{}?tls=none", self.addr),
        }
    }

    /// Answer every RCPT with `line` (e.g. `"550 5.1.1 no such user"`).
    pub fn reject_rcpt(&self, line: &str) {
        self.state.lock().unwrap().rcpt_reply = Some(line.to_owned());
    }

    /// Messages accepted so far.
    pub fn mails(&self) -> Vec<Mail> {
        self.state.lock().unwrap().mails.clone()
    }

    /// Refused AUTH attempts.
    pub fn auth_failures(&self) -> usize {
        self.state.lock().unwrap().auth_failures
    }

    /// Messages refused because a DATA line was over [`MAX_DATA_LINE`].
    pub fn long_line_refusals(&self) -> usize {
        self.state.lock().unwrap().long_lines
    }

    /// TLS handshakes that failed.
    pub fn tls_failures(&self) -> usize {
        self.state.lock().unwrap().tls_failures
    }
}

async fn connection(
    stream: tokio::net::TcpStream,
    state: &Mutex<State>,
    security: Security,
) -> std::io::Result<()> {
    let handshake = |acceptor: TlsAcceptor, stream| async move {
        let tls = acceptor.accept(stream).await;
        if tls.is_err() {
            state.lock().unwrap().tls_failures += 1;
        }
        tls
    };
    match security {
        Security::Plain => session(stream, state, Mode::Plain).await.map(drop),
        Security::Implicit(acceptor) => {
            let tls = handshake(acceptor, stream).await?;
            session(tls, state, Mode::Tls { greet: true })
                .await
                .map(drop)
        }
        Security::StartTls(acceptor) => {
            if let Some(plain) = session(stream, state, Mode::OfferStartTls).await? {
                let tls = handshake(acceptor, plain).await?;
                session(tls, state, Mode::Tls { greet: false }).await?;
            }
            Ok(())
        }
    }
}

/// Where a session stands with TLS.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Plain,
    /// Plain, offering STARTTLS; MAIL is refused until the upgrade.
    OfferStartTls,
    /// Over TLS; `greet`: send the 220 greeting (not after STARTTLS).
    Tls {
        greet: bool,
    },
}

/// One SMTP session over `stream`. Returns the stream when the client
/// asked for STARTTLS (the caller upgrades it and runs a new session).
async fn session<S>(stream: S, state: &Mutex<State>, mode: Mode) -> std::io::Result<Option<S>>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut conn = BufReader::new(stream);
    let tls = matches!(mode, Mode::Tls { .. });
    let mut line = String::new();
    let credentials = state.lock().unwrap().credentials.clone();
    let mut helo = String::new();
    let mut auth: Option<(String, String)> = None;
    let mut mail_from: Option<String> = None;
    let mut rcpt_to: Vec<String> = Vec::new();

    macro_rules! reply {
        ($($arg:tt)*) => {{
            conn.write_all(format!($($arg)*).as_bytes()).await?;
            conn.write_all(b"\r\n").await?;
            conn.flush().await?;
        }};
    }
    macro_rules! read_raw_line {
        () => {{
            line.clear();
            if conn.read_line(&mut line).await? == 0 {
                return Ok(None);
            }
            line.len()
        }};
    }
    macro_rules! read_line {
        () => {{
            let _ = read_raw_line!();
            line.trim_end_matches(['\r', '\n']).to_owned()
        }};
    }

    if mode != (Mode::Tls { greet: false }) {
        reply!("220 sink.test ESMTP ready");
    }
    loop {
        let command = read_line!();
        let upper = command.to_ascii_uppercase();
        let verb = upper.split(' ').next().unwrap_or("");
        match verb {
            "EHLO" => {
                helo = command[4..].trim().to_owned();
                conn.write_all(b"250-sink.test\r\n250-8BITMIME\r\n").await?;
                if mode == Mode::OfferStartTls {
                    conn.write_all(b"250-STARTTLS\r\n").await?;
                }
                if credentials.is_some() {
                    conn.write_all(b"250-AUTH PLAIN LOGIN\r\n").await?;
                }
                reply!("250 SMTPUTF8");
            }
            "STARTTLS" if mode == Mode::OfferStartTls => {
                reply!("220 2.0.0 Ready to start TLS");
                return Ok(Some(conn.into_inner()));
            }
            "HELO" => {
                helo = command[4..].trim().to_owned();
                reply!("250 sink.test");
            }
            "AUTH" => {
                let mut words = command.split(' ').skip(1);
                let mechanism = words.next().unwrap_or("").to_ascii_uppercase();
                let initial = words.next().map(str::to_owned);
                let given = match mechanism.as_str() {
                    "PLAIN" => {
                        let b64 = match initial {
                            Some(b64) => b64,
                            None => {
                                reply!("334 ");
                                read_line!()
                            }
                        };
                        let decoded = STANDARD.decode(b64.trim()).unwrap_or_default();
                        let parts: Vec<String> = decoded
                            .split(|b| *b == 0)
                            .map(|p| String::from_utf8_lossy(p).into_owned())
                            .collect();
                        (parts.len() == 3).then(|| (parts[1].clone(), parts[2].clone()))
                    }
                    "LOGIN" => {
                        let user = match initial {
                            Some(b64) => b64,
                            None => {
                                reply!("334 VXNlcm5hbWU6");
                                read_line!()
                            }
                        };
                        reply!("334 UGFzc3dvcmQ6");
                        let password = read_line!();
                        let d = |s: &str| {
                            String::from_utf8_lossy(&STANDARD.decode(s.trim()).unwrap_or_default())
                                .into_owned()
                        };
                        Some((d(&user), d(&password)))
                    }
                    _ => None,
                };
                if given.is_some() && given == credentials {
                    auth = given;
                    reply!("235 2.7.0 Authentication successful");
                } else {
                    state.lock().unwrap().auth_failures += 1;
                    reply!("535 5.7.8 Authentication credentials invalid");
                }
            }
            "MAIL" => {
                if mode == Mode::OfferStartTls {
                    reply!("530 5.7.0 Must issue a STARTTLS command first");
                    continue;
                }
                if credentials.is_some() && auth.is_none() {
                    reply!("530 5.7.0 Authentication required");
                    continue;
                }
                mail_from = Some(angle(&command));
                rcpt_to.clear();
                reply!("250 2.1.0 OK");
            }
            "RCPT" => {
                if mail_from.is_none() {
                    reply!("503 5.5.1 MAIL first");
                    continue;
                }
                let rejection = state.lock().unwrap().rcpt_reply.clone();
                match rejection {
                    Some(line) => reply!("{line}"),
                    None => {
                        rcpt_to.push(angle(&command));
                        reply!("250 2.1.5 OK");
                    }
                }
            }
            "DATA" => {
                if rcpt_to.is_empty() {
                    reply!("554 5.5.1 No valid recipients");
                    continue;
                }
                reply!("354 End data with <CR><LF>.<CR><LF>");
                let mut data = String::new();
                let mut too_long = false;
                loop {
                    // Octets of the line as sent, CRLF included.
                    too_long |= read_raw_line!() > MAX_DATA_LINE;
                    let l = line.trim_end_matches(['\r', '\n']).to_owned();
                    if l == "." {
                        break;
                    }
                    data.push_str(l.strip_prefix('.').unwrap_or(&l));
                    data.push_str("\r\n");
                }
                let (from, to) = (mail_from.take(), std::mem::take(&mut rcpt_to));
                if too_long {
                    state.lock().unwrap().long_lines += 1;
                    reply!("500 5.5.2 Line too long (RFC 5321 4.5.3.1.6)");
                    continue;
                }
                state.lock().unwrap().mails.push(Mail {
                    helo: helo.clone(),
                    auth: auth.clone(),
                    mail_from: from.unwrap_or_default(),
                    rcpt_to: to,
                    data,
                    tls,
                });
                reply!("250 2.0.0 OK queued as SINK1");
            }
            "RSET" => {
                mail_from = None;
                rcpt_to.clear();
                reply!("250 2.0.0 OK");
            }
            "NOOP" => reply!("250 2.0.0 OK"),
            "QUIT" => {
                reply!("221 2.0.0 Bye");
                return Ok(None);
            }
            _ => reply!("502 5.5.2 Command not recognized"),
        }
    }
}

/// The address between `<` and `>`.
fn angle(command: &str) -> String {
    let start = command.find('<').map_or(0, |i| i + 1);
    let end = command[start..]
        .find('>')
        .map_or(command.len(), |i| start + i);
    command[start..end].to_owned()
}

/// A parsed message: top-level headers and the decoded text/plain and
/// text/html bodies (from a multipart or a single part).
#[derive(Debug, Default)]
pub struct Parsed {
    pub headers: Vec<(String, String)>,
    pub text: Option<String>,
    pub html: Option<String>,
}

impl Parsed {
    /// The first header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The first header `name`, unfolded and with RFC 2047 encoded-words
    /// decoded: what a mail reader shows.
    pub fn decoded_header(&self, name: &str) -> Option<String> {
        self.header(name).map(decode_rfc2047)
    }
}

/// Decodes RFC 2047 encoded-words (`=?utf-8?b?…?=` and `=?utf-8?q?…?=`);
/// whitespace between two adjacent encoded-words is dropped (§6.2).
pub fn decode_rfc2047(value: &str) -> String {
    let mut out = String::new();
    let mut rest = value;
    let mut after_word = false;
    while let Some(start) = rest.find("=?") {
        let parsed = rest[start + 2..]
            .split_once('?')
            .and_then(|(charset, tail)| {
                let (encoding, tail) = tail.split_once('?')?;
                let end = tail.find("?=")?;
                Some((charset, encoding, &tail[..end], &tail[end + 2..]))
            });
        let Some((charset, encoding, text, tail)) = parsed else {
            break;
        };
        assert!(charset.eq_ignore_ascii_case("utf-8"), "charset {charset}");
        let between = &rest[..start];
        if !(after_word && between.chars().all(|c| c == ' ' || c == '\t')) {
            out.push_str(between);
        }
        let bytes = if encoding.eq_ignore_ascii_case("b") {
            STANDARD.decode(text).expect("valid base64 encoded-word")
        } else {
            let mut bytes = Vec::new();
            let mut i = 0;
            let raw = text.as_bytes();
            while i < raw.len() {
                match raw[i] {
                    b'_' => bytes.push(b' '),
                    b'=' => {
                        let hex = std::str::from_utf8(&raw[i + 1..i + 3]).expect("hex");
                        bytes.push(u8::from_str_radix(hex, 16).expect("valid Q escape"));
                        i += 2;
                    }
                    b => bytes.push(b),
                }
                i += 1;
            }
            bytes
        };
        out.push_str(&String::from_utf8(bytes).expect("utf-8 encoded-word"));
        rest = tail;
        after_word = true;
    }
    out.push_str(rest);
    out
}

/// Parses `data` as a MIME message (enough for what lettre writes).
pub fn parse_mime(data: &str) -> Parsed {
    let (headers, body) = split_entity(data);
    let mut parsed = Parsed {
        headers: headers.clone(),
        ..Parsed::default()
    };
    collect_parts(&headers, body, &mut parsed);
    parsed
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> &'a str {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map_or("", |(_, v)| v.as_str())
}

fn collect_parts(headers: &[(String, String)], body: &str, out: &mut Parsed) {
    let content_type = header(headers, "content-type").to_ascii_lowercase();
    if content_type.starts_with("multipart/") {
        let raw = header(headers, "content-type");
        let boundary = raw
            .split(';')
            .filter_map(|p| p.trim().split_once('='))
            .find(|(k, _)| k.eq_ignore_ascii_case("boundary"))
            .map(|(_, v)| v.trim_matches('"').to_owned())
            .expect("multipart without boundary");
        let delimiter = format!("--{boundary}");
        for chunk in body.split(&delimiter).skip(1) {
            if chunk.starts_with("--") {
                break;
            }
            let chunk = chunk.strip_prefix("\r\n").unwrap_or(chunk);
            let (h, b) = split_entity(chunk);
            collect_parts(&h, b, out);
        }
        return;
    }
    let decoded = match header(headers, "content-transfer-encoding")
        .to_ascii_lowercase()
        .as_str()
    {
        "base64" => {
            let compact: String = body.chars().filter(|c| !c.is_whitespace()).collect();
            String::from_utf8(STANDARD.decode(compact).expect("valid base64")).expect("utf-8")
        }
        "quoted-printable" => decode_qp(body),
        _ => body.to_owned(),
    };
    if content_type.starts_with("text/html") {
        out.html = Some(decoded);
    } else if content_type.starts_with("text/plain") || content_type.is_empty() {
        out.text = Some(decoded);
    }
}

/// Splits an entity into unfolded headers and body.
fn split_entity(data: &str) -> (Vec<(String, String)>, &str) {
    let (head, body) = data.split_once("\r\n\r\n").unwrap_or((data, ""));
    let mut headers: Vec<(String, String)> = Vec::new();
    // RFC 5322 §2.2.3: unfolding removes each CRLF that precedes
    // whitespace, and nothing else.
    for line in head.split("\r\n") {
        if line.starts_with([' ', '\t']) {
            if let Some((_, v)) = headers.last_mut() {
                v.push_str(line);
            }
        } else if let Some((name, value)) = line.split_once(':') {
            headers.push((name.trim().to_owned(), value.trim_start().to_owned()));
        }
    }
    (headers, body)
}

fn decode_qp(body: &str) -> String {
    let mut out = Vec::new();
    for line in body.split("\r\n") {
        let (line, soft) = match line.strip_suffix('=') {
            Some(l) => (l, true),
            None => (line, false),
        };
        let bytes = line.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'=' {
                let hex = line.get(i + 1..i + 3).unwrap_or("");
                out.push(u8::from_str_radix(hex, 16).expect("valid quoted-printable escape"));
                i += 3;
            } else {
                out.push(bytes[i]);
                i += 1;
            }
        }
        if !soft {
            out.extend_from_slice(b"\r\n");
        }
    }
    // The split adds one line end too many.
    out.truncate(out.len().saturating_sub(2));
    String::from_utf8(out).expect("utf-8")
}
