//! The opt-out promise over the whole catalogue, generated from it: for every endpoint (stored
//! and computed), with a consent granting every scope, a pupil, a member of staff and a contact
//! are opted out in turn. While one is, nothing of theirs appears in any answer of any call
//! (their ids, their aliases, and every value of their own rows and of the rows about them,
//! the bodies searched as text); once the opt-out is lifted, every answer is exactly as before.
//! Each call goes in process through the merged router `rollcall dev` serves.

mod generated;

use std::collections::{BTreeMap, BTreeSet};

use rollcall_core::catalogue::{
    Catalogue, Endpoint, FilterOp, PersonKind, Reference, ResultSet, Shape, View,
};
use rollcall_core::scope::ScopeSet;
use serde_json::{Value, json};

use generated::*;

/// The people opted out in turn: the opt-out list they go in, their id, their kind.
const PEOPLE: [(&str, &str, PersonKind); 3] = [
    ("studentIds", "S2", PersonKind::Student),
    ("staffIds", "T2", PersonKind::Staff),
    ("contactIds", "C2", PersonKind::Contact),
];

/// Enough rows and picks that every person of each kind is referred to in every field that
/// can refer to them.
const ROWS: usize = 12;
const PICKS: [usize; 7] = [0, 1, 2, 3, 4, 5, 6];

/// The stored sets a call of `endpoint` may read: for a computed endpoint, all of them.
fn upload_for(endpoint: &Endpoint) -> Value {
    let catalogue = Catalogue::get();
    let names: BTreeSet<String> = match endpoint.view {
        View::Stored => sets_for(endpoint),
        _ => catalogue.stored_sets().map(|rs| rs.name.clone()).collect(),
    };
    upload_sets(
        SCHOOL,
        &names,
        &endpoint.primary().stored,
        ROWS,
        &PICKS,
        &|_, _| false,
    )
}

/// The calls made of `endpoint`: with every option and without, and by each person's id
/// where the endpoint takes one; a filter it requires is given every stored value at once
/// where it takes a list, else each stored value in turn.
fn calls(endpoint: &Endpoint, body: &Value) -> Vec<String> {
    let base = format!("/api/v1/School/{SCHOOL}/{}", endpoint.path);
    let options: Vec<&str> = endpoint.options.keys().map(String::as_str).collect();
    // A personal timetable is only ever of someone.
    let personal = matches!(
        endpoint.view,
        View::TimetableForStaff | View::TimetableForStudent
    );
    let mut calls = Vec::new();
    for required in required_params(endpoint, body) {
        let mut queries = vec![required.clone()];
        if !options.is_empty() {
            let mut with = required;
            with.push(("options".into(), options.join(",")));
            queries.push(with);
        }
        for query in &queries {
            let query = serde_urlencoded::to_string(query).unwrap();
            if !personal {
                calls.push(format!("{base}?{query}"));
            }
            if endpoint.by_id {
                for (_, id, _) in PEOPLE {
                    calls.push(format!("{base}/{id}?{query}"));
                }
            }
        }
    }
    calls
}

/// The sets of required parameters to call `endpoint` with: dates as the generator writes
/// them, other values from the stored rows the filter reads.
fn required_params(endpoint: &Endpoint, body: &Value) -> Vec<Vec<(String, String)>> {
    let required = endpoint
        .filters
        .iter()
        .filter(|f| f.required || endpoint.required_any.first() == f.name.as_ref());
    let mut choices: Vec<(String, Vec<String>)> = Vec::new();
    for filter in required {
        let Some(name) = filter.name.clone() else {
            continue;
        };
        let set = endpoint
            .sets
            .iter()
            .find(|s| s.name == filter.set)
            .map_or(&filter.set, |s| &s.stored);
        let mut stored: Vec<String> = body["resultSets"][set]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|row| row[&filter.fields[0]].as_str().map(str::to_owned))
            .collect();
        stored.sort();
        stored.dedup();
        let values = match filter.op {
            FilterOp::On | FilterOp::From | FilterOp::To => vec!["2026-09-21".to_owned()],
            FilterOp::In => vec![stored.join(",")],
            _ if stored.is_empty() => vec!["none".to_owned()],
            _ => stored,
        };
        choices.push((name, values));
    }
    let most = choices.iter().map(|(_, v)| v.len()).max().unwrap_or(1);
    (0..most)
        .map(|i| {
            choices
                .iter()
                .map(|(name, values)| (name.clone(), values[i % values.len()].clone()))
                .collect()
        })
        .collect()
}

/// Whether `rs`'s row is about person `id` (of `kind`): its subject is them.
fn about(rs: &ResultSet, row: &Value, id: &str, kind: PersonKind) -> bool {
    let own = ["Students", "Staff", "Contacts"]
        .iter()
        .position(|s| *s == rs.name)
        .is_some_and(|k| PersonKind::ALL[k] == kind);
    (own && row["Id"] == id)
        || rs.people.subjects.iter().any(|subject| {
            row[&subject.field] == id
                && match &subject.reference {
                    Reference::Kind(k) => *k == kind,
                    Reference::Typed { .. } => true,
                }
        })
}

