//! Reading an endpoint, as a straight pipeline: parse the call → plan it (core's read plan
//! decides everything a partner may see) → load what the plan names → select the rows it
//! admits → project them as it says → page → log. Every answered call is written to the
//! school's access log; a refused one changes nothing stored and is only traced.

use std::collections::BTreeSet;

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use axum::response::{IntoResponse, Response};
use rollcall_consent::access;
use rollcall_core::catalogue::{Catalogue, Endpoint, ID, PersonKind, Reference, ScopeGroup};
use rollcall_core::changeset::ChangesetScope;
use rollcall_core::dataset::Row;
use rollcall_core::model::{AccessEntry, Estab, Token, VersionRecord};
use rollcall_core::optout::OptOuts;
use rollcall_core::plan::{self, ReadPlan, Resolved, SetPlan, ViaPlan, ViewPlan, text};
use rollcall_core::scope::ScopeSet;
use rollcall_core::timestamp::Timestamp;
use rollcall_core::vault::OpenVersion;
use rollcall_core::xod::{self, paginate};
use rollcall_http::{ApiError, ApiResult};
use serde_json::{Value, json};

use crate::filter::Filters;
use crate::query::{ChangedRows, ReadQuery};
use crate::rows::{LoadedSet, current_version, pinned_version};
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
    let opt_outs = opt_outs(state, token, now).await?;
    let query = ReadQuery::parse(endpoint, query)?;
    let filters = Filters::parse(endpoint, &query.params, id.as_deref(), now)?;
    let subject = id.or_else(|| filters.given.get("id").cloned());
    let plan = plan::plan(
        catalogue,
        endpoint,
        &consent.scopes,
        &opt_outs,
        &plan::Query {
            options: query.options.clone(),
            select: query.select.clone(),
            filters: filters.active.clone(),
            delta: query.updated_since.is_some() || query.changed_rows.is_some(),
            only_db_status: query.only_db_status,
            subject,
        },
        token.estab.as_str(),
    )?;
    let resolved = resolve(state, &token.estab, &plan, &filters, now).await?;
    match &plan.view {
        ViewPlan::Stored => {
            stored(
                state,
                token,
                &plan,
                &query,
                &filters,
                &resolved,
                &consent.scopes,
                now,
            )
            .await
        }
        view => {
            computed(
                state,
                token,
                &plan,
                view,
                &query,
                &filters,
                &resolved,
                &consent.scopes,
                now,
            )
            .await
        }
    }
}

/// Reads the stored sets a plan names: the primary set's page, then the rows of each related
/// set linked to it.
#[allow(clippy::too_many_arguments)]
async fn stored(
    state: &ServeState,
    token: &Token,
    plan: &ReadPlan<'_>,
    query: &ReadQuery,
    filters: &Filters,
    resolved: &Resolved,
    granted: &ScopeSet,
    now: Timestamp,
) -> ApiResult<Answer> {
    let primary = plan.primary();
    let record = match query.version {
        Some(number) => pinned_version(state, &token.estab, primary.rs, number, now).await?,
        None => current_version(state, &token.estab, primary.rs, now).await?,
    };
    let freshness = Freshness::of(&record);
    if query.only_db_status {
        return Ok(Answer {
            endpoint: plan.endpoint.path.clone(),
            body: json!({ "__DbStatus__": [db_status(&record, now)] }),
            rows: 0,
            scopes_used: plan.endpoint_scopes.clone(),
            freshness: Some(freshness),
        });
    }
    let changeset = Changeset::of(state, token, plan.endpoint, query, filters).await?;
    let loaded = LoadedSet::load(state, record, &primary.groups()).await?;
    let changed_after = [query.updated_since, changeset.since]
        .into_iter()
        .flatten()
        .max();
    let positions: Vec<usize> = (0..loaded.rows.len())
        .filter(|&p| {
            primary.admits(&loaded.rows[p], resolved)
                && changed_after.is_none_or(|after| loaded.version.index.rows[p].updated > after)
        })
        .collect();
    let page = paginate(
        positions.len(),
        query.page,
        query.page_size,
        &query.carry(Some(loaded.version.record.version), filters),
    )
    .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let page_positions = &positions[page.rows.clone()];
    let page_ids: BTreeSet<&str> = page_positions
        .iter()
        .map(|&p| loaded.version.index.rows[p].id.as_str())
        .collect();
    let mut answered: Vec<(String, Vec<Row>)> = vec![(
        primary.name.to_owned(),
        page_positions
            .iter()
            .map(|&p| primary.project(&loaded.rows[p], resolved))
            .collect(),
    )];
    for set in &plan.sets[1..] {
        let rows = related_rows(state, &token.estab, set, &page_ids, resolved, now).await?;
        answered.push((set.name.to_owned(), rows));
    }
    let rows = answered.iter().map(|(_, r)| r.len() as u64).sum();
    let emitted: Vec<&[Row]> = answered.iter().map(|(_, r)| r.as_slice()).collect();
    let scopes_used = plan.scopes_used(granted, &emitted);
    if let Some(since) = changeset.since.filter(|_| query.page == 1) {
        answered.push(deleted_since(primary, &loaded.version, since));
    }
    let mut body = xod::answer(answered, meta(&loaded.version.record), page.block);
    if let Some(block) = changeset.block(&loaded.version.record, query.page_size) {
        body["__changedRows__"] = json!([block]);
    }
    Ok(Answer {
        endpoint: plan.endpoint.path.clone(),
        body,
        rows,
        scopes_used,
        freshness: Some(freshness),
    })
}

