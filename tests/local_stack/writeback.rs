//! Write-backs on the local stack: a valid request becomes exactly one task the agent takes and
//! answers; invalid ones (two dates, an unknown pupil, an unknown mark, a missing scope) are
//! refused with what to fix and queue nothing; a task whose consent ends before the agent takes
//! it never reaches the agent.

use reqwest::{Method, StatusCode};
use rollcall_core::synthetic;
use serde_json::{Value, json};

use crate::world::World;

const ESTAB: &str = "9990008";
const PARTNER: &str = "acme-registers";

async fn world(granted: &[&str]) -> World {
    let mut body = synthetic::school(ESTAB, 6, 4).upload_body();
    body["resultSets"].as_object_mut().unwrap().insert(
        "AttendCodes".into(),
        json!([
            {"Id": "1", "Mark": "/", "Description": "Present (AM)"},
            {"Id": "2", "Mark": "\\", "Description": "Present (PM)"},
            {"Id": "3", "Mark": "L", "Description": "Late"},
        ]),
    );
    World::build(ESTAB)
        .data(body)
        .partner(
            PARTNER,
            &[
                "Student",
                "StaffLite",
                "Attendance",
                "WritebackAttendance",
                "WritebackConduct",
                "EmergeForWeb",
            ],
        )
        .grant(ESTAB, PARTNER, granted)
        .start()
        .await
}

/// The school's open tasks, as its agent takes them.
async fn open_tasks(w: &World) -> Vec<Value> {
    w.agent(Method::GET, "/agent/v1/tasks", None)
        .await
        .expect(StatusCode::OK)["tasks"]
        .as_array()
        .unwrap()
        .clone()
}

/// An attendance write-back body of session marks: (pupil, date, mark) each.
fn marks(marks: &[(&str, &str, &str)]) -> Value {
    let marks: Vec<Value> = marks
        .iter()
        .map(|(student, date, mark)| {
            json!({"StudentId": student, "MarkType": "S", "Date": date, "Session": "AM",
                   "Mark": mark, "Notes": "arrived with a parent"})
        })
        .collect();
    json!({ "Marks": marks })
}

#[tokio::test]
async fn a_valid_attendance_post_becomes_exactly_one_task() {
    let w = world(&["Student", "WritebackAttendance"]).await;
    let pupils = w.pupils();
    let date = w.today();
    let (a, b) = (pupils[0].as_str(), pupils[1].as_str());
    let body = marks(&[(a, &date, "/"), (b, &date, "L")]);
    let answer = w
        .post(&format!("/api/v1/AttendanceAsync/{ESTAB}/"), &body)
        .await
        .expect(StatusCode::OK);
    let tracking = answer["TrackingId"].as_str().unwrap().to_owned();
    assert_eq!(answer["Message"], "success");
    assert_eq!(answer["ExceptionMessage"], Value::Null);
    assert_eq!(answer["DataSet"]["trackingid"][0]["trackingid"], tracking);

    let tasks = open_tasks(&w).await;
    assert_eq!(tasks.len(), 1, "{tasks:?}");
    assert_eq!(tasks[0]["id"], tracking);
    assert_eq!(tasks[0]["kind"], "Writeback.AttendanceAsync");
    assert_eq!(tasks[0]["partner"], PARTNER);
    let marks = tasks[0]["payload"]["Marks"].as_array().unwrap();
    assert_eq!(marks.len(), 2);
    assert_eq!(marks[1]["StudentId"], b);
    assert_eq!(marks[1]["Mark"], "L");

    // The payload is sealed at rest: the note is nowhere on disk in clear.
    let note = b"arrived with a parent";
    let on_disk = w.stack.snapshot();
    assert!(
        !on_disk
            .values()
            .any(|bytes| bytes.windows(note.len()).any(|win| win == note)),
        "a write-back's note is stored in clear"
    );

    let status = format!("/api/v1/Writeback/Status/{tracking}");
    let read = w.stack.read(&w.token, &status).await.expect(StatusCode::OK);
    assert_eq!(read["Writeback"][0]["Status"], "Delivered");
    w.agent(
        Method::POST,
        &format!("/agent/v1/tasks/{tracking}/result"),
        Some(json!({"succeeded": true, "result": [{"marks": 2}]})),
    )
    .await
    .expect(StatusCode::OK);
    let read = w.stack.read(&w.token, &status).await.expect(StatusCode::OK);
    assert_eq!(read["Writeback"][0]["Status"], "Succeeded");
    assert_eq!(read["Writeback"][0]["Result"], json!([{"marks": 2}]));
    assert!(
        open_tasks(&w).await.is_empty(),
        "a finished task is not handed out again"
    );
    w.agent(
        Method::POST,
        &format!("/agent/v1/tasks/{tracking}/result"),
        Some(json!({"succeeded": false, "message": "again"})),
    )
    .await
    .expect_error(StatusCode::CONFLICT, "already has an outcome");
}

