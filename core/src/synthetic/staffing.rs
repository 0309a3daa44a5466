//! Staffing: staff absences with certificates, contracts and roles.
//!
//! Absences fall on school days of the academic year so far, never two at once for one
//! person; one or two members of staff are off today. Contracts and roles follow the roster:
//! a teacher's post is in the subject they teach, and the staff who lead year, house and
//! registration groups hold those roles.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};
use time::{Date, Duration, Month, Weekday};

use super::days::{at, clock, date, ymd};
use super::roster::StaffMember;
use super::{Days, FORENAMES, Rng, Roster, SURNAMES, Sets, row};
use crate::dataset::Row;

/// A kind of absence as the MIS records it.
struct AbsenceKind {
    kind: &'static str,
    payroll: &'static str,
    /// Shortest and longest, in school days; `(0, 0)` for part of one day.
    length: (usize, usize),
    /// Notes the MIS may hold for it.
    notes: &'static [&'static str],
}

const ILLNESS: AbsenceKind = AbsenceKind {
    kind: "Illness",
    payroll: "Sickness",
    length: (1, 3),
    notes: &["Phoned in before 7am", "Return-to-work interview held"],
};

/// Other kinds, each with the percentage of absences that are of that kind (illness is the
/// rest).
const OTHER_KINDS: &[(AbsenceKind, u64)] = &[
    (
        AbsenceKind {
            kind: "Training",
            payroll: "Authorised Paid",
            length: (1, 2),
            notes: &[
                "Exam board moderation training",
                "Subject network CPD day",
                "Mental health first aid course",
            ],
        },
        25,
    ),
    (
        AbsenceKind {
            kind: "Medical Appointment",
            payroll: "Authorised Paid",
            length: (0, 0),
            notes: &["Hospital appointment"],
        },
        15,
    ),
    (
        AbsenceKind {
            kind: "Compassionate",
            payroll: "Authorised Paid",
            length: (1, 3),
            notes: &["Funeral of a relative"],
        },
        10,
    ),
    (
        AbsenceKind {
            kind: "Public Duties",
            payroll: "Authorised Paid",
            length: (2, 5),
            notes: &["Jury service"],
        },
        4,
    ),
];

/// Illness categories of short absences, and of long ones (six school days or more).
const SHORT_ILLNESSES: &[&str] = &[
    "Cold/Flu",
    "Gastrointestinal",
    "Headache/Migraine",
    "Infections",
    "Not specified",
];
const LONG_ILLNESSES: &[&str] = &[
    "Back/Neck problems",
    "Stress/Depression/Anxiety",
    "Operation/Recovery",
    "Infections",
];

/// The hours of a part-day absence: from 13:00 to 15:30.
const AFTERNOON: (u32, u32) = (13 * 60, 15 * 60 + 30);

/// The posts of the first members of staff, when they teach: name and category.
const LEADERSHIP: [(&str, &str); 2] = [
    ("Deputy Headteacher", "Deputy Head"),
    ("Assistant Headteacher", "Assistant Head"),
];

/// Support posts, with their post category, hours a week and weeks a year.
const SUPPORT_POSTS: &[(&str, &str, f64, f64)] = &[
    ("Teaching Assistant", "Teaching Assistant", 32.5, 39.0),
    ("Cover Supervisor", "Other Support Staff", 32.5, 39.0),
    ("Exams Officer", "Administrative", 37.0, 52.14),
    ("Learning Mentor", "Other Support Staff", 32.5, 39.0),
    ("Science Technician", "Technician", 37.0, 41.0),
    ("Administrative Officer", "Administrative", 37.0, 52.14),
];

/// The staffing result sets: absences of the academic year so far with the certificates of
/// long illnesses, and each member of staff's contracts with the roles held under them.
pub(super) fn sets(roster: &Roster, days: &Days, rng: &mut Rng) -> Sets {
    let (absences, certificates) = absences(roster, days, rng);
    let (contracts, roles) = contracts(roster, days, rng);
    vec![
        ("StaffAbsence".into(), absences),
        ("AbsenceCertificate".into(), certificates),
        ("StaffContracts".into(), contracts),
        ("StaffRoles".into(), roles),
    ]
}

