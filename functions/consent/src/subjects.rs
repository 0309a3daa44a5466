//! `GET /admin/v1/subjects/{kind}/{id}`: a subject access export. Everything rollcall holds
//! about one pupil, member of staff or contact at the admin key's school: the rows of every
//! stored result set about them or naming them (their own record, contacts links, group
//! memberships, attendance, conduct...), what rollcall still keeps of such rows the school
//! deleted, the partners they are opted out for, and every access-log entry whose answer
//! included them, with the fields that answer could show.
//!
//! A row about someone else that only names them (a sibling's record listing them, a group
//! listing its pupils) is exported as its `Id` and the fields naming them, holding them
//! alone: the export of one person never carries another's data.
//!
//! JSON by default; `?format=csv` (or `Accept: text/csv`) is one CSV file in long form, a
//! value a line: `section,resultSet,row,field,value`, where section is `held`, `deleted`,
//! `opted-out` or `access-log`.

use std::collections::{BTreeMap, BTreeSet};

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use rollcall_core::catalogue::{Catalogue, PersonKind, ResultSet, ScopeGroup};
use rollcall_core::dataset::Row;
use rollcall_core::included;
use rollcall_core::model::{AccessEntry, Estab, VersionRecord};
use rollcall_core::ports::LogQuery;
use rollcall_core::subject_access::SubjectSearch;
use rollcall_core::timestamp::Timestamp;
use rollcall_core::vault::OpenVersion;
use rollcall_http::credentials::AdminSchool;
use rollcall_http::request::QueryParams;
use rollcall_http::{ApiError, ApiResult};
use serde_json::{Value, json};

use crate::ConsentState;
use crate::access_log::{entry_json, guard_formula, wants_csv};

/// Access-log entries read a page at a time while searching.
const LOG_PAGE: usize = 1000;
/// The longest id searched for.
const MAX_ID: usize = 64;

