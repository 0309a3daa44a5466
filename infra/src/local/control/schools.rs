//! Schools, looked up by establishment number or by the hash of their agent or admin key.

use super::codec::Cached;
use async_trait::async_trait;
use rollcall_core::model::{Estab, School};
use rollcall_core::ports::{SchoolStore, StoreError};
use rollcall_core::secret::KeyHash;
use rollcall_core::timestamp::Timestamp;
use rusqlite::{OptionalExtension, Row};

use super::SqliteControlStore;
use super::codec::parse_col;

pub(super) const SCHOOL_COLUMNS: &str =
    "estab, name, agent_key_hash, admin_key_hash, row_hash_key, created_at";

pub(super) fn school_from_row(row: &Row<'_>) -> rusqlite::Result<School> {
    Ok(School {
        estab: parse_col(Estab::parse(&row.get::<_, String>(0)?))?,
        name: row.get(1)?,
        agent_key_hash: KeyHash::from_hex(row.get(2)?),
        admin_key_hash: KeyHash::from_hex(row.get(3)?),
        row_hash_key: row.get(4)?,
        created_at: Timestamp::from_millis(row.get(5)?),
    })
}

#[async_trait]
impl SchoolStore for SqliteControlStore {
    async fn school(&self, estab: &Estab) -> Result<Option<School>, StoreError> {
        let estab = estab.clone();
        self.call(move |c| {
            Ok(c.query_row_cached(
                &format!("SELECT {SCHOOL_COLUMNS} FROM schools WHERE estab = ?1"),
                [estab.as_str()],
                school_from_row,
            )
            .optional()?)
        })
        .await
    }

    async fn school_by_agent_key(&self, hash: &KeyHash) -> Result<Option<School>, StoreError> {
        let hash = hash.clone();
        self.call(move |c| {
            Ok(c.query_row_cached(
                &format!("SELECT {SCHOOL_COLUMNS} FROM schools WHERE agent_key_hash = ?1"),
                [hash.as_str()],
                school_from_row,
            )
            .optional()?)
        })
        .await
    }

    async fn school_by_admin_key(&self, hash: &KeyHash) -> Result<Option<School>, StoreError> {
        let hash = hash.clone();
        self.call(move |c| {
            Ok(c.query_row_cached(
                &format!("SELECT {SCHOOL_COLUMNS} FROM schools WHERE admin_key_hash = ?1"),
                [hash.as_str()],
                school_from_row,
            )
            .optional()?)
        })
        .await
    }

    async fn schools(&self) -> Result<Vec<School>, StoreError> {
        self.call(move |c| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {SCHOOL_COLUMNS} FROM schools ORDER BY estab"
            ))?;
            let rows = stmt
                .query_map([], school_from_row)?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(rows)
        })
        .await
    }
}
