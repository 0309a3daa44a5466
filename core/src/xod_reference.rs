//! Reading the XoD v1 reference (`../shared/reference/xod/queries.json`) for the tests that
//! check rollcall against it: core's catalogue tests and the local-stack conformance test.
//! Test code behind the `testing` feature: it reads files, which core itself never does.

use std::collections::BTreeMap;
use std::path::PathBuf;

/// `ROLLCALL_XOD_REFERENCE`, else `shared/reference/xod` beside the checkout (looked for in
/// the folders above the crate).
pub fn reference_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("ROLLCALL_XOD_REFERENCE") {
        return PathBuf::from(dir);
    }
    let crate_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    crate_dir
        .ancestors()
        .map(|dir| dir.join("shared/reference/xod"))
        .find(|dir| dir.join("queries.json").is_file())
        .unwrap_or_else(|| crate_dir.join("../../shared/reference/xod"))
}

pub fn load_reference() -> Option<serde_json::Value> {
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
pub type TableRow = (String, Option<String>);

/// The name a line of the documentation heads a table with, in any of the spellings the
/// reference uses: `_Name_ dataset`, `#### _Name_`, `####_Name_`, `_Name_`, `### Name Fields {#...}`.
pub fn table_heading(line: &str) -> Option<&str> {
    let trimmed = line.trim().trim_start_matches('#').trim();
    let name = if let Some(rest) = trimmed.strip_prefix('_') {
        rest.strip_suffix("_ dataset")
            .or_else(|| rest.strip_suffix('_'))?
    } else {
        trimmed.split_once(" Fields {#")?.0
    };
    (!name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric())).then_some(name)
}

/// Tables the documentation heads with another name than the one XoD answers with, as its
/// recorded answers show (the reference's README): the Groups endpoint's table is headed
/// `_Groups_ dataset`, but its answers carry `Group`. Where the two differ, the wire wins.
pub const RECORDED_NAMES: [(&str, &str); 1] = [("Groups", "Group")];

/// The name XoD answers a documented table under.
pub fn wire_name(heading: &str) -> &str {
    RECORDED_NAMES
        .iter()
        .find(|(documented, _)| *documented == heading)
        .map_or(heading, |(_, wire)| wire)
}

/// Reads the Fields by Scope tables of an endpoint's documentation: dataset name (as XoD
/// answers it, [`wire_name`]) → rows. Rows
/// before any heading belong to `default`. `None` when the endpoint documents no fields.
pub fn fields_by_scope(
    documentation: &str,
    default: &str,
) -> Option<BTreeMap<String, Vec<TableRow>>> {
    Some(
        tables_in_order(documentation, default)?
            .into_iter()
            .collect(),
    )
}

/// The result sets an endpoint's documentation has tables for, in its order, by their XoD
/// names; `None` when it documents no fields.
pub fn table_order(documentation: &str, default: &str) -> Option<Vec<String>> {
    Some(
        tables_in_order(documentation, default)?
            .into_iter()
            .map(|(name, _)| name)
            .collect(),
    )
}

/// The answers XoD recorded in another order than its documentation's tables (the
/// reference's README): Groups answers `Group`, `StaffMembers`, `StudentMembers`, `GroupTypes`;
/// Students answers `Students` and `StudentSiblings`.
pub const RECORDED_ORDER: [(&str, &[&str]); 2] = [
    (
        "school.groups",
        &["Group", "StaffMembers", "StudentMembers", "GroupTypes"],
    ),
    ("school.students", &["Students", "StudentSiblings"]),
];

/// The Fields by Scope tables in the documentation's order, rows merged under each name.
fn tables_in_order(documentation: &str, default: &str) -> Option<Vec<(String, Vec<TableRow>)>> {
    let start = documentation.find("Fields by Scope {#").or_else(|| {
        documentation
            .lines()
            .find(|l| l.starts_with('#') && table_heading(l).is_some())
            .and_then(|l| documentation.find(l))
    })?;
    let mut current = default.to_string();
    let mut tables: Vec<(String, Vec<TableRow>)> = Vec::new();
    for line in documentation[start..].lines() {
        if let Some(name) = table_heading(line) {
            current = wire_name(name).to_string();
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
        let row = (cells[0].to_string(), scope);
        match tables.iter_mut().find(|(name, _)| *name == current) {
            Some((_, rows)) => rows.push(row),
            None => tables.push((current.clone(), vec![row])),
        }
    }
    Some(tables)
}

/// One field's scope in the reference is written `StudentMedical,StudentPregnancy`, a comma the
/// field grammar does not have; rollcall reads it the strict way, as both scopes.
pub fn reference_field_scope(text: &str) -> String {
    text.replace(',', " + ")
}
