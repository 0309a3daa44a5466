//! A write-back body, as `POST` checks it before queueing (byte 0 picks the kind, byte 1
//! whether a refusal may name ids). A refusal must be a 4xx; a body that passes must name, in
//! every person field of what is queued, only the pupils and staff the school has and the
//! partner may write about (pupil S9 and teacher T9 are opted out, so never among them).
#![no_main]

use libfuzzer_sys::fuzz_target;
use rollcall_core::catalogue::WritebackBody;
use rollcall_serve::fuzzing::{SchoolHas, writeback};
use serde_json::Value;

const STUDENTS: &[&str] = &["S1", "S2", "1001"];
const STAFF: &[&str] = &["T1", "42"];
const PERSON_FIELDS: &[(&str, &[&str])] = &[
    ("StudentId", STUDENTS),
    ("StaffId", STAFF),
    ("RecordedById", STAFF),
    ("SetById", STAFF),
    ("SupervisorId", STAFF),
];

fuzz_target!(|data: &[u8]| {
    let [pick, named, body @ ..] = data else {
        return;
    };
    let kinds = [
        WritebackBody::Attendance,
        WritebackBody::Conduct,
        WritebackBody::SeatingPlan,
        WritebackBody::Detention,
    ];
    let has = SchoolHas {
        students: STUDENTS,
        staff: STAFF,
        marks: &["/", "\\", "L"],
        conduct_types: Some(&["4", "5"]),
        named: named % 2 == 1,
    };
    match writeback(kinds[usize::from(*pick) % kinds.len()], body, &has, "9990001") {
        Err(status) => assert!((400..500).contains(&status), "a write-back was answered {status}"),
        Ok(payload) => only_known_people(&payload),
    }
});

/// Every value of a person field, at any depth, is one of the people the check knows.
fn only_known_people(value: &Value) {
    match value {
        Value::Object(fields) => {
            for (key, value) in fields {
                let known = PERSON_FIELDS.iter().find(|(name, _)| name == key);
                if let Some((name, people)) = known
                    && !value.is_null()
                {
                    let id = value.as_str().expect("a person field is queued as text");
                    assert!(people.contains(&id), "{name} {id} was queued");
                }
                only_known_people(value);
            }
        }
        Value::Array(items) => items.iter().for_each(only_known_people),
        _ => {}
    }
}
