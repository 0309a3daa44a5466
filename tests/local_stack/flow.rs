//! upload → grant → token → read → narrow → revoke → purge, as an agent, a school and a
//! partner do it.

use reqwest::{Method, StatusCode};
use rollcall_core::synthetic;
use rollcall_core::timestamp::Duration;
use serde_json::{Value, json};

use crate::support::Stack;

pub const ESTAB: &str = "9990001";
const PARTNER: &str = "acme-homework";

fn field_names(row: &Value) -> Vec<&str> {
    row.as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect()
}

#[tokio::test]
async fn consented_flow_end_to_end() {
    consented_flow(&Stack::start().await).await;
}

/// The whole flow on `stack`, whatever its adapters; answers the synthetic school it uploaded.
pub async fn consented_flow(stack: &Stack) -> synthetic::SyntheticSchool {
    let school = stack.school(ESTAB).await;
    let management = stack
        .partner(
            PARTNER,
            &["Student", "Contact", "School", "StudentDemographic"],
        )
        .await;
    let data = synthetic::school(ESTAB, 60, 7);

    // The agent uploads; the same content again is a no-op.
    let first = stack
        .upload(&school.agent, &data.upload_body())
        .await
        .expect(StatusCode::OK);
    assert_eq!(first["resultSets"]["Students"]["added"], 60);
    assert_eq!(first["resultSets"]["Students"]["version"], 1);
    let again = stack
        .upload(&school.agent, &data.upload_body())
        .await
        .expect(StatusCode::OK);
    assert_eq!(
        again["resultSets"]["Students"],
        json!({"version": 1, "added": 0, "changed": 0, "deleted": 0, "unchanged": 60})
    );

    // The school sees the request and grants part of it.
    let requests = stack
        .send(
            Method::GET,
            "/admin/v1/requests",
            Some(&format!("Bearer {}", school.admin)),
            None,
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(requests["requests"][0]["partner"], PARTNER);
    assert_eq!(requests["requests"][0]["status"], "requested");
    let granted = stack
        .grant(
            &school,
            PARTNER,
            &["Student", "Contact", "StudentDemographic"],
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(granted["newSecretIssued"], true);

    // The partner reads: consented fields only, demographics included.
    let token = stack.token(PARTNER, &management, ESTAB).await;
    let page = stack
        .read(
            &token,
            &format!("/api/v1/School/{ESTAB}/Students/?pageSize=25"),
        )
        .await
        .expect(StatusCode::OK);
    let rows = page["Students"].as_array().unwrap();
    assert_eq!(rows.len(), 25);
    assert_eq!(page["__pagination__"][0]["RowCount"], 60);
    // XoD's NextPage, with an opaque pin of the version the walk reads (so an upload mid-walk
    // shifts no rows).
    let next = page["__pagination__"][0]["NextPage"].as_str().unwrap();
    assert!(
        next.starts_with("?page=2&pageSize=25&version="),
        "NextPage {next}"
    );
    let first_row = &rows[0];
    let source = &data.rows("Students")[0];
    assert_eq!(first_row["Forename"], source["Forename"]);
    assert_eq!(first_row["Ethnicity"], source["Ethnicity"]);
    assert!(
        first_row.get("DateOfBirth").is_none(),
        "StudentExtended was not granted"
    );
    assert!(first_row.get("UPN").is_none(), "UPN was not granted");
    assert!(first_row["RowHash"].as_str().unwrap().len() == 40);
    for row in rows {
        for name in field_names(row) {
            assert!(
                ![
                    "DateOfBirth",
                    "LegalForename",
                    "LegalSurname",
                    "UPN",
                    "FsmEligible",
                    "PupilPremium",
                    "InLeaCare",
                    "SENProvision"
                ]
                .contains(&name),
                "{name} was emitted without consent"
            );
        }
    }

    // Narrowing takes effect on the very next call.
    stack
        .grant(&school, PARTNER, &["Student", "Contact"])
        .await
        .expect(StatusCode::OK);
    let narrowed = stack
        .read(
            &token,
            &format!("/api/v1/School/{ESTAB}/Students/?pageSize=25"),
        )
        .await
        .expect(StatusCode::OK);
    let row = &narrowed["Students"][0];
    assert!(
        row.get("Ethnicity").is_none(),
        "a dropped scope's field was still emitted"
    );
    assert_eq!(row["Forename"], source["Forename"]);

    // The school's access log shows both reads and the scopes they relied on.
    let log = stack
        .send(
            Method::GET,
            "/admin/v1/access-log",
            Some(&format!("Bearer {}", school.admin)),
            None,
        )
        .await
        .expect(StatusCode::OK);
    let entries = log["accessLog"].as_array().unwrap();
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0]["scopesUsed"], json!(["Student"]));
    assert_eq!(
        entries[1]["scopesUsed"],
        json!(["Student", "StudentDemographic"])
    );
    assert_eq!(entries[0]["rows"], 25);

    // Revocation: the next call is refused, and so is a new token.
    stack
        .send(
            Method::POST,
            &format!("/admin/v1/consents/{PARTNER}/revoke"),
            Some(&format!("Bearer {}", school.admin)),
            None,
        )
        .await
        .expect(StatusCode::OK);
    stack
        .read(&token, &format!("/api/v1/School/{ESTAB}/Students"))
        .await
        .expect_error(StatusCode::FORBIDDEN, "ended this partner's access");
    assert_eq!(stack.password(&management, ESTAB).await, None);

    // 31 days on, the purge leaves no object of the school's data on disk.
    assert!(!stack.objects_of(ESTAB).await.is_empty());
    stack.advance(Duration::days(31));
    let report = stack.purge().await;
    assert_eq!(report.expired_versions as usize, data.result_sets.len());
    assert_eq!(stack.objects_of(ESTAB).await, Vec::<String>::new());
    assert!(report.tokens_deleted >= 1);
    data
}

