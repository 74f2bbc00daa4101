//! The quickstart's login page in a real browser.
//!
//! Headless Chromium, driven through chromedriver (W3C WebDriver), opens the
//! page the built quickstart serves, asks for a code, reads it from the
//! server's stdout (the `LogNotifier` line), types it, sees the signed-in
//! subject, reloads and stays signed in (the `HttpOnly` refresh cookie),
//! logs out and sees the form again; a wrong code and a second code asked
//! for too early show their messages. Each step leaves a screenshot under
//! `<target>/tmp/browser/<test>/` (the path is printed).
//!
//! Run: `cargo build --examples && cargo test --test browser` (`cargo test`
//! alone does not rebuild the examples for `--test browser`). Needs
//! `chromium` and `chromedriver` (Debian: `apt-get install chromium
//! chromium-driver`; `.ci/run` installs them). A missing browser, driver or
//! quickstart binary skips loudly, and fails under `CI=true`.

mod support;
#[path = "support/webdriver.rs"]
mod webdriver;

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};

use serde_json::Value;
use support::http::Http;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;
use webdriver::{Browser, GUARD};

/// The quickstart binary, running on a free port; killed on drop.
struct Quickstart {
    /// `http://127.0.0.1:<port>`: the page, and the origin it is allowed from.
    base: String,
    addr: std::net::SocketAddr,
    /// stdout lines: one JSON line per message sent.
    stdout: mpsc::UnboundedReceiver<String>,
    /// stderr lines after the banner, for failure messages.
    logs: Arc<Mutex<Vec<String>>>,
    _child: Child,
}

impl Quickstart {
    /// Starts the binary `cargo build --examples` put beside this test;
    /// `None` (skipped loudly, or failing under CI) when it is not built.
    async fn start(test: &str) -> Option<Self> {
        let exe = std::env::current_exe().expect("test binary path");
        let path = exe
            .parent()
            .and_then(|deps| deps.parent())
            .expect("target/<profile>/deps")
            .join("examples/quickstart");
        if !path.is_file() {
            webdriver::skip(
                test,
                &format!("{} is not built (cargo build --examples)", path.display()),
            );
            return None;
        }
        let mut child = Command::new(&path)
            .env("PORT", "0")
            .env("RUST_LOG", "warn")
            .env_remove("OTP_SECRET")
            .env_remove("OTP_TEST_IDENTITIES")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("the quickstart starts");
        let mut stderr = BufReader::new(child.stderr.take().unwrap()).lines();
        // The banner's first URL is the page's (`http://127.0.0.1:<port>`).
        let base = tokio::time::timeout(GUARD, async {
            let mut before = Vec::new();
            while let Some(line) = stderr.next_line().await.unwrap() {
                if let Some((_, rest)) = line.split_once("http://") {
                    let addr = rest.split_whitespace().next().unwrap_or_default();
                    return format!("http://{addr}");
                }
                before.push(line);
            }
            panic!("the quickstart exited without a banner: {before:?}");
        })
        .await
        .expect("no banner in time");
        let logs = Arc::new(Mutex::new(Vec::new()));
        let kept = Arc::clone(&logs);
        // Keep reading both pipes: a full pipe would block the server.
        tokio::spawn(async move {
            while let Ok(Some(line)) = stderr.next_line().await {
                kept.lock().unwrap().push(line);
            }
        });
        let (tx, stdout) = mpsc::unbounded_channel();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let addr = base["http://".len()..]
            .parse()
            .expect("the banner's address");
        Some(Self {
            base,
            addr,
            stdout,
            logs,
            _child: child,
        })
    }

    /// The code of the next message to `to`, from its `LogNotifier` line.
    async fn next_code(&mut self, to: &str) -> String {
        let found = tokio::time::timeout(GUARD, async {
            while let Some(line) = self.stdout.recv().await {
                let Ok(msg) = serde_json::from_str::<Value>(&line) else {
                    continue;
                };
                if msg["to"] == to {
                    return msg["code"].as_str().expect("a code").to_owned();
                }
            }
            panic!("the quickstart's stdout closed");
        })
        .await;
        found.unwrap_or_else(|_| {
            panic!(
                "no message to {to} on the quickstart's stdout; its log: {:?}",
                self.logs.lock().unwrap()
            )
        })
    }
}

