//! `RedisStore`: the shared store for several processes, on Redis (feature
//! `redis`) or Redis Cluster (feature `redis-cluster`).
//!
//! See [`RedisStore`] for the key layout and the failure behaviour.

use std::fmt;
use std::future::Future;
use std::sync::{Arc, LazyLock, PoisonError, RwLock};
use std::time::{Duration, SystemTime};

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::{Cmd, ErrorKind, RedisError, RedisFuture, Script, ScriptInvocation, Value};

use super::{Attempt, Challenge, Limit, Rotation, Store, StoreError, decide_all};
use crate::clock::unix_micros;
use crate::error::ConfigError;
use crate::quota::RateDecision;

const DEFAULT_PREFIX: &str = "tower-otp";
const DEFAULT_TIMEOUT: Duration = Duration::from_millis(500);
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// Spent refresh tokens remembered per family for reuse detection, besides
/// the previous one (the same number as the memory store).
const SPENT_REMEMBERED: usize = 64;
/// Longest TTL sent to Redis (ms, about 8 900 years): far below the point
/// where Redis refuses an expire time as out of range.
const MAX_TTL_MS: u64 = 1 << 48;
/// Reconnect attempts per broken connection before the error is reported
/// (the next call starts a new round).
const RECONNECT_RETRIES: usize = 2;
/// Backoff between reconnect attempts.
const RECONNECT_MIN_DELAY: Duration = Duration::from_millis(50);
const RECONNECT_MAX_DELAY: Duration = Duration::from_millis(500);

/// The Lua scripts, hashed once per process.
struct Scripts {
    hit_all: Script,
    challenge_put: Script,
    challenge_attempt: Script,
    challenge_remove: Script,
    session_create: Script,
    session_rotate: Script,
    revoke: Script,
    api_key_put: Script,
    api_key_delete: Script,
    api_key_list: Script,
}

impl Scripts {
    fn all(&self) -> [&Script; 10] {
        [
            &self.hit_all,
            &self.challenge_put,
            &self.challenge_attempt,
            &self.challenge_remove,
            &self.session_create,
            &self.session_rotate,
            &self.revoke,
            &self.api_key_put,
            &self.api_key_delete,
            &self.api_key_list,
        ]
    }
}

static SCRIPTS: LazyLock<Scripts> = LazyLock::new(|| Scripts {
    hit_all: Script::new(include_str!("lua/hit_all.lua")),
    challenge_put: Script::new(include_str!("lua/challenge_put.lua")),
    challenge_attempt: Script::new(include_str!("lua/challenge_attempt.lua")),
    challenge_remove: Script::new(include_str!("lua/challenge_remove.lua")),
    session_create: Script::new(include_str!("lua/session_create.lua")),
    session_rotate: Script::new(include_str!("lua/session_rotate.lua")),
    revoke: Script::new(include_str!("lua/revoke.lua")),
    api_key_put: Script::new(include_str!("lua/api_key_put.lua")),
    api_key_delete: Script::new(include_str!("lua/api_key_delete.lua")),
    api_key_list: Script::new(include_str!("lua/api_key_list.lua")),
});

/// The one connection the operations run over: a single node or a cluster.
#[derive(Clone)]
enum Connection {
    Single(Arc<SingleNode>),
    #[cfg(feature = "redis-cluster")]
    Cluster(redis::cluster_async::ClusterConnection),
}

/// A single node: a [`ConnectionManager`], replaced by a fresh one when it
/// cannot recover by itself.
///
/// The manager reconnects after I/O errors and dropped connections, but when
/// a *reconnect* fails with anything else — a peer answering garbage, a
/// failed `AUTH` — it keeps handing out that error forever. So after such an
/// error the node swaps in a new lazily connecting manager (once per failed
/// generation, however many calls saw the error).
struct SingleNode {
    client: redis::Client,
    config: ConnectionManagerConfig,
    current: RwLock<(u64, ConnectionManager)>,
}

