//! Per-person opt-outs on the local stack: the school opts a pupil and a member of staff out of
//! one partner's data; every answer to that partner leaves out the rows about them (their own
//! records, memberships, contact links), GDPRIDs tells the partner whom, and another partner
//! is not affected.

use reqwest::{Method, StatusCode};
use rollcall_core::synthetic;
use serde_json::{Value, json};

use crate::world::World;

const ESTAB: &str = "9990010";
const PARTNER: &str = "acme-optouts";
const OTHER: &str = "other-optouts";
const SCOPES: [&str; 4] = ["Student", "Contact", "School", "Staff"];

async fn world() -> World {
    World::build(ESTAB)
        .data(synthetic::school(ESTAB, 8, 3).upload_body())
        .partner(PARTNER, &SCOPES)
        .partner(OTHER, &SCOPES)
        .grant(ESTAB, PARTNER, &SCOPES)
        .grant(ESTAB, OTHER, &SCOPES)
        .start()
        .await
}

/// The pupil the tests opt out.
fn pupil(w: &World) -> String {
    w.pupils()[0].clone()
}

/// The member of staff the tests opt out: one who teaches a group.
fn teacher(w: &World) -> String {
    w.uploaded_values("StaffMembers", "StaffId")[0].clone()
}

fn mentions(rows: &[Value], field: &str, id: &str) -> bool {
    rows.iter().any(|row| row[field] == id)
}

#[tokio::test]
async fn opted_out_people_vanish_from_every_answer_to_that_partner_only() {
    let w = world().await;
    let students = w.rows(&w.token, "Students", "Students").await;
    assert!(mentions(&students, "Id", &pupil(&w)), "before the opt-out");

    let saved = w
        .put_opt_outs(
            PARTNER,
            json!({"studentIds": [pupil(&w)], "staffIds": [teacher(&w).parse::<u64>().map_or(json!(teacher(&w)), |n| json!(n))]}),
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(saved["studentIds"], json!([pupil(&w)]));

    let students = w.rows(&w.token, "Students", "Students").await;
    assert_eq!(students.len(), w.pupils().len() - 1);
    assert!(!mentions(&students, "Id", &pupil(&w)));
    let by_id = w
        .stack
        .read(
            &w.token,
            &format!("/api/v1/School/{ESTAB}/Students/{}", pupil(&w)),
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(by_id["Students"], json!([]));
    let links = w.rows(&w.token, "StudentContacts", "StudentContacts").await;
    assert!(!links.is_empty());
    assert!(!mentions(&links, "StudentId", &pupil(&w)));
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
    assert!(!mentions(members, "StudentId", &pupil(&w)));
    assert!(!mentions(
        groups["StaffMembers"].as_array().unwrap(),
        "StaffId",
        &teacher(&w)
    ));
    let staff = w.rows(&w.token, "Staff", "Staff").await;
    assert!(!mentions(&staff, "Id", &teacher(&w)));

    // The other partner still sees them.
    let students = w
        .rows(w.token_of(OTHER, ESTAB), "Students", "Students")
        .await;
    assert!(mentions(&students, "Id", &pupil(&w)));

    let gdpr = w
        .stack
        .read(&w.token, "/api/v1/GDPRIDs")
        .await
        .expect(StatusCode::OK);
    assert_eq!(gdpr["GDPR"][0]["IsOptIn"], 0);
    assert_eq!(gdpr["GDPR"][0]["Estab"], ESTAB);
    assert_eq!(gdpr["GDPR"][0]["StudentIds"], json!([pupil(&w)]));
    assert_eq!(gdpr["GDPR"][0]["StaffIds"], json!([teacher(&w)]));
    assert_eq!(gdpr["ExceptionMessage"], Value::Null);
    let none = w
        .stack
        .read(w.token_of(OTHER, ESTAB), "/api/v1/GDPRIDs")
        .await
        .expect(StatusCode::OK);
    assert_eq!(none["GDPR"][0]["StudentIds"], json!([]));

    // Lifting the opt-out shows them again.
    w.put_opt_outs(PARTNER, json!({}))
        .await
        .expect(StatusCode::OK);
    let students = w.rows(&w.token, "Students", "Students").await;
    assert_eq!(students.len(), w.pupils().len());
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
