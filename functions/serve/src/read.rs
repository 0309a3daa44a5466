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
use rollcall_core::catalogue::{Catalogue, Condition, Endpoint, ID, OptionEffect, ResultSet, View};
use rollcall_core::changeset::ChangesetScope;
use rollcall_core::dataset::Row;
use rollcall_core::model::{AccessEntry, Consent, Estab, Token, VersionRecord};
use rollcall_core::optout::{OptOuts, PERSON_FIELDS};
use rollcall_core::scope::ScopeSet;
use rollcall_core::timestamp::Timestamp;
use rollcall_core::vault::OpenVersion;
use rollcall_core::xod::{self, paginate};
use rollcall_http::{ApiError, ApiResult};
use serde_json::{Value, json};

use crate::filter::{self, Filters, condition_holds, date_of, text_of};
use crate::query::{ChangedRows, ReadQuery};
use crate::rows::{LoadedSet, Projection, current_version, linked_values, pinned_version};
use crate::{ServeState, views};

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
    freshness: Option<Freshness>,
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
    if let Some(freshness) = &answer.freshness {
        freshness.write(response.headers_mut(), now);
    }
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
    let opt_outs = opt_outs(state, token).await?;
    let query = ReadQuery::parse(endpoint, query)?;
    let filters = Filters::parse(endpoint, &query.params, id.as_deref(), now)?;
    filters.check_consent(catalogue, endpoint, &consent.scopes, token.estab.as_str())?;
    let primary_set = endpoint.primary();
    let primary = catalogue
        .result_set(&primary_set.stored)
        .expect("catalogue checked");
    let selected = query.selected_fields(primary, &consent.scopes, token.estab.as_str())?;
    let hidden = hidden_columns(endpoint, &query.options);
    if endpoint.view != View::Stored {
        return computed(
            state,
            token,
            endpoint,
            &query,
            &filters,
            &consent,
            &opt_outs,
            id.as_deref(),
            now,
        )
        .await;
    }

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
            freshness: Some(freshness),
        });
    }
    let changeset = Changeset::of(state, token, endpoint, &query, &filters).await?;
    let filters = map_through(state, &token.estab, filters, now).await?;
    let conditions = option_conditions(endpoint, &query.options);
    let needed: BTreeSet<&str> = filters
        .fields_of(&primary_set.name)
        .chain(conditions.iter().map(|(c, _)| c.field.as_str()))
        .chain(person_fields(&opt_outs).iter().copied())
        .collect();
    let loaded = LoadedSet::load(state, primary, record, &consent.scopes, &needed).await?;
    let today = date_of(&now.to_xod()).to_owned();
    let changed_after = [query.updated_since, changeset.since]
        .into_iter()
        .flatten()
        .max();
    let positions: Vec<usize> = (0..loaded.rows.len())
        .filter(|&p| {
            let row = &loaded.rows[p];
            filters.on(&primary_set.name).all(|f| f.matches(row))
                && !opt_outs.hides(&primary.name, row)
                && conditions
                    .iter()
                    .all(|(c, keep)| condition_holds(c, row, &today) == *keep)
                && changed_after.is_none_or(|after| loaded.version.index.rows[p].updated > after)
        })
        .collect();
    let page = paginate(
        positions.len(),
        query.page,
        query.page_size,
        &query.carry(Some(loaded.version.record.version), &filters),
    )
    .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let page_positions = &positions[page.rows.clone()];
    let page_ids: BTreeSet<&str> = page_positions
        .iter()
        .map(|&p| loaded.version.index.rows[p].id.as_str())
        .collect();
    let projection = Projection::new(
        primary,
        primary_set,
        &consent.scopes,
        &hidden,
        selected.as_ref(),
    );
    let primary_rows: Vec<Row> = page_positions
        .iter()
        .map(|&p| projection.apply(&loaded.rows[p]))
        .collect();

    let mut answered = vec![(primary, primary_set.name.clone(), primary_rows)];
    for set in endpoint.answered(&query.options).skip(1) {
        let rs = catalogue
            .result_set(&set.stored)
            .expect("catalogue checked");
        let record = current_version(state, &token.estab, rs, now).await?;
        let needed: BTreeSet<&str> = filters
            .fields_of(&set.name)
            .chain(rs.link.as_deref())
            .chain(person_fields(&opt_outs).iter().copied())
            .collect();
        let related = LoadedSet::load(state, rs, record, &consent.scopes, &needed).await?;
        let projection = Projection::new(rs, set, &consent.scopes, &BTreeSet::new(), None);
        let rows = related
            .rows
            .iter()
            .filter(|row| {
                rs.link.as_deref().is_none_or(|link| {
                    row.get(link)
                        .and_then(text_of)
                        .is_some_and(|v| page_ids.contains(v.as_str()))
                }) && filters.on(&set.name).all(|f| f.matches(row))
                    && !opt_outs.hides(&rs.name, row)
            })
            .map(|row| projection.apply(row))
            .collect();
        answered.push((rs, set.name.clone(), rows));
    }
    let rows = answered.iter().map(|(_, _, r)| r.len() as u64).sum();
    let emitted: Vec<(&ResultSet, &[Row])> = answered
        .iter()
        .map(|(rs, _, rows)| (*rs, rows.as_slice()))
        .collect();
    let scopes_used = scopes_used(endpoint, &emitted, &consent.scopes);
    let mut result_sets: Vec<(String, Vec<Row>)> = answered
        .into_iter()
        .map(|(_, name, rows)| (name, rows))
        .collect();
    if let Some(since) = changeset.since.filter(|_| query.page == 1) {
        result_sets.push(deleted_since(&primary_set.name, &loaded.version, since));
    }
    let mut body = xod::answer(result_sets, meta(&loaded.version.record), page.block);
    if let Some(block) = changeset.block(&loaded.version.record, query.page_size) {
        body["__changedRows__"] = json!([block]);
    }
    Ok(Answer {
        endpoint: endpoint.path.clone(),
        body,
        rows,
        scopes_used,
        freshness: Some(freshness),
    })
}