/// An absence planned for a member of staff.
struct Absence<'a> {
    kind: &'a AbsenceKind,
    start: Date,
    end: Date,
    /// School days lost (0 for part of a day).
    days: usize,
    long: bool,
}

/// Up to three absences per member of staff spread over the school days of the year so far
/// (so some fall in the last few weeks), one or two members of staff off ill today, and one
/// long illness with a certificate at least.
fn absences(roster: &Roster, days: &Days, rng: &mut Rng) -> (Vec<Row>, Vec<Row>) {
    let school_days = year_so_far(days);
    let staff = roster.staff.len().max(1);
    let off_today: BTreeSet<usize> = [rng.below(staff), rng.below(staff)].into();
    let long_illness = rng.below(staff);
    let mut rows = Vec::new();
    let mut certificates = Vec::new();
    for (index, member) in roster.staff.iter().enumerate() {
        let current = off_today.contains(&index);
        // Leave room before today for the current absence.
        let past = &school_days[..school_days.len().saturating_sub(usize::from(current) * 5)];
        let count = [0, 1, 1, 1, 2, 2, 3][rng.below(7)].max(usize::from(index == long_illness));
        let mut planned = spread(past, count, rng)
            .into_iter()
            .enumerate()
            .map(|(n, (start, room))| plan(past, start, room, n == 0 && index == long_illness, rng))
            .collect::<Vec<_>>();
        if current {
            planned.push(current_illness(days, &school_days, rng));
        }
        for absence in planned {
            let id = (1_001 + rows.len()).to_string();
            if absence.long {
                certificates.push(certificate(&id, &absence, days, rng));
            }
            rows.push(absence_row(&id, member, &absence, rng));
        }
    }
    (rows, certificates)
}

/// The school days of the academic year up to the last school day (the last four weeks when
/// the year has only just begun).
fn year_so_far(days: &Days) -> Vec<Date> {
    let from = (days.academic_year_start() - days.today).whole_days();
    let to = (days.last_school_day() - days.today).whole_days();
    let so_far = days.school_days(from, to);
    if so_far.len() >= 10 {
        so_far
    } else {
        days.school_days(-28, to)
    }
}

/// `count` places in `days` that do not overlap: the index of a first day and how many days
/// are free from it. Each place lies in its own equal share of `days`.
fn spread(days: &[Date], count: usize, rng: &mut Rng) -> Vec<(usize, usize)> {
    if count == 0 || days.len() < count {
        return Vec::new();
    }
    let share = days.len() / count;
    (0..count)
        .map(|n| {
            let start = n * share + rng.below((share / 2).max(1));
            (start, (n + 1) * share - start)
        })
        .collect()
}

/// An absence from `days[start]`, at most `room` school days long: a long illness if `long`,
/// otherwise an illness (long one time in twelve) or another kind.
fn plan<'a>(days: &[Date], start: usize, room: usize, long: bool, rng: &mut Rng) -> Absence<'a> {
    let roll = rng.below(100) as u64;
    let mut threshold = 0;
    let kind = OTHER_KINDS
        .iter()
        .find(|(_, percent)| {
            threshold += percent;
            !long && roll < threshold
        })
        .map_or(&ILLNESS, |(kind, _)| kind);
    let long = kind.kind == ILLNESS.kind && (long || rng.chance(8));
    let (shortest, longest) = if long { (6, 11) } else { kind.length };
    let wanted = shortest + rng.below(longest - shortest + 1);
    let length = wanted.min(room).max(1);
    let end = days[start + length - 1];
    Absence {
        kind,
        start: days[start],
        end,
        days: if kind.length.1 == 0 { 0 } else { length },
        // A certificate is needed after seven calendar days.
        long: long && (end - days[start]).whole_days() >= 7,
    }
}

/// An illness that began on one of the last two school days and is expected to last into
/// next week.
fn current_illness<'a>(days: &Days, school_days: &[Date], rng: &mut Rng) -> Absence<'a> {
    let back = 1 + rng.below(2).min(school_days.len() - 1);
    let start = school_days[school_days.len() - back];
    let mut end = start;
    let mut length = 1;
    while end <= days.today || length < 3 || is_weekend(end) {
        end = end.next_day().unwrap_or(end);
        if !is_weekend(end) {
            length += 1;
        }
    }
    Absence {
        kind: &ILLNESS,
        start,
        end,
        days: length,
        long: false,
    }
}

