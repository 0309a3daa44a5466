//! Partners, looked up by id or by the hash of their management secret.

use super::codec::Cached;
use async_trait::async_trait;
use rollcall_core::model::{Partner, PartnerId};
use rollcall_core::ports::{PartnerStore, StoreError};
use rollcall_core::secret::KeyHash;
use rollcall_core::timestamp::Timestamp;
use rusqlite::{OptionalExtension, Row};

use super::SqliteControlStore;
use super::codec::{parse_col, scopes_from_text};

pub(super) const PARTNER_COLUMNS: &str =
    "id, name, requested_scopes, management_secret_hash, created_at";

pub(super) fn partner_from_row(row: &Row<'_>) -> rusqlite::Result<Partner> {
    Ok(Partner {
        id: parse_col(PartnerId::parse(&row.get::<_, String>(0)?))?,
        name: row.get(1)?,
        requested_scopes: scopes_from_text(row.get(2)?)?,
        management_secret_hash: KeyHash::from_hex(row.get(3)?),
        created_at: Timestamp::from_millis(row.get(4)?),
    })
}

#[async_trait]
impl PartnerStore for SqliteControlStore {
    async fn partner(&self, id: &PartnerId) -> Result<Option<Partner>, StoreError> {
        let id = id.clone();
        self.call(move |c| {
            Ok(c.query_row_cached(
                &format!("SELECT {PARTNER_COLUMNS} FROM partners WHERE id = ?1"),
                [id.as_str()],
                partner_from_row,
            )
            .optional()?)
        })
        .await
    }

    async fn partner_by_management_secret(
        &self,
        hash: &KeyHash,
    ) -> Result<Option<Partner>, StoreError> {
        let hash = hash.clone();
        self.call(move |c| {
            Ok(c.query_row_cached(
                &format!(
                    "SELECT {PARTNER_COLUMNS} FROM partners WHERE management_secret_hash = ?1"
                ),
                [hash.as_str()],
                partner_from_row,
            )
            .optional()?)
        })
        .await
    }

    async fn partners(&self) -> Result<Vec<Partner>, StoreError> {
        self.call(move |c| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {PARTNER_COLUMNS} FROM partners ORDER BY id"
            ))?;
            let rows = stmt
                .query_map([], partner_from_row)?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(rows)
        })
        .await
    }
}
