//! Crash consistency: a fault-injecting wrapper of the writing ports
//! ([`rollcall_infra::testing::inject_faults`]) fails the k-th write of an upload, a consent
//! change, an opt-out change, an agent's task report and a purge, for every k until one runs
//! through. After each failure the last good state is what is served (never half of the
//! change), the retry completes exactly once, and once the purge has run no object is left
//! that no version record names.

use std::collections::BTreeSet;

use reqwest::{Method, StatusCode};
use rollcall_core::model::{Estab, PartnerId};
use rollcall_core::synthetic;
use serde_json::{Value, json};

use crate::support::Stack;

const ESTAB: &str = "9990301";
const PARTNER: &str = "crash-partner";
const SCOPES: &[&str] = &[
    "Student",
    "StudentExtended",
    "Contact",
    "WritebackAttendance",
];
/// More writes than any of these calls makes: a k past the last write ends the loop first.
const MAX_WRITES: usize = 200;

struct Setup {
    stack: Stack,
    plan: std::sync::Arc<rollcall_infra::testing::FaultPlan>,
    agent: String,
    admin: String,
    management: String,
    token: String,
    body: Value,
}

async fn setup() -> Setup {
    let (stack, plan) = Stack::start_faulty().await;
    let school = stack.school(ESTAB).await;
    let management = stack.partner(PARTNER, SCOPES).await;
    let mut body = synthetic::school(ESTAB, 6, 5).upload_body();
    body["resultSets"]["AttendCodes"] = json!([{"Id": "1", "Mark": "/", "Description": "Present"}]);
    stack
        .upload(&school.agent, &body)
        .await
        .expect(StatusCode::OK);
    stack
        .grant(&school, PARTNER, SCOPES)
        .await
        .expect(StatusCode::OK);
    let token = stack.token(PARTNER, &management, ESTAB).await;
    Setup {
        stack,
        plan,
        agent: school.agent,
        admin: school.admin,
        management,
        token,
        body,
    }
}

/// The agent's upload of `body`, under the Idempotency-Key it keeps for a retry.
async fn upload(s: &Setup, body: &Value) -> crate::support::Answer {
    s.stack
        .send_with(
            Method::POST,
            "/agent/v1/extracts",
            Some(&format!("Bearer {}", s.agent)),
            &[("idempotency-key", "crash-upload-2")],
            Some(body.to_string().into_bytes()),
        )
        .await
}

fn students() -> String {
    format!("/api/v1/School/{ESTAB}/Students")
}

/// Every object no version record names.
async fn orphans(stack: &Stack) -> Vec<String> {
    let records = stack.ports.control.disposal.all_versions().await.unwrap();
    let prefixes: BTreeSet<String> = records.iter().map(|r| r.object_prefix()).collect();
    stack
        .objects_of(ESTAB)
        .await
        .into_iter()
        .filter(|key| !prefixes.iter().any(|p| key.starts_with(p.as_str())))
        .collect()
}

/// A write that failed is answered as rollcall's store being unavailable, which says to try
/// again, and never as the caller's mistake.
fn assert_unavailable(answer: &crate::support::Answer, what: &str) {
    assert_eq!(
        answer.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{what}: {}",
        answer.body
    );
    assert!(
        answer.message().contains("try again"),
        "{what}: {}",
        answer.message()
    );
}

/// Runs `case` for k = 1, 2, ... until the k-th write is past the call's last: each case
/// gets a fresh stack. Answers how many k failed a write.
async fn every_k<F, Fut>(case: F) -> usize
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for k in 1..MAX_WRITES {
        if !case(k).await {
            return k - 1;
        }
    }
    panic!("more than {MAX_WRITES} writes");
}

/// Says how many fault points a call was tried with (for the notes of a run).
fn report(call: &str, points: usize) {
    eprintln!("crash consistency: {call} failed at each of its {points} writes");
}

#[tokio::test]
async fn an_upload_that_fails_at_any_write_leaves_the_last_version_and_its_retry_lands_once() {
    let changed = |body: &Value| {
        let mut changed = body.clone();
        changed["resultSets"]["Students"][0]["Forename"] = json!("Changed");
        changed
    };
    let failed = every_k(|k| async move {
        let s = setup().await;
        let changed = changed(&s.body);
        let before = s
            .stack
            .read(&s.token, &students())
            .await
            .expect(StatusCode::OK);
        s.plan.fail_write(k);
        let answer = upload(&s, &changed).await;
        if !s.plan.failed() {
            answer.expect(StatusCode::OK);
            return false;
        }
        s.plan.off();
        let what = format!("upload failing at write {k}");
        assert_unavailable(&answer, &what);
        let now = s
            .stack
            .read(&s.token, &students())
            .await
            .expect(StatusCode::OK);
        // The agent retries under the same key: it lands, once.
        upload(&s, &changed).await.expect(StatusCode::OK);
        let after = s
            .stack
            .read(&s.token, &students())
            .await
            .expect(StatusCode::OK);
        let what_after = format!("{what}: after the retry");
        assert_eq!(after["Students"][0]["Forename"], "Changed", "{what_after}");
        assert!(
            now["Students"] == before["Students"] || now["Students"] == after["Students"],
            "{what}: a half-made version was served"
        );
        let record = (s.stack.ports.control.versions)
            .current_version(&Estab::parse(ESTAB).unwrap(), "Students")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(record.version, 2, "{what}: the retry made another version");
        s.stack.purge().await;
        assert_eq!(orphans(&s.stack).await, Vec::<String>::new(), "{what}");
        true
    })
    .await;
    report("an upload", failed);
    assert!(failed >= 5, "an upload makes {failed} writes");
}

