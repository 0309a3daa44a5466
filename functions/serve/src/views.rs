//! Endpoints rollcall computes from the stored result sets instead of asking the agent for a
//! second copy: Counts, Health and the timetables of one person.

use std::collections::BTreeSet;

use rollcall_core::catalogue::{Catalogue, View};
use rollcall_core::dataset::Row;
use rollcall_core::model::{Estab, VersionRecord};
use rollcall_core::scope::ScopeSet;
use rollcall_core::timestamp::Timestamp;
use rollcall_http::{ApiError, ApiResult};
use serde_json::{Value, json};

use crate::ServeState;
use crate::filter::{date_of, text_of};
use crate::rows::{LoadedSet, current_version, linked_values};

/// Rows of a computed view and the stored version they mostly come from (for freshness).
#[derive(Default)]
pub(crate) struct Computed {
    pub rows: Vec<Row>,
    pub source: Option<VersionRecord>,
}

/// The areas Counts reports, each the row count of a stored result set.
const COUNTED: [&str; 5] = ["Students", "Staff", "Contacts", "Groups", "Photos"];

pub(crate) async fn compute(
    state: &ServeState,
    view: View,
    estab: &Estab,
    id: Option<&str>,
    now: Timestamp,
) -> ApiResult<Computed> {
    match view {
        View::Stored => unreachable!("stored endpoints are read, not computed"),
        View::Counts => counts(state, estab, now).await,
        View::Health => health(state, estab, now).await,
        View::TimetableForStaff => {
            let id = id.ok_or_else(|| id_needed("TimetableForStaff", "member of staff"))?;
            let staff = BTreeSet::from([id.to_owned()]);
            let lessons = linked_values(
                state,
                estab,
                "LessonStaff",
                "StaffId",
                "LessonId",
                &staff,
                now,
            )
            .await?;
            timetable(
                state,
                estab,
                |lesson| lessons.contains(&field(lesson, "Id")),
                now,
            )
            .await
        }
        View::TimetableForStudent => {
            let id = id.ok_or_else(|| id_needed("TimetableForStudent", "pupil"))?;
            let pupil = BTreeSet::from([id.to_owned()]);
            let groups = linked_values(
                state,
                estab,
                "StudentMembers",
                "StudentId",
                "GroupId",
                &pupil,
                now,
            )
            .await?;
            timetable(
                state,
                estab,
                |lesson| groups.contains(&field(lesson, "ClassId")),
                now,
            )
            .await
        }
    }
}

fn id_needed(path: &str, who: &str) -> ApiError {
    ApiError::BadRequest(format!(
        "{path} needs the id of the {who}: call /{path}/{{id}} or pass ?id="
    ))
}

fn field(row: &Row, name: &str) -> String {
    row.get(name).and_then(text_of).unwrap_or_default()
}

async fn counts(state: &ServeState, estab: &Estab, now: Timestamp) -> ApiResult<Computed> {
    let catalogue = Catalogue::get();
    let mut rows = Vec::new();
    let mut source = None;
    for area in COUNTED {
        let rs = catalogue.stored_set(area).expect("counted sets are stored");
        let record = state.control.current_version(estab, &rs.name).await?;
        let count = record
            .as_ref()
            .filter(|r| !r.is_disposable(now))
            .map_or(0, |r| r.rows);
        let mut row = Row::new();
        row.insert("Area".into(), json!(area));
        row.insert("Count".into(), json!(count));
        rows.push(row);
        source = source.or(record);
    }
    Ok(Computed { rows, source })
}

async fn health(state: &ServeState, estab: &Estab, now: Timestamp) -> ApiResult<Computed> {
    let mut rows = Vec::new();
    for rs in Catalogue::get().stored_sets() {
        let record = state.control.current_version(estab, &rs.name).await?;
        let (status, message) = match &record {
            None => ("Missing", "the school's agent has not uploaded it"),
            Some(r) if r.is_disposable(now) => (
                "Withdrawn",
                "over 30 days out of date; disposed of until the agent uploads it again",
            ),
            Some(r) if r.is_stale(now) => ("Stale", "past its validity; the agent is late"),
            Some(_) => ("OK", ""),
        };
        let mut row = Row::new();
        row.insert("ResultSet".into(), json!(rs.name));
        row.insert("Status".into(), json!(status));
        let extracted = record.as_ref().map(|r| r.confirmed_at.to_xod());
        let valid_until = record.as_ref().map(|r| r.valid_until.to_xod());
        row.insert("LastExtracted".into(), json!(extracted));
        row.insert("ValidUntil".into(), json!(valid_until));
        row.insert(
            "Message".into(),
            if message.is_empty() {
                Value::Null
            } else {
                json!(message)
            },
        );
        rows.push(row);
    }
    Ok(Computed { rows, source: None })
}

/// The `take` values of the rows of `set` whose `matches` field is `id`.
/// The lessons `keep` selects, in the shape of a personal timetable.
async fn timetable(
    state: &ServeState,
    estab: &Estab,
    keep: impl Fn(&Row) -> bool,
    now: Timestamp,
) -> ApiResult<Computed> {
    let rs = Catalogue::get()
        .stored_set("Lessons")
        .expect("Lessons is stored");
    let record = current_version(state, estab, rs, now).await?;
    let needed: BTreeSet<&str> = rs.fields.iter().map(|f| f.name.as_str()).collect();
    let loaded = LoadedSet::load(state, rs, record.clone(), &ScopeSet::new(), &needed).await?;
    let rows = loaded
        .rows
        .iter()
        .filter(|lesson| keep(lesson))
        .map(personal_lesson)
        .collect();
    Ok(Computed {
        rows,
        source: Some(record),
    })
}

fn personal_lesson(lesson: &Row) -> Row {
    let start = field(lesson, "StartDateTime");
    let mut row = Row::new();
    row.insert("Id".into(), json!(field(lesson, "PeriodId")));
    row.insert("LessonId".into(), json!(field(lesson, "Id")));
    for name in ["JoinedId", "PeriodId", "ClassId", "Period"] {
        row.insert(
            name.into(),
            lesson.get(name).cloned().unwrap_or(Value::Null),
        );
    }
    row.insert(
        "Date".into(),
        json!(format!("{}T00:00:00", date_of(&start))),
    );
    for name in [
        "StartDateTime",
        "EndDateTime",
        "ClassName",
        "RoomCodes",
        "StaffCodes",
        "SubjectCode",
        "SubjectName",
    ] {
        row.insert(
            name.into(),
            lesson.get(name).cloned().unwrap_or(Value::Null),
        );
    }
    row
}
