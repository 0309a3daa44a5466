//! Staged uploads: claimed by one ingest at a time, outcome recorded by the claimer.

use super::codec::Cached;
use async_trait::async_trait;
use rollcall_core::model::Estab;
use rollcall_core::ports::{StagedUploadStore, StoreError};
use rollcall_core::staging::{StagedState, StagedUpload};
use rollcall_core::timestamp::Timestamp;
use rusqlite::{Connection, OptionalExtension, Row, params};

use super::codec::parse_col;
use super::{DbError, SqliteControlStore};

pub(super) const STAGED_COLUMNS: &str =
    "estab, id, content_length, created_at, url_expires_at, expires_at, state";

pub(super) fn staged_from_row(row: &Row<'_>) -> rusqlite::Result<StagedUpload> {
    Ok(StagedUpload {
        estab: parse_col(Estab::parse(&row.get::<_, String>(0)?))?,
        id: row.get(1)?,
        content_length: row.get::<_, i64>(2)? as u64,
        created_at: Timestamp::from_millis(row.get(3)?),
        url_expires_at: Timestamp::from_millis(row.get(4)?),
        expires_at: Timestamp::from_millis(row.get(5)?),
        state: parse_col(serde_json::from_str(&row.get::<_, String>(6)?))?,
    })
}

pub(super) fn select_staged(
    c: &Connection,
    estab: &Estab,
    id: &str,
) -> rusqlite::Result<Option<StagedUpload>> {
    c.query_row_cached(
        &format!("SELECT {STAGED_COLUMNS} FROM staged_uploads WHERE estab = ?1 AND id = ?2"),
        params![estab.as_str(), id],
        staged_from_row,
    )
    .optional()
}

#[async_trait]
impl StagedUploadStore for SqliteControlStore {
    async fn insert_staged_upload(&self, upload: &StagedUpload) -> Result<(), StoreError> {
        let u = upload.clone();
        self.call(move |c| {
            c.execute_cached(
                "INSERT INTO staged_uploads (estab, id, content_length, created_at, url_expires_at, expires_at, status, state)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    u.estab.as_str(),
                    u.id,
                    u.content_length as i64,
                    u.created_at.millis(),
                    u.url_expires_at.millis(),
                    u.expires_at.millis(),
                    u.state.name(),
                    serde_json::to_string(&u.state)?,
                ],
            )?;
            Ok(())
        })
        .await
    }

    async fn staged_upload(
        &self,
        estab: &Estab,
        id: &str,
    ) -> Result<Option<StagedUpload>, StoreError> {
        let (estab, id) = (estab.clone(), id.to_owned());
        self.call(move |c| Ok(select_staged(c, &estab, &id)?)).await
    }

    async fn claim_staged_upload(
        &self,
        estab: &Estab,
        id: &str,
        now: Timestamp,
        stale_before: Timestamp,
    ) -> Result<StagedUpload, StoreError> {
        let (estab, id) = (estab.clone(), id.to_owned());
        self.call(move |c| {
            let tx = c.transaction()?;
            let state = serde_json::to_string(&StagedState::Ingesting { since: now })?;
            let changed = tx.execute_cached(
                "UPDATE staged_uploads SET status = 'ingesting', claimed_at = ?3, state = ?4
                 WHERE estab = ?1 AND id = ?2
                   AND (status = 'waiting' OR (status = 'ingesting' AND claimed_at < ?5))",
                params![
                    estab.as_str(),
                    id,
                    now.millis(),
                    state,
                    stale_before.millis()
                ],
            )?;
            let Some(upload) = select_staged(&tx, &estab, &id)? else {
                return Err(DbError::Store(StoreError::NotFound(format!(
                    "staged upload {id}"
                ))));
            };
            if changed == 0 {
                return Err(DbError::Store(StoreError::Conflict(format!(
                    "staged upload {id} is {}",
                    upload.state.name()
                ))));
            }
            tx.commit()?;
            Ok(upload)
        })
        .await
    }

    async fn finish_staged_upload(
        &self,
        estab: &Estab,
        id: &str,
        since: Timestamp,
        outcome: &StagedState,
    ) -> Result<(), StoreError> {
        let (estab, id, outcome) = (estab.clone(), id.to_owned(), outcome.clone());
        self.call(move |c| {
            let changed = c.execute_cached(
                "UPDATE staged_uploads SET status = ?3, state = ?4
                 WHERE estab = ?1 AND id = ?2 AND status = 'ingesting' AND claimed_at = ?5",
                params![
                    estab.as_str(),
                    id,
                    outcome.name(),
                    serde_json::to_string(&outcome)?,
                    since.millis()
                ],
            )?;
            if changed == 0 {
                return Err(DbError::Store(StoreError::Conflict(format!(
                    "staged upload {id} is no longer claimed by this ingest"
                ))));
            }
            Ok(())
        })
        .await
    }
}