pub(crate) async fn subject(
    State(state): State<ConsentState>,
    AdminSchool(school): AdminSchool,
    Path((kind, id)): Path<(String, String)>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> ApiResult<Response> {
    let params = QueryParams::parse(query.as_deref())?;
    if let Some(unknown) = params.names().find(|n| !n.eq_ignore_ascii_case("format")) {
        return Err(ApiError::BadRequest(format!(
            "a subject access export takes no parameter `{}`; it takes format=json or format=csv",
            unknown.chars().take(40).collect::<String>()
        )));
    }
    let csv = wants_csv(&params, &headers)?;
    let search = SubjectSearch::new(person_kind(&kind)?, &checked_id(&id)?);
    let now = state.clock.now();
    let export = gather(&state, &school.estab, search, now).await?;
    tracing::info!(
        sets = export.held.len(),
        log_entries = export.access.len(),
        "subject access export"
    );
    let mut response = match csv {
        true => export.csv(),
        false => Json(export.json(now)).into_response(),
    };
    // Everything held about a person: never kept by a cache on the way.
    (response.headers_mut()).insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

pub(crate) fn person_kind(kind: &str) -> ApiResult<PersonKind> {
    match kind.to_ascii_lowercase().as_str() {
        "student" | "pupil" => Ok(PersonKind::Student),
        "staff" => Ok(PersonKind::Staff),
        "contact" => Ok(PersonKind::Contact),
        _ => Err(ApiError::BadRequest(format!(
            "`{}` is not a kind of person; use /admin/v1/subjects/student/<id>, \
             /admin/v1/subjects/staff/<id> or /admin/v1/subjects/contact/<id>",
            kind.chars().take(40).collect::<String>()
        ))),
    }
}

fn checked_id(id: &str) -> ApiResult<String> {
    let id = id.trim();
    if id.is_empty() || id.chars().count() > MAX_ID || id.chars().any(char::is_control) {
        return Err(ApiError::BadRequest(format!(
            "the person's id must be 1 to {MAX_ID} characters: the MIS id, as in the Id of \
             their Students, Staff or Contacts row"
        )));
    }
    Ok(id.to_owned())
}

/// What the export holds.
struct Export {
    search: SubjectSearch,
    /// Per result set, the current rows about the person.
    held: BTreeMap<String, Vec<Row>>,
    /// Per result set, what rollcall keeps of deleted rows about them, and when each went.
    deleted: BTreeMap<String, Vec<(Row, Timestamp)>>,
    /// The partners they are opted out for.
    opted_out_for: Vec<String>,
    /// The access-log entries whose answers included them.
    access: Vec<AccessEntry>,
}

/// A stored set's current version, opened: every row and every tombstone.
struct Opened {
    rs: &'static ResultSet,
    rows: Vec<Row>,
    tombstones: Vec<(Row, Timestamp)>,
}

async fn gather(
    state: &ConsentState,
    estab: &Estab,
    mut search: SubjectSearch,
    now: Timestamp,
) -> ApiResult<Export> {
    let opened = open_all(state, estab).await?;
    let by_name = |name: &str| opened.iter().find(|o| o.rs.name == name);
    if let Some(own) = by_name(search.kind.own_set()) {
        search.learn_own_record(&own.rows);
    }
    for about in &opened {
        let Some(through) = about.rs.people.about_through.as_deref().and_then(by_name) else {
            continue;
        };
        let all: Vec<Row> = through
            .rows
            .iter()
            .cloned()
            .chain(through.tombstones.iter().map(|(row, _)| row.clone()))
            .collect();
        search.learn_through(about.rs, through.rs, &all);
    }
    let mut held = BTreeMap::new();
    let mut deleted = BTreeMap::new();
    for set in &opened {
        let rows: Vec<Row> = (set.rows.iter())
            .filter_map(|row| search.excerpt(set.rs, row))
            .collect();
        if !rows.is_empty() {
            held.insert(set.rs.name.clone(), rows);
        }
        let gone: Vec<(Row, Timestamp)> = (set.tombstones.iter())
            .filter_map(|(row, at)| Some((search.excerpt(set.rs, row)?, *at)))
            .collect();
        if !gone.is_empty() {
            deleted.insert(set.rs.name.clone(), gone);
        }
    }
    let opted_out_for = opted_out_for(state, estab, &search).await?;
    let access = access_entries(state, estab, &search, now).await?;
    Ok(Export {
        search,
        held,
        deleted,
        opted_out_for,
        access,
    })
}

/// Every stored set the school has a current version of (withdrawn ones too: rollcall
/// still holds them until they are disposed of), with every group decrypted.
async fn open_all(state: &ConsentState, estab: &Estab) -> ApiResult<Vec<Opened>> {
    let catalogue = Catalogue::get();
    let mut opened = Vec::new();
    for record in state.versions.current_versions(estab).await? {
        let Some(rs) = catalogue.stored_set(&record.result_set) else {
            continue;
        };
        let (version, rows) = open_held(state, record, rs.groups.iter()).await?;
        let tombstones = (version.index.deleted.iter())
            .filter_map(|d| Some((d.row()?, d.at)))
            .collect();
        opened.push(Opened {
            rs,
            rows,
            tombstones,
        });
    }
    Ok(opened)
}

/// Someone found by [`find_people`]: their id, name and a line that tells them apart.
pub(crate) struct Found {
    pub id: String,
    pub name: String,
    pub detail: String,
}

/// The most people a search lists.
const MAX_FOUND: usize = 25;

/// People of `kind` at the school whose id is `query` or whose name contains it (without
/// regard to case), from their own result set as last uploaded.
pub(crate) async fn find_people(
    state: &ConsentState,
    estab: &Estab,
    kind: PersonKind,
    query: &str,
) -> ApiResult<Vec<Found>> {
    let query = query.trim().to_lowercase();
    if query.is_empty() {
        return Ok(Vec::new());
    }
    let catalogue = Catalogue::get();
    let set = kind.own_set();
    let Some(rs) = catalogue.stored_set(set) else {
        return Ok(Vec::new());
    };
    let Some(record) =
        (state.versions.current_versions(estab).await?.into_iter()).find(|r| r.result_set == set)
    else {
        return Ok(Vec::new());
    };
    let detail_fields: &[&str] = match kind {
        PersonKind::Student => &["YearGroup", "RegGroup"],
        PersonKind::Staff => &["StaffCode", "JobTitle"],
        PersonKind::Contact => &["Email"],
    };
    let mut wanted = vec!["Id", "Forename", "Surname", "Title"];
    wanted.extend(detail_fields);
    let (_, rows) = open_held(state, record, rs.groups_holding(&wanted).into_iter()).await?;
    let value = |row: &Row, field: &str| row.get(field).map(cell).unwrap_or_default();
    Ok(rows
        .iter()
        .filter_map(|row| {
            let id = value(row, "Id");
            let name = ["Title", "Forename", "Surname"]
                .iter()
                .map(|f| value(row, f))
                .filter(|v| !v.is_empty())
                .collect::<Vec<_>>()
                .join(" ");
            let hit = id.trim().to_lowercase() == query || name.to_lowercase().contains(&query);
            let detail = (detail_fields.iter())
                .map(|f| value(row, f))
                .filter(|v| !v.is_empty())
                .collect::<Vec<_>>()
                .join(", ");
            hit.then_some(Found { id, name, detail })
        })
        .take(MAX_FOUND)
        .collect())
}

/// The ids of the people of `kind` the school has uploaded (their own set's current rows,
/// from its index: nothing is decrypted); `None` when it has uploaded none.
pub(crate) async fn held_ids(
    state: &ConsentState,
    estab: &Estab,
    kind: PersonKind,
) -> ApiResult<Option<BTreeSet<String>>> {
    let Some(record) = state
        .versions
        .current_version(estab, kind.own_set())
        .await?
    else {
        return Ok(None);
    };
    let version =
        OpenVersion::open(state.objects.as_ref(), state.key_unwrapper.as_ref(), record).await?;
    Ok(Some(
        version
            .index
            .rows
            .iter()
            .map(|row| row.id.clone())
            .collect(),
    ))
}

/// Opens a stored version and decrypts those of `groups` it holds.
async fn open_held<'g>(
    state: &ConsentState,
    record: VersionRecord,
    groups: impl Iterator<Item = &'g ScopeGroup>,
) -> ApiResult<(OpenVersion, Vec<Row>)> {
    let held: Vec<&str> = groups
        .map(|g| g.id.as_str())
        .filter(|g| record.groups.iter().any(|held| held == g))
        .collect();
    let version =
        OpenVersion::open(state.objects.as_ref(), state.key_unwrapper.as_ref(), record).await?;
    let rows = version.rows(state.objects.as_ref(), &held).await?;
    Ok((version, rows))
}

async fn opted_out_for(
    state: &ConsentState,
    estab: &Estab,
    search: &SubjectSearch,
) -> ApiResult<Vec<String>> {
    let mut partners = Vec::new();
    for consent in state.consents.consents_of_school(estab).await? {
        let record = state.opt_outs.opt_outs(estab, &consent.partner).await?;
        if record.is_some_and(|r| r.people.of(search.kind).contains(&search.id)) {
            partners.push(consent.partner.to_string());
        }
    }
    Ok(partners)
}

/// Every entry of the school's access log (it keeps 30 days) whose answer included them.
async fn access_entries(
    state: &ConsentState,
    estab: &Estab,
    search: &SubjectSearch,
    now: Timestamp,
) -> ApiResult<Vec<AccessEntry>> {
    let mut found = Vec::new();
    let mut query = LogQuery {
        to: Some(now.plus(rollcall_core::timestamp::Duration::minutes(1))),
        ..LogQuery::newest(LOG_PAGE)
    };
    loop {
        let page = state.access_log.access_log(estab, &query).await?;
        found.extend(
            (page.entries.into_iter())
                .filter(|e| included::includes(&e.people, search.kind, &search.id)),
        );
        match page.next {
            Some(next) => query.cursor = Some(next),
            None => return Ok(found),
        }
    }
}

/// Per answered set of the entry's endpoint, the fields its scopes could show.
fn fields_answered(entry: &AccessEntry) -> BTreeMap<String, Vec<String>> {
    let catalogue = Catalogue::get();
    let Some(endpoint) = catalogue.endpoint_by_path(&entry.endpoint) else {
        return BTreeMap::new();
    };
    endpoint
        .sets
        .iter()
        .filter_map(|set| {
            let rs = catalogue.result_set(&set.stored)?;
            let fields: Vec<String> = rs
                .visible_fields(&entry.scopes_used)
                .filter(|f| !set.omit.contains(&f.name))
                .map(|f| f.name.clone())
                .collect();
            (!fields.is_empty()).then(|| (set.name.clone(), fields))
        })
        .collect()
}

impl Export {
    fn json(&self, now: Timestamp) -> Value {
        let deleted: BTreeMap<&String, Vec<Value>> = (self.deleted.iter())
            .map(|(set, rows)| {
                let rows = rows
                    .iter()
                    .map(|(row, at)| json!({ "deletedAt": at.to_rfc3339(), "kept": row }))
                    .collect();
                (set, rows)
            })
            .collect();
        let access: Vec<Value> = (self.access.iter())
            .map(|entry| {
                let mut value = entry_json(entry);
                value["fields"] = json!(fields_answered(entry));
                value
            })
            .collect();
        json!({
            "person": { "kind": kind_name(self.search.kind), "id": self.search.id },
            "generatedAt": now.to_rfc3339(),
            "resultSets": self.held,
            "deletedRows": deleted,
            "optedOutFor": self.opted_out_for,
            "accessLog": access,
        })
    }

    fn csv(&self) -> Response {
        let mut out = csv::Writer::from_writer(Vec::new());
        let mut write = |cells: [&str; 5]| {
            // Writing to memory cannot fail.
            let _ = out.write_record(cells.map(guard_formula));
        };
        write(["section", "resultSet", "row", "field", "value"]);
        for (set, rows) in &self.held {
            for (n, row) in rows.iter().enumerate() {
                for (field, value) in row {
                    write(["held", set, &(n + 1).to_string(), field, &cell(value)]);
                }
            }
        }
        for (set, rows) in &self.deleted {
            for (n, (row, at)) in rows.iter().enumerate() {
                let n = (n + 1).to_string();
                write(["deleted", set, &n, "deletedAt", &at.to_rfc3339()]);
                for (field, value) in row {
                    write(["deleted", set, &n, field, &cell(value)]);
                }
            }
        }
        for partner in &self.opted_out_for {
            write(["opted-out", "", "", "partner", partner]);
        }
        for (n, entry) in self.access.iter().enumerate() {
            let n = (n + 1).to_string();
            let scopes = entry.scopes_used.iter().cloned().collect::<Vec<_>>();
            write([
                "access-log",
                &entry.endpoint,
                &n,
                "at",
                &entry.at.to_rfc3339(),
            ]);
            write([
                "access-log",
                &entry.endpoint,
                &n,
                "partner",
                entry.partner.as_str(),
            ]);
            write([
                "access-log",
                &entry.endpoint,
                &n,
                "scopesUsed",
                &scopes.join(" "),
            ]);
            for (set, fields) in fields_answered(entry) {
                write([
                    "access-log",
                    &entry.endpoint,
                    &n,
                    &format!("fields of {set}"),
                    &fields.join(" "),
                ]);
            }
        }
        let body = out.into_inner().unwrap_or_default();
        let name = format!(
            "attachment; filename=\"subject-access-{}-{}.csv\"",
            kind_name(self.search.kind),
            self.search
                .id
                .chars()
                .filter(char::is_ascii_alphanumeric)
                .collect::<String>()
        );
        let disposition = HeaderValue::from_str(&name).unwrap_or(HeaderValue::from_static(
            "attachment; filename=\"subject-access.csv\"",
        ));
        (
            [
                (
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/csv; charset=utf-8"),
                ),
                (header::CONTENT_DISPOSITION, disposition),
            ],
            body,
        )
            .into_response()
    }
}

pub(crate) fn kind_name(kind: PersonKind) -> &'static str {
    match kind {
        PersonKind::Student => "student",
        PersonKind::Staff => "staff",
        PersonKind::Contact => "contact",
    }
}

fn cell(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}
