//! README.md, used the way a reader uses it.
//!
//! * Every ```rust block is a whole program (no hidden `# ` lines), pasted
//!   into a fresh Cargo project whose `[dependencies]` are the README's
//!   ```toml block — with the `tower-otp` line a snippet names in its first
//!   comment (`// Cargo.toml: tower-otp = …`) — and `version = "0.1"`
//!   pointing at this checkout. Each is built on its own, so a snippet that
//!   forgets a feature fails here, then run: the ones that serve an app are
//!   called over a real socket.
//! * The curl walk-through runs with `bash` against the quickstart example.
//!
//! The fresh projects build in `<target>/readme-snippets` (the first run
//! compiles their dependencies once). Needs `cargo`, and for the walk-through
//! `bash` and `curl`; the Redis snippet starts a private `redis-server`. A
//! missing program skips loudly, and fails under `CI=true`.

mod support;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::http::Http;

const README: &str = include_str!("../README.md");
const SECRET: &str = "4f1c9a7e2b8d05e6c3a1f9d7b2e4c8a06d5f3b1e9c7a2d4f8b6e0c3a5d7f9b1e";

#[derive(Debug)]
struct Snippet {
    /// The section's heading, as a slug, plus a counter within the section.
    name: String,
    code: String,
}

/// The `[dependencies]` of the README's ```toml block, and its Rust blocks.
fn parse(readme: &str) -> (String, Vec<Snippet>) {
    let mut deps = None;
    let mut snippets = Vec::new();
    let mut section = String::from("top");
    let mut counter = 0;
    let mut lines = readme.lines();
    while let Some(line) = lines.next() {
        if let Some(heading) = line.strip_prefix("## ") {
            section = heading
                .to_lowercase()
                .split(|c: char| !c.is_ascii_alphanumeric())
                .filter(|w| !w.is_empty())
                .collect::<Vec<_>>()
                .join("-");
            counter = 0;
            continue;
        }
        let Some(info) = line.strip_prefix("```") else {
            continue;
        };
        let body: Vec<&str> = lines.by_ref().take_while(|l| *l != "```").collect();
        if info == "toml" && deps.is_none() {
            deps = Some(body.join("\n"));
        } else if info.split(',').next() == Some("rust") {
            counter += 1;
            snippets.push(Snippet {
                name: format!("{section}-{counter}"),
                code: body.join("\n") + "\n",
            });
        }
    }
    (
        deps.expect("README has a ```toml [dependencies] block"),
        snippets,
    )
}

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

fn have(program: &str) -> bool {
    let found = Command::new(program)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    if !found {
        assert!(!in_ci(), "{program} is required under CI=true");
        eprintln!("\n!!! SKIPPED: `{program}` is not on PATH; README check not run !!!\n");
    }
    found
}

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// This build's profile directory (`target/debug`), found from the test
/// binary itself (`target/debug/deps/readme-…`), so `CARGO_TARGET_DIR` is
/// honoured.
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent().and_then(Path::parent).unwrap().to_path_buf()
}

/// The manifest of a fresh project for `snippet`.
fn manifest(deps: &str, snippet: &Snippet) -> String {
    let own = snippet
        .code
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("// Cargo.toml: "))
        .map(str::to_owned);
    let here = format!("path = {:?}", manifest_dir().display().to_string());
    let deps: Vec<String> = deps
        .lines()
        .map(|l| match (&own, l.starts_with("tower-otp ")) {
            (Some(own), true) => own.clone(),
            _ => l.to_owned(),
        })
        .map(|l| {
            if l.starts_with("tower-otp ") {
                l.replace("version = \"0.1\"", &here)
            } else {
                l
            }
        })
        .collect();
    format!(
        "[package]\nname = \"readme-{}\"\nversion = \"0.0.0\"\nedition = \"2024\"\npublish = false\n\n\
         [workspace]\n\n{}\n",
        snippet.name,
        deps.join("\n")
    )
}

