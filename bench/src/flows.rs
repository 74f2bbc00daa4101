//! The OTP request + verify flow driver of `redis_throughput` and
//! `memory_flows`: the same router settings, notifier and loop over either
//! store, so the two flows/s figures measure the same work.
//!
//! `concurrency` tasks each loop: `POST /otp/request` for a fresh phone
//! number, read the code from an in-memory notifier, `POST /otp/verify`. The
//! router is called in-process (no HTTP), so the figure is the router + store
//! cost. The per-IP, prefix and global limits are raised so nothing is
//! refused (every request comes from one address); the per-identifier limits
//! and the resend cooldown keep their defaults — every number is fresh, so
//! they never refuse, but their cells are written like in production.

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::Full;
use tower::{Service, ServiceExt};
use tower_otp::client_ip::PeerAddr;
use tower_otp::notify::{Delivery, Message, Notifier, NotifyError};
use tower_otp::otp::{Limits, OtpRouter, OtpRouterBuilder};
use tower_otp::quota::Quota;
use tower_otp::store::Store;
use tower_otp::tenant::Tenants;

/// Keeps the last code per recipient, handed out once (so it holds only the
/// codes of flows in progress, never one per flow run).
#[derive(Clone, Debug, Default)]
pub struct Codes(Arc<Mutex<HashMap<String, String>>>);

impl Codes {
    fn take(&self, to: &str) -> Option<String> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).remove(to)
    }

    /// Records `code` as sent to `to` (what a notifier does).
    pub fn put(&self, to: &str, code: &str) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(to.to_owned(), code.to_owned());
    }
}

impl Notifier for Codes {
    async fn send(&self, msg: &Message) -> Result<Delivery, NotifyError> {
        self.put(&msg.to, &msg.code);
        Ok(Delivery::default())
    }
}

/// The environment variable `name` parsed, or `default`.
pub fn env<T: std::str::FromStr>(name: &str, default: T) -> T {
    env_opt(name).unwrap_or(default)
}

/// The environment variable `name` parsed, if set and well-formed.
pub fn env_opt<T: std::str::FromStr>(name: &str) -> Option<T> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

/// The benchmarked router over `store`: a random secret, the limits that
/// would refuse one client address raised (see the module doc).
///
/// `STEADY_TTL_SECS=T` in the environment shortens what a flow leaves
/// behind to about `T`: the session lives `T`, and the resend cooldown and
/// the per-identifier limits (same counts, windows scaled) keep their cells
/// `T` after one hit — so a long run reaches a steady store size, and with
/// small bounds runs at them, expiring and reclaiming as fast as it fills.
pub fn router<S: Store>(store: S, codes: Codes) -> OtpRouter<S, Codes> {
    builder(store, codes).build().expect("router")
}

/// The benchmarked router serving `tenants` (each request's settings from
/// its API key's tenant), over the same base settings as [`router`].
pub fn tenant_router<S: Store>(store: S, codes: Codes, tenants: Tenants<S>) -> OtpRouter<S, Codes> {
    builder(store, codes)
        .tenants(tenants)
        .build()
        .expect("router")
}

fn builder<S: Store>(store: S, codes: Codes) -> OtpRouterBuilder<S, Codes> {
    let secret: String = (0..32)
        .map(|_| format!("{:02x}", rand::random::<u8>()))
        .collect();
    let steady: Option<u64> = env_opt("STEADY_TTL_SECS");
    OtpRouter::builder(store, codes)
        .secret(secret)
        .configure(|c| {
            let mut limits = Limits::default();
            let lots = Quota::per_hour(1_000_000_000);
            limits.request_per_ip = lots;
            limits.verify_per_ip = lots;
            limits.request_per_number_prefix = lots;
            limits.global_messages = lots;
            if let Some(t) = steady.map(Duration::from_secs) {
                c.refresh_ttl = t;
                limits.resend_cooldown = t;
                // One hit of n per n·T keeps its cell T.
                limits.request_per_identifier = Quota::new(3, t * 3);
                limits.verify_per_identifier = Quota::new(5, t * 5);
            }
            c.limits = limits;
        })
}

/// A JSON POST from one client address (the router fails closed without
/// one: a server puts it there per connection).
fn post(path: &str, body: String) -> Request<Full<Bytes>> {
    let mut req = Request::post(path)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body)))
        .expect("valid request");
    req.extensions_mut()
        .insert(PeerAddr(SocketAddr::from(([203, 0, 113, 7], 50_000))));
    req
}

/// What a run did.
#[derive(Debug)]
pub struct Outcome {
    /// Completed request + verify flows.
    pub flows: u64,
    /// Failed flows by the status of the failed step (every one is a bug
    /// or a full store here: nothing is meant to be refused).
    pub failures: BTreeMap<u16, u64>,
    /// Wall time of the run.
    pub elapsed: Duration,
    /// Every completed flow's duration, sorted.
    pub latencies: Vec<Duration>,
}

impl Outcome {
    /// Completed flows per second.
    pub fn flows_per_sec(&self) -> f64 {
        self.flows as f64 / self.elapsed.as_secs_f64()
    }

    /// Failed flows, whatever their status.
    pub fn failed(&self) -> u64 {
        self.failures.values().sum()
    }

