//! Checks of the catalogue that keep the read plan's inputs complete: every field whose name,
//! or whose description in the XoD reference, marks it as a reference to a pupil, a member of
//! staff or a contact is declared (as a subject, a mention, or explicitly not a person), so an
//! opt-out reaches it; and every scope alternative that opens an endpoint releases at least the
//! `Id` of each result set it answers, so no row is ever answered with nothing in it.

use std::collections::BTreeSet;
use std::path::PathBuf;

use rollcall_core::catalogue::{Catalogue, ID, ResultSet};
use rollcall_core::scope::ScopeSet;

use rollcall_core::xod_reference as reference;

/// Words that, in a field's name, say it is about a person.
const PERSON_WORDS: [&str; 6] = ["student", "staff", "contact", "person", "pupil", "sibling"];
/// Endings that, after a person word, make the field a reference (an id or a code).
const REFERENCE_ENDINGS: [&str; 4] = ["id", "ids", "code", "codes"];
/// Fields that hold a person's name or code without saying so in a pattern.
const NAMING_FIELDS: [&str; 7] = [
    "recordedby",
    "staff",
    "head",
    "maincontact",
    "personname",
    "certsignedby",
    "creatorid",
];
/// Name fields: references to the row's subject where it has one; otherwise they must be
/// declared.
const NAME_FIELDS: [&str; 6] = [
    "forename",
    "surname",
    "displayname",
    "middlename",
    "legalforename",
    "legalsurname",
];

fn named_as_reference(rs: &ResultSet, field: &str) -> bool {
    let lower = field.to_ascii_lowercase();
    let pattern = PERSON_WORDS.iter().any(|w| lower.contains(w))
        && REFERENCE_ENDINGS.iter().any(|e| lower.ends_with(e));
    let name_without_subject =
        NAME_FIELDS.contains(&lower.as_str()) && rs.people.subjects.is_empty();
    pattern || NAMING_FIELDS.contains(&lower.as_str()) || name_without_subject
}

/// The reference describes an `Id` as the id of a person ("The MIS Id of the student").
fn described_as_person_id(note: &str) -> bool {
    let normal = note
        .to_ascii_lowercase()
        .replace("the ", "")
        .replace("mis ", "")
        .trim()
        .to_owned();
    [
        "id of student",
        "id of student record",
        "id of staff member",
        "id of contact",
        "id of person",
        "id of person record",
        "studentid",
        "student id",
    ]
    .contains(&normal.as_str())
}

fn tsv_path() -> PathBuf {
    reference::reference_dir().join("fields_by_scope.tsv")
}

/// (result set, field) pairs the reference's notes describe as a person's id.
fn described_in_reference(catalogue: &Catalogue) -> Option<BTreeSet<(String, String)>> {
    let text = std::fs::read_to_string(tsv_path()).ok()?;
    let mut found = BTreeSet::new();
    for line in text.lines().skip(1) {
        let cells: Vec<&str> = line.split('\t').collect();
        let [endpoint_id, _, _, _, set, field, _, note, ..] = cells[..] else {
            continue;
        };
        if !described_as_person_id(note) {
            continue;
        }
        let Some(endpoint) = catalogue.endpoint_by_id(endpoint_id) else {
            continue;
        };
        let wire = if set.is_empty() {
            endpoint.primary().name.as_str()
        } else {
            set
        };
        let Some(answered) = endpoint.sets.iter().find(|s| s.name == wire) else {
            continue;
        };
        let has_field = catalogue
            .result_set(&answered.stored)
            .is_some_and(|rs| rs.field(field).is_some());
        if has_field {
            found.insert((answered.stored.clone(), field.to_owned()));
        }
    }
    Some(found)
}

#[test]
fn every_person_reference_is_declared() {
    let catalogue = Catalogue::get();
    let mut flagged: BTreeSet<(String, String)> = BTreeSet::new();
    for rs in catalogue.result_sets() {
        for field in &rs.fields {
            if named_as_reference(rs, &field.name) {
                flagged.insert((rs.name.clone(), field.name.clone()));
            }
        }
    }
    let by_name = flagged.len();
    assert!(by_name > 50, "only {by_name} references found by name");
    match described_in_reference(catalogue) {
        Some(described) => {
            assert!(described.len() >= 5, "the reference describes person ids");
            flagged.extend(described);
        }
        None => eprintln!(
            "SKIPPED the reference half: {} not found",
            tsv_path().display()
        ),
    }
    let undeclared: Vec<String> = flagged
        .iter()
        .filter(|(set, field)| {
            let rs = catalogue.result_set(set).unwrap();
            !rs.people.declares(field)
        })
        .map(|(set, field)| format!("{set}.{field}"))
        .collect();
    assert!(
        undeclared.is_empty(),
        "declare these in core/catalogue.toml (people, mentions or not_people): {}",
        undeclared.join(", ")
    );
}

#[test]
fn the_person_check_catches_a_new_undeclared_reference() {
    let text = r#"
        scopes = [["School", "School", "The school."]]
        endpoint = []
        [result_set.X]
        area = "core"
        fields = [["Id", "School"], ["MentorStaffId", "School"], ["RowHash", "School"], ["LastUpdated", "School"]]
    "#;
    let catalogue = Catalogue::from_toml(text).unwrap();
    let rs = catalogue.result_set("X").unwrap();
    assert!(named_as_reference(rs, "MentorStaffId"));
    assert!(!rs.people.declares("MentorStaffId"));
    assert!(described_as_person_id("The MIS Id of the student"));
    assert!(!described_as_person_id(
        "The MIS Id of the student disability"
    ));
}

#[test]
fn every_alternative_that_opens_an_endpoint_releases_the_id_of_each_set_it_answers() {
    let catalogue = Catalogue::get();
    let mut problems = Vec::new();
    for endpoint in catalogue.endpoints() {
        for alternative in endpoint.scope.alternatives() {
            let granted: ScopeSet = alternative.into_iter().collect();
            for set in &endpoint.sets {
                let rs = catalogue.result_set(&set.stored).unwrap();
                let key = rs.field(ID).or_else(|| rs.fields.first()).unwrap();
                if !key.scope.is_satisfied_by(&granted) {
                    problems.push(format!(
                        "{} under {granted:?}: {}.{} needs {}",
                        endpoint.path, set.name, key.name, key.scope
                    ));
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn a_row_scope_covers_every_kind_its_endpoint_serves() {
    let catalogue = Catalogue::get();
    let comms = catalogue.result_set("PersonComms").unwrap();
    let row_scope = comms
        .people
        .row_scope
        .as_ref()
        .expect("PersonComms has one");
    assert_eq!(row_scope.field, "PersonType");
    assert_eq!(row_scope.cases.len(), 3);
}