fn is_weekend(day: Date) -> bool {
    matches!(day.weekday(), Weekday::Saturday | Weekday::Sunday)
}

/// A StaffAbsence row: whole days run from 00:00 to 23:59, part days give the hours lost.
fn absence_row(id: &str, member: &StaffMember, absence: &Absence, rng: &mut Rng) -> Row {
    let kind = absence.kind;
    let (from, to) = if absence.days == 0 {
        AFTERNOON
    } else {
        (0, 23 * 60 + 59)
    };
    let illness = kind.kind == ILLNESS.kind;
    let category = match (illness, absence.long) {
        (false, _) => None,
        (true, true) => Some(rng.pick(LONG_ILLNESSES)),
        (true, false) => Some(rng.pick(SHORT_ILLNESSES)),
    };
    let (days_lost, hours_lost): (Value, Value) = if absence.days == 0 {
        (json!(0.5), json!(f64::from(to - from) / 60.0))
    } else {
        (json!(absence.days), json!(0))
    };
    let injury = category == Some("Back/Neck problems") && rng.chance(30);
    let note = rng.chance(60).then(|| rng.pick(kind.notes));
    row(json!({
        "Id": id, "StaffId": member.id,
        "AbsenceStartDate": at(absence.start, from), "AbsenceStartTime": clock(from),
        "AbsenceEndDate": at(absence.end, to), "AbsenceEndTime": clock(to),
        "AbsenceType": kind.kind, "IllnessCategory": category, "WorkingDaysLost": days_lost,
        "HoursLost": hours_lost, "SSPExclusion": 0, "AnnualLeave": 0,
        "IndustrialInjury": u8::from(injury), "PayrollAbsenceCategory": kind.payroll,
        "AuthorisedPayRate": "Full Pay Rate", "AbsenceNote": note,
    }))
}

/// The fit note of a long illness, signed on its eighth day by an invented doctor and received
/// a day or three later (never after yesterday).
fn certificate(absence_id: &str, absence: &Absence, days: &Days, rng: &mut Rng) -> Row {
    let yesterday = days.day(-1);
    let signed = (absence.start + Duration::days(7)).min(yesterday);
    let received = (signed + Duration::days(1 + rng.below(3) as i64)).min(yesterday);
    let (kind, signatory) = if rng.chance(75) {
        ("Fit note - not fit for work", "General Practitioner")
    } else {
        ("Fit note - may be fit for work", "Hospital Doctor")
    };
    let doctor = format!("Dr {} {}", rng.pick(FORENAMES), rng.pick(SURNAMES));
    row(json!({
        "Id": format!("{}", 8_601 + absence_id.parse::<usize>().unwrap_or(0)),
        "AbsenceId": absence_id, "CertDateReceived": date(received),
        "CertDateSigned": date(signed), "CertCertType": kind, "CertSignedBy": doctor,
        "CertSignatoryType": signatory,
    }))
}

/// What the roster says of a member of staff's work: the subject they teach, and the roles
/// of the groups they lead.
#[derive(Default)]
struct Duties {
    subject: Option<String>,
    roles: Vec<&'static str>,
}

/// Each member of staff's duties, by staff id: teaching groups give the subject (and the
/// first teacher of each subject outside the leadership team leads the department), year,
/// house and registration groups give Head of Year, Head of House and Form Tutor.
fn duties(roster: &Roster) -> BTreeMap<&str, Duties> {
    let leaders: Vec<&str> = roster
        .staff
        .iter()
        .take(LEADERSHIP.len())
        .filter(|s| s.teacher)
        .map(|s| s.id.as_str())
        .collect();
    let mut duties: BTreeMap<&str, Duties> = BTreeMap::new();
    let mut departments = BTreeSet::new();
    for group in &roster.groups {
        let duty = duties.entry(group.staff_id.as_str()).or_default();
        let role = match (group.kind.as_str(), &group.subject) {
            ("TeachingGrp", Some((_, subject))) => {
                duty.subject.get_or_insert_with(|| subject.clone());
                (!leaders.contains(&group.staff_id.as_str()) && departments.insert(subject))
                    .then_some("Head of Department")
            }
            ("YearGrp", _) => Some("Head of Year"),
            ("HouseGrp", _) => Some("Head of House"),
            ("RegGrp", _) => Some("Form Tutor"),
            _ => None,
        };
        if let Some(role) = role.filter(|r| !duty.roles.contains(r)) {
            duty.roles.push(role);
        }
    }
    duties
}

