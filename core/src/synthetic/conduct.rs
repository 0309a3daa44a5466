//! Conduct: achievements and behaviour incidents of the roster's pupils, recorded by its staff
//! on every school day of the window up to today (and always a few today, even on a weekend, so
//! the `...ForToday` endpoints answer whenever the demo runs), each with the pupils and staff
//! involved, in the three views XoD gives them (Achievements, Behaviour, and both as Conducts);
//! the types and lookups the school records them with; and each pupil's points and counts for the
//! year, the week and the term, summed from those same events.
//!
//! Values follow XoD: `Category` and `ConductTypes.Type` are `Ach` or `Beh` (the values partners
//! pass as `conductCategory` and `conductType`), lookup types start with them (`AchActivity`,
//! `BehLocation`, ...), an event's `Time` is a named period of the day, the combined view's ids
//! carry the category (`Ach.100001`) where the single views' ids do not, and behaviour points are
//! positive (a pupil's conduct total is achievement points less behaviour points).

use std::collections::HashMap;

use serde_json::json;
use time::{Date, Duration, Weekday};

use super::days::{at, date};
use super::roster::{Group, StaffMember};
use super::{Days, Rng, Roster, Sets, row};
use crate::dataset::Row;

/// Achievements and behaviour incidents: XoD's `Ach` and `Beh`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Category {
    Ach,
    Beh,
}

impl Category {
    fn code(self) -> &'static str {
        match self {
            Self::Ach => "Ach",
            Self::Beh => "Beh",
        }
    }
}

/// Where an event happens: it decides the activity's period, the location and who records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Setting {
    /// In a lesson of one of the pupil's teaching groups, recorded by its teacher.
    Lesson,
    /// At registration, recorded by the pupil's tutor.
    Tutor,
    /// At break or lunch, recorded by whoever is on duty.
    Social,
    /// Away from school or out of hours, so possible on a weekend too.
    Outside,
}

/// A conduct type of the school: its MIS id, name and default points, and what its events are
/// like.
struct Kind {
    local_id: u32,
    name: &'static str,
    points: u32,
    /// Relative frequency among the types of its category.
    weight: usize,
    setting: Setting,
    /// Its events' activity (a description of the category's `...Activity` lookup).
    activity: &'static str,
    /// How many pupils one event involves, at least and at most.
    pupils: (usize, usize),
    sub_type: Option<&'static str>,
    /// Comments a member of staff might write; never about a named person.
    notes: &'static [&'static str],
}

const ACHIEVEMENT_TYPES: &[Kind] = &[
    Kind {
        local_id: 1,
        name: "Excellent Classwork",
        points: 2,
        weight: 30,
        setting: Setting::Lesson,
        activity: "Classwork",
        pupils: (1, 1),
        sub_type: None,
        notes: &[
            "Produced an exemplary answer and explained the method to the class.",
            "Consistently high-quality work throughout the lesson.",
        ],
    },
    Kind {
        local_id: 2,
        name: "Outstanding Homework",
        points: 2,
        weight: 20,
        setting: Setting::Lesson,
        activity: "Homework",
        pupils: (1, 1),
        sub_type: None,
        notes: &[
            "Homework went well beyond what was asked.",
            "Thorough, well-presented homework handed in early.",
        ],
    },
    Kind {
        local_id: 3,
        name: "Effort in Lesson",
        points: 1,
        weight: 25,
        setting: Setting::Lesson,
        activity: "Classwork",
        pupils: (1, 1),
        sub_type: None,
        notes: &[
            "Persevered with a difficult task without giving up.",
            "Excellent focus and contributions all lesson.",
        ],
    },
    Kind {
        local_id: 4,
        name: "Helping Others",
        points: 1,
        weight: 10,
        setting: Setting::Tutor,
        activity: "Tutor time",
        pupils: (1, 1),
        sub_type: None,
        notes: &[
            "Helped a new pupil find their way around school.",
            "Supported younger pupils during the reading programme.",
        ],
    },
    Kind {
        local_id: 5,
        name: "Star of the Week",
        points: 5,
        weight: 5,
        setting: Setting::Tutor,
        activity: "Tutor time",
        pupils: (1, 1),
        sub_type: None,
        notes: &["Nominated by the tutor team for a consistently positive week."],
    },
    Kind {
        local_id: 6,
        name: "Representing the School",
        points: 5,
        weight: 5,
        setting: Setting::Outside,
        activity: "Sport",
        pupils: (1, 4),
        sub_type: None,
        notes: &[
            "Played in the fixture against a neighbouring school.",
            "Performed at the district music festival.",
        ],
    },
    Kind {
        local_id: 7,
        name: "Community Contribution",
        points: 3,
        weight: 3,
        setting: Setting::Outside,
        activity: "Extra-curricular",
        pupils: (1, 2),
        sub_type: None,
        notes: &[
            "Volunteered at the community litter pick.",
            "Helped to run the charity cake sale.",
        ],
    },
    Kind {
        local_id: 8,
        name: "Improved Attendance",
        points: 3,
        weight: 2,
        setting: Setting::Tutor,
        activity: "Tutor time",
        pupils: (1, 1),
        sub_type: None,
        notes: &["Attendance has improved markedly this half term."],
    },
];

