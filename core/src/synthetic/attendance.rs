//! Attendance: the school's mark codes, every pupil's AM and PM session marks for the last
//! two weeks of school days, and lesson marks for the lessons of the last two school days,
//! consistent with the session marks (a pupil absent in the morning is absent from the
//! morning's lessons with the same code).

use serde_json::json;
use time::Date;

use super::days::ymd;
use super::timetable::{PERIODS, SESSIONS, Timetable, period_instance_id, session_instance_id};
use super::{Days, Rng, Roster, Sets, row};
use crate::dataset::Row;

/// Mark, description, meaning, short meaning, physical meaning.
const CODES: &[(&str, &str, &str, &str, &str)] = &[
    ("/", "Present (AM)", "Present", "Present", "IN"),
    ("\\", "Present (PM)", "Present", "Present", "IN"),
    (
        "L",
        "Late (before registers closed)",
        "Present",
        "Present",
        "IN",
    ),
    (
        "U",
        "Late (after registers closed)",
        "Unauthorised Absence",
        "Unauthorised",
        "IN",
    ),
    (
        "B",
        "Educated off site",
        "Approved Educational Activity",
        "AEA",
        "OUT",
    ),
    (
        "C",
        "Other authorised circumstances",
        "Authorised Absence",
        "Authorised",
        "OUT",
    ),
    (
        "E",
        "Suspended or excluded",
        "Authorised Absence",
        "Authorised",
        "OUT",
    ),
    ("I", "Illness", "Authorised Absence", "Authorised", "OUT"),
    (
        "M",
        "Medical/Dental appointments",
        "Authorised Absence",
        "Authorised",
        "OUT",
    ),
    (
        "N",
        "No reason yet provided",
        "Unauthorised Absence",
        "Unauthorised",
        "OUT",
    ),
    (
        "O",
        "Unauthorised absence",
        "Unauthorised Absence",
        "Unauthorised",
        "OUT",
    ),
    (
        "P",
        "Approved sporting activity",
        "Approved Educational Activity",
        "AEA",
        "OUT",
    ),
    (
        "R",
        "Religious observance",
        "Authorised Absence",
        "Authorised",
        "OUT",
    ),
    (
        "V",
        "Educational visit or trip",
        "Approved Educational Activity",
        "AEA",
        "OUT",
    ),
    (
        "#",
        "School closed to pupils",
        "Attendance Not Required",
        "ANR",
        "OUT",
    ),
    ("-", "No mark yet", "No Mark", "No Mark", "OUT"),
];
/// School days of session marks, counted back from the last one.
const SESSION_DAYS: usize = 10;
/// School days of lesson marks, counted back from the last one.
const LESSON_DAYS: usize = 2;

pub(super) fn sets(roster: &Roster, timetable: &Timetable, days: &Days, rng: &mut Rng) -> Sets {
    let codes = CODES
        .iter()
        .enumerate()
        .map(|(i, (mark, description, meaning, short, physical))| {
            row(json!({
                "Id": (1 + i).to_string(), "Mark": mark, "Description": description,
                "MeaningDescription": meaning, "ShortMeaningDescription": short,
                "PhysicalMeaning": physical,
            }))
        })
        .collect();
    let marked = marked_days(days);
    let sessions = session_marks(roster, &marked, days, rng);
    let mut marks: Vec<Row> = sessions.rows(roster);
    marks.extend(lesson_marks(roster, timetable, &marked, &sessions, rng));
    vec![("AttendCodes".into(), codes), ("AttendMarks".into(), marks)]
}

/// The school days with marks, oldest first: the last [`SESSION_DAYS`] up to today.
fn marked_days(days: &Days) -> Vec<Date> {
    let mut all = days.school_days(Days::FIRST, 0);
    let keep = all.len().saturating_sub(SESSION_DAYS);
    all.drain(..keep);
    all
}

