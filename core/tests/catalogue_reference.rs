//! Checks the catalogue against the XoD v1 reference (`../shared/reference/xod/queries.json`):
//! for every endpoint the catalogue covers, the same endpoint scopes, and for every result set
//! of its Fields by Scope tables the same fields with the same scope expressions. Skipped, with
//! a message, where the reference is not present (set `ROLLCALL_XOD_REFERENCE` to its folder).

use std::collections::{BTreeMap, BTreeSet};

use rollcall_core::catalogue::Catalogue;
use rollcall_core::scope::{EndpointScope, FieldScope, ScopeSet};

use rollcall_core::xod_reference as reference;

use reference::{fields_by_scope, load_reference};

type Alternatives = BTreeSet<BTreeSet<String>>;

fn minimal(alternatives: Alternatives) -> Alternatives {
    alternatives
        .iter()
        .filter(|a| !alternatives.iter().any(|o| o != *a && o.is_subset(a)))
        .cloned()
        .collect()
}

#[test]
fn catalogue_matches_the_xod_reference() {
    let Some(reference) = load_reference() else {
        return;
    };
    let endpoints = reference["Endpoints"].as_array().expect("Endpoints array");
    let catalogue = Catalogue::get();
    let mut checked_fields = 0;
    let mut checked_endpoints = 0;
    for entry in endpoints {
        let id = entry["Id"].as_str().unwrap();
        let path = entry["Path"].as_str().unwrap();
        if entry["Method"] != "GET" || !path.starts_with("/api/v1/School/") {
            continue;
        }
        let endpoint = catalogue
            .endpoint_by_id(id)
            .unwrap_or_else(|| panic!("{id} is not in the catalogue"));
        checked_endpoints += 1;
        let reference_scope = EndpointScope::parse(entry["Scope"].as_str().unwrap()).unwrap();
        if endpoint.corrected.is_some() {
            for alternative in endpoint.scope.alternatives() {
                let granted: ScopeSet = alternative.into_iter().collect();
                assert!(
                    reference_scope.is_satisfied_by(&granted),
                    "{id}: a corrected scope may only be stricter than the reference's"
                );
            }
        } else {
            assert_eq!(
                endpoint.scope.alternatives(),
                reference_scope.alternatives(),
                "{id} endpoint scopes"
            );
        }
        assert!(
            path.to_ascii_lowercase()
                .contains(&format!("/{}", endpoint.path.to_ascii_lowercase())),
            "{id} path segment {}",
            endpoint.path
        );
        assert_eq!(
            endpoint.by_id,
            path.ends_with("/{id}"),
            "{id}: whether the path takes an id"
        );

        let primary = &endpoint.primary().name;
        let Some(tables) = fields_by_scope(entry["Documentation"].as_str().unwrap(), primary)
        else {
            continue;
        };
        let answered: BTreeSet<&String> = endpoint.sets.iter().map(|s| &s.name).collect();
        // The documented tables, and the sets XoD's recorded answers carry beside them.
        let recorded: Vec<String> = reference::RECORDED_ORDER
            .iter()
            .filter(|(recorded_id, _)| *recorded_id == id)
            .flat_map(|(_, names)| names.iter().map(|n| n.to_string()))
            .collect();
        let documented: BTreeSet<&String> = tables.keys().chain(&recorded).collect();
        assert_eq!(answered, documented, "{id}: result sets");

        for (name, rows) in &tables {
            let set = endpoint.sets.iter().find(|s| &s.name == name).unwrap();
            let rs = catalogue.result_set(&set.stored).unwrap();
            let mut expected: BTreeMap<&str, Alternatives> = BTreeMap::new();
            let mut unscoped = BTreeSet::new();
            for (field, scope) in rows {
                let entry = expected.entry(field.as_str()).or_default();
                match scope {
                    Some(expr) => entry.extend(FieldScope::parse(expr).unwrap().alternatives()),
                    None => {
                        unscoped.insert(field.clone());
                    }
                }
            }
            let served: BTreeSet<&str> = rs
                .fields
                .iter()
                .map(|f| f.name.as_str())
                .filter(|f| !rs.extra.contains(*f) && !set.omit.contains(*f))
                .collect();
            let listed: BTreeSet<&str> = expected.keys().copied().collect();
            assert_eq!(served, listed, "{id}.{name}: fields");
            assert_eq!(
                rs.assumed, unscoped,
                "{id}.{name}: fields the reference gives no scope"
            );
            for (field, alternatives) in expected {
                if rs.assumed.contains(field) || rs.corrected.contains(field) {
                    continue;
                }
                let ours = rs.field(field).unwrap().scope.alternatives();
                assert_eq!(
                    ours,
                    minimal(alternatives),
                    "{id}.{name}.{field}: scope expression"
                );
                checked_fields += 1;
            }
        }
    }
    assert_eq!(
        checked_endpoints, 46,
        "every school GET endpoint of the reference"
    );
    eprintln!("{checked_endpoints} endpoints, {checked_fields} fields checked");
    assert!(checked_fields > 850, "only {checked_fields} fields checked");
}

