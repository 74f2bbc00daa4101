//! Reading Redis replies and errors: each unexpected shape is a
//! [`StoreError::Corrupt`], each failure logged without data.

use std::time::Duration;

use redis::{ErrorKind, RedisError, Value};

use crate::store::StoreError;

/// Maps a Redis error to a [`StoreError`] and logs it (never with data).
pub(super) fn store_error(op: &'static str, e: RedisError, timeout: Duration) -> StoreError {
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

pub(super) fn corrupt(op: &'static str) -> StoreError {
    StoreError::Corrupt(format!("{op}: unexpected reply shape from redis"))
}

/// A reply as an array.
pub(super) fn array(op: &'static str, v: Value) -> Result<Vec<Value>, StoreError> {
    match v {
        Value::Array(items) => Ok(items),
        _ => Err(corrupt(op)),
    }
}

pub(super) fn int(op: &'static str, v: &Value) -> Result<i64, StoreError> {
    match v {
        Value::Int(n) => Ok(*n),
        _ => Err(corrupt(op)),
    }
}

pub(super) fn bytes(op: &'static str, v: Value) -> Result<Vec<u8>, StoreError> {
    match v {
        Value::BulkString(b) => Ok(b),
        Value::SimpleString(s) => Ok(s.into_bytes()),
        _ => Err(corrupt(op)),
    }
}

pub(super) fn fixed<const N: usize>(op: &'static str, v: Value) -> Result<[u8; N], StoreError> {
    bytes(op, v)?.try_into().map_err(|_| corrupt(op))
}

pub(super) fn decimal(op: &'static str, v: Value) -> Result<u64, StoreError> {
    let b = bytes(op, v)?;
    std::str::from_utf8(&b)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| corrupt(op))
}