#[tokio::test]
async fn a_consent_or_opt_out_change_that_fails_changes_nothing_and_its_retry_lands_once() {
    let failed = every_k(|k| async move {
        let s = setup().await;
        let admin = format!("Bearer {}", s.admin);
        let before = s
            .stack
            .read(&s.token, &students())
            .await
            .expect(StatusCode::OK);
        s.plan.fail_write(k);
        let narrow = json!({ "scopes": ["Student"] }).to_string().into_bytes();
        let path = format!("/admin/v1/consents/{PARTNER}");
        let answer = s
            .stack
            .send(Method::PUT, &path, Some(&admin), Some(narrow.clone()))
            .await;
        if !s.plan.failed() {
            answer.expect(StatusCode::OK);
            return false;
        }
        s.plan.off();
        let what = format!("consent change failing at write {k}");
        assert_unavailable(&answer, &what);
        let now = s
            .stack
            .read(&s.token, &students())
            .await
            .expect(StatusCode::OK);
        assert_eq!(now["Students"], before["Students"], "{what}");
        let granted = s
            .stack
            .send(Method::PUT, &path, Some(&admin), Some(narrow))
            .await;
        let version = granted.expect(StatusCode::OK)["version"].clone();
        assert_eq!(version, 2, "{what}: the retry made another version");
        let narrowed = s
            .stack
            .read(&s.token, &students())
            .await
            .expect(StatusCode::OK);
        assert!(
            narrowed["Students"][0].get("DateOfBirth").is_none(),
            "{what}"
        );
        true
    })
    .await;
    report("a consent change", failed);
    assert!(failed >= 1);

    let failed = every_k(|k| async move {
        let s = setup().await;
        let admin = format!("Bearer {}", s.admin);
        let pupil = s.body["resultSets"]["Students"][0]["Id"].clone();
        let by_id = format!("{}/{}", students(), pupil.as_str().unwrap());
        s.plan.fail_write(k);
        let body = json!({ "studentIds": [pupil] }).to_string().into_bytes();
        let path = format!("/admin/v1/opt-outs/{PARTNER}");
        let answer = s
            .stack
            .send(Method::PUT, &path, Some(&admin), Some(body.clone()))
            .await;
        if !s.plan.failed() {
            answer.expect(StatusCode::OK);
            return false;
        }
        s.plan.off();
        let what = format!("opt-out change failing at write {k}");
        assert_unavailable(&answer, &what);
        let still = s.stack.read(&s.token, &by_id).await.expect(StatusCode::OK);
        assert_eq!(still["Students"].as_array().unwrap().len(), 1, "{what}");
        s.stack
            .send(Method::PUT, &path, Some(&admin), Some(body))
            .await
            .expect(StatusCode::OK);
        let record = (s.stack.ports.control.opt_outs)
            .opt_outs(
                &Estab::parse(ESTAB).unwrap(),
                &PartnerId::parse(PARTNER).unwrap(),
            )
            .await
            .unwrap()
            .unwrap();
        assert_eq!(record.version, 1, "{what}: the retry made another version");
        let gone = s.stack.read(&s.token, &by_id).await.expect(StatusCode::OK);
        assert_eq!(gone["Students"], json!([]), "{what}");
        true
    })
    .await;
    report("an opt-out change", failed);
    assert!(failed >= 1);
}

