//! Control store on DynamoDB: one table, keyed `pk` (partition) and `sk` (sort), with one
//! global secondary index `gsi1` (`gsi1pk`, `gsi1sk`) and a TTL on `expires_at` (epoch
//! seconds) as a backstop for what the purge deletes itself.
//!
//! | item | pk | sk | gsi1pk / gsi1sk | expires_at |
//! |---|---|---|---|---|
//! | school | `SCHOOL#{estab}` | `#SCHOOL` | `SCHOOLS` / `{estab}` | |
//! | agent / admin key → school | `AGENTKEY#{hash}` / `ADMINKEY#{hash}` | `#KEY` | | |
//! | partner | `PARTNERS` | `PARTNER#{id}` | | |
//! | management secret → partner | `MGMTKEY#{hash}` | `#KEY` | | |
//! | consent | `SCHOOL#{estab}` | `CONSENT#{partner}` | `PARTNER#{partner}` / `CONSENT#{estab}` | |
//! | token | `TOKEN#{hash}` | `#TOKEN` | `TOKENS` / `{expiry ms}` | expiry |
//! | version | `SCHOOL#{estab}` | `VERSION#{rs}#{version}` | `VERSIONS` / `{estab}#{rs}#{version}` | disposal + 7 days |
//! | current version of a result set | `SCHOOL#{estab}` | `HEAD#{rs}` | | |
//! | access log entry | `SCHOOL#{estab}` | `ACCESS#{at ms}#{random}` | | |
//! | staged (large) upload | `SCHOOL#{estab}` | `UPLOAD#{id}` | `UPLOADS` / `{expiry ms}` | expiry |
//! | opt-outs of a partner | `SCHOOL#{estab}` | `OPTOUT#{partner}` | | |
//! | write-back task | `SCHOOL#{estab}` | `TASK#{tracking id}` | `TASKS` / `{expiry ms}` | expiry |
//! | the agent's latest health report | `SCHOOL#{estab}` | `AGENTHEALTH` | | |
//! | idempotency key of an upload | `SCHOOL#{estab}` | `IDEMPOTENCY#{key}` | `IDEMPOTENCY` / `{expiry ms}` | expiry |
//!
//! Access patterns: a school, its consents, versions and access log are one partition
//! (`SCHOOL#`), read with strongly consistent queries; lookups by secret go through pointer
//! items written in the same transaction as what they point to; a partner's consents, expired
//! tokens and every version (for the purge) come from `gsi1`. Every state change that can race
//! is conditional: creating anything (`attribute_not_exists`), consent changes (on `version`),
//! publishing (on the `HEAD#` item's `current`, in one transaction with the new and the
//! superseded version), claiming a staged upload (on `status` and `claimed_at`) and recording
//! its outcome (on the claim being still ours), claiming an idempotency key (on the item being
//! absent, released, expired or stale) and completing or releasing it (on `claim`). A failed condition is the port's `Conflict`.

mod access_log;
mod agent_health;
mod codec;
mod consents;
mod disposal;
mod idempotency;
mod opt_outs;
mod partners;
mod registry;
mod schools;
mod staged_uploads;
mod tasks;
mod tokens;
mod versions;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{Put, TransactWriteItem};
use codec::{GSI, Item, conditional, s, text};
use rollcall_core::ports::StoreError;

pub struct DynamoControlStore {
    client: Client,
    table: String,
}

impl DynamoControlStore {
    pub fn new(client: Client, table: String) -> Self {
        Self { client, table }
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    async fn get(&self, pk: String, sk: &str) -> Result<Option<Item>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(pk))
            .key("sk", s(sk))
            .consistent_read(true)
            .send()
            .await
            .map_err(StoreError::unavailable)?;
        Ok(output.item)
    }

    /// Every item of a partition whose sort key starts with `prefix`.
    async fn query_prefix(
        &self,
        pk: String,
        prefix: &str,
        forward: bool,
        limit: Option<usize>,
    ) -> Result<Vec<Item>, StoreError> {
        let mut request = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
            .expression_attribute_values(":pk", s(pk))
            .expression_attribute_values(":prefix", s(prefix))
            .consistent_read(true)
            .scan_index_forward(forward);
        if let Some(limit) = limit {
            request = request.limit(limit.min(1000) as i32);
        }
        let mut items = Vec::new();
        let mut pages = request.into_paginator().send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(StoreError::unavailable)?;
            items.extend(page.items.unwrap_or_default());
            if limit.is_some_and(|l| items.len() >= l) {
                break;
            }
        }
        if let Some(limit) = limit {
            items.truncate(limit);
        }
        Ok(items)
    }

    /// Every item of a `gsi1` partition, optionally with sort keys before `before`.
    async fn query_index(
        &self,
        gsi1pk: &str,
        before: Option<String>,
    ) -> Result<Vec<Item>, StoreError> {
        let mut request = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(GSI)
            .expression_attribute_values(":pk", s(gsi1pk));
        request = match before {
            Some(bound) => request
                .key_condition_expression("gsi1pk = :pk AND gsi1sk < :bound")
                .expression_attribute_values(":bound", s(bound)),
            None => request.key_condition_expression("gsi1pk = :pk"),
        };
        let mut items = Vec::new();
        let mut pages = request.into_paginator().send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(StoreError::unavailable)?;
            items.extend(page.items.unwrap_or_default());
        }
        Ok(items)
    }

    async fn transact(
        &self,
        actions: Vec<TransactWriteItem>,
        what: &str,
    ) -> Result<(), StoreError> {
        self.client
            .transact_write_items()
            .set_transact_items(Some(actions))
            .send()
            .await
            .map_err(|error| {
                // Cancelled for a failed condition or a concurrent transaction: a lost race.
                let conflict = match error.as_service_error() {
                    Some(TransactWriteItemsError::TransactionCanceledException(e)) => e
                        .cancellation_reasons()
                        .iter()
                        .filter_map(|r| r.code())
                        .any(|code| {
                            code == "ConditionalCheckFailed" || code == "TransactionConflict"
                        }),
                    _ => false,
                };
                if conflict {
                    StoreError::Conflict(what.to_owned())
                } else {
                    StoreError::unavailable(error)
                }
            })?;
        Ok(())
    }

    async fn delete_items(&self, items: &[Item]) -> Result<(), StoreError> {
        for item in items {
            self.client
                .delete_item()
                .table_name(&self.table)
                .key("pk", s(text(item, "pk")?))
                .key("sk", s(text(item, "sk")?))
                .send()
                .await
                .map_err(StoreError::unavailable)?;
        }
        Ok(())
    }

    /// Deletes the items of a `gsi1` partition keyed by a time (ms) before `bound`; returns
    /// how many.
    async fn delete_indexed_before(&self, gsi1pk: &str, bound: i64) -> Result<u64, StoreError> {
        let expired = self
            .query_index(gsi1pk, Some(format!("{bound:015}")))
            .await?;
        self.delete_items(&expired).await?;
        Ok(expired.len() as u64)
    }

    /// Puts an item, replacing any with its key.
    async fn put_item(&self, item: Item) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(StoreError::unavailable)?;
        Ok(())
    }

    /// Puts an item that must not exist yet; an existing one is `Conflict(what)`.
    async fn put_new(&self, item: Item, what: &str) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await
            .map_err(|e| conditional(e, what))?;
        Ok(())
    }

    fn put(&self, item: Item, condition: &str) -> Result<TransactWriteItem, StoreError> {
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression(condition)
            .build()
            .map_err(StoreError::unavailable)?;
        Ok(TransactWriteItem::builder().put(put).build())
    }
}