#[tokio::test]
async fn invalid_attendance_posts_are_refused_and_queue_nothing() {
    let w = world(&["Student", "Attendance", "WritebackAttendance"]).await;
    let pupils = w.pupils();
    let date = w.today();
    let pupil = pupils[0].as_str();
    let tomorrow = w
        .stack
        .clock_now()
        .plus(rollcall_core::timestamp::Duration::days(1))
        .to_xod()[..10]
        .to_owned();
    let path = format!("/api/v1/Attendance/{ESTAB}/");
    let cases = [
        (
            marks(&[(pupil, &date, "/"), (pupil, &tomorrow, "/")]),
            "holds marks of 2 dates",
        ),
        (
            marks(&[("no-such-pupil", &date, "/")]),
            "Marks[0].StudentId: `no-such-pupil` is not a pupil of school 9990008",
        ),
        (
            marks(&[(pupil, &date, "Q")]),
            "Marks[0].Mark: `Q` is not an attendance mark of school 9990008",
        ),
        (json!({"Marks": []}), "Marks: is empty"),
    ];
    for (body, expected) in cases {
        let answer = unchanged!(w, w.post(&path, &body).await);
        answer.expect_error(StatusCode::UNPROCESSABLE_ENTITY, expected);
        assert!(answer.message().contains("was not queued"));
    }
    let malformed = unchanged!(
        w,
        w.stack
            .send(
                Method::POST,
                &path,
                Some(&format!("Idaas {}", w.token)),
                Some(b"{\"Marks\": [".to_vec()),
            )
            .await
    );
    malformed.expect_error(StatusCode::BAD_REQUEST, "not valid JSON");
    let elsewhere = unchanged!(
        w,
        w.post(
            "/api/v1/Attendance/9990001/",
            &marks(&[(pupil, &date, "/")])
        )
        .await
    );
    elsewhere.expect_error(StatusCode::FORBIDDEN, "not 9990001");
    assert!(open_tasks(&w).await.is_empty());
}

#[tokio::test]
async fn a_write_back_without_its_scope_is_refused() {
    let w = world(&["Student"]).await;
    let pupils = w.pupils();
    let date = w.today();
    let body = marks(&[(&pupils[0], &date, "/")]);
    let answer = unchanged!(
        w,
        w.post(&format!("/api/v1/Attendance/{ESTAB}/"), &body).await
    );
    answer.expect_error(StatusCode::FORBIDDEN, "WritebackAttendance");
    assert!(answer.message().contains("Nothing was queued"));
    let conduct = unchanged!(
        w,
        w.post(DETENTION, &json!({"Detentions": [{"StudentId": "1"}]}))
            .await
    );
    conduct.expect_error(StatusCode::FORBIDDEN, "WritebackConduct");
    assert!(open_tasks(&w).await.is_empty());
}

