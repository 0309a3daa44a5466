//! Conformance with the XoD v1 reference, generated from `queries.json`: for every school GET
//! endpoint and every field of its Fields by Scope tables, under a consent made of exactly one
//! combination of the endpoint's and the field's scopes, the field is answered if and only if
//! the reference's scope expression for it is satisfied. Skipped, with a message, where the
//! reference is not present (set `ROLLCALL_XOD_REFERENCE` to its folder).

use std::collections::{BTreeMap, BTreeSet};

use axum::http::StatusCode;
use rollcall_core::catalogue::{Catalogue, Endpoint, FilterOp, OptionEffect};
use rollcall_core::dataset::Row;
use rollcall_core::scope::{EndpointScope, FieldScope, ScopeSet};
use serde_json::{Value, json};

use crate::support::Stack;

use rollcall_core::xod_reference as reference;

const ESTAB: &str = "9990005";
const PARTNER: &str = "conformance-partner";
/// The value every stored field holds, except ids, links and dates.
const VALUE: &str = "v";

#[tokio::test]
async fn every_field_is_answered_exactly_when_its_scope_is_granted() {
    let Some(reference) = reference::load_reference() else {
        return;
    };
    let stack = Stack::start().await;
    let school = stack.school(ESTAB).await;
    let catalogue = Catalogue::get();
    let all_scopes: Vec<&str> = catalogue.scopes().iter().map(String::as_str).collect();
    let management = stack.partner(PARTNER, &all_scopes).await;
    let today = format!("{}T09:00:00", &stack.clock_now().to_xod()[..10]);
    stack
        .upload(&school.agent, &every_stored_set(catalogue, &today))
        .await
        .expect(StatusCode::OK);
    stack
        .grant(&school, PARTNER, &all_scopes)
        .await
        .expect(StatusCode::OK);
    let token = stack.token(PARTNER, &management, ESTAB).await;

    let mut checked = 0;
    let mut consents = 0;
    for entry in reference["Endpoints"].as_array().unwrap() {
        let path = entry["Path"].as_str().unwrap();
        if entry["Method"] != "GET" || !path.starts_with("/api/v1/School/") {
            continue;
        }
        let id = entry["Id"].as_str().unwrap();
        let endpoint = catalogue.endpoint_by_id(id).unwrap();
        let Some(tables) = reference::fields_by_scope(
            entry["Documentation"].as_str().unwrap(),
            &endpoint.primary().name,
        ) else {
            continue;
        };
        let url = call_for(endpoint, path, &today);
        // The catalogue's scopes: the reference's, or stricter where the catalogue corrects it.
        for consent in combinations(&endpoint.scope, &tables) {
            let scopes: Vec<&str> = consent.iter().map(String::as_str).collect();
            stack
                .grant(&school, PARTNER, &scopes)
                .await
                .expect(StatusCode::OK);
            consents += 1;
            let answer = stack.read(&token, &url).await.expect(StatusCode::OK);
            for (set, rows) in &tables {
                let answered_rows = answer[set].as_array().cloned().unwrap_or_default();
                // A field the reference lists twice (Students' PostCode, EAL) is released by
                // either of its scope expressions.
                let mut expressions: BTreeMap<&str, Vec<Option<&str>>> = BTreeMap::new();
                for (field, scope) in rows {
                    expressions.entry(field).or_default().push(scope.as_deref());
                }
                let rs = endpoint
                    .sets
                    .iter()
                    .find(|s| &s.name == set)
                    .and_then(|s| catalogue.result_set(&s.stored))
                    .unwrap();
                for (field, scopes) in expressions {
                    let corrected = rs.corrected.contains(field);
                    let expected = if corrected {
                        rs.field(field).unwrap().scope.is_satisfied_by(&consent)
                    } else {
                        scopes.iter().any(|scope| match scope {
                            Some(expr) => {
                                FieldScope::parse(expr).unwrap().is_satisfied_by(&consent)
                            }
                            None => {
                                answered_without_scope(catalogue, endpoint, set, field, &consent)
                            }
                        })
                    };
                    let present = answered_rows.iter().any(|row| row.get(field).is_some());
                    assert_eq!(
                        present, expected,
                        "{id} {set}.{field} (scopes {scopes:?}) under consent {consent:?}: {url}"
                    );
                    checked += 1;
                }
            }
        }
    }
    eprintln!("{consents} consents, {checked} field checks");
    assert!(checked > 4000, "only {checked} field checks");
}