impl SingleNode {
    fn get(&self) -> (u64, ConnectionManager) {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn after_error(&self, generation: u64, e: &RedisError) {
        if e.is_io_error() || !e.is_unrecoverable_error() {
            return; // the manager handles these itself
        }
        let mut current = self.current.write().unwrap_or_else(PoisonError::into_inner);
        if current.0 != generation {
            return; // already replaced
        }
        match ConnectionManager::new_lazy_with_config(self.client.clone(), self.config.clone()) {
            Ok(manager) => {
                *current = (generation + 1, manager);
                tracing::info!(kind = ?e.kind(), "redis connection replaced after an unrecoverable error");
            }
            Err(e) => tracing::warn!(error = %e, "redis connection could not be replaced"),
        }
    }
}

impl ConnectionLike for Connection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Single(node) => Box::pin(async move {
                let (generation, mut manager) = node.get();
                let result = manager.req_packed_command(cmd).await;
                if let Err(e) = &result {
                    node.after_error(generation, e);
                }
                result
            }),
            #[cfg(feature = "redis-cluster")]
            Self::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Self::Single(node) => Box::pin(async move {
                let (generation, mut manager) = node.get();
                let result = manager.req_packed_commands(pipeline, offset, count).await;
                if let Err(e) = &result {
                    node.after_error(generation, e);
                }
                result
            }),
            #[cfg(feature = "redis-cluster")]
            Self::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Single(node) => node.get().1.get_db(),
            #[cfg(feature = "redis-cluster")]
            Self::Cluster(c) => c.get_db(),
        }
    }
}

/// Where to connect.
#[derive(Clone)]
enum Target {
    Single(String),
    #[cfg(feature = "redis-cluster")]
    Cluster(Vec<String>),
}

impl Target {
    fn redacted(&self) -> String {
        match self {
            Self::Single(url) => redact_url(url),
            #[cfg(feature = "redis-cluster")]
            Self::Cluster(nodes) => {
                let nodes: Vec<String> = nodes.iter().map(|n| redact_url(n)).collect();
                format!("cluster[{}]", nodes.join(", "))
            }
        }
    }
}

/// Why [`RedisStoreBuilder::connect`] failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum RedisConnectError {
    /// The settings are wrong (URL, prefix, timeouts).
    Config(ConfigError),
    /// Redis could not be reached or did not answer in time.
    Store(StoreError),
}

impl fmt::Display for RedisConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Config(e) => e.fmt(f),
            Self::Store(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for RedisConnectError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Config(e) => Some(e),
            Self::Store(e) => Some(e),
        }
    }
}

impl From<ConfigError> for RedisConnectError {
    fn from(e: ConfigError) -> Self {
        Self::Config(e)
    }
}

impl From<StoreError> for RedisConnectError {
    fn from(e: StoreError) -> Self {
        Self::Store(e)
    }
}

/// Builder for [`RedisStore`]; [`connect`](Self::connect) opens the connection.
#[derive(Clone)]
#[must_use]
pub struct RedisStoreBuilder {
    target: Target,
    prefix: String,
    timeout: Duration,
    connect_timeout: Duration,
}

impl fmt::Debug for RedisStoreBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStoreBuilder")
            .field("target", &self.target.redacted())
            .field("prefix", &self.prefix)
            .field("timeout", &self.timeout)
            .field("connect_timeout", &self.connect_timeout)
            .finish()
    }
}

impl RedisStoreBuilder {
    fn new(target: Target) -> Self {
        Self {
            target,
            prefix: DEFAULT_PREFIX.to_owned(),
            timeout: DEFAULT_TIMEOUT,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
        }
    }