/// A post: name, category, service term, hours a week, weeks a year, and the role it carries.
struct Post {
    name: String,
    category: &'static str,
    term: &'static str,
    hours: f64,
    weeks: f64,
    role: &'static str,
}

/// A member of staff's post: the first two teachers lead the school, other teachers teach
/// their subject, support staff hold support posts.
fn post(index: usize, member: &StaffMember, duties: Option<&Duties>) -> Post {
    match LEADERSHIP.get(index) {
        Some(&(name, category)) if member.teacher => Post {
            name: name.into(),
            category,
            term: "Leadership",
            hours: 32.5,
            weeks: 39.0,
            role: name_role(name),
        },
        _ if member.teacher => Post {
            name: duties
                .and_then(|d| d.subject.as_deref())
                .map_or_else(|| "Classroom Teacher".into(), |s| format!("Teacher of {s}")),
            category: "Teacher",
            term: "Teachers",
            hours: 32.5,
            weeks: 39.0,
            role: "Teacher",
        },
        _ => {
            let (name, category, hours, weeks) = SUPPORT_POSTS[index % SUPPORT_POSTS.len()];
            Post {
                name: name.into(),
                category,
                term: "Support Staff",
                hours,
                weeks,
                role: name_role(name),
            }
        }
    }
}

/// The role of a leadership or support post, as the role lookup names it.
fn name_role(post: &str) -> &'static str {
    match post {
        "Deputy Headteacher" => "Deputy Headteacher",
        "Assistant Headteacher" => "Assistant Headteacher",
        "Teaching Assistant" => "Teaching Assistant",
        "Cover Supervisor" => "Cover Supervisor",
        "Exams Officer" => "Exams Officer",
        "Learning Mentor" => "Learning Mentor",
        "Science Technician" => "Technician",
        _ => "Administrator",
    }
}

/// Each member of staff's current contract, from a September up to twenty years ago, and for
/// about one in four an earlier fixed-term contract in the same post; the roles held under
/// each (the post's own role, and under the current contract the roles of the groups they
/// lead, taken up later).
fn contracts(roster: &Roster, days: &Days, rng: &mut Rng) -> (Vec<Row>, Vec<Row>) {
    let duties = duties(roster);
    let year_start = days.academic_year_start();
    let mut contracts = Vec::with_capacity(roster.staff.len() * 5 / 4);
    let mut roles = Vec::new();
    for (index, member) in roster.staff.iter().enumerate() {
        let duty = duties.get(member.id.as_str());
        let post = post(index, member, duty);
        let service = rng.below(21) as i32;
        let start = september(year_start.year() - service);
        if service >= 2 && rng.chance(25) {
            let earlier = september(year_start.year() - service - 1 - rng.below(3) as i32);
            let end = start - Duration::days(1);
            let id = contract(
                &mut contracts,
                member,
                &post,
                "Fixed Term",
                earlier,
                Some(end),
                1.0,
            );
            role(&mut roles, &id, post.role, earlier, Some(end));
        }
        let fte = if rng.chance(75) {
            1.0
        } else {
            [0.8, 0.6, 0.5][rng.below(3)]
        };
        let (employment, end) = if service == 0 && rng.chance(50) {
            ("Fixed Term", Some(days.academic_year_end()))
        } else {
            ("Permanent", None)
        };
        let id = contract(&mut contracts, member, &post, employment, start, end, fte);
        role(&mut roles, &id, post.role, start, end);
        for extra in duty.map(|d| d.roles.as_slice()).unwrap_or_default() {
            let from = september(year_start.year() - rng.below(service as usize + 1) as i32);
            role(&mut roles, &id, extra, from, end);
        }
    }
    (contracts, roles)
}