/// The rows of a related set that belong to the page's primary rows and pass the plan.
async fn related_rows(
    state: &ServeState,
    estab: &Estab,
    set: &SetPlan<'_>,
    page_ids: &BTreeSet<&str>,
    resolved: &Resolved,
    now: Timestamp,
) -> ApiResult<Vec<Row>> {
    if !set.released {
        return Ok(vec![]);
    }
    let loaded = LoadedSet::current(state, estab, set.rs, &set.groups(), now).await?;
    Ok(loaded
        .rows
        .iter()
        .filter(|row| {
            set.link.is_none_or(|link| {
                text(row.get(link)).is_some_and(|v| page_ids.contains(v.as_str()))
            }) && set.admits(row, resolved)
        })
        .map(|row| set.project(row, resolved))
        .collect())
}

/// A computed endpoint: its rows built from the stored sets its plan allows, then filtered,
/// paged and projected by the plan like stored ones.
#[allow(clippy::too_many_arguments)]
async fn computed(
    state: &ServeState,
    token: &Token,
    plan: &ReadPlan<'_>,
    view: &ViewPlan<'_>,
    query: &ReadQuery,
    filters: &Filters,
    resolved: &Resolved,
    granted: &ScopeSet,
    now: Timestamp,
) -> ApiResult<Answer> {
    let set = plan.primary();
    let computed = views::compute(state, view, &token.estab, resolved, now).await?;
    let rows: Vec<&Row> = computed
        .rows
        .iter()
        .filter(|row| set.admits(row, resolved))
        .collect();
    let page = paginate(
        rows.len(),
        query.page,
        query.page_size,
        &query.carry(None, filters),
    )
    .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let page_rows: Vec<Row> = rows[page.rows.clone()]
        .iter()
        .map(|row| set.project(row, resolved))
        .collect();
    let count = page_rows.len() as u64;
    let scopes_used = plan.scopes_used(granted, &[page_rows.as_slice()]);
    let meta = computed.source.as_ref().map_or_else(
        || json!({"Id": 1, "MIS": "unknown", "Version": "0", "DateTime": now.to_xod()}),
        meta,
    );
    Ok(Answer {
        endpoint: plan.endpoint.path.clone(),
        body: xod::answer(vec![(set.name.to_owned(), page_rows)], meta, page.block),
        rows: count,
        scopes_used,
        freshness: computed.source.as_ref().map(Freshness::of),
    })
}

