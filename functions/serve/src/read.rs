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
use rollcall_core::catalogue::{Catalogue, Endpoint, ResultSet};
use rollcall_core::dataset::{Row, assemble};
use rollcall_core::model::{AccessEntry, Consent, Estab, Token, VersionRecord};
use rollcall_core::scope::ScopeSet;
use rollcall_core::timestamp::Timestamp;
use rollcall_core::vault::OpenVersion;
use rollcall_core::xod::{self, DEFAULT_PAGE_SIZE, paginate};
use rollcall_http::request::QueryParams;
use rollcall_http::{ApiError, ApiResult};
use serde_json::{Value, json};

use crate::ServeState;

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
    let params = QueryParams::parse(query)?;
    let options = options(endpoint, &params)?;
    let page_number = params.number("page")?.unwrap_or(1);
    let page_size = params.number("pageSize")?.unwrap_or(DEFAULT_PAGE_SIZE);
    let answered = catalogue.answered_result_sets(endpoint, &options);
    let (primary, related) = answered
        .split_first()
        .expect("an endpoint answers one result set");

    let record = current_version(state, &token.estab, primary, now).await?;
    let freshness = Freshness::of(&record);
    let version =
        OpenVersion::open(state.objects.as_ref(), state.key_unwrapper.as_ref(), record).await?;
    let positions: Vec<usize> = (0..version.index.rows.len())
        .filter(|&p| {
            id.as_deref()
                .is_none_or(|id| version.index.rows[p].id == id)
        })
        .collect();
    let page = paginate(positions.len(), page_number, page_size)
        .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let page_positions = &positions[page.rows.clone()];
    let page_ids: BTreeSet<&str> = page_positions
        .iter()
        .map(|&p| version.index.rows[p].id.as_str())
        .collect();
    let primary_rows = read_rows(state, primary, &consent, &version, None, page_positions).await?;

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
    let body = xod::answer(result_sets, meta(&version.record), page.block);
    Ok(Answer {
        endpoint: endpoint.path.clone(),
        body,
        rows,
        scopes_used,
        freshness,
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

/// The endpoint's options named in `options=a,b` (matched without regard to case).
fn options(endpoint: &Endpoint, params: &QueryParams) -> ApiResult<BTreeSet<String>> {
    let Some(list) = params.get("options") else {
        return Ok(BTreeSet::new());
    };
    let mut chosen = BTreeSet::new();
    for asked in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let known = endpoint
            .options
            .keys()
            .find(|name| name.eq_ignore_ascii_case(asked))
            .ok_or_else(|| {
                let valid: Vec<&str> = endpoint.options.keys().map(String::as_str).collect();
                let valid = if valid.is_empty() {
                    "it takes none".to_owned()
                } else {
                    format!("valid options: {}", valid.join(", "))
                };
                ApiError::BadRequest(format!(
                    "`{}` is not an option of {}; {valid}",
                    asked.chars().take(64).collect::<String>(),
                    endpoint.path
                ))
            })?;
        chosen.insert(known.clone());
    }
    Ok(chosen)
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
