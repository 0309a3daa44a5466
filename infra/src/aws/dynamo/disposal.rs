//! What the purge deletes: versions, which it lists in full to judge, and records whose
//! lifetime has passed (tokens, staged uploads, tasks, idempotency keys).

use async_trait::async_trait;
use rollcall_core::model::{Estab, VersionRecord};
use rollcall_core::ports::{Disposal, StoreError};
use rollcall_core::timestamp::Timestamp;

use super::DynamoControlStore;
use super::codec::{n, s, school_pk, version_sk};
use super::versions::version_from;

#[async_trait]
impl Disposal for DynamoControlStore {
    async fn all_versions(&self) -> Result<Vec<VersionRecord>, StoreError> {
        self.query_index("VERSIONS", None)
            .await?
            .iter()
            .map(version_from)
            .collect()
    }

    async fn delete_version(
        &self,
        estab: &Estab,
        result_set: &str,
        version: u64,
    ) -> Result<(), StoreError> {
        // Unpoint the head first (if it points here), so no reader finds a missing version.
        let unpointed = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(school_pk(estab)))
            .key("sk", s(format!("HEAD#{result_set}")))
            .update_expression("REMOVE #current")
            .condition_expression("#current = :version")
            .expression_attribute_names("#current", "current")
            .expression_attribute_values(":version", n(version))
            .send()
            .await;
        if let Err(error) = unpointed {
            let lost_condition = error
                .as_service_error()
                .is_some_and(|e| e.is_conditional_check_failed_exception());
            if !lost_condition {
                return Err(StoreError::unavailable(error));
            }
        }
        self.client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(school_pk(estab)))
            .key("sk", s(version_sk(result_set, version)))
            .send()
            .await
            .map_err(StoreError::unavailable)?;
        Ok(())
    }

    async fn delete_expired_tokens(&self, now: Timestamp) -> Result<u64, StoreError> {
        self.delete_indexed_before("TOKENS", now.millis()).await
    }

    async fn delete_expired_staged_uploads(&self, now: Timestamp) -> Result<u64, StoreError> {
        self.delete_indexed_before("UPLOADS", now.millis() + 1)
            .await
    }

    async fn delete_expired_tasks(&self, now: Timestamp) -> Result<u64, StoreError> {
        self.delete_indexed_before("TASKS", now.millis() + 1).await
    }

    async fn delete_expired_idempotency_keys(&self, now: Timestamp) -> Result<u64, StoreError> {
        self.delete_indexed_before("IDEMPOTENCY", now.millis() + 1)
            .await
    }
}
