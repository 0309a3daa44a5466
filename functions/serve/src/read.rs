//! Reading an endpoint: token → school → consent in force → endpoint scope → options → the
//! current version of each result set → only the visible scope groups decrypted → the page.
//! Every answered call is written to the school's access log; a refused one changes nothing
//! stored and is only traced.

use std::collections::BTreeSet;

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use axum::response::{IntoResponse, Response};
use rollcall_consent::access;
use rollcall_core::catalogue::{Catalogue, Endpoint, ID, ResultSet};
use rollcall_core::changeset::ChangesetScope;
use rollcall_core::dataset::{Row, assemble};
use rollcall_core::model::{AccessEntry, Consent, Estab, Token, VersionRecord};
use rollcall_core::scope::ScopeSet;
use rollcall_core::timestamp::Timestamp;
use rollcall_core::vault::OpenVersion;
use rollcall_core::xod::{self, paginate};
use rollcall_http::{ApiError, ApiResult};
use serde_json::{Value, json};

use crate::ServeState;
use crate::query::{ChangedRows, ReadQuery};

pub(crate) async fn endpoint(
    State(state): State<ServeState>,
    Path((estab, endpoint)): Path<(String, String)>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> ApiResult<Response> {
    read(&state, &headers, &estab, &endpoint, None, query.as_deref()).await
}

pub(crate) async fn endpoint_by_id(
    State(state): State<ServeState>,
    Path((estab, endpoint, id)): Path<(String, String, String)>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> ApiResult<Response> {
    read(
        &state,
        &headers,
        &estab,
        &endpoint,
        Some(id),
        query.as_deref(),
    )
    .await
}

/// What a read produced, for the answer and the access log.
struct Answer {
    endpoint: String,
    body: Value,
    rows: u64,
    scopes_used: ScopeSet,
    freshness: Freshness,
}

async fn read(
    state: &ServeState,
    headers: &HeaderMap,
    estab: &str,
    endpoint: &str,
    id: Option<String>,
    query: Option<&str>,
) -> ApiResult<Response> {
    let now = state.clock.now();
    let token = access::authenticate(state.control.as_ref(), headers, now).await?;
    let estab = Estab::parse(estab).map_err(|e| ApiError::NotFound(e.to_string()))?;
    access::check_school(&token, &estab)?;
    let answer = answer(state, &token, endpoint, id, query, now).await?;
    let entry = AccessEntry {
        estab: token.estab.clone(),
        partner: token.partner.clone(),
        at: now,
        endpoint: answer.endpoint.clone(),
        scopes_used: answer.scopes_used.clone(),
        rows: answer.rows,
    };
    state.control.append_access(&entry).await?;
    let mut response = Json(answer.body).into_response();
    answer.freshness.write(response.headers_mut(), now);
    Ok(response)
}

async fn answer(
    state: &ServeState,
    token: &Token,
    endpoint: &str,
    id: Option<String>,
    query: Option<&str>,
    now: Timestamp,
) -> ApiResult<Answer> {
    let catalogue = Catalogue::get();
    let endpoint = find_endpoint(catalogue, endpoint, id.is_some())?;
    let consent = access::consent(state.control.as_ref(), token, now).await?;
    if !endpoint.scope.is_satisfied_by(&consent.scopes) {
        return Err(ApiError::Forbidden(format!(
            "{} needs a scope school {} has not granted you: {}; ask the school to grant it",
            endpoint.path,
            token.estab,
            endpoint.scope.describe_missing(&consent.scopes)
        )));
    }
    let query = ReadQuery::parse(endpoint, query)?;
    let answered = catalogue.answered_result_sets(endpoint, &query.options);
    let (primary, related) = answered
        .split_first()
        .expect("an endpoint answers one result set");
    let selected = query.selected_fields(primary, &consent.scopes, token.estab.as_str())?;
    let record = match query.version {
        Some(number) => pinned_version(state, &token.estab, primary, number, now).await?,
        None => current_version(state, &token.estab, primary, now).await?,
    };
    let freshness = Freshness::of(&record);
    if query.only_db_status {
        return Ok(Answer {
            endpoint: endpoint.path.clone(),
            body: json!({ "__DbStatus__": [db_status(&record, now)] }),
            rows: 0,
            scopes_used: scopes_used(endpoint, &[], &consent.scopes),
            freshness,
        });
    }
    let changeset = Changeset::of(state, token, endpoint, &query, id.as_deref()).await?;
    let version =
        OpenVersion::open(state.objects.as_ref(), state.key_unwrapper.as_ref(), record).await?;
    let changed_after = [query.updated_since, changeset.since]
        .into_iter()
        .flatten()
        .max();
    let positions: Vec<usize> = (0..version.index.rows.len())
        .filter(|&p| {
            let entry = &version.index.rows[p];
            id.as_deref().is_none_or(|id| entry.id == id)
                && changed_after.is_none_or(|after| entry.updated > after)
        })
        .collect();
    let page = paginate(
        positions.len(),
        query.page,
        query.page_size,
        &query.carry(version.record.version),
    )
    .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let page_positions = &positions[page.rows.clone()];
    let page_ids: BTreeSet<&str> = page_positions
        .iter()
        .map(|&p| version.index.rows[p].id.as_str())
        .collect();
    let mut primary_rows =
        read_rows(state, primary, &consent, &version, None, page_positions).await?;
    if let Some(fields) = &selected {
        for row in &mut primary_rows {
            row.retain(|name, _| name == ID || fields.contains(name));
        }
    }

    let mut result_sets = vec![(primary.name.clone(), primary_rows)];
    for rs in related {
        let record = current_version(state, &token.estab, rs, now).await?;
        let version =
            OpenVersion::open(state.objects.as_ref(), state.key_unwrapper.as_ref(), record).await?;
        let all: Vec<usize> = (0..version.index.rows.len()).collect();
        let rows = read_rows(state, rs, &consent, &version, Some(&page_ids), &all).await?;
        result_sets.push((rs.name.clone(), rows));
    }
    let rows = result_sets.iter().map(|(_, r)| r.len() as u64).sum();
    let emitted: Vec<(&ResultSet, &[Row])> = answered
        .iter()
        .zip(&result_sets)
        .map(|(rs, (_, rows))| (*rs, rows.as_slice()))
        .collect();
    let scopes_used = scopes_used(endpoint, &emitted, &consent.scopes);
    if let Some(since) = changeset.since.filter(|_| query.page == 1) {
        result_sets.push(deleted_since(primary, &version, since));
    }
    let mut body = xod::answer(result_sets, meta(&version.record), page.block);
    if let Some(block) = changeset.block(&version.record, query.page_size) {
        body["__changedRows__"] = json!([block]);
    }
    Ok(Answer {
        endpoint: endpoint.path.clone(),
        body,
        rows,
        scopes_used,
        freshness,
    })
}

/// `<ResultSet>_deleted`: the ids gone from the result set since `since`, as `{"Id": ...}`.
fn deleted_since(rs: &ResultSet, version: &OpenVersion, since: Timestamp) -> (String, Vec<Row>) {
    let rows = version
        .index
        .deleted
        .iter()
        .filter(|d| d.at > since)
        .map(|d| {
            let mut row = Row::new();
            row.insert(ID.to_owned(), Value::String(d.id.clone()));
            row
        })
        .collect();
    (format!("{}_deleted", rs.name), rows)
}

/// A call's part in a changeset: the snapshot it continues from, and how to continue it.
struct Changeset {
    /// The changeset's binding and the school's key, when the call is part of one.
    scope: Option<(ChangesetScope, Vec<u8>)>,
    requested: String,
    since: Option<Timestamp>,
}

impl Changeset {
    async fn of(
        state: &ServeState,
        token: &Token,
        endpoint: &Endpoint,
        query: &ReadQuery,
        id: Option<&str>,
    ) -> ApiResult<Self> {
        let Some(changed_rows) = &query.changed_rows else {
            return Ok(Self {
                scope: None,
                requested: String::new(),
                since: None,
            });
        };
        let school =
            state.control.school(&token.estab).await?.ok_or_else(|| {
                ApiError::internal(anyhow::anyhow!("a token of an unknown school"))
            })?;
        let mut parameters = query.binding();
        if let Some(id) = id {
            parameters.push(format!("id={id}"));
        }
        let scope = ChangesetScope {
            partner: token.partner.to_string(),
            estab: token.estab.to_string(),
            endpoint: endpoint.path.clone(),
            parameters,
        };
        let (requested, since) = match changed_rows {
            ChangedRows::Start => ("*".to_owned(), None),
            ChangedRows::Since(hash) => {
                let since = scope
                    .verify(&school.row_hash_key, hash)
                    .map_err(|e| ApiError::BadRequest(e.to_string()))?;
                (hash.clone(), Some(since))
            }
        };
        Ok(Self {
            scope: Some((scope, school.row_hash_key)),
            requested,
            since,
        })
    }

    /// The `__changedRows__` entry: the hash that continues from the version answered.
    fn block(&self, record: &VersionRecord, page_size: u64) -> Option<Value> {
        let (scope, key) = self.scope.as_ref()?;
        let next = scope.issue(key, record.created_at);
        Some(json!({
            "SnapshotDate": record.created_at.to_rfc3339(),
            "SnapshotRP": scope.partner,
            "PreviousChangedRows": self.requested,
            "RequestedChangedRows": self.requested,
            "NextChangedRows": next,
            "NextUrl": format!("?changedRows={next}&page=1&pageSize={page_size}"),
        }))
    }
}

/// `__DbStatus__`: when the school's data behind the endpoint was last extracted.
fn db_status(record: &VersionRecord, now: Timestamp) -> Value {
    json!({
        "Estab": record.estab.as_str(),
        "ResultSet": record.result_set,
        "Version": record.version.to_string(),
        "LastExtracted": record.confirmed_at.to_xod(),
        "ValidUntil": record.valid_until.to_xod(),
        "Stale": record.is_stale(now),
    })
}

fn find_endpoint<'a>(catalogue: &'a Catalogue, name: &str, by_id: bool) -> ApiResult<&'a Endpoint> {
    let endpoint = catalogue.endpoint_by_path(name).ok_or_else(|| {
        let known: Vec<&str> = catalogue
            .endpoints()
            .iter()
            .map(|e| e.path.as_str())
            .collect();
        ApiError::NotFound(format!(
            "there is no endpoint `{}`; rollcall serves: {}",
            name.chars().take(64).collect::<String>(),
            known.join(", ")
        ))
    })?;
    if by_id && !endpoint.by_id {
        return Err(ApiError::NotFound(format!(
            "{} does not take an id; call /api/v1/School/{{estab}}/{} without one",
            endpoint.path, endpoint.path
        )));
    }
    Ok(endpoint)
}