/// Writes and builds the fresh project; returns its binary.
fn build(deps: &str, snippet: &Snippet) -> PathBuf {
    let root = profile_dir().join("../readme-snippets");
    let dir = root.join(&snippet.name);
    std::fs::create_dir_all(dir.join("src")).unwrap();
    std::fs::write(dir.join("Cargo.toml"), manifest(deps, snippet)).unwrap();
    std::fs::write(dir.join("src/main.rs"), &snippet.code).unwrap();
    // Same dependency versions as this checkout.
    std::fs::copy(manifest_dir().join("Cargo.lock"), dir.join("Cargo.lock")).unwrap();
    let target = root.join("target");
    let out = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["build", "--quiet"])
        .current_dir(&dir)
        .env("CARGO_TARGET_DIR", &target)
        .env_remove("RUSTFLAGS")
        .output()
        .expect("cargo runs");
    assert!(
        out.status.success(),
        "README snippet `{}` does not build as a fresh project:\n{}\n--- code ---\n{}",
        snippet.name,
        String::from_utf8_lossy(&out.stderr),
        snippet.code
    );
    target
        .join("debug")
        .join(format!("readme-{}", snippet.name))
}

/// A running program; killed on drop. Its stdout lines arrive on `lines`.
struct Running {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Running {
    fn start(mut cmd: Command) -> Self {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("program starts");
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Self { child, lines }
    }

