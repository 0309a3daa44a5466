//! The sandbox school on the local stack, read by a partner granted every scope: every GET
//! endpoint of the catalogue answers rows in each of its result sets, with only the
//! parameters a partner must give (taken from the uploaded school, dates inside its range),
//! and again with every option that adds a set. And an upload named as XoD names things
//! (`Group` rows with `XID`...) reads back equal.

use std::collections::BTreeSet;

use reqwest::StatusCode;
use rollcall_core::catalogue::{Catalogue, Endpoint, Filter, FilterOp};
use rollcall_core::synthetic;
use rollcall_core::timestamp::Duration;
use serde_json::{Value, json};

use crate::support::Stack;
use crate::world::World;

const ESTAB: &str = "9990031";
const PARTNER: &str = "every-scope";

async fn sandbox_world() -> World {
    let stack = Stack::start().await;
    let today = stack.clock_now().utc_date();
    let body = synthetic::sandbox(ESTAB, 60, 11, today).upload_body();
    let every: Vec<String> = Catalogue::get().scopes().iter().cloned().collect();
    let every: Vec<&str> = every.iter().map(String::as_str).collect();
    World::build(ESTAB)
        .data(body)
        .partner(PARTNER, &every)
        .grant(ESTAB, PARTNER, &every)
        .on(stack)
        .await
}

/// A value for a parameter a partner must give: a date inside the sandbox's range, or a value
/// the school uploaded in the field the filter reads.
fn value_for(w: &World, filter: &Filter) -> String {
    let today = w.stack.clock_now();
    match filter.op {
        FilterOp::From => return today.minus(Duration::days(14)).to_xod()[..10].to_owned(),
        FilterOp::To | FilterOp::On => return today.to_xod()[..10].to_owned(),
        _ => {}
    }
    let (set, field) = match &filter.via {
        Some(via) => (via.set.as_str(), via.matches.as_str()),
        None => (filter.set.as_str(), filter.fields[0].as_str()),
    };
    w.uploaded_values(set, field)
        .into_iter()
        .find(|v| !v.is_empty() && v != "null")
        .unwrap_or_else(|| panic!("the sandbox has no {set}.{field}"))
}

/// The query a partner must send to `endpoint`: its required parameters, or the first of the
/// parameters it needs one of.
fn required_query(w: &World, endpoint: &Endpoint) -> Vec<(String, String)> {
    let named = |name: &str| {
        endpoint
            .filters
            .iter()
            .find(|f| f.name.as_deref() == Some(name))
            .unwrap_or_else(|| panic!("{} has no filter {name}", endpoint.path))
    };
    let mut query: Vec<(String, String)> = endpoint
        .filters
        .iter()
        .filter(|f| f.required)
        .filter_map(|f| f.name.clone().map(|name| (name, value_for(w, f))))
        .collect();
    if let Some(first) = endpoint.required_any.first() {
        query.push((first.clone(), value_for(w, named(first))));
    }
    // The AttendanceForDate date: the last school day, not a weekend.
    for (name, value) in &mut query {
        if name == "date" {
            *value = last_school_day(w);
        }
    }
    query
}

fn last_school_day(w: &World) -> String {
    let today = w.today();
    w.uploaded_values("AttendMarks", "Date")
        .into_iter()
        .filter(|d| d[..10] <= *today)
        .max()
        .expect("attendance marks")[..10]
        .to_owned()
}

/// The endpoint's path with the id a personal view needs.
fn path_of(w: &World, endpoint: &Endpoint) -> String {
    let subject = match endpoint.path.as_str() {
        "TimetableForStaff" => Some(w.uploaded_values("LessonStaff", "StaffId").remove(0)),
        "TimetableForStudent" => Some(w.pupils().remove(0)),
        _ => None,
    };
    match subject {
        Some(id) => format!("{}/{id}", endpoint.path),
        None => endpoint.path.clone(),
    }
}

