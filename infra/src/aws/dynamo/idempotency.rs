//! Idempotency keys: claimed with one conditional put, completed or released by their claimant
//! only. Releasing marks the item `released` rather than deleting it, so ingest needs no
//! `dynamodb:DeleteItem`; the purge (and the TTL) remove it when it expires.

use async_trait::async_trait;
use rollcall_core::idempotency::{
    IdempotencyKey, IdempotencyRecord, IdempotencyState, StoredAnswer,
};
use rollcall_core::model::Estab;
use rollcall_core::ports::{IdempotencyStore, StoreError};
use rollcall_core::timestamp::Timestamp;

use super::DynamoControlStore;
use super::codec::{Item, conditional, id, json, key_item, n, parsed, s, school_pk, text, time};

const RELEASED: &str = "released";

pub(super) fn idempotency_sk(key: &IdempotencyKey) -> String {
    format!("IDEMPOTENCY#{key}")
}

fn record_item(r: &IdempotencyRecord) -> Item {
    let mut item = key_item(school_pk(&r.estab), &idempotency_sk(&r.key));
    item.insert("gsi1pk".into(), s("IDEMPOTENCY"));
    item.insert("gsi1sk".into(), s(format!("{:015}", r.expires_at.millis())));
    item.insert("estab".into(), s(r.estab.as_str()));
    item.insert("key".into(), s(r.key.as_str()));
    item.insert("request_hash".into(), s(&r.request_hash));
    item.insert("created_at".into(), n(r.created_at.millis()));
    item.insert("expires_at_ms".into(), n(r.expires_at.millis()));
    item.insert("expires_at".into(), n(r.expires_at.seconds()));
    item.insert("status".into(), s(r.state.name()));
    if let IdempotencyState::InProgress { claim, since } = &r.state {
        item.insert("claim".into(), s(claim));
        item.insert("claimed_at".into(), n(since.millis()));
    }
    item.insert("state".into(), json(&r.state));
    item
}

fn record_from(item: &Item) -> Result<IdempotencyRecord, StoreError> {
    Ok(IdempotencyRecord {
        estab: id(Estab::parse(&text(item, "estab")?), "estab")?,
        key: id(IdempotencyKey::parse(&text(item, "key")?), "key")?,
        request_hash: text(item, "request_hash")?,
        created_at: time(item, "created_at")?,
        expires_at: time(item, "expires_at_ms")?,
        state: parsed(item, "state")?,
    })
}

impl DynamoControlStore {
    /// The key's item, released or not.
    async fn idempotency_item(
        &self,
        estab: &Estab,
        key: &IdempotencyKey,
    ) -> Result<Option<Item>, StoreError> {
        self.get(school_pk(estab), &idempotency_sk(key)).await
    }
}

#[async_trait]
impl IdempotencyStore for DynamoControlStore {
    async fn claim_idempotency_key(
        &self,
        record: &IdempotencyRecord,
        stale_before: Timestamp,
    ) -> Result<(), StoreError> {
        if record.claim_id().is_none() {
            return Err(StoreError::unavailable(
                "only a claim in progress can be claimed",
            ));
        }
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(record_item(record)))
            .condition_expression(
                "attribute_not_exists(pk) OR #status = :released OR expires_at_ms <= :now \
                 OR (#status = :in_progress AND claimed_at < :stale)",
            )
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":released", s(RELEASED))
            .expression_attribute_values(":in_progress", s("in_progress"))
            .expression_attribute_values(":now", n(record.created_at.millis()))
            .expression_attribute_values(":stale", n(stale_before.millis()))
            .send()
            .await
            .map_err(|e| conditional(e, "the idempotency key is held"))?;
        Ok(())
    }

    async fn idempotency_record(
        &self,
        estab: &Estab,
        key: &IdempotencyKey,
    ) -> Result<Option<IdempotencyRecord>, StoreError> {
        match self.idempotency_item(estab, key).await? {
            Some(item) if text(&item, "status")? != RELEASED => record_from(&item).map(Some),
            _ => Ok(None),
        }
    }

    async fn complete_idempotency_key(
        &self,
        estab: &Estab,
        key: &IdempotencyKey,
        claim: &str,
        answer: &StoredAnswer,
    ) -> Result<(), StoreError> {
        let state = IdempotencyState::Completed {
            answer: answer.clone(),
        };
        self.client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(school_pk(estab)))
            .key("sk", s(idempotency_sk(key)))
            .update_expression("SET #status = :completed, #state = :state REMOVE #claim")
            .condition_expression("#status = :in_progress AND #claim = :claim")
            .expression_attribute_names("#status", "status")
            .expression_attribute_names("#state", "state")
            .expression_attribute_names("#claim", "claim")
            .expression_attribute_values(":completed", s(state.name()))
            .expression_attribute_values(":state", json(&state))
            .expression_attribute_values(":in_progress", s("in_progress"))
            .expression_attribute_values(":claim", s(claim))
            .send()
            .await
            .map_err(|e| conditional(e, "the idempotency key is no longer held by this claim"))?;
        Ok(())
    }

    async fn release_idempotency_key(
        &self,
        estab: &Estab,
        key: &IdempotencyKey,
        claim: &str,
    ) -> Result<(), StoreError> {
        let released = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(school_pk(estab)))
            .key("sk", s(idempotency_sk(key)))
            .update_expression("SET #status = :released REMOVE #claim")
            .condition_expression("#status = :in_progress AND #claim = :claim")
            .expression_attribute_names("#status", "status")
            .expression_attribute_names("#claim", "claim")
            .expression_attribute_values(":released", s(RELEASED))
            .expression_attribute_values(":in_progress", s("in_progress"))
            .expression_attribute_values(":claim", s(claim))
            .send()
            .await;
        match released {
            Ok(_) => Ok(()),
            Err(error) => match conditional(error, "") {
                // The condition failed: fine if there is nothing to release, a conflict if
                // the key is someone else's or completed.
                StoreError::Conflict(_) => match self.idempotency_item(estab, key).await? {
                    Some(item) if text(&item, "status")? != RELEASED => Err(StoreError::Conflict(
                        "the idempotency key is held by another claim or completed".into(),
                    )),
                    _ => Ok(()),
                },
                other => Err(other),
            },
        }
    }
}
