//! Subject access export (`GET /admin/v1/subjects/{kind}/{id}`): everything held about one
//! person at the admin key's school, and exactly the partner reads whose answers included them.

use std::collections::BTreeSet;

use reqwest::{Method, StatusCode};
use rollcall_core::synthetic;
use serde_json::{Value, json};

use crate::support::{Answer, Stack};
use crate::world::World;

const A: &str = "9990061";
const B: &str = "9990062";
const PARTNER: &str = "sar-homework";
const SCOPES: [&str; 6] = [
    "School",
    "Student",
    "StudentDemographic",
    "Attendance",
    "Contact",
    "Conduct",
];

async fn export(stack: &Stack, admin: &str, path: &str) -> Answer {
    stack
        .send(Method::GET, path, Some(&format!("Bearer {admin}")), None)
        .await
}

fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.trim().to_owned(),
        other => other.to_string(),
    }
}

/// Sets keyed by the pupil's own id.
const PUPIL_KEYED: [&str; 6] = [
    "Students",
    "ConductPoints",
    "WeeklyStats",
    "TermlyStats",
    "StudentMeals",
    "StudentMedical",
];

/// How an uploaded row refers to pupil `id`: it is about them (their pupil field, their own
/// record, a person row of a pupil), or it only names them in a list of pupils (which field).
/// Written from the field names, apart from the catalogue the export reads.
#[derive(Debug, PartialEq)]
enum Refers {
    About,
    Names(String),
}

fn how_it_refers(set: &str, row: &Value, id: &str) -> Option<Refers> {
    let fields = row.as_object()?;
    let about = fields.iter().any(|(name, value)| {
        let name = name.to_ascii_lowercase();
        let value = text(value);
        (matches!(name.as_str(), "studentid" | "siblingid" | "studentmis_id") && value == id)
            || (PUPIL_KEYED.contains(&set) && name == "id" && value == id)
            || (name == "personid"
                && value == id
                && text(&row["PersonType"])
                    .to_ascii_lowercase()
                    .starts_with("stud"))
    });
    if about {
        return Some(Refers::About);
    }
    fields
        .iter()
        .find(|(name, value)| {
            let name = name.to_ascii_lowercase();
            (name == "studentids" || name == "studentsiblingids")
                && text(value).split(',').any(|v| v.trim() == id)
        })
        .map(|(name, _)| Refers::Names(name.clone()))
}

fn plainly_about(set: &str, row: &Value, id: &str) -> bool {
    how_it_refers(set, row, id).is_some()
}

