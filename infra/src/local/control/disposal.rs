//! What the purge deletes: versions, which it lists in full to judge, and records whose
//! lifetime has passed (tokens, staged uploads, tasks, idempotency keys).

use super::codec::Cached;
use async_trait::async_trait;
use rollcall_core::model::{Estab, VersionRecord};
use rollcall_core::ports::{Disposal, StoreError};
use rollcall_core::timestamp::Timestamp;

use rusqlite::params;

use super::SqliteControlStore;
use super::versions::{VERSION_COLUMNS, version_from_row};

#[async_trait]
impl Disposal for SqliteControlStore {
    async fn all_versions(&self) -> Result<Vec<VersionRecord>, StoreError> {
        self.call(move |c| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {VERSION_COLUMNS} FROM versions ORDER BY estab, result_set, version"
            ))?;
            let rows = stmt
                .query_map([], version_from_row)?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(rows)
        })
        .await
    }

    async fn delete_version(
        &self,
        estab: &Estab,
        result_set: &str,
        version: u64,
    ) -> Result<(), StoreError> {
        let (estab, rs) = (estab.clone(), result_set.to_owned());
        self.call(move |c| {
            c.execute_cached(
                "DELETE FROM versions WHERE estab = ?1 AND result_set = ?2 AND version = ?3",
                params![estab.as_str(), rs, version as i64],
            )?;
            Ok(())
        })
        .await
    }

    async fn delete_expired_tokens(&self, now: Timestamp) -> Result<u64, StoreError> {
        self.call(move |c| {
            Ok(
                c.execute_cached("DELETE FROM tokens WHERE expires_at <= ?1", [now.millis()])?
                    as u64,
            )
        })
        .await
    }

    async fn delete_expired_staged_uploads(&self, now: Timestamp) -> Result<u64, StoreError> {
        self.call(move |c| {
            Ok(c.execute_cached(
                "DELETE FROM staged_uploads WHERE expires_at <= ?1",
                [now.millis()],
            )? as u64)
        })
        .await
    }

    async fn delete_expired_tasks(&self, now: Timestamp) -> Result<u64, StoreError> {
        self.call(move |c| {
            Ok(
                c.execute_cached("DELETE FROM tasks WHERE expires_at <= ?1", [now.millis()])?
                    as u64,
            )
        })
        .await
    }

    async fn delete_expired_idempotency_keys(&self, now: Timestamp) -> Result<u64, StoreError> {
        self.call(move |c| {
            Ok(c.execute_cached(
                "DELETE FROM idempotency_keys WHERE expires_at <= ?1",
                [now.millis()],
            )? as u64)
        })
        .await
    }
}
