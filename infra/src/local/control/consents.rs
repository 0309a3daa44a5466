//! One consent per school and partner, changed only from the version last read.

use super::codec::Cached;
use async_trait::async_trait;
use rollcall_core::model::{Consent, Estab, PartnerId};
use rollcall_core::ports::{ConsentStore, StoreError};
use rollcall_core::secret::KeyHash;
use rollcall_core::timestamp::Timestamp;
use rusqlite::{OptionalExtension, Row, params};

use super::codec::{parse_col, scopes_from_text, scopes_to_text};
use super::{DbError, SqliteControlStore};

pub(super) const CONSENT_COLUMNS: &str = "estab, partner, scopes, version, granted_at, updated_at, end_date, secret_hash, secret_sealed, secret_generation";

pub(super) fn consent_from_row(row: &Row<'_>) -> rusqlite::Result<Consent> {
    Ok(Consent {
        estab: parse_col(Estab::parse(&row.get::<_, String>(0)?))?,
        partner: parse_col(PartnerId::parse(&row.get::<_, String>(1)?))?,
        scopes: scopes_from_text(row.get(2)?)?,
        version: row.get::<_, i64>(3)? as u64,
        granted_at: Timestamp::from_millis(row.get(4)?),
        updated_at: Timestamp::from_millis(row.get(5)?),
        end_date: row.get::<_, Option<i64>>(6)?.map(Timestamp::from_millis),
        secret_hash: KeyHash::from_hex(row.get(7)?),
        secret_sealed: row.get(8)?,
        secret_generation: row.get::<_, i64>(9)? as u64,
    })
}

#[async_trait]
impl ConsentStore for SqliteControlStore {
    async fn consent(
        &self,
        estab: &Estab,
        partner: &PartnerId,
    ) -> Result<Option<Consent>, StoreError> {
        let (estab, partner) = (estab.clone(), partner.clone());
        self.call(move |c| {
            Ok(c.query_row_cached(
                &format!(
                    "SELECT {CONSENT_COLUMNS} FROM consents WHERE estab = ?1 AND partner = ?2"
                ),
                [estab.as_str(), partner.as_str()],
                consent_from_row,
            )
            .optional()?)
        })
        .await
    }

    async fn consents_of_school(&self, estab: &Estab) -> Result<Vec<Consent>, StoreError> {
        let estab = estab.clone();
        self.call(move |c| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {CONSENT_COLUMNS} FROM consents WHERE estab = ?1 ORDER BY partner"
            ))?;
            let rows = stmt
                .query_map([estab.as_str()], consent_from_row)?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(rows)
        })
        .await
    }

    async fn consents_of_partner(&self, partner: &PartnerId) -> Result<Vec<Consent>, StoreError> {
        let partner = partner.clone();
        self.call(move |c| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {CONSENT_COLUMNS} FROM consents WHERE partner = ?1 ORDER BY estab"
            ))?;
            let rows = stmt
                .query_map([partner.as_str()], consent_from_row)?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(rows)
        })
        .await
    }

    async fn put_consent(
        &self,
        consent: &Consent,
        expected: Option<u64>,
    ) -> Result<(), StoreError> {
        let k = consent.clone();
        self.call(move |c| {
            let tx = c.transaction()?;
            let stored: Option<i64> = tx
                .query_row(
                    "SELECT version FROM consents WHERE estab = ?1 AND partner = ?2",
                    [k.estab.as_str(), k.partner.as_str()],
                    |r| r.get(0),
                )
                .optional()?;
            if stored.map(|v| v as u64) != expected {
                return Err(DbError::Store(StoreError::Conflict(format!(
                    "consent changed meanwhile (expected version {expected:?}, found {stored:?})"
                ))));
            }
            tx.execute_cached(
                &format!("INSERT OR REPLACE INTO consents ({CONSENT_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"),
                params![
                    k.estab.as_str(),
                    k.partner.as_str(),
                    scopes_to_text(&k.scopes),
                    k.version as i64,
                    k.granted_at.millis(),
                    k.updated_at.millis(),
                    k.end_date.map(Timestamp::millis),
                    k.secret_hash.as_str(),
                    k.secret_sealed,
                    k.secret_generation as i64,
                ],
            )?;
            tx.commit()?;
            Ok(())
        })
        .await
    }
}
