//! A private chromedriver driving headless Chromium, and the few W3C
//! WebDriver commands a page test needs, sent as JSON over the tests' own
//! HTTP client (`tests/support/http.rs`).
//!
//! Included by `tests/browser.rs` beside `mod support`. The WebDriver
//! protocol (<https://www.w3.org/TR/webdriver2/>) is one JSON request per
//! command; the dozen used here cost less than a client crate, whose
//! `webdriver` dependency tree this crate would build for one test.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use http::Method;
use serde_json::{Value, json};
use tokio::process::{Child, Command};

use crate::support::http::Http;

/// The longest any one step may take before the test gives up (a guard
/// against a hang, not a timing assertion).
pub(crate) const GUARD: Duration = Duration::from_secs(30);

/// The key of an element reference in WebDriver's JSON.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// Whether this run is CI's (`CI=true`), where nothing may be skipped.
pub(crate) fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// Under CI, fails with `why`; elsewhere, says loudly that `test` is skipped.
pub(crate) fn skip(test: &str, why: &str) {
    assert!(!in_ci(), "{why} (CI=true: nothing may be skipped)");
    eprintln!("\n!!! SKIPPED {test}: {why} !!!\n");
}

/// The first of `names` found on `PATH`.
fn on_path(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| names.iter().map(move |name| dir.join(name)))
        .find(|candidate| candidate.is_file())
}

/// One headless Chromium session through its own chromedriver. Dropping it
/// ends both (their process group), so a failed test leaves no browser.
pub(crate) struct Browser {
    driver: Http,
    session: String,
    chromedriver: Child,
    out: PathBuf,
}