const BEHAVIOUR_TYPES: &[Kind] = &[
    Kind {
        local_id: 31,
        name: "Low-level Disruption",
        points: 1,
        weight: 30,
        setting: Setting::Lesson,
        activity: "Lesson",
        pupils: (1, 1),
        sub_type: None,
        notes: &[
            "Repeatedly talking over the teacher during the starter.",
            "Distracting others after two reminders.",
        ],
    },
    Kind {
        local_id: 32,
        name: "No Homework",
        points: 1,
        weight: 20,
        setting: Setting::Lesson,
        activity: "Lesson",
        pupils: (1, 1),
        sub_type: None,
        notes: &[
            "Homework not handed in by the deadline.",
            "Second missed homework this half term.",
        ],
    },
    Kind {
        local_id: 33,
        name: "Late to Lesson",
        points: 1,
        weight: 15,
        setting: Setting::Lesson,
        activity: "Moving between lessons",
        pupils: (1, 1),
        sub_type: None,
        notes: &["Arrived ten minutes late without a note."],
    },
    Kind {
        local_id: 34,
        name: "Uniform",
        points: 1,
        weight: 10,
        setting: Setting::Tutor,
        activity: "Tutor time",
        pupils: (1, 1),
        sub_type: None,
        notes: &["Not in correct uniform and no note from home."],
    },
    Kind {
        local_id: 35,
        name: "Mobile Phone",
        points: 2,
        weight: 8,
        setting: Setting::Lesson,
        activity: "Lesson",
        pupils: (1, 1),
        sub_type: None,
        notes: &["Phone out in the lesson; kept at reception until the end of the day."],
    },
    Kind {
        local_id: 36,
        name: "Defiance",
        points: 3,
        weight: 6,
        setting: Setting::Lesson,
        activity: "Lesson",
        pupils: (1, 1),
        sub_type: None,
        notes: &["Refused to follow a reasonable instruction."],
    },
    Kind {
        local_id: 37,
        name: "Lunchtime Incident",
        points: 2,
        weight: 6,
        setting: Setting::Social,
        activity: "Lunch",
        pupils: (1, 1),
        sub_type: None,
        notes: &["Throwing food in the dining hall."],
    },
    Kind {
        local_id: 38,
        name: "Bullying",
        points: 5,
        weight: 2,
        setting: Setting::Social,
        activity: "Break",
        pupils: (1, 1),
        sub_type: Some("BehBullMode"),
        notes: &["Name-calling reported by another pupil; being investigated."],
    },
    Kind {
        local_id: 39,
        name: "Fighting",
        points: 5,
        weight: 2,
        setting: Setting::Social,
        activity: "Break",
        pupils: (2, 2),
        sub_type: None,
        notes: &["Physical altercation on the playground; the pupils were separated by staff."],
    },
    Kind {
        local_id: 40,
        name: "Misconduct Outside School",
        points: 3,
        weight: 1,
        setting: Setting::Outside,
        activity: "Outside school",
        pupils: (1, 1),
        sub_type: None,
        notes: &["Reported by a member of the public; the pupil was in school uniform."],
    },
    Kind {
        local_id: 41,
        name: "Online Misconduct",
        points: 3,
        weight: 1,
        setting: Setting::Outside,
        activity: "Outside school",
        pupils: (1, 1),
        sub_type: None,
        notes: &["Unkind messages in a class group chat, reported by a parent."],
    },
];

/// The lookups write-back accepts, as XoD names them: type, then (code, description) in display
/// order. Every activity, location, period, outcome, status and role the events use is here.
const LOOKUPS: &[(&str, &[(&str, &str)])] = &[
    (
        "AchActivity",
        &[
            ("CW", "Classwork"),
            ("HW", "Homework"),
            ("TT", "Tutor time"),
            ("SP", "Sport"),
            ("EC", "Extra-curricular"),
        ],
    ),
    (
        "AchOutcome",
        &[
            ("PR", "Praise"),
            ("PC", "Postcard home"),
            ("CE", "Certificate"),
            ("HT", "Head teacher's award"),
        ],
    ),
    ("AchStaffRole", &[("AW", "Awarded by")]),
    (
        "BehActivity",
        &[
            ("LS", "Lesson"),
            ("MV", "Moving between lessons"),
            ("TT", "Tutor time"),
            ("BR", "Break"),
            ("LU", "Lunch"),
            ("OS", "Outside school"),
        ],
    ),
    (
        "BehLocation",
        &[
            ("CL", "Classroom"),
            ("FR", "Form room"),
            ("CO", "Corridor"),
            ("PG", "Playground"),
            ("DH", "Dining hall"),
            ("FI", "Field"),
            ("OF", "Off site"),
            ("OG", "Outside school grounds"),
        ],
    ),
    (
        "BehStatus",
        &[
            ("RS", "Resolved"),
            ("UN", "Unresolved"),
            ("IV", "Under investigation"),
        ],
    ),
    (
        "BehOutcome",
        &[
            ("VW", "Verbal warning"),
            ("DT", "Detention"),
            ("PC", "Parent contacted"),
            ("RP", "On report"),
            ("IN", "Referred for intervention"),
        ],
    ),
    (
        "BehStuRole",
        &[
            ("PT", "Participant"),
            ("IS", "Instigator"),
            ("VI", "Victim"),
            ("WI", "Witness"),
        ],
    ),
    (
        "BehBullMode",
        &[
            ("VB", "Verbal"),
            ("PH", "Physical"),
            ("CY", "Cyber"),
            ("PJ", "Prejudice-related"),
        ],
    ),
    (
        "BehEventTimes",
        &[
            ("RG", "Registration"),
            ("P1", "Period 1"),
            ("P2", "Period 2"),
            ("BR", "Break"),
            ("P3", "Period 3"),
            ("P4", "Period 4"),
            ("LT", "Lunchtime"),
            ("P5", "Period 5"),
            ("AS", "After school"),
            ("OH", "Out of school hours"),
        ],
    ),
    (
        "BehStaffRole",
        &[("RB", "Reported by"), ("DW", "Dealt with by")],
    ),
];

