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
//!
//! Access patterns: a school, its consents, versions and access log are one partition
//! (`SCHOOL#`), read with strongly consistent queries; lookups by secret go through pointer
//! items written in the same transaction as what they point to; a partner's consents, expired
//! tokens and every version (for the purge) come from `gsi1`. Every state change that can race
//! is conditional: creating anything (`attribute_not_exists`), consent changes (on `version`),
//! publishing (on the `HEAD#` item's `current`, in one transaction with the new and the
//! superseded version), claiming a staged upload (on `status` and `claimed_at`) and recording
//! its outcome (on the claim being still ours). A failed condition is the port's `Conflict`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem, Update};
use rollcall_core::model::{
    AccessEntry, Consent, Estab, Partner, PartnerId, Refused, School, Token, VersionRecord,
};
use rollcall_core::optout::{OptOutRecord, OptOuts};
use rollcall_core::ports::{ControlStore, Publication, StoreError};
use rollcall_core::scope::ScopeSet;
use rollcall_core::secret::{KeyHash, random_hex};
use rollcall_core::staging::{StagedState, StagedUpload};
use rollcall_core::task::{Task, TaskState};
use rollcall_core::timestamp::{Duration, Timestamp};

type Item = HashMap<String, AttributeValue>;

const GSI: &str = "gsi1";
/// How long after its disposal date a version's record may linger if the purge never ran.
const TTL_MARGIN: Duration = Duration::days(7);
/// TransactWriteItems takes at most 100 actions; a publication is three.
const MAX_PUBLICATIONS: usize = 33;

static ACCESS_SEQUENCE: AtomicU64 = AtomicU64::new(0);

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

/// Maps a failed condition to `Conflict`, anything else to `Unavailable`.
fn conditional<E, R>(error: SdkError<E, R>, what: &str) -> StoreError
where
    E: std::error::Error + Send + Sync + 'static + ConditionFailure,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    match error.as_service_error() {
        Some(e) if e.is_condition_failure() => StoreError::Conflict(what.to_owned()),
        _ => StoreError::unavailable(error),
    }
}

trait ConditionFailure {
    fn is_condition_failure(&self) -> bool;
}

impl ConditionFailure for aws_sdk_dynamodb::operation::put_item::PutItemError {
    fn is_condition_failure(&self) -> bool {
        self.is_conditional_check_failed_exception()
    }
}

impl ConditionFailure for aws_sdk_dynamodb::operation::update_item::UpdateItemError {
    fn is_condition_failure(&self) -> bool {
        self.is_conditional_check_failed_exception()
    }
}

fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

