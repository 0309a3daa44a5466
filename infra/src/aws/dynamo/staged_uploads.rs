//! Staged uploads: claimed by one ingest at a time, outcome recorded by the claimer.

use async_trait::async_trait;
use rollcall_core::model::Estab;
use rollcall_core::ports::{StagedUploadStore, StoreError};
use rollcall_core::staging::{StagedState, StagedUpload};
use rollcall_core::timestamp::Timestamp;

use super::DynamoControlStore;
use super::codec::{
    Item, conditional, id, json, key_item, n, number, parsed, s, school_pk, text, time,
};

pub(super) fn upload_sk(id: &str) -> String {
    format!("UPLOAD#{id}")
}

pub(super) fn staged_item(u: &StagedUpload) -> Item {
    let mut item = key_item(school_pk(&u.estab), &upload_sk(&u.id));
    item.insert("gsi1pk".into(), s("UPLOADS"));
    item.insert("gsi1sk".into(), s(format!("{:015}", u.expires_at.millis())));
    item.insert("estab".into(), s(u.estab.as_str()));
    item.insert("id".into(), s(&u.id));
    item.insert("content_length".into(), n(u.content_length));
    item.insert("created_at".into(), n(u.created_at.millis()));
    item.insert("url_expires_at".into(), n(u.url_expires_at.millis()));
    item.insert("expires_at_ms".into(), n(u.expires_at.millis()));
    item.insert("expires_at".into(), n(u.expires_at.seconds()));
    item.insert("status".into(), s(u.state.name()));
    item.insert("state".into(), json(&u.state));
    item
}

pub(super) fn staged_from(item: &Item) -> Result<StagedUpload, StoreError> {
    Ok(StagedUpload {
        estab: id(Estab::parse(&text(item, "estab")?), "estab")?,
        id: text(item, "id")?,
        content_length: number(item, "content_length")? as u64,
        created_at: time(item, "created_at")?,
        url_expires_at: time(item, "url_expires_at")?,
        expires_at: time(item, "expires_at_ms")?,
        state: parsed(item, "state")?,
    })
}

#[async_trait]
impl StagedUploadStore for DynamoControlStore {
    async fn insert_staged_upload(&self, upload: &StagedUpload) -> Result<(), StoreError> {
        self.put_new(staged_item(upload), "the staged upload exists")
            .await
    }

    async fn staged_upload(
        &self,
        estab: &Estab,
        id: &str,
    ) -> Result<Option<StagedUpload>, StoreError> {
        self.get(school_pk(estab), &upload_sk(id))
            .await?
            .map(|item| staged_from(&item))
            .transpose()
    }

    async fn claim_staged_upload(
        &self,
        estab: &Estab,
        id: &str,
        now: Timestamp,
        stale_before: Timestamp,
    ) -> Result<StagedUpload, StoreError> {
        let claimed = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(school_pk(estab)))
            .key("sk", s(upload_sk(id)))
            .update_expression("SET #status = :ingesting, claimed_at = :now, #state = :state")
            .condition_expression(
                "attribute_exists(pk) AND (#status = :waiting \
                 OR (#status = :ingesting AND claimed_at < :stale))",
            )
            .expression_attribute_names("#status", "status")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":waiting", s("waiting"))
            .expression_attribute_values(":ingesting", s("ingesting"))
            .expression_attribute_values(":now", n(now.millis()))
            .expression_attribute_values(":stale", n(stale_before.millis()))
            .expression_attribute_values(":state", json(&StagedState::Ingesting { since: now }))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllNew)
            .send()
            .await;
        match claimed {
            Ok(output) => staged_from(&output.attributes.unwrap_or_default()),
            Err(error) => match conditional(error, "") {
                StoreError::Conflict(_) => match self.staged_upload(estab, id).await? {
                    None => Err(StoreError::NotFound(format!("staged upload {id}"))),
                    Some(upload) => Err(StoreError::Conflict(format!(
                        "staged upload {id} is {}",
                        upload.state.name()
                    ))),
                },
                other => Err(other),
            },
        }
    }

    async fn finish_staged_upload(
        &self,
        estab: &Estab,
        id: &str,
        since: Timestamp,
        outcome: &StagedState,
    ) -> Result<(), StoreError> {
        self.client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(school_pk(estab)))
            .key("sk", s(upload_sk(id)))
            .update_expression("SET #status = :status, #state = :state")
            .condition_expression("#status = :ingesting AND claimed_at = :since")
            .expression_attribute_names("#status", "status")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":status", s(outcome.name()))
            .expression_attribute_values(":state", json(outcome))
            .expression_attribute_values(":ingesting", s("ingesting"))
            .expression_attribute_values(":since", n(since.millis()))
            .send()
            .await
            .map_err(|e| {
                conditional(
                    e,
                    &format!("staged upload {id} is no longer claimed by this ingest"),
                )
            })?;
        Ok(())
    }
}
