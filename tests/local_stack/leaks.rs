//! Regressions for consent leaks, on the local stack: opted-out people in the pastoral and
//! conduct sets, in mapped filters and in list columns; a mapped filter reading a set the
//! consent does not release; PersonComms rows of kinds of person not granted; info and status
//! routes after a revocation; Counts and Health under a narrow consent; leavers, pre-admissions
//! and guests without their options; and write-back refusals that would name ids the partner
//! may not know.

use reqwest::{Method, StatusCode};
use rollcall_core::synthetic;
use serde_json::{Map, Value, json};

use rollcall_core::timestamp::Duration;

use crate::support::{Stack, T0};
use crate::world::World;

const ESTAB: &str = "9990031";
/// An id no pupil of the school has.
const UNKNOWN_PUPIL: &str = "77777";

/// The synthetic school's upload body, to add result sets to before it is uploaded.
#[derive(Clone)]
struct Data {
    body: Value,
    pupils: Vec<String>,
    staff: Vec<String>,
}

impl Data {
    fn new() -> Self {
        let body = synthetic::school(ESTAB, 8, 31).upload_body();
        let ids = |set: &str| -> Vec<String> {
            body["resultSets"][set]
                .as_array()
                .unwrap()
                .iter()
                .map(|row| row["Id"].as_str().unwrap().to_owned())
                .collect()
        };
        let (pupils, staff) = (ids("Students"), ids("Staff"));
        Self {
            body,
            pupils,
            staff,
        }
    }

    fn sets(&mut self) -> &mut Map<String, Value> {
        self.body["resultSets"].as_object_mut().unwrap()
    }

    /// Adds (or replaces) a result set.
    fn add(&mut self, set: &str, rows: Value) {
        self.sets().insert(set.to_owned(), rows);
    }

    /// The contacts linked to `pupil` and to no other pupil.
    fn own_contacts(&self, pupil: &str) -> Vec<String> {
        let links = self.body["resultSets"]["StudentContacts"]
            .as_array()
            .unwrap();
        links
            .iter()
            .filter(|l| l["StudentId"] == pupil)
            .map(|l| l["ContactId"].as_str().unwrap().to_owned())
            .filter(|c| {
                links
                    .iter()
                    .all(|l| l["ContactId"] != c.as_str() || l["StudentId"] == pupil)
            })
            .collect()
    }

    /// The rows of a result set, to change in place.
    fn rows(&mut self, set: &str) -> &mut Vec<Value> {
        self.sets()
            .get_mut(set)
            .and_then(Value::as_array_mut)
            .unwrap()
    }

    /// An e-mail address each for the first pupil, contact and member of staff
    /// (`pc-1`..`pc-3`), as PersonComms rows; their ids.
    fn comms_of_each_kind(&mut self) -> (Vec<Value>, [String; 3]) {
        let pupil = self.pupils[0].clone();
        let contact = self.rows("Contacts")[0]["Id"].as_str().unwrap().to_owned();
        let teacher = self.staff[0].clone();
        let rows = vec![
            json!({"Id": "pc-1", "PersonId": pupil, "PersonType": "Student", "CommsType": "Email",
                   "Value": "pupil.leak@pupils.example"}),
            json!({"Id": "pc-2", "PersonId": contact, "PersonType": "Contact", "CommsType": "Email",
                   "Value": "parent.leak@home.example"}),
            json!({"Id": "pc-3", "PersonId": teacher, "PersonType": "Staff", "CommsType": "Email",
                   "Value": "teacher@larkfield.example"}),
        ];
        (rows, [pupil, contact, teacher])
    }

    /// The Students row of `id`, to change in place.
    fn pupil(&mut self, id: &str) -> &mut Map<String, Value> {
        self.rows("Students")
            .iter_mut()
            .find(|row| row["Id"] == id)
            .and_then(Value::as_object_mut)
            .unwrap()
    }
}

/// A fixed-term exclusion `id` of `pupil`.
fn exclusion(id: &str, pupil: &str) -> Value {
    json!({"Id": id, "StudentId": pupil, "ExclusionType": "Fixed term",
           "StartDate": "2026-03-02T00:00:00", "EndDate": "2026-03-04T00:00:00"})
}

/// `data` uploaded (every field of it stored, none ignored), `partner` registered asking for
/// `scopes` and granted exactly them, and a token for it.
async fn world(partner: &str, scopes: &[&str], data: Data) -> World {
    world_on(Stack::start().await, partner, scopes, data).await
}

/// [`world`] on `stack` (the AWS adapters, say).
async fn world_on(stack: Stack, partner: &str, scopes: &[&str], data: Data) -> World {
    World::build(ESTAB)
        .data(data.body)
        .partner(partner, scopes)
        .grant(ESTAB, partner, scopes)
        .on(stack)
        .await
}

/// Whether the answer holds `id` as a whole JSON string anywhere.
fn mentions(body: &Value, id: &str) -> bool {
    body.to_string().contains(&format!("\"{id}\""))
}

fn ids(body: &Value, set: &str) -> Vec<String> {
    body[set]
        .as_array()
        .unwrap_or_else(|| panic!("no {set} in {body}"))
        .iter()
        .map(|row| row["Id"].as_str().unwrap().to_owned())
        .collect()
}

/// Today on the stack's clock, `yyyy-mm-dd`.
fn today() -> String {
    T0.to_xod()[..10].to_owned()
}

#[tokio::test]
async fn an_opted_out_pupil_vanishes_from_the_medical_sen_meals_and_conduct_point_answers() {
    an_opted_out_pupil_vanishes_on(Stack::start().await).await;
}

#[tokio::test]
async fn on_aws_an_opted_out_pupil_vanishes_from_the_medical_sen_meals_and_conduct_point_answers() {
    if let Some(stack) = Stack::start_aws().await {
        an_opted_out_pupil_vanishes_on(stack).await;
    }
}