fn n(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

fn b(value: &[u8]) -> AttributeValue {
    AttributeValue::B(Blob::new(value))
}

fn json(value: &impl serde::Serialize) -> AttributeValue {
    s(serde_json::to_string(value).expect("plain data serialises"))
}

fn malformed(name: &str) -> StoreError {
    StoreError::unavailable(format!("control item has no valid `{name}`"))
}

fn text(item: &Item, name: &str) -> Result<String, StoreError> {
    match item.get(name) {
        Some(AttributeValue::S(v)) => Ok(v.clone()),
        _ => Err(malformed(name)),
    }
}

fn number(item: &Item, name: &str) -> Result<i64, StoreError> {
    match item.get(name) {
        Some(AttributeValue::N(v)) => v.parse().map_err(|_| malformed(name)),
        _ => Err(malformed(name)),
    }
}

fn optional_number(item: &Item, name: &str) -> Result<Option<i64>, StoreError> {
    match item.get(name) {
        None | Some(AttributeValue::Null(_)) => Ok(None),
        Some(_) => number(item, name).map(Some),
    }
}

fn time(item: &Item, name: &str) -> Result<Timestamp, StoreError> {
    number(item, name).map(Timestamp::from_millis)
}

fn bytes(item: &Item, name: &str) -> Result<Vec<u8>, StoreError> {
    match item.get(name) {
        Some(AttributeValue::B(v)) => Ok(v.as_ref().to_vec()),
        _ => Err(malformed(name)),
    }
}

fn parsed<T: serde::de::DeserializeOwned>(item: &Item, name: &str) -> Result<T, StoreError> {
    serde_json::from_str(&text(item, name)?).map_err(|_| malformed(name))
}

fn id<T, E>(value: Result<T, E>, name: &str) -> Result<T, StoreError> {
    value.map_err(|_| malformed(name))
}

fn school_pk(estab: &Estab) -> String {
    format!("SCHOOL#{estab}")
}

fn version_sk(result_set: &str, version: u64) -> String {
    format!("VERSION#{result_set}#{version:010}")
}

fn key_item(pk: String, sk: &str) -> Item {
    HashMap::from([("pk".to_owned(), s(pk)), ("sk".to_owned(), s(sk))])
}

fn school_item(school: &School) -> Item {
    let mut item = key_item(school_pk(&school.estab), "#SCHOOL");
    item.insert("gsi1pk".into(), s("SCHOOLS"));
    item.insert("gsi1sk".into(), s(school.estab.as_str()));
    item.insert("estab".into(), s(school.estab.as_str()));
    item.insert("name".into(), s(&school.name));
    item.insert("agent_key_hash".into(), s(school.agent_key_hash.as_str()));
    item.insert("admin_key_hash".into(), s(school.admin_key_hash.as_str()));
    item.insert("row_hash_key".into(), b(&school.row_hash_key));
    item.insert("created_at".into(), n(school.created_at.millis()));
    item
}

fn school_from(item: &Item) -> Result<School, StoreError> {
    Ok(School {
        estab: id(Estab::parse(&text(item, "estab")?), "estab")?,
        name: text(item, "name")?,
        agent_key_hash: KeyHash::from_hex(text(item, "agent_key_hash")?),
        admin_key_hash: KeyHash::from_hex(text(item, "admin_key_hash")?),
        row_hash_key: bytes(item, "row_hash_key")?,
        created_at: time(item, "created_at")?,
    })
}

fn pointer(pk: String, target: &str) -> Item {
    let mut item = key_item(pk, "#KEY");
    item.insert("target".into(), s(target));
    item
}

fn partner_item(partner: &Partner) -> Item {
    let mut item = key_item("PARTNERS".into(), &format!("PARTNER#{}", partner.id));
    item.insert("id".into(), s(partner.id.as_str()));
    item.insert("name".into(), s(&partner.name));
    item.insert("requested_scopes".into(), json(&partner.requested_scopes));
    item.insert(
        "management_secret_hash".into(),
        s(partner.management_secret_hash.as_str()),
    );
    item.insert("created_at".into(), n(partner.created_at.millis()));
    item
}

fn partner_from(item: &Item) -> Result<Partner, StoreError> {
    Ok(Partner {
        id: id(PartnerId::parse(&text(item, "id")?), "id")?,
        name: text(item, "name")?,
        requested_scopes: parsed::<ScopeSet>(item, "requested_scopes")?,
        management_secret_hash: KeyHash::from_hex(text(item, "management_secret_hash")?),
        created_at: time(item, "created_at")?,
    })
}

fn consent_item(c: &Consent) -> Item {
    let mut item = key_item(school_pk(&c.estab), &format!("CONSENT#{}", c.partner));
    item.insert("gsi1pk".into(), s(format!("PARTNER#{}", c.partner)));
    item.insert("gsi1sk".into(), s(format!("CONSENT#{}", c.estab)));
    item.insert("estab".into(), s(c.estab.as_str()));
    item.insert("partner".into(), s(c.partner.as_str()));
    item.insert("scopes".into(), json(&c.scopes));
    item.insert("version".into(), n(c.version));
    item.insert("granted_at".into(), n(c.granted_at.millis()));
    item.insert("updated_at".into(), n(c.updated_at.millis()));
    if let Some(end) = c.end_date {
        item.insert("end_date".into(), n(end.millis()));
    }
    item.insert("secret_hash".into(), s(c.secret_hash.as_str()));
    item.insert("secret_sealed".into(), b(&c.secret_sealed));
    item.insert("secret_generation".into(), n(c.secret_generation));
    item
}

fn consent_from(item: &Item) -> Result<Consent, StoreError> {
    Ok(Consent {
        estab: id(Estab::parse(&text(item, "estab")?), "estab")?,
        partner: id(PartnerId::parse(&text(item, "partner")?), "partner")?,
        scopes: parsed(item, "scopes")?,
        version: number(item, "version")? as u64,
        granted_at: time(item, "granted_at")?,
        updated_at: time(item, "updated_at")?,
        end_date: optional_number(item, "end_date")?.map(Timestamp::from_millis),
        secret_hash: KeyHash::from_hex(text(item, "secret_hash")?),
        secret_sealed: bytes(item, "secret_sealed")?,
        secret_generation: number(item, "secret_generation")? as u64,
    })
}

fn token_item(t: &Token) -> Item {
    let mut item = key_item(format!("TOKEN#{}", t.hash.as_str()), "#TOKEN");
    item.insert("gsi1pk".into(), s("TOKENS"));
    item.insert("gsi1sk".into(), s(format!("{:015}", t.expires_at.millis())));
    item.insert("hash".into(), s(t.hash.as_str()));
    item.insert("partner".into(), s(t.partner.as_str()));
    item.insert("estab".into(), s(t.estab.as_str()));
    item.insert("secret_generation".into(), n(t.secret_generation));
    item.insert("issued_at".into(), n(t.issued_at.millis()));
    item.insert("expires_at_ms".into(), n(t.expires_at.millis()));
    item.insert("expires_at".into(), n(t.expires_at.seconds()));
    item
}

fn token_from(item: &Item) -> Result<Token, StoreError> {
    Ok(Token {
        hash: KeyHash::from_hex(text(item, "hash")?),
        partner: id(PartnerId::parse(&text(item, "partner")?), "partner")?,
        estab: id(Estab::parse(&text(item, "estab")?), "estab")?,
        secret_generation: number(item, "secret_generation")? as u64,
        issued_at: time(item, "issued_at")?,
        expires_at: time(item, "expires_at_ms")?,
    })
}

fn version_item(v: &VersionRecord) -> Item {
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
fn version_expiry(valid_until: Timestamp) -> i64 {
    valid_until
        .plus(rollcall_core::model::DISPOSAL_AFTER)
        .plus(TTL_MARGIN)
        .seconds()
}

fn version_from(item: &Item) -> Result<VersionRecord, StoreError> {
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

fn access_from(item: &Item) -> Result<AccessEntry, StoreError> {
    Ok(AccessEntry {
        estab: id(Estab::parse(&text(item, "estab")?), "estab")?,
        partner: id(PartnerId::parse(&text(item, "partner")?), "partner")?,
        at: time(item, "at")?,
        endpoint: text(item, "endpoint")?,
        scopes_used: parsed(item, "scopes_used")?,
        rows: number(item, "rows")? as u64,
        refused: match optional_number(item, "refused_status")? {
            Some(status) => Some(Refused {
                status: status as u16,
                reason: text(item, "refused_reason")?,
            }),
            None => None,
        },
    })
}

fn upload_sk(id: &str) -> String {
    format!("UPLOAD#{id}")
}

fn staged_item(u: &StagedUpload) -> Item {
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

fn staged_from(item: &Item) -> Result<StagedUpload, StoreError> {
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

fn task_sk(id: &str) -> String {
    format!("TASK#{id}")
}

fn task_item(t: &Task) -> Item {
    let mut item = key_item(school_pk(&t.estab), &task_sk(&t.id));
    item.insert("gsi1pk".into(), s("TASKS"));
    item.insert("gsi1sk".into(), s(format!("{:015}", t.expires_at.millis())));
    item.insert("estab".into(), s(t.estab.as_str()));
    item.insert("id".into(), s(&t.id));
    item.insert("partner".into(), s(t.partner.as_str()));
    item.insert("kind".into(), s(&t.kind));
    item.insert("scopes".into(), s(&t.scopes));
    item.insert("payload".into(), b(&t.payload));
    item.insert("created_at".into(), n(t.created_at.millis()));
    item.insert("expires_at_ms".into(), n(t.expires_at.millis()));
    item.insert("expires_at".into(), n(t.expires_at.seconds()));
    item.insert("status".into(), s(t.state.name()));
    item.insert("state".into(), json(&t.state));
    item
}

fn task_from(item: &Item) -> Result<Task, StoreError> {
    Ok(Task {
        estab: id(Estab::parse(&text(item, "estab")?), "estab")?,
        id: text(item, "id")?,
        partner: id(PartnerId::parse(&text(item, "partner")?), "partner")?,
        kind: text(item, "kind")?,
        scopes: text(item, "scopes")?,
        payload: bytes(item, "payload")?,
        created_at: time(item, "created_at")?,
        expires_at: time(item, "expires_at_ms")?,
        state: parsed(item, "state")?,
    })
}

#[async_trait]
impl ControlStore for DynamoControlStore {
    async fn insert_school(&self, school: &School) -> Result<(), StoreError> {
        let estab = school.estab.as_str();
        let new = "attribute_not_exists(pk)";
        let actions = vec![
            self.put(school_item(school), new)?,
            self.put(
                pointer(
                    format!("AGENTKEY#{}", school.agent_key_hash.as_str()),
                    estab,
                ),
                new,
            )?,
            self.put(
                pointer(
                    format!("ADMINKEY#{}", school.admin_key_hash.as_str()),
                    estab,
                ),
                new,
            )?,
        ];
        self.transact(actions, "the school exists").await
    }

    async fn school(&self, estab: &Estab) -> Result<Option<School>, StoreError> {
        self.get(school_pk(estab), "#SCHOOL")
            .await?
            .map(|item| school_from(&item))
            .transpose()
    }

    async fn school_by_agent_key(&self, hash: &KeyHash) -> Result<Option<School>, StoreError> {
        self.school_by_pointer(format!("AGENTKEY#{}", hash.as_str()))
            .await
    }

    async fn school_by_admin_key(&self, hash: &KeyHash) -> Result<Option<School>, StoreError> {
        self.school_by_pointer(format!("ADMINKEY#{}", hash.as_str()))
            .await
    }

    async fn insert_partner(&self, partner: &Partner) -> Result<(), StoreError> {
        let new = "attribute_not_exists(pk)";
        let actions = vec![
            self.put(partner_item(partner), new)?,
            self.put(
                pointer(
                    format!("MGMTKEY#{}", partner.management_secret_hash.as_str()),
                    partner.id.as_str(),
                ),
                new,
            )?,
        ];
        self.transact(actions, "the partner exists").await
    }

    async fn partner(&self, id: &PartnerId) -> Result<Option<Partner>, StoreError> {
        self.get("PARTNERS".into(), &format!("PARTNER#{id}"))
            .await?
            .map(|item| partner_from(&item))
            .transpose()
    }

    async fn partner_by_management_secret(
        &self,
        hash: &KeyHash,
    ) -> Result<Option<Partner>, StoreError> {
        let Some(item) = self
            .get(format!("MGMTKEY#{}", hash.as_str()), "#KEY")
            .await?
        else {
            return Ok(None);
        };
        let id = id(PartnerId::parse(&text(&item, "target")?), "target")?;
        self.partner(&id).await
    }

    async fn schools(&self) -> Result<Vec<School>, StoreError> {
        // The index is eventually consistent: a school registered a moment ago may be missing.
        self.query_index("SCHOOLS", None)
            .await?
            .iter()
            .map(school_from)
            .collect()
    }

    async fn partners(&self) -> Result<Vec<Partner>, StoreError> {
        self.query_prefix("PARTNERS".into(), "PARTNER#", true, None)
            .await?
            .iter()
            .map(partner_from)
            .collect()
    }

    async fn consent(
        &self,
        estab: &Estab,
        partner: &PartnerId,
    ) -> Result<Option<Consent>, StoreError> {
        self.get(school_pk(estab), &format!("CONSENT#{partner}"))
            .await?
            .map(|item| consent_from(&item))
            .transpose()
    }

    async fn consents_of_school(&self, estab: &Estab) -> Result<Vec<Consent>, StoreError> {
        self.query_prefix(school_pk(estab), "CONSENT#", true, None)
            .await?
            .iter()
            .map(consent_from)
            .collect()
    }

    async fn consents_of_partner(&self, partner: &PartnerId) -> Result<Vec<Consent>, StoreError> {
        self.query_index(&format!("PARTNER#{partner}"), None)
            .await?
            .iter()
            .map(consent_from)
            .collect()
    }

    async fn put_consent(
        &self,
        consent: &Consent,
        expected: Option<u64>,
    ) -> Result<(), StoreError> {
        let mut request = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(consent_item(consent)));
        request = match expected {
            None => request.condition_expression("attribute_not_exists(pk)"),
            Some(version) => request
                .condition_expression("version = :expected")
                .expression_attribute_values(":expected", n(version)),
        };
        request
            .send()
            .await
            .map_err(|e| conditional(e, "the consent changed meanwhile"))?;
        Ok(())
    }

    async fn insert_token(&self, token: &Token) -> Result<(), StoreError> {
        self.put_new(token_item(token), "the token exists").await
    }

    async fn token(&self, hash: &KeyHash) -> Result<Option<Token>, StoreError> {
        self.get(format!("TOKEN#{}", hash.as_str()), "#TOKEN")
            .await?
            .map(|item| token_from(&item))
            .transpose()
    }

    async fn delete_expired_tokens(&self, now: Timestamp) -> Result<u64, StoreError> {
        self.delete_indexed_before("TOKENS", now.millis()).await
    }

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

    async fn publish_versions(
        &self,
        publications: &[Publication],
        now: Timestamp,
    ) -> Result<(), StoreError> {
        if publications.len() > MAX_PUBLICATIONS {
            return Err(StoreError::unavailable(format!(
                "one upload can publish at most {MAX_PUBLICATIONS} result sets at once"
            )));
        }
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

    async fn delete_expired_staged_uploads(&self, now: Timestamp) -> Result<u64, StoreError> {
        self.delete_indexed_before("UPLOADS", now.millis() + 1)
            .await
    }

    async fn opt_outs(
        &self,
        estab: &Estab,
        partner: &PartnerId,
    ) -> Result<Option<OptOutRecord>, StoreError> {
        let Some(item) = self
            .get(school_pk(estab), &format!("OPTOUT#{partner}"))
            .await?
        else {
            return Ok(None);
        };
        Ok(Some(OptOutRecord {
            estab: estab.clone(),
            partner: partner.clone(),
            people: OptOuts {
                students: parsed(&item, "students")?,
                staff: parsed(&item, "staff")?,
                contacts: parsed(&item, "contacts")?,
            },
            updated_at: time(&item, "updated_at")?,
        }))
    }

    async fn put_opt_outs(&self, record: &OptOutRecord) -> Result<(), StoreError> {
        let mut item = key_item(
            school_pk(&record.estab),
            &format!("OPTOUT#{}", record.partner),
        );
        item.insert("students".into(), json(&record.people.students));
        item.insert("staff".into(), json(&record.people.staff));
        item.insert("contacts".into(), json(&record.people.contacts));
        item.insert("updated_at".into(), n(record.updated_at.millis()));
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(StoreError::unavailable)?;
        Ok(())
    }

    async fn insert_task(&self, task: &Task) -> Result<(), StoreError> {
        self.put_new(task_item(task), "the task exists").await
    }

    async fn task(&self, estab: &Estab, id: &str) -> Result<Option<Task>, StoreError> {
        self.get(school_pk(estab), &task_sk(id))
            .await?
            .map(|item| task_from(&item))
            .transpose()
    }

    async fn open_tasks(&self, estab: &Estab) -> Result<Vec<Task>, StoreError> {
        // A school's tasks are kept 30 days: few enough to read and filter here.
        let mut open = Vec::new();
        for item in self
            .query_prefix(school_pk(estab), "TASK#", true, None)
            .await?
        {
            let task = task_from(&item)?;
            if task.state.is_open() {
                open.push(task);
            }
        }
        Ok(open)
    }

    async fn update_task(
        &self,
        estab: &Estab,
        id: &str,
        from: &[&str],
        state: &TaskState,
    ) -> Result<(), StoreError> {
        let mut request = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(school_pk(estab)))
            .key("sk", s(task_sk(id)))
            .update_expression("SET #status = :status, #state = :state")
            .expression_attribute_names("#status", "status")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":status", s(state.name()))
            .expression_attribute_values(":state", json(state));
        let mut allowed = Vec::with_capacity(from.len());
        for (i, name) in from.iter().enumerate() {
            allowed.push(format!(":from{i}"));
            request = request.expression_attribute_values(format!(":from{i}"), s(*name));
        }
        let updated = request
            .condition_expression(format!(
                "attribute_exists(pk) AND #status IN ({})",
                allowed.join(", ")
            ))
            .send()
            .await;
        match updated {
            Ok(_) => Ok(()),
            Err(error) => match conditional(error, "") {
                StoreError::Conflict(_) => match self.task(estab, id).await? {
                    None => Err(StoreError::NotFound(format!("task {id}"))),
                    Some(task) => Err(StoreError::Conflict(format!(
                        "task {id} is {}",
                        task.state.name()
                    ))),
                },
                other => Err(other),
            },
        }
    }

    async fn delete_expired_tasks(&self, now: Timestamp) -> Result<u64, StoreError> {
        self.delete_indexed_before("TASKS", now.millis() + 1).await
    }

    async fn append_access(&self, entry: &AccessEntry) -> Result<(), StoreError> {
        // Entries of the same millisecond keep this process's order (the sequence), and
        // never collide with another process's (the random part).
        let sequence = ACCESS_SEQUENCE.fetch_add(1, Ordering::Relaxed);
        let sk = format!(
            "ACCESS#{:015}#{sequence:020}#{}",
            entry.at.millis(),
            random_hex::<4>()
        );
        let mut item = key_item(school_pk(&entry.estab), &sk);
        item.insert("estab".into(), s(entry.estab.as_str()));
        item.insert("partner".into(), s(entry.partner.as_str()));
        item.insert("at".into(), n(entry.at.millis()));
        item.insert("endpoint".into(), s(&entry.endpoint));
        item.insert("scopes_used".into(), json(&entry.scopes_used));
        item.insert("rows".into(), n(entry.rows));
        if let Some(refused) = &entry.refused {
            item.insert("refused_status".into(), n(refused.status));
            item.insert("refused_reason".into(), s(&refused.reason));
        }
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(StoreError::unavailable)?;
        Ok(())
    }

    async fn access_log(
        &self,
        estab: &Estab,
        limit: usize,
    ) -> Result<Vec<AccessEntry>, StoreError> {
        self.query_prefix(school_pk(estab), "ACCESS#", false, Some(limit))
            .await?
            .iter()
            .map(access_from)
            .collect()
    }

    async fn partner_access(
        &self,
        estab: &Estab,
        partner: &PartnerId,
        since: Timestamp,
        limit: usize,
    ) -> Result<Vec<AccessEntry>, StoreError> {
        let request = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND sk BETWEEN :from AND :to")
            .filter_expression("partner = :partner")
            .expression_attribute_values(":pk", s(school_pk(estab)))
            .expression_attribute_values(":from", s(format!("ACCESS#{:015}", since.millis())))
            .expression_attribute_values(":to", s("ACCESS#~"))
            .expression_attribute_values(":partner", s(partner.as_str()))
            .consistent_read(true)
            .scan_index_forward(false);
        let mut entries = Vec::new();
        let mut pages = request.into_paginator().send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(StoreError::unavailable)?;
            for item in page.items.unwrap_or_default() {
                entries.push(access_from(&item)?);
            }
            if entries.len() >= limit {
                break;
            }
        }
        entries.truncate(limit);
        Ok(entries)
    }
}

impl DynamoControlStore {
    async fn school_by_pointer(&self, pk: String) -> Result<Option<School>, StoreError> {
        let Some(item) = self.get(pk, "#KEY").await? else {
            return Ok(None);
        };
        let estab = id(Estab::parse(&text(&item, "target")?), "target")?;
        self.school(&estab).await
    }
}
