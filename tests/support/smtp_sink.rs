//! A small SMTP server on loopback that captures messages: EHLO/HELO,
//! optional AUTH PLAIN/LOGIN, MAIL, RCPT, DATA, RSET, NOOP, QUIT. No TLS
//! (the notifier talks to it with `tls=none`). Plus a minimal MIME reader to
//! check what arrived.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

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
}

#[derive(Debug, Default)]
struct State {
    mails: Vec<Mail>,
    /// Reply to every RCPT with this line instead of 250 (e.g. `550 …`).
    rcpt_reply: Option<String>,
    /// Required credentials; `None`: AUTH not offered.
    credentials: Option<(String, String)>,
    auth_failures: usize,
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

    async fn start_with(credentials: Option<(String, String)>) -> Self {
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
                tokio::spawn(async move {
                    let _ = session(stream, &state).await;
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
}

async fn session(stream: TcpStream, state: &Mutex<State>) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read);
    let mut line = String::new();
    let credentials = state.lock().unwrap().credentials.clone();
    let mut helo = String::new();
    let mut auth: Option<(String, String)> = None;
    let mut mail_from: Option<String> = None;
    let mut rcpt_to: Vec<String> = Vec::new();

    macro_rules! reply {
        ($($arg:tt)*) => {{
            write.write_all(format!($($arg)*).as_bytes()).await?;
            write.write_all(b"\r\n").await?;
        }};
    }
    macro_rules! read_line {
        () => {{
            line.clear();
            if lines.read_line(&mut line).await? == 0 {
                return Ok(());
            }
            line.trim_end_matches(['\r', '\n']).to_owned()
        }};
    }

    reply!("220 sink.test ESMTP ready");
    loop {
        let command = read_line!();
        let upper = command.to_ascii_uppercase();
        let verb = upper.split(' ').next().unwrap_or("");
        match verb {
            "EHLO" => {
                helo = command[4..].trim().to_owned();
                write
                    .write_all(b"250-sink.test\r\n250-8BITMIME\r\n")
                    .await?;
                if credentials.is_some() {
                    write.write_all(b"250-AUTH PLAIN LOGIN\r\n").await?;
                }
                reply!("250 SMTPUTF8");
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
                loop {
                    let l = read_line!();
                    if l == "." {
                        break;
                    }
                    data.push_str(l.strip_prefix('.').unwrap_or(&l));
                    data.push_str("\r\n");
                }
                state.lock().unwrap().mails.push(Mail {
                    helo: helo.clone(),
                    auth: auth.clone(),
                    mail_from: mail_from.take().unwrap_or_default(),
                    rcpt_to: std::mem::take(&mut rcpt_to),
                    data,
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
                return Ok(());
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
    for line in head.split("\r\n") {
        if line.starts_with([' ', '\t']) {
            if let Some((_, v)) = headers.last_mut() {
                v.push(' ');
                v.push_str(line.trim());
            }
        } else if let Some((name, value)) = line.split_once(':') {
            headers.push((name.trim().to_owned(), value.trim().to_owned()));
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