impl Browser {
    /// Starts chromedriver and a browser whose screenshots go to `out`;
    /// `None` (after [`skip`]) when chromium or chromedriver is missing.
    pub(crate) async fn start(test: &str, out: &Path) -> Option<Self> {
        let Some(chromedriver) = on_path(&["chromedriver"]) else {
            skip(
                test,
                "chromedriver is not on PATH (Debian: apt-get install chromium chromium-driver)",
            );
            return None;
        };
        let Some(chromium) = on_path(&["chromium", "chromium-browser", "google-chrome"]) else {
            skip(
                test,
                "chromium is not on PATH (Debian: apt-get install chromium chromium-driver)",
            );
            return None;
        };
        std::fs::create_dir_all(out).expect("screenshot directory");
        let port = crate::support::unused_port();
        let mut cmd = Command::new(&chromedriver);
        cmd.arg(format!("--port={port}"))
            .arg(format!(
                "--log-path={}",
                out.join("chromedriver.log").display()
            ))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true);
        // Its own process group, which the browser it starts joins: Drop
        // ends them together.
        #[cfg(unix)]
        cmd.process_group(0);
        let chromedriver = cmd.spawn().expect("chromedriver starts");
        let mut browser = Self {
            driver: Http::new(([127, 0, 0, 1], port).into()),
            session: String::new(),
            chromedriver,
            out: out.to_path_buf(),
        };
        browser.wait_until_ready(port).await;
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": [
                    "--headless",
                    // Chromium refuses to run as root (CI) inside its
                    // sandbox; the browser only ever opens the quickstart
                    // on loopback.
                    "--no-sandbox",
                    // Containers give /dev/shm a few MiB only.
                    "--disable-dev-shm-usage",
                    "--window-size=800,900",
                ],
            },
            // The console, read by `console`: CSP refusals are logged there.
            "goog:loggingPrefs": {"browser": "ALL"},
        }}});
        let created = browser.send(Method::POST, "/session", Some(caps)).await;
        browser.session = created["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no sessionId in {created}"))
            .to_owned();
        Some(browser)
    }

    async fn wait_until_ready(&self, port: u16) {
        let ready = tokio::time::timeout(GUARD, async {
            loop {
                if tokio::net::TcpStream::connect(("127.0.0.1", port))
                    .await
                    .is_ok()
                    && self.driver.get("/status", &[]).await.json()["value"]["ready"] == true
                {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
        .await;
        assert!(ready.is_ok(), "chromedriver did not get ready on {port}");
    }

    /// One WebDriver request; its `value`, or a panic with the driver's error.
    async fn send(&self, method: Method, path: &str, body: Option<Value>) -> Value {
        let (headers, body): (&[(&str, &str)], String) = match body {
            Some(b) => (&[("content-type", "application/json")], b.to_string()),
            None => (&[], String::new()),
        };
        let reply =
            tokio::time::timeout(GUARD, self.driver.send(method.clone(), path, headers, body))
                .await
                .unwrap_or_else(|_| panic!("WebDriver {method} {path}: no answer in time"));
        let mut value = reply.json();
        assert!(
            reply.status.is_success(),
            "WebDriver {method} {path}: {} {value}",
            reply.status
        );
        value["value"].take()
    }

    /// A command of this session (`path` below `/session/{id}`).
    async fn command(&self, method: Method, path: &str, body: Option<Value>) -> Value {
        let path = format!("/session/{}{path}", self.session);
        self.send(method, &path, body).await
    }

    /// Opens `url` and waits for its `load` event.
    pub(crate) async fn goto(&self, url: &str) {
        self.command(Method::POST, "/url", Some(json!({ "url": url })))
            .await;
    }

    /// Reloads the page, as the reload button does.
    pub(crate) async fn reload(&self) {
        self.command(Method::POST, "/refresh", Some(json!({})))
            .await;
    }

    async fn element(&self, css: &str) -> String {
        let found = self
            .command(
                Method::POST,
                "/element",
                Some(json!({"using": "css selector", "value": css})),
            )
            .await;
        found[ELEMENT]
            .as_str()
            .unwrap_or_else(|| panic!("no element {css}: {found}"))
            .to_owned()
    }

    /// Empties the field at `css` and types `text` into it, key by key.
    pub(crate) async fn type_into(&self, css: &str, text: &str) {
        let el = self.element(css).await;
        self.command(
            Method::POST,
            &format!("/element/{el}/clear"),
            Some(json!({})),
        )
        .await;
        self.command(
            Method::POST,
            &format!("/element/{el}/value"),
            Some(json!({ "text": text })),
        )
        .await;
    }

    /// Clicks the element at `css` (scrolled into view, as a user would).
    pub(crate) async fn click(&self, css: &str) {
        let el = self.element(css).await;
        self.command(
            Method::POST,
            &format!("/element/{el}/click"),
            Some(json!({})),
        )
        .await;
    }

    /// The rendered text of the element at `css`.
    pub(crate) async fn text(&self, css: &str) -> String {
        let el = self.element(css).await;
        let text = self
            .command(Method::GET, &format!("/element/{el}/text"), None)
            .await;
        text.as_str().unwrap_or_default().to_owned()
    }

    /// Runs `script` (a function body: `return …`) in the page.
    pub(crate) async fn eval(&self, script: &str) -> Value {
        self.command(
            Method::POST,
            "/execute/sync",
            Some(json!({"script": script, "args": []})),
        )
        .await
    }

    /// Polls `script` until it returns something truthy and returns that;
    /// after [`GUARD`], saves a screenshot and fails naming `what`, with the
    /// page's text and console (where a CSP refusal shows).
    pub(crate) async fn wait_for(&self, what: &str, script: &str) -> Value {
        let found = tokio::time::timeout(GUARD, async {
            loop {
                let v = self.eval(script).await;
                let truthy = match &v {
                    Value::Null | Value::Bool(false) => false,
                    Value::String(s) => !s.is_empty(),
                    _ => true,
                };
                if truthy {
                    return v;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
        .await;
        match found {
            Ok(v) => v,
            Err(_) => {
                let shot = self.screenshot("timed-out").await;
                let page = self.eval("return document.body.innerText").await;
                let console = self.console().await;
                panic!(
                    "the page never showed {what} (screenshot {}); it says: {page}; \
                     its console: {console:?}",
                    shot.display()
                );
            }
        }
    }

    /// Saves a PNG of the window as `<out>/<name>.png` and returns its path.
    pub(crate) async fn screenshot(&self, name: &str) -> PathBuf {
        let png = self.command(Method::GET, "/screenshot", None).await;
        let bytes = STANDARD
            .decode(png.as_str().unwrap_or_default())
            .expect("the screenshot is base64");
        assert!(bytes.starts_with(b"\x89PNG"), "the screenshot is no PNG");
        let path = self.out.join(format!("{name}.png"));
        std::fs::write(&path, bytes).expect("write the screenshot");
        path
    }

    /// The browser console's entries since the last call
    /// (`{"level","message","source"}`; chromedriver's own extension).
    pub(crate) async fn console(&self) -> Vec<Value> {
        let log = self
            .command(Method::POST, "/se/log", Some(json!({"type": "browser"})))
            .await;
        log.as_array().cloned().unwrap_or_default()
    }

    /// Ends the session (the browser exits), then chromedriver.
    pub(crate) async fn quit(mut self) {
        self.command(Method::DELETE, "", None).await;
        self.session.clear();
        let _ = self.chromedriver.kill().await;
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // A test that failed half-way: chromedriver dies with its handle
        // (`kill_on_drop`), but the browser it started would outlive it. It
        // shares chromedriver's process group; SIGTERM lets it exit whole.
        #[cfg(unix)]
        if !self.session.is_empty()
            && let Some(group) = self
                .chromedriver
                .id()
                .and_then(|id| i32::try_from(id).ok())
                .and_then(rustix::process::Pid::from_raw)
        {
            let _ = rustix::process::kill_process_group(group, rustix::process::Signal::TERM);
        }
    }
}
