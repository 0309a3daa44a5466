//! Property test of the consent filter over the whole stored-data path: rows are diffed, split
//! into scope groups, each group sealed and opened as it would be stored, only the groups a
//! consent covers are opened, and the rows are assembled. Whatever the consent and the rows, no
//! field outside the consent is emitted, and every consented field present in the row is.
//!
//! The expected fields are worked out from `catalogue.toml` by a separate, naive evaluator of
//! the scope expressions, not by the code under test.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;
use rollcall_core::catalogue::{Catalogue, ResultSet};
use rollcall_core::dataset::{Row, assemble, diff, split_groups};
use rollcall_core::envelope::{object_aad, open, seal};
use rollcall_core::model::Estab;
use rollcall_core::scope::ScopeSet;
use rollcall_core::timestamp::Timestamp;
use serde_json::Value;
use zeroize::Zeroizing;

/// Field name → raw expression, per result set, read straight from the catalogue file.
fn raw_expressions() -> &'static BTreeMap<String, BTreeMap<String, String>> {
    static PARSED: std::sync::LazyLock<BTreeMap<String, BTreeMap<String, String>>> =
        std::sync::LazyLock::new(parse_expressions);
    &PARSED
}

fn parse_expressions() -> BTreeMap<String, BTreeMap<String, String>> {
    let text = include_str!("../catalogue.toml");
    let doc: toml::Table = toml::from_str(text).unwrap();
    let mut out = BTreeMap::new();
    for (name, rs) in doc["result_set"].as_table().unwrap() {
        let fields = rs["fields"].as_array().unwrap();
        let map = fields
            .iter()
            .map(|pair| {
                let pair = pair.as_array().unwrap();
                (
                    pair[0].as_str().unwrap().to_string(),
                    pair[1].as_str().unwrap().to_string(),
                )
            })
            .collect();
        out.insert(name.clone(), map);
    }
    out
}

/// `A / B + C`: every `+` part needs one of its `/` names granted.
fn naive_allows(expr: &str, granted: &ScopeSet) -> bool {
    expr.split('+')
        .all(|clause| clause.split('/').any(|s| granted.contains(s.trim())))
}

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        "[A-Za-z' -]{0,12}".prop_map(Value::String),
        any::<i32>().prop_map(Value::from),
        any::<bool>().prop_map(Value::Bool),
        Just(Value::Null),
    ]
}

/// A result set, rows with random subsets of its fields, and a random consent.
fn case() -> impl Strategy<Value = (String, Vec<Row>, ScopeSet)> {
    let names: Vec<String> = Catalogue::get()
        .stored_sets()
        .map(|r| r.name.clone())
        .collect();
    let scopes: Vec<String> = Catalogue::get().scopes().iter().cloned().collect();
    (
        proptest::sample::select(names),
        proptest::sample::subsequence(scopes.clone(), 0..scopes.len()),
    )
        .prop_flat_map(|(name, granted)| {
            let rs = Catalogue::get().result_set(&name).unwrap();
            let fields: Vec<String> = rs
                .fields
                .iter()
                .filter(|f| !f.is_computed() && f.name != "Id")
                .map(|f| f.name.clone())
                .collect();
            let row = (
                proptest::sample::subsequence(fields.clone(), 0..=fields.len()),
                proptest::collection::vec(scalar(), fields.len()),
            );
            let rows = proptest::collection::vec(row, 1..6).prop_map(|rows| {
                rows.into_iter()
                    .enumerate()
                    .map(|(i, (present, values))| {
                        let mut row = Row::new();
                        row.insert("Id".into(), Value::String(format!("id-{i}")));
                        for (field, value) in present.into_iter().zip(values) {
                            row.insert(field, value);
                        }
                        row
                    })
                    .collect::<Vec<Row>>()
            });
            (
                Just(name),
                rows,
                Just(granted.into_iter().collect::<ScopeSet>()),
            )
        })
}

/// What serve does with stored data: open only the visible groups, then assemble.
fn through_storage(rs: &ResultSet, rows: &[Row], granted: &ScopeSet) -> Vec<Row> {
    let estab = Estab::parse("9990001").unwrap();
    let key = Zeroizing::new([9u8; 32]);
    let index = diff(
        None,
        rows,
        b"row-hash-key",
        Timestamp::from_millis(1_700_000_000_000),
    )
    .index;
    let sealed: Vec<Vec<u8>> = split_groups(rs, rows)
        .iter()
        .zip(&rs.groups)
        .map(|(part, group)| {
            seal(
                &key,
                b"wrapped",
                &object_aad(&estab, &rs.name, 1, &group.id),
                &serde_json::to_vec(part).unwrap(),
            )
        })
        .collect();
    let opened: Vec<Option<Vec<Row>>> = rs
        .groups
        .iter()
        .zip(&sealed)
        .map(|(group, object)| {
            group.scope.is_satisfied_by(granted).then(|| {
                let plain =
                    open(&key, &object_aad(&estab, &rs.name, 1, &group.id), object).unwrap();
                serde_json::from_slice(&plain).unwrap()
            })
        })
        .collect();
    assemble(rs, granted, &index, &opened, 0..rows.len())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn only_and_all_consented_fields_are_emitted((name, rows, granted) in case()) {
        let expressions = &raw_expressions()[&name];
        let rs = Catalogue::get().result_set(&name).unwrap();
        let out = through_storage(rs, &rows, &granted);
        prop_assert_eq!(out.len(), rows.len());
        for (input, output) in rows.iter().zip(&out) {
            let mut expected: BTreeSet<&str> = input.keys().map(String::as_str).collect();
            expected.extend(["RowHash", "LastUpdated"]);
            expected.retain(|field| naive_allows(&expressions[*field], &granted));
            let emitted: BTreeSet<&str> = output.keys().map(String::as_str).collect();
            prop_assert_eq!(&emitted, &expected, "result set {} consent {:?}", name, granted);
            for field in emitted.iter().filter(|f| !["RowHash", "LastUpdated"].contains(*f)) {
                prop_assert_eq!(&output[*field], &input[*field]);
            }
        }
    }
}

#[test]
fn an_empty_consent_emits_nothing() {
    let rs = Catalogue::get().result_set("Students").unwrap();
    let school = rollcall_core::synthetic::school("9990001", 20, 1);
    let out = through_storage(rs, school.rows("Students"), &ScopeSet::new());
    assert!(out.iter().all(|row| row.is_empty()));
}
