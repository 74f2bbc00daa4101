//! [`ApiKeyStore`] for [`RedisStore`]: a string per record and a set
//! indexing them, all in one slot.

use std::time::Duration;

use redis::Value;

use super::reply::{array, bytes, corrupt, int};
use super::scripts::SCRIPTS;
use super::store::{RedisStore, ttl_ms};
use crate::store::{ApiKeyStore, StoreError};

impl ApiKeyStore for RedisStore {
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
}
