//! Write-backs on the local stack: a valid request becomes exactly one task the agent takes and
//! answers; invalid ones (two dates, an unknown pupil, an unknown mark, a missing scope) are
//! refused with what to fix and queue nothing; a task whose consent ends before the agent takes
//! it never reaches the agent.

use reqwest::{Method, StatusCode};
use rollcall_core::synthetic;
use serde_json::{Value, json};

use crate::support::{SchoolKeys, Stack};

const ESTAB: &str = "9990008";
const PARTNER: &str = "acme-registers";

struct World {
    stack: Stack,
    school: SchoolKeys,
    token: String,
    pupils: Vec<String>,
    staff: String,
    date: String,
}

async fn world(granted: &[&str]) -> World {
    let stack = Stack::start().await;
    let school = stack.school(ESTAB).await;
    let management = stack
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
        .await;
    let mut body = synthetic::school(ESTAB, 6, 4).upload_body();
    let sets = body["resultSets"].as_object_mut().unwrap();
    let pupils = sets["Students"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["Id"].as_str().unwrap().to_owned())
        .collect();
    let staff = sets["Staff"][0]["Id"].as_str().unwrap().to_owned();
    sets.insert(
        "AttendCodes".into(),
        json!([
            {"Id": "1", "Mark": "/", "Description": "Present (AM)"},
            {"Id": "2", "Mark": "\\", "Description": "Present (PM)"},
            {"Id": "3", "Mark": "L", "Description": "Late"},
        ]),
    );
    stack
        .upload(&school.agent, &body)
        .await
        .expect(StatusCode::OK);
    stack
        .grant(&school, PARTNER, granted)
        .await
        .expect(StatusCode::OK);
    let token = stack.token(PARTNER, &management, ESTAB).await;
    let date = stack.clock_now().to_xod()[..10].to_owned();
    World {
        stack,
        school,
        token,
        pupils,
        staff,
        date,
    }
}

impl World {
    async fn post(&self, path: &str, body: &Value) -> crate::support::Answer {
        self.stack
            .send(
                Method::POST,
                path,
                Some(&format!("Idaas {}", self.token)),
                Some(body.to_string().into_bytes()),
            )
            .await
    }

    async fn agent(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> crate::support::Answer {
        self.stack
            .send(
                method,
                path,
                Some(&format!("Bearer {}", self.school.agent)),
                body.map(|b| b.to_string().into_bytes()),
            )
            .await
    }

    async fn tasks(&self) -> Vec<Value> {
        self.agent(Method::GET, "/agent/v1/tasks", None)
            .await
            .expect(StatusCode::OK)["tasks"]
            .as_array()
            .unwrap()
            .clone()
    }

    fn marks(&self, marks: &[(&str, &str, &str)]) -> Value {
        let marks: Vec<Value> = marks
            .iter()
            .map(|(student, date, mark)| {
                json!({"StudentId": student, "MarkType": "S", "Date": date, "Session": "AM",
                       "Mark": mark, "Notes": "arrived with a parent"})
            })
            .collect();
        json!({ "Marks": marks })
    }
}

#[tokio::test]
async fn a_valid_attendance_post_becomes_exactly_one_task() {
    let w = world(&["Student", "WritebackAttendance"]).await;
    let (a, b) = (w.pupils[0].as_str(), w.pupils[1].as_str());
    let body = w.marks(&[(a, &w.date, "/"), (b, &w.date, "L")]);
    let answer = w
        .post(&format!("/api/v1/AttendanceAsync/{ESTAB}/"), &body)
        .await
        .expect(StatusCode::OK);
    let tracking = answer["TrackingId"].as_str().unwrap().to_owned();
    assert_eq!(answer["Message"], "success");
    assert_eq!(answer["ExceptionMessage"], Value::Null);
    assert_eq!(answer["DataSet"]["trackingid"][0]["trackingid"], tracking);

    let tasks = w.tasks().await;
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
        w.tasks().await.is_empty(),
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
    let pupil = w.pupils[0].as_str();
    let tomorrow = w
        .stack
        .clock_now()
        .plus(rollcall_core::timestamp::Duration::days(1))
        .to_xod()[..10]
        .to_owned();
    let path = format!("/api/v1/Attendance/{ESTAB}/");
    let cases = [
        (
            w.marks(&[(pupil, &w.date, "/"), (pupil, &tomorrow, "/")]),
            "holds marks of 2 dates",
        ),
        (
            w.marks(&[("no-such-pupil", &w.date, "/")]),
            "Marks[0].StudentId: `no-such-pupil` is not a pupil of school 9990008",
        ),
        (
            w.marks(&[(pupil, &w.date, "Q")]),
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
            &w.marks(&[(pupil, &w.date, "/")])
        )
        .await
    );
    elsewhere.expect_error(StatusCode::FORBIDDEN, "not 9990001");
    assert!(w.tasks().await.is_empty());
}

#[tokio::test]
async fn a_write_back_without_its_scope_is_refused() {
    let w = world(&["Student"]).await;
    let body = w.marks(&[(&w.pupils[0], &w.date, "/")]);
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
    assert!(w.tasks().await.is_empty());
}

#[tokio::test]
async fn a_synchronous_conduct_write_back_answers_the_agents_outcome() {
    let w = world(&["Student", "StaffLite", "WritebackConduct"]).await;
    let body = json!({
        "Conducts": [{"Id": 1, "IncidentType": "Ach", "RecordedById": w.staff,
                      "EntryDate": w.date, "TypeId": 4, "Note": "Great piece of work"}],
        "Participants": [{"ConductId": 1, "Points": 10, "StudentId": w.pupils[2]}],
    });
    let post = w.post("/api/v1/Writeback/Conduct", &body);
    let agent = async {
        // The agent polls until the task is there, then reports the MIS id it created.
        let task = loop {
            if let Some(task) = w.tasks().await.pop() {
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
    let body = w.marks(&[(&w.pupils[0], &w.date, "/")]);
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
    assert!(w.tasks().await.is_empty(), "the narrowed consent stops it");
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