/// The named periods of a school day and when each starts, in minutes after midnight
/// (`Out of school hours` is a weekend morning).
const PERIODS: &[(&str, u32)] = &[
    ("Registration", 520),
    ("Period 1", 540),
    ("Period 2", 600),
    ("Break", 660),
    ("Period 3", 680),
    ("Period 4", 740),
    ("Lunchtime", 800),
    ("Period 5", 850),
    ("After school", 920),
    ("Out of school hours", 600),
];
const LESSON_PERIODS: &[usize] = &[1, 2, 4, 5, 7];
const PLAYGROUND: &[&str] = &["Playground", "Corridor", "Field", "Dining hall"];

/// Achievements and behaviour incidents per 100 pupils per school day: about one achievement
/// per two pupils a week and one incident per five.
const ACHIEVEMENTS_PER_100: usize = 10;
const INCIDENTS_PER_100: usize = 4;
/// Events of each category dated today, at the least.
const TODAY_AT_LEAST: usize = 3;
/// The first MIS ids of achievements and of behaviour incidents.
const FIRST_ACHIEVEMENT: u32 = 100_001;
const FIRST_INCIDENT: u32 = 500_001;

/// A pupil in an event.
struct Involved {
    /// Index into [`Roster::pupils`].
    pupil: usize,
    role: Option<&'static str>,
    points: u32,
}

/// One achievement or behaviour incident with everyone in it.
struct Event<'a> {
    category: Category,
    id: u32,
    kind: &'static Kind,
    date: Date,
    period: (&'static str, u32),
    location: &'static str,
    subject: Option<&'a str>,
    recorded_by: &'a StaffMember,
    recorded_minutes: u32,
    outcome: Option<&'static str>,
    outcome_date: Date,
    status: Option<&'static str>,
    parent_informed: bool,
    note: &'static str,
    pupils: Vec<Involved>,
    staff: Vec<(&'a StaffMember, &'static str)>,
}

impl Event<'_> {
    /// The id of the combined view: `Ach.100001`.
    fn conduct_id(&self) -> String {
        format!("{}.{}", self.category.code(), self.id)
    }
}

/// The roster's groups and staff by id, looked up for every event.
struct School<'a> {
    roster: &'a Roster,
    groups: HashMap<&'a str, &'a Group>,
    staff: HashMap<&'a str, &'a StaffMember>,
}

impl<'a> School<'a> {
    fn of(roster: &'a Roster) -> Self {
        Self {
            roster,
            groups: roster.groups.iter().map(|g| (g.id.as_str(), g)).collect(),
            staff: roster.staff.iter().map(|s| (s.id.as_str(), s)).collect(),
        }
    }

    /// The pupil's groups of one kind, in membership order.
    fn groups_of(&self, pupil: usize, kind: &str) -> Vec<&'a Group> {
        self.roster.pupils[pupil]
            .groups
            .iter()
            .filter_map(|id| self.groups.get(id.as_str()).copied())
            .filter(|g| g.kind == kind)
            .collect()
    }

    fn any_staff(&self, rng: &mut Rng) -> &'a StaffMember {
        &self.roster.staff[rng.below(self.roster.staff.len())]
    }

    fn staff_of(&self, group: Option<&Group>, rng: &mut Rng) -> &'a StaffMember {
        group
            .and_then(|g| self.staff.get(g.staff_id.as_str()).copied())
            .unwrap_or_else(|| self.any_staff(rng))
    }

    /// The pupil's tutor: the member of staff of their registration group.
    fn tutor(&self, pupil: usize, rng: &mut Rng) -> &'a StaffMember {
        let reg = self.groups_of(pupil, "RegGrp").into_iter().next();
        self.staff_of(reg, rng)
    }
}