    /// Key prefix (default `tower-otp`): 1–64 printable ASCII characters,
    /// without `{`, `}` or spaces. Give each application its own.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Bound on every store call (default 500 ms); past it the call fails
    /// with [`StoreError::Timeout`].
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Bound on establishing the connection and loading the scripts in
    /// [`connect`](Self::connect), and on each reconnect attempt (default 2 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let p = &self.prefix;
        if p.is_empty()
            || p.len() > 64
            || !p
                .bytes()
                .all(|b| b.is_ascii_graphic() && b != b'{' && b != b'}')
        {
            return Err(ConfigError::new(
                "redis key prefix",
                "use 1 to 64 printable ASCII characters without '{', '}' or spaces",
            ));
        }
        if self.timeout.is_zero() {
            return Err(ConfigError::new(
                "redis timeout",
                "must be longer than zero",
            ));
        }
        if self.connect_timeout.is_zero() {
            return Err(ConfigError::new(
                "redis connect timeout",
                "must be longer than zero",
            ));
        }
        Ok(())
    }

    /// Connects, loads the scripts and returns the store. Bounded by the
    /// connect timeout: an unreachable server fails, it never hangs.
    pub async fn connect(self) -> Result<RedisStore, RedisConnectError> {
        self.validate()?;
        let connect_timeout = self.connect_timeout;
        let opening = async {
            let mut conn = self.open().await?;
            for script in SCRIPTS.all() {
                script
                    .load_async(&mut conn)
                    .await
                    .map_err(|e| store_error("load scripts", e, connect_timeout))?;
            }
            Ok::<_, RedisConnectError>(conn)
        };
        let conn = match tokio::time::timeout(connect_timeout, opening).await {
            Ok(conn) => conn?,
            Err(_) => {
                tracing::warn!(target = %self.target.redacted(), "redis connect timed out");
                return Err(StoreError::Timeout(connect_timeout).into());
            }
        };
        Ok(RedisStore {
            conn,
            keys: Arc::new(Keys::new(&self.prefix)),
            timeout: self.timeout,
            target: self.target.redacted().into(),
        })
    }

    async fn open(&self) -> Result<Connection, RedisConnectError> {
        match &self.target {
            Target::Single(url) => {
                let client = redis::Client::open(url.as_str()).map_err(|_| {
                    ConfigError::new("redis url", "not a valid redis:// or rediss:// URL")
                })?;
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(self.connect_timeout))
                    .set_response_timeout(Some(self.timeout))
                    .set_number_of_retries(RECONNECT_RETRIES)
                    .set_min_delay(RECONNECT_MIN_DELAY)
                    .set_max_delay(RECONNECT_MAX_DELAY);
                let manager = ConnectionManager::new_with_config(client.clone(), config.clone())
                    .await
                    .map_err(|e| store_error("connect", e, self.connect_timeout))?;
                Ok(Connection::Single(Arc::new(SingleNode {
                    client,
                    config,
                    current: RwLock::new((0, manager)),
                })))
            }
            #[cfg(feature = "redis-cluster")]
            Target::Cluster(nodes) => {
                let client =
                    redis::cluster::ClusterClientBuilder::new(nodes.iter().map(String::as_str))
                        .connection_timeout(self.connect_timeout)
                        .response_timeout(self.timeout)
                        .build()
                        .map_err(|_| {
                            ConfigError::new(
                                "redis cluster nodes",
                                "give at least one valid redis:// URL",
                            )
                        })?;
                let conn = client
                    .get_async_connection()
                    .await
                    .map_err(|e| store_error("connect", e, self.connect_timeout))?;
                Ok(Connection::Cluster(conn))
            }
        }
    }
}

/// Key names under the prefix (see the module docs for the layout).
struct Keys {
    prefix: String,
    api_key_record_prefix: String,
    api_key_index: String,
}

impl Keys {
    fn new(prefix: &str) -> Self {
        Self {
            prefix: prefix.to_owned(),
            api_key_record_prefix: format!("{{{prefix}:k}}:r:"),
            api_key_index: format!("{{{prefix}:k}}:i"),
        }
    }

    /// Every rate cell shares the hash tag `{P:r}`: the limits of one
    /// request (per identifier, per IP, the global budget…) are decided in
    /// one script, so on a cluster they must share one slot, and a global
    /// budget key meets every other key.
    fn rate(&self, key: &str) -> String {
        format!("{{{}:r}}:{key}", self.prefix)
    }

    fn challenge(&self, key: &str) -> String {
        format!("{{{}:c:{key}}}", self.prefix)
    }

    fn family(&self, id: &str) -> String {
        format!("{{{}:s:{id}}}", self.prefix)
    }

    fn revoked(&self, id: &str) -> String {
        format!("{{{}:s:{id}}}:x", self.prefix)
    }

    fn api_key(&self, id: &str) -> String {
        format!("{}{id}", self.api_key_record_prefix)
    }
}