async fn an_opted_out_pupil_vanishes_on(stack: Stack) {
    // Arrange: two pupils with rows in every set, everything granted; the first opted out.
    let mut data = Data::new();
    let (hidden, shown) = (data.pupils[1].clone(), data.pupils[2].clone());
    let both = |row: &dyn Fn(&str, &str) -> Value| json!([row(&hidden, "1"), row(&shown, "2")]);
    data.add(
        "StudentMedical",
        both(&|id, _| json!({"Id": id, "DietaryNeeds": "Nut-free", "EmergencyConsent": 1})),
    );
    data.add(
        "ConditionLookups",
        json!([{"Id": "c-1", "ConditionDescription": "Asthma"}]),
    );
    data.add(
        "StudentConditions",
        both(
            &|id, n| json!({"Id": format!("sc-{n}"), "StudentId": id, "MedicalConditionId": "c-1"}),
        ),
    );
    data.add(
        "StudentMedicalNotes",
        both(&|id, n| json!({"Id": format!("mn-{n}"), "StudentId": id, "Note": "Carries an inhaler"})),
    );
    data.add(
        "StudentSENTypeHistory",
        both(
            &|id, n| json!({"Id": format!("st-{n}"), "StudentMis_Id": id, "NeedTypeCode": "SLCN"}),
        ),
    );
    data.add(
        "StudentSENProvisionHistory",
        both(
            &|id, n| json!({"Id": format!("sp-{n}"), "StudentMis_Id": id, "SENProvisionCode": "K"}),
        ),
    );
    data.add(
        "StudentDisabilities",
        both(
            &|id, n| json!({"Id": format!("sd-{n}"), "StudentMis_Id": id, "Disability": "Hearing"}),
        ),
    );
    data.add(
        "StudentMeals",
        both(&|id, _| json!({"Id": id, "MondayCode": "SCH", "MondayType": "School meal"})),
    );
    data.add(
        "ConductPoints",
        both(&|id, _| json!({"Id": id, "TotalConductPoints": 7})),
    );
    data.add(
        "WeeklyStats",
        both(&|id, _| json!({"Id": id, "WeeklyBehaviourPoints": 3})),
    );
    data.add(
        "TermlyStats",
        both(&|id, _| json!({"Id": id, "TermBehaviourPoints": 4})),
    );
    let scopes = [
        "StudentMedical",
        "SEN",
        "StudentExtended",
        "Conduct",
        "Student",
        "School",
    ];
    let w = world_on(stack, "leaks-pastoral", &scopes, data).await;
    let by_id = ["StudentMedical", "SEN", "StudentMeals", "ConductPoints"]
        .map(|endpoint| format!("{endpoint}/{hidden}"));
    let whole = ["StudentMedical", "SEN", "StudentMeals", "ConductPoints"].map(String::from);
    for path in by_id.iter().chain(&whole) {
        let before = w.get(path).await.expect(StatusCode::OK);
        assert!(mentions(&before, &hidden), "{path} before the opt-out");
    }

    // Act
    w.opt_out(json!({"studentIds": [hidden]})).await;

    // Assert: nothing about them by id or in the whole sets; the other pupil is still there.
    for path in by_id.iter().chain(&whole) {
        let answer = w.get(path).await.expect(StatusCode::OK);
        assert!(
            !mentions(&answer, &hidden),
            "{path} answers {hidden}: {answer}"
        );
    }
    for path in &whole {
        let answer = w.get(path).await.expect(StatusCode::OK);
        assert!(mentions(&answer, &shown), "{path} lost {shown}: {answer}");
    }
    let medical = w.get("StudentMedical").await.expect(StatusCode::OK);
    assert_eq!(ids(&medical, "StudentMedicalNotes"), ["mn-2"]);
    assert_eq!(ids(&medical, "StudentConditions"), ["sc-2"]);
    let sen = w.get("SEN").await.expect(StatusCode::OK);
    assert_eq!(ids(&sen, "StudentSENTypeHistory"), ["st-2"]);
    assert_eq!(ids(&sen, "StudentSENProvisionHistory"), ["sp-2"]);
    assert_eq!(ids(&sen, "StudentDisabilities"), ["sd-2"]);

    // Lifting the opt-out brings them back.
    w.opt_out(json!({})).await;
    for path in by_id.iter().chain(&whole) {
        let answer = w.get(path).await.expect(StatusCode::OK);
        assert!(
            mentions(&answer, &hidden),
            "{path} after the opt-out is lifted"
        );
    }
}

#[tokio::test]
async fn conduct_for_a_date_range_filtered_by_an_opted_out_pupil_answers_no_conducts() {
    // Arrange: one incident for each of two pupils today, a member of staff on the first.
    let mut data = Data::new();
    let (hidden, shown) = (data.pupils[1].clone(), data.pupils[2].clone());
    let teacher = data.staff[0].clone();
    let today = today();
    data.add(
        "Conducts",
        json!([
            {"Id": "1", "ConductId": "Beh.1", "Date": format!("{today}T10:00:00"), "Category": "Beh"},
            {"Id": "2", "ConductId": "Ach.2", "Date": format!("{today}T11:00:00"), "Category": "Ach"},
        ]),
    );
    data.add(
        "StudentConducts",
        json!([
            {"Id": "sc-1", "StudentId": hidden, "ConductId": "1", "Points": 2},
            {"Id": "sc-2", "StudentId": shown, "ConductId": "2", "Points": 5},
        ]),
    );
    data.add(
        "StaffConducts",
        json!([{"Id": "tc-1", "StaffId": teacher, "ConductId": "1", "StaffRole": "Witness"}]),
    );
    let w = world("leaks-conduct", &["Conduct", "Student"], data).await;
    let range = |pupil: &str| {
        format!("ConductForDateRange?DateFrom={today}&DateTo={today}&StudentId={pupil}")
    };
    let before = w.get(&range(&hidden)).await.expect(StatusCode::OK);
    assert_eq!(
        ids(&before, "Conducts"),
        ["1"],
        "the filter selects before the opt-out"
    );

    // Act
    w.opt_out(json!({"studentIds": [hidden]})).await;
    let filtered = w.get(&range(&hidden)).await.expect(StatusCode::OK);
    let visible = w.get(&range(&shown)).await.expect(StatusCode::OK);
    let unfiltered = w
        .get(&format!(
            "ConductForDateRange?DateFrom={today}&DateTo={today}"
        ))
        .await
        .expect(StatusCode::OK);

    // Assert
    assert_eq!(filtered["Conducts"], json!([]), "{filtered}");
    assert_eq!(filtered["StudentConducts"], json!([]));
    assert!(!mentions(&filtered, &hidden));
    assert_eq!(ids(&visible, "Conducts"), ["2"]);
    assert_eq!(ids(&visible, "StudentConducts"), ["sc-2"]);
    assert_eq!(ids(&unfiltered, "StudentConducts"), ["sc-2"]);
    assert!(!mentions(&unfiltered, &hidden), "{unfiltered}");
}

#[tokio::test]
async fn assessment_results_by_group_are_refused_without_the_consent_to_read_memberships() {
    // Arrange: results of two pupils; only AssessmentResults granted.
    let mut data = Data::new();
    let (pupil, other) = (data.pupils[0].clone(), data.pupils[5].clone());
    let group = data
        .rows("StudentMembers")
        .iter()
        .find(|m| m["StudentId"] == pupil.as_str())
        .unwrap()["GroupId"]
        .as_str()
        .unwrap()
        .to_owned();
    data.add(
        "AsmResults",
        json!([
            {"Id": "r-1", "StudentId": pupil, "AspectId": "A1", "ResultSetId": "RS1", "Result": "6"},
            {"Id": "r-2", "StudentId": other, "AspectId": "A1", "ResultSetId": "RS1", "Result": "4"},
        ]),
    );
    let w = world("leaks-assessment", &["AssessmentResults"], data).await;

    // Act
    let by_group = unchanged!(w, w.get(&format!("assessmentresults?Groups={group}")).await);
    let by_pupil = w.get(&format!("assessmentresults?Students={pupil}")).await;

    // Assert
    by_group.expect_error(StatusCode::FORBIDDEN, "StudentMembers");
    assert!(!mentions(&by_group.body, &pupil), "{}", by_group.body);
    assert!(
        by_group.body.get("AsmResults").is_none(),
        "{}",
        by_group.body
    );
    let by_pupil = by_pupil.expect(StatusCode::OK);
    assert_eq!(ids(&by_pupil, "AsmResults"), ["r-1"]);
}

#[tokio::test]
async fn person_comms_under_a_staff_only_consent_answers_only_staff_rows() {
    person_comms_under_a_staff_only_consent_on(Stack::start().await).await;
}

#[tokio::test]
async fn on_aws_person_comms_under_a_staff_only_consent_answers_only_staff_rows() {
    if let Some(stack) = Stack::start_aws().await {
        person_comms_under_a_staff_only_consent_on(stack).await;
    }
}

async fn person_comms_under_a_staff_only_consent_on(stack: Stack) {
    // Arrange: an e-mail address each for a pupil, a contact and a member of staff.
    let mut data = Data::new();
    let (comms, [pupil, _, _]) = data.comms_of_each_kind();
    data.add("PersonComms", Value::Array(comms));
    let w = world_on(stack, "leaks-comms", &["Staff"], data).await;

    // Act
    let all = w.get("PersonComms").await.expect(StatusCode::OK);
    let students = w
        .get("PersonComms?PersonType=Student")
        .await
        .expect(StatusCode::OK);
    let by_id = w
        .get(&format!("PersonComms/{pupil}"))
        .await
        .expect(StatusCode::OK);

    // Assert
    assert_eq!(ids(&all, "PersonComms"), ["pc-3"]);
    for answer in [&all, &students, &by_id] {
        let text = answer.to_string();
        assert!(!text.contains("pupil.leak@pupils.example"), "{text}");
        assert!(!text.contains("parent.leak@home.example"), "{text}");
    }
    assert_eq!(students["PersonComms"], json!([]));
    assert_eq!(by_id["PersonComms"], json!([]));
}