/// The result sets of the conduct area.
pub(super) fn sets(roster: &Roster, days: &Days, rng: &mut Rng) -> Sets {
    let school = School::of(roster);
    let events = if roster.pupils.is_empty() || roster.staff.is_empty() {
        Vec::new()
    } else {
        events(&school, days, rng)
    };
    let (achievements, incidents): (Vec<&Event>, Vec<&Event>) =
        events.iter().partition(|e| e.category == Category::Ach);
    let mut sets: Sets = Vec::with_capacity(14);
    sets.extend(achievement_sets(roster, &achievements));
    sets.extend(behaviour_sets(roster, &incidents));
    sets.extend(conduct_sets(roster, &events));
    sets.push(("ConductTypes".into(), type_rows()));
    sets.push(("ConductLookups".into(), lookup_rows()));
    sets.extend(stats_sets(roster, days, &events));
    sets
}

/// Every event, in date order: each school day of the window up to today gets its share, and
/// today (a school day or not) at least [`TODAY_AT_LEAST`] of each category.
fn events<'a>(school: &School<'a>, days: &Days, rng: &mut Rng) -> Vec<Event<'a>> {
    let mut dates = days.school_days(Days::FIRST, 0);
    if dates.last() != Some(&days.today) {
        dates.push(days.today);
    }
    let pupils = school.roster.pupils.len();
    let mut next_id = [FIRST_ACHIEVEMENT, FIRST_INCIDENT];
    let mut events = Vec::new();
    for day in dates {
        let weekend = is_weekend(day);
        for (slot, (category, per_100)) in [
            (Category::Ach, ACHIEVEMENTS_PER_100),
            (Category::Beh, INCIDENTS_PER_100),
        ]
        .into_iter()
        .enumerate()
        {
            let mut count = if weekend {
                pupils / 400
            } else {
                jittered(pupils * per_100 / 100, rng)
            };
            if day == days.today {
                count = count.max(TODAY_AT_LEAST);
            }
            for _ in 0..count {
                events.push(event(school, days, rng, (category, next_id[slot]), day));
                next_id[slot] += 1;
            }
        }
    }
    events
}

/// `base`, give or take a fifth.
fn jittered(base: usize, rng: &mut Rng) -> usize {
    let spread = base / 5;
    base - spread + rng.below(2 * spread + 1)
}

fn is_weekend(day: Date) -> bool {
    matches!(day.weekday(), Weekday::Saturday | Weekday::Sunday)
}

/// The first weekday after `day`: when a detention given on `day` is sat.
fn next_school_day(day: Date) -> Date {
    let mut next = day + Duration::days(1);
    while is_weekend(next) {
        next += Duration::days(1);
    }
    next
}

/// A type of the category, by weight; on a weekend only one whose events happen out of school.
fn pick_kind(category: Category, weekend: bool, rng: &mut Rng) -> &'static Kind {
    let table = match category {
        Category::Ach => ACHIEVEMENT_TYPES,
        Category::Beh => BEHAVIOUR_TYPES,
    };
    let eligible = |k: &&Kind| !weekend || k.setting == Setting::Outside;
    let total: usize = table.iter().filter(eligible).map(|k| k.weight).sum();
    let mut draw = rng.below(total.max(1));
    for kind in table.iter().filter(eligible) {
        if draw < kind.weight {
            return kind;
        }
        draw -= kind.weight;
    }
    &table[0]
}

/// One event of `category` numbered `id` on `day`: a pupil drawn at random, the member of staff
/// the setting implies (the teacher of the pupil's group in that subject, their tutor, or
/// anyone on duty), an outcome as severe as the points, and any other pupils from the same year.
fn event<'a>(
    school: &School<'a>,
    days: &Days,
    rng: &mut Rng,
    (category, id): (Category, u32),
    day: Date,
) -> Event<'a> {
    let weekend = is_weekend(day);
    let kind = pick_kind(category, weekend, rng);
    let pupil = rng.below(school.roster.pupils.len());
    let (recorded_by, subject) = recorder(school, kind.setting, pupil, rng);
    let period = PERIODS[period_index(kind, weekend, rng)];
    let location = location(category, kind, period.0, rng);
    let outcome = outcome(category, kind.points, rng);
    let outcome_date = if outcome == Some("Detention") {
        next_school_day(day)
    } else {
        day
    };
    let age = (days.today - day).whole_days();
    let status = (category == Category::Beh).then_some(match (age <= 1, kind.points >= 5) {
        (false, _) => "Resolved",
        (true, false) => "Unresolved",
        (true, true) => "Under investigation",
    });
    let parent_informed = !matches!(outcome, Some("Verbal warning") | Some("Praise"));
    let pupils = involved(school, category, kind, pupil, rng);
    let mut staff = vec![(
        recorded_by,
        match category {
            Category::Ach => "Awarded by",
            Category::Beh => "Reported by",
        },
    )];
    if category == Category::Beh && kind.points >= 3 {
        let tutor = school.tutor(pupil, rng);
        if tutor.id != recorded_by.id {
            staff.push((tutor, "Dealt with by"));
        }
    }
    Event {
        category,
        id,
        kind,
        date: day,
        period,
        location,
        subject,
        recorded_by,
        recorded_minutes: period.1 + 5 + rng.below(50) as u32,
        outcome,
        outcome_date,
        status,
        parent_informed,
        note: kind.notes[rng.below(kind.notes.len())],
        pupils,
        staff,
    }
}