/// The Redis [`Store`]: one multiplexed, self-reconnecting connection (or a
/// cluster connection), Lua scripts called by SHA, a timeout on every call.
/// Clones share the connection.
///
/// Every [`Store`] operation is one round trip: a Lua script (from
/// `src/store/lua/`) called by SHA with `EVALSHA`, or a single native command.
/// The scripts are loaded when the store connects and reloaded transparently
/// after a `NOSCRIPT` reply (a restarted or flushed server). Time is always
/// passed in from the caller's clock, never read from Redis, so the same
/// expiry rules hold as in `MemoryStore` and the same
/// conformance suite runs against both.
///
/// # Keys
///
/// Every key starts with the configured prefix (default `tower-otp`) inside a
/// hash tag, so all keys one script touches live in one cluster slot:
///
/// | key | type | what |
/// |---|---|---|
/// | `{P:r}:<key>` | string | GCRA theoretical arrival time (µs), `PEXPIRE` = reset |
/// | `{P:c:<key>}` | hash | challenge: `id`, `mac`, `exp`, attempt count `n` |
/// | `{P:s:<id>}` | hash | session family: `cur`, `data`, `prev`, `prev_at`, `spent` |
/// | `{P:s:<id>}:x` | string | revoked marker of a family id or a token `jti` |
/// | `{P:k}:r:<id>` | string | API-key record |
/// | `{P:k}:i` | set | index of API-key ids (for listing) |
///
/// The key parts passed in by `tower-otp` are already hashed or random; no
/// phone, email, code or token reaches Redis in plain text. Every key carries
/// a TTL except API-key records stored without one and their index; listing
/// drops index entries whose record has expired. All API keys share one slot
/// (they are few), so listing is one script even on a cluster.
///
/// All rate cells share the hash tag `{P:r}` too: [`Store::hit_all`] decides
/// the limits of one request (per identifier, per client address, the global
/// budget…) in one script, and on a cluster a script's keys must share a
/// slot; since a global budget key may meet any other key, the only slot that
/// works for every combination is one slot for all of them. On a cluster, all
/// rate limiting therefore runs on the one master that owns `{P:r}` (challenges,
/// sessions and revocations still spread over every master); give each
/// application its own prefix to spread applications over masters.
///
/// # Capacity
///
/// `RedisStore` sets no bound of its own; memory is bounded by Redis. Revocation
/// markers, session families and API keys are *authoritative*: an evicted
/// revocation is a revoked token that works again. Run Redis with
/// `maxmemory-policy noeviction` (the default) so a full Redis refuses writes —
/// they fail as [`StoreError::Unavailable`] and the router answers `503` —
/// instead of evicting; an `allkeys-*` or `volatile-*` policy can silently drop
/// revocations, session families and exhausted rate cells (every key here but
/// API keys stored without expiry carries a TTL, so `volatile-*` is no safer).
///
/// Without persistence (no RDB/AOF), a restart loses all of it: pending
/// challenges (users request a new code), rate cells (limits start afresh),
/// session families (users sign in again), revocations (revoked access tokens
/// work again until they expire) and API keys.
///
/// # Failure behaviour
///
/// Every call is bounded by [`RedisStoreBuilder::timeout`] (default 500 ms):
/// no answer in time is [`StoreError::Timeout`], a refused or lost connection
/// is [`StoreError::Unavailable`], a reply that cannot be read (wrong type,
/// protocol garbage) is [`StoreError::Corrupt`]. The HTTP layer turns each into
/// `503 store_unavailable`. The single-node connection is a
/// [`ConnectionManager`]: one multiplexed connection, re-established in the
/// background after it breaks, so the same `RedisStore` recovers by itself
/// when Redis comes back.
///
/// A failing call changes nothing when Redis itself refused it (a script
/// reads and decides before it writes, so an unreadable key aborts it before
/// any write). A call that *timed out* is different: it may still run if a
/// stalled server wakes up and reads it, so a rate-limit hit answered `503`
/// can be counted afterwards — the client cannot take back a command it has
/// sent.
///
/// ```no_run
/// use std::time::Duration;
/// use tower_otp::store::{RedisStore, Store};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let store = RedisStore::builder("redis://127.0.0.1:6379")
///     .prefix("myapp")
///     .timeout(Duration::from_millis(300))
///     .connect()
///     .await?;
/// store.ping().await?;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct RedisStore {
    conn: Connection,
    keys: Arc<Keys>,
    timeout: Duration,
    /// The URL(s) with any password redacted, for `Debug` and logs.
    target: Arc<str>,
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("target", &self.target)
            .field("prefix", &self.keys.prefix)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl RedisStore {
    /// A builder for a single Redis server at `url`
    /// (`redis://[user][:password@]host[:port][/db]`, or `rediss://` when the
    /// `redis` crate is built with TLS).
    pub fn builder(url: impl Into<String>) -> RedisStoreBuilder {
        RedisStoreBuilder::new(Target::Single(url.into()))
    }

    /// A builder for a Redis Cluster reached through `nodes` (one or more
    /// `redis://` URLs of cluster members; the rest is discovered).
    #[cfg(feature = "redis-cluster")]
    pub fn cluster_builder<I, N>(nodes: I) -> RedisStoreBuilder
    where
        I: IntoIterator<Item = N>,
        N: Into<String>,
    {
        RedisStoreBuilder::new(Target::Cluster(nodes.into_iter().map(Into::into).collect()))
    }

    /// Connects to a single server at `url` with default settings.
    pub async fn connect(url: impl Into<String>) -> Result<Self, RedisConnectError> {
        Self::builder(url).connect().await
    }

    /// The key prefix.
    pub fn prefix(&self) -> &str {
        &self.keys.prefix
    }

    /// The bound on every call.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Runs one Redis call under the timeout and maps its error.
    async fn call<T>(
        &self,
        op: &'static str,
        f: impl Future<Output = redis::RedisResult<T>>,
    ) -> Result<T, StoreError> {
        match tokio::time::timeout(self.timeout, f).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(store_error(op, e, self.timeout)),
            Err(_) => {
                tracing::warn!(op, timeout = ?self.timeout, "redis store call timed out");
                Err(StoreError::Timeout(self.timeout))
            }
        }
    }

    /// Runs a script invocation (EVALSHA, reloading after NOSCRIPT).
    async fn eval(
        &self,
        op: &'static str,
        invocation: &ScriptInvocation<'_>,
    ) -> Result<Value, StoreError> {
        let mut conn = self.conn.clone();
        self.call(op, invocation.invoke_async::<Value>(&mut conn))
            .await
    }

    /// Runs one native command.
    async fn command(&self, op: &'static str, cmd: &Cmd) -> Result<Value, StoreError> {
        let mut conn = self.conn.clone();
        self.call(op, cmd.query_async::<Value>(&mut conn)).await
    }
}