/// What the plan needs from stored data before rows can be judged: the values of its via
/// mappings and the aliases of opted-out people its mentions use.
async fn resolve(
    state: &ServeState,
    estab: &Estab,
    plan: &ReadPlan<'_>,
    filters: &Filters,
    now: Timestamp,
) -> ApiResult<Resolved> {
    let today = plan::date_of(&now.to_xod()).to_owned();
    let mut resolved = Resolved {
        today,
        ..Resolved::default()
    };
    let via_inputs: Vec<BTreeSet<String>> = filters
        .active
        .iter()
        .filter(|given| given.filter.via.is_some())
        .map(|given| ViaPlan::input(&given.value))
        .collect();
    for (via, input) in plan.vias.iter().zip(via_inputs) {
        let values = map_through(state, estab, via, input, &resolved.today, now).await?;
        resolved.mapped.push(values);
    }
    for lookup in &plan.lookups {
        let loaded = LoadedSet::current(state, estab, lookup.rs, &lookup.decrypt, now).await?;
        resolved.aliases.insert(
            (lookup.kind, lookup.field.to_owned()),
            lookup.resolve(&loaded.rows, plan.primary().opt_outs()),
        );
    }
    Ok(resolved)
}

/// Maps `values` through each hop of a via plan in turn.
pub(crate) async fn map_through(
    state: &ServeState,
    estab: &Estab,
    via: &ViaPlan<'_>,
    mut values: BTreeSet<String>,
    today: &str,
    now: Timestamp,
) -> ApiResult<BTreeSet<String>> {
    for hop in &via.hops {
        let loaded = LoadedSet::current(state, estab, hop.set.rs, &hop.set.groups(), now).await?;
        values = hop.take_from(&loaded.rows, &values, today);
    }
    Ok(values)
}

/// The school's opt-outs for this partner, with the contacts linked only to opted-out pupils.
pub(crate) async fn opt_outs(
    state: &ServeState,
    token: &Token,
    now: Timestamp,
) -> ApiResult<OptOuts> {
    let people = state
        .control
        .opt_outs(&token.estab, &token.partner)
        .await?
        .map(|record| record.people)
        .unwrap_or_default();
    if people.students.is_empty() {
        return Ok(people);
    }
    let links = Catalogue::get()
        .stored_set("StudentContacts")
        .expect("StudentContacts is stored");
    if state
        .control
        .current_version(&token.estab, &links.name)
        .await?
        .is_none()
    {
        return Ok(people);
    }
    let groups = ["StudentId", "ContactId"]
        .iter()
        .filter_map(|f| links.field(f).and_then(|f| f.group))
        .collect::<BTreeSet<_>>();
    let groups: Vec<&ScopeGroup> = groups.into_iter().map(|g| &links.groups[g]).collect();
    let loaded = LoadedSet::current(state, &token.estab, links, &groups, now).await?;
    let pairs: Vec<(String, String)> = loaded
        .rows
        .iter()
        .filter_map(|row| Some((text(row.get("StudentId"))?, text(row.get("ContactId"))?)))
        .collect();
    Ok(people.with_orphaned_contacts(pairs.iter().map(|(s, c)| (s.as_str(), c.as_str()))))
}

/// `<ResultSet>_deleted`: the ids gone from the result set since `since`, as `{"Id": ...}`,
/// less those of opted-out people.
fn deleted_since(set: &SetPlan<'_>, version: &OpenVersion, since: Timestamp) -> (String, Vec<Row>) {
    let hidden_kind = set
        .rs
        .people
        .subjects
        .iter()
        .find_map(|s| match s.reference {
            Reference::Kind(kind) if s.field == ID => Some(kind),
            _ => None,
        });
    let hidden =
        |id: &str| hidden_kind.is_some_and(|kind: PersonKind| set.opt_outs().of(kind).contains(id));
    let rows = version
        .index
        .deleted
        .iter()
        .filter(|d| d.at > since && !hidden(&d.id))
        .map(|d| {
            let mut row = Row::new();
            row.insert(ID.to_owned(), Value::String(d.id.clone()));
            row
        })
        .collect();
    (format!("{}_deleted", set.name), rows)
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

fn find_endpoint(
    catalogue: &'static Catalogue,
    name: &str,
    by_id: bool,
) -> ApiResult<&'static Endpoint> {
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
