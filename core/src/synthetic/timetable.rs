//! The timetable: a week's cycle of lessons for every teaching group, with staff and rooms,
//! as modelled (TimetableModel) and as it falls on the dates around today (Timetable,
//! TimetableStructure); the school calendar; seating plans of the classes in their rooms.
//!
//! The cycle is five days of five periods. All sets of a subject in a year are taught at the
//! same time (blocked, as secondary schools do), each set by its own teacher in its own room,
//! so no teacher, room or pupil is in two places at once.

use std::collections::{BTreeMap, HashMap};

use serde_json::json;
use time::Date;

use super::days::{at, clock, date, ymd};
use super::{Days, Roster, Sets, row};
use crate::dataset::Row;

/// Periods of the day: name, start and end (minutes after midnight), session (0 AM, 1 PM).
pub(super) const PERIODS: [(u32, u32, usize); 5] = [
    (530, 590, 0), // 08:50-09:50
    (590, 650, 0), // 09:50-10:50
    (670, 730, 0), // 11:10-12:10
    (780, 840, 1), // 13:00-14:00
    (840, 900, 1), // 14:00-15:00
];
/// Sessions: code, start and end (registration included).
pub(super) const SESSIONS: [(&str, u32, u32); 2] = [("AM", 520, 730), ("PM", 775, 900)];
const DAY_NAMES: [&str; 5] = ["Mon", "Tue", "Wed", "Thu", "Fri"];
const DAY_LONG: [&str; 5] = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday"];
/// Lessons a week of a year's n-th subject (Mathematics, English, Science, then the rest).
const LESSONS_A_WEEK: [usize; 4] = [3, 3, 3, 2];
const TIMETABLE_ID: &str = "1";

pub(super) struct Room {
    pub id: String,
    pub code: String,
    pub name: String,
}

/// A lesson of the cycle: one group, at one period of one day, with its teacher and room.
pub(super) struct ModelLesson {
    pub id: String,
    pub day: usize,
    pub period: usize,
    /// Index into the roster's groups.
    pub group: usize,
    /// Index into the roster's staff.
    pub staff: Option<usize>,
    /// Index into [`Timetable::rooms`].
    pub room: usize,
}

/// A model lesson on one date.
pub(super) struct Lesson {
    pub id: String,
    pub date: Date,
    /// Index into [`Timetable::model`].
    pub model: usize,
}

pub(super) struct Timetable {
    pub rooms: Vec<Room>,
    /// `(code, name)` of each subject taught, in the order first met.
    pub subjects: Vec<(String, String)>,
    pub model: Vec<ModelLesson>,
    pub lessons: Vec<Lesson>,
    /// The room of each teaching group (index into the roster's groups → room).
    pub group_rooms: BTreeMap<usize, usize>,
}

/// Numeric ids of a date's events (day, sessions, periods), unique across dates.
fn instance_base(d: Date) -> i64 {
    i64::from(d.to_julian_day()) * 100
}

pub(super) fn day_instance_id(d: Date) -> String {
    instance_base(d).to_string()
}

pub(super) fn session_instance_id(d: Date, session: usize) -> String {
    (instance_base(d) + 1 + session as i64).to_string()
}

pub(super) fn period_instance_id(d: Date, period: usize) -> String {
    (instance_base(d) + 10 + period as i64).to_string()
}

/// The cycle day (0 Monday to 4 Friday) of a date, or `None` at a weekend.
pub(super) fn cycle_day(d: Date) -> Option<usize> {
    let day = d.weekday().number_days_from_monday() as usize;
    (day < 5).then_some(day)
}

fn model_day_id(day: usize) -> String {
    (11 + day).to_string()
}

fn model_period_id(day: usize, period: usize) -> String {
    (100 + 10 * (day + 1) + period + 1).to_string()
}

/// A year's blocks: each subject's teaching groups, in the order the subjects were created.
fn blocks_by_year(roster: &Roster) -> BTreeMap<u32, Vec<(String, Vec<usize>)>> {
    let mut years: BTreeMap<u32, Vec<(String, Vec<usize>)>> = BTreeMap::new();
    for (index, group) in roster.groups.iter().enumerate() {
        let (Some(year), Some((subject, _))) = (group.year, &group.subject) else {
            continue;
        };
        let blocks = years.entry(year).or_default();
        match blocks.iter_mut().find(|(s, _)| s == subject) {
            Some((_, groups)) => groups.push(index),
            None => blocks.push((subject.clone(), vec![index])),
        }
    }
    years
}

