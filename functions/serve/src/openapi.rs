//! The OpenAPI 3.1 document of the partner API, generated from the catalogue: every school
//! endpoint with its filters, options and result sets (each field described by the scope that
//! releases it), every write-back and named query, and the token and info endpoints. Served at
//! `GET /api/v1/openapi.json` and printed by `rollcall openapi`.

use axum::Json;
use rollcall_core::catalogue::{
    Catalogue, Endpoint, FilterOp, ResultSet, Writeback, WritebackBody,
};
use rollcall_core::xod::{DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE};
use serde_json::{Map, Value, json};

use crate::info::option_text;

pub(crate) async fn serve() -> Json<Value> {
    Json(document())
}

/// The whole document.
pub fn document() -> Value {
    let catalogue = Catalogue::get();
    let mut paths = Map::new();
    paths.insert("/idaas/sts/STS/GetToken".into(), get_token());
    for endpoint in catalogue.endpoints() {
        let base = format!("/api/v1/School/{{estab}}/{}", endpoint.path);
        paths.insert(
            base.clone(),
            json!({ "get": read_operation(endpoint, false) }),
        );
        if endpoint.by_id {
            paths.insert(
                format!("{base}/{{id}}"),
                json!({ "get": read_operation(endpoint, true) }),
            );
        }
    }
    for writeback in catalogue.writebacks() {
        let (path, query_id) = match writeback.path.split_once("?id=") {
            Some((path, id)) => (path.trim_end_matches('/').to_owned(), Some(id)),
            None => (writeback.path.trim_end_matches('/').to_owned(), None),
        };
        paths.insert(
            path,
            json!({ "post": writeback_operation(writeback, query_id) }),
        );
    }
    for (path, id, summary) in INFO {
        paths.insert(
            path.to_owned(),
            json!({ "get": info_operation(id, summary) }),
        );
    }
    // The catalogue's own description is public: these two take no token (any `Authorization`
    // is ignored), so their operations say so rather than inherit the document's `idaas`.
    for path in PUBLIC_INFO {
        paths[path]["get"]["security"] = json!([]);
    }
    paths.insert("/api/v1/RunQuery".into(), run_query());
    paths.insert("/api/v1/Writeback/Status/{trackingId}".into(), status());
    let schemas: Map<String, Value> = catalogue
        .result_sets()
        .map(|rs| (schema_name(&rs.name), result_set_schema(rs)))
        .chain([("Error".to_owned(), error_schema())])
        .collect();
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "rollcall partner API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "School data shared with partner apps, only the fields the school's \
                consent in force releases. Wire-compatible with XoD v1: paths and parameter \
                names match without regard to case, with or without a trailing slash; every \
                error carries the XoD error body.",
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "idaas": {
                    "type": "apiKey", "in": "header", "name": "Authorization",
                    "description": "`Idaas <token>`, the token from POST /idaas/sts/STS/GetToken",
                },
            },
            "responses": { "Error": error_response() },
        },
        "security": [{ "idaas": [] }],
    })
}

const INFO: [(&str, &str, &str); 6] = [
    (
        "/api/v1/TokenDetails",
        "info.tokendetails",
        "The token's school, partner, expiry and the scopes granted now.",
    ),
    (
        "/api/v1/Scopes",
        "info.scopes",
        "Every scope a school can grant, with what it releases.",
    ),
    (
        "/api/v1/Queries",
        "info.queries",
        "Every endpoint, write-back and named query, with scope, options and parameters.",
    ),
    (
        "/api/v1/Usage",
        "info.usage",
        "This partner's calls at the token's school over the last year, by area.",
    ),
    (
        "/api/v1/GDPRIDs",
        "info.gdprids",
        "The pupils, staff and contacts the school opted out of this partner's data.",
    ),
    (
        "/api/v1/Logs",
        "info.logs",
        "This partner's most recent calls at the token's school (`limit`, 1 to 1000).",
    ),
];

