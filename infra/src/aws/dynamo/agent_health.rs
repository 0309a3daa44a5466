//! The agent's health: one item per school (`AGENTHEALTH` in its partition), replaced by each
//! report.

use async_trait::async_trait;
use rollcall_core::agent_health::HealthRecord;
use rollcall_core::model::Estab;
use rollcall_core::ports::{AgentHealthStore, StoreError};

use super::DynamoControlStore;
use super::codec::{json, key_item, n, parsed, s, school_pk, time};

const HEALTH_SK: &str = "AGENTHEALTH";

#[async_trait]
impl AgentHealthStore for DynamoControlStore {
    async fn put_agent_health(&self, record: &HealthRecord) -> Result<(), StoreError> {
        let mut item = key_item(school_pk(&record.estab), HEALTH_SK);
        item.insert("estab".into(), s(record.estab.as_str()));
        item.insert("received_at".into(), n(record.received_at.millis()));
        item.insert("report".into(), json(&record.report));
        self.put_item(item).await
    }

    async fn agent_health(&self, estab: &Estab) -> Result<Option<HealthRecord>, StoreError> {
        let Some(item) = self.get(school_pk(estab), HEALTH_SK).await? else {
            return Ok(None);
        };
        Ok(Some(HealthRecord {
            estab: estab.clone(),
            received_at: time(&item, "received_at")?,
            report: parsed(&item, "report")?,
        }))
    }
}
