//! [`RedisStore`]: the handle, its one-call helpers (timeout, error
//! mapping, script invocation), and [`Ping`].

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use redis::{Cmd, ScriptInvocation, Value};

use super::connection::Connection;
use super::keys::Keys;
use super::reply::{corrupt, store_error};
use crate::store::{Ping, StoreError};
#[cfg(doc)]
use crate::store::{RateStore, Store};

/// Longest TTL sent to Redis (ms, about 8 900 years): far below the point
/// where Redis refuses an expire time as out of range.
const MAX_TTL_MS: u64 = 1 << 48;

/// The Redis [`Store`]: one multiplexed, self-reconnecting connection (or a
/// cluster connection), Lua scripts called by SHA, a timeout on every call.
/// Clones share the connection.
///
/// Every [`Store`] operation is one round trip: a Lua script (from
/// `src/store/redis/lua/`) called by SHA with `EVALSHA`, or a single native
/// command (on a cluster, the one `EXISTS` of
/// [`is_any_revoked`](crate::store::SessionStore::is_any_revoked) is split
/// into one command per slot, sent at once). The exception is a cluster's
/// session operations that span a subject's index and its families (create,
/// list, the revocations by subject, a challenge consumed into a session):
/// those keys live in different slots, so they run as steps — the index
/// first, then the families (all at once), then the index again.
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
/// | `{P:r}:<key>` | string | GCRA theoretical arrival time (µs), `PEXPIRE` = reset + 1 s |
/// | `{P:r}c:<key>` | hash | challenge: `id`, `mac`, `exp`, attempt count `n`, channel `ch` |
/// | `{P:s:<id>}` | hash | session family: `cur`, `data`, `prev`, `prev_at`, `spent`; created `c`, last used `u`, deadline `e`, absolute deadline `a` (µs), `PEXPIRE` = deadline + 1 min |
/// | `{P:s:<id>}:x` | string | revoked marker of a family id or a token `jti` |
/// | `{P:u:<subject>}` | hash | a subject's sessions: family id → `created:absolute deadline` (µs), `PEXPIRE` = the longest absolute deadline + 1 min |
/// | `{P:k}:r:<id>` | string | API-key record |
/// | `{P:k}:i` | set | index of API-key ids (for listing) |
/// | `{P:t}:r:<id>` | hash | tenant record: version `v`, data `d` |
/// | `{P:t}:i` | set | index of tenant ids (for listing) |
/// | `{P:t:<id>}:c:<group>` | hash | a tenant's counter group: one field per counter, and ` exp` (a space first), its deadline (µs) |
/// | `{P:p:<key>}` | hash | pending signup: data `d`, deadline `exp` (µs) |
///
/// The key parts passed in by `tower-otp` are already hashed or random; no
/// phone, email, code or token reaches Redis in plain text. Every key carries
/// a TTL except API-key records stored without one, tenant records, and
/// their indexes; listing drops index entries whose record is gone. All API
/// keys share one slot, and so do all tenant records (they are few), so
/// listing is one script even on a cluster. A tenant's counter groups share
/// the tenant's own slot, so one script changes several groups of a tenant
/// at once (its guards included) while tenants spread over the masters; a
/// group's deadline on the caller's clock decides its expiry, its `PEXPIRE`
/// (the longest ttl of its changes) reclaims it.
///
/// All rate cells share the hash tag `{P:r}` too: [`RateStore::hit_all`] decides
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
/// markers, session families, API keys, tenants and tenant counters are
/// *authoritative*: an evicted revocation is a revoked token that works
/// again, an evicted counter a reset quota. Run Redis with
/// `maxmemory-policy noeviction` (the default) so a full Redis refuses writes —
/// they fail as [`StoreError::Unavailable`] and the router answers `503` —
/// instead of evicting; an `allkeys-*` or `volatile-*` policy can silently drop
/// revocations, session families, counters and exhausted rate cells (nearly
/// every key here carries a TTL, so `volatile-*` is no safer).
///
/// Without persistence (no RDB/AOF), a restart loses all of it: pending
/// challenges (users request a new code), rate cells (limits start afresh),
/// session families (users sign in again), revocations (revoked access tokens
/// work again until they expire), API keys, tenants, their counters (usage
/// and quotas start afresh) and pending signups.
///
/// # Failure behaviour
///
/// Every call is bounded by [`RedisStoreBuilder::timeout`] (default 500 ms):
/// no answer in time is [`StoreError::Timeout`], a refused or lost connection
/// is [`StoreError::Unavailable`], a reply that cannot be read (wrong type,
/// protocol garbage) is [`StoreError::Corrupt`]. The HTTP layer turns each into
/// `503 store_unavailable`. The single-node connection is a
/// [`ConnectionManager`](redis::aio::ConnectionManager): one multiplexed connection, re-established in the
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
/// use tower_otp::store::{Ping, RedisStore};
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
///
/// [`RedisStoreBuilder::timeout`]: crate::store::RedisStoreBuilder::timeout
#[derive(Clone)]
pub struct RedisStore {
    pub(super) conn: Connection,
    pub(super) keys: Arc<Keys>,
    pub(super) timeout: Duration,
    /// The URL(s) with any password redacted, for `Debug` and logs.
    pub(super) target: Arc<str>,
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
    pub(super) async fn eval(
        &self,
        op: &'static str,
        invocation: &ScriptInvocation<'_>,
    ) -> Result<Value, StoreError> {
        let mut conn = self.conn.clone();
        self.call(op, invocation.invoke_async::<Value>(&mut conn))
            .await
    }

    /// Runs one native command.
    pub(super) async fn command(&self, op: &'static str, cmd: &Cmd) -> Result<Value, StoreError> {
        let mut conn = self.conn.clone();
        self.call(op, cmd.query_async::<Value>(&mut conn)).await
    }
}

/// A TTL for Redis in whole milliseconds, rounded up so nothing expires early.
pub(super) fn ttl_ms(d: Duration) -> u64 {
    let ms = d.as_nanos().div_ceil(1_000_000);
    u64::try_from(ms).unwrap_or(u64::MAX).min(MAX_TTL_MS)
}

pub(super) fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

impl Ping for RedisStore {
    async fn ping(&self) -> Result<(), StoreError> {
        const OP: &str = "ping";
        match self.command(OP, &redis::cmd("PING")).await? {
            Value::SimpleString(s) if s == "PONG" => Ok(()),
            Value::Okay => Ok(()),
            _ => Err(corrupt(OP)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttl_rounds_up_and_is_bounded() {
        assert_eq!(ttl_ms(Duration::ZERO), 0);
        assert_eq!(ttl_ms(Duration::from_nanos(1)), 1);
        assert_eq!(ttl_ms(Duration::from_micros(1500)), 2);
        assert_eq!(ttl_ms(Duration::MAX), MAX_TTL_MS);
    }
}