/// Every consent made of one alternative of the endpoint's scope and one of a field's (or the
/// endpoint's alone): each field is seen both with and without what releases it.
fn combinations(
    endpoint: &EndpointScope,
    tables: &BTreeMap<String, Vec<reference::TableRow>>,
) -> BTreeSet<ScopeSet> {
    let field_alternatives: BTreeSet<BTreeSet<String>> = tables
        .values()
        .flatten()
        .filter_map(|(_, scope)| scope.as_deref())
        .flat_map(|expr| FieldScope::parse(expr).unwrap().alternatives())
        .chain([BTreeSet::new()])
        .collect();
    endpoint
        .alternatives()
        .iter()
        .flat_map(|base| {
            field_alternatives.iter().map(move |extra| {
                let mut consent = base.clone();
                consent.extend(extra.iter().cloned());
                consent
            })
        })
        .collect()
}

/// The reference lists two Students fields without a scope; rollcall's catalogue gives them
/// one (and says so with `assumed`).
fn answered_without_scope(
    catalogue: &Catalogue,
    endpoint: &Endpoint,
    set: &str,
    field: &str,
    consent: &ScopeSet,
) -> bool {
    let set = endpoint.sets.iter().find(|s| s.name == set).unwrap();
    let rs = catalogue.result_set(&set.stored).unwrap();
    assert!(
        rs.assumed.contains(field),
        "{field} has no scope in the reference"
    );
    rs.field(field).unwrap().scope.is_satisfied_by(consent)
}

/// The URL that asks the endpoint for everything: every option that adds sets or columns,
/// today for dates, the stored value for other required parameters, the id where one is needed.
/// (Every value is URL-safe as it is.)
fn call_for(endpoint: &Endpoint, path: &str, today: &str) -> String {
    let mut url = path.replace("{estab}", ESTAB);
    let personal = endpoint.view != rollcall_core::catalogue::View::Stored && endpoint.by_id;
    url = url.replace("/{id}", if personal { "/v" } else { "" });
    let options: Vec<&str> = endpoint
        .options
        .iter()
        .filter(|(_, effect)| matches!(effect, OptionEffect::Sets | OptionEffect::Columns(_)))
        .map(|(name, _)| name.as_str())
        .collect();
    let mut params = vec![("options".to_owned(), options.join(","))];
    let required = endpoint
        .filters
        .iter()
        .filter(|f| f.required || endpoint.required_any.first() == f.name.as_ref())
        .filter(|f| f.fixed.is_none());
    for filter in required {
        let value = match filter.op {
            FilterOp::On | FilterOp::From | FilterOp::To => today[..10].to_owned(),
            _ => VALUE.to_owned(),
        };
        params.push((filter.name.clone().unwrap(), value));
    }
    let query: Vec<String> = params.iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!("{url}?{}", query.join("&"))
}

/// Values some endpoints always filter on (session marks only, for one), by stored set and field.
fn fixed_values(catalogue: &Catalogue) -> BTreeMap<(String, String), String> {
    // Lessons of the group every StudentMembers row links to, for the pupil's timetable.
    let mut out = BTreeMap::from([(("Lessons".into(), "ClassId".into()), "1".into())]);
    for endpoint in catalogue.endpoints() {
        for filter in endpoint.filters.iter().filter(|f| f.op == FilterOp::Eq) {
            let (Some(value), [field]) = (&filter.fixed, &filter.fields[..]) else {
                continue;
            };
            let set = endpoint.sets.iter().find(|s| s.name == filter.set).unwrap();
            out.insert((set.stored.clone(), field.clone()), value.clone());
        }
    }
    out
}

/// Two rows of every stored result set, every field filled: ids `1` and `2`, link fields
/// pointing at row `1` of the primary set, dates today, everything else [`VALUE`].
fn every_stored_set(catalogue: &Catalogue, today: &str) -> Value {
    let fixed = fixed_values(catalogue);
    let mut sets = serde_json::Map::new();
    for rs in catalogue.stored_sets() {
        // Three rows, so a set whose rows are released by the kind of person they are about
        // (PersonComms) has one of each kind.
        let rows: Vec<Value> = (1..=3)
            .map(|n| {
                let mut row = Row::new();
                for field in rs.fields.iter().filter(|f| !f.is_computed()) {
                    let key = (rs.name.clone(), field.name.clone());
                    let value = if let Some(value) = fixed.get(&key) {
                        json!(value)
                    } else if field.name == "Id" && rs.name == "Students" && n == 1 {
                        // The pupil (on roll) every other set's rows are about.
                        json!(VALUE)
                    } else if field.name == "Id" {
                        json!(n.to_string())
                    } else if field.name == "PersonType" {
                        json!(["Student", "Staff", "Contact"][n - 1])
                    } else if rs.link.as_deref() == Some(field.name.as_str()) {
                        json!("1")
                    } else if field.name.contains("Date") || field.name.ends_with("On") {
                        json!(today)
                    } else {
                        json!(VALUE)
                    };
                    row.insert(field.name.clone(), value);
                }
                Value::Object(row)
            })
            .collect();
        sets.insert(rs.name.clone(), Value::Array(rows));
    }
    json!({ "resultSets": sets })
}
