//! Result-set versions: all of an upload published in one transaction, or none.

use super::codec::Cached;
use async_trait::async_trait;
use rollcall_core::model::{Estab, VersionRecord};
use rollcall_core::ports::{PUBLICATION_CHUNK, Publication, StoreError, VersionStore};
use rollcall_core::timestamp::Timestamp;
use rusqlite::{OptionalExtension, Row, params};

use super::codec::parse_col;
use super::{DbError, SqliteControlStore};

pub(super) const VERSION_COLUMNS: &str = "estab, result_set, version, created_at, confirmed_at, superseded_at, rows, groups, valid_until, upload";

pub(super) fn version_from_row(row: &Row<'_>) -> rusqlite::Result<VersionRecord> {
    Ok(VersionRecord {
        estab: parse_col(Estab::parse(&row.get::<_, String>(0)?))?,
        result_set: row.get(1)?,
        version: row.get::<_, i64>(2)? as u64,
        created_at: Timestamp::from_millis(row.get(3)?),
        confirmed_at: Timestamp::from_millis(row.get(4)?),
        superseded_at: row.get::<_, Option<i64>>(5)?.map(Timestamp::from_millis),
        rows: row.get::<_, i64>(6)? as u64,
        groups: parse_col(serde_json::from_str(&row.get::<_, String>(7)?))?,
        valid_until: Timestamp::from_millis(row.get(8)?),
        upload: row.get(9)?,
    })
}

#[async_trait]
impl VersionStore for SqliteControlStore {
    async fn current_version(
        &self,
        estab: &Estab,
        result_set: &str,
    ) -> Result<Option<VersionRecord>, StoreError> {
        let (estab, rs) = (estab.clone(), result_set.to_owned());
        self.call(move |c| {
            Ok(c.query_row_cached(
                &format!("SELECT {VERSION_COLUMNS} FROM versions WHERE estab = ?1 AND result_set = ?2 AND superseded_at IS NULL"),
                [estab.as_str(), rs.as_str()],
                version_from_row,
            )
            .optional()?)
        })
        .await
    }

    async fn version_record(
        &self,
        estab: &Estab,
        result_set: &str,
        version: u64,
    ) -> Result<Option<VersionRecord>, StoreError> {
        let (estab, rs) = (estab.clone(), result_set.to_owned());
        self.call(move |c| {
            Ok(c.query_row_cached(
                &format!(
                    "SELECT {VERSION_COLUMNS} FROM versions
                     WHERE estab = ?1 AND result_set = ?2 AND version = ?3"
                ),
                params![estab.as_str(), rs, version as i64],
                version_from_row,
            )
            .optional()?)
        })
        .await
    }

    async fn current_versions(&self, estab: &Estab) -> Result<Vec<VersionRecord>, StoreError> {
        let estab = estab.clone();
        self.call(move |c| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {VERSION_COLUMNS} FROM versions WHERE estab = ?1 AND superseded_at IS NULL"
            ))?;
            let rows = stmt
                .query_map([estab.as_str()], version_from_row)?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(rows)
        })
        .await
    }

    async fn confirm_version(
        &self,
        estab: &Estab,
        result_set: &str,
        version: u64,
        confirmed_at: Timestamp,
        valid_until: Timestamp,
    ) -> Result<(), StoreError> {
        let (estab, rs) = (estab.clone(), result_set.to_owned());
        self.call(move |c| {
            let changed = c.execute_cached(
                "UPDATE versions SET confirmed_at = ?4, valid_until = ?5
                 WHERE estab = ?1 AND result_set = ?2 AND version = ?3 AND superseded_at IS NULL",
                params![
                    estab.as_str(),
                    rs,
                    version as i64,
                    confirmed_at.millis(),
                    valid_until.millis()
                ],
            )?;
            if changed == 0 {
                return Err(DbError::Store(StoreError::Conflict(format!(
                    "{rs} version {version} is no longer current"
                ))));
            }
            Ok(())
        })
        .await
    }

    /// One transaction, so the chunk is all or none here as on DynamoDB.
    async fn publish_chunk(
        &self,
        publications: &[Publication],
        now: Timestamp,
    ) -> Result<(), StoreError> {
        debug_assert!(
            publications.len() <= PUBLICATION_CHUNK,
            "publish_versions chunks"
        );
        let publications = publications.to_vec();
        self.call(move |c| {
            let tx = c.transaction()?;
            for p in &publications {
                let r = &p.record;
                let current: Option<i64> = tx
                    .query_row(
                        "SELECT version FROM versions WHERE estab = ?1 AND result_set = ?2 AND superseded_at IS NULL",
                        [r.estab.as_str(), r.result_set.as_str()],
                        |row| row.get(0),
                    )
                    .optional()?;
                if current.map(|v| v as u64) != p.replaces {
                    return Err(DbError::Store(StoreError::Conflict(format!(
                        "{} was replaced by another upload meanwhile",
                        r.result_set
                    ))));
                }
                if let Some(old) = current {
                    tx.execute_cached(
                        "UPDATE versions SET superseded_at = ?4 WHERE estab = ?1 AND result_set = ?2 AND version = ?3",
                        params![r.estab.as_str(), r.result_set, old, now.millis()],
                    )?;
                }
                tx.execute_cached(
                    &format!("INSERT INTO versions ({VERSION_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"),
                    params![
                        r.estab.as_str(),
                        r.result_set,
                        r.version as i64,
                        r.created_at.millis(),
                        r.confirmed_at.millis(),
                        r.superseded_at.map(Timestamp::millis),
                        r.rows as i64,
                        serde_json::to_string(&r.groups)?,
                        r.valid_until.millis(),
                        r.upload,
                    ],
                )?;
            }
            tx.commit()?;
            Ok(())
        })
        .await
    }
}
