//! Private `redis-server` processes for tests: one node or a 3-master cluster
//! on free loopback ports, no persistence, each in its own temp dir.
//!
//! Each server runs under a small `sh` wrapper that holds the read end of a
//! pipe from the test process: when the pipe closes — [`RedisServer::kill`],
//! `Drop`, or the test process exiting for any reason (a process-lifetime
//! `static` server is never dropped) — the wrapper SIGKILLs redis-server and
//! removes its directory. Nothing outlives the test binary.
//!
//! Without `redis-server` on `PATH` the helpers return `None` after a loud
//! message on stderr, except under `CI=true`, where they panic.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Kills redis-server when stdin closes, then removes its directory.
const WRAPPER: &str = r#"dir="$1"; shift
redis-server "$@" &
pid=$!
read -r _ignored || true
kill -9 "$pid" 2>/dev/null
wait "$pid" 2>/dev/null
rm -rf "$dir"
"#;

/// Whether the Redis tests can run: `true` when `redis-server` is on `PATH`.
/// Otherwise panics under `CI=true`, or prints a loud skip notice.
pub fn redis_available() -> bool {
    static FOUND: OnceLock<bool> = OnceLock::new();
    let found = *FOUND.get_or_init(|| {
        Command::new("redis-server")
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    });
    if found {
        return true;
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!(
            "redis-server is not on PATH but CI=true: the Redis store tests must run in CI \
             (.ci/run installs redis-server with apt-get)"
        );
    }
    // Straight to the stderr handle: `eprintln!` would be captured by the
    // test harness and hidden for a passing (skipped) test.
    let _ = writeln!(
        std::io::stderr(),
        "\n************************************************************************\n\
         *** SKIPPING REDIS TEST: redis-server not found on PATH.              ***\n\
         *** Install it (apt-get install redis-server redis-tools) to run it.  ***\n\
         ************************************************************************\n"
    );
    false
}

struct Process {
    wrapper: Child,
    stdin: Option<ChildStdin>,
}

impl Process {
    fn stop(mut self) {
        drop(self.stdin.take());
        let _ = self.wrapper.wait();
    }
}

/// One private redis-server on `127.0.0.1:<port>`.
pub struct RedisServer {
    port: u16,
    dir: PathBuf,
    extra: Vec<String>,
    process: Mutex<Option<Process>>,
}

impl std::fmt::Debug for RedisServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisServer")
            .field("port", &self.port)
            .finish()
    }
}

impl RedisServer {
    /// Starts a standalone server, or `None` when redis-server is missing
    /// (see [`redis_available`]).
    pub fn start() -> Option<Self> {
        Self::start_with(&[])
    }

    fn start_with(extra: &[&str]) -> Option<Self> {
        if !redis_available() {
            return None;
        }
        let extra: Vec<String> = extra.iter().map(|s| (*s).to_owned()).collect();
        // A free port can be taken between probing and binding: retry.
        for _ in 0..10 {
            let port = free_port();
            let server = Self {
                port,
                dir: std::env::temp_dir().join(format!(
                    "tower-otp-redis-{}-{port}-{:08x}",
                    std::process::id(),
                    rand::random::<u32>()
                )),
                extra: extra.clone(),
                process: Mutex::new(None),
            };
            if server.launch().is_ok() {
                return Some(server);
            }
        }
        panic!("could not start redis-server on any free port");
    }

