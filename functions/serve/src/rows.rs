//! Reading stored result sets for one call: which version, which scope groups to decrypt (the
//! ones the consent releases, plus those holding fields the call filters on), full rows for
//! filtering, and the projection of a row onto what the partner may see.

use std::collections::BTreeSet;

use rollcall_core::catalogue::{AnsweredSet, Catalogue, ID, LAST_UPDATED, ROW_HASH, ResultSet};
use rollcall_core::dataset::Row;
use rollcall_core::model::{Estab, VersionRecord};
use rollcall_core::scope::ScopeSet;
use rollcall_core::timestamp::Timestamp;
use rollcall_core::vault::OpenVersion;
use rollcall_http::{ApiError, ApiResult};
use serde_json::Value;

use crate::ServeState;
use crate::filter::text_of;

/// A stored version opened, with the rows a call needs: every field of the groups decrypted,
/// and the computed `RowHash` and `LastUpdated`.
pub(crate) struct LoadedSet {
    pub version: OpenVersion,
    pub rows: Vec<Row>,
}

impl LoadedSet {
    /// Opens `record` and decrypts the groups `granted` releases and those holding `needed`.
    pub async fn load(
        state: &ServeState,
        rs: &ResultSet,
        record: VersionRecord,
        granted: &ScopeSet,
        needed: &BTreeSet<&str>,
    ) -> ApiResult<Self> {
        let version =
            OpenVersion::open(state.objects.as_ref(), state.key_unwrapper.as_ref(), record).await?;
        let mut rows: Vec<Row> = version
            .index
            .rows
            .iter()
            .map(|entry| {
                let mut row = Row::new();
                row.insert(ROW_HASH.into(), Value::String(entry.hash.clone()));
                row.insert(LAST_UPDATED.into(), Value::String(entry.updated.to_xod()));
                row
            })
            .collect();
        for group in &rs.groups {
            let wanted = group.scope.is_satisfied_by(granted)
                || group.fields.iter().any(|f| needed.contains(f.as_str()));
            if !wanted {
                continue;
            }
            let parts = version.group(state.objects.as_ref(), &group.id).await?;
            for (row, part) in rows.iter_mut().zip(parts) {
                row.extend(part);
            }
        }
        Ok(Self { version, rows })
    }
}

/// The `take` values of the rows of stored set `set` whose `matches` field holds one of
/// `values` (a pupil's groups, a lesson's staff). Only the two fields' groups are decrypted.
pub(crate) async fn linked_values(
    state: &ServeState,
    estab: &Estab,
    set: &str,
    matches: &str,
    take: &str,
    values: &BTreeSet<String>,
    now: Timestamp,
) -> ApiResult<BTreeSet<String>> {
    let (rs, record) = current_of(state, estab, set, now).await?;
    let needed = BTreeSet::from([matches, take]);
    let loaded = LoadedSet::load(state, rs, record, &ScopeSet::new(), &needed).await?;
    Ok(loaded
        .rows
        .iter()
        .filter(|row| {
            row.get(matches)
                .and_then(text_of)
                .is_some_and(|v| values.contains(&v))
        })
        .filter_map(|row| row.get(take).and_then(text_of))
        .collect())
}

/// The ids of a stored set's current rows, from its index alone (nothing decrypted).
pub(crate) async fn stored_ids(
    state: &ServeState,
    estab: &Estab,
    set: &str,
    now: Timestamp,
) -> ApiResult<BTreeSet<String>> {
    let (_, record) = current_of(state, estab, set, now).await?;
    let version =
        OpenVersion::open(state.objects.as_ref(), state.key_unwrapper.as_ref(), record).await?;
    Ok(version.index.rows.into_iter().map(|row| row.id).collect())
}

/// The values of one field over a stored set's current rows; only that field's group is
/// decrypted.
pub(crate) async fn field_values(
    state: &ServeState,
    estab: &Estab,
    set: &str,
    field: &str,
    now: Timestamp,
) -> ApiResult<BTreeSet<String>> {
    let (rs, record) = current_of(state, estab, set, now).await?;
    let loaded = LoadedSet::load(
        state,
        rs,
        record,
        &ScopeSet::new(),
        &BTreeSet::from([field]),
    )
    .await?;
    Ok(loaded
        .rows
        .iter()
        .filter_map(|row| row.get(field).and_then(text_of))
        .collect())
}

/// A stored set named in the catalogue or in code, and its version to serve.
async fn current_of(
    state: &ServeState,
    estab: &Estab,
    set: &str,
    now: Timestamp,
) -> ApiResult<(&'static ResultSet, VersionRecord)> {
    let rs = Catalogue::get()
        .stored_set(set)
        .expect("sets named in the catalogue and in code are stored");
    Ok((rs, current_version(state, estab, rs, now).await?))
}

/// The version to serve, unless there is none or its data is past disposal.
pub(crate) async fn current_version(
    state: &ServeState,
    estab: &Estab,
    rs: &ResultSet,
    now: Timestamp,
) -> ApiResult<VersionRecord> {
    let record = state.control.current_version(estab, &rs.name).await?;
    match record {
        Some(record) if !record.is_disposable(now) => Ok(record),
        Some(_) => Err(ApiError::Unavailable(format!(
            "school {estab}'s {} data is more than 30 days out of date and has been withdrawn; \
             it is served again once the school's agent uploads it",
            rs.name
        ))),
        None => Err(ApiError::Unavailable(format!(
            "school {estab} has not uploaded {} yet; try again once its agent has",
            rs.name
        ))),
    }
}

/// A version a paginated walk started on, while it is kept (superseded versions stay an hour).
pub(crate) async fn pinned_version(
    state: &ServeState,
    estab: &Estab,
    rs: &ResultSet,
    number: u64,
    now: Timestamp,
) -> ApiResult<VersionRecord> {
    state
        .control
        .version_record(estab, &rs.name, number)
        .await?
        .filter(|record| !record.is_disposable(now))
        .ok_or_else(|| {
            ApiError::Gone(format!(
                "version {number} of school {estab}'s {} is no longer kept (a newer upload \
                 replaced it over an hour ago); start again from page 1 without `version`",
                rs.name
            ))
        })
}

/// What of a result set a partner sees: the fields the consent releases, less those the
/// endpoint omits, the option columns not asked for and (with `select`) those not selected.
pub(crate) struct Projection<'a> {
    fields: Vec<&'a str>,
}

impl<'a> Projection<'a> {
    pub fn new(
        rs: &'a ResultSet,
        set: &AnsweredSet,
        granted: &ScopeSet,
        hidden_columns: &BTreeSet<&str>,
        select: Option<&BTreeSet<String>>,
    ) -> Self {
        let fields = rs
            .fields
            .iter()
            .filter(|f| f.scope.is_satisfied_by(granted))
            .map(|f| f.name.as_str())
            .filter(|name| !set.omit.contains(*name) && !hidden_columns.contains(name))
            .filter(|name| select.is_none_or(|s| *name == ID || s.contains(*name)))
            .collect();
        Self { fields }
    }

    /// The row as answered: every projected field, `null` where the school's MIS gave none.
    pub fn apply(&self, row: &Row) -> Row {
        self.fields
            .iter()
            .map(|name| {
                let value = row.get(*name).cloned().unwrap_or(Value::Null);
                ((*name).to_owned(), value)
            })
            .collect()
    }
}