#[tokio::test]
async fn a_pupils_export_holds_their_rows_from_every_set_and_the_reads_that_returned_them() {
    // Arrange: the generated sandbox school, and a second one generated with the same ids.
    let stack = Stack::start().await;
    let today = stack.clock_now().utc_date();
    let generated = synthetic::sandbox(A, 12, 7, today);
    let world = World::build(A)
        .data(generated.upload_body())
        .school(B, Some(synthetic::sandbox(B, 12, 8, today).upload_body()))
        .partner(PARTNER, &SCOPES)
        .grant(A, PARTNER, &SCOPES)
        .grant(B, PARTNER, &SCOPES)
        .on(stack)
        .await;
    let stack = &world.stack;
    // A pupil with a sibling (whose record names them), and a pupil unrelated to them.
    let students = generated.rows("Students");
    let field =
        |r: &serde_json::Map<String, Value>, f: &str| r.get(f).map(text).unwrap_or_default();
    let with_sibling = (students.iter())
        .find(|r| {
            !field(r, "StudentSiblingIds").is_empty() && field(r, "StudentSiblingIds") != "null"
        })
        .expect("the generated school has siblings");
    let pupil = field(with_sibling, "Id");
    let other = (students.iter())
        .find(|r| field(r, "Id") != pupil && !field(r, "StudentSiblingIds").contains(&pupil))
        .map(|r| field(r, "Id"))
        .unwrap();

    // Reads that returned the pupil: a page of pupils, the pupil by id, contacts links.
    world.get("Students").await.expect(StatusCode::OK);
    world
        .get(&format!("Students/{pupil}"))
        .await
        .expect(StatusCode::OK);
    world.get("StudentContacts").await.expect(StatusCode::OK);
    // Their timetable: its lessons do not name them, the answer is about them.
    let lessons = world
        .get(&format!("TimetableForStudent/{pupil}"))
        .await
        .expect(StatusCode::OK);
    assert!(
        !lessons["Timetable"].as_array().unwrap().is_empty(),
        "{lessons}"
    );
    world
        .get(&format!("TimetableForStudent/{other}"))
        .await
        .expect(StatusCode::OK);
    // Reads that did not: another pupil by id, a refused read, and school B's same id.
    world
        .get(&format!("Students/{other}"))
        .await
        .expect(StatusCode::OK);
    world
        .get("StudentMedical")
        .await
        .expect_error(StatusCode::FORBIDDEN, "has not granted");
    stack
        .read(
            world.token_of(PARTNER, B),
            &format!("/api/v1/School/{B}/Students/{pupil}"),
        )
        .await
        .expect(StatusCode::OK);

    // Act
    let admin = &world.school.admin;
    let body = export(stack, admin, &format!("/admin/v1/subjects/student/{pupil}"))
        .await
        .expect(StatusCode::OK);

    // Assert: every uploaded row plainly about the pupil is in the export, as uploaded.
    assert_eq!(body["person"]["id"], pupil.as_str());
    let held = body["resultSets"].as_object().unwrap();
    let mut sets_about = BTreeSet::new();
    let mut only_named = 0;
    for (set, rows) in world_sets(&generated.upload_body()) {
        for row in rows.iter().filter(|r| plainly_about(&set, r, &pupil)) {
            sets_about.insert(set.clone());
            let exported = held
                .get(&set)
                .and_then(Value::as_array)
                .unwrap_or_else(|| panic!("{set} refers to {pupil} but is not exported: {body}"));
            let found = exported.iter().find(|e| e["Id"] == row["Id"]);
            let found = found.unwrap_or_else(|| panic!("{set} row {} is missing", row["Id"]));
            match how_it_refers(&set, row, &pupil) {
                // A row about them: all of it, as uploaded.
                Some(Refers::About) => {
                    for (field, value) in row.as_object().unwrap() {
                        assert_eq!(text(&found[field]), text(value), "{set}.{field}");
                    }
                }
                // Another's row naming them: its id and that field, naming them alone.
                Some(Refers::Names(field)) => {
                    only_named += 1;
                    let expected = json!({ "Id": row["Id"], field: pupil.as_str() });
                    assert_eq!(found, &expected, "{set}: only what names {pupil}");
                }
                None => unreachable!(),
            }
        }
    }
    assert!(
        only_named > 0,
        "the pupil is named in another's row (a group's list)"
    );
    assert!(
        sets_about.len() >= 10,
        "the generated pupil is in many sets: {sets_about:?}"
    );
    // Nothing about the other pupils alone: every exported row names this pupil somewhere,
    // or is an incident their own incident rows (also exported) link to.
    let links = |through: &str, link: &str| -> BTreeSet<String> {
        held.get(through)
            .and_then(Value::as_array)
            .map(|rows| rows.iter().map(|r| text(&r[link])).collect())
            .unwrap_or_default()
    };
    let incidents = [
        ("Conducts", links("StudentConducts", "ConductId")),
        (
            "Achievements",
            links("StudentAchievements", "AchievementId"),
        ),
        ("Behaviour", links("StudentBehaviour", "BehaviourId")),
    ];
    for (set, rows) in held {
        for row in rows.as_array().unwrap() {
            let through = incidents
                .iter()
                .any(|(about, ids)| about == set && ids.contains(&text(&row["Id"])));
            assert!(
                plainly_about(set, row, &pupil) || through,
                "{set} row is not about {pupil}: {row}"
            );
        }
    }
    // Exactly the four reads that returned them, with what those answers could show.
    let log = body["accessLog"].as_array().unwrap();
    let endpoints: Vec<&str> = log
        .iter()
        .map(|e| e["endpoint"].as_str().unwrap())
        .collect();
    assert_eq!(
        endpoints,
        [
            "TimetableForStudent",
            "StudentContacts",
            "Students",
            "Students"
        ],
        "{body}"
    );
    assert!(log.iter().all(|e| e["partner"] == PARTNER));
    let students_fields = log[3]["fields"]["Students"].as_array().unwrap();
    assert!(students_fields.iter().any(|f| f == "Forename"));
    assert!(
        students_fields.iter().any(|f| f == "Ethnicity"),
        "granted StudentDemographic"
    );
    assert!(!students_fields.iter().any(|f| f == "MedicalNotes"));
}

#[tokio::test]
async fn the_export_downloads_as_one_csv_and_refuses_what_is_not_a_person() {
    let world = World::build(A)
        .data(synthetic::school(A, 4, 3).upload_body())
        .partner(PARTNER, &["Student"])
        .grant(A, PARTNER, &["Student"])
        .start()
        .await;
    let stack = &world.stack;
    let admin = &world.school.admin;
    let pupil = world.pupils()[0].clone();
    world.get("Students").await.expect(StatusCode::OK);

    let response = reqwest::Client::new()
        .get(format!(
            "{}/admin/v1/subjects/student/{pupil}?format=csv",
            stack.base
        ))
        .bearer_auth(admin)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let disposition = response.headers()["content-disposition"].to_str().unwrap();
    assert!(disposition.contains(&format!("subject-access-student-{pupil}.csv")));
    let text = response.text().await.unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("section,resultSet,row,field,value"));
    assert!(
        text.contains(&format!("held,Students,1,Id,{pupil}")),
        "{text}"
    );
    assert!(
        text.contains(&format!("access-log,Students,1,partner,{PARTNER}")),
        "{text}"
    );

    export(stack, admin, "/admin/v1/subjects/parent/1")
        .await
        .expect_error(StatusCode::BAD_REQUEST, "is not a kind of person");
    export(
        stack,
        admin,
        &format!("/admin/v1/subjects/student/{}", "9".repeat(65)),
    )
    .await
    .expect_error(StatusCode::BAD_REQUEST, "1 to 64 characters");
    export(stack, admin, "/admin/v1/subjects/student/1?fields=x")
        .await
        .expect_error(StatusCode::BAD_REQUEST, "takes no parameter `fields`");
    export(stack, "not-a-key", "/admin/v1/subjects/student/1")
        .await
        .expect_error(StatusCode::UNAUTHORIZED, "");
    // A pupil rollcall holds nothing of: an export that says so, not an error.
    let nobody = export(stack, admin, "/admin/v1/subjects/student/no-such-pupil")
        .await
        .expect(StatusCode::OK);
    assert_eq!(nobody["resultSets"], json!({}));
    assert_eq!(nobody["accessLog"], json!([]));
}

fn world_sets(body: &Value) -> Vec<(String, Vec<Value>)> {
    body["resultSets"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(set, rows)| (set.clone(), rows.as_array().cloned().unwrap_or_default()))
        .collect()
}
