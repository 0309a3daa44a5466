//! `GET /admin/v1/access-log`: every partner call on the school's data, newest first,
//! answered or refused, filtered by partner, endpoint and time, a page at a time, as JSON or
//! as a CSV download (`Accept: text/csv` or `format=csv`).

use axum::Json;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use rollcall_core::catalogue::Catalogue;
use rollcall_core::cursor::{open_cursor, seal_cursor};
use rollcall_core::model::{AccessEntry, PartnerId};
use rollcall_core::ports::{LogPage, LogQuery, StoreError};
use rollcall_core::timestamp::Timestamp;
use rollcall_http::credentials::AdminSchool;
use rollcall_http::request::QueryParams;
use rollcall_http::{ApiError, ApiResult};
use serde_json::{Value, json};

use crate::ConsentState;

const DEFAULT_ENTRIES: u64 = 100;
const MAX_ENTRIES: u64 = 1000;
const PARAMETERS: [&str; 7] = [
    "partner", "endpoint", "from", "to", "limit", "cursor", "format",
];
/// The header that carries, with a CSV page, where the next page starts.
const NEXT_CURSOR: &str = "x-rollcall-next-cursor";

pub(crate) async fn access_log(
    State(state): State<ConsentState>,
    AdminSchool(school): AdminSchool,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> ApiResult<Response> {
    let params = QueryParams::parse(query.as_deref())?;
    let csv = wants_csv(&params, &headers)?;
    let estab = school.estab.as_str();
    let unknown_cursor = || {
        ApiError::BadRequest(
            "`cursor` is not one this access log gave; use the `nextCursor` of the previous \
             page, or leave it out to start from the newest entry"
                .to_owned(),
        )
    };
    let mut query = log_query(&params)?;
    query.cursor = match params.get("cursor") {
        Some(cursor) => {
            Some(open_cursor(&school.row_hash_key, estab, cursor).ok_or_else(unknown_cursor)?)
        }
        None => None,
    };
    let mut page = state
        .access_log
        .access_log(&school.estab, &query)
        .await
        .map_err(|error| match error {
            StoreError::NotFound(_) => unknown_cursor(),
            other => other.into(),
        })?;
    page.next = page
        .next
        .map(|position| seal_cursor(&school.row_hash_key, estab, &position));
    if csv {
        return Ok(csv_page(&page));
    }
    let entries: Vec<Value> = page.entries.iter().map(entry_json).collect();
    Ok(Json(json!({ "accessLog": entries, "nextCursor": page.next })).into_response())
}

/// The filters and page of the call; 400 naming a parameter that is not one or is malformed.
fn log_query(params: &QueryParams) -> ApiResult<LogQuery> {
    if let Some(unknown) = params
        .names()
        .find(|name| !PARAMETERS.iter().any(|p| p.eq_ignore_ascii_case(name)))
    {
        return Err(ApiError::BadRequest(format!(
            "the access log takes no parameter `{}`; it takes {}",
            unknown.chars().take(40).collect::<String>(),
            PARAMETERS.join(", ")
        )));
    }
    let partner = params
        .get("partner")
        .map(|id| {
            PartnerId::parse(id).map_err(|_| {
                ApiError::BadRequest(format!(
                    "partner `{}` is not a partner id; GET /admin/v1/partners lists them",
                    id.chars().take(64).collect::<String>()
                ))
            })
        })
        .transpose()?;
    // Logged as the partner named it; filtered without regard to case.
    let endpoint = params.get("endpoint").map(|e| {
        Catalogue::get()
            .endpoints()
            .iter()
            .find(|known| known.path.eq_ignore_ascii_case(e))
            .map_or_else(|| e.to_owned(), |known| known.path.clone())
    });
    let time = |name: &str| {
        params
            .get(name)
            .map(|text| {
                Timestamp::parse(text).map_err(|_| {
                    ApiError::BadRequest(format!(
                        "`{name}` must be an ISO 8601 date or date-time, e.g. {name}=2026-09-01 \
                         or {name}=2026-09-01T08:00:00Z"
                    ))
                })
            })
            .transpose()
    };
    let (from, to) = (time("from")?, time("to")?);
    if let (Some(from), Some(to)) = (from, to)
        && from >= to
    {
        return Err(ApiError::BadRequest(
            "`from` must be before `to` (from is included, to is not)".to_owned(),
        ));
    }
    Ok(LogQuery {
        partner,
        endpoint,
        from,
        to,
        cursor: None,
        limit: params.bounded("limit", DEFAULT_ENTRIES, MAX_ENTRIES)? as usize,
    })
}

pub(crate) fn wants_csv(params: &QueryParams, headers: &HeaderMap) -> ApiResult<bool> {
    match params.get("format") {
        Some(format) if format.eq_ignore_ascii_case("csv") => Ok(true),
        Some(format) if format.eq_ignore_ascii_case("json") => Ok(false),
        Some(_) => Err(ApiError::BadRequest(
            "`format` is csv or json (or send `Accept: text/csv`)".to_owned(),
        )),
        None => Ok(headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|accept| accept.to_ascii_lowercase().contains("text/csv"))),
    }
}

pub(crate) fn entry_json(e: &AccessEntry) -> Value {
    let mut entry = json!({
        "at": e.at.to_rfc3339(),
        "partner": e.partner,
        "endpoint": e.endpoint,
        "status": status(e),
        "scopesUsed": e.scopes_used,
        "rows": e.rows,
    });
    if let Some(refused) = &e.refused {
        entry["refused"] = json!(refused.reason);
    }
    entry
}

fn status(e: &AccessEntry) -> u16 {
    e.refused.as_ref().map_or(200, |r| r.status)
}

/// The page as a CSV file, a header row then an entry a row; the next page's cursor in
/// [`NEXT_CURSOR`].
fn csv_page(page: &LogPage) -> Response {
    let mut out = csv::Writer::from_writer(Vec::new());
    let header_row = [
        "at",
        "partner",
        "endpoint",
        "status",
        "rows",
        "scopesUsed",
        "refused",
    ];
    let mut rows = vec![header_row.map(str::to_owned).to_vec()];
    for e in &page.entries {
        rows.push(vec![
            e.at.to_rfc3339(),
            e.partner.to_string(),
            e.endpoint.clone(),
            status(e).to_string(),
            e.rows.to_string(),
            e.scopes_used.iter().cloned().collect::<Vec<_>>().join(" "),
            e.refused
                .as_ref()
                .map(|r| r.reason.clone())
                .unwrap_or_default(),
        ]);
    }
    for row in rows {
        // Writing to memory cannot fail.
        let _ = out.write_record(row.iter().map(|cell| guard_formula(cell)));
    }
    let body = out.into_inner().unwrap_or_default();
    let mut response = (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"access-log.csv\"",
            ),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body,
    )
        .into_response();
    if let Some(next) = page
        .next
        .as_deref()
        .and_then(|n| HeaderValue::from_str(n).ok())
    {
        response.headers_mut().insert(NEXT_CURSOR, next);
    }
    response
}

/// A cell a spreadsheet would run as a formula (`=`, `+`, `-`, `@` first) gets a leading
/// quote: a refusal message repeats what a partner sent.
pub(crate) fn guard_formula(cell: &str) -> String {
    if cell.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{cell}")
    } else {
        cell.to_owned()
    }
}