/// Who records an event in this setting, and the subject of the lesson it happened in.
fn recorder<'a>(
    school: &School<'a>,
    setting: Setting,
    pupil: usize,
    rng: &mut Rng,
) -> (&'a StaffMember, Option<&'a str>) {
    match setting {
        Setting::Lesson => {
            let teaching = school.groups_of(pupil, "TeachingGrp");
            if teaching.is_empty() {
                return (school.tutor(pupil, rng), None);
            }
            let group = teaching[rng.below(teaching.len())];
            let subject = group.subject.as_ref().map(|(_, name)| name.as_str());
            (school.staff_of(Some(group), rng), subject)
        }
        Setting::Tutor => (school.tutor(pupil, rng), None),
        Setting::Social | Setting::Outside => (school.any_staff(rng), None),
    }
}

/// The index in [`PERIODS`] of when an event of this type happens.
fn period_index(kind: &Kind, weekend: bool, rng: &mut Rng) -> usize {
    match kind.setting {
        Setting::Lesson => LESSON_PERIODS[rng.below(LESSON_PERIODS.len())],
        Setting::Tutor => 0,
        Setting::Social if kind.activity == "Lunch" => 6,
        Setting::Social => [3, 6][rng.below(2)],
        Setting::Outside if weekend => 9,
        Setting::Outside => 8,
    }
}

fn location(category: Category, kind: &Kind, period: &str, rng: &mut Rng) -> &'static str {
    match kind.setting {
        Setting::Lesson => "Classroom",
        Setting::Tutor => "Form room",
        Setting::Social if period == "Lunchtime" && kind.activity == "Lunch" => "Dining hall",
        Setting::Social => rng.pick(PLAYGROUND),
        Setting::Outside if category == Category::Ach => "Off site",
        Setting::Outside => "Outside school grounds",
    }
}

/// An outcome as severe as the points: praise to a head teacher's award for achievements, a
/// verbal warning to a referral for behaviour.
fn outcome(category: Category, points: u32, rng: &mut Rng) -> Option<&'static str> {
    let choices: &[&str] = match (category, points) {
        (Category::Ach, 0..=1) => &["Praise"],
        (Category::Ach, 2) => &["Praise", "Praise", "Postcard home"],
        (Category::Ach, 3..=4) => &["Certificate"],
        (Category::Ach, _) => &["Head teacher's award", "Certificate"],
        (Category::Beh, 0..=1) => &[
            "Verbal warning",
            "Verbal warning",
            "Verbal warning",
            "Detention",
        ],
        (Category::Beh, 2) => &["Verbal warning", "Detention", "Parent contacted"],
        (Category::Beh, _) => &[
            "Detention",
            "Detention",
            "Parent contacted",
            "On report",
            "Referred for intervention",
        ],
    };
    Some(rng.pick(choices))
}

/// The pupils of an event: the one drawn and, for a type that involves several, others of the
/// same year group, each with the type's points.
fn involved(
    school: &School<'_>,
    category: Category,
    kind: &Kind,
    pupil: usize,
    rng: &mut Rng,
) -> Vec<Involved> {
    let (least, most) = kind.pupils;
    let count = least + rng.below(most - least + 1);
    let role = match (category, kind.sub_type) {
        (Category::Ach, _) => None,
        (Category::Beh, Some(_)) => Some("Instigator"),
        (Category::Beh, None) => Some("Participant"),
    };
    let mut pupils = vec![Involved {
        pupil,
        role,
        points: kind.points,
    }];
    let year = school.groups_of(pupil, "YearGrp").into_iter().next();
    let members = year.map(|g| g.members.as_slice()).unwrap_or_default();
    for _ in 1..count {
        if members.len() <= pupils.len() {
            break;
        }
        let mut at = rng.below(members.len());
        while pupils.iter().any(|p| p.pupil == members[at]) {
            at = (at + 1) % members.len();
        }
        pupils.push(Involved {
            pupil: members[at],
            role,
            points: kind.points,
        });
    }
    pupils
}

/// An event's pupil and staff rows in one view: `link` is the view's link field and the
/// event's id there; in the views with behaviour, pupils' rows carry the outcome and role.
fn involved_rows(
    roster: &Roster,
    event: &Event,
    (link, parent): &(&str, String),
    outcomes: bool,
    (students, staff): (&mut Vec<Row>, &mut Vec<Row>),
) {
    let suffix = event.conduct_id();
    for p in &event.pupils {
        let student_id = &roster.pupils[p.pupil].id;
        let mut r = row(json!({
            "Id": format!("PL-{student_id}.{suffix}"), "StudentId": student_id,
            *link: parent, "Points": p.points,
        }));
        if outcomes {
            r.insert("Outcome".into(), json!(event.outcome));
            r.insert("Role".into(), json!(p.role));
        }
        students.push(r);
    }
    for (member, role) in &event.staff {
        staff.push(row(json!({
            "Id": format!("PWT-{}.{suffix}", member.id), "StaffId": member.id,
            *link: parent, "StaffRole": role,
        })));
    }
}

