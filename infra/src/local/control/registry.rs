//! Registering schools (with the pointers that find them by key hash) and partners (by
//! management secret hash): the operator's commands.

use super::codec::Cached;
use async_trait::async_trait;
use rollcall_core::model::{Partner, School};
use rollcall_core::ports::{Registry, StoreError};
use rollcall_core::secret::KeyHash;

use rusqlite::params;

use super::codec::scopes_to_text;
use super::partners::PARTNER_COLUMNS;
use super::schools::SCHOOL_COLUMNS;
use super::{DbError, SqliteControlStore};

#[async_trait]
impl Registry for SqliteControlStore {
    async fn insert_school(&self, school: &School) -> Result<(), StoreError> {
        let s = school.clone();
        self.call(move |c| {
            c.execute_cached(
                &format!("INSERT INTO schools ({SCHOOL_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"),
                params![
                    s.estab.as_str(),
                    s.name,
                    s.agent_key_hash.as_str(),
                    s.admin_key_hash.as_str(),
                    s.row_hash_key,
                    s.created_at.millis()
                ],
            )?;
            Ok(())
        })
        .await
    }

    async fn replace_admin_key(&self, school: &School, old: &KeyHash) -> Result<(), StoreError> {
        let (estab, new, old) = (
            school.estab.clone(),
            school.admin_key_hash.clone(),
            old.clone(),
        );
        self.call(move |c| {
            let changed = c.execute_cached(
                "UPDATE schools SET admin_key_hash = ?1 WHERE estab = ?2 AND admin_key_hash = ?3",
                params![new.as_str(), estab.as_str(), old.as_str()],
            )?;
            if changed == 0 {
                return Err(DbError::Store(StoreError::Conflict(format!(
                    "school {estab}'s admin key changed meanwhile, or it is not registered"
                ))));
            }
            Ok(())
        })
        .await
    }

    async fn insert_partner(&self, partner: &Partner) -> Result<(), StoreError> {
        let p = partner.clone();
        self.call(move |c| {
            c.execute_cached(
                &format!("INSERT INTO partners ({PARTNER_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5)"),
                params![
                    p.id.as_str(),
                    p.name,
                    scopes_to_text(&p.requested_scopes),
                    p.management_secret_hash.as_str(),
                    p.created_at.millis()
                ],
            )?;
            Ok(())
        })
        .await
    }
}