#[tokio::test]
async fn a_task_report_that_fails_leaves_the_task_open_and_its_retry_lands_once() {
    let failed = every_k(|k| async move {
        let s = setup().await;
        let pupil = s.body["resultSets"]["Students"][0]["Id"].clone();
        let date = s.stack.clock_now().utc_date().to_string();
        let marks = json!({ "Marks": [{
            "StudentId": pupil, "MarkType": "S", "Date": date, "Session": "AM", "Mark": "/",
        }]});
        let queued = s
            .stack
            .send(
                Method::POST,
                &format!("/api/v1/AttendanceAsync/{ESTAB}"),
                Some(&format!("Idaas {}", s.token)),
                Some(marks.to_string().into_bytes()),
            )
            .await
            .expect(StatusCode::OK);
        let id = queued["TrackingId"].as_str().unwrap().to_owned();
        let agent = format!("Bearer {}", s.agent);
        let report = json!({ "succeeded": true, "result": [{"marks": 1}] }).to_string();
        let path = format!("/agent/v1/tasks/{id}/result");
        s.plan.fail_write(k);
        let answer = s
            .stack
            .send(
                Method::POST,
                &path,
                Some(&agent),
                Some(report.clone().into_bytes()),
            )
            .await;
        if !s.plan.failed() {
            answer.expect(StatusCode::OK);
            return false;
        }
        s.plan.off();
        let what = format!("task report failing at write {k}");
        assert_unavailable(&answer, &what);
        let status = format!("/api/v1/Writeback/Status/{id}");
        let open = s.stack.read(&s.token, &status).await.expect(StatusCode::OK);
        assert_ne!(open["Writeback"][0]["Status"], "Succeeded", "{what}");
        s.stack
            .send(
                Method::POST,
                &path,
                Some(&agent),
                Some(report.clone().into_bytes()),
            )
            .await
            .expect(StatusCode::OK);
        let done = s.stack.read(&s.token, &status).await.expect(StatusCode::OK);
        assert_eq!(done["Writeback"][0]["Status"], "Succeeded", "{what}");
        let again = s
            .stack
            .send(Method::POST, &path, Some(&agent), Some(report.into_bytes()))
            .await;
        again.expect_error(StatusCode::CONFLICT, "already has an outcome");
        true
    })
    .await;
    report("a task report", failed);
    assert!(failed >= 1);
}

#[tokio::test]
async fn a_purge_that_fails_at_any_write_serves_what_it_served_and_a_rerun_finishes_it() {
    let failed = every_k(|k| async move {
        let s = setup().await;
        // A superseded version for the purge to dispose of, past its grace.
        let mut changed = s.body.clone();
        changed["resultSets"]["Students"][0]["Forename"] = json!("Changed");
        s.stack
            .upload(&s.agent, &changed)
            .await
            .expect(StatusCode::OK);
        s.stack.advance(rollcall_purge::SUPERSEDED_GRACE);
        s.stack
            .advance(rollcall_core::timestamp::Duration::minutes(1));
        let token = s.stack.token(PARTNER, &s.management, ESTAB).await;
        let before = s.stack.read(&token, &students()).await;
        s.plan.fail_write(k);
        let result = rollcall_purge::purge(&rollcall_purge::PurgeState::new(&s.stack.ports)).await;
        if !s.plan.failed() {
            result.unwrap();
            return false;
        }
        s.plan.off();
        let what = format!("purge failing at write {k}");
        assert!(result.is_err(), "{what}: the purge said it finished");
        let now = s.stack.read(&token, &students()).await;
        assert_eq!(
            (now.status, now.body),
            (before.status, before.body),
            "{what}"
        );
        s.stack.purge().await;
        assert_eq!(orphans(&s.stack).await, Vec::<String>::new(), "{what}");
        let records = s.stack.ports.control.disposal.all_versions().await.unwrap();
        let students_versions = records
            .iter()
            .filter(|r| r.result_set == "Students")
            .count();
        assert_eq!(
            students_versions, 1,
            "{what}: the rerun left a superseded version"
        );
        true
    })
    .await;
    report("a purge", failed);
    assert!(failed >= 1);
}

/// An upload stopped dead between writing its objects and publishing them (no error path
/// ran) leaves objects no record names: the purge deletes those of a version number at or
/// below the current one, and keeps those of the next number, which an upload in flight may
/// still publish.
#[tokio::test]
async fn the_purge_collects_what_a_stopped_upload_left_and_spares_one_in_flight() {
    let s = setup().await;
    let estab = Estab::parse(ESTAB).unwrap();
    let current = (s.stack.ports.control.versions)
        .current_version(&estab, "Students")
        .await
        .unwrap()
        .unwrap();
    let sealed = s
        .stack
        .ports
        .objects
        .get(&current.object_key("_index"))
        .await
        .unwrap();
    let stopped = [
        format!("{ESTAB}/Students/{:010}-deadbeef/_index", current.version),
        format!("{ESTAB}/Students/{:010}-deadbeef/Student", current.version),
    ];
    let in_flight = format!(
        "{ESTAB}/Students/{:010}-cafef00d/_index",
        current.version + 1
    );
    for key in stopped.iter().chain([&in_flight]) {
        s.stack
            .ports
            .objects
            .put(key, sealed.clone())
            .await
            .unwrap();
    }
    let report = s.stack.purge().await;
    assert_eq!(report.orphan_objects_deleted, 2);
    let left = orphans(&s.stack).await;
    assert_eq!(
        left,
        vec![in_flight.clone()],
        "only the one in flight is kept"
    );
    // The school's data is served as before.
    s.stack
        .read(&s.token, &students())
        .await
        .expect(StatusCode::OK);
    assert!(
        s.stack
            .ports
            .objects
            .get(&current.object_key("_index"))
            .await
            .is_ok()
    );
}