#[tokio::test]
async fn opted_out_people_are_left_out_of_list_columns_and_primary_staff() {
    // Arrange: every group lists three pupils and two members of staff; the first pupil's
    // siblings are two others; one pupil and one member of staff (the primary of the first
    // group) opted out.
    let mut data = Data::new();
    let [a, hidden, c] = [0, 1, 2].map(|n| data.pupils[n].clone());
    let (gone, kept) = (data.staff[0].clone(), data.staff[1].clone());
    let code = data.rows("Staff")[0]["StaffCode"]
        .as_str()
        .unwrap()
        .to_owned();
    for group in data.rows("Group") {
        group["StudentIds"] = json!(format!("{a},{hidden},{c}"));
        group["StaffIds"] = json!(format!("{gone},{kept}"));
    }
    let first_group = data.rows("Group")[0].clone();
    assert_eq!(first_group["PrimaryStaffId"], gone.as_str());
    data.pupil(&a)
        .insert("StudentSiblingIds".into(), json!(format!("{hidden},{c}")));
    data.pupil(&c)
        .insert("StudentSiblingIds".into(), json!(format!("{a},{hidden}")));
    let w = world("leaks-lists", &["Student", "School"], data).await;
    w.opt_out(json!({"studentIds": [hidden], "staffIds": [gone]}))
        .await;

    // Act
    let groups = w
        .get("Groups?options=includeMembersIds")
        .await
        .expect(StatusCode::OK);
    let students = w
        .get("Students?options=includeSiblingsList")
        .await
        .expect(StatusCode::OK);

    // Assert
    let groups = groups["Group"].as_array().unwrap();
    assert!(!groups.is_empty());
    for group in groups {
        assert_eq!(group["StudentIds"], format!("{a},{c}").as_str(), "{group}");
        assert_eq!(group["StaffIds"], kept.as_str(), "{group}");
        assert_ne!(group["PrimaryStaffId"], gone.as_str(), "{group}");
        assert_ne!(group["Staff"], code.as_str(), "{group}");
    }
    let first = groups
        .iter()
        .find(|g| g["Id"] == first_group["Id"])
        .unwrap();
    assert_eq!(first["PrimaryStaffId"], Value::Null, "{first}");
    assert!(
        groups.iter().any(|g| g["PrimaryStaffId"] == kept.as_str()),
        "other primaries stay"
    );
    let siblings = |id: &str| {
        students["Students"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["Id"] == id)
            .unwrap()["StudentSiblingIds"]
            .clone()
    };
    assert_eq!(siblings(&a), c.as_str());
    assert_eq!(siblings(&c), a.as_str());
    assert!(!mentions(&students, &hidden));
}

#[tokio::test]
async fn after_a_revocation_every_info_and_status_route_refuses_the_token() {
    // Arrange
    let w = world("leaks-revoked", &["Student"], Data::new()).await;
    let routes = [
        "/api/v1/GDPRIDs",
        "/api/v1/Logs",
        "/api/v1/Usage",
        "/api/v1/RunQuery/?id=edubase.search&q=x",
        "/api/v1/Writeback/Status/no-such-task",
    ];
    for route in &routes[..4] {
        w.stack.read(&w.token, route).await.expect(StatusCode::OK);
    }
    w.stack
        .read(&w.token, routes[4])
        .await
        .expect_error(StatusCode::NOT_FOUND, "no write-back");

    // Act
    w.stack
        .send(
            Method::POST,
            &format!("/admin/v1/consents/{}/revoke", w.partner),
            Some(&format!("Bearer {}", w.school.admin)),
            Some(
                json!({"endDate": w.stack.clock_now().to_rfc3339()})
                    .to_string()
                    .into_bytes(),
            ),
        )
        .await
        .expect(StatusCode::OK);

    // Assert
    for route in routes {
        w.stack
            .read(&w.token, route)
            .await
            .expect_error(StatusCode::FORBIDDEN, "ended this partner's access");
    }
}

