//! The XoD info endpoints: what a token is (`TokenDetails`), what can be granted (`Scopes`), what
//! can be called (`Queries`, from the catalogue), how much this partner has called
//! (`Usage`, `Logs`, from the access log), whom the school opted out (`GDPRIDs`) and which
//! schools are registered
//! (`RunQuery/?id=edubase.search`). Successful info answers carry the four XoD message keys,
//! all `null`, as XoD's do.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{RawQuery, State};
use rollcall_core::catalogue::{Catalogue, Endpoint, OptionEffect, Writeback};
use rollcall_core::model::AccessEntry;
use rollcall_core::plan;
use rollcall_core::timestamp::{Duration, Timestamp};
use rollcall_core::xod::DEFAULT_PAGE_SIZE;
use rollcall_http::credentials::PartnerToken;
use rollcall_http::request::QueryParams;
use rollcall_http::{ApiError, ApiResult};
use serde_json::{Map, Value, json};

use crate::{ServeState, access_log};

/// How far back `Usage` counts.
const USAGE_WINDOW: Duration = Duration::days(366);
/// The most access-log entries `Usage` reads.
const USAGE_MAX_ENTRIES: usize = 1_000_000;
const LOGS_DEFAULT: u64 = 100;
const LOGS_MAX: u64 = 1000;
const SEARCH_DEFAULT: u64 = 50;
const SEARCH_MAX: u64 = 500;

/// `body` with XoD's `Message`, `ExceptionType`, `ExceptionMessage` and `InnerException`, null.
fn with_message_keys(mut body: Map<String, Value>) -> Json<Value> {
    for key in [
        "Message",
        "ExceptionType",
        "ExceptionMessage",
        "InnerException",
    ] {
        body.insert(key.to_owned(), Value::Null);
    }
    Json(Value::Object(body))
}

fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => unreachable!("info answers are objects"),
    }
}

/// `GET /api/v1/TokenDetails`: the token's school, partner, expiry and the scopes granted now.
pub(crate) async fn token_details(
    State(state): State<ServeState>,
    partner: PartnerToken,
) -> ApiResult<Json<Value>> {
    let token = &partner.token;
    let consent = access_log::consent(&state, &partner, "TokenDetails").await?;
    Ok(with_message_keys(object(json!({
        "Estab": token.estab.as_str(),
        "RelyingParty": token.partner.as_str(),
        "Scopes": consent.scopes,
        "Issued": token.issued_at.to_xod(),
        "Expires": token.expires_at.to_xod(),
        "ConsentEnds": consent.end_date.map(Timestamp::to_xod),
    }))))
}

/// `GET /api/v1/GDPRIDs`: the people the token's school opted out of this partner's data, so
/// the partner can delete what it already holds. rollcall's controls are opt-outs, never
/// opt-in lists (`IsOptIn` is 0).
pub(crate) async fn gdpr_ids(
    State(state): State<ServeState>,
    partner: PartnerToken,
) -> ApiResult<Json<Value>> {
    let token = &partner.token;
    // A revoked consent or a replaced secret ends every partner call, info ones included.
    let consent = access_log::consent(&state, &partner, "GDPRIDs").await?;
    let record = state
        .opt_outs
        .opt_outs(&token.estab, &token.partner)
        .await?;
    let people = record
        .as_ref()
        .map(|r| plan::opt_outs_told(Catalogue::get(), &consent.scopes, &r.people))
        .unwrap_or_default();
    Ok(with_message_keys(object(json!({
        "GDPR": [{
            "IsOptIn": 0,
            "Estab": token.estab.as_str(),
            "RelyingParty": token.partner.as_str(),
            "StudentIds": people.students,
            "StaffIds": people.staff,
            "ContactIds": people.contacts,
            "LastUpdated": record.map(|r| r.updated_at.to_xod()),
        }]
    }))))
}

/// `GET /api/v1/Scopes`: every scope a school can grant, with rollcall's descriptions.
pub(crate) async fn scopes() -> Json<Value> {
    let scopes: Vec<Value> = Catalogue::get()
        .scope_info()
        .iter()
        .map(|s| json!({ "Name": s.name, "Category": s.category, "Description": s.description }))
        .collect();
    with_message_keys(object(json!({ "Scopes": scopes })))
}

