//! Endpoints rollcall computes from the stored result sets instead of asking the agent for a
//! second copy: Counts, Health and the timetables of one person. What each may be computed
//! from, and which rows count, is the read plan's ([`ViewPlan`]).

use std::collections::BTreeSet;

use rollcall_core::dataset::Row;
use rollcall_core::model::{Estab, VersionRecord};
use rollcall_core::plan::{Resolved, SetPlan, ViewPlan, date_of, text};
use rollcall_core::timestamp::Timestamp;
use rollcall_http::ApiResult;
use serde_json::{Value, json};

use crate::ServeState;
use crate::read::map_through;
use crate::rows::{Holding, LoadedSet, holding};

/// Rows of a computed view and the stored version they mostly come from (for freshness).
#[derive(Default)]
pub(crate) struct Computed {
    pub rows: Vec<Row>,
    pub source: Option<VersionRecord>,
}

pub(crate) async fn compute(
    state: &ServeState,
    view: &ViewPlan<'_>,
    estab: &Estab,
    resolved: &Resolved,
    now: Timestamp,
) -> ApiResult<Computed> {
    match view {
        ViewPlan::Stored => unreachable!("stored endpoints are read, not computed"),
        ViewPlan::Counts(areas) => counts(state, areas, estab, resolved, now).await,
        ViewPlan::Health(sets) => health(state, sets, estab, now).await,
        ViewPlan::Personal { hidden: true, .. } => Ok(Computed::default()),
        ViewPlan::Personal {
            hidden: false,
            subject,
            via,
            lessons,
            lesson_field,
            ..
        } => {
            let input = BTreeSet::from([subject.clone()]);
            let selected = map_through(state, estab, via, input, &resolved.today, now).await?;
            timetable(
                state,
                estab,
                lessons,
                lesson_field,
                &selected,
                resolved,
                now,
            )
            .await
        }
    }
}

fn field(row: &Row, name: &str) -> String {
    text(row.get(name)).unwrap_or_default().into_owned()
}

/// How many rows of each released area the partner may see.
async fn counts(
    state: &ServeState,
    areas: &[SetPlan<'_>],
    estab: &Estab,
    resolved: &Resolved,
    now: Timestamp,
) -> ApiResult<Computed> {
    let mut rows = Vec::new();
    let mut source = None;
    for area in areas {
        let record = match holding(state, estab, area.rs, now).await? {
            Holding::Held(record) => Some(record),
            Holding::NotHeld(_) => None,
        };
        let count = match &record {
            None => 0,
            Some(r) if area.decrypt.is_empty() => r.rows,
            Some(r) => {
                let loaded = LoadedSet::load(state, r.clone(), &area.groups()).await?;
                loaded
                    .rows
                    .iter()
                    .filter(|row| area.admits(row, resolved))
                    .count() as u64
            }
        };
        let mut row = Row::new();
        row.insert("Area".into(), json!(area.name));
        row.insert("Count".into(), json!(count));
        rows.push(row);
        source = source.or(record);
    }
    Ok(Computed { rows, source })
}

async fn health(
    state: &ServeState,
    sets: &[&rollcall_core::catalogue::ResultSet],
    estab: &Estab,
    now: Timestamp,
) -> ApiResult<Computed> {
    let mut rows = Vec::new();
    for rs in sets {
        let record = state.versions.current_version(estab, &rs.name).await?;
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

/// The lessons whose `lesson_field` is one of `selected`, in the shape of a personal
/// timetable.
async fn timetable(
    state: &ServeState,
    estab: &Estab,
    lessons: &SetPlan<'_>,
    lesson_field: &str,
    selected: &BTreeSet<String>,
    resolved: &Resolved,
    now: Timestamp,
) -> ApiResult<Computed> {
    let loaded = LoadedSet::current(state, estab, lessons.rs, &lessons.groups(), now).await?;
    let rows = loaded
        .rows
        .iter()
        .filter(|lesson| {
            lessons.admits(lesson, resolved) && selected.contains(&field(lesson, lesson_field))
        })
        .map(personal_lesson)
        .collect();
    Ok(Computed {
        rows,
        source: Some(loaded.version.record),
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
