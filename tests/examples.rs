//! The reference servers as built binaries: the quickstart serves a code
//! request on loopback and prints the code on stdout, secrets come from
//! `OTP_SECRET` only, and production refuses to start without one.
//!
//! The binaries are the ones `cargo test` builds next to this test
//! (`target/<profile>/examples/`); `cargo test --test examples` alone does not
//! rebuild them, so run the whole suite (or `cargo build --examples` with the
//! same features) after changing an example. A missing binary fails under
//! `CI=true` and is skipped loudly otherwise.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};

const GUARD: Duration = Duration::from_secs(30);

fn example(name: &str) -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let path = exe.parent()?.parent()?.join("examples").join(name);
    if path.is_file() {
        return Some(path);
    }
    if std::env::var_os("CI").is_some_and(|ci| ci == "true") {
        panic!("{} is not built (cargo test builds it)", path.display());
    }
    eprintln!(
        "SKIPPED: {} is not built; run the whole `cargo test` (or `cargo build --examples`) first",
        path.display()
    );
    None
}

fn spawn(path: &PathBuf, env: &[(&str, &str)]) -> Child {
    let mut cmd = Command::new(path);
    cmd.env_remove("OTP_SECRET")
        .env_remove("JWT_SECRET")
        .env_remove("REDIS_URL")
        .env("RUST_LOG", "warn")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    cmd.spawn().expect("spawn example")
}

/// Reads stderr lines until the one with `http://` and returns the address
/// after it, with the lines before it; the later lines go to `rest`.
async fn address(child: &mut Child) -> (String, Vec<String>) {
    address_and_rest(child, Arc::default()).await
}

async fn address_and_rest(
    child: &mut Child,
    rest: Arc<Mutex<Vec<String>>>,
) -> (String, Vec<String>) {
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut before = Vec::new();
    let found = tokio::time::timeout(GUARD, async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if let Some((_, rest)) = line.split_once("http://") {
                let addr = rest.split_whitespace().next().unwrap_or_default();
                return addr.to_owned();
            }
            before.push(line);
        }
        panic!("the example exited without a banner: {before:?}");
    })
    .await
    .expect("no banner in time");
    // Keep reading: a closed pipe would fail the example's later writes.
    tokio::spawn(async move {
        while let Ok(Some(line)) = lines.next_line().await {
            rest.lock().unwrap().push(line);
        }
    });
    (found, before)
}

async fn post(addr: &str, path: &str, json: &str) -> String {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let req = format!(
        "POST {path} HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{json}",
        json.len()
    );
    stream.write_all(req.as_bytes()).await.unwrap();
    let mut res = String::new();
    tokio::time::timeout(GUARD, stream.read_to_string(&mut res))
        .await
        .expect("no response in time")
        .unwrap();
    res
}

async fn request_code(child: &mut Child, addr: &str, email: &str) -> serde_json::Value {
    let res = post(
        addr,
        "/auth/otp/request",
        &format!(r#"{{"email":"{email}"}}"#),
    )
    .await;
    assert!(res.starts_with("HTTP/1.1 202"), "{res}");
    let mut stdout = BufReader::new(child.stdout.as_mut().unwrap()).lines();
    let line = tokio::time::timeout(GUARD, stdout.next_line())
        .await
        .expect("no LogNotifier line in time")
        .unwrap()
        .expect("stdout closed");
    serde_json::from_str(&line).unwrap()
}

#[cfg(feature = "moka")]
#[tokio::test]
async fn quickstart_without_otp_secret_makes_a_random_one_and_serves_a_code() {
    let Some(path) = example("quickstart") else {
        return;
    };
    let mut child = spawn(&path, &[("PORT", "0"), ("RUST_LOG", "info")]);
    let logs = Arc::new(Mutex::new(Vec::new()));
    let (addr, before) = address_and_rest(&mut child, Arc::clone(&logs)).await;
    let said = before.join("\n");
    assert!(
        said.contains("OTP_SECRET is not set") && said.contains("random"),
        "{said}"
    );
    let line = request_code(&mut child, &addr, "ada@example.com").await;
    assert_eq!(line["to"], "ada@example.com");
    let code = line["code"].as_str().unwrap();
    assert!(code.len() >= 6 && code.bytes().all(|b| b.is_ascii_digit()));
    // The router knew the client address (axum's ConnectInfo): its event
    // says `client_ip=127.0.0.1` (the log line may carry colour codes).
    // The event is logged after the code went out: wait for its line.
    let knew_ip = tokio::time::timeout(GUARD, async {
        loop {
            let found = logs.lock().unwrap().iter().any(|line| {
                let plain = strip_ansi(line);
                plain.contains("otp.sent") && plain.contains("client_ip=127.0.0.1")
            });
            if found {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(knew_ip.is_ok(), "{:?}", logs.lock().unwrap());
    // The banner's step 2 works with that code.
    let res = post(
        &addr,
        "/auth/otp/verify",
        &format!(r#"{{"email":"ada@example.com","code":"{code}"}}"#),
    )
    .await;
    assert!(res.starts_with("HTTP/1.1 200"), "{res}");
    assert!(res.contains(r#""access_token":""#), "{res}");
}

#[cfg(feature = "moka")]
#[tokio::test]
async fn quickstart_and_hyper_only_take_otp_secret() {
    for name in ["quickstart", "hyper_only"] {
        let Some(path) = example(name) else {
            return;
        };
        let secret = "kT9vQ2mX7pL4wR8zN1cB6hJ3fD5sA0gY";
        let mut child = spawn(&path, &[("PORT", "0"), ("OTP_SECRET", secret)]);
        let (addr, before) = address(&mut child).await;
        let said = before.join("\n");
        assert!(!said.contains("not set"), "{name}: {said}");
        assert!(!said.contains(secret), "{name} printed the secret");
        let line = request_code(&mut child, &addr, "bob@example.com").await;
        assert_eq!(line["to"], "bob@example.com", "{name}");
    }
}

// Built only with its `required-features` (`redis`).
#[cfg(feature = "redis")]
#[tokio::test]
async fn production_refuses_to_start_without_otp_secret() {
    let Some(path) = example("production") else {
        return;
    };
    // Nothing set: the secret is named first, before the store.
    let child = spawn(&path, &[]);
    let out = tokio::time::timeout(GUARD, child.wait_with_output())
        .await
        .expect("production kept running without OTP_SECRET")
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("OTP_SECRET must be set"), "{stderr}");
}

/// `line` without ANSI colour sequences (`ESC [ … m`).
fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c == 'm' {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}