/// Where a block's lessons go: the first slot (day, period) in which the year is free and
/// none of its teachers is busy, preferring a day the subject is not yet taught that week.
struct Placer {
    year_busy: HashMap<u32, [bool; 25]>,
    staff_busy: HashMap<usize, [bool; 25]>,
}

impl Placer {
    fn place(&mut self, year: u32, teachers: &[usize], days_taken: &[usize], hint: usize) -> usize {
        let year_free = |p: &Self, slot: usize| !p.year_busy.get(&year).is_some_and(|b| b[slot]);
        let staff_free = |p: &Self, slot: usize| {
            teachers
                .iter()
                .all(|t| !p.staff_busy.get(t).is_some_and(|b| b[slot]))
        };
        let order: Vec<usize> = (0..25).map(|k| (hint + k * 7) % 25).collect();
        let chosen = order
            .iter()
            .copied()
            .find(|&s| year_free(self, s) && staff_free(self, s) && !days_taken.contains(&(s / 5)))
            .or_else(|| {
                order
                    .iter()
                    .copied()
                    .find(|&s| year_free(self, s) && staff_free(self, s))
            })
            .or_else(|| order.iter().copied().find(|&s| year_free(self, s)))
            .unwrap_or(hint % 25);
        self.year_busy.entry(year).or_insert([false; 25])[chosen] = true;
        for &teacher in teachers {
            self.staff_busy.entry(teacher).or_insert([false; 25])[chosen] = true;
        }
        chosen
    }
}

impl Timetable {
    pub(super) fn plan(roster: &Roster, days: &Days) -> Self {
        let staff_index: HashMap<&str, usize> = roster
            .staff
            .iter()
            .enumerate()
            .map(|(i, s)| (s.id.as_str(), i))
            .collect();
        let mut subjects: Vec<(String, String)> = Vec::new();
        let mut rooms: Vec<Room> = Vec::new();
        let mut room_of: BTreeMap<(usize, usize), usize> = BTreeMap::new();
        let mut group_rooms = BTreeMap::new();
        let mut placer = Placer {
            year_busy: HashMap::new(),
            staff_busy: HashMap::new(),
        };
        let mut model = Vec::new();
        for (year, blocks) in blocks_by_year(roster) {
            for (order, (subject, groups)) in blocks.iter().enumerate() {
                let subject_index = match subjects.iter().position(|(code, _)| code == subject) {
                    Some(i) => i,
                    None => {
                        let name = roster.groups[groups[0]]
                            .subject
                            .as_ref()
                            .map(|(_, n)| n.clone())
                            .unwrap_or_default();
                        subjects.push((subject.clone(), name));
                        subjects.len() - 1
                    }
                };
                let teachers: Vec<Option<usize>> = groups
                    .iter()
                    .map(|&g| staff_index.get(roster.groups[g].staff_id.as_str()).copied())
                    .collect();
                let busy: Vec<usize> = teachers.iter().flatten().copied().collect();
                let mut days_taken = Vec::new();
                let per_week = LESSONS_A_WEEK.get(order).copied().unwrap_or(2);
                for lesson in 0..per_week {
                    let hint = year as usize * 3 + order * 5 + lesson * 11;
                    let slot = placer.place(year, &busy, &days_taken, hint);
                    days_taken.push(slot / 5);
                    for (set, (&group, teacher)) in groups.iter().zip(&teachers).enumerate() {
                        let room = *room_of.entry((subject_index, set)).or_insert_with(|| {
                            let (code, name) = &subjects[subject_index];
                            let prefix = code.chars().next().unwrap_or('R').to_ascii_uppercase();
                            rooms.push(Room {
                                id: format!("{}", 301 + rooms.len()),
                                code: format!("{prefix}{}", set + 1),
                                name: format!("{name} {}", set + 1),
                            });
                            rooms.len() - 1
                        });
                        group_rooms.insert(group, room);
                        model.push(ModelLesson {
                            id: (2001 + model.len()).to_string(),
                            day: slot / 5,
                            period: slot % 5,
                            group,
                            staff: *teacher,
                            room,
                        });
                    }
                }
            }
        }
        model.sort_by_key(|m| (m.day, m.period, m.group));
        let lessons = days
            .term()
            .into_iter()
            .flat_map(|d| {
                let day = cycle_day(d);
                model
                    .iter()
                    .enumerate()
                    .filter(move |(_, m)| Some(m.day) == day)
                    .map(move |(index, m)| Lesson {
                        id: format!("{}.{}", m.id, ymd(d).replace('-', "")),
                        date: d,
                        model: index,
                    })
            })
            .collect();
        Self {
            rooms,
            subjects,
            model,
            lessons,
            group_rooms,
        }
    }