/// Achievements with their pupils and staff (XoD's AchievementForDateRange).
fn achievement_sets(roster: &Roster, events: &[&Event]) -> Sets {
    let mut achievements = Vec::with_capacity(events.len());
    let mut students = Vec::with_capacity(events.len());
    let mut staff = Vec::with_capacity(events.len());
    for event in events {
        achievements.push(row(json!({
            "Id": event.id.to_string(), "ConductId": event.conduct_id(),
            "AchievementType": event.kind.name, "Date": date(event.date),
            "Activity": event.kind.activity, "Location": event.location,
            "RecordedBy": event.recorded_by.display_name,
            "RecordedOn": at(event.date, event.recorded_minutes),
            "Description": event.note, "Category": event.category.code(),
        })));
        let link = ("AchievementId", event.id.to_string());
        involved_rows(roster, event, &link, false, (&mut students, &mut staff));
    }
    vec![
        ("Achievements".into(), achievements),
        ("StudentAchievements".into(), students),
        ("StaffAchievements".into(), staff),
    ]
}

/// Behaviour incidents with their pupils and staff (XoD's BehaviourForDateRange).
fn behaviour_sets(roster: &Roster, events: &[&Event]) -> Sets {
    let mut incidents = Vec::with_capacity(events.len());
    let mut students = Vec::with_capacity(events.len());
    let mut staff = Vec::with_capacity(events.len());
    for event in events {
        incidents.push(row(json!({
            "Id": event.id.to_string(), "ConductId": event.conduct_id(),
            "BehaviourType": event.kind.name, "Date": date(event.date), "Time": event.period.0,
            "Activity": event.kind.activity, "Status": event.status, "Location": event.location,
            "RecordedBy": event.recorded_by.display_name, "Outcome": event.outcome,
            "RecordedOn": at(event.date, event.recorded_minutes), "Description": event.note,
            "Subject": event.subject, "Category": event.category.code(),
        })));
        let link = ("BehaviourId", event.id.to_string());
        involved_rows(roster, event, &link, true, (&mut students, &mut staff));
    }
    vec![
        ("Behaviour".into(), incidents),
        ("StudentBehaviour".into(), students),
        ("StaffBehaviour".into(), staff),
    ]
}

/// Both kinds of event in one view (XoD's ConductForDateRange): ids carry the category, and
/// `ConductId` is the event's id in its own view.
fn conduct_sets(roster: &Roster, events: &[Event]) -> Sets {
    let mut conducts = Vec::with_capacity(events.len());
    let mut students = Vec::with_capacity(events.len());
    let mut staff = Vec::with_capacity(events.len());
    for event in events {
        let conduct_id = event.conduct_id();
        conducts.push(row(json!({
            "Id": conduct_id, "ConductId": event.id.to_string(), "ConductType": event.kind.name,
            "Date": date(event.date), "Time": event.period.0, "Activity": event.kind.activity,
            "Status": event.status, "Location": event.location,
            "RecordedBy": event.recorded_by.display_name, "Outcome": event.outcome,
            "OutcomeDate": date(event.outcome_date),
            "ParentGuardianInformed": u8::from(event.parent_informed),
            "RecordedOn": at(event.date, event.recorded_minutes), "Description": event.note,
            "Subject": event.subject, "Category": event.category.code(),
        })));
        let link = ("ConductId", conduct_id);
        involved_rows(roster, event, &link, true, (&mut students, &mut staff));
    }
    vec![
        ("Conducts".into(), conducts),
        ("StudentConducts".into(), students),
        ("StaffConducts".into(), staff),
    ]
}

/// The achievement and behaviour types, with the points they give by default.
fn type_rows() -> Vec<Row> {
    [
        (Category::Ach, ACHIEVEMENT_TYPES),
        (Category::Beh, BEHAVIOUR_TYPES),
    ]
    .into_iter()
    .flat_map(|(category, kinds)| {
        kinds.iter().enumerate().map(move |(order, kind)| {
            row(json!({
                "Id": format!("{}.{}", category.code(), kind.local_id), "Type": category.code(),
                "LocalId": kind.local_id.to_string(), "Description": kind.name,
                "Points": kind.points, "SubTypeLookup": kind.sub_type, "DisplayOrder": order + 1,
            }))
        })
    })
    .collect()
}

/// Every lookup of [`LOOKUPS`], numbered within its type.
fn lookup_rows() -> Vec<Row> {
    LOOKUPS
        .iter()
        .flat_map(|(lookup_type, entries)| {
            entries
                .iter()
                .enumerate()
                .map(move |(n, (code, description))| {
                    row(json!({
                        "Id": format!("{lookup_type}.{}", n + 1), "LookupType": lookup_type,
                        "LocalId": (n + 1).to_string(), "Code": code, "Description": description,
                        "DisplayOrder": n + 1,
                    }))
                })
        })
        .collect()
}

/// A pupil's events and points over some span.
#[derive(Debug, Default, Clone, Copy)]
struct Tally {
    achievements: u32,
    achievement_points: u32,
    incidents: u32,
    behaviour_points: u32,
    detentions: u32,
    /// Detentions sat from today to the end of the week (the week's tally only).
    detentions_ahead: u32,
    interventions: u32,
    report_cards: u32,
}