/// Everything that says something of `id`: the forms their id takes in a body, their own
/// aliases, and every plain value of the rows about them.
fn traces(body: &Value, id: &str, kind: PersonKind) -> Vec<String> {
    let catalogue = Catalogue::get();
    let mut traces = vec![format!("\"{id}\""), format!("{id},"), format!(",{id}\"")];
    for alias in ["StaffCode", "IdaasId", "ExternalId", "NAME"] {
        traces.push(format!("{alias}-{id}\""));
    }
    for (set, rows) in body["resultSets"].as_object().unwrap() {
        let rs = catalogue.stored_set(set).unwrap();
        for row in rows.as_array().unwrap() {
            if about(rs, row, id, kind) {
                let values = row.as_object().unwrap().values();
                traces.extend(
                    values
                        .filter_map(Value::as_str)
                        .filter(|v| v.contains('~'))
                        .map(|v| format!("\"{v}\"")),
                );
            }
        }
    }
    traces
}

/// The answers to `calls`, less what moves with the clock.
async fn answers(world: &World, token: &str, calls: &[String]) -> Vec<(u16, Value)> {
    let mut answers = Vec::with_capacity(calls.len());
    for call in calls {
        let (status, body) = send(&world.app, "GET", call, &format!("Idaas {token}"), None).await;
        answers.push((status, comparable(&body)));
    }
    answers
}

async fn opt_out(world: &World, list: Option<&str>, id: &str) {
    let body = match list {
        Some(list) => json!({ list: [id] }),
        None => json!({}),
    };
    let (status, answer) = world.opt_out(body).await;
    assert_eq!(status, 200, "{answer}");
}

#[tokio::test]
async fn an_opted_out_person_is_in_no_answer_and_in_every_one_again_once_lifted() {
    let catalogue = Catalogue::get();
    let world = world().await;
    let everything: ScopeSet = catalogue.scopes().clone();
    world.grant(&everything).await;
    // Which result sets showed each person before the opt-out, to show the test is not empty.
    let mut seen: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    for endpoint in catalogue.endpoints() {
        let token = world.fresh_token().await;
        let body = upload_for(endpoint);
        let (status, answer) = world.upload(&world.agent, body.clone()).await;
        assert_eq!(status, 200, "{answer}");
        let calls = calls(endpoint, &body);
        let before = answers(&world, &token, &calls).await;
        for (call, (status, answer)) in calls.iter().zip(&before) {
            assert!(
                matches!(status, 200 | 404),
                "{call} answered {status}: {answer}"
            );
        }
        for (list, id, kind) in PEOPLE {
            let traces = traces(&body, id, kind);
            for (_, answer) in &before {
                for set in &endpoint.sets {
                    let rows = answer[&set.name].to_string();
                    if traces.iter().any(|t| rows.contains(t.as_str())) {
                        seen.entry(id).or_default().insert(set.stored.clone());
                    }
                }
            }
            opt_out(&world, Some(list), id).await;
            let during = answers(&world, &token, &calls).await;
            for (call, (_, answer)) in calls.iter().zip(&during) {
                let text = answer.to_string();
                for trace in &traces {
                    assert!(
                        !text.contains(trace.as_str()),
                        "{id} opted out, yet {trace} is in {call}: {text}"
                    );
                }
            }
            opt_out(&world, None, id).await;
            let after = answers(&world, &token, &calls).await;
            for ((call, was), now) in calls.iter().zip(&before).zip(&after) {
                assert_eq!(now, was, "{call} after {id}'s opt-out was lifted");
            }
        }
    }
    // Every result set that refers to a kind of person showed that person somewhere.
    let mut unshown = Vec::new();
    for rs in catalogue.stored_sets() {
        for (_, id, kind) in PEOPLE {
            let refers = rs.people.subjects.iter().any(|s| match &s.reference {
                Reference::Kind(k) => *k == kind,
                Reference::Typed { .. } => true,
            }) || rs
                .people
                .mentions
                .iter()
                .any(|m| m.kind == kind && m.shape != Shape::Count);
            let shown = seen.get(id).is_some_and(|sets| sets.contains(&rs.name));
            let answered = catalogue
                .endpoints()
                .iter()
                .any(|e| e.sets.iter().any(|s| s.stored == rs.name));
            if refers && answered && !shown {
                unshown.push(format!("{id} in {}", rs.name));
            }
        }
    }
    assert!(
        unshown.is_empty(),
        "no answer showed these before the opt-out, so the test proves nothing there: {unshown:?}"
    );
}