    pub(super) fn sets(&self, roster: &Roster, days: &Days) -> Sets {
        let mut sets = self.dated_lessons(roster);
        sets.extend(self.structure(days));
        sets.extend(self.modelled(roster, days));
        sets.push(("Calendar".into(), calendar(days)));
        sets.push(("SeatingPlans".into(), self.seating_plans(roster)));
        sets
    }

    /// Lessons, LessonStaff and LessonRooms: the cycle on every school day of the window.
    fn dated_lessons(&self, roster: &Roster) -> Sets {
        let (mut lessons, mut staff, mut rooms) = (Vec::new(), Vec::new(), Vec::new());
        for lesson in &self.lessons {
            let m = &self.model[lesson.model];
            let group = &roster.groups[m.group];
            let teacher = m.staff.map(|s| &roster.staff[s]);
            let room = &self.rooms[m.room];
            let (start, end, _) = PERIODS[m.period];
            let (subject_code, subject_name) = group.subject.clone().unwrap_or_default();
            lessons.push(row(json!({
                "Id": lesson.id, "PeriodId": period_instance_id(lesson.date, m.period),
                "ClassId": group.id, "ClassName": group.code,
                "Period": format!("{}:{}", DAY_NAMES[m.day], m.period + 1),
                "StartDateTime": at(lesson.date, start), "EndDateTime": at(lesson.date, end),
                "StaffCodes": teacher.map(|t| t.code.clone()).unwrap_or_default(),
                "RoomCodes": room.code, "SubjectCode": subject_code, "SubjectName": subject_name,
            })));
            if let Some(teacher) = teacher {
                staff.push(row(json!({
                    "Id": format!("{}.{}", lesson.id, teacher.id), "LessonId": lesson.id,
                    "StaffId": teacher.id, "StaffCode": teacher.code,
                })));
            }
            rooms.push(row(json!({
                "Id": format!("{}.{}", lesson.id, room.id), "LessonId": lesson.id,
                "RoomId": room.id, "Code": room.code,
            })));
        }
        vec![
            ("Lessons".into(), lessons),
            ("LessonStaff".into(), staff),
            ("LessonRooms".into(), rooms),
        ]
    }

    /// TTDays, TTSessions, TTPeriods (each school day's events), TTSubjects and TTRooms.
    fn structure(&self, days: &Days) -> Sets {
        let (mut tt_days, mut sessions, mut periods) = (Vec::new(), Vec::new(), Vec::new());
        for d in days.term() {
            let Some(day) = cycle_day(d) else { continue };
            let day_id = day_instance_id(d);
            tt_days.push(row(json!({
                "Id": day_id, "EventId": model_day_id(day), "EventDescription": DAY_NAMES[day],
                "StartDateTime": at(d, 0), "EndDateTime": at(d, 23 * 60 + 59),
            })));
            for (session, (code, start, end)) in SESSIONS.iter().enumerate() {
                sessions.push(row(json!({
                    "Id": session_instance_id(d, session), "DayId": day_id,
                    "EventId": (1 + session).to_string(),
                    "EventDescription": format!("{} {code}", DAY_LONG[day]), "Session": code,
                    "StartDateTime": at(d, *start), "EndDateTime": at(d, *end),
                })));
            }
            for (period, (start, end, session)) in PERIODS.iter().enumerate() {
                periods.push(row(json!({
                    "Id": period_instance_id(d, period), "DayId": day_id,
                    "SessionId": session_instance_id(d, *session),
                    "EventId": model_period_id(day, period),
                    "EventDescription": format!("{}:{}", DAY_NAMES[day], period + 1),
                    "Session": SESSIONS[*session].0,
                    "StartDateTime": at(d, *start), "EndDateTime": at(d, *end),
                })));
            }
        }
        let subjects = self
            .subjects
            .iter()
            .enumerate()
            .map(|(i, (code, name))| row(json!({"Id": subject_id(i), "Code": code, "Name": name})))
            .collect();
        let rooms = self
            .rooms
            .iter()
            .map(|r| row(json!({"Id": r.id, "Code": r.code, "Name": r.name})))
            .collect();
        vec![
            ("TTDays".into(), tt_days),
            ("TTSessions".into(), sessions),
            ("TTPeriods".into(), periods),
            ("TTSubjects".into(), subjects),
            ("TTRooms".into(), rooms),
        ]
    }

