//! Per-person opt-outs on the local stack: the school opts a pupil and a member of staff out of
//! one partner's data; every answer to that partner leaves out the rows about them (their own
//! records, memberships, contact links), GDPRIDs tells the partner whom, and another partner
//! is not affected.

use reqwest::{Method, StatusCode};
use rollcall_core::synthetic;
use serde_json::{Value, json};

use crate::support::{SchoolKeys, Stack};

const ESTAB: &str = "9990010";
const PARTNER: &str = "acme-optouts";
const OTHER: &str = "other-optouts";
const SCOPES: [&str; 4] = ["Student", "Contact", "School", "Staff"];

struct World {
    stack: Stack,
    school: SchoolKeys,
    token: String,
    other_token: String,
    pupil: String,
    teacher: String,
    pupils: usize,
}

async fn world() -> World {
    let stack = Stack::start().await;
    let school = stack.school(ESTAB).await;
    let management = stack.partner(PARTNER, &SCOPES).await;
    let other = stack.partner(OTHER, &SCOPES).await;
    let body = synthetic::school(ESTAB, 8, 3).upload_body();
    let sets = &body["resultSets"];
    let pupil = sets["Students"][0]["Id"].as_str().unwrap().to_owned();
    let teacher = sets["StaffMembers"][0]["StaffId"]
        .as_str()
        .unwrap()
        .to_owned();
    let pupils = sets["Students"].as_array().unwrap().len();
    stack
        .upload(&school.agent, &body)
        .await
        .expect(StatusCode::OK);
    for partner in [PARTNER, OTHER] {
        stack
            .grant(&school, partner, &SCOPES)
            .await
            .expect(StatusCode::OK);
    }
    let token = stack.token(PARTNER, &management, ESTAB).await;
    let other_token = stack.token(OTHER, &other, ESTAB).await;
    World {
        stack,
        school,
        token,
        other_token,
        pupil,
        teacher,
        pupils,
    }
}

impl World {
    async fn put_opt_outs(&self, partner: &str, body: Value) -> crate::support::Answer {
        self.stack
            .send(
                Method::PUT,
                &format!("/admin/v1/opt-outs/{partner}"),
                Some(&format!("Bearer {}", self.school.admin)),
                Some(body.to_string().into_bytes()),
            )
            .await
    }

    async fn rows(&self, token: &str, path: &str, set: &str) -> Vec<Value> {
        let body = self
            .stack
            .read(token, &format!("/api/v1/School/{ESTAB}/{path}"))
            .await
            .expect(StatusCode::OK);
        body[set].as_array().unwrap().clone()
    }
}

fn mentions(rows: &[Value], field: &str, id: &str) -> bool {
    rows.iter().any(|row| row[field] == id)
}

#[tokio::test]
async fn opted_out_people_vanish_from_every_answer_to_that_partner_only() {
    let w = world().await;
    let students = w.rows(&w.token, "Students", "Students").await;
    assert!(mentions(&students, "Id", &w.pupil), "before the opt-out");

    let saved = w
        .put_opt_outs(
            PARTNER,
            json!({"studentIds": [w.pupil], "staffIds": [w.teacher.parse::<u64>().map_or(json!(w.teacher), |n| json!(n))]}),
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(saved["studentIds"], json!([w.pupil]));

    let students = w.rows(&w.token, "Students", "Students").await;
    assert_eq!(students.len(), w.pupils - 1);
    assert!(!mentions(&students, "Id", &w.pupil));
    let by_id = w
        .stack
        .read(
            &w.token,
            &format!("/api/v1/School/{ESTAB}/Students/{}", w.pupil),
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(by_id["Students"], json!([]));
    let links = w.rows(&w.token, "StudentContacts", "StudentContacts").await;
    assert!(!links.is_empty());
    assert!(!mentions(&links, "StudentId", &w.pupil));
    let groups = w
        .stack
        .read(
            &w.token,
            &format!(
                "/api/v1/School/{ESTAB}/Groups?options=includeStudentMembers,includeStaffMembers"
            ),
        )
        .await
        .expect(StatusCode::OK);
    let members = groups["StudentMembers"].as_array().unwrap();
    assert!(!members.is_empty());
    assert!(!mentions(members, "StudentId", &w.pupil));
    assert!(!mentions(
        groups["StaffMembers"].as_array().unwrap(),
        "StaffId",
        &w.teacher
    ));
    let staff = w.rows(&w.token, "Staff", "Staff").await;
    assert!(!mentions(&staff, "Id", &w.teacher));

    // The other partner still sees them.
    let students = w.rows(&w.other_token, "Students", "Students").await;
    assert!(mentions(&students, "Id", &w.pupil));

    let gdpr = w
        .stack
        .read(&w.token, "/api/v1/GDPRIDs")
        .await
        .expect(StatusCode::OK);
    assert_eq!(gdpr["GDPR"][0]["IsOptIn"], 0);
    assert_eq!(gdpr["GDPR"][0]["Estab"], ESTAB);
    assert_eq!(gdpr["GDPR"][0]["StudentIds"], json!([w.pupil]));
    assert_eq!(gdpr["GDPR"][0]["StaffIds"], json!([w.teacher]));
    assert_eq!(gdpr["ExceptionMessage"], Value::Null);
    let none = w
        .stack
        .read(&w.other_token, "/api/v1/GDPRIDs")
        .await
        .expect(StatusCode::OK);
    assert_eq!(none["GDPR"][0]["StudentIds"], json!([]));

    // Lifting the opt-out shows them again.
    w.put_opt_outs(PARTNER, json!({}))
        .await
        .expect(StatusCode::OK);
    let students = w.rows(&w.token, "Students", "Students").await;
    assert_eq!(students.len(), w.pupils);
}

#[tokio::test]
async fn bad_opt_outs_are_refused_and_change_nothing() {
    let w = world().await;
    let unknown = unchanged!(
        w,
        w.put_opt_outs("nobody", json!({"studentIds": ["1"]})).await
    );
    unknown.expect_error(StatusCode::NOT_FOUND, "no partner `nobody`");
    let not_ids = unchanged!(
        w,
        w.put_opt_outs(PARTNER, json!({"studentIds": [{"id": 1}]}))
            .await
    );
    not_ids.expect_error(StatusCode::UNPROCESSABLE_ENTITY, "studentIds holds");
    let unknown_key = unchanged!(w, w.put_opt_outs(PARTNER, json!({"pupils": ["1"]})).await);
    unknown_key.expect_error(StatusCode::BAD_REQUEST, "studentIds");
    let read = w
        .stack
        .send(
            Method::GET,
            &format!("/admin/v1/opt-outs/{PARTNER}"),
            Some(&format!("Bearer {}", w.school.admin)),
            None,
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(read["studentIds"], json!([]));
}