/// Where `test`'s screenshots go.
fn screenshots(test: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("browser")
        .join(test)
}

/// Starts the quickstart and a browser for `test`, or says why not.
async fn start(test: &str) -> Option<(Quickstart, Browser)> {
    let server = Quickstart::start(test).await?;
    let out = screenshots(test);
    let browser = Browser::start(test, &out).await?;
    eprintln!("{test}: screenshots in {}", out.display());
    Some((server, browser))
}

/// Waits until the page shows `view` (`request`, `verify`, `signed-in`).
async fn wait_for_view(browser: &Browser, view: &str) {
    browser
        .wait_for(
            &format!("the {view} view"),
            &format!("return document.body.dataset.view === {view:?}"),
        )
        .await;
}

/// Waits until the page's message says `words`; returns the whole message.
async fn wait_for_message(browser: &Browser, words: &str) -> String {
    let text = browser
        .wait_for(
            &format!("a message with {words:?}"),
            &format!(
                "const m = document.getElementById('message').textContent; \
                 return m.includes({words:?}) ? m : null"
            ),
        )
        .await;
    text.as_str().unwrap_or_default().to_owned()
}

/// Asks for a code for `phone` through the page and reads it from stdout.
async fn request_code(server: &mut Quickstart, browser: &Browser, phone: &str) -> String {
    browser.type_into("#identifier", phone).await;
    browser.click("#request-form button[type=submit]").await;
    wait_for_view(browser, "verify").await;
    server.next_code(phone).await
}

/// Console entries the page's CSP refused (chromedriver logs them with
/// `"source":"security"`).
fn csp_refusals(console: &[Value]) -> Vec<&Value> {
    console
        .iter()
        .filter(|e| e["source"] == "security" || e.to_string().contains("Content Security Policy"))
        .collect()
}

#[tokio::test]
async fn signs_in_stays_signed_in_across_a_reload_and_logs_out() {
    const TEST: &str = "sign-in";
    const PHONE: &str = "+14155550100";
    let Some((mut server, browser)) = start(TEST).await else {
        return;
    };
    browser.goto(&server.base).await;
    wait_for_view(&browser, "request").await;
    // The page's own inline style applied: its CSP hash matched.
    let width = browser
        .eval("return getComputedStyle(document.querySelector('main')).maxWidth")
        .await;
    assert_ne!(width, "none", "the page's style did not apply");
    let code_field = browser
        .eval(
            "const c = document.getElementById('code'); \
             return [c.autocomplete, c.inputMode, document.querySelector('label[for=code]') !== null]",
        )
        .await;
    assert_eq!(
        code_field,
        serde_json::json!(["one-time-code", "numeric", true])
    );
    browser.screenshot("1-sign-in-form").await;

    let code = request_code(&mut server, &browser, PHONE).await;
    assert!(browser.text("#sent-to").await.contains(PHONE));
    wait_for_message(&browser, "on its way").await;
    browser.screenshot("2-code-sent").await;

    browser.type_into("#code", &code).await;
    browser.click("#verify-form button[type=submit]").await;
    wait_for_view(&browser, "signed-in").await;
    let subject = browser.text("#subject").await;
    assert!(subject.starts_with("usr_"), "{subject:?}");
    browser.screenshot("3-signed-in").await;
    // The access token is in no storage, the refresh cookie out of the
    // page's reach (HttpOnly); the double-submit cookie is readable.
    let storage = browser
        .eval("return [localStorage.length, sessionStorage.length, document.cookie]")
        .await;
    assert_eq!(storage[0], 0, "{storage}");
    assert_eq!(storage[1], 0, "{storage}");
    let cookies = storage[2].as_str().unwrap_or_default();
    assert!(cookies.contains("otp_csrf="), "{cookies:?}");
    assert!(!cookies.contains("otp_refresh"), "{cookies:?}");

    // A reload forgets the access token; the refresh cookie brings it back.
    browser.reload().await;
    wait_for_view(&browser, "signed-in").await;
    assert_eq!(browser.text("#subject").await, subject);
    browser.screenshot("4-reloaded-still-signed-in").await;

    browser.click("#logout").await;
    wait_for_view(&browser, "request").await;
    wait_for_message(&browser, "signed out").await;
    browser.screenshot("5-signed-out").await;
    let cookies = browser.eval("return document.cookie").await;
    assert!(
        !cookies.as_str().unwrap_or_default().contains("otp_csrf="),
        "{cookies}"
    );
    // Signed out for good: a reload shows the form, not the subject.
    browser.reload().await;
    wait_for_view(&browser, "request").await;
    assert!(browser.text("#subject").await.is_empty());

    let console = browser.console().await;
    assert!(csp_refusals(&console).is_empty(), "{console:?}");
    browser.quit().await;
}

