//! The wider XoD surface on the local stack: filters, required parameters, option columns,
//! the ...ForToday views and the endpoints rollcall computes (Counts, Health, a pupil's
//! timetable), each with the errors a partner sees when a call is wrong.

use reqwest::StatusCode;
use rollcall_core::synthetic;
use serde_json::{Value, json};

use crate::support::Stack;
use crate::world::World;

const ESTAB: &str = "9990006";
const PARTNER: &str = "acme-behaviour";

async fn world() -> World {
    let stack = Stack::start().await;
    let scopes = ["Student", "School", "Conduct", "StudentDemographic"];
    let today = stack.clock_now().to_xod()[..10].to_owned();
    let week_ago = stack
        .clock_now()
        .minus(rollcall_core::timestamp::Duration::days(7))
        .to_xod()[..10]
        .to_owned();
    let mut body = synthetic::school(ESTAB, 12, 9).upload_body();
    let sets = body["resultSets"].as_object_mut().unwrap();
    let pupil = sets["Students"][0]["Id"].clone();
    let group = sets["StudentMembers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["StudentId"] == pupil)
        .unwrap()["GroupId"]
        .clone();
    sets.insert(
        "Conducts".into(),
        json!([
            {"Id": "1", "ConductId": "Beh.1", "Date": format!("{today}T10:00:00"), "Category": "Beh"},
            {"Id": "2", "ConductId": "Ach.2", "Date": format!("{week_ago}T10:00:00"), "Category": "Ach"},
        ]),
    );
    sets.insert(
        "StudentConducts".into(),
        json!([
            {"Id": "s1", "StudentId": pupil, "ConductId": "1", "Points": 2},
            {"Id": "s2", "StudentId": "someone-else", "ConductId": "2", "Points": 5},
        ]),
    );
    sets.insert("StaffConducts".into(), json!([]));
    sets.insert(
        "Lessons".into(),
        json!([
            {"Id": "L1", "PeriodId": "P1", "ClassId": group, "StartDateTime": format!("{today}T09:00:00"), "SubjectName": "History"},
            {"Id": "L2", "PeriodId": "P2", "ClassId": "no-such-group", "StartDateTime": format!("{today}T10:00:00")},
        ]),
    );
    sets.insert("LessonStaff".into(), json!([]));
    World::build(ESTAB)
        .data(body)
        .partner(PARTNER, &scopes)
        .grant(ESTAB, PARTNER, &["Student", "School", "Conduct"])
        .on(stack)
        .await
}

fn ids(answer: &Value, set: &str) -> Vec<String> {
    answer[set]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["Id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn filters_narrow_rows_and_required_ones_are_asked_for() {
    let w = world().await;
    let all = w.get("Students").await.expect(StatusCode::OK);
    let year = all["Students"][0]["YearGroupId"]
        .as_str()
        .unwrap()
        .to_owned();
    let in_year = w
        .get(&format!("Students?yeargroupid={year}"))
        .await
        .expect(StatusCode::OK);
    let expected: Vec<&Value> = all["Students"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["YearGroupId"] == year.as_str())
        .collect();
    assert_eq!(
        in_year["Students"].as_array().unwrap().len(),
        expected.len()
    );
    assert!(expected.len() < 12, "the filter narrowed the answer");

    let range = w
        .get(&format!(
            "ConductForDateRange?DateFrom={0}&DateTo={0}",
            w.today()
        ))
        .await
        .expect(StatusCode::OK);
    assert_eq!(ids(&range, "Conducts"), ["1"]);
    assert_eq!(
        ids(&range, "StudentConducts"),
        ["s1"],
        "linked rows follow the page"
    );
    w.get("ConductForDateRange?DateFrom=2020-01-01")
        .await
        .expect_error(
            StatusCode::BAD_REQUEST,
            "needs the parameter DateTo (a date, yyyy-mm-dd)",
        );
    w.get("ConductForDateRange?DateFrom=yesterday&DateTo=2030-01-01")
        .await
        .expect_error(
            StatusCode::BAD_REQUEST,
            "is not a date; write it yyyy-mm-dd",
        );
    let category = w
        .get("ConductForDateRange?DateFrom=2000-01-01&DateTo=2100-01-01&conductCategory=ach")
        .await
        .expect(StatusCode::OK);
    assert_eq!(ids(&category, "Conducts"), ["2"]);
}

#[tokio::test]
async fn filters_through_linked_sets_and_today_views() {
    let w = world().await;
    let pupil = w.get("Students").await.expect(StatusCode::OK)["Students"][0]["Id"]
        .as_str()
        .unwrap()
        .to_owned();
    let of_pupil = w
        .get(&format!(
            "ConductForDateRange?DateFrom=2000-01-01&DateTo=2100-01-01&StudentId={pupil}"
        ))
        .await
        .expect(StatusCode::OK);
    assert_eq!(ids(&of_pupil, "Conducts"), ["1"]);
    let today = w.get("ConductForToday").await.expect(StatusCode::OK);
    assert_eq!(ids(&today, "Conducts"), ["1"], "only today's incident");
    let row = today["Conducts"][0].as_object().unwrap();
    assert!(row.contains_key("Category") && !row.contains_key("OutcomeDate"));
}

#[tokio::test]
async fn options_add_columns_and_unknown_ones_are_listed() {
    let w = world().await;
    let plain = w.get("Students").await.expect(StatusCode::OK);
    assert!(plain["Students"][0].get("GroupIds").is_none());
    let with = w
        .get("Students?options=includeGroupIds")
        .await
        .expect(StatusCode::OK);
    assert!(with["Students"][0].get("GroupIds").is_some());
    w.get("Students?options=includeEverything")
        .await
        .expect_error(
            StatusCode::BAD_REQUEST,
            "valid options: includeAttMarkString",
        );
}

#[tokio::test]
async fn refused_calls_name_the_problem_and_change_nothing() {
    let w = world().await;
    let before = w.stack.snapshot();
    w.get("ConductForDateRange")
        .await
        .expect_error(StatusCode::BAD_REQUEST, "needs the parameter DateFrom");
    w.get("Students/1?id=2")
        .await
        .expect_error(StatusCode::BAD_REQUEST, "the id is given twice");
    w.get("StaffAbsence")
        .await
        .expect_error(StatusCode::FORBIDDEN, "StaffAbsence");
    assert_eq!(before, w.stack.snapshot());
}

#[tokio::test]
async fn computed_endpoints_count_report_and_timetable() {
    let w = world().await;
    let counts = w.get("Counts").await.expect(StatusCode::OK);
    let students = counts["Counts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["Area"] == "Students")
        .unwrap();
    assert_eq!(students["Count"], 12);

    let health = w.get("Health").await.expect(StatusCode::OK);
    let status = |set: &str| {
        health["Health"]
            .as_array()
            .unwrap()
            .iter()
            .find(|h| h["ResultSet"] == set)
            .unwrap()["Status"]
            .clone()
    };
    assert_eq!(status("Students"), "OK");
    assert_eq!(status("Behaviour"), "Missing");
    let listed = |set: &str| {
        health["Health"]
            .as_array()
            .unwrap()
            .iter()
            .any(|h| h["ResultSet"] == set)
    };
    assert!(
        !listed("Photos"),
        "Health describes only sets the consent releases"
    );
    let counted = |area: &str| {
        counts["Counts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["Area"] == area)
    };
    assert!(
        !counted("Photos") && !counted("Contacts"),
        "Counts covers only released sets"
    );

    let pupil = w.get("Students").await.expect(StatusCode::OK)["Students"][0]["Id"]
        .as_str()
        .unwrap()
        .to_owned();
    let timetable = w
        .get(&format!("TimetableForStudent/{pupil}"))
        .await
        .expect(StatusCode::OK);
    assert_eq!(ids(&timetable, "Timetable"), ["P1"]);
    assert_eq!(timetable["Timetable"][0]["LessonId"], "L1");
    assert_eq!(
        timetable["Timetable"][0]["Date"],
        format!("{}T00:00:00", w.today())
    );
    w.get("TimetableForStudent")
        .await
        .expect_error(StatusCode::BAD_REQUEST, "needs the id of the pupil");
    w.get("Counts?changedRows=*").await.expect_error(
        StatusCode::BAD_REQUEST,
        "is computed from other result sets",
    );
}