impl Tally {
    /// Counts a pupil's part in an event; `detention` says whether a detention of it counts.
    fn add(&mut self, event: &Event, points: u32, detention: bool) {
        match event.category {
            Category::Ach => {
                self.achievements += 1;
                self.achievement_points += points;
            }
            Category::Beh => {
                self.incidents += 1;
                self.behaviour_points += points;
                self.interventions += u32::from(event.outcome == Some("Referred for intervention"));
                self.report_cards += u32::from(event.outcome == Some("On report"));
            }
        }
        self.detentions += u32::from(detention);
    }
}

/// Each pupil's tallies for the academic year, this week (Monday to today; detentions sat this
/// week) and this term, summed from the events so the three sets agree with the event views.
fn stats_sets(roster: &Roster, days: &Days, events: &[Event]) -> Sets {
    let today = days.today;
    let year_start = days.academic_year_start();
    let term_start = days.day(Days::FIRST).max(year_start);
    let week_start = today - Duration::days(i64::from(today.weekday().number_days_from_monday()));
    let week_end = week_start + Duration::days(6);
    let mut tallies = vec![[Tally::default(); 3]; roster.pupils.len()];
    for event in events {
        let detention = event.outcome == Some("Detention");
        let sat_this_week = detention && (week_start..=week_end).contains(&event.outcome_date);
        for p in &event.pupils {
            let [year, week, term] = &mut tallies[p.pupil];
            if event.date >= year_start {
                year.add(event, p.points, detention);
            }
            if event.date >= term_start {
                term.add(event, p.points, detention);
            }
            if (week_start..=today).contains(&event.date) {
                week.add(event, p.points, false);
            }
            week.detentions += u32::from(sat_this_week);
            week.detentions_ahead += u32::from(sat_this_week && event.outcome_date >= today);
        }
    }
    let mut points = Vec::with_capacity(tallies.len());
    let mut weekly = Vec::with_capacity(tallies.len());
    let mut termly = Vec::with_capacity(tallies.len());
    for (pupil, [year, week, term]) in roster.pupils.iter().zip(&tallies) {
        let id = &pupil.id;
        points.push(row(json!({
            "Id": id, "TotalAchievementPoints": year.achievement_points,
            "TotalBehaviourPoints": year.behaviour_points,
            "TotalConductPoints": i64::from(year.achievement_points) - i64::from(year.behaviour_points),
            "NumberOfDetentions": year.detentions, "NumberOfInterventions": year.interventions,
            "NumberOfReportCards": year.report_cards,
        })));
        weekly.push(row(json!({
            "Id": id, "WeeklyAchievementEvents": week.achievements,
            "WeeklyAchievementPoints": week.achievement_points,
            "WeeklyBehaviourIncidents": week.incidents, "WeeklyBehaviourPoints": week.behaviour_points,
            "WeeklyDetentionsTotal": week.detentions, "WeeklyDetentionsFuture": week.detentions_ahead,
            "WeekInterventions": week.interventions,
        })));
        termly.push(row(json!({
            "Id": id, "TermAchievementEvents": term.achievements,
            "TermAchievementPoints": term.achievement_points,
            "TermBehaviourIncidents": term.incidents, "TermBehaviourPoints": term.behaviour_points,
            "TermDetentions": term.detentions, "TermInterventions": term.interventions,
        })));
    }
    vec![
        ("ConductPoints".into(), points),
        ("WeeklyStats".into(), weekly),
        ("TermlyStats".into(), termly),
    ]
}

#[cfg(test)]
mod tests {
    use super::super::testing::{text, values};
    use std::collections::{BTreeMap, BTreeSet};

    use time::macros::date;

    use super::super::{SyntheticSchool, sandbox};
    use crate::dataset::Row;

    const SETS: [&str; 14] = [
        "Achievements",
        "StudentAchievements",
        "StaffAchievements",
        "Behaviour",
        "StudentBehaviour",
        "StaffBehaviour",
        "Conducts",
        "StudentConducts",
        "StaffConducts",
        "ConductTypes",
        "ConductLookups",
        "ConductPoints",
        "WeeklyStats",
        "TermlyStats",
    ];