#[tokio::test]
async fn data_past_disposal_is_never_served_even_before_the_purge() {
    let stack = Stack::start().await;
    let school = stack.school(ESTAB).await;
    let management = stack.partner(PARTNER, &["Student"]).await;
    let data = synthetic::school(ESTAB, 5, 1);
    stack
        .upload(&school.agent, &data.upload_body())
        .await
        .expect(StatusCode::OK);
    stack
        .grant(&school, PARTNER, &["Student"])
        .await
        .expect(StatusCode::OK);

    // A day on, the data is stale but still served, and says so.
    stack.advance(Duration::hours(25));
    let token = stack.token(PARTNER, &management, ESTAB).await;
    let stale = stack
        .read(&token, &format!("/api/v1/School/{ESTAB}/Students"))
        .await;
    assert_eq!(stale.status, StatusCode::OK);
    assert_eq!(stale.headers["x-rollcall-stale"], "true");

    // 30 days past its validity, it is withdrawn although its objects are still on disk:
    // no row is answered, and the headers and __DbStatus__ say why.
    stack.advance(Duration::days(30));
    let token = stack.token(PARTNER, &management, ESTAB).await;
    assert!(!stack.objects_of(ESTAB).await.is_empty());
    let withdrawn = stack
        .read(&token, &format!("/api/v1/School/{ESTAB}/Students"))
        .await;
    assert_eq!(withdrawn.status, StatusCode::OK);
    assert_eq!(withdrawn.body["Students"], json!([]));
    assert_eq!(
        withdrawn.headers["x-rollcall-not-held"],
        "Students (withdrawn: more than 30 days out of date)"
    );
    let status = stack
        .read(
            &token,
            &format!("/api/v1/School/{ESTAB}/Students?onlyGetDbStatus=true"),
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(status["__DbStatus__"][0]["Held"], false);
}

#[tokio::test]
async fn a_changed_upload_supersedes_and_the_old_objects_go() {
    let stack = Stack::start().await;
    let school = stack.school(ESTAB).await;
    let management = stack.partner(PARTNER, &["Student"]).await;
    let data = synthetic::school(ESTAB, 10, 3);
    let students =
        |rows: &[serde_json::Map<String, Value>]| json!({"resultSets": {"Students": rows}});
    stack
        .upload(&school.agent, &students(data.rows("Students")))
        .await
        .expect(StatusCode::OK);
    let before = stack.objects_of(ESTAB).await;

    let mut changed = data.rows("Students").to_vec();
    changed[0].insert("Forename".into(), json!("Zoë-Anne"));
    changed.remove(1);
    let answer = stack
        .upload(&school.agent, &students(&changed))
        .await
        .expect(StatusCode::OK);
    assert_eq!(
        answer["resultSets"]["Students"],
        json!({"version": 2, "added": 0, "changed": 1, "deleted": 1, "unchanged": 8})
    );

    stack
        .grant(&school, PARTNER, &["Student"])
        .await
        .expect(StatusCode::OK);
    let token = stack.token(PARTNER, &management, ESTAB).await;
    let id = changed[0]["Id"].as_str().unwrap();
    let one = stack
        .read(&token, &format!("/api/v1/School/{ESTAB}/Students/{id}"))
        .await
        .expect(StatusCode::OK);
    assert_eq!(one["Students"][0]["Forename"], "Zoë-Anne");
    assert_eq!(one["Students"].as_array().unwrap().len(), 1);

    // Superseded objects stay an hour for reads in flight, then go.
    stack.purge().await;
    let kept = stack.objects_of(ESTAB).await;
    assert!(before.iter().all(|p| kept.contains(p)));
    stack.advance(Duration::minutes(61));
    let report = stack.purge().await;
    assert_eq!(report.superseded_versions, 1);
    let after = stack.objects_of(ESTAB).await;
    assert!(before.iter().all(|p| !after.contains(p)));
    assert!(!after.is_empty(), "the current version stays");
}

#[tokio::test]
async fn a_regrant_after_revocation_issues_a_new_secret() {
    let stack = Stack::start().await;
    let school = stack.school(ESTAB).await;
    let management = stack.partner(PARTNER, &["Student"]).await;
    stack
        .grant(&school, PARTNER, &["Student"])
        .await
        .expect(StatusCode::OK);
    let old = stack.password(&management, ESTAB).await.unwrap();
    let admin = format!("Bearer {}", school.admin);
    stack
        .send(
            Method::POST,
            &format!("/admin/v1/consents/{PARTNER}/revoke"),
            Some(&admin),
            Some(b"{}".to_vec()),
        )
        .await
        .expect(StatusCode::OK);
    stack
        .grant(&school, PARTNER, &["Student"])
        .await
        .expect(StatusCode::OK);
    let new = stack.password(&management, ESTAB).await.unwrap();
    assert_ne!(old, new);
    stack
        .get_token(PARTNER, ESTAB, &old)
        .await
        .expect_error(StatusCode::UNAUTHORIZED, "do not match");
    stack
        .get_token(PARTNER, ESTAB, &new)
        .await
        .expect(StatusCode::OK);
}

#[tokio::test]
async fn groups_answer_their_members_for_the_page() {
    let stack = Stack::start().await;
    let school = stack.school(ESTAB).await;
    let management = stack.partner(PARTNER, &["School", "Student"]).await;
    let data = synthetic::school(ESTAB, 40, 5);
    stack
        .upload(&school.agent, &data.upload_body())
        .await
        .expect(StatusCode::OK);
    stack
        .grant(&school, PARTNER, &["School", "Student"])
        .await
        .expect(StatusCode::OK);
    let token = stack.token(PARTNER, &management, ESTAB).await;
    let answer = stack
        .read(
            &token,
            &format!("/API/V1/school/{ESTAB}/groups/?pagesize=1&Options=includeStudentMembers,INCLUDEGROUPTYPES"),
        )
        .await
        .expect(StatusCode::OK);
    let keys: Vec<&String> = answer.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        [
            "Group",
            "StaffMembers",
            "StudentMembers",
            "GroupTypes",
            "meta",
            "__pagination__"
        ]
    );
    // A set whose option is off is answered, empty.
    assert_eq!(answer["StaffMembers"], json!([]));
    // Group types are not per group: all of them come with any page.
    assert_eq!(
        answer["GroupTypes"].as_array().unwrap().len(),
        data.rows("GroupTypes").len()
    );
    let group_id = answer["Group"][0]["Id"].as_str().unwrap();
    let members = answer["StudentMembers"].as_array().unwrap();
    let expected = data
        .rows("StudentMembers")
        .iter()
        .filter(|m| m["GroupId"] == group_id)
        .count();
    assert!(expected > 0);
    assert_eq!(members.len(), expected);
    assert!(members.iter().all(|m| m["GroupId"] == group_id));
}

