//! The connection the Redis store runs over: where to connect, how to open
//! it, and how a single node recovers from an error its manager cannot.

use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::{Cmd, RedisError, RedisFuture, Value};

use super::error::RedisConnectError;
use super::reply::store_error;
use crate::error::ConfigError;

/// Reconnect attempts per broken connection before the error is reported
/// (the next call starts a new round).
const RECONNECT_RETRIES: usize = 2;
/// Backoff between reconnect attempts.
const RECONNECT_MIN_DELAY: Duration = Duration::from_millis(50);
const RECONNECT_MAX_DELAY: Duration = Duration::from_millis(500);

/// The one connection the operations run over: a single node or a cluster.
#[derive(Clone)]
pub(super) enum Connection {
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
pub(super) struct SingleNode {
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
pub(super) enum Target {
    Single(String),
    #[cfg(feature = "redis-cluster")]
    Cluster(Vec<String>),
}

impl Target {
    pub(super) fn redacted(&self) -> String {
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

impl Connection {
    /// Opens the connection to `target`: each connection attempt bounded by
    /// `connect_timeout`, each reply by `timeout`.
    pub(super) async fn open(
        target: &Target,
        timeout: Duration,
        connect_timeout: Duration,
    ) -> Result<Self, RedisConnectError> {
        match target {
            Target::Single(url) => {
                let client = redis::Client::open(url.as_str()).map_err(|_| {
                    ConfigError::new("redis url", "not a valid redis:// or rediss:// URL")
                })?;
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(connect_timeout))
                    .set_response_timeout(Some(timeout))
                    .set_number_of_retries(RECONNECT_RETRIES)
                    .set_min_delay(RECONNECT_MIN_DELAY)
                    .set_max_delay(RECONNECT_MAX_DELAY);
                let manager = ConnectionManager::new_with_config(client.clone(), config.clone())
                    .await
                    .map_err(|e| store_error("connect", e, connect_timeout))?;
                Ok(Self::Single(Arc::new(SingleNode {
                    client,
                    config,
                    current: RwLock::new((0, manager)),
                })))
            }
            #[cfg(feature = "redis-cluster")]
            Target::Cluster(nodes) => {
                let client =
                    redis::cluster::ClusterClientBuilder::new(nodes.iter().map(String::as_str))
                        .connection_timeout(connect_timeout)
                        .response_timeout(timeout)
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
                    .map_err(|e| store_error("connect", e, connect_timeout))?;
                Ok(Self::Cluster(conn))
            }
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
}
