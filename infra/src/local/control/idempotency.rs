//! Idempotency keys: claimed with one conditional upsert, completed or released by their
//! claimant only. A released key keeps its row (status `released`) until it expires, as on
//! DynamoDB, so both adapters dispose of the same records.

use super::codec::Cached;
use async_trait::async_trait;
use rollcall_core::idempotency::{
    IdempotencyKey, IdempotencyRecord, IdempotencyState, StoredAnswer,
};
use rollcall_core::model::Estab;
use rollcall_core::ports::{IdempotencyStore, StoreError};
use rollcall_core::timestamp::Timestamp;
use rusqlite::{OptionalExtension, Row, params};

use super::codec::parse_col;
use super::{DbError, SqliteControlStore};

const COLUMNS: &str = "estab, idempotency_key, request_hash, created_at, expires_at, state";

fn record_from_row(row: &Row<'_>) -> rusqlite::Result<IdempotencyRecord> {
    Ok(IdempotencyRecord {
        estab: parse_col(Estab::parse(&row.get::<_, String>(0)?))?,
        key: parse_col(IdempotencyKey::parse(&row.get::<_, String>(1)?))?,
        request_hash: row.get(2)?,
        created_at: Timestamp::from_millis(row.get(3)?),
        expires_at: Timestamp::from_millis(row.get(4)?),
        state: parse_col(serde_json::from_str(&row.get::<_, String>(5)?))?,
    })
}

#[async_trait]
impl IdempotencyStore for SqliteControlStore {
    async fn claim_idempotency_key(
        &self,
        record: &IdempotencyRecord,
        stale_before: Timestamp,
    ) -> Result<(), StoreError> {
        let r = record.clone();
        self.call(move |c| {
            let (claim, since) = match &r.state {
                IdempotencyState::InProgress { claim, since } => (claim.clone(), *since),
                IdempotencyState::Completed { .. } => {
                    return Err(DbError::Store(StoreError::unavailable(
                        "only a claim in progress can be claimed",
                    )));
                }
            };
            // The row is replaced only where the key is free: released, expired, or claimed
            // by a request that died. Otherwise the upsert changes nothing: a conflict.
            let changed = c.execute_cached(
                "INSERT INTO idempotency_keys
                     (estab, idempotency_key, request_hash, created_at, expires_at, status, claim, claimed_at, state)
                 VALUES (?1, ?2, ?3, ?4, ?5, 'in_progress', ?6, ?7, ?8)
                 ON CONFLICT (estab, idempotency_key) DO UPDATE SET
                     request_hash = excluded.request_hash, created_at = excluded.created_at,
                     expires_at = excluded.expires_at, status = excluded.status,
                     claim = excluded.claim, claimed_at = excluded.claimed_at, state = excluded.state
                 WHERE idempotency_keys.status = 'released'
                    OR idempotency_keys.expires_at <= excluded.created_at
                    OR (idempotency_keys.status = 'in_progress' AND idempotency_keys.claimed_at < ?9)",
                params![
                    r.estab.as_str(),
                    r.key.as_str(),
                    r.request_hash,
                    r.created_at.millis(),
                    r.expires_at.millis(),
                    claim,
                    since.millis(),
                    serde_json::to_string(&r.state)?,
                    stale_before.millis(),
                ],
            )?;
            if changed == 0 {
                return Err(DbError::Store(StoreError::Conflict(
                    "the idempotency key is held".into(),
                )));
            }
            Ok(())
        })
        .await
    }

    async fn idempotency_record(
        &self,
        estab: &Estab,
        key: &IdempotencyKey,
    ) -> Result<Option<IdempotencyRecord>, StoreError> {
        let (estab, key) = (estab.clone(), key.clone());
        self.call(move |c| {
            Ok(c.query_row_cached(
                &format!(
                    "SELECT {COLUMNS} FROM idempotency_keys
                     WHERE estab = ?1 AND idempotency_key = ?2 AND status != 'released'"
                ),
                params![estab.as_str(), key.as_str()],
                record_from_row,
            )
            .optional()?)
        })
        .await
    }

    async fn complete_idempotency_key(
        &self,
        estab: &Estab,
        key: &IdempotencyKey,
        claim: &str,
        answer: &StoredAnswer,
    ) -> Result<(), StoreError> {
        let (estab, key, claim) = (estab.clone(), key.clone(), claim.to_owned());
        let state = IdempotencyState::Completed {
            answer: answer.clone(),
        };
        self.call(move |c| {
            let changed = c.execute_cached(
                "UPDATE idempotency_keys SET status = 'completed', claim = NULL, state = ?4
                 WHERE estab = ?1 AND idempotency_key = ?2 AND status = 'in_progress' AND claim = ?3",
                params![
                    estab.as_str(),
                    key.as_str(),
                    claim,
                    serde_json::to_string(&state)?
                ],
            )?;
            if changed == 0 {
                return Err(DbError::Store(StoreError::Conflict(
                    "the idempotency key is no longer held by this claim".into(),
                )));
            }
            Ok(())
        })
        .await
    }

    async fn release_idempotency_key(
        &self,
        estab: &Estab,
        key: &IdempotencyKey,
        claim: &str,
    ) -> Result<(), StoreError> {
        let (estab, key, claim) = (estab.clone(), key.clone(), claim.to_owned());
        self.call(move |c| {
            let tx = c.transaction()?;
            let changed = tx.execute_cached(
                "UPDATE idempotency_keys SET status = 'released', claim = NULL
                 WHERE estab = ?1 AND idempotency_key = ?2 AND status = 'in_progress' AND claim = ?3",
                params![estab.as_str(), key.as_str(), claim],
            )?;
            if changed == 0 {
                let status: Option<String> = tx
                    .query_row(
                        "SELECT status FROM idempotency_keys WHERE estab = ?1 AND idempotency_key = ?2",
                        params![estab.as_str(), key.as_str()],
                        |row| row.get(0),
                    )
                    .optional()?;
                if status.is_some_and(|s| s != "released") {
                    return Err(DbError::Store(StoreError::Conflict(
                        "the idempotency key is held by another claim or completed".into(),
                    )));
                }
            }
            tx.commit()?;
            Ok(())
        })
        .await
    }
}