#[tokio::test]
async fn unknown_fields_are_dropped_and_reported() {
    let stack = Stack::start().await;
    let school = stack.school(ESTAB).await;
    let body = json!({"resultSets": {"Students": [
        {"Id": "1", "Forename": "Siân", "ShoeSize": 5, "LockerCode": "x-1"},
        {"Id": "2", "Forename": "Łukasz"},
    ]}});
    let answer = stack
        .upload(&school.agent, &body)
        .await
        .expect(StatusCode::OK);
    assert_eq!(
        answer["ignored"],
        json!({"Students": ["LockerCode", "ShoeSize"]})
    );
    assert_eq!(answer["resultSets"]["Students"]["added"], 2);
}

/// A read opens only the scope groups its consent covers: with every other group's object
/// made unreadable on disk, it still answers; once the consent covers one of them, it fails.
#[tokio::test]
async fn reads_decrypt_only_the_groups_the_consent_covers() {
    let stack = Stack::start().await;
    let school = stack.school(ESTAB).await;
    let management = stack
        .partner(PARTNER, &["Student", "StudentDemographic"])
        .await;
    let data = synthetic::school(ESTAB, 6, 4);
    stack
        .upload(&school.agent, &data.upload_body())
        .await
        .expect(StatusCode::OK);
    stack
        .grant(&school, PARTNER, &["Student"])
        .await
        .expect(StatusCode::OK);

    // StudentExtended is read only for who is on roll (leavers, pre-admissions and guests are
    // left out unless asked for); none of its fields is answered without its scope.
    let readable = [
        "Student-StudentLite",
        "Student",
        "StudentExtended",
        "_index",
    ];
    let mut broken = 0;
    for key in stack.objects_of(ESTAB).await {
        let name = key.rsplit('/').next().unwrap();
        if key.contains("/Students/") && !readable.contains(&name) {
            let path = stack.dir.path().join("objects").join(&key);
            std::fs::write(path, b"not an envelope").unwrap();
            broken += 1;
        }
    }
    assert!(broken >= 3, "Students has several other scope groups");

    let token = stack.token(PARTNER, &management, ESTAB).await;
    let path = format!("/api/v1/School/{ESTAB}/Students");
    let page = stack.read(&token, &path).await.expect(StatusCode::OK);
    assert_eq!(page["Students"].as_array().unwrap().len(), 6);

    stack
        .grant(&school, PARTNER, &["Student", "StudentDemographic"])
        .await
        .expect(StatusCode::OK);
    let failed = stack.read(&token, &path).await;
    failed.expect_error(
        StatusCode::INTERNAL_SERVER_ERROR,
        "something went wrong inside rollcall",
    );
}