    /// The next stdout line that parses as JSON with a `code`.
    fn next_code(&self) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            let Ok(line) = self.lines.recv_timeout(left) else {
                break;
            };
            if let Ok(v) = serde_json::from_str::<Value>(&line)
                && let Some(code) = v["code"].as_str()
            {
                return code.to_owned();
            }
        }
        panic!("no code line on the program's stdout");
    }

    /// The next stdout line starting with `prefix`, without it.
    fn next_line_after(&self, prefix: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            let Ok(line) = self.lines.recv_timeout(left) else {
                break;
            };
            if let Some(rest) = line.strip_prefix(prefix) {
                return rest.trim().to_owned();
            }
        }
        panic!("no line starting with {prefix:?} on the program's stdout");
    }

    /// Waits for the program to finish on its own.
    fn wait_success(mut self, what: &str) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(status.success(), "{what} exited with {status}");
                return;
            }
            assert!(Instant::now() < deadline, "{what} did not finish in 20 s");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn wait_for_port(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        assert!(Instant::now() < deadline, "nothing listens on {port}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn free_port() -> u16 {
    support::unused_port()
}

/// Requests a code for `phone`, reads it from stdout, verifies it.
async fn login(http: &Http, run: &Running, phone: &str) -> Value {
    let res = http
        .post_json("/auth/otp/request", &json!({ "phone": phone }))
        .await;
    assert_eq!(res.status, 202, "{:?}", res.body);
    let code = run.next_code();
    let res = http
        .post_json("/auth/otp/verify", &json!({ "phone": phone, "code": code }))
        .await;
    assert_eq!(res.status, 200, "{:?}", res.body);
    res.json()
}

/// What each snippet must do once running, by name. A snippet the README
/// gains without an entry here fails the test, so none goes unchecked.
async fn exercise(name: &str, bin: &Path, redis_url: Option<&str>) {
    let port = free_port();
    let mut cmd = Command::new(bin);
    cmd.env("PORT", port.to_string()).env("OTP_SECRET", SECRET);
    let http = Http::new(([127, 0, 0, 1], port).into());
    match name {
        "mount-it-in-your-axum-app-1" => {
            let run = Running::start(cmd);
            wait_for_port(port).await;
            assert_eq!(http.get("/api/me", &[]).await.status, 401);
            let tokens = login(&http, &run, "+14155550100").await;
            let access = tokens["access_token"].as_str().unwrap();
            let me = http.get_bearer("/api/me", access).await;
            assert_eq!(me.status, 200);
            assert!(me.body.starts_with(b"usr_"), "{:?}", me.body);
        }
        "mount-it-in-your-axum-app-2" => {
            let run = Running::start(cmd);
            wait_for_port(port).await;
            let tokens = login(&http, &run, "+14155550100").await;
            let access = tokens["access_token"].as_str().unwrap();
            let session = http.get_bearer("/auth/session", access).await;
            assert_eq!(session.status, 200);
            assert_eq!(session.json()["subject"], "user:+14155550100");
            assert_eq!(session.json()["claims"]["plan"], "free");
        }
        "harden-your-own-routes-1" => {
            let _run = Running::start(cmd);
            wait_for_port(port).await;
            let res = http.get("/", &[]).await;
            assert_eq!(res.status, 200, "{:?}", res.body);
            assert_eq!(&res.body[..], b"hello");
            assert_eq!(res.header("x-content-type-options"), "nosniff");
            assert!(res.header("ratelimit-policy").contains("q=100"));
        }
        "api-keys-1" => {
            let run = Running::start(cmd);
            wait_for_port(port).await;
            let key = run.next_line_after("API key:");
            assert_eq!(http.get("/orders", &[]).await.status, 401);
            let res = http.get("/orders", &[("x-api-key", &key)]).await;
            assert_eq!(res.status, 200, "{:?}", res.body);
            assert_eq!(&res.body[..], b"orders");
        }
        "several-instances-the-redis-store-1" => {
            let Some(url) = redis_url else {
                eprintln!("\n!!! SKIPPED: the Redis snippet (no redis-server on PATH) !!!\n");
                return;
            };
            cmd.env("REDIS_URL", url);
            let run = Running::start(cmd);
            wait_for_port(port).await;
            let tokens = login(&http, &run, "+14155550100").await;
            assert!(tokens["refresh_token"].is_string());
        }
        "delivering-codes-1" => {
            // Builds its notifiers from the environment and exits.
            cmd.env("TWILIO_ACCOUNT_SID", "AC00000000000000000000000000000000")
                .env("TWILIO_AUTH_TOKEN", "0123456789abcdef0123456789abcdef")
                .env("TWILIO_FROM", "+15005550006")
                .env("SMTP_URL", "smtp://127.0.0.1:2525")
                .env("SMTP_FROM", "Login <login@example.com>");
            Running::start(cmd).wait_success(name);
        }
        other => panic!("README snippet `{other}` has no check in tests/readme.rs"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_rust_snippet_builds_and_runs_as_a_fresh_project() {
    let (deps, snippets) = parse(README);
    assert!(
        snippets.len() >= 5,
        "found only {} snippets",
        snippets.len()
    );
    for s in &snippets {
        let hidden: Vec<&str> = s
            .code
            .lines()
            .filter(|l| *l == "#" || l.starts_with("# "))
            .collect();
        assert!(
            hidden.is_empty(),
            "snippet `{}` has hidden lines a reader cannot see: {hidden:?}",
            s.name
        );
        assert!(
            s.code.contains("fn main"),
            "snippet `{}` is not a whole program",
            s.name
        );
    }
    if !have("cargo") {
        return;
    }
    let redis = support::redis_server::shared();
    for s in &snippets {
        let bin = tokio::task::block_in_place(|| build(&deps, s));
        exercise(&s.name, &bin, redis.map(|r| r.url()).as_deref()).await;
    }
}

/// The README's curl walk-through (the ```sh block under "Walk-through"),
/// run with bash against the quickstart example as a reader pastes it.
#[tokio::test(flavor = "multi_thread")]
async fn the_curl_walk_through_works_when_pasted() {
    let start = README
        .find("## Walk-through")
        .expect("a walk-through section");
    let block = &README[start..];
    let block = &block[block.find("```sh\n").expect("a sh block") + 6..];
    let script = &block[..block.find("\n```").unwrap()];
    if !have("bash") || !have("curl") {
        return;
    }
    let quickstart = profile_dir().join("examples/quickstart");
    assert!(
        quickstart.exists(),
        "cargo test builds the examples; {} is missing",
        quickstart.display()
    );
    let port = free_port();
    let dir = tempdir();
    let codes = dir.join("codes.jsonl");
    let mut server = Command::new(&quickstart)
        .env("PORT", port.to_string())
        .env_remove("OTP_SECRET")
        .current_dir(&dir)
        .stdout(std::fs::File::create(&codes).unwrap())
        .stderr(std::fs::File::create(dir.join("banner.txt")).unwrap())
        .spawn()
        .expect("quickstart starts");
    wait_for_port(port).await;
    // The reader's terminal: the server's stdout is the file the walk-through
    // tells them to send it to; only the port differs.
    let script = script.replace("localhost:3000", &format!("localhost:{port}"));
    let out = tokio::task::block_in_place(|| {
        Command::new("bash")
            .args(["-euo", "pipefail", "-c", &script])
            .current_dir(&dir)
            .output()
            .expect("bash runs")
    });
    let _ = server.kill();
    let _ = server.wait();
    // The banner says what the README says: the same lines take the code
    // from codes.jsonl and the access token from the verify answer.
    let banner = std::fs::read_to_string(dir.join("banner.txt")).unwrap();
    for line in script
        .lines()
        .filter(|l| l.starts_with("CODE=") || l.starts_with("ACCESS="))
    {
        assert!(
            banner.lines().any(|b| b.trim() == line),
            "the quickstart banner lacks the README's `{line}`:\n{banner}"
        );
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "walk-through failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Each step printed its status line (`curl -i` or `-w`).
    for status in ["HTTP/1.1 202", "HTTP/1.1 200", "HTTP/1.1 204"] {
        assert!(stdout.contains(status), "no {status} in:\n{stdout}");
    }
    assert!(
        !stdout.contains("HTTP/1.1 4") && !stdout.contains("HTTP/1.1 5"),
        "an error status in:\n{stdout}"
    );
}

/// The multi-tenant walk-through (the second ```sh block under "A
/// multi-tenant OTP service"), run with bash against the multi_tenant
/// example as a reader pastes it, `ADMIN_TOKEN` exported.
#[tokio::test(flavor = "multi_thread")]
async fn the_multi_tenant_walk_through_works_when_pasted() {
    let start = README
        .find("## A multi-tenant OTP service")
        .expect("a multi-tenant section");
    let section = &README[start..];
    let section = &section[..section[3..].find("\n## ").map_or(section.len(), |i| i + 3)];
    let mut blocks = section
        .split("```sh\n")
        .skip(1)
        .map(|b| &b[..b.find("\n```").unwrap()]);
    let start_block = blocks.next().expect("the block that starts the server");
    let script = blocks.next().expect("the walk-through block");
    assert!(
        start_block.contains("cargo run --example multi_tenant > codes.jsonl"),
        "{start_block}"
    );
    if !have("bash") || !have("curl") {
        return;
    }
    let example = profile_dir().join("examples/multi_tenant");
    assert!(
        example.exists(),
        "cargo test builds the examples; {} is missing",
        example.display()
    );
    let port = free_port();
    let dir = tempdir();
    let admin_token = "c7d1f8a2b9e04c6d3a5f7e1b2c8d9a0f4e6b3c1d7a9f2e5b8c0d4a6f1e3b7c9d";
    let mut server = Command::new(&example)
        .env("PORT", port.to_string())
        .env("ADMIN_TOKEN", admin_token)
        .env("OTP_SECRET", SECRET)
        .env_remove("REDIS_URL")
        .current_dir(&dir)
        .stdout(std::fs::File::create(dir.join("codes.jsonl")).unwrap())
        .stderr(std::fs::File::create(dir.join("log.txt")).unwrap())
        .spawn()
        .expect("multi_tenant starts");
    wait_for_port(port).await;
    let script = script.replace("localhost:3000", &format!("localhost:{port}"));
    let out = tokio::task::block_in_place(|| {
        Command::new("bash")
            .args(["-euo", "pipefail", "-c", &script])
            .env("ADMIN_TOKEN", admin_token)
            .current_dir(&dir)
            .output()
            .expect("bash runs")
    });
    let _ = server.kill();
    let _ = server.wait();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "walk-through failed:\n{stdout}\n{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        std::fs::read_to_string(dir.join("log.txt")).unwrap_or_default()
    );
    for status in ["HTTP/1.1 201", "HTTP/1.1 202", "HTTP/1.1 200"] {
        assert!(stdout.contains(status), "no {status} in:\n{stdout}");
    }
    assert!(
        !stdout.contains("HTTP/1.1 4") && !stdout.contains("HTTP/1.1 5"),
        "an error status in:\n{stdout}"
    );
    // The tenant's config decided the code (8 digits), and the usage the
    // last step printed counts the request and the verification.
    let codes = std::fs::read_to_string(dir.join("codes.jsonl")).unwrap();
    let line: Value = serde_json::from_str(codes.lines().last().unwrap()).unwrap();
    assert_eq!(line["code"].as_str().unwrap().len(), 8, "{line}");
    let usage: Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    let today = &usage["days"][0];
    assert_eq!(
        (
            today["otp_requested"].as_u64(),
            today["otp_verified"].as_u64(),
            today["messages_sent"].as_u64()
        ),
        (Some(1), Some(1), Some(1)),
        "{usage}"
    );
    assert!(
        stdout.contains("ratelimit-policy: \"quota-daily\";q=1000"),
        "{stdout}"
    );
}

fn tempdir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "tower-otp-readme-{}-{}",
        std::process::id(),
        rand::random::<u32>()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