#[tokio::test]
async fn a_wrong_code_and_a_second_code_asked_too_early_say_so() {
    const TEST: &str = "messages";
    const PHONE: &str = "+14155550101";
    let Some((mut server, browser)) = start(TEST).await else {
        return;
    };
    browser.goto(&server.base).await;
    wait_for_view(&browser, "request").await;
    let code = request_code(&mut server, &browser, PHONE).await;

    // Every digit changed: surely not the code.
    let wrong: String = code
        .bytes()
        .map(|d| char::from(b'0' + (d - b'0' + 1) % 10))
        .collect();
    browser.type_into("#code", &wrong).await;
    browser.click("#verify-form button[type=submit]").await;
    let said = wait_for_message(&browser, "not right").await;
    assert!(said.contains("expired"), "{said}");
    wait_for_view(&browser, "verify").await;
    let kind = browser
        .eval("return document.getElementById('message').dataset.kind")
        .await;
    assert_eq!(kind, "error");
    browser.screenshot("1-invalid-code").await;

    // Within the resend cooldown: 429 rate_limited, and the wait it names.
    browser.click("#restart").await;
    wait_for_view(&browser, "request").await;
    browser.type_into("#identifier", PHONE).await;
    browser.click("#request-form button[type=submit]").await;
    let said = wait_for_message(&browser, "Please wait").await;
    let seconds: u64 = said
        .split("wait ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no wait in {said:?}"));
    assert!((1..=30).contains(&seconds), "{said}");
    assert!(said.contains("seconds"), "{said}");
    browser.screenshot("2-rate-limited").await;

    let console = browser.console().await;
    assert!(csp_refusals(&console).is_empty(), "{console:?}");
    browser.quit().await;
}

/// Plain HTTP, no browser: the page carries the HTML preset and a CSP of
/// hashes; the API keeps the API preset.
#[tokio::test]
async fn the_page_and_the_api_keep_their_own_security_headers() {
    let Some(server) = Quickstart::start("headers").await else {
        return;
    };
    let http = Http::new(server.addr);
    let page = http.get("/", &[]).await;
    assert_eq!(page.status, 200);
    assert!(page.header("content-type").starts_with("text/html"));
    let csp = page.header("content-security-policy");
    for directive in [
        "default-src 'none'",
        "connect-src 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
    ] {
        assert!(csp.contains(directive), "{directive} missing in {csp}");
    }
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    for directive in ["script-src 'sha256-", "style-src 'sha256-"] {
        assert!(csp.contains(directive), "{directive} missing in {csp}");
    }
    assert_eq!(page.header("x-frame-options"), "DENY");
    assert_eq!(
        page.header("referrer-policy"),
        "strict-origin-when-cross-origin"
    );
    assert_eq!(page.header("x-content-type-options"), "nosniff");
    let body = String::from_utf8_lossy(&page.body);
    assert!(
        body.contains(r#"autocomplete="one-time-code""#) && body.contains(r#"aria-live="polite""#),
        "{body}"
    );

    for path in ["/auth/health/live", "/no-such-page"] {
        let api = http.get(path, &[]).await;
        assert_eq!(
            api.header("content-security-policy"),
            "default-src 'none'; frame-ancestors 'none'",
            "{path}"
        );
        assert_eq!(api.header("referrer-policy"), "no-referrer", "{path}");
    }
}