/// The info endpoints answered without a token: they describe the catalogue, no school.
const PUBLIC_INFO: [&str; 2] = ["/api/v1/Scopes", "/api/v1/Queries"];

fn schema_name(result_set: &str) -> String {
    format!("ResultSet.{result_set}")
}

fn error_schema() -> Value {
    json!({
        "type": "object",
        "required": ["ExceptionMessage"],
        "properties": {
            "Message": { "type": ["string", "null"] },
            "ExceptionType": { "type": ["string", "null"] },
            "ExceptionMessage": {
                "type": "string",
                "description": "What was wrong and how to fix it.",
            },
            "InnerException": { "type": ["string", "null"] },
        },
    })
}

fn error_response() -> Value {
    json!({
        "description": "An error: the status says which kind, ExceptionMessage what to do.",
        "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } },
    })
}

fn errors() -> Value {
    json!({ "4XX": { "$ref": "#/components/responses/Error" },
            "5XX": { "$ref": "#/components/responses/Error" } })
}

fn with_errors(ok: Value) -> Value {
    let mut responses = errors();
    responses["200"] = ok;
    responses
}

/// One result set's rows: every field, described by the scope that releases it.
fn result_set_schema(rs: &ResultSet) -> Value {
    let properties: Map<String, Value> = rs
        .fields
        .iter()
        .map(|field| {
            (
                field.name.clone(),
                json!({ "description": format!("Released by: {}", field.scope) }),
            )
        })
        .collect();
    json!({
        "type": "object",
        "description": format!("A row of {} (area: {}).", rs.name, rs.area.name()),
        "properties": properties,
    })
}

fn parameter(
    name: &str,
    location: &str,
    required: bool,
    description: &str,
    schema: Value,
) -> Value {
    json!({ "name": name, "in": location, "required": required, "description": description,
            "schema": schema })
}

fn read_operation(endpoint: &Endpoint, by_id: bool) -> Value {
    let mut parameters = vec![parameter(
        "estab",
        "path",
        true,
        "The school's establishment number.",
        json!({ "type": "string" }),
    )];
    if by_id {
        parameters.push(parameter(
            "id",
            "path",
            true,
            "The record's id; the same as the `id` filter.",
            json!({ "type": "string" }),
        ));
    }
    parameters.extend(common_parameters(endpoint));
    for filter in &endpoint.filters {
        let Some(name) = filter.name.as_deref() else {
            continue;
        };
        if by_id && name.eq_ignore_ascii_case("id") {
            continue;
        }
        if parameters.iter().any(|p| {
            p["in"] == "query"
                && p["name"]
                    .as_str()
                    .is_some_and(|n| n.eq_ignore_ascii_case(name))
        }) {
            continue;
        }
        let description = format!("Narrows {} by {}.", filter.set, filter.fields.join(" or "));
        // A date filter takes a date (else a 400); an empty value is as if it were not given,
        // so an optional one takes "" too.
        let schema = match filter.op {
            FilterOp::On | FilterOp::From | FilterOp::To if filter.required => {
                json!({ "type": "string", "format": "date" })
            }
            FilterOp::On | FilterOp::From | FilterOp::To => {
                json!({ "type": "string", "anyOf": [{ "format": "date" }, { "const": "" }] })
            }
            _ => json!({ "type": "string" }),
        };
        parameters.push(parameter(
            name,
            "query",
            filter.required,
            &description,
            schema,
        ));
    }
    let properties: Map<String, Value> = endpoint
        .sets
        .iter()
        .map(|set| {
            let rows = json!({ "type": "array",
                "items": { "$ref": format!("#/components/schemas/{}", schema_name(&set.stored)) } });
            (set.name.clone(), rows)
        })
        .chain([
            ("meta".to_owned(), json!({ "type": "array", "items": { "type": "object" } })),
            (
                "__pagination__".to_owned(),
                json!({ "type": "array", "items": { "type": "object" } }),
            ),
        ])
        .collect();
    let operation_id = if by_id {
        format!("{}.byId", endpoint.id)
    } else {
        endpoint.id.clone()
    };
    json!({
        "operationId": operation_id,
        "summary": endpoint.summary,
        "description": format!("Needs one of these scope combinations: {}.", endpoint.scope),
        "tags": ["school"],
        "parameters": parameters,
        "responses": with_errors(json!({
            "description": "The result sets, then meta and __pagination__.",
            "headers": freshness_headers(),
            "content": { "application/json": { "schema": {
                "type": "object", "properties": properties } } },
        })),
    })
}