    fn launch(&self) -> Result<(), String> {
        std::fs::create_dir_all(&self.dir).map_err(|e| e.to_string())?;
        let port = self.port.to_string();
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(WRAPPER)
            .arg("sh")
            .arg(&self.dir)
            .args([
                "--port",
                &port,
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .args(["--protected-mode", "no", "--dir"])
            .arg(&self.dir)
            .arg("--logfile")
            .arg(self.dir.join("redis.log"))
            .args(&self.extra)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| e.to_string())?;
        let stdin = child.stdin.take();
        let process = Process {
            wrapper: child,
            stdin,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if command(self.port, &["PING"]).is_ok_and(|r| r.starts_with(b"+PONG")) {
                *self.process.lock().unwrap() = Some(process);
                return Ok(());
            }
            if Instant::now() > deadline {
                process.stop();
                return Err(format!("redis-server on port {} did not answer", self.port));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:<port>`.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills the server (SIGKILL, like a crash) and waits until it is gone.
    pub fn kill(&self) {
        if let Some(p) = self.process.lock().unwrap().take() {
            p.stop();
        }
    }

    /// Starts the server again on the same port (empty: nothing persisted).
    pub fn restart(&self) {
        self.kill();
        let deadline = Instant::now() + Duration::from_secs(10);
        while let Err(e) = self.launch() {
            assert!(Instant::now() < deadline, "restart failed: {e}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Runs one command (inline arguments) and returns the raw reply.
    pub fn command(&self, args: &[&str]) -> std::io::Result<Vec<u8>> {
        command(self.port, args)
    }

    /// Calls per command name so far (`INFO commandstats`, less `INFO`).
    pub fn command_calls(&self) -> std::collections::BTreeMap<String, u64> {
        let reply = self.command(&["INFO", "commandstats"]).unwrap();
        String::from_utf8_lossy(&reply)
            .lines()
            .filter_map(|line| {
                let (name, stats) = line.strip_prefix("cmdstat_")?.split_once(':')?;
                let calls = stats
                    .strip_prefix("calls=")?
                    .split(',')
                    .next()?
                    .parse()
                    .ok()?;
                (name != "info").then(|| (name.to_owned(), calls))
            })
            .collect()
    }

    /// The commands run between two [`command_calls`](Self::command_calls)
    /// snapshots, by name (only those that ran).
    pub fn calls_since(
        &self,
        before: &std::collections::BTreeMap<String, u64>,
    ) -> std::collections::BTreeMap<String, u64> {
        self.command_calls()
            .into_iter()
            .map(|(name, n)| {
                let d = n - before.get(&name).copied().unwrap_or(0);
                (name, d)
            })
            .filter(|(_, n)| *n > 0)
            .collect()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The server shared by every test of one test binary (keys are random per
/// test, so no flushing is needed). Lives until the process exits.
pub fn shared() -> Option<&'static RedisServer> {
    static SERVER: OnceLock<Option<RedisServer>> = OnceLock::new();
    SERVER.get_or_init(RedisServer::start).as_ref()
}

/// Three masters forming a Redis Cluster (no replicas).
#[derive(Debug)]
pub struct RedisCluster {
    nodes: Vec<RedisServer>,
}

impl RedisCluster {
    /// Starts three cluster-enabled servers, creates the cluster with
    /// `redis-cli --cluster create` and waits for `cluster_state:ok`.
    pub fn start() -> Option<Self> {
        let mut nodes = Vec::new();
        for _ in 0..3 {
            nodes.push(RedisServer::start_with(&[
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                "nodes.conf",
                "--cluster-node-timeout",
                "5000",
            ])?);
        }
        let addrs: Vec<String> = nodes.iter().map(|n| n.addr().to_string()).collect();
        let mut create = Command::new("redis-cli")
            .arg("--cluster")
            .arg("create")
            .args(&addrs)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("redis-cli must be on PATH next to redis-server (package redis-tools)");
        let deadline = Instant::now() + Duration::from_secs(60);
        let status = loop {
            if let Some(status) = create.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                let _ = create.kill();
                panic!("redis-cli --cluster create did not finish");
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        if !status.success() {
            let mut out = String::new();
            let _ = create.stdout.take().unwrap().read_to_string(&mut out);
            let _ = create.stderr.take().unwrap().read_to_string(&mut out);
            panic!("redis-cli --cluster create failed: {out}");
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        for node in &nodes {
            loop {
                let info = node.command(&["CLUSTER", "INFO"]).unwrap_or_default();
                if String::from_utf8_lossy(&info).contains("cluster_state:ok") {
                    break;
                }
                assert!(Instant::now() < deadline, "cluster never reached state ok");
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        Some(Self { nodes })
    }

    /// `redis://` URLs of the three masters.
    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(RedisServer::url).collect()
    }

    /// The nodes.
    pub fn nodes(&self) -> &[RedisServer] {
        &self.nodes
    }
}

/// The cluster shared by every test of one test binary.
pub fn shared_cluster() -> Option<&'static RedisCluster> {
    static CLUSTER: OnceLock<Option<RedisCluster>> = OnceLock::new();
    CLUSTER.get_or_init(RedisCluster::start).as_ref()
}

/// A loopback port that is free, and whose cluster-bus port (+10 000) is too.
pub fn free_port() -> u16 {
    loop {
        let port: u16 = 20_000 + rand::random::<u16>() % 30_000;
        let free = |p: u16| TcpListener::bind(("127.0.0.1", p)).is_ok();
        if free(port) && free(port + 10_000) {
            return port;
        }
    }
}

/// Sends one command as a RESP array and reads one reply (simple, error,
/// integer or bulk string), with a short timeout.
fn command(port: u16, args: &[&str]) -> std::io::Result<Vec<u8>> {
    let mut stream = TcpStream::connect_timeout(
        &SocketAddr::from(([127, 0, 0, 1], port)),
        Duration::from_millis(500),
    )?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    let mut req = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        req.extend_from_slice(format!("${}\r\n{a}\r\n", a.len()).as_bytes());
    }
    stream.write_all(&req)?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = buf.windows(2).position(|w| w == b"\r\n") {
            if buf[0] != b'$' {
                return Ok(buf);
            }
            let len: i64 = std::str::from_utf8(&buf[1..end])
                .ok()
                .and_then(|s| s.parse().ok())
                .unwrap_or(-1);
            if len < 0 || buf.len() >= end + 2 + len as usize + 2 {
                return Ok(buf);
            }
        }
    }
}

