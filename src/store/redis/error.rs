//! [`RedisConnectError`]: why connecting failed.

use std::fmt;

use crate::error::ConfigError;
#[cfg(doc)]
use crate::store::RedisStoreBuilder;
use crate::store::StoreError;

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