/// Maps a Redis error to a [`StoreError`] and logs it (never with data).
fn store_error(op: &'static str, e: RedisError, timeout: Duration) -> StoreError {
    tracing::warn!(op, error = %e, "redis store call failed");
    if e.is_timeout() {
        return StoreError::Timeout(timeout);
    }
    match e.kind() {
        ErrorKind::Parse | ErrorKind::UnexpectedReturnType => {
            StoreError::Corrupt(format!("{op}: unreadable reply from redis"))
        }
        _ if matches!(e.code(), Some("WRONGTYPE" | "CORRUPT")) => {
            StoreError::Corrupt(format!("{op}: unexpected data in redis"))
        }
        _ => StoreError::Unavailable(Box::new(e)),
    }
}

fn corrupt(op: &'static str) -> StoreError {
    StoreError::Corrupt(format!("{op}: unexpected reply shape from redis"))
}

/// A reply as an array.
fn array(op: &'static str, v: Value) -> Result<Vec<Value>, StoreError> {
    match v {
        Value::Array(items) => Ok(items),
        _ => Err(corrupt(op)),
    }
}

fn int(op: &'static str, v: &Value) -> Result<i64, StoreError> {
    match v {
        Value::Int(n) => Ok(*n),
        _ => Err(corrupt(op)),
    }
}

fn bytes(op: &'static str, v: Value) -> Result<Vec<u8>, StoreError> {
    match v {
        Value::BulkString(b) => Ok(b),
        Value::SimpleString(s) => Ok(s.into_bytes()),
        _ => Err(corrupt(op)),
    }
}

fn fixed<const N: usize>(op: &'static str, v: Value) -> Result<[u8; N], StoreError> {
    bytes(op, v)?.try_into().map_err(|_| corrupt(op))
}

fn decimal(op: &'static str, v: Value) -> Result<u64, StoreError> {
    let b = bytes(op, v)?;
    std::str::from_utf8(&b)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| corrupt(op))
}