    /// The TimetableModel sets: the cycle's days, periods and lessons with their classes,
    /// staff and rooms, and which date is which cycle day.
    fn modelled(&self, roster: &Roster, days: &Days) -> Sets {
        let timetables = vec![row(json!({
            "Id": TIMETABLE_ID, "Description": format!("{} Timetable", days.academic_year_label()),
            "StartDate": date(days.academic_year_start()), "EndDate": date(days.academic_year_end()),
            "DaysPerCycle": 5, "PeriodsPerCycle": 25, "TeachingPeriodsPerCycle": 25,
        }))];
        let model_days = (0..5)
            .map(|day| {
                row(json!({
                    "Id": model_day_id(day), "TimetableId": TIMETABLE_ID,
                    "DayName": DAY_NAMES[day], "Sequence": day + 1,
                }))
            })
            .collect();
        let model_periods = (0..5)
            .flat_map(|day| (0..5).map(move |period| (day, period)))
            .map(|(day, period)| {
                let (start, end, _) = PERIODS[period];
                row(json!({
                    "Id": model_period_id(day, period), "TimetableDayId": model_day_id(day),
                    "PeriodName": format!("{}{}", DAY_NAMES[day], period + 1),
                    "StartTime": clock(start), "EndTime": clock(end), "PeriodSequence": period + 1,
                }))
            })
            .collect();
        let (mut lessons, mut classes, mut staff, mut rooms) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for m in &self.model {
            let group = &roster.groups[m.group];
            let room = &self.rooms[m.room];
            let subject = group.subject.clone().unwrap_or_default();
            let subject_index = self.subjects.iter().position(|(c, _)| *c == subject.0);
            lessons.push(row(json!({
                "Id": m.id, "TimetablePeriodId": model_period_id(m.day, m.period),
            })));
            classes.push(row(json!({
                "Id": format!("{}.{}", m.id, group.id), "TimetableLessonId": m.id,
                "GroupId": group.id, "GroupName": group.code,
                "SubjectId": subject_index.map(subject_id).unwrap_or_default(),
                "SubjectName": subject.1,
            })));
            // ModelLessonStaff names its teacher only by code, a mention an opt-out blanks: its
            // Id must not carry the staff id, or the row would still say who teaches it.
            if let Some(teacher) = m.staff.map(|s| &roster.staff[s]) {
                staff.push(row(json!({
                    "Id": format!("{}.1", m.id), "TimetableLessonId": m.id,
                    "Staff": teacher.code,
                })));
            }
            rooms.push(row(json!({
                "Id": format!("{}.{}", m.id, room.id), "TimetableLessonId": m.id,
                "RoomId": room.id, "RoomName": room.name, "RoomCode": room.code,
            })));
        }
        let instances = days
            .term()
            .into_iter()
            .filter_map(|d| {
                cycle_day(d).map(|day| {
                    row(json!({
                        "Id": day_instance_id(d), "TimetableDayId": model_day_id(day),
                        "Date": date(d),
                    }))
                })
            })
            .collect();
        vec![
            ("Timetables".into(), timetables),
            ("TimetableDays".into(), model_days),
            ("TimetablePeriods".into(), model_periods),
            ("TimetableLessons".into(), lessons),
            ("LessonClasses".into(), classes),
            ("ModelLessonStaff".into(), staff),
            ("ModelLessonRooms".into(), rooms),
            ("TimetableDayInstances".into(), instances),
        ]
    }