#[tokio::test]
async fn counts_and_health_under_a_school_only_consent_say_nothing_about_people() {
    // Arrange
    let w = world("leaks-counts", &["School"], Data::new()).await;

    // Act
    let counts = w.get("Counts").await.expect(StatusCode::OK);
    let health = w.get("Health").await.expect(StatusCode::OK);

    // Assert
    let areas: Vec<&str> = counts["Counts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| row["Area"].as_str().unwrap())
        .collect();
    assert_eq!(areas, ["Groups"], "{counts}");
    let sets: Vec<&str> = health["Health"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| row["ResultSet"].as_str().unwrap())
        .collect();
    assert!(sets.contains(&"Group"), "{sets:?}");
    for person_set in ["Students", "Staff", "Contacts", "StudentContacts"] {
        assert!(!sets.contains(&person_set), "Health lists {person_set}");
    }
}

#[tokio::test]
async fn leavers_pre_admissions_and_guests_are_answered_only_with_their_options() {
    // Arrange: a leaver, a pupil who starts next year and a guest, under a consent without
    // StudentExtended (which releases the fields that tell them apart).
    let mut data = Data::new();
    let [leaver, joiner, guest] = [0, 1, 2].map(|n| data.pupils[n].clone());
    let on_roll = data.pupils.len() - 3;
    data.pupil(&leaver)
        .insert("LeavingDate".into(), json!("2020-07-20T00:00:00"));
    data.pupil(&joiner)
        .insert("EntryDate".into(), json!("2030-09-02T00:00:00"));
    data.pupil(&guest)
        .insert("EnrolmentStatus".into(), json!("G"));
    let w = world("leaks-leavers", &["Student", "School"], data).await;

    // Act
    let default = w.get("Students").await.expect(StatusCode::OK);
    let all = w
        .get("Students?options=includeLeavers,includePreAdmissions,includeGuests")
        .await
        .expect(StatusCode::OK);

    let counts = w.get("Counts").await.expect(StatusCode::OK);

    // Assert
    let shown = ids(&default, "Students");
    assert_eq!(shown.len(), on_roll, "{shown:?}");
    let counted = counts.as_object().unwrap().values().find_map(|rows| {
        rows.as_array()?
            .iter()
            .find(|row| row["Area"] == "Students")
            .map(|row| row["Count"].clone())
    });
    assert_eq!(
        counted,
        Some(json!(on_roll)),
        "Counts says no more than Students: {counts}"
    );
    for pupil in [&leaver, &joiner, &guest] {
        assert!(
            !shown.contains(pupil),
            "{pupil} answered without its option"
        );
    }
    let mut everyone = ids(&all, "Students");
    everyone.sort();
    let mut expected = w.pupils();
    expected.sort();
    assert_eq!(everyone, expected);
    for (option, pupil) in [
        ("includeLeavers", &leaver),
        ("includePreAdmissions", &joiner),
        ("includeGuests", &guest),
    ] {
        let one = w
            .get(&format!("Students?options={option}"))
            .await
            .expect(StatusCode::OK);
        assert_eq!(ids(&one, "Students").len(), on_roll + 1, "{option}");
        assert!(ids(&one, "Students").contains(pupil), "{option}");
    }
    for row in all["Students"].as_array().unwrap() {
        for field in ["LeavingDate", "EntryDate", "EnrolmentStatus"] {
            assert!(
                row.get(field).is_none(),
                "{field} answered without its scope: {row}"
            );
        }
    }
}

#[tokio::test]
async fn a_leavers_exclusions_and_school_history_are_answered_only_with_include_leavers() {
    // Arrange: an exclusion and a previous school each for a leaver and a pupil on roll,
    // under a consent without StudentExtended (which releases the leaving date).
    let mut data = Data::new();
    let [leaver, on_roll] = [0, 1].map(|n| data.pupils[n].clone());
    data.pupil(&leaver)
        .insert("LeavingDate".into(), json!("2020-07-20T00:00:00"));
    data.add(
        "StudentExclusions",
        json!([exclusion("ex-1", &leaver), exclusion("ex-2", &on_roll)]),
    );
    let history = |id: &str, pupil: &str| {
        json!({"Id": id, "StudentId": pupil, "PreviousSchoolName": "Elm Primary",
               "LeavingDate": "2019-07-19T00:00:00"})
    };
    data.add(
        "StudentSchoolHistory",
        json!([history("sh-1", &leaver), history("sh-2", &on_roll)]),
    );
    let w = world("leaks-leaver-rows", &["Student", "StudentExclusions"], data).await;

    for (set, leavers_row, on_roll_row) in [
        ("StudentExclusions", "ex-1", "ex-2"),
        ("StudentSchoolHistory", "sh-1", "sh-2"),
    ] {
        // Act
        let default = w.get(set).await.expect(StatusCode::OK);
        let by_id = w
            .get(&format!("{set}/{leaver}"))
            .await
            .expect(StatusCode::OK);
        let with = w
            .get(&format!("{set}?options=includeLeavers"))
            .await
            .expect(StatusCode::OK);

        // Assert
        assert_eq!(ids(&default, set), [on_roll_row], "{set}");
        assert_eq!(by_id[set], json!([]), "{set}");
        let mut all = ids(&with, set);
        all.sort();
        assert_eq!(all, [leavers_row, on_roll_row], "{set}");
    }
}

/// `data` with the school's attendance codes.
fn with_codes(mut data: Data) -> Data {
    data.add(
        "AttendCodes",
        json!([
            {"Id": "1", "Mark": "/", "Description": "Present (AM)"},
            {"Id": "2", "Mark": "\\", "Description": "Present (PM)"},
        ]),
    );
    data
}

/// A body of present (AM) session marks for `pupils` today.
fn marks(pupils: &[&str]) -> Value {
    let marks: Vec<Value> = pupils
        .iter()
        .map(|pupil| {
            json!({"StudentId": pupil, "MarkType": "S", "Date": today(), "Session": "AM",
                   "Mark": "/"})
        })
        .collect();
    json!({ "Marks": marks })
}

#[tokio::test]
async fn a_write_back_without_the_consent_to_read_pupils_tells_nothing_of_any_id() {
    // Arrange: a partner that may write attendance but not read who the pupils are.
    let w = world(
        "leaks-blind-writer",
        &["WritebackAttendance"],
        with_codes(Data::new()),
    )
    .await;
    let pupil = w.pupils()[0].clone();
    let path = format!("/api/v1/Attendance/{ESTAB}/");

    // Act: a pupil of the school, an unknown id, each alone and with a broken field (the
    // way to test one id at a time without queueing anything).
    let mut answers = Vec::new();
    for id in [pupil.as_str(), UNKNOWN_PUPIL] {
        let mut broken = marks(&[id]);
        broken["Marks"][0]["Session"] = json!("XX");
        for body in [marks(&[id]), broken] {
            answers.push(unchanged!(w, w.post(&path, &body).await));
        }
    }

    // Assert: the same refusal, before any id is looked at, whatever the id.
    for answer in &answers {
        answer.expect_error(
            StatusCode::FORBIDDEN,
            "needs the consent to read who they are",
        );
        assert_eq!(answer.message(), answers[0].message());
        assert!(!answer.message().contains(&pupil), "{}", answer.message());
    }
}

#[tokio::test]
async fn an_opted_out_pupil_is_refused_by_write_back_exactly_like_an_unknown_id() {
    // Arrange
    let w = world(
        "leaks-named-writer",
        &["Student", "Attendance", "WritebackAttendance"],
        with_codes(Data::new()),
    )
    .await;
    let pupil = w.pupils()[0].clone();
    w.opt_out(json!({"studentIds": [pupil]})).await;
    let path = format!("/api/v1/Attendance/{ESTAB}/");

    // Act
    let opted_out = unchanged!(w, w.post(&path, &marks(&[&pupil])).await);
    let unknown = unchanged!(w, w.post(&path, &marks(&[UNKNOWN_PUPIL])).await);

    // Assert
    opted_out.expect_error(
        StatusCode::UNPROCESSABLE_ENTITY,
        &format!("`{pupil}` is not a pupil of school {ESTAB}"),
    );
    unknown.expect_error(StatusCode::UNPROCESSABLE_ENTITY, "is not a pupil of school");
    assert_eq!(
        opted_out.message().replace(&pupil, "ID"),
        unknown.message().replace(UNKNOWN_PUPIL, "ID")
    );
}

/// The parts of an answer a partner can compare over time, without the two that move with
/// every upload of the school's agent whatever it holds (`meta`'s time and `__DbStatus__`).
fn change_metadata(mut body: Value) -> Value {
    let object = body.as_object_mut().unwrap();
    object.remove("meta");
    object.remove("__DbStatus__");
    body
}

#[tokio::test]
async fn a_change_to_ungranted_fields_alone_moves_no_change_metadata() {
    let world = world("partner-app", &["Student"], Data::new()).await;
    let stack = &world.stack;
    let pupil = world.pupils()[0].clone();
    let half_hour_on = T0.plus(Duration::minutes(30)).to_xod();
    let start = world
        .get("Students?changedRows=*")
        .await
        .expect(StatusCode::OK);
    let hash = start["__changedRows__"][0]["NextChangedRows"]
        .as_str()
        .unwrap()
        .to_owned();
    let calls = [
        "Students".to_owned(),
        "Students?pageSize=3".to_owned(),
        format!("Students/{pupil}"),
        format!("Students?updatedSince={half_hour_on}"),
        format!("Students?changedRows={hash}"),
    ];
    stack.advance(Duration::minutes(1));
    let mut before = Vec::new();
    for call in &calls {
        before.push(change_metadata(
            world.get(call).await.expect(StatusCode::OK),
        ));
    }

    // The agent uploads the school again with every pupil's ethnicity and free-meal
    // eligibility changed: a partner granted `Student` only must not be able to tell.
    stack.advance(Duration::minutes(50));
    let mut data = Data::new();
    for id in &world.pupils() {
        let row = data.pupil(id);
        row.insert("Ethnicity".into(), json!("Changed ethnicity"));
        row.insert("EthnicityCode".into(), json!("ZZZ"));
        row.insert("FsmEligible".into(), json!(true));
    }
    stack
        .upload(&world.school.agent, &data.body)
        .await
        .expect(StatusCode::OK);
    for (call, before) in calls.iter().zip(&before) {
        let after = change_metadata(world.get(call).await.expect(StatusCode::OK));
        if call.contains("pageSize") {
            // The page pin is new on every walk; everything else is the same.
            let strip = |body: &Value| {
                let mut body = body.clone();
                body["__pagination__"][0]["NextPage"] = Value::Null;
                body
            };
            assert_eq!(strip(&after), strip(before), "{call}");
        } else {
            assert_eq!(&after, before, "{call}");
        }
    }

    // The same change to a granted field moves exactly that pupil's metadata.
    stack.advance(Duration::minutes(1));
    data.pupil(&pupil)
        .insert("Forename".into(), json!("Renamed"));
    stack
        .upload(&world.school.agent, &data.body)
        .await
        .expect(StatusCode::OK);
    let changes = world
        .get(&format!("Students?changedRows={hash}"))
        .await
        .expect(StatusCode::OK);
    assert_eq!(ids(&changes, "Students"), [pupil.as_str()]);
    let row = &world
        .get(&format!("Students/{pupil}"))
        .await
        .expect(StatusCode::OK)["Students"][0];
    let was = &before[2]["Students"][0];
    assert_ne!(row["RowHash"], was["RowHash"]);
    assert_ne!(row["LastUpdated"], was["LastUpdated"]);
}

/// `<set>_deleted` of a changeset continued by `hash` (with `params`), sorted.
async fn deleted(w: &World, set: &str, hash: &str, params: &str) -> Vec<String> {
    let answer = w
        .get(&format!("{set}?changedRows={hash}{params}"))
        .await
        .expect(StatusCode::OK);
    let mut ids = ids(&answer, &format!("{set}_deleted"));
    ids.sort();
    ids
}

/// A changeset's first hash for `set` (with `params`).
async fn changeset(w: &World, set: &str, params: &str) -> String {
    let start = w
        .get(&format!("{set}?changedRows=*{params}"))
        .await
        .expect(StatusCode::OK);
    start["__changedRows__"][0]["NextChangedRows"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn deletions_are_listed_only_where_their_rows_would_be() {
    // Arrange: two Year 7 pupils (one opted out) and a Year 8 pupil leave the school.
    let w = world("leaks-deletions", &["Student"], Data::new()).await;
    let pupils = w.pupils();
    let (year7, opted_out, year8) = (&pupils[0], &pupils[1], &pupils[2]);
    let before = Data::new();
    let year7_group = before.body["resultSets"]["Students"][0]["YearGroupId"].clone();
    assert_eq!(
        before.body["resultSets"]["Students"][1]["YearGroupId"],
        year7_group
    );
    assert_ne!(
        before.body["resultSets"]["Students"][2]["YearGroupId"],
        year7_group
    );
    let year7_filter = format!("&yearGroupId={}", year7_group.as_str().unwrap());
    let before_the_opt_out = changeset(&w, "Students", "").await;
    w.opt_out(json!({"studentIds": [opted_out]})).await;
    let whole = changeset(&w, "Students", "").await;
    let filtered = changeset(&w, "Students", &year7_filter).await;
    w.stack.advance(Duration::minutes(1));
    let mut data = Data::new();
    data.rows("Students").retain(|row| {
        ![year7, opted_out, year8].contains(&&row["Id"].as_str().unwrap().to_owned())
    });
    w.stack
        .upload(&w.school.agent, &data.body)
        .await
        .expect(StatusCode::OK);

    // Assert: the filter and the opt-out judge deletions as they judge rows.
    assert_eq!(
        deleted(&w, "Students", &filtered, &year7_filter).await,
        [year7.as_str()]
    );
    let mut expected = vec![year7.as_str(), year8.as_str()];
    expected.sort();
    assert_eq!(deleted(&w, "Students", &whole, "").await, expected);

    // Once the opt-out is lifted, a changeset begun under it is over (it would miss the
    // pupil's rows), and one begun without it lists the pupil's leaving like anyone's.
    w.opt_out(json!({})).await;
    w.get(&format!("Students?changedRows={whole}"))
        .await
        .expect_error(StatusCode::BAD_REQUEST, "changed what it shares with you");
    let mut expected = vec![year7.as_str(), opted_out.as_str(), year8.as_str()];
    expected.sort();
    assert_eq!(
        deleted(&w, "Students", &before_the_opt_out, "").await,
        expected
    );
}

#[tokio::test]
async fn deleted_person_comms_under_a_staff_only_consent_list_only_staff_rows() {
    let mut data = Data::new();
    let (mut comms, [_, _, teacher]) = data.comms_of_each_kind();
    let phone = json!({"Id": "pc-4", "PersonId": teacher, "PersonType": "Staff",
                       "CommsType": "Phone", "Value": "01632 960000"});
    comms.push(phone.clone());
    data.add("PersonComms", Value::Array(comms));
    let w = world("leaks-comms-deleted", &["Staff"], data).await;
    let hash = changeset(&w, "PersonComms", "").await;
    w.stack.advance(Duration::minutes(1));
    let mut data = Data::new();
    data.add("PersonComms", json!([phone]));
    w.stack
        .upload(&w.school.agent, &data.body)
        .await
        .expect(StatusCode::OK);
    assert_eq!(deleted(&w, "PersonComms", &hash, "").await, ["pc-3"]);
}

#[tokio::test]
async fn refused_calls_are_in_the_schools_access_log_with_what_the_partner_was_told() {
    // Arrange: a partner granted Student only probes around its consent.
    let w = world("leaks-probe", &["Student"], Data::new()).await;
    w.get("Students").await.expect(StatusCode::OK);
    let probes = [
        (
            "Students?select=Forename,Ethnicity",
            StatusCode::FORBIDDEN,
            "Students",
            "needs StudentDemographic",
        ),
        (
            "StudentMedical",
            StatusCode::FORBIDDEN,
            "StudentMedical",
            "has not granted",
        ),
        (
            "Students?page=2&version=00ff",
            StatusCode::BAD_REQUEST,
            "Students",
            "is not a page pin",
        ),
        (
            "NoSuch<Endpoint>",
            StatusCode::NOT_FOUND,
            "NoSuchEndpoint",
            "there is no endpoint",
        ),
    ];
    for (path, status, _, text) in probes {
        w.get(path).await.expect_error(status, text);
    }
    w.post(
        "/api/v1/Writeback/Conduct",
        &json!({"Conduct": [{"StudentId": w.pupils()[0]}]}),
    )
    .await
    .expect_error(StatusCode::FORBIDDEN, "has not granted");

    // Assert: newest first, each with the status and message the partner received.
    let log = w.stack.access_log(&w.school).await;
    assert_eq!(log.len(), 6, "{log:#?}");
    let (answered, refusals) = (&log[5], &log[..5]);
    assert_eq!(answered["status"], 200);
    assert!(answered.get("refused").is_none());
    assert_eq!(refusals[0]["endpoint"], "Writeback.Conduct");
    assert_eq!(refusals[0]["status"], 403);
    for (entry, (_, status, endpoint, text)) in refusals[1..].iter().rev().zip(probes) {
        assert_eq!(entry["partner"], "leaks-probe");
        assert_eq!(entry["endpoint"], endpoint, "{entry}");
        assert_eq!(entry["status"], status.as_u16(), "{entry}");
        assert_eq!(entry["rows"], 0);
        let reason = entry["refused"].as_str().unwrap();
        assert!(reason.contains(text), "{reason}");
    }

    // After the school ends the consent, the partner's calls are refused and recorded too.
    w.stack
        .send(
            Method::POST,
            &format!("/admin/v1/consents/{}/revoke", w.partner),
            Some(&format!("Bearer {}", w.school.admin)),
            Some(
                json!({"endDate": w.stack.clock_now().to_rfc3339()})
                    .to_string()
                    .into_bytes(),
            ),
        )
        .await
        .expect(StatusCode::OK);
    w.get("Students")
        .await
        .expect_error(StatusCode::FORBIDDEN, "ended");
    w.stack
        .read(&w.token, "/api/v1/Logs")
        .await
        .expect_error(StatusCode::FORBIDDEN, "ended");
    let log = w.stack.access_log(&w.school).await;
    assert_eq!(log[0]["endpoint"], "Logs");
    assert_eq!(log[1]["endpoint"], "Students");
    for entry in &log[..2] {
        assert_eq!(entry["status"], 403);
        assert!(
            entry["refused"].as_str().unwrap().contains("ended"),
            "{entry}"
        );
    }
}

#[tokio::test]
async fn codes_of_an_opted_out_member_of_staff_whose_record_is_gone_are_not_answered() {
    // Arrange: the school's groups name their teachers by code; one of those teachers has
    // left (no Staff row any more) and is opted out, so their code cannot be looked up.
    let mut data = Data::new();
    let gone = data.staff[0].clone();
    let code = data
        .rows("Staff")
        .iter()
        .find(|row| row["Id"] == gone.as_str())
        .unwrap()["StaffCode"]
        .as_str()
        .unwrap()
        .to_owned();
    data.rows("Staff").retain(|row| row["Id"] != gone.as_str());
    let w = world("leaks-gone-staff", &["School", "Staff"], data).await;
    let before = w.get("Groups").await.expect(StatusCode::OK);
    assert!(
        before.to_string().contains(&format!("\"{code}\"")),
        "{before}"
    );

    // Act
    w.opt_out(json!({"staffIds": [gone]})).await;
    let after = w.get("Groups").await.expect(StatusCode::OK);

    // Assert: no staff code is kept, since the gone teacher's cannot be told apart.
    assert!(
        !after.to_string().contains(&format!("\"{code}\"")),
        "{after}"
    );
    for row in after["Group"].as_array().unwrap() {
        assert!(row["Staff"].is_null(), "{row}");
    }
}

#[tokio::test]
async fn gdpr_ids_lists_only_the_kinds_of_person_the_consent_releases() {
    let data = Data::new();
    let (pupil, teacher) = (data.pupils[0].clone(), data.staff[0].clone());
    let contact = data.body["resultSets"]["Contacts"][0]["Id"]
        .as_str()
        .unwrap()
        .to_owned();
    let w = world("leaks-gdpr", &["Student"], data).await;
    w.opt_out(json!({"studentIds": [pupil], "staffIds": [teacher], "contactIds": [contact]}))
        .await;
    let answer = w
        .stack
        .read(&w.token, "/api/v1/GDPRIDs")
        .await
        .expect(StatusCode::OK);
    let gdpr = &answer["GDPR"][0];
    assert_eq!(gdpr["StudentIds"], json!([pupil]));
    assert_eq!(gdpr["StaffIds"], json!([]));
    assert_eq!(gdpr["ContactIds"], json!([]));
}

#[tokio::test]
async fn an_opted_out_contact_is_not_named_in_a_pupils_salutation() {
    let mut data = Data::new();
    let contact = data.rows("Contacts")[0]["Id"].as_str().unwrap().to_owned();
    let pupil = data.pupils[0].clone();
    data.pupil(&pupil)
        .insert("ParentalSalutation".into(), json!("Dear Mrs Okafor"));
    let w = world("leaks-salutation", &["Student", "Address"], data).await;
    let before = w
        .get(&format!("Students/{pupil}"))
        .await
        .expect(StatusCode::OK);
    assert_eq!(
        before["Students"][0]["ParentalSalutation"],
        "Dear Mrs Okafor"
    );
    w.opt_out(json!({"contactIds": [contact]})).await;
    let after = w.get("Students").await.expect(StatusCode::OK);
    assert!(!after.to_string().contains("Okafor"), "{after}");
}

#[tokio::test]
async fn an_id_the_mis_sent_with_spaces_is_opted_out_like_any_other() {
    let mut data = Data::new();
    let pupil = data.pupils[0].clone();
    data.pupil(&pupil)
        .insert("Id".into(), json!(format!("{pupil} ")));
    let w = world("leaks-spaces", &["Student"], data).await;
    w.opt_out(json!({"studentIds": [pupil]})).await;
    let answer = w.get("Students").await.expect(StatusCode::OK);
    assert!(
        !ids(&answer, "Students").iter().any(|id| id.trim() == pupil),
        "{answer}"
    );
}

#[tokio::test]
async fn an_incident_about_opted_out_pupils_only_is_not_answered() {
    // Arrange: an incident of an opted-out pupil alone, and one shared with another pupil.
    let mut data = Data::new();
    let (hidden, shown) = (data.pupils[1].clone(), data.pupils[2].clone());
    let today = today();
    data.add(
        "Conducts",
        json!([
            {"Id": "1", "ConductId": "Beh.1", "Date": format!("{today}T10:00:00"),
             "Category": "Beh", "Description": "Alone in the corridor"},
            {"Id": "2", "ConductId": "Beh.2", "Date": format!("{today}T11:00:00"),
             "Category": "Beh", "Description": "Both in the yard"},
        ]),
    );
    data.add(
        "StudentConducts",
        json!([
            {"Id": "sc-1", "StudentId": hidden, "ConductId": "1", "Points": 2},
            {"Id": "sc-2", "StudentId": hidden, "ConductId": "2", "Points": 1},
            {"Id": "sc-3", "StudentId": shown, "ConductId": "2", "Points": 1},
        ]),
    );
    data.add("StaffConducts", json!([]));
    let w = world("leaks-incident", &["Conduct", "Student"], data).await;
    let range = format!("ConductForDateRange?DateFrom={today}&DateTo={today}");
    let before = w.get(&range).await.expect(StatusCode::OK);
    assert_eq!(ids(&before, "Conducts"), ["1", "2"]);

    // Act
    w.opt_out(json!({"studentIds": [hidden]})).await;
    let after = w.get(&range).await.expect(StatusCode::OK);
    let by_id = w
        .get(&format!(
            "ConductForDateRange/1?DateFrom={today}&DateTo={today}"
        ))
        .await
        .expect(StatusCode::OK);

    // Assert: the shared incident stays, with the other pupil only.
    assert_eq!(ids(&after, "Conducts"), ["2"], "{after}");
    assert_eq!(ids(&after, "StudentConducts"), ["sc-3"]);
    assert!(
        !after.to_string().contains("Alone in the corridor"),
        "{after}"
    );
    assert!(
        !by_id.to_string().contains("Alone in the corridor"),
        "{by_id}"
    );

    // Lifted, both are answered again.
    w.opt_out(json!({})).await;
    assert_eq!(w.get(&range).await.expect(StatusCode::OK), before);
}

#[tokio::test]
async fn a_photos_consent_answers_pupils_and_staff_but_not_contacts() {
    let mut data = Data::new();
    let (pupil, teacher) = (data.pupils[0].clone(), data.staff[0].clone());
    let contact = data.rows("Contacts")[0]["Id"].as_str().unwrap().to_owned();
    data.add(
        "Photos",
        json!([
            {"Id": "ph-1", "PersonId": pupil, "PersonType": "Student", "Photo": "cGhvdG8x"},
            {"Id": "ph-2", "PersonId": teacher, "PersonType": "Staff", "Photo": "cGhvdG8y"},
            {"Id": "ph-3", "PersonId": contact, "PersonType": "Contact", "Photo": "cGhvdG8z"},
        ]),
    );
    let w = world("leaks-photos", &["Photos"], data).await;
    let answer = w.get("Photos").await.expect(StatusCode::OK);
    let mut shown = ids(&answer, "Photos");
    shown.sort();
    assert_eq!(shown, ["ph-1", "ph-2"], "{answer}");
    assert!(!answer.to_string().contains("cGhvdG8z"));
}

/// The incidents of [`an_incident_about_opted_out_pupils_only_is_not_answered`], each with one
/// pupil: `hidden`'s (1) and `shown`'s (2), today.
fn incidents(data: &mut Data, hidden: &str, shown: &str) {
    let today = today();
    data.add(
        "Conducts",
        json!([
            {"Id": "1", "ConductId": "Beh.1", "Date": format!("{today}T10:00:00"), "Category": "Beh"},
            {"Id": "2", "ConductId": "Beh.2", "Date": format!("{today}T11:00:00"), "Category": "Beh"},
        ]),
    );
    data.add(
        "StudentConducts",
        json!([
            {"Id": "sc-1", "StudentId": hidden, "ConductId": "1", "Points": 2},
            {"Id": "sc-2", "StudentId": shown, "ConductId": "2", "Points": 1},
        ]),
    );
    data.add("StaffConducts", json!([]));
}

#[tokio::test]
async fn a_deleted_incident_of_an_opted_out_pupil_alone_is_not_listed_as_deleted() {
    // Arrange: a changeset begun while one pupil is opted out, under a consent of conduct.
    let mut data = Data::new();
    let (hidden, shown) = (data.pupils[1].clone(), data.pupils[2].clone());
    incidents(&mut data, &hidden, &shown);
    let w = world("leaks-incident-deleted", &["Conduct"], data).await;
    w.opt_out(json!({"studentIds": [hidden]})).await;
    let range = format!("&DateFrom={0}&DateTo={0}", today());
    let hash = changeset(&w, "ConductForDateRange", &range).await;

    // Act: the school deletes both incidents, with the rows naming their pupils.
    w.stack.advance(Duration::minutes(1));
    let mut data = Data::new();
    data.add("Conducts", json!([]));
    data.add("StudentConducts", json!([]));
    data.add("StaffConducts", json!([]));
    w.stack
        .upload(&w.school.agent, &data.body)
        .await
        .expect(StatusCode::OK);

    // Assert: the partner never saw incident 1, so it is not told of its deletion.
    let answer = w
        .get(&format!("ConductForDateRange?changedRows={hash}{range}"))
        .await
        .expect(StatusCode::OK);
    assert_eq!(ids(&answer, "Conducts_deleted"), ["2"], "{answer}");
}

#[tokio::test]
async fn a_deleted_row_of_a_pupil_who_left_is_listed_only_with_include_leavers() {
    // Arrange: an exclusion each for a leaver and a pupil on roll; changesets with and
    // without includeLeavers.
    let mut data = Data::new();
    let [leaver, on_roll] = [0, 1].map(|n| data.pupils[n].clone());
    data.pupil(&leaver)
        .insert("LeavingDate".into(), json!("2020-07-20T00:00:00"));
    data.add(
        "StudentExclusions",
        json!([exclusion("ex-1", &leaver), exclusion("ex-2", &on_roll)]),
    );
    let w = world(
        "leaks-leaver-deleted",
        &["Student", "StudentExclusions"],
        data,
    )
    .await;
    let without = changeset(&w, "StudentExclusions", "").await;
    let with = changeset(&w, "StudentExclusions", "&options=includeLeavers").await;

    // Act: the MIS drops the leaver and both exclusions.
    w.stack.advance(Duration::minutes(1));
    let mut data = Data::new();
    data.rows("Students")
        .retain(|row| row["Id"] != leaver.as_str());
    data.add("StudentExclusions", json!([]));
    w.stack
        .upload(&w.school.agent, &data.body)
        .await
        .expect(StatusCode::OK);

    // Assert
    assert_eq!(
        deleted(&w, "StudentExclusions", &without, "").await,
        ["ex-2"]
    );
    assert_eq!(
        deleted(&w, "StudentExclusions", &with, "&options=includeLeavers").await,
        ["ex-1", "ex-2"]
    );
}

#[tokio::test]
async fn a_deleted_contact_of_opted_out_pupils_only_is_not_listed_as_deleted() {
    // Arrange: a pupil with a contact of their own, opted out, and another pupil.
    let data = Data::new();
    let own_contacts = |pupil: &str| data.own_contacts(pupil);
    let hidden = data
        .pupils
        .iter()
        .find(|p| !own_contacts(p).is_empty())
        .expect("a pupil has a contact of their own")
        .clone();
    let only_hidden = own_contacts(&hidden);
    let other = data
        .pupils
        .iter()
        .find(|p| **p != hidden && !own_contacts(p).is_empty())
        .expect("another pupil has a contact of their own");
    let shared = own_contacts(other);
    let w = world("leaks-contact-deleted", &["Student", "Contact"], data).await;
    w.opt_out(json!({"studentIds": [hidden]})).await;
    let hash = changeset(&w, "Contacts", "").await;

    // Act: the MIS drops the pupil's contacts and the second pupil's, with their links.
    w.stack.advance(Duration::minutes(1));
    let mut data = Data::new();
    let gone: Vec<&String> = only_hidden.iter().chain(&shared).collect();
    data.rows("Contacts")
        .retain(|row| !gone.iter().any(|c| row["Id"] == c.as_str()));
    data.rows("StudentContacts")
        .retain(|row| !gone.iter().any(|c| row["ContactId"] == c.as_str()));
    w.stack
        .upload(&w.school.agent, &data.body)
        .await
        .expect(StatusCode::OK);

    // Assert: only the contacts the partner could see are listed; the opt-outs in force are
    // the same (the hidden pupil's contacts are judged on the links they had last), so the
    // changeset goes on.
    let mut expected = shared.clone();
    expected.sort();
    assert_eq!(deleted(&w, "Contacts", &hash, "").await, expected);
}

/// The parameters of a date range of today.
fn today_range() -> String {
    format!("&DateFrom={0}&DateTo={0}", today())
}

/// `ConductForDateRange` over today, with `params`.
fn conduct_today(params: &str) -> String {
    format!("ConductForDateRange?{}{params}", &today_range()[1..])
}

/// Uploads `data` a minute after the stack's last change.
async fn upload_later(w: &World, data: &Data) {
    w.stack.advance(Duration::minutes(1));
    w.stack
        .upload(&w.school.agent, &data.body)
        .await
        .expect(StatusCode::OK);
}

#[tokio::test]
async fn an_incident_whose_pupils_links_went_first_stays_hidden() {
    // Arrange: incident 1 is the opted-out pupil's alone.
    let mut data = Data::new();
    let (hidden, shown) = (data.pupils[1].clone(), data.pupils[2].clone());
    incidents(&mut data, &hidden, &shown);
    let w = world("leaks-links-first", &["Conduct"], data).await;
    w.opt_out(json!({"studentIds": [hidden]})).await;

    // Act: the MIS drops the incident's pupil rows a run before the incident itself.
    let mut data = Data::new();
    incidents(&mut data, &hidden, &shown);
    data.rows("StudentConducts").retain(|l| l["Id"] != "sc-1");
    upload_later(&w, &data).await;
    let answer = w.get(&conduct_today("")).await.expect(StatusCode::OK);

    // Assert: it is judged on the pupils it had last.
    assert_eq!(ids(&answer, "Conducts"), ["2"], "{answer}");
}

#[tokio::test]
async fn a_pinned_walk_does_not_show_an_incident_deleted_with_its_pupils() {
    // Arrange: incidents 2 and 3 are shown one a page; 1 is the opted-out pupil's alone.
    let mut data = Data::new();
    let (hidden, shown) = (data.pupils[1].clone(), data.pupils[2].clone());
    incidents(&mut data, &hidden, &shown);
    let third = json!({"Id": "3", "ConductId": "Beh.3", "Date": format!("{}T12:00:00", today()),
                       "Category": "Beh"});
    data.rows("Conducts").push(third.clone());
    data.rows("StudentConducts")
        .push(json!({"Id": "sc-3", "StudentId": shown, "ConductId": "3", "Points": 1}));
    let w = world("leaks-pinned-walk", &["Conduct"], data.clone()).await;
    w.opt_out(json!({"studentIds": [hidden]})).await;
    let first = w
        .get(&conduct_today("&pageSize=1"))
        .await
        .expect(StatusCode::OK);
    let next = first["__pagination__"][0]["NextPage"]
        .as_str()
        .unwrap()
        .to_owned();

    // Act: incident 1 and its pupil's row are deleted mid-walk.
    data.rows("Conducts").retain(|c| c["Id"] != "1");
    data.rows("StudentConducts").retain(|l| l["Id"] != "sc-1");
    upload_later(&w, &data).await;
    let rest = w
        .get(&format!(
            "{}{}",
            conduct_today(""),
            next.replacen('?', "&", 1)
        ))
        .await
        .expect(StatusCode::OK);

    // Assert
    let mut walked = ids(&first, "Conducts");
    walked.extend(ids(&rest, "Conducts"));
    assert_eq!(walked, ["2", "3"], "{rest}");
}

#[tokio::test]
async fn a_reused_incident_id_is_judged_on_the_pupils_it_had_when_deleted() {
    // Arrange: incident 1 was the shown pupil's, was deleted, and is now the opted-out
    // pupil's alone.
    let mut data = Data::new();
    let (hidden, shown) = (data.pupils[1].clone(), data.pupils[2].clone());
    incidents(&mut data, &shown, &shown);
    let w = world("leaks-reused-id", &["Conduct"], data).await;
    w.opt_out(json!({"studentIds": [hidden]})).await;
    let mut gone = Data::new();
    incidents(&mut gone, &shown, &shown);
    gone.rows("Conducts").retain(|c| c["Id"] != "1");
    gone.rows("StudentConducts").retain(|l| l["Id"] != "sc-1");
    upload_later(&w, &gone).await;
    let mut again = Data::new();
    incidents(&mut again, &shown, &shown);
    again.rows("StudentConducts")[0] =
        json!({"Id": "sc-9", "StudentId": hidden, "ConductId": "1", "Points": 2});
    upload_later(&w, &again).await;
    let hash = changeset(&w, "ConductForDateRange", &today_range()).await;

    // Act: the new incident 1 goes, with its pupil's row.
    upload_later(&w, &gone).await;

    // Assert
    let answer = w
        .get(&conduct_today(&format!("&changedRows={hash}")))
        .await
        .expect(StatusCode::OK);
    assert_eq!(ids(&answer, "Conducts_deleted"), Vec::<String>::new());
}

#[tokio::test]
async fn a_leavers_rows_stay_hidden_when_the_leavers_record_is_deleted() {
    // Arrange: an exclusion each for a leaver and a pupil on roll.
    let mut data = Data::new();
    let [leaver, on_roll] = [0, 1].map(|n| data.pupils[n].clone());
    data.pupil(&leaver)
        .insert("LeavingDate".into(), json!("2020-07-20T00:00:00"));
    let exclusions = json!([exclusion("ex-1", &leaver), exclusion("ex-2", &on_roll)]);
    data.add("StudentExclusions", exclusions.clone());
    let w = world("leaks-leaver-gone", &["Student", "StudentExclusions"], data).await;

    // Act: the MIS stops sending the leaver's record, but not the exclusion.
    let mut data = Data::new();
    data.rows("Students")
        .retain(|row| row["Id"] != leaver.as_str());
    data.add("StudentExclusions", exclusions);
    upload_later(&w, &data).await;
    let answer = w.get("StudentExclusions").await.expect(StatusCode::OK);

    // Assert: the leaver is judged on the record they had last.
    assert_eq!(ids(&answer, "StudentExclusions"), ["ex-2"], "{answer}");
}

#[tokio::test]
async fn a_cancelled_admission_is_not_listed_once_its_entry_date_passes() {
    // Arrange: a pupil due to start in two days, hidden without includePreAdmissions.
    let mut data = Data::new();
    let joiner = data.pupils[0].clone();
    let in_two_days = T0.plus(Duration::days(2)).to_xod()[..10].to_owned();
    data.pupil(&joiner)
        .insert("EntryDate".into(), json!(format!("{in_two_days}T00:00:00")));
    let w = world("leaks-cancelled-admission", &["Student"], data).await;
    let hash = changeset(&w, "Students", "").await;

    // Act: the admission is cancelled today; the partner continues three days later.
    let mut data = Data::new();
    data.rows("Students")
        .retain(|row| row["Id"] != joiner.as_str());
    upload_later(&w, &data).await;
    w.stack.advance(Duration::days(3));
    let token = w.stack.token(&w.partner, &w.management, &w.estab).await;
    let answer = w
        .stack
        .read(
            &token,
            &format!("/api/v1/School/{}/Students?changedRows={hash}", w.estab),
        )
        .await
        .expect(StatusCode::OK);

    // Assert: judged on the day it was deleted, when it was not yet on roll.
    assert_eq!(ids(&answer, "Students_deleted"), Vec::<String>::new());
}

#[tokio::test]
async fn a_contact_of_an_opted_out_pupil_stays_hidden_when_the_pupils_links_are_dropped() {
    // Arrange: a pupil with a contact of their own, opted out.
    let data = Data::new();
    let own = |pupil: &str| data.own_contacts(pupil);
    let hidden = data
        .pupils
        .iter()
        .find(|p| !own(p).is_empty())
        .unwrap()
        .clone();
    let contacts = own(&hidden);
    let w = world("leaks-contact-unlinked", &["Student", "Contact"], data).await;
    w.opt_out(json!({"studentIds": [hidden]})).await;

    // Act: the pupil's links are dropped (the contacts stay), the opt-out stands.
    let mut data = Data::new();
    data.rows("StudentContacts")
        .retain(|l| l["StudentId"] != hidden.as_str());
    upload_later(&w, &data).await;
    let answer = w.get("Contacts?pageSize=2000").await.expect(StatusCode::OK);

    // Assert
    for contact in &contacts {
        assert!(!mentions(&answer, contact), "{contact}: {answer}");
    }
}

#[tokio::test]
async fn a_future_incident_deleted_early_is_not_listed_for_today_on_its_day() {
    // Arrange: an incident dated in two days, with a pupil who is shown.
    let mut data = Data::new();
    let shown = data.pupils[2].clone();
    let in_two_days = T0.plus(Duration::days(2)).to_xod()[..10].to_owned();
    incidents(&mut data, &shown, &shown);
    data.rows("Conducts")[0]["Date"] = json!(format!("{in_two_days}T10:00:00"));
    let w = world("leaks-future-incident", &["Conduct"], data).await;
    let hash = changeset(&w, "ConductForToday", "").await;

    // Act: it is deleted today; the partner continues on its day.
    let mut data = Data::new();
    incidents(&mut data, &shown, &shown);
    data.rows("Conducts").retain(|c| c["Id"] != "1");
    data.rows("StudentConducts").retain(|l| l["Id"] != "sc-1");
    upload_later(&w, &data).await;
    w.stack.advance(Duration::days(2));
    let token = w.stack.token(&w.partner, &w.management, &w.estab).await;
    let answer = w
        .stack
        .read(
            &token,
            &format!(
                "/api/v1/School/{}/ConductForToday?changedRows={hash}",
                w.estab
            ),
        )
        .await
        .expect(StatusCode::OK);

    // Assert: on the day it was deleted it was not today's.
    assert_eq!(ids(&answer, "Conducts_deleted"), Vec::<String>::new());
}

#[tokio::test]
async fn a_leavers_rows_stay_hidden_whatever_spaces_surround_their_id() {
    // Arrange: a leaver's exclusions, the id written with spaces or a tab around it.
    let mut data = Data::new();
    let leaver = data.pupils[0].clone();
    data.pupil(&leaver)
        .insert("LeavingDate".into(), json!("2020-07-20T00:00:00"));
    data.add(
        "StudentExclusions",
        json!([
            exclusion("ex-1", &leaver),
            exclusion("ex-2", &format!(" {leaver}")),
            exclusion("ex-3", &format!("{leaver}\t")),
        ]),
    );
    let w = world(
        "leaks-padded-leaver",
        &["Student", "StudentExclusions"],
        data,
    )
    .await;

    // Act
    let answer = w.get("StudentExclusions").await.expect(StatusCode::OK);

    // Assert
    assert_eq!(answer["StudentExclusions"], json!([]), "{answer}");
}

#[tokio::test]
async fn rows_about_a_pupil_rollcall_holds_no_record_of_need_include_leavers() {
    // Arrange: an exclusion of a pupil the school's Students does not hold (a leaver the MIS
    // no longer exports, or whose record went longer ago than tombstones are kept).
    let mut data = Data::new();
    let on_roll = data.pupils[1].clone();
    data.add(
        "StudentExclusions",
        json!([
            exclusion("ex-1", UNKNOWN_PUPIL),
            exclusion("ex-2", &on_roll)
        ]),
    );
    let w = world(
        "leaks-unknown-pupil",
        &["Student", "StudentExclusions"],
        data,
    )
    .await;

    // Act
    let default = w.get("StudentExclusions").await.expect(StatusCode::OK);
    let with = w
        .get("StudentExclusions?options=includeLeavers")
        .await
        .expect(StatusCode::OK);

    // Assert: whether they left cannot be told, so they are treated as having left.
    assert_eq!(ids(&default, "StudentExclusions"), ["ex-2"]);
    let mut all = ids(&with, "StudentExclusions");
    all.sort();
    assert_eq!(all, ["ex-1", "ex-2"]);
}