/// A version a paginated walk started on, while it is kept (superseded versions stay an hour).
async fn pinned_version(
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

/// The version to serve, unless there is none or its data is past disposal.
async fn current_version(
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

/// Decrypts the groups the consent may see (and, for a related result set, the one holding
/// its link field) and assembles the rows at `positions`; with `linked_to`, only the rows
/// whose link field holds one of those ids.
async fn read_rows(
    state: &ServeState,
    rs: &ResultSet,
    consent: &Consent,
    version: &OpenVersion,
    linked_to: Option<&BTreeSet<&str>>,
    positions: &[usize],
) -> ApiResult<Vec<Row>> {
    let link_group = linked_to
        .and(rs.link.as_deref())
        .and_then(|link| rs.field(link))
        .and_then(|f| f.group);
    let mut groups: Vec<Option<Vec<Row>>> = vec![None; rs.groups.len()];
    for (i, group) in rs.groups.iter().enumerate() {
        if group.scope.is_satisfied_by(&consent.scopes) || Some(i) == link_group {
            groups[i] = Some(version.group(state.objects.as_ref(), &group.id).await?);
        }
    }
    let positions: Vec<usize> = match (linked_to, rs.link.as_deref(), link_group) {
        (Some(ids), Some(link), Some(group)) => {
            let rows = groups[group].as_ref().expect("the link group was read");
            positions
                .iter()
                .copied()
                .filter(|&p| link_value(&rows[p], link).is_some_and(|v| ids.contains(v.as_str())))
                .collect()
        }
        _ => positions.to_vec(),
    };
    Ok(assemble(
        rs,
        &consent.scopes,
        &version.index,
        &groups,
        positions,
    ))
}

fn link_value(row: &Row, field: &str) -> Option<String> {
    match row.get(field)? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The granted scopes this call relied on: those of the endpoint and of the fields it emitted.
fn scopes_used(
    endpoint: &Endpoint,
    answered: &[(&ResultSet, &[Row])],
    granted: &ScopeSet,
) -> ScopeSet {
    let mut used: ScopeSet = endpoint
        .scope
        .scopes()
        .filter(|s| granted.contains(*s))
        .map(str::to_owned)
        .collect();
    for (rs, rows) in answered {
        let emitted: BTreeSet<&str> = rows
            .iter()
            .flat_map(|r| r.keys())
            .map(String::as_str)
            .collect();
        for field in emitted.into_iter().filter_map(|name| rs.field(name)) {
            used.extend(
                field
                    .scope
                    .scopes()
                    .filter(|s| granted.contains(*s))
                    .map(str::to_owned),
            );
        }
    }
    used
}

fn meta(record: &VersionRecord) -> Value {
    json!({
        "Id": 1,
        "MIS": "unknown",
        "Version": record.version.to_string(),
        "DateTime": record.confirmed_at.to_xod(),
    })
}

/// When the data was last confirmed by the school's agent, and whether that is past the
/// result set's validity. Sent as headers, which no XoD client reads or trips on.
struct Freshness {
    extracted_at: Timestamp,
    valid_until: Timestamp,
}

impl Freshness {
    fn of(record: &VersionRecord) -> Self {
        Self {
            extracted_at: record.confirmed_at,
            valid_until: record.valid_until,
        }
    }

    fn write(&self, headers: &mut HeaderMap, now: Timestamp) {
        let age = now.since(self.extracted_at).as_seconds().max(0);
        let stale = now >= self.valid_until;
        let pairs = [
            ("x-rollcall-extracted-at", self.extracted_at.to_rfc3339()),
            ("x-rollcall-data-age", age.to_string()),
            ("x-rollcall-stale", stale.to_string()),
        ];
        for (name, value) in pairs {
            if let Ok(value) = HeaderValue::from_str(&value) {
                headers.insert(HeaderName::from_static(name), value);
            }
        }
    }
}
