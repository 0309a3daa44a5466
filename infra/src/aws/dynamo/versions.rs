//! Result-set versions: an upload's publications in one transaction (the `HEAD#` items, the new versions, the superseded ones), or none.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{Put, TransactWriteItem, Update};
use rollcall_core::model::{Estab, VersionRecord};
use rollcall_core::ports::{PUBLICATION_CHUNK, Publication, StoreError, VersionStore};
use rollcall_core::timestamp::Timestamp;

use super::DynamoControlStore;
use super::codec::{
    Item, TTL_MARGIN, conditional, id, json, key_item, n, number, optional_number, parsed, s,
    school_pk, text, time, version_sk,
};

pub(super) fn version_item(v: &VersionRecord) -> Item {
    let mut item = key_item(school_pk(&v.estab), &version_sk(&v.result_set, v.version));
    item.insert("gsi1pk".into(), s("VERSIONS"));
    item.insert(
        "gsi1sk".into(),
        s(format!("{}#{}#{:010}", v.estab, v.result_set, v.version)),
    );
    item.insert("estab".into(), s(v.estab.as_str()));
    item.insert("result_set".into(), s(&v.result_set));
    item.insert("version".into(), n(v.version));
    item.insert("created_at".into(), n(v.created_at.millis()));
    item.insert("confirmed_at".into(), n(v.confirmed_at.millis()));
    if let Some(at) = v.superseded_at {
        item.insert("superseded_at".into(), n(at.millis()));
    }
    item.insert("rows".into(), n(v.rows));
    item.insert("groups".into(), json(&v.groups));
    item.insert("valid_until".into(), n(v.valid_until.millis()));
    item.insert("upload".into(), s(&v.upload));
    item.insert("expires_at".into(), n(version_expiry(v.valid_until)));
    item
}

/// The TTL of a version record: a while after its data's disposal date, so the purge (which
/// deletes the objects first) normally gets there before DynamoDB does.
pub(super) fn version_expiry(valid_until: Timestamp) -> i64 {
    valid_until
        .plus(rollcall_core::model::DISPOSAL_AFTER)
        .plus(TTL_MARGIN)
        .seconds()
}

pub(super) fn version_from(item: &Item) -> Result<VersionRecord, StoreError> {
    Ok(VersionRecord {
        estab: id(Estab::parse(&text(item, "estab")?), "estab")?,
        result_set: text(item, "result_set")?,
        version: number(item, "version")? as u64,
        created_at: time(item, "created_at")?,
        confirmed_at: time(item, "confirmed_at")?,
        superseded_at: optional_number(item, "superseded_at")?.map(Timestamp::from_millis),
        rows: number(item, "rows")? as u64,
        groups: parsed(item, "groups")?,
        valid_until: time(item, "valid_until")?,
        upload: text(item, "upload")?,
    })
}

#[async_trait]
impl VersionStore for DynamoControlStore {
    async fn current_version(
        &self,
        estab: &Estab,
        result_set: &str,
    ) -> Result<Option<VersionRecord>, StoreError> {
        let Some(head) = self
            .get(school_pk(estab), &format!("HEAD#{result_set}"))
            .await?
        else {
            return Ok(None);
        };
        let Some(current) = optional_number(&head, "current")? else {
            return Ok(None);
        };
        self.get(school_pk(estab), &version_sk(result_set, current as u64))
            .await?
            .map(|item| version_from(&item))
            .transpose()
    }

    async fn version_record(
        &self,
        estab: &Estab,
        result_set: &str,
        version: u64,
    ) -> Result<Option<VersionRecord>, StoreError> {
        self.get(school_pk(estab), &version_sk(result_set, version))
            .await?
            .map(|item| version_from(&item))
            .transpose()
    }

    /// The school's version items, less those superseded (the one a `HEAD#` points at is
    /// the only one of its result set without `superseded_at`).
    async fn current_versions(&self, estab: &Estab) -> Result<Vec<VersionRecord>, StoreError> {
        self.query_prefix(school_pk(estab), "VERSION#", true, None)
            .await?
            .iter()
            .map(version_from)
            .filter(|v| !matches!(v, Ok(v) if v.superseded_at.is_some()))
            .collect()
    }

    async fn confirm_version(
        &self,
        estab: &Estab,
        result_set: &str,
        version: u64,
        confirmed_at: Timestamp,
        valid_until: Timestamp,
    ) -> Result<(), StoreError> {
        self.client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(school_pk(estab)))
            .key("sk", s(version_sk(result_set, version)))
            .update_expression(
                "SET confirmed_at = :at, valid_until = :until, expires_at = :expires",
            )
            .condition_expression("attribute_exists(pk) AND attribute_not_exists(superseded_at)")
            .expression_attribute_values(":at", n(confirmed_at.millis()))
            .expression_attribute_values(":until", n(valid_until.millis()))
            .expression_attribute_values(":expires", n(version_expiry(valid_until)))
            .send()
            .await
            .map_err(|e| conditional(e, "the version is no longer current"))?;
        Ok(())
    }

    /// One transaction: at most [`PUBLICATION_CHUNK`] publications, three items each.
    async fn publish_chunk(
        &self,
        publications: &[Publication],
        now: Timestamp,
    ) -> Result<(), StoreError> {
        debug_assert!(
            publications.len() <= PUBLICATION_CHUNK,
            "publish_versions chunks"
        );
        let mut actions = Vec::with_capacity(publications.len() * 3);
        for publication in publications {
            let record = &publication.record;
            let pk = school_pk(&record.estab);
            let mut head = key_item(pk.clone(), &format!("HEAD#{}", record.result_set));
            head.insert("current".into(), n(record.version));
            let head_put = Put::builder().table_name(&self.table).set_item(Some(head));
            let head_put = match publication.replaces {
                None => head_put
                    .condition_expression(
                        "attribute_not_exists(pk) OR attribute_not_exists(#current)",
                    )
                    .expression_attribute_names("#current", "current"),
                Some(old) => head_put
                    .condition_expression("#current = :old")
                    .expression_attribute_names("#current", "current")
                    .expression_attribute_values(":old", n(old)),
            };
            actions.push(
                TransactWriteItem::builder()
                    .put(head_put.build().map_err(StoreError::unavailable)?)
                    .build(),
            );
            actions.push(self.put(version_item(record), "attribute_not_exists(pk)")?);
            if let Some(old) = publication.replaces {
                let update = Update::builder()
                    .table_name(&self.table)
                    .key("pk", s(pk))
                    .key("sk", s(version_sk(&record.result_set, old)))
                    .update_expression("SET superseded_at = :now")
                    .condition_expression("attribute_exists(pk)")
                    .expression_attribute_values(":now", n(now.millis()))
                    .build()
                    .map_err(StoreError::unavailable)?;
                actions.push(TransactWriteItem::builder().update(update).build());
            }
        }
        self.transact(actions, "another upload published first")
            .await
    }
}