    /// The `p` quantile of the flow durations, in milliseconds.
    pub fn percentile_ms(&self, p: f64) -> f64 {
        let n = self.latencies.len();
        self.latencies
            .get(((n as f64 * p) as usize).min(n.saturating_sub(1)))
            .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    }

    /// Exits with status 1 when a flow failed: the figures are not the
    /// router's cost then (and the calling script fails too).
    pub fn exit_on_failure(&self) {
        if !self.failures.is_empty() {
            eprintln!("failed flows by status: {:?}", self.failures);
            std::process::exit(1);
        }
    }
}

/// The CPU time this process used so far, all threads (Linux, from
/// `/proc/self/stat` in 100 Hz ticks; `None` elsewhere). On a shared
/// machine it is steadier than wall time: CPU time per flow does not count
/// the time other processes held the cores.
pub fn cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name, which ends at the last ')': utime and
    // stime are the 12th and 13th.
    let mut fields = stat.get(stat.rfind(')')? + 2..)?.split(' ').skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(Duration::from_millis((utime + stime) * 10))
}

/// Runs `concurrency` flow loops over `router` for `run`. With `interval`,
/// prints every interval the flows/s, CPU µs per flow and failures of that
/// interval, then `report()` (what the store holds, say).
pub async fn drive<R, B>(
    router: R,
    codes: Codes,
    concurrency: usize,
    run: Duration,
    interval: Option<Duration>,
    report: impl Fn() -> String + Send + 'static,
) -> Outcome
where
    R: Service<Request<Full<Bytes>>, Response = http::Response<B>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    R::Future: Send,
    B: Send + 'static,
{
    let flows = Arc::new(AtomicU64::new(0));
    let failures = Arc::new(Mutex::new(BTreeMap::<u16, u64>::new()));
    let next_number = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let deadline = started + run;
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..concurrency {
        let (router, codes) = (router.clone(), codes.clone());
        let (flows, failures, next_number) = (flows.clone(), failures.clone(), next_number.clone());
        workers.spawn(async move {
            let mut latencies = Vec::new();
            let fail = |status: StatusCode| {
                let mut failures = failures.lock().unwrap_or_else(|e| e.into_inner());
                *failures.entry(status.as_u16()).or_default() += 1;
            };
            while Instant::now() < deadline {
                // Over MemoryStore nothing awaits: without this, each task
                // would run its whole loop in one poll, one per thread.
                tokio::task::yield_now().await;
                let n = next_number.fetch_add(1, Ordering::Relaxed);
                let phone = format!("+1415{:07}", n % 10_000_000);
                let t0 = Instant::now();
                let res = router
                    .clone()
                    .oneshot(post("/otp/request", format!(r#"{{"phone":"{phone}"}}"#)))
                    .await
                    .expect("infallible");
                let Some(code) = (res.status() == StatusCode::ACCEPTED)
                    .then(|| codes.take(&phone))
                    .flatten()
                else {
                    fail(res.status());
                    continue;
                };
                let res = router
                    .clone()
                    .oneshot(post(
                        "/otp/verify",
                        format!(r#"{{"phone":"{phone}","code":"{code}"}}"#),
                    ))
                    .await
                    .expect("infallible");
                if res.status() == StatusCode::OK {
                    flows.fetch_add(1, Ordering::Relaxed);
                    latencies.push(t0.elapsed());
                } else {
                    fail(res.status());
                }
            }
            latencies
        });
    }
    // A thread of its own: the flows over MemoryStore never wait, so a
    // reporting task could be starved by the workers.
    let reporter = interval.map(|every| {
        let (flows, failures) = (flows.clone(), failures.clone());
        std::thread::spawn(move || {
            let (mut last_flows, mut last_failed, mut last_at) = (0, 0, started);
            let mut last_cpu = cpu_time();
            let mut tick = started + every;
            while tick <= deadline {
                std::thread::sleep(tick.saturating_duration_since(Instant::now()));
                let now = Instant::now();
                let done = flows.load(Ordering::Relaxed);
                let failed: u64 = failures
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .values()
                    .sum();
                let cpu = cpu_time();
                let cpu_us_per_flow = match (cpu, last_cpu) {
                    (Some(cpu), Some(last)) if done > last_flows => format!(
                        "{:.1}",
                        (cpu - last).as_secs_f64() * 1e6 / (done - last_flows) as f64
                    ),
                    _ => "?".into(),
                };
                println!(
                    "interval t={:>4.0}s flows_per_sec={:.0} cpu_us_per_flow={cpu_us_per_flow} \
                     failures={} total_flows={done} {}",
                    (now - started).as_secs_f64(),
                    (done - last_flows) as f64 / (now - last_at).as_secs_f64(),
                    failed - last_failed,
                    report(),
                );
                (last_flows, last_failed, last_at, last_cpu) = (done, failed, now, cpu);
                tick += every;
            }
        })
    });
    let mut latencies = Vec::new();
    while let Some(done) = workers.join_next().await {
        latencies.extend(done.expect("worker"));
    }
    let elapsed = started.elapsed();
    if let Some(reporter) = reporter {
        reporter.join().expect("reporter");
    }
    latencies.sort_unstable();
    let failures = failures.lock().unwrap_or_else(|e| e.into_inner()).clone();
    Outcome {
        flows: flows.load(Ordering::Relaxed),
        failures,
        elapsed,
        latencies,
    }
}