fn freshness_headers() -> Value {
    json!({
        "x-rollcall-extracted-at": { "description": "When the school's MIS data was extracted.",
                                     "schema": { "type": "string" } },
        "x-rollcall-data-age": { "description": "The data's age in seconds.",
                                 "schema": { "type": "integer" } },
        "x-rollcall-stale": { "description": "Whether the data is past its validity.",
                              "schema": { "type": "boolean" } },
    })
}

fn common_parameters(endpoint: &Endpoint) -> Vec<Value> {
    let options: Vec<String> = endpoint
        .options
        .iter()
        .map(|(name, effect)| format!("`{name}`: {}", option_text(endpoint, name, effect)))
        .collect();
    let mut list = vec![
        parameter(
            "page",
            "query",
            false,
            "The page, from 1.",
            json!({ "type": "integer", "minimum": 1 }),
        ),
        parameter(
            "pageSize",
            "query",
            false,
            "Rows per page.",
            json!({ "type": "integer", "minimum": 1, "maximum": MAX_PAGE_SIZE,
                          "default": DEFAULT_PAGE_SIZE }),
        ),
        parameter(
            "updatedSince",
            "query",
            false,
            "Only rows changed after this ISO 8601 time (or date); a time without a zone \
             is UTC, as `LastUpdated` is written.",
            json!({ "type": "string", "anyOf": [
                { "format": "date-time" },
                { "format": "date" },
                { "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}(:[0-9]{2}(\\.[0-9]+)?)?$" },
            ] }),
        ),
        parameter(
            "changedRows",
            "query",
            false,
            "`*` starts a changeset; a hash it answered continues it.",
            json!({ "type": "string" }),
        ),
        parameter(
            "select",
            "query",
            false,
            "Comma list of the fields to answer (and Id).",
            json!({ "type": "string" }),
        ),
        parameter(
            "onlyGetDbStatus",
            "query",
            false,
            "`true`: only when the data was last extracted (__DbStatus__).",
            json!({ "type": "boolean" }),
        ),
        parameter(
            "version",
            "query",
            false,
            "The page pin of a walk's later pages, as NextPage carries it (opaque; valid for an hour from the walk's first page).",
            json!({ "type": "string" }),
        ),
    ];
    if !options.is_empty() {
        list.push(parameter(
            "options",
            "query",
            false,
            &format!("Comma list of options. {}", options.join("; ")),
            json!({ "type": "string" }),
        ));
    }
    list
}

/// A person's or group's id as write-backs take it: text, or a number taken as its digits.
fn id_schema() -> Value {
    json!({ "type": ["string", "integer"] })
}

/// A time of day as write-backs take it.
fn time_schema() -> Value {
    json!({ "type": "string", "pattern": "^([01][0-9]|2[0-3]):[0-5][0-9]$" })
}