/// Every pupil's session marks: `marks[pupil][day][session]`.
struct SessionMarks {
    days: Vec<Date>,
    marks: Vec<Vec<[(&'static str, u32); 2]>>,
}

fn session_marks(roster: &Roster, marked: &[Date], days: &Days, rng: &mut Rng) -> SessionMarks {
    let marks = roster
        .pupils
        .iter()
        .map(|_| {
            // A pupil off ill tends to be off all day.
            marked
                .iter()
                .map(|d| {
                    let morning = session_mark(rng, 0);
                    let afternoon = if ["I", "C", "E", "R"].contains(&morning.0) {
                        (morning.0, 0)
                    } else if *d == days.today && rng.chance(10) {
                        ("-", 0)
                    } else {
                        session_mark(rng, 1)
                    };
                    [morning, afternoon]
                })
                .collect()
        })
        .collect();
    SessionMarks {
        days: marked.to_vec(),
        marks,
    }
}

/// A session mark and minutes late: most pupils present, a few late or absent.
fn session_mark(rng: &mut Rng, session: usize) -> (&'static str, u32) {
    let present = if session == 0 { "/" } else { "\\" };
    match rng.below(1000) {
        0..=929 => (present, 0),
        930..=949 => ("L", 3 + rng.below(20) as u32),
        950..=969 => ("I", 0),
        970..=979 => ("M", 0),
        980..=986 => ("N", 0),
        987..=991 => ("O", 0),
        992..=994 => ("C", 0),
        995..=996 => ("V", 0),
        997 => ("P", 0),
        998 => ("U", 25),
        _ => ("R", 0),
    }
}

impl SessionMarks {
    fn rows(&self, roster: &Roster) -> Vec<Row> {
        let mut rows = Vec::with_capacity(roster.pupils.len() * self.days.len() * 2);
        for (pupil, days) in roster.pupils.iter().zip(&self.marks) {
            for (d, marks) in self.days.iter().zip(days) {
                for (session, (mark, late)) in marks.iter().enumerate() {
                    rows.push(mark_row(
                        format!("{}.{}.{}", pupil.id, ymd(*d), SESSIONS[session].0),
                        *d,
                        session_instance_id(*d, session),
                        &pupil.id,
                        (mark, *late),
                        "S",
                        session,
                    ));
                }
            }
        }
        rows
    }
}

fn mark_row(
    id: String,
    d: Date,
    instance: String,
    pupil: &str,
    (mark, late): (&str, u32),
    kind: &str,
    session: usize,
) -> Row {
    let mut r = row(json!({
        "Id": id, "Date": ymd(d), "InstanceId": instance, "StudentId": pupil,
        "Mark": mark, "Type": kind, "Session": SESSIONS[session].0,
    }));
    if late > 0 {
        r.insert("MinsLate".into(), json!(late));
        r.insert("Notes".into(), json!("Bus was late"));
    }
    r
}

/// Lesson marks of the last [`LESSON_DAYS`] marked days: present unless absent from the
/// session, and now and then late to a lesson.
fn lesson_marks(
    roster: &Roster,
    timetable: &Timetable,
    marked: &[Date],
    sessions: &SessionMarks,
    rng: &mut Rng,
) -> Vec<Row> {
    let recent = &marked[marked.len().saturating_sub(LESSON_DAYS)..];
    let mut rows = Vec::new();
    for lesson in timetable
        .lessons
        .iter()
        .filter(|l| recent.contains(&l.date))
    {
        let Some(day) = sessions.days.iter().position(|d| *d == lesson.date) else {
            continue;
        };
        let model = &timetable.model[lesson.model];
        let session = PERIODS[model.period].2;
        for &pupil in &roster.groups[model.group].members {
            let (session_mark, _) = sessions.marks[pupil][day][session];
            let mark = match session_mark {
                "/" | "\\" | "L" if rng.chance(3) => ("L", 2 + rng.below(10) as u32),
                "/" | "\\" | "L" => ("/", 0),
                other => (other, 0),
            };
            let id = &roster.pupils[pupil].id;
            rows.push(mark_row(
                format!("{id}.{}", lesson.id),
                lesson.date,
                period_instance_id(lesson.date, model.period),
                id,
                mark,
                "L",
                session,
            ));
        }
    }
    rows
}