/// A TTL for Redis in whole milliseconds, rounded up so nothing expires early.
fn ttl_ms(d: Duration) -> u64 {
    let ms = d.as_nanos().div_ceil(1_000_000);
    u64::try_from(ms).unwrap_or(u64::MAX).min(MAX_TTL_MS)
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

impl Store for RedisStore {
    async fn hit_all(
        &self,
        limits: &[Limit<'_>],
        now: SystemTime,
    ) -> Result<Vec<RateDecision>, StoreError> {
        const OP: &str = "hit_all";
        if limits.is_empty() {
            return Ok(Vec::new());
        }
        let now_us = unix_micros(now);
        let mut invocation = SCRIPTS.hit_all.prepare_invoke();
        invocation.arg(now_us);
        for limit in limits {
            // The same derived parameters as `gcra`.
            let t = limit.quota.emission_interval_us();
            let tau = t.saturating_mul(u64::from(limit.quota.burst().max(1)));
            invocation.key(self.keys.rate(limit.key)).arg(t).arg(tau);
        }
        let reply = self.eval(OP, &invocation).await?;
        let mut items = array(OP, reply)?.into_iter();
        let allowed = int(OP, &items.next().ok_or_else(|| corrupt(OP))?)? == 1;
        let stored = items
            .map(|v| {
                let b = bytes(OP, v)?;
                if b.is_empty() {
                    Ok(None)
                } else {
                    decimal(OP, Value::BulkString(b)).map(Some)
                }
            })
            .collect::<Result<Vec<Option<u64>>, StoreError>>()?;
        if stored.len() != limits.len() {
            return Err(corrupt(OP));
        }
        // The decisions come from the one Rust implementation, fed the TATs
        // the script saw; the script must have decided the same.
        let (decisions, next) = decide_all(limits, &stored, now_us);
        if next.is_some() != allowed {
            return Err(StoreError::Corrupt(
                "hit_all: redis and gcra disagree (quota beyond exact range)".into(),
            ));
        }
        Ok(decisions)
    }

    async fn put_challenge(
        &self,
        key: &str,
        challenge: &Challenge,
        now: SystemTime,
    ) -> Result<(), StoreError> {
        let left = challenge.expires_at_us.saturating_sub(unix_micros(now));
        self.eval(
            "put_challenge",
            SCRIPTS
                .challenge_put
                .key(self.keys.challenge(key))
                .arg(&challenge.id[..])
                .arg(&challenge.mac[..])
                .arg(challenge.expires_at_us)
                .arg(ttl_ms(Duration::from_micros(left))),
        )
        .await?;
        Ok(())
    }

    async fn attempt_challenge(
        &self,
        key: &str,
        max_attempts: u32,
        now: SystemTime,
    ) -> Result<Attempt, StoreError> {
        const OP: &str = "attempt_challenge";
        let reply = self
            .eval(
                OP,
                SCRIPTS
                    .challenge_attempt
                    .key(self.keys.challenge(key))
                    .arg(max_attempts)
                    .arg(unix_micros(now)),
            )
            .await?;
        let mut items = array(OP, reply)?.into_iter();
        match items.next().map(|v| int(OP, &v)).transpose()? {
            Some(0) => Ok(Attempt::Missing),
            Some(1) => {
                let (Some(id), Some(mac), Some(exp), Some(left), None) = (
                    items.next(),
                    items.next(),
                    items.next(),
                    items.next(),
                    items.next(),
                ) else {
                    return Err(corrupt(OP));
                };
                Ok(Attempt::Open {
                    challenge: Challenge {
                        id: fixed(OP, id)?,
                        mac: fixed(OP, mac)?,
                        expires_at_us: decimal(OP, exp)?,
                    },
                    remaining: u32::try_from(int(OP, &left)?).map_err(|_| corrupt(OP))?,
                })
            }
            _ => Err(corrupt(OP)),
        }
    }

    async fn remove_challenge(&self, key: &str, id: &[u8; 16]) -> Result<bool, StoreError> {
        const OP: &str = "remove_challenge";
        let reply = self
            .eval(
                OP,
                SCRIPTS
                    .challenge_remove
                    .key(self.keys.challenge(key))
                    .arg(&id[..]),
            )
            .await?;
        Ok(int(OP, &reply)? == 1)
    }

    async fn create_session(
        &self,
        sid: &str,
        refresh_hash: &[u8; 32],
        data: &[u8],
        ttl: Duration,
        _now: SystemTime,
    ) -> Result<(), StoreError> {
        self.eval(
            "create_session",
            SCRIPTS
                .session_create
                .key(self.keys.family(sid))
                .arg(&refresh_hash[..])
                .arg(data)
                .arg(ttl_ms(ttl)),
        )
        .await?;
        Ok(())
    }

    async fn rotate_refresh(
        &self,
        sid: &str,
        presented: &[u8; 32],
        successor: &[u8; 32],
        grace: Duration,
        ttl: Duration,
        now: SystemTime,
    ) -> Result<Rotation, StoreError> {
        const OP: &str = "rotate_refresh";
        let reply = self
            .eval(
                OP,
                SCRIPTS
                    .session_rotate
                    .key(self.keys.family(sid))
                    .key(self.keys.revoked(sid))
                    .arg(&presented[..])
                    .arg(&successor[..])
                    .arg(micros(grace))
                    .arg(ttl_ms(ttl))
                    .arg(unix_micros(now))
                    .arg(SPENT_REMEMBERED * 32),
            )
            .await?;
        let mut items = array(OP, reply)?.into_iter();
        let tag = items.next().map(|v| int(OP, &v)).transpose()?;
        let rotation = match tag {
            Some(0) => Rotation::Invalid,
            Some(1 | 2) => {
                let data = bytes(OP, items.next().ok_or_else(|| corrupt(OP))?)?;
                if tag == Some(1) {
                    Rotation::Rotated(data)
                } else {
                    Rotation::Grace(data)
                }
            }
            Some(3) => Rotation::Reused,
            _ => return Err(corrupt(OP)),
        };
        if items.next().is_some() {
            return Err(corrupt(OP));
        }
        Ok(rotation)
    }

    async fn revoke(&self, id: &str, ttl: Duration) -> Result<(), StoreError> {
        self.eval(
            "revoke",
            SCRIPTS
                .revoke
                .key(self.keys.family(id))
                .key(self.keys.revoked(id))
                .arg(ttl_ms(ttl)),
        )
        .await?;
        Ok(())
    }

    async fn is_revoked(&self, id: &str) -> Result<bool, StoreError> {
        const OP: &str = "is_revoked";
        let reply = self
            .command(OP, redis::cmd("EXISTS").arg(self.keys.revoked(id)))
            .await?;
        Ok(int(OP, &reply)? > 0)
    }

    async fn put_api_key(
        &self,
        id: &str,
        record: &[u8],
        ttl: Option<Duration>,
    ) -> Result<(), StoreError> {
        let ttl = ttl.map(|d| ttl_ms(d).to_string()).unwrap_or_default();
        self.eval(
            "put_api_key",
            SCRIPTS
                .api_key_put
                .key(self.keys.api_key(id))
                .key(&self.keys.api_key_index)
                .arg(id)
                .arg(record)
                .arg(ttl),
        )
        .await?;
        Ok(())
    }

    async fn get_api_key(&self, id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        const OP: &str = "get_api_key";
        match self
            .command(OP, redis::cmd("GET").arg(self.keys.api_key(id)))
            .await?
        {
            Value::Nil => Ok(None),
            other => bytes(OP, other).map(Some),
        }
    }

    async fn delete_api_key(&self, id: &str) -> Result<bool, StoreError> {
        const OP: &str = "delete_api_key";
        let reply = self
            .eval(
                OP,
                SCRIPTS
                    .api_key_delete
                    .key(self.keys.api_key(id))
                    .key(&self.keys.api_key_index)
                    .arg(id),
            )
            .await?;
        Ok(int(OP, &reply)? > 0)
    }

    async fn list_api_keys(&self) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        const OP: &str = "list_api_keys";
        let reply = self
            .eval(
                OP,
                SCRIPTS
                    .api_key_list
                    .key(&self.keys.api_key_index)
                    .arg(&self.keys.api_key_record_prefix),
            )
            .await?;
        let items = array(OP, reply)?;
        if items.len() % 2 != 0 {
            return Err(corrupt(OP));
        }
        let mut out = Vec::with_capacity(items.len() / 2);
        let mut items = items.into_iter();
        while let (Some(id), Some(record)) = (items.next(), items.next()) {
            let id = String::from_utf8(bytes(OP, id)?).map_err(|_| corrupt(OP))?;
            out.push((id, bytes(OP, record)?));
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    async fn ping(&self) -> Result<(), StoreError> {
        const OP: &str = "ping";
        match self.command(OP, &redis::cmd("PING")).await? {
            Value::SimpleString(s) if s == "PONG" => Ok(()),
            Value::Okay => Ok(()),
            _ => Err(corrupt(OP)),
        }
    }
}

/// `url` with the password (userinfo and `password`/`pass` query values)
/// replaced by `***`, for `Debug` and logs.
fn redact_url(url: &str) -> String {
    let (scheme, rest) = match url.find("://") {
        Some(i) => (&url[..i + 3], &url[i + 3..]),
        None => ("", url),
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let authority = match authority.rfind('@') {
        Some(at) => {
            let (userinfo, host) = authority.split_at(at);
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{user}:***{host}"),
                None => format!("***{host}"),
            }
        }
        None => authority.to_owned(),
    };
    let tail = match tail.split_once('?') {
        Some((path, query)) => {
            let query: Vec<String> = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((k, _)) if k.to_ascii_lowercase().contains("pass") => format!("{k}=***"),
                    _ => pair.to_owned(),
                })
                .collect();
            format!("{path}?{}", query.join("&"))
        }
        None => tail.to_owned(),
    };
    format!("{scheme}{authority}{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_passwords() {
        assert_eq!(
            redact_url("redis://:s3cret@localhost:6379/0"),
            "redis://:***@localhost:6379/0"
        );
        assert_eq!(
            redact_url("rediss://app:s3cret@cache.example:6380"),
            "rediss://app:***@cache.example:6380"
        );
        assert_eq!(
            redact_url("redis://s3cret@localhost"),
            "redis://***@localhost"
        );
        assert_eq!(
            redact_url("redis+unix:///run/redis.sock?db=1&pass=s3cret"),
            "redis+unix:///run/redis.sock?db=1&pass=***"
        );
        assert_eq!(
            redact_url("redis://127.0.0.1:6379"),
            "redis://127.0.0.1:6379"
        );
    }

    #[test]
    fn debug_never_shows_the_password() {
        let b = RedisStore::builder("redis://user:hunter2hunter2@127.0.0.1:1/0");
        let shown = format!("{b:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("127.0.0.1:1"), "{shown}");
    }

    #[test]
    fn keys_share_a_slot_per_family() {
        let k = Keys::new("app");
        assert_eq!(k.rate("h"), "{app:r}:h");
        assert_eq!(k.challenge("h"), "{app:c:h}");
        assert_eq!(k.family("sid"), "{app:s:sid}");
        assert_eq!(k.revoked("sid"), "{app:s:sid}:x");
        assert_eq!(k.api_key("id"), "{app:k}:r:id");
        assert_eq!(k.api_key_index, "{app:k}:i");
        // The hash tag (first `{` to first `}`) is the same for a family's keys.
        let tag = |key: &str| {
            let start = key.find('{').unwrap_or(0);
            let end = key[start..].find('}').map_or(key.len(), |e| start + e);
            key[start..end].to_owned()
        };
        assert_eq!(tag(&k.family("a}b")), tag(&k.revoked("a}b")));
        assert_eq!(tag(&k.api_key("x")), tag(&k.api_key_index));
        // Every rate cell shares one tag: one hit_all may name any of them.
        assert_eq!(tag(&k.rate("ip:a}{b")), tag(&k.rate("global")));
    }

    #[test]
    fn ttl_rounds_up_and_is_bounded() {
        assert_eq!(ttl_ms(Duration::ZERO), 0);
        assert_eq!(ttl_ms(Duration::from_nanos(1)), 1);
        assert_eq!(ttl_ms(Duration::from_micros(1500)), 2);
        assert_eq!(ttl_ms(Duration::MAX), MAX_TTL_MS);
    }

    #[tokio::test]
    async fn invalid_settings_are_refused_before_connecting() {
        for builder in [
            RedisStore::builder("redis://127.0.0.1:1").prefix(""),
            RedisStore::builder("redis://127.0.0.1:1").prefix("a{b}"),
            RedisStore::builder("redis://127.0.0.1:1").prefix("a b"),
            RedisStore::builder("redis://127.0.0.1:1").timeout(Duration::ZERO),
            RedisStore::builder("not a url"),
        ] {
            assert!(
                matches!(builder.connect().await, Err(RedisConnectError::Config(_))),
                "accepted"
            );
        }
    }
}