/// `GET /api/v1/Queries`: every endpoint, write-back and named query of the catalogue.
pub(crate) async fn queries() -> Json<Value> {
    let catalogue = Catalogue::get();
    let mut entries: Vec<Value> = catalogue.endpoints().iter().map(endpoint_entry).collect();
    entries.extend(catalogue.writebacks().iter().map(writeback_entry));
    entries.extend(catalogue.queries().iter().map(|q| {
        json!({
            "Version": "1", "Id": q.id, "Method": "GET", "Scope": q.scope.to_string(),
            "Path": q.path, "Description": q.summary, "Documentation": q.summary,
            "Query": q.id, "Options": q.options.join("\n"), "Parameters": q.parameters.join("\n"),
            "Published": true, "PageSize": 0,
        })
    }));
    with_message_keys(object(json!({ "Endpoints": entries })))
}

fn endpoint_entry(endpoint: &Endpoint) -> Value {
    let options: Vec<String> = endpoint
        .options
        .iter()
        .map(|(name, effect)| format!("{name}:{}", option_text(endpoint, name, effect)))
        .collect();
    let parameters: Vec<String> = endpoint
        .filters
        .iter()
        .filter_map(|f| {
            let name = f.name.as_deref()?;
            let required = if f.required { " (required)" } else { "" };
            Some(format!("{name}:{}{required}", f.fields.join(" or ")))
        })
        .collect();
    json!({
        "Version": "1",
        "Id": endpoint.id,
        "Method": "GET",
        "Scope": endpoint.scope.to_string(),
        "Path": format!("/api/v1/School/{{estab}}/{}", endpoint.path),
        "Description": endpoint.summary,
        "Documentation": endpoint_documentation(endpoint),
        "Query": endpoint.id,
        "Options": options.join("\n"),
        "Parameters": parameters.join("\n"),
        "Published": true,
        "PageSize": DEFAULT_PAGE_SIZE,
    })
}

/// What an option does, in a few words.
pub(crate) fn option_text(endpoint: &Endpoint, name: &str, effect: &OptionEffect) -> String {
    match effect {
        OptionEffect::Sets => {
            let sets: Vec<&str> = endpoint
                .sets
                .iter()
                .filter(|s| s.option.as_deref() == Some(name))
                .map(|s| s.name.as_str())
                .collect();
            format!("adds {}", sets.join(", "))
        }
        OptionEffect::Columns(columns) => format!(
            "adds the columns {}",
            columns.iter().cloned().collect::<Vec<_>>().join(", ")
        ),
        OptionEffect::Reveal(c) => format!("includes rows where {c}"),
        OptionEffect::Keep(c) => format!("only rows where {c}"),
        OptionEffect::Drop(c) => format!("leaves out rows where {c}"),
        OptionEffect::Accepted => "accepted; changes nothing rollcall answers".to_owned(),
    }
}

/// A short Markdown description: the summary and the result sets answered.
fn endpoint_documentation(endpoint: &Endpoint) -> String {
    let sets: Vec<String> = endpoint
        .sets
        .iter()
        .map(|s| match &s.option {
            Some(option) => format!("`{}` (with `{option}`)", s.name),
            None => format!("`{}`", s.name),
        })
        .collect();
    let mut text = format!("{}\n\nAnswers {}.", endpoint.summary, sets.join(", "));
    if endpoint.by_id {
        text.push_str(&format!(" `/{}/{{id}}` answers one record.", endpoint.path));
    }
    text
}

fn writeback_entry(writeback: &Writeback) -> Value {
    json!({
        "Version": "1", "Id": writeback.id, "Method": "POST",
        "Scope": writeback.scope.to_string(), "Path": writeback.path,
        "Description": writeback.summary, "Documentation": writeback.summary,
        "Query": writeback.id, "Options": "", "Parameters": "", "Published": true, "PageSize": 0,
    })
}

/// The area of an access-log entry, as `Usage` groups calls.
fn area_of(entry: &AccessEntry) -> &'static str {
    let catalogue = Catalogue::get();
    if catalogue.writeback(&entry.endpoint).is_some() {
        return "Writeback";
    }
    catalogue
        .endpoint_by_path(&entry.endpoint)
        .and_then(|e| catalogue.result_set(&e.primary().stored))
        .map_or("Other", |rs| rs.area.name())
}

