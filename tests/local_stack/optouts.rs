//! Per-person opt-outs on the local stack: the school opts a pupil and a member of staff out of
//! one partner's data; every answer to that partner leaves out the rows about them (their own
//! records, memberships, contact links), GDPRIDs tells the partner whom, and another partner
//! is not affected.

use std::collections::BTreeSet;

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
    let fraction = unchanged!(
        w,
        w.put_opt_outs(PARTNER, json!({"studentIds": [pupil(&w), "61001.0"]}))
            .await
    );
    fraction.expect_error(StatusCode::UNPROCESSABLE_ENTITY, "a number with a fraction");
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

/// Whom an incident is about is read from its link set (StudentBehaviour). At a school that
/// has not uploaded that set, no incident can be judged against the opt-outs: while someone
/// is opted out none is answered (fail closed, never shown as about nobody), and the header
/// names the missing set. At a school that has uploaded no conduct at all, the answer is the
/// same empty one with or without opt-outs, not an error; and where the staff records that
/// tell an opted-out teacher's code are not uploaded, every code in a group's staff list is
/// withheld.
#[tokio::test]
async fn rows_judged_through_a_set_not_uploaded_are_withheld_while_anyone_is_opted_out() {
    const LINKLESS: &str = "9990011";
    const BARE: &str = "9990012";
    let without = |estab: &str, seed: u64, sets: &[&str]| {
        let today = crate::support::T0.utc_date();
        let mut body = synthetic::sandbox(estab, 8, seed, today).upload_body();
        let uploaded = body["resultSets"].as_object_mut().unwrap();
        for set in sets {
            assert!(uploaded.remove(*set).is_some(), "the demo uploads {set}");
        }
        body
    };
    let links = ["StudentBehaviour", "StaffBehaviour"];
    let conduct = ["Behaviour", "StudentBehaviour", "StaffBehaviour"];
    let scopes = ["School", "Student", "Staff", "Conduct"];
    let bare_teacher = without(BARE, 4, &[])["resultSets"]["Staff"][0]["Id"].clone();
    let bare_body = without(BARE, 4, &[&conduct[..], &["Staff"]].concat());
    let bare_pupil = bare_body["resultSets"]["Students"][0]["Id"].clone();
    let staffed = |groups: &Value| {
        let groups = groups["Group"].as_array().unwrap();
        groups.iter().filter(|g| !g["Staff"].is_null()).count()
    };
    let w = World::build(LINKLESS)
        .data(without(LINKLESS, 3, &links))
        .school(BARE, Some(bare_body))
        .partner(PARTNER, &scopes)
        .grant(LINKLESS, PARTNER, &scopes)
        .grant(BARE, PARTNER, &scopes)
        .start()
        .await;
    let range = "BehaviourForDateRange?DateFrom=2000-01-01&DateTo=2100-01-01";
    let incidents = w.uploaded_values("Behaviour", "Id").len();
    assert!(incidents > 0);

    let shown = w.get(range).await;
    let header = not_held(&shown);
    let rows = shown.expect(StatusCode::OK)["Behaviour"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(rows, incidents, "no one is opted out: every incident");
    assert!(
        header.contains("StudentBehaviour (not uploaded)"),
        "{header}"
    );

    w.opt_out(json!({"studentIds": [pupil(&w)]})).await;
    let start = w.get(&format!("{range}&changedRows=*")).await;
    let hash = start.expect(StatusCode::OK)["__changedRows__"][0]["NextChangedRows"].clone();
    for path in [range, "BehaviourForToday"] {
        let withheld = w.get(path).await;
        let header = not_held(&withheld);
        let body = withheld.expect(StatusCode::OK);
        assert_eq!(body["Behaviour"], json!([]), "{path}: {body}");
        assert!(
            header.contains("StudentBehaviour (not uploaded)"),
            "{path}: {header}"
        );
    }

    // Once the links come, rows can be judged again: a changeset begun without them would
    // list as deleted rows it never showed (about the opted-out pupil alone), so it starts
    // again.
    let today = crate::support::T0.utc_date();
    let full = synthetic::sandbox(LINKLESS, 8, 3, today).upload_body();
    let links = json!({"resultSets": {"StudentBehaviour": full["resultSets"]["StudentBehaviour"]}});
    w.stack
        .upload(&w.school.agent, &links)
        .await
        .expect(StatusCode::OK);
    let hash = hash.as_str().unwrap();
    w.get(&format!("{range}&changedRows={hash}"))
        .await
        .expect_error(StatusCode::BAD_REQUEST, "start");
    let judged = w.get(range).await.expect(StatusCode::OK);
    let judged = judged["Behaviour"].as_array().unwrap().len();
    assert!(judged > 0 && judged <= incidents, "{judged} of {incidents}");

    let bare = w.school_of(BARE).clone();
    let token = w.token_of(PARTNER, BARE).to_owned();
    let read_bare = || async {
        let path = format!("/api/v1/School/{BARE}/BehaviourForToday");
        let answer = w.stack.read(&token, &path).await;
        let header = not_held(&answer);
        (answer.expect(StatusCode::OK), header)
    };
    let before = read_bare().await;
    let groups = format!("/api/v1/School/{BARE}/Groups");
    let groups_before = w.stack.read(&token, &groups).await.expect(StatusCode::OK);
    assert!(staffed(&groups_before) > 0, "{groups_before}");
    w.stack
        .send(
            Method::PUT,
            &format!("/admin/v1/opt-outs/{PARTNER}"),
            Some(&format!("Bearer {}", bare.admin)),
            Some(
                json!({"studentIds": [bare_pupil], "staffIds": [bare_teacher]})
                    .to_string()
                    .into_bytes(),
            ),
        )
        .await
        .expect(StatusCode::OK);
    let after = read_bare().await;
    assert_eq!(before.0["Behaviour"], json!([]));
    assert_eq!(after.0["Behaviour"], before.0["Behaviour"]);
    assert!(
        before.1.contains("Behaviour (not uploaded)"),
        "{}",
        before.1
    );
    assert_eq!(
        after.1, before.1,
        "the same answer whether or not anyone is opted out"
    );
    let withheld = w.stack.read(&token, &groups).await;
    let header = not_held(&withheld);
    let groups_after = withheld.expect(StatusCode::OK);
    assert_eq!(staffed(&groups_after), 0, "{groups_after}");
    assert!(header.contains("Staff (not uploaded)"), "{header}");
}

/// The `x-rollcall-not-held` header of an answer, or "".
fn not_held(answer: &crate::support::Answer) -> String {
    let header = answer.headers.get("x-rollcall-not-held");
    header.map_or_else(String::new, |v| v.to_str().unwrap().to_owned())
}

/// An opted-out teacher's code is withheld wherever other rows name them by it, however their
/// own record pads or cases it (`" abc "`): codes are compared trimmed on both sides and
/// without regard to case.
#[tokio::test]
async fn a_padded_or_recased_code_in_an_opted_out_persons_own_record_is_still_withheld() {
    const PADDED: &str = "9990013";
    let mut body = synthetic::school(PADDED, 8, 3).upload_body();
    let sets = &mut body["resultSets"];
    let code = sets["Group"]
        .as_array()
        .unwrap()
        .iter()
        .find_map(|g| g["Staff"].as_str()?.split(',').next().map(str::to_owned))
        .expect("a group with staff");
    let teacher = sets["Staff"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|s| s["StaffCode"] == code.as_str())
        .expect("the teacher of that code");
    assert_ne!(code.to_lowercase(), code, "a code with letters");
    teacher["StaffCode"] = json!(format!(" {} ", code.to_lowercase()));
    let teacher = teacher["Id"].clone();
    let w = World::build(PADDED)
        .data(body)
        .partner(PARTNER, &SCOPES)
        .grant(PADDED, PARTNER, &SCOPES)
        .start()
        .await;
    let named = |groups: &[Value]| {
        groups.iter().any(|g| {
            let staff = g["Staff"].as_str().unwrap_or_default();
            staff.split(',').any(|c| c.trim() == code)
        })
    };
    assert!(named(&w.rows(&w.token, "Groups", "Group").await));
    w.opt_out(json!({"staffIds": [teacher]})).await;
    let groups = w.rows(&w.token, "Groups", "Group").await;
    assert!(!named(&groups), "{code} is still named: {groups:?}");
}

/// A code is compared with the codes people hold now. When an opted-out teacher's code
/// changes in Staff alone, groups still name the old one, which no one holds now: it stays
/// withheld (it was theirs), while the codes of teachers not opted out stay named.
#[tokio::test]
async fn an_opted_out_teachers_old_code_stays_withheld_once_their_record_changes_it() {
    const RECODED: &str = "9990016";
    let body = synthetic::school(RECODED, 8, 3).upload_body();
    let groups_staff = |groups: &[Value]| -> BTreeSet<String> {
        (groups.iter())
            .flat_map(|g| g["Staff"].as_str().unwrap_or_default().split(','))
            .map(|c| c.trim().to_owned())
            .filter(|c| !c.is_empty())
            .collect()
    };
    let w = World::build(RECODED)
        .data(body.clone())
        .partner(PARTNER, &SCOPES)
        .grant(RECODED, PARTNER, &SCOPES)
        .start()
        .await;
    let named = groups_staff(&w.rows(&w.token, "Groups", "Group").await);
    let code = named.iter().next().expect("a group with staff").clone();
    let mut staff = body["resultSets"]["Staff"].as_array().unwrap().clone();
    let teacher = (staff.iter_mut())
        .find(|s| s["StaffCode"] == code.as_str())
        .expect("the teacher of that code");
    let id = teacher["Id"].clone();
    w.opt_out(json!({"staffIds": [id]})).await;
    let before = groups_staff(&w.rows(&w.token, "Groups", "Group").await);
    assert!(!before.contains(&code), "{code} is named: {before:?}");
    teacher["StaffCode"] = json!(format!("{code}X"));
    let recoded = json!({"resultSets": {"Staff": staff}});
    w.stack
        .upload(&w.school.agent, &recoded)
        .await
        .expect(StatusCode::OK);
    let after = groups_staff(&w.rows(&w.token, "Groups", "Group").await);
    assert!(!after.contains(&code), "{code} is named again: {after:?}");
    assert_eq!(
        after, before,
        "the other teachers' codes are named as before"
    );
}

/// Which contacts are linked only to an opted-out pupil is read from StudentContacts. At a
/// school that has not uploaded it, that cannot be told, so while a pupil is opted out no
/// contact is answered; once the links come, only the opted-out pupil's own contacts stay out.
#[tokio::test]
async fn while_the_links_are_not_held_an_opted_out_pupils_contacts_cannot_be_told_apart() {
    const UNLINKED: &str = "9990014";
    let mut body = synthetic::school(UNLINKED, 8, 3).upload_body();
    let links = body["resultSets"]
        .as_object_mut()
        .unwrap()
        .remove("StudentContacts")
        .expect("the school has links");
    let w = World::build(UNLINKED)
        .data(body)
        .partner(PARTNER, &SCOPES)
        .grant(UNLINKED, PARTNER, &SCOPES)
        .start()
        .await;
    let contacts = w.uploaded_values("Contacts", "Id").len();
    let answered = || async { w.rows(&w.token, "Contacts", "Contacts").await.len() };
    assert_eq!(answered().await, contacts, "no one is opted out");
    w.opt_out(json!({"studentIds": [pupil(&w)]})).await;
    assert_eq!(answered().await, 0, "the links are not held");
    let withheld = not_held(&w.get("Contacts").await);
    assert_eq!(withheld, "StudentContacts (not uploaded)");
    let staff = not_held(&w.get("Staff").await);
    assert!(
        !staff.contains("StudentContacts"),
        "staff answers hold no contact: {staff}"
    );

    let linked = json!({"resultSets": {"StudentContacts": links}});
    w.stack
        .upload(&w.school.agent, &linked)
        .await
        .expect(StatusCode::OK);
    let theirs: BTreeSet<&str> = (links.as_array().unwrap().iter())
        .filter(|l| l["StudentId"].as_str() == Some(&pupil(&w)))
        .filter_map(|l| l["ContactId"].as_str())
        .collect();
    let shown = answered().await;
    assert!(shown > 0 && shown < contacts, "{shown} of {contacts}");
    assert!(shown >= contacts - theirs.len(), "{shown} of {contacts}");
}

/// An opt-out of an id the school has not uploaded is kept (they may not be uploaded yet) but
/// the answer says which ids matched no one, so a typing slip does not pass unseen.
#[tokio::test]
async fn an_opt_out_of_an_id_not_uploaded_is_kept_and_named() {
    let w = world().await;
    let answer = w
        .put_opt_outs(
            PARTNER,
            json!({"studentIds": [pupil(&w), "9999999x"], "staffIds": [teacher(&w)]}),
        )
        .await
        .expect(StatusCode::OK);
    let warnings = answer["warnings"].as_array().unwrap();
    assert_eq!(warnings.len(), 1, "{answer}");
    let warning = warnings[0].as_str().unwrap();
    assert!(
        warning.starts_with("studentIds: 9999999x matched no pupil"),
        "{warning}"
    );
    assert!(!warning.contains(&pupil(&w)), "{warning}");
    assert_eq!(answer["studentIds"], json!([pupil(&w), "9999999x"]));
    let clean = w
        .put_opt_outs(PARTNER, json!({"studentIds": [pupil(&w)]}))
        .await
        .expect(StatusCode::OK);
    assert_eq!(clean["warnings"], json!([]));
}
