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

/// Reads the Fields by Scope tables of an endpoint's documentation: dataset name → rows. Rows
/// before any `_Name_ dataset` heading belong to `default`.
fn fields_by_scope(documentation: &str, default: &str) -> BTreeMap<String, Vec<TableRow>> {
    let start = documentation
        .find("Fields by Scope {#")
        .expect("every data endpoint has the table");
    let mut current = default.to_string();
    let mut tables: BTreeMap<String, Vec<TableRow>> = BTreeMap::new();
    for line in documentation[start..].lines() {
        let trimmed = line.trim();
        if let Some(name) = trimmed
            .strip_prefix('_')
            .and_then(|t| t.strip_suffix("_ dataset"))
        {
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
            .map(|s| s.to_string());
        tables
            .entry(current.clone())
            .or_default()
            .push((cells[0].to_string(), scope));
    }
    tables
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
    for endpoint in catalogue.endpoints() {
        let entry = endpoints
            .iter()
            .find(|e| e["Id"] == endpoint.id.as_str())
            .unwrap_or_else(|| panic!("{} is not in the reference", endpoint.id));
        let reference_scope = EndpointScope::parse(entry["Scope"].as_str().unwrap()).unwrap();
        assert_eq!(
            endpoint.scope.alternatives(),
            reference_scope.alternatives(),
            "{} endpoint scopes",
            endpoint.id
        );
        assert!(
            entry["Path"]
                .as_str()
                .unwrap()
                .contains(&format!("/{}", endpoint.path)),
            "{} path segment {}",
            endpoint.id,
            endpoint.path
        );

        let tables = fields_by_scope(
            entry["Documentation"].as_str().unwrap(),
            &endpoint.result_set,
        );
        let covered: BTreeSet<&String> = std::iter::once(&endpoint.result_set)
            .chain(endpoint.options.values())
            .collect();
        let documented: BTreeSet<&String> = tables.keys().collect();
        assert_eq!(covered, documented, "{}: result sets", endpoint.id);

        for (name, rows) in &tables {
            let rs = catalogue.result_set(name).unwrap();
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
                .filter(|f| !rs.extra.contains(*f))
                .collect();
            let listed: BTreeSet<&str> = expected.keys().copied().collect();
            assert_eq!(served, listed, "{}.{name}: fields", endpoint.id);
            assert_eq!(
                rs.assumed, unscoped,
                "{}.{name}: fields the reference gives no scope",
                endpoint.id
            );
            for (field, alternatives) in expected {
                if rs.assumed.contains(field) {
                    continue;
                }
                let ours = rs.field(field).unwrap().scope.alternatives();
                assert_eq!(
                    ours,
                    minimal(alternatives),
                    "{}.{name}.{field}: scope expression",
                    endpoint.id
                );
                checked_fields += 1;
            }
        }
    }
    assert!(checked_fields > 200, "only {checked_fields} fields checked");
}