fn writeback_operation(writeback: &Writeback, query_id: Option<&str>) -> Value {
    let mut parameters = Vec::new();
    if writeback.path.contains("{estab}") {
        parameters.push(parameter(
            "estab",
            "path",
            true,
            "The school's establishment number; the token's school.",
            json!({ "type": "string" }),
        ));
    }
    if let Some(id) = query_id {
        parameters.push(parameter(
            "id",
            "query",
            true,
            "The write-back's name.",
            json!({ "type": "string", "enum": [id] }),
        ));
    }
    let body = match writeback.body {
        WritebackBody::Attendance => json!({ "type": "object", "required": ["Marks"],
            "properties": { "Marks": { "type": "array", "items": { "type": "object",
                "required": ["StudentId", "MarkType", "Date", "Mark"],
                "properties": { "StudentId": { "type": ["string", "integer"] },
                    "MarkType": { "enum": ["S", "L"] }, "Date": { "type": "string", "format": "date" },
                    "Session": { "enum": ["AM", "PM"] }, "InstanceId": { "type": ["string", "integer"] },
                    "Mark": { "type": "string" }, "Mins": { "type": "integer", "minimum": 0 },
                    "Notes": { "type": "string", "maxLength": 500 } } } },
                "Callback": { "type": "object" } } }),
        WritebackBody::Conduct => json!({ "type": "object",
            "required": ["Conducts", "Participants"],
            "properties": { "Conducts": { "type": "array", "items": { "type": "object" } },
                "Participants": { "type": "array", "items": { "type": "object" } },
                "Staff": { "type": "array", "items": { "type": "object" } },
                "MediaFiles": { "type": "array", "items": { "type": "object" } },
                "Callback": { "type": "object" } } }),
        WritebackBody::SeatingPlan => json!({ "type": "object",
            "required": ["GroupId", "Seats"], "additionalProperties": false,
            "properties": { "GroupId": id_schema(), "RoomId": id_schema(),
                "Seats": { "type": "array", "minItems": 1, "items": { "type": "object",
                    "required": ["StudentId", "SeatRow", "SeatColumn"],
                    "additionalProperties": false,
                    "properties": { "StudentId": id_schema(),
                        "SeatRow": { "type": "integer", "minimum": 1, "maximum": 100 },
                        "SeatColumn": { "type": "integer", "minimum": 1, "maximum": 100 } } } },
                "Callback": { "type": "object" } } }),
        WritebackBody::Detention => json!({ "type": "object",
            "required": ["Detentions"], "additionalProperties": false,
            "properties": { "Detentions": { "type": "array", "minItems": 1, "items": {
                "type": "object", "additionalProperties": false,
                "required": ["StudentId", "Date", "StartTime", "EndTime", "SetById"],
                "properties": { "Id": { "type": "integer" }, "StudentId": id_schema(),
                    "Date": { "type": "string", "format": "date" },
                    "StartTime": time_schema(), "EndTime": time_schema(),
                    "SetById": id_schema(), "SupervisorId": id_schema(),
                    "Location": { "type": "string", "maxLength": 100 },
                    "Reason": { "type": "string", "maxLength": 500 },
                    "ConductId": { "type": "integer" } } } },
                "Callback": { "type": "object" } } }),
    };
    json!({
        "operationId": writeback.id,
        "summary": writeback.summary,
        "description": format!(
            "Needs {} in the consent in force. Checked, then queued for the school's agent.",
            writeback.scope),
        "tags": ["write-back"],
        "parameters": parameters,
        "requestBody": { "required": true, "content": { "application/json": { "schema": body } } },
        "responses": {
            "200": { "description": "Applied by the agent, or (async) queued with a TrackingId.",
                     "content": { "application/json": { "schema": { "type": "object" } } } },
            "202": { "description": "Queued; the agent has not reported yet.",
                     "content": { "application/json": { "schema": { "type": "object" } } } },
            "4XX": { "$ref": "#/components/responses/Error" },
            "5XX": { "$ref": "#/components/responses/Error" },
        },
    })
}

fn info_operation(id: &str, summary: &str) -> Value {
    json!({
        "operationId": id,
        "summary": summary,
        "tags": ["info"],
        "responses": with_errors(json!({ "description": summary,
            "content": { "application/json": { "schema": { "type": "object" } } } })),
    })
}