/// `GET /api/v1/Usage`: this partner's calls at the token's school over the last year, by
/// area: in all, today, this month and month by month (UTC).
pub(crate) async fn usage(
    State(state): State<ServeState>,
    partner: PartnerToken,
) -> ApiResult<Json<Value>> {
    let (token, now) = (&partner.token, partner.now);
    access_log::consent(&state, &partner, "Usage").await?;
    let entries = state
        .access_log
        .partner_access(
            &token.estab,
            &token.partner,
            now.minus(USAGE_WINDOW),
            USAGE_MAX_ENTRIES,
        )
        .await?;
    let today = now.to_xod()[..10].to_owned();
    let month = today[..7].to_owned();
    #[derive(Default)]
    struct Counts {
        total: u64,
        today: u64,
        this_month: u64,
        by_month: BTreeMap<String, u64>,
    }
    let mut areas: BTreeMap<&str, Counts> = BTreeMap::new();
    for entry in &entries {
        let at = entry.at.to_xod();
        let counts = areas.entry(area_of(entry)).or_default();
        counts.total += 1;
        counts.today += u64::from(at[..10] == today);
        counts.this_month += u64::from(at[..7] == month);
        *counts.by_month.entry(at[..7].to_owned()).or_default() += 1;
    }
    let areas: Vec<Value> = areas
        .into_iter()
        .map(|(area, c)| {
            let history: Vec<Value> = c
                .by_month
                .into_iter()
                .rev()
                .map(|(month, calls)| json!({ "Month": month, "Total": calls }))
                .collect();
            json!({ "Area": area, "Total": c.total, "Today": c.today,
                    "ThisMonth": c.this_month, "History": history })
        })
        .collect();
    Ok(Json(json!({
        "Usage": [{ "Estab": token.estab.as_str(), "RP": token.partner.as_str(), "Areas": areas }]
    })))
}

/// `GET /api/v1/Logs[?limit=N]`: this partner's most recent calls at the token's school.
pub(crate) async fn logs(
    State(state): State<ServeState>,
    partner: PartnerToken,
    RawQuery(query): RawQuery,
) -> ApiResult<Json<Value>> {
    let token = &partner.token;
    access_log::consent(&state, &partner, "Logs").await?;
    let params = QueryParams::parse(query.as_deref())?;
    let limit = params.bounded("limit", LOGS_DEFAULT, LOGS_MAX)? as usize;
    let entries = state
        .access_log
        .partner_access(
            &token.estab,
            &token.partner,
            Timestamp::from_millis(0),
            limit,
        )
        .await?;
    let logs: Vec<Value> = entries
        .iter()
        .map(|e| {
            json!({
                "DateTime": e.at.to_xod(), "Estab": e.estab.as_str(), "Endpoint": e.endpoint,
                "Status": e.refused.as_ref().map_or(200, |r| r.status),
                "Scopes": e.scopes_used, "Rows": e.rows,
            })
        })
        .collect();
    Ok(Json(json!({ "Logs": logs })))
}

/// `GET /api/v1/RunQuery/?id=edubase.search`: schools registered with rollcall, found by name
/// or number (`q`), local authority (`la_code`, the first three digits of the establishment
/// number) or establishment code (`estab_code`, the rest).
pub(crate) async fn run_query(
    State(state): State<ServeState>,
    partner: PartnerToken,
    RawQuery(query): RawQuery,
) -> ApiResult<Json<Value>> {
    access_log::consent(&state, &partner, "RunQuery").await?;
    let params = QueryParams::parse(query.as_deref())?;
    let id = params.get("id").unwrap_or("");
    Catalogue::get().query(id).ok_or_else(|| {
        ApiError::NotFound(format!(
            "there is no query `{}`; the queries are: {}",
            id.chars().take(60).collect::<String>(),
            Catalogue::get()
                .queries()
                .iter()
                .map(|q| q.id.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ))
    })?;
    for unheld in ["postcode", "telephone"] {
        if params.get(unheld).is_some() {
            return Err(ApiError::BadRequest(format!(
                "rollcall's register holds schools' names and numbers, not their {unheld}s; \
                 search with q, la_code or estab_code"
            )));
        }
    }
    let limit = params.bounded("limit", SEARCH_DEFAULT, SEARCH_MAX)? as usize;
    let text = params.get("q").map(str::to_lowercase).unwrap_or_default();
    let la_code = params.get("la_code").unwrap_or("");
    let estab_code = params.get("estab_code").unwrap_or("");
    let found: Vec<Value> = state
        .schools
        .schools()
        .await?
        .into_iter()
        .filter(|school| {
            let estab = school.estab.as_str();
            let (la, code) = estab.split_at(estab.len().min(3));
            (text.is_empty() || school.name.to_lowercase().contains(&text) || estab.contains(&text))
                && (la_code.is_empty() || la == la_code)
                && (estab_code.is_empty() || code == estab_code)
        })
        .take(limit)
        .map(|school| {
            let estab = school.estab.as_str();
            let (la, code) = estab.split_at(estab.len().min(3));
            json!({ "Estab": estab, "LACode": la, "EstabCode": code, "Name": school.name,
                    "Open": 1 })
        })
        .collect();
    Ok(Json(json!({ "Establishments": found })))
}
