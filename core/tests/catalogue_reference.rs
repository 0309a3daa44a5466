//! Checks the catalogue against the XoD v1 reference (`../shared/reference/xod/queries.json`):
//! for every endpoint the catalogue covers, the same endpoint scopes, and for every result set
//! of its Fields by Scope tables the same fields with the same scope expressions. Skipped, with
//! a message, where the reference is not present (set `ROLLCALL_XOD_REFERENCE` to its folder).

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use rollcall_core::catalogue::Catalogue;
use rollcall_core::scope::{EndpointScope, FieldScope};

type Alternatives = BTreeSet<BTreeSet<String>>;

fn reference_dir() -> PathBuf {
    std::env::var_os("ROLLCALL_XOD_REFERENCE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/reference/xod")
        })
}

fn load_reference() -> Option<serde_json::Value> {
    let path = reference_dir().join("queries.json");
    match std::fs::read_to_string(&path) {
        Ok(text) => Some(serde_json::from_str(&text).expect("queries.json is JSON")),
        Err(_) => {
            eprintln!(
                "SKIPPED: the XoD reference is not at {}; set ROLLCALL_XOD_REFERENCE",
                path.display()
            );
            None
        }
    }
}

/// One reference table row: field name and scope expression (`None` where the row has none).
type TableRow = (String, Option<String>);

/// The name a line of the documentation heads a table with, in any of the spellings the
/// reference uses: `_Name_ dataset`, `#### _Name_`, `####_Name_`, `_Name_`, `### Name Fields {#...}`.
fn table_heading(line: &str) -> Option<&str> {
    let trimmed = line.trim().trim_start_matches('#').trim();
    let name = if let Some(rest) = trimmed.strip_prefix('_') {
        rest.strip_suffix("_ dataset")
            .or_else(|| rest.strip_suffix('_'))?
    } else {
        trimmed.split_once(" Fields {#")?.0
    };
    (!name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric())).then_some(name)
}

/// Reads the Fields by Scope tables of an endpoint's documentation: dataset name → rows. Rows
/// before any heading belong to `default`. `None` when the endpoint documents no fields.
fn fields_by_scope(documentation: &str, default: &str) -> Option<BTreeMap<String, Vec<TableRow>>> {
    let start = documentation.find("Fields by Scope {#").or_else(|| {
        documentation
            .lines()
            .find(|l| l.starts_with('#') && table_heading(l).is_some())
            .and_then(|l| documentation.find(l))
    })?;
    let mut current = default.to_string();
    let mut tables: BTreeMap<String, Vec<TableRow>> = BTreeMap::new();
    for line in documentation[start..].lines() {
        if let Some(name) = table_heading(line) {
            current = name.to_string();
            continue;
        }
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        let is_field = cells.len() >= 3
            && !cells[0].is_empty()
            && cells[0] != "Field"
            && cells[0]
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !is_field {
            continue;
        }
        let scope = cells
            .get(3)
            .filter(|s| !s.is_empty())
            .map(|s| reference_field_scope(s));
        tables
            .entry(current.clone())
            .or_default()
            .push((cells[0].to_string(), scope));
    }
    Some(tables)
}

/// One field's scope in the reference is written `StudentMedical,StudentPregnancy`, a comma the
/// field grammar does not have; rollcall reads it the strict way, as both scopes.
fn reference_field_scope(text: &str) -> String {
    text.replace(',', " + ")
}

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
        assert_eq!(
            endpoint.scope.alternatives(),
            reference_scope.alternatives(),
            "{id} endpoint scopes"
        );
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
        let documented: BTreeSet<&String> = tables.keys().collect();
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
                if rs.assumed.contains(field) {
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