/// A computed endpoint: its rows built from stored sets, then filtered, paged and projected
/// like stored ones. Changesets and `updatedSince` need stored rows, so they are refused.
#[allow(clippy::too_many_arguments)]
async fn computed(
    state: &ServeState,
    token: &Token,
    endpoint: &Endpoint,
    query: &ReadQuery,
    filters: &Filters,
    consent: &Consent,
    opt_outs: &OptOuts,
    id: Option<&str>,
    now: Timestamp,
) -> ApiResult<Answer> {
    if query.changed_rows.is_some() || query.updated_since.is_some() || query.only_db_status {
        return Err(ApiError::BadRequest(format!(
            "{} is computed from other result sets, so it takes no changedRows, updatedSince \
             or onlyGetDbStatus; ask the result sets it is computed from, or Health",
            endpoint.path
        )));
    }
    let set = endpoint.primary();
    let rs = Catalogue::get()
        .result_set(&set.stored)
        .expect("catalogue checked");
    let id = id
        .or_else(|| filters.given.get("id").map(String::as_str))
        .or(query.params.get("id"));
    let computed = if opt_outs_cover_subject(opt_outs, endpoint.view, id) {
        views::Computed::default()
    } else {
        views::compute(state, endpoint.view, &token.estab, id, now).await?
    };
    let rows: Vec<&Row> = computed
        .rows
        .iter()
        .filter(|row| {
            filters.on(&set.name).all(|f| f.matches(row)) && !opt_outs.hides(&rs.name, row)
        })
        .collect();
    let page = paginate(
        rows.len(),
        query.page,
        query.page_size,
        &query.carry(None, filters),
    )
    .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let projection = Projection::new(rs, set, &consent.scopes, &BTreeSet::new(), None);
    let page_rows: Vec<Row> = rows[page.rows.clone()]
        .iter()
        .map(|row| projection.apply(row))
        .collect();
    let count = page_rows.len() as u64;
    let scopes_used = scopes_used(endpoint, &[(rs, page_rows.as_slice())], &consent.scopes);
    let meta = computed.source.as_ref().map_or_else(
        || json!({"Id": 1, "MIS": "unknown", "Version": "0", "DateTime": now.to_xod()}),
        meta,
    );
    Ok(Answer {
        endpoint: endpoint.path.clone(),
        body: xod::answer(vec![(set.name.clone(), page_rows)], meta, page.block),
        rows: count,
        scopes_used,
        freshness: computed.source.as_ref().map(Freshness::of),
    })
}

