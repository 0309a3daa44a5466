//! The agent's health: one row per school, replaced by each report.

use super::codec::Cached;
use async_trait::async_trait;
use rollcall_core::agent_health::HealthRecord;
use rollcall_core::model::Estab;
use rollcall_core::ports::{AgentHealthStore, StoreError};
use rollcall_core::timestamp::Timestamp;
use rusqlite::{OptionalExtension, params};

use super::SqliteControlStore;
use super::codec::parse_col;

#[async_trait]
impl AgentHealthStore for SqliteControlStore {
    async fn put_agent_health(&self, record: &HealthRecord) -> Result<(), StoreError> {
        let r = record.clone();
        self.call(move |c| {
            c.execute_cached(
                "INSERT INTO agent_health (estab, received_at, report) VALUES (?1, ?2, ?3)
                 ON CONFLICT (estab) DO UPDATE SET
                     received_at = excluded.received_at, report = excluded.report",
                params![
                    r.estab.as_str(),
                    r.received_at.millis(),
                    serde_json::to_string(&r.report)?
                ],
            )?;
            Ok(())
        })
        .await
    }

    async fn agent_health(&self, estab: &Estab) -> Result<Option<HealthRecord>, StoreError> {
        let estab = estab.clone();
        self.call(move |c| {
            Ok(c.query_row_cached(
                "SELECT received_at, report FROM agent_health WHERE estab = ?1",
                [estab.as_str()],
                |row| {
                    Ok(HealthRecord {
                        estab: estab.clone(),
                        received_at: Timestamp::from_millis(row.get(0)?),
                        report: parse_col(serde_json::from_str(&row.get::<_, String>(1)?))?,
                    })
                },
            )
            .optional()?)
        })
        .await
    }
}
