//! A school's opt-outs of people, per partner.

use super::codec::Cached;
use std::collections::BTreeSet;

use async_trait::async_trait;
use rollcall_core::model::{Estab, PartnerId};
use rollcall_core::optout::{OptOutRecord, OptOuts};
use rollcall_core::ports::{OptOutStore, StoreError};
use rollcall_core::timestamp::Timestamp;
use rusqlite::{OptionalExtension, params};

use super::codec::parse_col;
use super::{DbError, SqliteControlStore};

#[async_trait]
impl OptOutStore for SqliteControlStore {
    async fn opt_outs(
        &self,
        estab: &Estab,
        partner: &PartnerId,
    ) -> Result<Option<OptOutRecord>, StoreError> {
        let (estab, partner) = (estab.clone(), partner.clone());
        self.call(move |c| {
            Ok(c.query_row_cached(
                "SELECT students, staff, contacts, updated_at, version FROM opt_outs
                 WHERE estab = ?1 AND partner = ?2",
                params![estab.as_str(), partner.as_str()],
                |row| {
                    let ids = |i: usize| -> rusqlite::Result<BTreeSet<String>> {
                        parse_col(serde_json::from_str(&row.get::<_, String>(i)?))
                    };
                    Ok(OptOutRecord {
                        estab: estab.clone(),
                        partner: partner.clone(),
                        people: OptOuts {
                            students: ids(0)?,
                            staff: ids(1)?,
                            contacts: ids(2)?,
                        },
                        updated_at: Timestamp::from_millis(row.get(3)?),
                        version: row.get::<_, i64>(4)? as u64,
                    })
                },
            )
            .optional()?)
        })
        .await
    }

    async fn put_opt_outs(
        &self,
        record: &OptOutRecord,
        expected: Option<u64>,
    ) -> Result<(), StoreError> {
        let r = record.clone();
        self.call(move |c| {
            let tx = c.transaction()?;
            let stored: Option<i64> = tx
                .query_row(
                    "SELECT version FROM opt_outs WHERE estab = ?1 AND partner = ?2",
                    [r.estab.as_str(), r.partner.as_str()],
                    |row| row.get(0),
                )
                .optional()?;
            if stored.map(|v| v as u64) != expected {
                return Err(DbError::Store(StoreError::Conflict(format!(
                    "the opt-outs changed meanwhile (expected version {expected:?}, found {stored:?})"
                ))));
            }
            tx.execute_cached(
                "INSERT OR REPLACE INTO opt_outs (estab, partner, students, staff, contacts, updated_at, version)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    r.estab.as_str(),
                    r.partner.as_str(),
                    serde_json::to_string(&r.people.students)?,
                    serde_json::to_string(&r.people.staff)?,
                    serde_json::to_string(&r.people.contacts)?,
                    r.updated_at.millis(),
                    r.version as i64,
                ],
            )?;
            tx.commit()?;
            Ok(())
        })
        .await
    }
}