    /// A Sunday and a Wednesday.
    fn schools() -> [(SyntheticSchool, &'static str); 2] {
        [
            (
                sandbox("9992001", 120, 7, date!(2026 - 12 - 06)),
                "2026-12-06",
            ),
            (
                sandbox("9992001", 120, 7, date!(2027 - 03 - 10)),
                "2027-03-10",
            ),
        ]
    }

    fn number(row: &Row, field: &str) -> i64 {
        row[field]
            .as_i64()
            .unwrap_or_else(|| panic!("{field} is not a number"))
    }

    #[test]
    fn every_set_has_rows_and_today_has_events_of_both_kinds() {
        for (school, today) in schools() {
            for set in SETS {
                assert!(!school.rows(set).is_empty(), "{set} is empty on {today}");
            }
            for set in ["Achievements", "Behaviour", "Conducts"] {
                let dates: Vec<String> = school.rows(set).iter().map(|r| text(r, "Date")).collect();
                assert!(
                    dates.iter().filter(|d| d[..10] == *today).count() >= 3,
                    "{set} {today}"
                );
                assert!(
                    dates.iter().all(|d| d[..10] <= *today),
                    "{set} has a future event"
                );
            }
            for category in ["Ach", "Beh"] {
                assert!(
                    school.rows("Conducts").iter().any(|r| {
                        r["Category"] == category && text(r, "Date").starts_with(today)
                    })
                );
            }
        }
    }

    #[test]
    fn people_and_links_resolve() {
        for (school, _) in schools() {
            let students = values(&school, "Students", "Id");
            let staff = values(&school, "Staff", "Id");
            let staff_names = values(&school, "Staff", "DisplayName");
            for (set, link, parent) in [
                ("StudentAchievements", "AchievementId", "Achievements"),
                ("StaffAchievements", "AchievementId", "Achievements"),
                ("StudentBehaviour", "BehaviourId", "Behaviour"),
                ("StaffBehaviour", "BehaviourId", "Behaviour"),
                ("StudentConducts", "ConductId", "Conducts"),
                ("StaffConducts", "ConductId", "Conducts"),
            ] {
                let parents = values(&school, parent, "Id");
                for r in school.rows(set) {
                    assert!(parents.contains(&text(r, link)), "{set}.{link} {}", r[link]);
                    let person = if set.starts_with("Student") {
                        "StudentId"
                    } else {
                        "StaffId"
                    };
                    let known = if person == "StudentId" {
                        &students
                    } else {
                        &staff
                    };
                    assert!(known.contains(&text(r, person)), "{set}.{person}");
                }
            }
            for set in ["ConductPoints", "WeeklyStats", "TermlyStats"] {
                assert_eq!(values(&school, set, "Id"), students, "{set}");
            }
            for set in ["Achievements", "Behaviour", "Conducts"] {
                assert!(
                    school
                        .rows(set)
                        .iter()
                        .all(|r| staff_names.contains(&text(r, "RecordedBy")))
                );
            }
            // Each event is in the combined view and back.
            let conducts = values(&school, "Conducts", "Id");
            for (set, category) in [("Achievements", "Ach"), ("Behaviour", "Beh")] {
                for r in school.rows(set) {
                    assert_eq!(
                        text(r, "ConductId"),
                        format!("{category}.{}", text(r, "Id"))
                    );
                    assert!(conducts.contains(&text(r, "ConductId")));
                }
            }
            let single = school.rows("Achievements").len() + school.rows("Behaviour").len();
            assert_eq!(school.rows("Conducts").len(), single);
        }
    }

    #[test]
    fn points_follow_the_types_and_add_up_per_pupil() {
        for (school, _) in schools() {
            let type_points: BTreeMap<(String, String), i64> = school
                .rows("ConductTypes")
                .iter()
                .map(|t| {
                    (
                        (text(t, "Type"), text(t, "Description")),
                        number(t, "Points"),
                    )
                })
                .collect();
            let event_type: BTreeMap<String, (String, String)> = school
                .rows("Conducts")
                .iter()
                .map(|c| (text(c, "Id"), (text(c, "Category"), text(c, "ConductType"))))
                .collect();
            let mut totals: BTreeMap<String, [i64; 2]> = BTreeMap::new();
            for link in school.rows("StudentConducts") {
                let kind = &event_type[&text(link, "ConductId")];
                assert_eq!(number(link, "Points"), type_points[kind]);
                let slot = usize::from(kind.0 == "Beh");
                totals.entry(text(link, "StudentId")).or_default()[slot] += number(link, "Points");
            }
            for points in school.rows("ConductPoints") {
                let [ach, beh] = totals.get(&text(points, "Id")).copied().unwrap_or_default();
                assert_eq!(number(points, "TotalAchievementPoints"), ach);
                assert_eq!(number(points, "TotalBehaviourPoints"), beh);
                assert_eq!(number(points, "TotalConductPoints"), ach - beh);
            }
            let weekly: i64 = school
                .rows("WeeklyStats")
                .iter()
                .map(|w| number(w, "WeeklyAchievementEvents"))
                .sum();
            assert!(weekly > 0);
        }
    }

    #[test]
    fn types_and_lookups_answer_the_conduct_type_filter() {
        let (school, _) = &schools()[0];
        for t in school.rows("ConductTypes") {
            assert!(["Ach", "Beh"].contains(&text(t, "Type").as_str()));
            assert!(text(t, "Id").starts_with(&text(t, "Type")));
        }
        let lookups = values(school, "ConductLookups", "LookupType");
        assert!(
            lookups
                .iter()
                .all(|l| l.starts_with("Ach") || l.starts_with("Beh"))
        );
        for used in ["Activity", "Location", "Time", "Outcome", "Status"] {
            let descriptions: BTreeSet<String> = school
                .rows("ConductLookups")
                .iter()
                .map(|l| text(l, "Description"))
                .collect();
            for r in school.rows("Behaviour") {
                assert!(descriptions.contains(&text(r, used)), "{used} {}", r[used]);
            }
        }
    }
}
