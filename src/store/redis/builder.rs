//! [`RedisStoreBuilder`]: the settings of a [`RedisStore`], checked before
//! connecting, and the constructors that start from it.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::connection::{Connection, Target};
use super::error::RedisConnectError;
use super::keys::Keys;
use super::reply::store_error;
use super::scripts::SCRIPTS;
use super::store::RedisStore;
use crate::error::ConfigError;
use crate::store::StoreError;

const DEFAULT_PREFIX: &str = "tower-otp";
const DEFAULT_TIMEOUT: Duration = Duration::from_millis(500);
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

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
    pub(super) fn new(target: Target) -> Self {
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
            let mut conn = Connection::open(&self.target, self.timeout, connect_timeout).await?;
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_password() {
        let b = RedisStore::builder("redis://user:hunter2hunter2@127.0.0.1:1/0");
        let shown = format!("{b:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("127.0.0.1:1"), "{shown}");
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
