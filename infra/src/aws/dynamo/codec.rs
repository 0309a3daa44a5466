//! Item encodings shared by the aggregates: attribute values, keys, pointers, conditional failures.

use std::collections::HashMap;

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;
use rollcall_core::model::Estab;
use rollcall_core::ports::StoreError;
use rollcall_core::timestamp::{Duration, Timestamp};

pub(super) type Item = HashMap<String, AttributeValue>;

pub(super) const GSI: &str = "gsi1";

/// How long after its disposal date a version's record may linger if the purge never ran.
pub(super) const TTL_MARGIN: Duration = Duration::days(7);

/// Maps a failed condition to `Conflict`, anything else to `Unavailable`.
pub(super) fn conditional<E, R>(error: SdkError<E, R>, what: &str) -> StoreError
where
    E: std::error::Error + Send + Sync + 'static + ConditionFailure,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    match error.as_service_error() {
        Some(e) if e.is_condition_failure() => StoreError::Conflict(what.to_owned()),
        _ => StoreError::unavailable(error),
    }
}

pub(super) trait ConditionFailure {
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

pub(super) fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

pub(super) fn n(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

pub(super) fn b(value: &[u8]) -> AttributeValue {
    AttributeValue::B(Blob::new(value))
}

pub(super) fn json(value: &impl serde::Serialize) -> AttributeValue {
    s(serde_json::to_string(value).expect("plain data serialises"))
}

pub(super) fn malformed(name: &str) -> StoreError {
    StoreError::unavailable(format!("control item has no valid `{name}`"))
}

pub(super) fn text(item: &Item, name: &str) -> Result<String, StoreError> {
    match item.get(name) {
        Some(AttributeValue::S(v)) => Ok(v.clone()),
        _ => Err(malformed(name)),
    }
}

pub(super) fn number(item: &Item, name: &str) -> Result<i64, StoreError> {
    match item.get(name) {
        Some(AttributeValue::N(v)) => v.parse().map_err(|_| malformed(name)),
        _ => Err(malformed(name)),
    }
}

pub(super) fn optional_number(item: &Item, name: &str) -> Result<Option<i64>, StoreError> {
    match item.get(name) {
        None | Some(AttributeValue::Null(_)) => Ok(None),
        Some(_) => number(item, name).map(Some),
    }
}

pub(super) fn time(item: &Item, name: &str) -> Result<Timestamp, StoreError> {
    number(item, name).map(Timestamp::from_millis)
}

pub(super) fn bytes(item: &Item, name: &str) -> Result<Vec<u8>, StoreError> {
    match item.get(name) {
        Some(AttributeValue::B(v)) => Ok(v.as_ref().to_vec()),
        _ => Err(malformed(name)),
    }
}

pub(super) fn parsed<T: serde::de::DeserializeOwned>(
    item: &Item,
    name: &str,
) -> Result<T, StoreError> {
    serde_json::from_str(&text(item, name)?).map_err(|_| malformed(name))
}

pub(super) fn id<T, E>(value: Result<T, E>, name: &str) -> Result<T, StoreError> {
    value.map_err(|_| malformed(name))
}

pub(super) fn school_pk(estab: &Estab) -> String {
    format!("SCHOOL#{estab}")
}

pub(super) fn version_sk(result_set: &str, version: u64) -> String {
    format!("VERSION#{result_set}#{version:010}")
}

pub(super) fn key_item(pk: String, sk: &str) -> Item {
    HashMap::from([("pk".to_owned(), s(pk)), ("sk".to_owned(), s(sk))])
}

pub(super) fn pointer(pk: String, target: &str) -> Item {
    let mut item = key_item(pk, "#KEY");
    item.insert("target".into(), s(target));
    item
}