/// Columns of the primary set that options add, less those the call asked for.
fn hidden_columns<'a>(endpoint: &'a Endpoint, options: &BTreeSet<String>) -> BTreeSet<&'a str> {
    endpoint
        .option_columns()
        .filter(|(_, option)| !options.contains(*option))
        .map(|(column, _)| column)
        .collect()
}

/// The row conditions options impose, each with whether a row must meet it (`true`) or must
/// not (`false`).
fn option_conditions<'a>(
    endpoint: &'a Endpoint,
    options: &BTreeSet<String>,
) -> Vec<(&'a Condition, bool)> {
    endpoint
        .options
        .iter()
        .filter_map(|(name, effect)| match effect {
            OptionEffect::Reveal(c) if !options.contains(name) => Some((c, false)),
            OptionEffect::Keep(c) if options.contains(name) => Some((c, true)),
            OptionEffect::Drop(c) if options.contains(name) => Some((c, false)),
            _ => None,
        })
        .collect()
}

/// Resolves filters mapped through other result sets (a pupil's conduct through
/// StudentConducts) into the values the answered rows must hold.
async fn map_through(
    state: &ServeState,
    estab: &Estab,
    mut filters: Filters,
    now: Timestamp,
) -> ApiResult<Filters> {
    for active in &mut filters.active {
        let Some(via) = active.filter.via.clone() else {
            continue;
        };
        let mut values: BTreeSet<String> =
            filter::values(&active.value).map(str::to_owned).collect();
        let mut hops = vec![&via];
        let mut next = via.through.as_deref();
        while let Some(hop) = next {
            hops.push(hop);
            next = hop.through.as_deref();
        }
        for hop in hops.into_iter().rev() {
            values = linked_values(
                state,
                estab,
                &hop.set,
                &hop.matches,
                &hop.take,
                &values,
                now,
            )
            .await?;
        }
        active.mapped = Some(values);
    }
    Ok(filters)
}

/// The opt-outs the school recorded for this partner.
async fn opt_outs(state: &ServeState, token: &Token) -> ApiResult<OptOuts> {
    Ok(state
        .control
        .opt_outs(&token.estab, &token.partner)
        .await?
        .map(|record| record.people)
        .unwrap_or_default())
}

/// The fields a read must decrypt to hide opted-out people (none when nobody is).
fn person_fields(opt_outs: &OptOuts) -> &'static [&'static str] {
    if opt_outs.is_empty() {
        &[]
    } else {
        &PERSON_FIELDS
    }
}

/// Whether a personal view is about someone opted out (their timetable is then empty).
fn opt_outs_cover_subject(opt_outs: &OptOuts, view: View, id: Option<&str>) -> bool {
    let Some(id) = id else { return false };
    match view {
        View::TimetableForStudent => opt_outs.students.contains(id),
        View::TimetableForStaff => opt_outs.staff.contains(id),
        _ => false,
    }
}

/// `<ResultSet>_deleted`: the ids gone from the result set since `since`, as `{"Id": ...}`.
fn deleted_since(name: &str, version: &OpenVersion, since: Timestamp) -> (String, Vec<Row>) {
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
    (format!("{name}_deleted"), rows)
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
        filters: &Filters,
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
        let parameters = query.binding(filters);
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
