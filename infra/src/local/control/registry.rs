//! Registering schools (with the pointers that find them by key hash) and partners (by
//! management secret hash): the operator's commands.

use async_trait::async_trait;
use rollcall_core::model::{Partner, School};
use rollcall_core::ports::{Registry, StoreError};

use rusqlite::params;

use super::SqliteControlStore;
use super::codec::scopes_to_text;
use super::partners::PARTNER_COLUMNS;
use super::schools::SCHOOL_COLUMNS;

#[async_trait]
impl Registry for SqliteControlStore {
    async fn insert_school(&self, school: &School) -> Result<(), StoreError> {
        let s = school.clone();
        self.call(move |c| {
            c.execute(
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

    async fn insert_partner(&self, partner: &Partner) -> Result<(), StoreError> {
        let p = partner.clone();
        self.call(move |c| {
            c.execute(
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