    /// Where each pupil sits in the Mathematics and English classes: rows of six desks, in
    /// the class's own room.
    fn seating_plans(&self, roster: &Roster) -> Vec<Row> {
        let mut seats = Vec::new();
        for (&group, &room) in &self.group_rooms {
            let g = &roster.groups[group];
            if !g
                .subject
                .as_ref()
                .is_some_and(|(code, _)| code == "Ma" || code == "En")
            {
                continue;
            }
            for (place, &pupil) in g.members.iter().enumerate() {
                let pupil_id = &roster.pupils[pupil].id;
                seats.push(row(json!({
                    "Id": format!("{}.{pupil_id}", g.id), "GroupId": g.id, "StudentId": pupil_id,
                    "RoomId": self.rooms[room].id, "SeatRow": 1 + place / 6, "SeatColumn": 1 + place % 6,
                })));
            }
        }
        seats
    }
}

fn subject_id(index: usize) -> String {
    (91 + index).to_string()
}

/// The school calendar around today: the half term before the timetabled window and the
/// holiday after it, a training day, weekly staff meetings, a parents' evening, mock exams,
/// a trip and fixtures inside it.
fn calendar(days: &Days) -> Vec<Row> {
    let mut events: Vec<(i64, i64, u32, u32, &str, &str, &str)> = vec![
        (-28, -24, 0, 0, "Holiday", "Half term", "HalfTerm"),
        (
            -22,
            -22,
            0,
            0,
            "Staff training",
            "INSET day",
            "StaffTraining",
        ),
        (25, 38, 0, 0, "Holiday", "End of term holiday", "Holiday"),
        (
            30,
            30,
            0,
            0,
            "Public holiday",
            "Bank holiday",
            "PublicHoliday",
        ),
        (
            3,
            3,
            960,
            1140,
            "Parents",
            "Year 9 parents' evening",
            "SchoolEvent",
        ),
        (
            7,
            11,
            530,
            900,
            "Exams",
            "Year 11 mock examinations",
            "SchoolEvent",
        ),
        (
            -2,
            -2,
            540,
            930,
            "Trips",
            "Year 8 museum visit",
            "SchoolEvent",
        ),
        (
            1,
            1,
            930,
            1050,
            "Extra Curricular",
            "School choir concert",
            "SchoolEvent",
        ),
        (
            0,
            0,
            915,
            990,
            "Sport",
            "Year 10 football fixture",
            "SchoolEvent",
        ),
    ];
    for monday in days
        .school_days(Days::FIRST, Days::LAST)
        .into_iter()
        .filter(|d| cycle_day(*d) == Some(0))
    {
        let offset = (monday - days.today).whole_days();
        events.push((
            offset,
            offset,
            915,
            975,
            "Meetings",
            "Staff meeting",
            "SchoolEvent",
        ));
    }
    events
        .into_iter()
        .enumerate()
        .map(|(i, (from, to, start, end, category, description, kind))| {
            let times = |m: u32| {
                if start == end {
                    String::new()
                } else {
                    clock(m)
                }
            };
            row(json!({
                "Id": (31_401 + i).to_string(),
                "StartDate": date(days.day(from)), "StartTime": times(start),
                "EndDate": date(days.day(to)), "EndTime": times(end),
                "Category": category, "Description": description, "Type": kind,
            }))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeSet, HashSet};

    use time::macros::date;

    use super::super::{SyntheticSchool, sandbox};

    fn ids(school: &SyntheticSchool, set: &str, field: &str) -> BTreeSet<String> {
        school
            .rows(set)
            .iter()
            .filter_map(|r| r.get(field).and_then(|v| v.as_str()).map(str::to_owned))
            .collect()
    }

    fn field<'a>(row: &'a crate::dataset::Row, name: &str) -> &'a str {
        row.get(name).and_then(|v| v.as_str()).unwrap_or_default()
    }

    #[test]
    fn no_teacher_room_or_pupil_is_in_two_lessons_at_once() {
        let school = sandbox("9992001", 600, 5, date!(2026 - 12 - 09));
        let mut members: std::collections::HashMap<&str, Vec<&str>> = Default::default();
        for m in school.rows("StudentMembers") {
            members
                .entry(field(m, "GroupId"))
                .or_default()
                .push(field(m, "StudentId"));
        }
        let (mut staff, mut rooms, mut pupils) = (HashSet::new(), HashSet::new(), HashSet::new());
        let lessons = school.rows("Lessons");
        assert!(lessons.len() > 1000, "{} lessons", lessons.len());
        for lesson in lessons {
            let at = field(lesson, "StartDateTime");
            assert!(
                staff.insert((at, field(lesson, "StaffCodes"))),
                "{lesson:?}"
            );
            assert!(rooms.insert((at, field(lesson, "RoomCodes"))), "{lesson:?}");
            for pupil in &members[field(lesson, "ClassId")] {
                assert!(pupils.insert((at, *pupil)), "{pupil} twice at {at}");
            }
        }
    }

    #[test]
    fn lessons_marks_and_models_refer_to_what_exists() {
        let school = sandbox("9992001", 150, 2, date!(2026 - 12 - 06));
        let periods = ids(&school, "TTPeriods", "Id");
        let sessions = ids(&school, "TTSessions", "Id");
        let days = ids(&school, "TTDays", "Id");
        let groups = ids(&school, "Group", "Id");
        let lessons = ids(&school, "Lessons", "Id");
        let staff = ids(&school, "Staff", "Id");
        let rooms = ids(&school, "TTRooms", "Id");
        let model = ids(&school, "TimetableLessons", "Id");
        let model_periods = ids(&school, "TimetablePeriods", "Id");
        let model_days = ids(&school, "TimetableDays", "Id");
        for (set, field_name, within) in [
            ("Lessons", "PeriodId", &periods),
            ("Lessons", "ClassId", &groups),
            ("LessonStaff", "LessonId", &lessons),
            ("LessonStaff", "StaffId", &staff),
            ("LessonRooms", "LessonId", &lessons),
            ("LessonRooms", "RoomId", &rooms),
            ("TTPeriods", "DayId", &days),
            ("TTPeriods", "SessionId", &sessions),
            ("TTSessions", "DayId", &days),
            ("TimetableLessons", "TimetablePeriodId", &model_periods),
            ("TimetablePeriods", "TimetableDayId", &model_days),
            ("TimetableDayInstances", "TimetableDayId", &model_days),
            ("LessonClasses", "TimetableLessonId", &model),
            ("LessonClasses", "GroupId", &groups),
            ("ModelLessonStaff", "TimetableLessonId", &model),
            ("ModelLessonRooms", "TimetableLessonId", &model),
            ("ModelLessonRooms", "RoomId", &rooms),
            ("SeatingPlans", "GroupId", &groups),
            ("SeatingPlans", "RoomId", &rooms),
        ] {
            let rows = school.rows(set);
            assert!(!rows.is_empty(), "{set} is empty");
            for r in rows {
                assert!(
                    within.contains(field(r, field_name)),
                    "{set}.{field_name}: {r:?}"
                );
            }
        }
        let lesson_rows: std::collections::HashMap<(&str, &str), ()> = school
            .rows("Lessons")
            .iter()
            .map(|l| ((field(l, "PeriodId"), field(l, "ClassId")), ()))
            .collect();
        let mut lesson_marks = 0;
        for mark in school.rows("AttendMarks") {
            let instance = field(mark, "InstanceId");
            match field(mark, "Type") {
                "S" => assert!(sessions.contains(instance), "{mark:?}"),
                _ => {
                    lesson_marks += 1;
                    let pupil = field(mark, "StudentId");
                    let taught = school.rows("StudentMembers").iter().any(|m| {
                        field(m, "StudentId") == pupil
                            && lesson_rows.contains_key(&(instance, field(m, "GroupId")))
                    });
                    assert!(taught, "{pupil} was not in a lesson at {instance}");
                }
            }
        }
        assert!(lesson_marks > 0);
    }

    #[test]
    fn the_default_windows_answer_whatever_day_it_is() {
        for today in [
            date!(2026 - 12 - 06),
            date!(2027 - 03 - 03),
            date!(2027 - 09 - 01),
        ] {
            let school = sandbox("9992001", 40, 1, today);
            let today_text = super::ymd(today);
            let week_ago = super::ymd(today - time::Duration::days(7));
            let fortnight = super::ymd(today + time::Duration::days(14));
            let in_window = |set: &str, field_name: &str| {
                school.rows(set).iter().any(|r| {
                    let d = &field(r, field_name)[..10];
                    d >= week_ago.as_str() && d <= fortnight.as_str()
                })
            };
            assert!(in_window("Lessons", "StartDateTime"), "{today}");
            assert!(in_window("TTPeriods", "StartDateTime"), "{today}");
            assert!(
                school
                    .rows("AttendMarks")
                    .iter()
                    .any(|m| field(m, "Date") <= today_text.as_str()
                        && field(m, "Date")[..10] >= *week_ago),
                "{today}"
            );
        }
    }
}