fn run_query() -> Value {
    let queries = Catalogue::get().queries();
    let ids: Vec<&str> = queries.iter().map(|q| q.id.as_str()).collect();
    let mut parameters = vec![parameter(
        "id",
        "query",
        true,
        "The query to run.",
        json!({ "type": "string", "enum": ids }),
    )];
    for name in queries.iter().flat_map(|q| q.parameters.iter()) {
        parameters.push(parameter(
            name,
            "query",
            false,
            "",
            json!({ "type": "string" }),
        ));
    }
    let summary = queries
        .iter()
        .map(|q| format!("{}: {}", q.id, q.summary))
        .collect::<Vec<_>>()
        .join(" ");
    json!({ "get": {
        "operationId": "runQuery",
        "summary": summary,
        "tags": ["info"],
        "parameters": parameters,
        "responses": with_errors(json!({ "description": "The rows found.",
            "content": { "application/json": { "schema": { "type": "object" } } } })),
    } })
}

fn status() -> Value {
    json!({ "get": {
        "operationId": "writeback.status",
        "summary": "Where one of this partner's write-backs is: Queued, Delivered, Succeeded or Failed.",
        "tags": ["write-back"],
        "parameters": [parameter("trackingId", "path", true,
            "The TrackingId a write-back answered.", json!({ "type": "string" }))],
        "responses": with_errors(json!({ "description": "The write-back's status.",
            "content": { "application/json": { "schema": { "type": "object" } } } })),
    } })
}

fn get_token() -> Value {
    json!({ "post": {
        "operationId": "getToken",
        "summary": "Trades the per-school secret for a token valid one hour.",
        "tags": ["token"],
        "security": [],
        "requestBody": { "required": true, "content": { "application/json": { "schema": {
            "type": "object", "required": ["relyingParty", "estab", "password"],
            "properties": { "relyingParty": { "type": "string" },
                "thirdPartyId": { "type": "string" }, "estab": { "type": "string" },
                "password": { "type": "string" } } } } } },
        "responses": with_errors(json!({ "description": "The token.",
            "content": { "application/json": { "schema": { "type": "object",
                "properties": { "token": { "type": "string" }, "expires": { "type": "string" } } } } } })),
    } })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_catalogue_endpoint_and_write_back_has_an_operation() {
        let document = document();
        let catalogue = Catalogue::get();
        let operation_ids: Vec<&str> = document["paths"]
            .as_object()
            .unwrap()
            .values()
            .flat_map(|item| item.as_object().unwrap().values())
            .filter_map(|op| op["operationId"].as_str())
            .collect();
        for endpoint in catalogue.endpoints() {
            assert!(
                operation_ids.contains(&endpoint.id.as_str()),
                "{}",
                endpoint.id
            );
        }
        for writeback in catalogue.writebacks() {
            assert!(
                operation_ids.contains(&writeback.id.as_str()),
                "{}",
                writeback.id
            );
        }
        let unique: std::collections::BTreeSet<&&str> = operation_ids.iter().collect();
        assert_eq!(
            unique.len(),
            operation_ids.len(),
            "operation ids are unique"
        );
    }

    #[test]
    fn only_the_catalogue_info_is_public() {
        let document = document();
        assert_eq!(document["security"], json!([{ "idaas": [] }]));
        let mut public: Vec<(&str, &str)> = document["paths"]
            .as_object()
            .unwrap()
            .iter()
            .flat_map(|(path, item)| {
                item.as_object()
                    .unwrap()
                    .iter()
                    .map(move |(method, op)| (path.as_str(), method.as_str(), op))
            })
            .filter(|(_, _, op)| op.get("security") == Some(&json!([])))
            .map(|(path, method, _)| (path, method))
            .collect();
        public.sort();
        assert_eq!(
            public,
            [
                ("/api/v1/Queries", "get"),
                ("/api/v1/Scopes", "get"),
                ("/idaas/sts/STS/GetToken", "post"),
            ]
        );
    }
}