/// 1 September of `year`.
fn september(year: i32) -> Date {
    Date::from_calendar_date(year, Month::September, 1).unwrap_or(Date::MIN)
}

/// A StaffContracts row; its id.
fn contract(
    rows: &mut Vec<Row>,
    member: &StaffMember,
    post: &Post,
    employment: &str,
    start: Date,
    end: Option<Date>,
    fte: f64,
) -> String {
    let id = (501 + rows.len()).to_string();
    // Support staff's full-time equivalent counts their weeks against a full year's.
    let fte = if post.term == "Support Staff" {
        (fte * post.hours / 37.0 * post.weeks / 52.14 * 100.0).round() / 100.0
    } else {
        fte
    };
    let hours = if post.term == "Support Staff" {
        post.hours
    } else {
        (post.hours * fte * 10.0).round() / 10.0
    };
    rows.push(row(json!({
        "Id": id, "StaffId": member.id, "EmploymentType": employment, "ServiceTerm": post.term,
        "Post": post.name, "PostCategory": post.category, "ContractStartDate": ymd(start),
        "ContractEndDate": end.map(ymd), "ContractHoursPerWeek": hours,
        "ContractWeeksPerYear": post.weeks, "ContractFTE": fte,
    })));
    id
}

/// A StaffRoles row.
fn role(rows: &mut Vec<Row>, contract: &str, name: &str, start: Date, end: Option<Date>) {
    rows.push(row(json!({
        "Id": (901 + rows.len()).to_string(), "ContractId": contract, "Role": name,
        "RoleStartDate": ymd(start), "RoleEndDate": end.map(ymd),
    })));
}

#[cfg(test)]
mod tests {
    use super::super::testing::{text, values};
    use std::collections::BTreeSet;

    use super::*;
    use crate::synthetic::SyntheticSchool;

    fn school() -> SyntheticSchool {
        super::super::sandbox("9992001", 120, 7, time::macros::date!(2026 - 12 - 06))
    }

    #[test]
    fn staff_and_link_ids_resolve() {
        let school = school();
        let staff = values(&school, "Staff", "Id");
        assert!(values(&school, "StaffAbsence", "StaffId").is_subset(&staff));
        assert_eq!(values(&school, "StaffContracts", "StaffId"), staff);
        assert!(
            values(&school, "StaffRoles", "ContractId").is_subset(&values(
                &school,
                "StaffContracts",
                "Id"
            ))
        );
        let long_illnesses: BTreeSet<String> = school
            .rows("StaffAbsence")
            .iter()
            .filter(|r| r["AbsenceType"] == "Illness" && r["WorkingDaysLost"].as_u64() > Some(5))
            .map(|r| text(r, "Id"))
            .collect();
        let certified = values(&school, "AbsenceCertificate", "AbsenceId");
        assert!(certified.is_subset(&long_illnesses), "{certified:?}");
    }

    #[test]
    fn absences_are_of_the_year_so_far_and_do_not_overlap() {
        let school = school();
        let today = "2026-12-06T00:00:00";
        let mut by_staff: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
        for r in school.rows("StaffAbsence") {
            let (start, end) = (text(r, "AbsenceStartDate"), text(r, "AbsenceEndDate"));
            assert!(
                start.as_str() >= "2026-09-01" && start.as_str() < today,
                "{r:?}"
            );
            assert!(end >= start, "{r:?}");
            by_staff
                .entry(text(r, "StaffId"))
                .or_default()
                .push((start, end));
        }
        for absences in by_staff.values_mut() {
            absences.sort();
            assert!(absences.windows(2).all(|w| w[0].1 < w[1].0), "{absences:?}");
        }
        let ends: Vec<String> = by_staff.values().flatten().map(|a| a.1.clone()).collect();
        assert!(
            ends.iter().any(|end| end.as_str() > today),
            "someone is off today"
        );
        assert!(
            ends.iter()
                .filter(|end| end.as_str() < today && end.as_str() >= "2026-11-15")
                .count()
                >= 1,
            "absences in the last few weeks"
        );
    }
}
