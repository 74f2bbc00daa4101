//! [`ApiKeyStore`] for [`MemoryStore`]: API-key records in the authoritative
//! record table, never evicted.

use std::sync::Arc;
use std::time::Duration;

use super::records::{Op as RecordOp, RecordTable};
use super::store::{MemoryStore, Record};
use crate::store::{ApiKeyStore, StoreError};

/// The record-table key prefix of API keys.
const PREFIX: &str = "k:";

fn api_key_key(id: &str) -> String {
    format!("{PREFIX}{id}")
}

impl ApiKeyStore for MemoryStore {
    async fn put_api_key(
        &self,
        id: &str,
        record: &[u8],
        ttl: Option<Duration>,
    ) -> Result<(), StoreError> {
        let bytes: Arc<[u8]> = record.into();
        self.record(&api_key_key(id), |_, now| {
            let until = RecordTable::<Record>::deadline(now, ttl);
            (RecordOp::Put(Record::ApiKey(bytes.clone()), until), ())
        })
    }

    async fn get_api_key(&self, id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .records
            .get(&api_key_key(id), |record, _| match record {
                Record::ApiKey(bytes) => Some(bytes.to_vec()),
                _ => None,
            })
            .flatten())
    }

    async fn delete_api_key(&self, id: &str) -> Result<bool, StoreError> {
        self.record(&api_key_key(id), |current, _| {
            let existed = matches!(current, Some(Record::ApiKey(_)));
            (RecordOp::Remove, existed)
        })
    }

    async fn list_api_keys(&self) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let mut out = Vec::new();
        self.records.for_each(|key, record| {
            if let (Some(id), Record::ApiKey(bytes)) = (key.strip_prefix(PREFIX), record) {
                out.push((id.to_owned(), bytes.to_vec()));
            }
        });
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }
}
