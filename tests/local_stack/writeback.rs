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
        w.post(
            "/api/v1/Writeback/?id=efw.Detention",
            &json!({"StudentId": "1"})
        )
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

#[tokio::test]
async fn a_detention_about_an_opted_out_or_unknown_pupil_is_refused_as_the_others_are() {
    // Arrange: the first pupil is opted out for this partner.
    let w = world(&["Student", "WritebackConduct"]).await;
    let pupils = w.pupils();
    let (hidden, shown) = (&pupils[0], &pupils[1]);
    w.opt_out(json!({"studentIds": [hidden]})).await;
    const DETENTION: &str = "/api/v1/Writeback/?id=efw.Detention";

    // Act and assert: the opted-out pupil is refused as an unknown one, wherever the body
    // names them (a field, a list in a nested record, a padded id).
    for body in [
        json!({"StudentId": hidden, "Date": w.today(), "Reason": "Late"}),
        json!({"StudentId": "99999", "Date": w.today()}),
        json!({"Detentions": [{"PupilIds": [shown, format!(" {hidden} ")]}]}),
    ] {
        let answer = unchanged!(w, w.post(DETENTION, &body).await);
        answer.expect_error(StatusCode::UNPROCESSABLE_ENTITY, "is not a pupil of school");
    }
    assert!(open_tasks(&w).await.is_empty());
    w.post(
        DETENTION,
        &json!({"StudentId": shown, "Date": w.today(), "Reason": "Late"}),
    )
    .await
    .expect(StatusCode::OK);
    assert_eq!(open_tasks(&w).await.len(), 1);
}

#[tokio::test]
async fn a_detention_refusal_names_no_id_without_the_consent_to_read_pupils() {
    let w = world(&["WritebackConduct"]).await;
    let answer = unchanged!(
        w,
        w.post(
            "/api/v1/Writeback/?id=efw.Detention",
            &json!({"StudentId": "99999"})
        )
        .await
    );
    answer.expect_error(
        StatusCode::UNPROCESSABLE_ENTITY,
        "one or more are not a pupil",
    );
    assert!(!answer.message().contains("99999"), "{}", answer.message());
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