#[test]
fn every_scope_of_the_reference_is_in_the_catalogue() {
    let Some(reference) = load_reference() else {
        return;
    };
    let catalogue = Catalogue::get();
    for entry in reference["Endpoints"].as_array().unwrap() {
        let scope = entry["Scope"].as_str().unwrap();
        for name in EndpointScope::parse(scope).unwrap().scopes() {
            assert!(
                catalogue.scopes().contains(name),
                "{name} of {}",
                entry["Id"]
            );
        }
    }
    assert_eq!(catalogue.scopes().len(), 47);
}

/// Every write-back and named query of the reference has its path in the catalogue. A
/// write-back's scopes may be stricter than the reference's (never looser): each of its
/// alternatives must be one the reference also accepts.
#[test]
fn every_writeback_and_query_of_the_reference_is_in_the_catalogue() {
    let Some(reference) = load_reference() else {
        return;
    };
    let catalogue = Catalogue::get();
    let mut checked = 0;
    for entry in reference["Endpoints"].as_array().unwrap() {
        let id = entry["Id"].as_str().unwrap();
        let path = entry["Path"].as_str().unwrap();
        let reference_scope = EndpointScope::parse(entry["Scope"].as_str().unwrap()).unwrap();
        if entry["Method"] == "POST" {
            let writeback = catalogue
                .writebacks()
                .iter()
                .find(|w| w.reference.iter().any(|r| r == id))
                .unwrap_or_else(|| panic!("{id} is not a write-back of the catalogue"));
            assert_eq!(writeback.path, path, "{id}");
            for alternative in writeback.scope.alternatives() {
                let granted: ScopeSet = alternative.into_iter().collect();
                assert!(
                    reference_scope.is_satisfied_by(&granted),
                    "{id}: the catalogue opens it to {granted:?}, the reference does not"
                );
            }
            checked += 1;
        } else if !path.starts_with("/api/v1/School/") {
            let query = catalogue
                .query(id)
                .unwrap_or_else(|| panic!("{id} is not a query of the catalogue"));
            assert_eq!(query.path, path, "{id}");
            assert_eq!(query.scope, reference_scope, "{id}");
            checked += 1;
        }
    }
    assert_eq!(checked, 9, "8 write-backs and 1 named query");
}

/// Every endpoint answers its result sets under the names XoD answers them with, in XoD's
/// order: its documentation's tables, or where its recorded answers differ, theirs
/// ([`reference::RECORDED_NAMES`], [`reference::RECORDED_ORDER`]).
#[test]
fn every_endpoint_answers_xod_names_in_xod_order() {
    let Some(reference) = load_reference() else {
        return;
    };
    let catalogue = Catalogue::get();
    let mut checked = 0;
    for entry in reference["Endpoints"].as_array().expect("Endpoints array") {
        let id = entry["Id"].as_str().unwrap();
        let path = entry["Path"].as_str().unwrap();
        if entry["Method"] != "GET" || !path.starts_with("/api/v1/School/") {
            continue;
        }
        let endpoint = catalogue.endpoint_by_id(id).unwrap();
        let documented = reference::table_order(
            entry["Documentation"].as_str().unwrap(),
            &endpoint.primary().name,
        );
        let recorded = reference::RECORDED_ORDER
            .iter()
            .find(|(recorded_id, _)| *recorded_id == id)
            .map(|(_, order)| order.iter().map(|s| s.to_string()).collect());
        let Some(expected) = recorded.or(documented) else {
            continue;
        };
        let mut answered: Vec<&str> = endpoint.sets.iter().map(|s| s.name.as_str()).collect();
        answered.sort_by_key(|name| endpoint.answer_position(name));
        answered.retain(|name| expected.iter().any(|e| e == name));
        assert_eq!(
            answered, expected,
            "{id}: the sets, in the order XoD answers them"
        );
        checked += 1;
    }
    assert!(checked > 30, "only {checked} endpoints document their sets");
}