async fn answer(w: &World, endpoint: &Endpoint, options: &BTreeSet<String>) -> Value {
    let mut query = required_query(w, endpoint);
    if !options.is_empty() {
        let list: Vec<&str> = options.iter().map(String::as_str).collect();
        query.push(("options".to_owned(), list.join(",")));
    }
    let query = serde_urlencoded::to_string(&query).unwrap();
    let path = format!("{}?{query}", path_of(w, endpoint));
    let answer = w.get(&path).await;
    assert_eq!(
        answer.status,
        StatusCode::OK,
        "{path}: {}",
        answer.message()
    );
    answer.body
}

#[tokio::test]
async fn every_endpoint_answers_rows_in_every_set_on_the_sandbox() {
    let w = sandbox_world().await;
    let mut empty = Vec::new();
    for endpoint in Catalogue::get().endpoints() {
        let gated: BTreeSet<String> = endpoint
            .sets
            .iter()
            .filter_map(|s| s.option.clone())
            .collect();
        // The default answer, then (where options add sets) the answer with all of them.
        for options in [BTreeSet::new(), gated.clone()] {
            let body = answer(&w, endpoint, &options).await;
            for set in &endpoint.sets {
                assert!(
                    body[&set.name].is_array(),
                    "{}: {} is always answered, as an array",
                    endpoint.path,
                    set.name
                );
            }
            for set in endpoint.answered(&options) {
                let rows = body[&set.name]
                    .as_array()
                    .unwrap_or_else(|| panic!("{}: {} is not an array", endpoint.path, set.name));
                if rows.is_empty() {
                    empty.push(format!("{} {} ({options:?})", endpoint.path, set.name));
                }
            }
            if gated.is_empty() {
                break;
            }
        }
    }
    assert!(empty.is_empty(), "sets that answered no rows: {empty:#?}");
}

#[tokio::test]
async fn an_upload_named_as_xod_names_things_reads_back_equal() {
    let group = json!({
        "Id": "7429", "XID": "X-GRP-7429", "ExternalId": "grp-00007429", "Code": "9C/Hi",
        "Name": "9C History", "Type": "TeachingGrp", "TypeId": "3", "NumStudents": 59,
        "PrimaryStaffId": "41", "Staff": "ABA", "SubjectCode": "Hi", "SubjectName": "History",
    });
    let pupil = json!({
        "Id": "3221", "XID": "X-PL-3221", "Forename": "Zoë", "Surname": "O'Connor",
        "DateOfBirth": "2012-05-01T00:00:00", "StudentStatus": "Current", "FsmEligible": 1,
        "YearGroup": "Year 9",
    });
    let staff = json!({"Id": "41", "XID": "X-ST-41", "StaffCode": "ABA", "Surname": "Abara"});
    let school = json!({
        "Id": "1", "Name": "Larkfield", "CurrentAcademicYear": "2026/2027", "EstabId": ESTAB,
    });
    let body = json!({"resultSets": {
        "Group": [group], "Students": [pupil], "Staff": [staff], "SchoolInfo": [school],
    }});
    let every: Vec<String> = Catalogue::get().scopes().iter().cloned().collect();
    let every: Vec<&str> = every.iter().map(String::as_str).collect();
    let w = World::build(ESTAB)
        .data(body.clone())
        .partner(PARTNER, &every)
        .grant(ESTAB, PARTNER, &every)
        .start()
        .await;
    for (path, set, uploaded) in [
        ("Groups?options=includeSubjects", "Group", &group),
        ("Students", "Students", &pupil),
        ("Staff", "Staff", &staff),
        ("SchoolInfo", "SchoolInfo", &school),
    ] {
        let answer = w.get(path).await.expect(StatusCode::OK);
        let row = &answer[set][0];
        for (field, value) in uploaded.as_object().unwrap() {
            assert_eq!(&row[field], value, "{path}: {set}.{field}");
        }
    }
}