#[tokio::test]
async fn a_synchronous_conduct_write_back_answers_the_agents_outcome() {
    let w = world(&["Student", "StaffLite", "WritebackConduct"]).await;
    let pupils = w.pupils();
    let date = w.today();
    let staff = w.uploaded_values("Staff", "Id")[0].clone();
    let body = json!({
        "Conducts": [{"Id": 1, "IncidentType": "Ach", "RecordedById": staff,
                      "EntryDate": date, "TypeId": 4, "Note": "Great piece of work"}],
        "Participants": [{"ConductId": 1, "Points": 10, "StudentId": pupils[2]}],
    });
    let post = w.post("/api/v1/Writeback/Conduct", &body);
    let agent = async {
        // The agent polls until the task is there, then reports the MIS id it created.
        let task = loop {
            if let Some(task) = open_tasks(&w).await.pop() {
                break task;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        };
        assert_eq!(task["kind"], "Writeback.Conduct");
        assert_eq!(task["payload"]["Participants"][0]["Points"], 10);
        let id = task["id"].as_str().unwrap().to_owned();
        w.agent(
            Method::POST,
            &format!("/agent/v1/tasks/{id}/result"),
            Some(json!({"succeeded": true, "result": [{"IncidentId": 1, "ActualId": 1811}]})),
        )
        .await
        .expect(StatusCode::OK);
    };
    let (answer, ()) = tokio::join!(post, agent);
    let answer = answer.expect(StatusCode::OK);
    assert_eq!(answer["Message"], "success");
    assert_eq!(answer["result"][0]["ActualId"], 1811);
}

#[tokio::test]
async fn a_task_whose_consent_ended_is_never_handed_to_the_agent() {
    let w = world(&["Student", "WritebackAttendance"]).await;
    let pupils = w.pupils();
    let date = w.today();
    let body = marks(&[(&pupils[0], &date, "/")]);
    let tracking = w
        .post(&format!("/api/v1/AttendanceAsync/{ESTAB}"), &body)
        .await
        .expect(StatusCode::OK)["TrackingId"]
        .as_str()
        .unwrap()
        .to_owned();
    w.stack
        .grant(&w.school, PARTNER, &["Student"])
        .await
        .expect(StatusCode::OK);
    assert!(
        open_tasks(&w).await.is_empty(),
        "the narrowed consent stops it"
    );
    let status = w
        .stack
        .read(&w.token, &format!("/api/v1/Writeback/Status/{tracking}"))
        .await
        .expect(StatusCode::OK);
    assert_eq!(status["Writeback"][0]["Status"], "Failed");
    assert!(
        status["Writeback"][0]["Error"]
            .as_str()
            .unwrap()
            .contains("no longer grants WritebackAttendance")
    );
}

#[tokio::test]
async fn a_task_naming_someone_opted_out_or_unreadable_since_it_was_queued_never_reaches_the_agent()
{
    let w = world(&[
        "Student",
        "StaffLite",
        "WritebackAttendance",
        "WritebackConduct",
    ])
    .await;
    let pupils = w.pupils();
    let staff = w.uploaded_values("Staff", "Id");
    let queue = |path: String, body: Value| {
        let w = &w;
        async move {
            w.post(&path, &body).await.expect(StatusCode::OK)["TrackingId"]
                .as_str()
                .unwrap()
                .to_owned()
        }
    };
    let conduct = |recorded_by: &str, pupil: &str| {
        json!({"Conducts": [{"Id": 1, "IncidentType": "Ach", "RecordedById": recorded_by,
                             "EntryDate": w.today(), "TypeId": 4}],
               "Participants": [{"ConductId": 1, "StudentId": pupil, "Points": 1}]})
    };
    let attendance = format!("/api/v1/AttendanceAsync/{ESTAB}");
    let about_pupil = queue(attendance.clone(), marks(&[(&pupils[0], &w.today(), "/")])).await;
    let about_staff = queue(
        "/api/v1/Writeback/ConductAsync".into(),
        conduct(&staff[0], &pupils[1]),
    )
    .await;
    let about_others = queue(attendance, marks(&[(&pupils[2], &w.today(), "/")])).await;

    // The school opts the first pupil and the first member of staff out.
    w.opt_out(json!({"studentIds": [pupils[0]], "staffIds": [staff[0]]}))
        .await;
    let handed: Vec<String> = (open_tasks(&w).await.iter())
        .map(|t| t["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(handed, [about_others]);
    for tracking in [&about_pupil, &about_staff] {
        let status = (w.stack)
            .read(&w.token, &format!("/api/v1/Writeback/Status/{tracking}"))
            .await
            .expect(StatusCode::OK);
        assert_eq!(status["Writeback"][0]["Status"], "Failed");
        let error = status["Writeback"][0]["Error"].as_str().unwrap();
        assert!(
            error.contains("opted out someone the write-back names"),
            "{error}"
        );
        assert!(
            !error.contains(&pupils[0]) && !error.contains(&staff[0]),
            "{error}"
        );
    }

    // A task queued while the partner could read who pupils are is not handed over once it
    // cannot, though the write-back's own scope is still granted.
    let queued = queue(
        format!("/api/v1/AttendanceAsync/{ESTAB}"),
        marks(&[(&pupils[3], &w.today(), "/")]),
    )
    .await;
    (w.stack
        .grant(&w.school, PARTNER, &["WritebackAttendance"])
        .await)
        .expect(StatusCode::OK);
    assert!(open_tasks(&w).await.is_empty());
    let token = w.new_token().await;
    let status = (w.stack)
        .read(&token, &format!("/api/v1/Writeback/Status/{queued}"))
        .await
        .expect(StatusCode::OK);
    let error = status["Writeback"][0]["Error"].as_str().unwrap();
    assert!(error.contains("no longer lets"), "{error}");
}

/// The agent takes a write-back into its outbox once, reports the result the MIS side left
/// there, and the partner then reads that it succeeded.
#[tokio::test]
async fn the_agent_writes_a_task_to_its_outbox_once_and_reports_its_result() {
    use rollcall_agent::config::Config;
    use rollcall_agent::run::{Options, run};

    let w = world(&["Student", "WritebackAttendance"]).await;
    let pupils = w.pupils();
    let date = w.today();
    let body = marks(&[(pupils[0].as_str(), &date, "/")]);
    let tracking = w
        .post(&format!("/api/v1/AttendanceAsync/{ESTAB}/"), &body)
        .await
        .expect(StatusCode::OK)["TrackingId"]
        .as_str()
        .unwrap()
        .to_owned();

    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("exports");
    std::fs::create_dir(&source).unwrap();
    std::fs::write(
        source.join("AttendCodes.csv"),
        "Id,Mark,Description\n1,/,Present (AM)\n",
    )
    .unwrap();
    let config_path = dir.path().join("rollcall-agent.toml");
    let config = Config {
        url: w.stack.base.clone(),
        key: w.school.agent.clone(),
        source,
        estab: None,
        outbox: None,
    };
    let server = rollcall_agent::Server::new(
        &w.stack.base,
        &w.school.agent,
        std::time::Duration::from_secs(5),
    );
    let pass = || async {
        let mut out = Vec::new();
        run(&config_path, &config, &server, Options::default(), &mut out)
            .await
            .unwrap()
    };
    let outbox = dir.path().join("outbox");
    let first = pass().await;
    assert_eq!(first.tasks_written, 1);
    let task: Value =
        serde_json::from_slice(&std::fs::read(outbox.join(format!("{tracking}.json"))).unwrap())
            .unwrap();
    assert_eq!(task["kind"], "Writeback.AttendanceAsync");
    assert_eq!(task["payload"]["Marks"][0]["StudentId"], pupils[0].as_str());
    assert_eq!(pass().await.tasks_written, 0, "a task is written once");

    std::fs::create_dir_all(outbox.join("results")).unwrap();
    std::fs::write(
        outbox.join("results").join(format!("{tracking}.json")),
        json!({"succeeded": true, "result": [{"marks": 1}]}).to_string(),
    )
    .unwrap();
    let reported = pass().await;
    assert_eq!(reported.results_reported, 1);
    assert!(
        outbox
            .join("done")
            .join(format!("{tracking}.json"))
            .exists()
    );
    assert!(
        outbox
            .join("done")
            .join(format!("{tracking}.result.json"))
            .exists()
    );
    assert!(!outbox.join(format!("{tracking}.json")).exists());
    let status = format!("/api/v1/Writeback/Status/{tracking}");
    let read = w.stack.read(&w.token, &status).await.expect(StatusCode::OK);
    assert_eq!(read["Writeback"][0]["Status"], "Succeeded");
    let last = pass().await;
    assert_eq!((last.tasks_written, last.results_reported), (0, 0));
}

const DETENTION: &str = "/api/v1/Writeback/?id=efw.Detention";
const SEATING_PLAN: &str = "/api/v1/Writeback/SeatingPlan";

/// A detention of `pupil` today, set by `staff`.
fn detention(w: &World, pupil: &str, staff: &str) -> Value {
    json!({"Detentions": [{"StudentId": pupil, "Date": w.today(), "StartTime": "15:30",
                           "EndTime": "16:15", "SetById": staff, "Reason": "Late"}]})
}

/// A seating plan of `pupils`, one to a desk along the first row.
fn seating_plan(pupils: &[&str]) -> Value {
    let seats: Vec<Value> = (pupils.iter().enumerate())
        .map(|(n, pupil)| json!({"StudentId": pupil, "SeatRow": 1, "SeatColumn": n + 1}))
        .collect();
    json!({"GroupId": "7A/Ma1", "RoomId": "M4", "Seats": seats})
}

#[tokio::test]
async fn a_detention_or_seating_plan_naming_an_opted_out_pupil_anywhere_is_refused() {
    // Arrange: the first pupil is opted out for this partner.
    let w = world(&["Student", "StaffLite", "WritebackConduct", "EmergeForWeb"]).await;
    let pupils = w.pupils();
    let (hidden, shown) = (pupils[0].as_str(), pupils[1].as_str());
    let staff = w.uploaded_values("Staff", "Id")[0].clone();
    w.opt_out(json!({"studentIds": [hidden]})).await;

    // Act and assert: the opted-out pupil is refused as an unknown one is; a key rollcall
    // does not know, or an id that is not text or a number, is refused too, so no body can
    // carry a pupil past the check.
    let with = |mut body: Value, pointer: &str, key: &str, value: Value| {
        body.pointer_mut(pointer).unwrap()[key] = value;
        body
    };
    let refused_as_unknown = [
        (DETENTION, detention(&w, hidden, &staff)),
        (DETENTION, detention(&w, &format!(" {hidden} "), &staff)),
        (DETENTION, detention(&w, "99999", &staff)),
        (SEATING_PLAN, seating_plan(&[shown, hidden])),
    ];
    for (path, body) in refused_as_unknown {
        let answer = unchanged!(w, w.post(path, &body).await);
        answer.expect_error(StatusCode::UNPROCESSABLE_ENTITY, "is not a pupil of school");
    }
    let smuggled = [
        (
            DETENTION,
            with(
                detention(&w, shown, &staff),
                "",
                "Student_Id",
                json!(hidden),
            ),
        ),
        (
            DETENTION,
            with(
                detention(&w, shown, &staff),
                "/Detentions/0",
                "Pupil",
                json!(hidden),
            ),
        ),
        (
            DETENTION,
            with(
                detention(&w, shown, &staff),
                "",
                "Students",
                json!([{"Id": hidden}]),
            ),
        ),
        (
            SEATING_PLAN,
            with(seating_plan(&[shown]), "/Seats/0", "PupilId", json!(hidden)),
        ),
        (
            SEATING_PLAN,
            with(
                seating_plan(&[shown]),
                "",
                "Notes",
                json!({"StudentId": hidden}),
            ),
        ),
    ];
    for (path, body) in smuggled {
        let answer = unchanged!(w, w.post(path, &body).await);
        answer.expect_error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "is not a field rollcall knows",
        );
    }
    let not_an_id = [
        (DETENTION, detention(&w, shown, &staff), "/Detentions/0"),
        (SEATING_PLAN, seating_plan(&[shown]), "/Seats/0"),
    ];
    for (path, body, record) in not_an_id {
        for id in [json!({"v": hidden}), json!([hidden]), json!(true)] {
            let answer = unchanged!(
                w,
                w.post(path, &with(body.clone(), record, "StudentId", id))
                    .await
            );
            answer.expect_error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "must be a non-empty string",
            );
        }
    }
    assert!(open_tasks(&w).await.is_empty());

    // The same bodies about a pupil the partner may write about are queued, as rollcall
    // checked them and nothing else.
    w.post(DETENTION, &detention(&w, shown, &staff))
        .await
        .expect(StatusCode::OK);
    w.post(SEATING_PLAN, &seating_plan(&[shown, pupils[2].as_str()]))
        .await
        .expect(StatusCode::OK);
    let tasks = open_tasks(&w).await;
    assert_eq!(tasks.len(), 2);
    let seated = tasks
        .iter()
        .find(|t| t["kind"] == "Writeback.SeatingPlan")
        .expect("the seating plan is queued");
    assert_eq!(
        seated["payload"]["Seats"][1]["StudentId"],
        pupils[2].as_str()
    );
    assert_eq!(seated["payload"]["Seats"][1]["SeatColumn"], 2);
}

#[tokio::test]
async fn a_seating_plan_or_detention_needs_the_consent_to_read_pupils_before_any_id_is_checked() {
    // Without it, a refusal or an acceptance would tell the partner which ids are pupils.
    let w = world(&["WritebackConduct", "EmergeForWeb", "StaffLite"]).await;
    let staff = w.uploaded_values("Staff", "Id")[0].clone();
    for (path, body) in [
        (DETENTION, detention(&w, "99999", &staff)),
        (SEATING_PLAN, seating_plan(&["99999"])),
    ] {
        let answer = unchanged!(w, w.post(path, &body).await);
        answer.expect_error(StatusCode::FORBIDDEN, "names students by id");
        assert!(!answer.message().contains("99999"), "{}", answer.message());
    }
    assert!(open_tasks(&w).await.is_empty());
}

#[tokio::test]
async fn a_detention_or_seating_plan_lists_every_problem_with_its_place() {
    let w = world(&["Student", "StaffLite", "WritebackConduct", "EmergeForWeb"]).await;
    let pupils = w.pupils();
    let staff = w.uploaded_values("Staff", "Id")[0].clone();
    let mut body = detention(&w, &pupils[0], &staff);
    body["Detentions"][0]["EndTime"] = json!("15:00");
    body["Detentions"][0]["StartTime"] = json!("25:00");
    body["Detentions"][0]["SupervisorId"] = json!("no-such-teacher");
    let answer = unchanged!(w, w.post(DETENTION, &body).await);
    for expected in [
        "Detentions[0].StartTime: `25:00` is not a time; write it HH:mm",
        "Detentions[0].SupervisorId: `no-such-teacher` is not a member of staff",
    ] {
        assert!(
            answer.message().contains(expected),
            "{expected} not in {}",
            answer.message()
        );
    }
    let mut plan = seating_plan(&[&pupils[0], &pupils[1]]);
    plan["Seats"][1]["SeatColumn"] = json!(1);
    plan["Seats"][0]["SeatRow"] = json!(0);
    plan["Seats"][0]["SeatColumn"] = json!(1);
    plan["Seats"][1]["SeatRow"] = json!(1);
    plan["Seats"][1]["studentid"] = json!(pupils[1]);
    let answer = unchanged!(w, w.post(SEATING_PLAN, &plan).await);
    for expected in [
        "Seats[0].SeatRow: 0 is out of range; count from 1",
        "Seats[1].studentid: is given twice (in two cases)",
    ] {
        assert!(
            answer.message().contains(expected),
            "{expected} not in {}",
            answer.message()
        );
    }
    assert!(open_tasks(&w).await.is_empty());
}

#[tokio::test]
async fn a_write_back_nested_deeper_than_the_agent_reads_is_refused_and_queues_nothing() {
    let w = world(&["Student", "WritebackAttendance"]).await;
    let pupils = w.pupils();
    let mut body = marks(&[(pupils[0].as_str(), &w.today(), "/")]);
    let mut nested = json!({ "StudentId": pupils[0] });
    for _ in 0..40 {
        nested = json!({ "a": nested });
    }
    body["Marks"][0]["Extra"] = nested;
    let refused = unchanged!(
        w,
        w.post(&format!("/api/v1/AttendanceAsync/{ESTAB}"), &body)
            .await
    );
    refused.expect_error(StatusCode::UNPROCESSABLE_ENTITY, "nests 44 levels deep");
    assert!(open_tasks(&w).await.is_empty());
}