/// What a [`FaultProxy`] does with traffic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Mode {
    /// Pass bytes both ways.
    Forward = 0,
    /// Stop reading in both directions (like a frozen server): requests are
    /// accepted by the kernel and never answered.
    Stall = 1,
    /// Answer every request with bytes that are not RESP.
    Garbage = 2,
}

/// A TCP peer on loopback in front of a redis-server (or of nothing) whose
/// behaviour the test switches at run time. Stops when dropped.
#[derive(Debug)]
pub struct FaultProxy {
    addr: SocketAddr,
    mode: Arc<AtomicU8>,
    task: tokio::task::JoinHandle<()>,
}

impl FaultProxy {
    /// Listens on a free loopback port; connections go to `upstream` (none:
    /// only `Stall` and `Garbage` make sense).
    pub async fn start(upstream: Option<SocketAddr>, mode: Mode) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mode = Arc::new(AtomicU8::new(mode as u8));
        let shared = mode.clone();
        let task = tokio::spawn(async move {
            let mut conns = tokio::task::JoinSet::new();
            while let Ok((client, _)) = listener.accept().await {
                conns.spawn(relay(client, upstream, shared.clone()));
            }
        });
        Self { addr, mode, task }
    }

    /// Switches the behaviour for every open and future connection.
    pub fn set_mode(&self, mode: Mode) {
        self.mode.store(mode as u8, Ordering::SeqCst);
    }

    /// `redis://` URL of the proxy.
    pub fn url(&self) -> String {
        format!("redis://{}", self.addr)
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn relay(
    mut client: tokio::net::TcpStream,
    upstream: Option<SocketAddr>,
    mode: Arc<AtomicU8>,
) {
    let mut upstream = match upstream {
        Some(addr) => tokio::net::TcpStream::connect(addr).await.ok(),
        None => None,
    };
    let (mut from_client, mut from_server) = ([0u8; 16 * 1024], [0u8; 16 * 1024]);
    loop {
        let current = mode.load(Ordering::SeqCst);
        if current == Mode::Stall as u8 || (current == Mode::Forward as u8 && upstream.is_none()) {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        }
        let tick = tokio::time::sleep(Duration::from_millis(10));
        tokio::select! {
            read = client.read(&mut from_client) => {
                let Ok(n @ 1..) = read else { return };
                if current == Mode::Garbage as u8 {
                    if client.write_all(b"\x00\xffthis is not RESP\r\n%%%\r\n").await.is_err() {
                        return;
                    }
                } else if let Some(up) = upstream.as_mut()
                    && up.write_all(&from_client[..n]).await.is_err()
                {
                    return;
                }
            }
            read = async {
                match upstream.as_mut() {
                    Some(up) => up.read(&mut from_server).await,
                    None => std::future::pending().await,
                }
            }, if current == Mode::Forward as u8 => {
                let Ok(n @ 1..) = read else { return };
                if client.write_all(&from_server[..n]).await.is_err() {
                    return;
                }
            }
            // Re-read the mode now and then, so a switch takes effect.
            () = tick => {}
        }
    }
}