/// XoD names the Groups endpoint's set `Group`: an agent that sends it so is taken, and one
/// that still sends rollcall's former name `Groups` is taken with a warning; partners read
/// `Group` either way, with the values sent.
#[tokio::test]
async fn groups_travel_under_their_xod_name() {
    let world = crate::world::World::build("9990061")
        .partner("acme-groups", &["School"])
        .grant("9990061", "acme-groups", &["School"])
        .start()
        .await;
    let group = json!({"Id": "8811", "Code": "9X1/Fr", "Name": "9X1 French", "Type": "Class",
                       "NumStudents": 27});

    let current = world
        .stack
        .upload(
            &world.school.agent,
            &json!({"resultSets": {"Group": [group]}}),
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(current["warnings"], json!([]));
    let read = world.get("Groups").await.expect(StatusCode::OK);
    assert_eq!(read["Group"][0]["Code"], "9X1/Fr");
    assert_eq!(read["Group"][0]["NumStudents"], 27);
    assert!(read.get("Groups").is_none(), "{read}");

    let renamed = json!({"Id": "8811", "Code": "9X2/Fr"});
    let former = world
        .stack
        .upload(
            &world.school.agent,
            &json!({"resultSets": {"Groups": [renamed]}}),
        )
        .await
        .expect(StatusCode::OK);
    assert!(former["resultSets"]["Group"]["changed"] == 1, "{former}");
    assert!(
        former["warnings"][0]
            .as_str()
            .unwrap()
            .contains("former name of `Group`"),
        "{former}"
    );
    let read = world.get("Groups").await.expect(StatusCode::OK);
    assert_eq!(read["Group"][0]["Code"], "9X2/Fr");
}

/// Every result set of an endpoint is answered as an array, whatever the school has uploaded:
/// a set it never uploaded is `[]`, and the headers and `__DbStatus__` tell "none" from "not
/// uploaded"; an endpoint whose paged set is missing answers its other sets, never a 503.
#[tokio::test]
async fn sets_not_uploaded_answer_empty_and_say_so() {
    let estab = "9990062";
    let today = &crate::support::T0.to_xod()[..10];
    let at = format!("{today}T09:00:00");
    let world = crate::world::World::build(estab)
        .data(json!({"resultSets": {
            "TTDays": [{"Id": "1", "EventDescription": "Monday", "StartDateTime": at}],
            "TTSessions": [{"Id": "1", "DayId": "1", "Session": "AM", "StartDateTime": at}],
            "TTSubjects": [{"Id": "1"}],
            "TTRooms": [{"Id": "1"}],
        }}))
        .partner("acme-structure", &["School", "Student"])
        .grant(estab, "acme-structure", &["School", "Student"])
        .start()
        .await;

    // TTPeriods, the set TimetableStructure pages, was never uploaded.
    let structure = world.get("TimetableStructure").await;
    let keys: Vec<&String> = structure.body.as_object().unwrap().keys().collect();
    assert_eq!(structure.status, StatusCode::OK, "{}", structure.body);
    assert_eq!(
        keys,
        [
            "TTDays",
            "TTSessions",
            "TTPeriods",
            "TTSubjects",
            "TTRooms",
            "meta",
            "__pagination__"
        ]
    );
    assert_eq!(structure.body["TTPeriods"], json!([]));
    for set in ["TTDays", "TTSessions", "TTSubjects", "TTRooms"] {
        let rows = structure.body[set].as_array().unwrap();
        assert_eq!(rows.len(), 1, "{set}: {}", structure.body);
    }
    assert_eq!(
        structure.headers["x-rollcall-not-held"],
        "TTPeriods (not uploaded)"
    );

    // Nothing of Students was uploaded: an empty answer, not an error.
    let students = world.get("Students").await.expect(StatusCode::OK);
    assert_eq!(students["Students"], json!([]));
    assert_eq!(students["__pagination__"][0]["RowCount"], 0);
    let status = world
        .get("Students?onlyGetDbStatus=true")
        .await
        .expect(StatusCode::OK);
    assert_eq!(status["__DbStatus__"][0]["Held"], false);
    assert_eq!(status["__DbStatus__"][0]["NotHeldReason"], "not uploaded");
}

/// LinkedDocuments takes the document type by name (its filter table) or by id (its
/// Parameters list), and refuses a call that gives neither, saying what to send.
#[tokio::test]
async fn linked_documents_take_the_type_by_name_or_by_id() {
    let estab = "9990063";
    let world = crate::world::World::build(estab)
        .data(json!({"resultSets": {
            "DocumentTypes": [
                {"Id": "10", "DocumentTypeName": "Care plan", "Code": "CP"},
                {"Id": "11", "DocumentTypeName": "Report", "Code": "RP"},
            ],
            "DocumentAttachments": [
                {"Id": "1", "StudentId": "501", "FileName": "plan.pdf", "DocumentTypeName": "Care plan"},
                {"Id": "2", "StudentId": "502", "FileName": "report.pdf", "DocumentTypeName": "Report"},
            ],
        }}))
        .partner("acme-docs", &["StudentFreeText"])
        .grant(estab, "acme-docs", &["StudentFreeText"])
        .start()
        .await;
    let ids = |answer: &Value| -> Vec<String> {
        answer["DocumentAttachments"]
            .as_array()
            .unwrap()
            .iter()
            .map(|row| row["Id"].as_str().unwrap().to_owned())
            .collect()
    };

    let by_name = world
        .get("LinkedDocuments?DocumentTypeName=Care%20plan")
        .await
        .expect(StatusCode::OK);
    let by_id = world
        .get("LinkedDocuments?DocumentTypeId=11")
        .await
        .expect(StatusCode::OK);
    let neither = world.get("LinkedDocuments").await;

    assert_eq!(ids(&by_name), ["1"]);
    assert_eq!(ids(&by_id), ["2"]);
    assert_eq!(neither.status, StatusCode::BAD_REQUEST, "{}", neither.body);
    assert!(
        neither.message().contains("DocumentTypeName")
            && neither.message().contains("DocumentTypeId"),
        "{}",
        neither.message()
    );
}

/// The access log records the scopes an answer drew on, whichever of the endpoint's sets
/// carried them and in whatever order the answer lists its sets: group members' change
/// metadata needs Contact, so a Groups answer with its pupils' memberships used Contact.
#[tokio::test]
async fn the_access_log_records_the_scopes_of_every_set_answered() {
    let estab = "9990064";
    let world = crate::world::World::build(estab)
        .data(synthetic::school(estab, 6, 2).upload_body())
        .partner("acme-log", &["School", "Contact"])
        .grant(estab, "acme-log", &["School", "Contact"])
        .start()
        .await;

    let answer = world
        .get("Groups?options=includeStudentMembers&pageSize=1")
        .await
        .expect(StatusCode::OK);

    assert!(!answer["StudentMembers"].as_array().unwrap().is_empty());
    assert!(answer["StudentMembers"][0].get("RowHash").is_some());
    let log = world.stack.access_log(&world.school).await;
    assert_eq!(log[0]["endpoint"], "Groups");
    assert_eq!(
        log[0]["scopesUsed"],
        json!(["Contact", "School"]),
        "{log:?}"
    );
}
