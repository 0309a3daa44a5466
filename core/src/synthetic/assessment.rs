//! Assessment: how the school records it (grade sets and their grades, aspects per subject,
//! result sets per term, templates per subject and year with their columns, a marksheet per
//! teaching group) and the results its pupils got this term.
//!
//! Every subject of the roster's teaching groups has six aspects: a working-at grade and a
//! target on the key stage 3 scale (years 7 to 9) and on GCSE 9-1 (years 10 and 11), an effort
//! grade and a test percentage (an integer aspect with a mark set, not a grade set). A template
//! per subject and year holds, for each term's result set, a target, working-at, effort and test
//! column; each teaching group's marksheet uses its subject and year's template. The results are
//! those of the current term's columns for every member of every teaching group, so a partner
//! finds the same results by pupil, group, aspect, result set, template, column or marksheet.

use std::collections::BTreeMap;

use serde_json::json;
use time::{Date, Month};

use super::days::date;
use super::roster::Group;
use super::{Days, Rng, Roster, Sets, row};
use crate::dataset::Row;

/// The establishment that created the aspects and result sets (the school itself).
const SUPPLIER: &str = "Larkfield Test Academy";

/// A grade set with its one history record: the grades, best first, as (value, description,
/// numeric value).
struct GradeSet {
    id: u32,
    name: &'static str,
    notes: &'static str,
    history_id: u32,
    /// `yyyy-mm-dd` the history record starts; it has not ended.
    since: &'static str,
    grades: &'static [(&'static str, &'static str, f64)],
}

const GCSE: GradeSet = GradeSet {
    id: 201,
    name: "GCSE 9-1",
    notes: "GCSE grades from 9 (highest) to 1, and U",
    history_id: 1401,
    since: "2017-09-01",
    grades: &[
        ("9", "Grade 9", 9.0),
        ("8", "Grade 8", 8.0),
        ("7", "Grade 7", 7.0),
        ("6", "Grade 6", 6.0),
        ("5", "Grade 5 (strong pass)", 5.0),
        ("4", "Grade 4 (standard pass)", 4.0),
        ("3", "Grade 3", 3.0),
        ("2", "Grade 2", 2.0),
        ("1", "Grade 1", 1.0),
        ("U", "Ungraded", 0.0),
    ],
};

const KS3: GradeSet = GradeSet {
    id: 202,
    name: "KS3 Working At",
    notes: "Key stage 3 scale for working-at and target grades in years 7 to 9",
    history_id: 1402,
    since: "2019-09-01",
    grades: &[
        ("GD", "Greater depth", 4.0),
        ("SEC", "Secure", 3.0),
        ("DEV", "Developing", 2.0),
        ("EMG", "Emerging", 1.0),
    ],
};

const EFFORT: GradeSet = GradeSet {
    id: 203,
    name: "Effort",
    notes: "Effort in lessons and at home",
    history_id: 1403,
    since: "2015-09-01",
    grades: &[
        ("1", "Excellent", 4.0),
        ("2", "Good", 3.0),
        ("3", "Requires improvement", 2.0),
        ("4", "Cause for concern", 1.0),
    ],
};

const GRADE_SETS: [&GradeSet; 3] = [&GCSE, &KS3, &EFFORT];

/// The test aspects' marks: a percentage, since 2015.
const TEST_MARKS: (f64, f64, &str) = (0.0, 100.0, "2015-09-01");

/// What an aspect measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Measure {
    Target,
    WorkingAt,
    Effort,
    Test,
}

/// The key stage an aspect is for: its grade set follows from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Years 7 to 9.
    Three,
    /// Years 10 and 11.
    Four,
}

impl Stage {
    fn of_year(year: u32) -> Self {
        if year >= 10 { Self::Four } else { Self::Three }
    }
}

/// Each subject's aspects, in this order; `None` is for every year.
const ASPECTS: [(Measure, Option<Stage>); 6] = [
    (Measure::WorkingAt, Some(Stage::Three)),
    (Measure::Target, Some(Stage::Three)),
    (Measure::WorkingAt, Some(Stage::Four)),
    (Measure::Target, Some(Stage::Four)),
    (Measure::Effort, None),
    (Measure::Test, None),
];
/// A term's columns, in display order.
const COLUMN_MEASURES: [Measure; 4] = [
    Measure::Target,
    Measure::WorkingAt,
    Measure::Effort,
    Measure::Test,
];
const TERMS: [(&str, &str); 3] = [("Autumn", "Aut"), ("Spring", "Spr"), ("Summer", "Sum")];
const CATEGORIES: [&str; 4] = ["Attainment", "Targets", "Effort", "Tests"];

const FIRST_ASPECT: u32 = 701;
const FIRST_RESULT_SET: u32 = 31;
const FIRST_TEMPLATE: u32 = 1101;
const FIRST_COLUMN: u32 = 13_001;
const FIRST_MARKSHEET: u32 = 5_001;
const FIRST_GRADE: u32 = 801;
const FIRST_MARK_SET: u32 = 136;
const FIRST_RESULT: u32 = 1_000_001;

struct Aspect {
    id: u32,
    /// Index into the subjects.
    subject: usize,
    measure: Measure,
    stage: Option<Stage>,
}

impl Aspect {
    fn grade_set(&self) -> Option<&'static GradeSet> {
        match (self.measure, self.stage) {
            (Measure::Test, _) => None,
            (Measure::Effort, _) => Some(&EFFORT),
            (_, Some(Stage::Four)) => Some(&GCSE),
            (_, _) => Some(&KS3),
        }
    }
}

/// A term's result set and the day it opens.
struct ResultSet {
    id: u32,
    name: String,
    opens: Date,
}

/// A column of a template: an aspect in a term's result set.
struct Column {
    id: u32,
    term: usize,
    measure: Measure,
    /// Index into the aspects.
    aspect: usize,
}

/// A subject and year's recording grid.
struct Template<'a> {
    id: u32,
    subject: usize,
    year: u32,
    creator: &'a str,
    filter_group: Option<&'a str>,
    columns: Vec<Column>,
}

/// The school's assessment structure, from which both its rows and the results follow.
struct Structure<'a> {
    /// `(code, name)`, in the order the roster's teaching groups first name them.
    subjects: Vec<(&'a str, &'a str)>,
    aspects: Vec<Aspect>,
    result_sets: Vec<ResultSet>,
    /// Index of the result set of the term today is in.
    current: usize,
    templates: Vec<Template<'a>>,
    /// `(teaching group, index into templates)`, one marksheet each.
    marksheets: Vec<(&'a Group, usize)>,
}

/// The result sets of the assessment area.
pub(super) fn sets(roster: &Roster, days: &Days, rng: &mut Rng) -> Sets {
    let structure = Structure::plan(roster, days);
    let results = result_rows(&structure, roster, days, rng);
    vec![
        ("Aspects".into(), structure.aspect_rows()),
        ("Templates".into(), structure.template_rows()),
        ("Marksheets".into(), structure.marksheet_rows()),
        ("Columns".into(), structure.column_rows()),
        ("ResultSets".into(), structure.result_set_rows()),
        ("GradeSetHistory".into(), grade_set_history_rows()),
        ("GradeSets".into(), grade_set_rows()),
        ("Grades".into(), grade_rows()),
        ("MarkSets".into(), structure.mark_set_rows()),
        ("Categories".into(), category_rows()),
        ("AsmResults".into(), results),
    ]
}

impl<'a> Structure<'a> {
    fn plan(roster: &'a Roster, days: &Days) -> Self {
        let mut subjects: Vec<(&str, &str)> = Vec::new();
        for group in roster.teaching_groups() {
            if let Some((code, name)) = &group.subject
                && !subjects.iter().any(|(c, _)| *c == code.as_str())
            {
                subjects.push((code.as_str(), name.as_str()));
            }
        }
        let aspects = (0..subjects.len())
            .flat_map(|subject| ASPECTS.iter().map(move |&a| (subject, a)))
            .zip(FIRST_ASPECT..)
            .map(|((subject, (measure, stage)), id)| Aspect {
                id,
                subject,
                measure,
                stage,
            })
            .collect();
        let result_sets = term_result_sets(days);
        let current = result_sets
            .iter()
            .rposition(|rs| rs.opens <= days.today)
            .unwrap_or(0);
        let mut structure = Self {
            subjects,
            aspects,
            result_sets,
            current,
            templates: Vec::new(),
            marksheets: Vec::new(),
        };
        structure.plan_marksheets(roster);
        structure
    }

    /// A template per subject and year that has a teaching group, and a marksheet on it for
    /// every teaching group; the template's author is the teacher of its first group.
    fn plan_marksheets(&mut self, roster: &'a Roster) {
        let mut by_subject_year: BTreeMap<(usize, u32), usize> = BTreeMap::new();
        for group in roster.teaching_groups() {
            let (Some((code, _)), Some(year)) = (&group.subject, group.year) else {
                continue;
            };
            let Some(subject) = self.subjects.iter().position(|(c, _)| *c == code.as_str()) else {
                continue;
            };
            let template = match by_subject_year.get(&(subject, year)) {
                Some(&index) => index,
                None => {
                    let index = self.templates.len();
                    let template = self.template(roster, index, subject, year, group);
                    self.templates.push(template);
                    by_subject_year.insert((subject, year), index);
                    index
                }
            };
            self.marksheets.push((group, template));
        }
    }

    /// The `index`th template, for a subject and year, with a column per term and measure.
    fn template(
        &self,
        roster: &'a Roster,
        index: usize,
        subject: usize,
        year: u32,
        first_group: &'a Group,
    ) -> Template<'a> {
        let stage = Stage::of_year(year);
        let per_template = TERMS.len() * COLUMN_MEASURES.len();
        let first_column = FIRST_COLUMN + (index * per_template) as u32;
        let columns = (0..TERMS.len())
            .flat_map(|term| COLUMN_MEASURES.iter().map(move |&m| (term, m)))
            .zip(first_column..)
            .map(|((term, measure), id)| Column {
                id,
                term,
                measure,
                aspect: self.aspect(subject, measure, stage),
            })
            .collect();
        let filter_group = roster
            .groups
            .iter()
            .find(|g| g.kind == "YearGrp" && g.year == Some(year))
            .map(|g| g.id.as_str());
        Template {
            id: FIRST_TEMPLATE + index as u32,
            subject,
            year,
            creator: &first_group.staff_id,
            filter_group,
            columns,
        }
    }

    /// The index of a subject's aspect of this measure for this key stage.
    fn aspect(&self, subject: usize, measure: Measure, stage: Stage) -> usize {
        let position = ASPECTS
            .iter()
            .position(|&(m, s)| m == measure && s.is_none_or(|s| s == stage))
            .unwrap_or(0);
        subject * ASPECTS.len() + position
    }

    fn aspect_rows(&self) -> Vec<Row> {
        self.aspects
            .iter()
            .map(|aspect| {
                let (name, description) = aspect_text(self.subjects[aspect.subject].1, aspect);
                row(json!({
                    "Id": aspect.id.to_string(), "ExternalId": (aspect.id - 610).to_string(),
                    "AspectType": if aspect.measure == Measure::Test { "Integer" } else { "Grade" },
                    "Name": name, "Description": description, "Supplier": SUPPLIER,
                    "GradeSetId": aspect.grade_set().map(|g| g.id.to_string()),
                }))
            })
            .collect()
    }

    fn template_rows(&self) -> Vec<Row> {
        self.templates
            .iter()
            .map(|t| {
                row(json!({
                    "Id": t.id.to_string(),
                    "Name": format!("Y{} {} Assessment", t.year, self.subjects[t.subject].1),
                    "Notes": "Enter working-at, effort and test marks by the end of each term; \
                              targets are set by the data manager.",
                    "CreatorId": t.creator, "FilterGroupId": t.filter_group,
                }))
            })
            .collect()
    }

    fn marksheet_rows(&self) -> Vec<Row> {
        self.marksheets
            .iter()
            .zip(FIRST_MARKSHEET..)
            .map(|((group, template), id)| {
                row(json!({
                    "Id": id.to_string(), "TemplateId": self.templates[*template].id.to_string(),
                    "GroupId": group.id,
                }))
            })
            .collect()
    }

    fn column_rows(&self) -> Vec<Row> {
        self.templates
            .iter()
            .flat_map(|t| t.columns.iter().enumerate().map(move |(n, c)| (t, n, c)))
            .map(|(template, n, column)| {
                row(json!({
                    "Id": column.id.to_string(), "TemplateId": template.id.to_string(),
                    "ColumnHeading": format!("{} {}", TERMS[column.term].1, heading(column.measure)),
                    "AspectId": self.aspects[column.aspect].id.to_string(),
                    "ResultSetId": self.result_sets[column.term].id.to_string(),
                    "DisplayOrder": n + 1, "ReadOnly": u8::from(column.measure == Measure::Target),
                }))
            })
            .collect()
    }

    fn result_set_rows(&self) -> Vec<Row> {
        self.result_sets
            .iter()
            .map(|rs| {
                row(json!({
                    "Id": rs.id.to_string(), "ExternalId": rs.id.to_string(), "Name": rs.name,
                    "Supplier": SUPPLIER,
                }))
            })
            .collect()
    }

    /// A percentage mark set for each test aspect.
    fn mark_set_rows(&self) -> Vec<Row> {
        let (min, max, since) = TEST_MARKS;
        self.aspects
            .iter()
            .filter(|a| a.measure == Measure::Test)
            .zip(FIRST_MARK_SET..)
            .map(|(aspect, id)| {
                row(json!({
                    "Id": id.to_string(), "AspectId": aspect.id.to_string(),
                    "StartDate": format!("{since}T00:00:00"), "EndDate": null,
                    "MinValue": min, "MaxValue": max,
                }))
            })
            .collect()
    }
}

/// The result sets of this academic year, one a term: `2026/2027 Autumn` and so on.
fn term_result_sets(days: &Days) -> Vec<ResultSet> {
    let start = days.academic_year_start();
    let next = start.year() + 1;
    let opens = [
        start,
        Date::from_calendar_date(next, Month::January, 1).unwrap_or(start),
        Date::from_calendar_date(next, Month::April, 1).unwrap_or(start),
    ];
    let label = days.academic_year_label();
    TERMS
        .iter()
        .zip(opens)
        .zip(FIRST_RESULT_SET..)
        .map(|(((term, _), opens), id)| ResultSet {
            id,
            name: format!("{label} {term}"),
            opens,
        })
        .collect()
}

/// An aspect's name and description.
fn aspect_text(subject: &str, aspect: &Aspect) -> (String, String) {
    match (aspect.measure, aspect.stage) {
        (Measure::WorkingAt, Some(Stage::Four)) => (
            format!("{subject} GCSE Working At Grade"),
            format!("The GCSE grade a pupil is working at in {subject}"),
        ),
        (Measure::Target, Some(Stage::Four)) => (
            format!("{subject} GCSE Target Grade"),
            format!("The GCSE grade a pupil is expected to reach in {subject}"),
        ),
        (Measure::WorkingAt, _) => (
            format!("{subject} KS3 Working At"),
            format!("The standard a pupil is working at in {subject}, on the key stage 3 scale"),
        ),
        (Measure::Target, _) => (
            format!("{subject} KS3 Target"),
            format!("The end-of-year target in {subject}, on the key stage 3 scale"),
        ),
        (Measure::Effort, _) => (
            format!("{subject} Effort"),
            format!("Effort in {subject}, from 1 (excellent) to 4 (cause for concern)"),
        ),
        (Measure::Test, _) => (
            format!("{subject} Test %"),
            format!("The percentage mark in the end-of-unit test in {subject}"),
        ),
    }
}

fn heading(measure: Measure) -> &'static str {
    match measure {
        Measure::Target => "Target",
        Measure::WorkingAt => "Working At",
        Measure::Effort => "Effort",
        Measure::Test => "Test %",
    }
}

fn grade_set_history_rows() -> Vec<Row> {
    GRADE_SETS
        .iter()
        .map(|g| {
            row(json!({
                "Id": g.history_id.to_string(), "StartDate": format!("{}T00:00:00", g.since),
                "EndDate": null, "GradeSetId": g.id.to_string(),
            }))
        })
        .collect()
}

fn grade_set_rows() -> Vec<Row> {
    GRADE_SETS
        .iter()
        .map(|g| row(json!({"Id": g.id.to_string(), "Name": g.name, "Notes": g.notes})))
        .collect()
}

/// Every grade of every grade set, under the set's history record, best first.
fn grade_rows() -> Vec<Row> {
    GRADE_SETS
        .iter()
        .flat_map(|g| {
            g.grades
                .iter()
                .enumerate()
                .map(move |(n, grade)| (g, n, grade))
        })
        .zip(FIRST_GRADE..)
        .map(|((set, n, (value, description, numeric)), id)| {
            row(json!({
                "Id": id.to_string(), "GradeSetHistoryId": set.history_id.to_string(),
                "Description": description, "Value": value, "NumericValue": numeric,
                "DisplayOrder": n + 1,
            }))
        })
        .collect()
}

fn category_rows() -> Vec<Row> {
    CATEGORIES
        .iter()
        .zip(1u32..)
        .map(|(name, id)| row(json!({"Id": id.to_string(), "categoryName": name})))
        .collect()
}

/// The results of the current term's columns of every marksheet, for every member of its
/// group: a teacher enters each column on one day between the term's start and today (targets
/// in its first week). A pupil's results in a subject agree with one another: they follow one
/// attainment drawn per pupil, moved a little per subject.
fn result_rows(structure: &Structure, roster: &Roster, days: &Days, rng: &mut Rng) -> Vec<Row> {
    let attainment: Vec<u32> = roster
        .pupils
        .iter()
        .map(|_| (rng.below(100) + rng.below(100)) as u32 / 2)
        .collect();
    let term = &structure.result_sets[structure.current];
    let opens = term.opens.max(days.academic_year_start());
    let open_days = (days.today - opens).whole_days().max(0) as usize;
    let mut rows = Vec::new();
    let mut next_id = FIRST_RESULT;
    for (group, template) in &structure.marksheets {
        let template = &structure.templates[*template];
        let columns: Vec<(&Column, String)> = template
            .columns
            .iter()
            .filter(|c| c.term == structure.current)
            .map(|c| {
                let within = if c.measure == Measure::Target {
                    open_days.min(6)
                } else {
                    open_days
                };
                let day = opens + time::Duration::days(rng.below(within + 1) as i64);
                (c, date(day.min(days.today)))
            })
            .collect();
        for &pupil in &group.members {
            let score = (attainment[pupil] + rng.below(21) as u32)
                .saturating_sub(10)
                .min(99);
            for (column, result_date) in &columns {
                let aspect = &structure.aspects[column.aspect];
                let (result, notes) = result(aspect, score, rng);
                rows.push(row(json!({
                    "Id": next_id.to_string(), "StudentId": roster.pupils[pupil].id,
                    "AspectId": aspect.id.to_string(), "ResultDate": result_date,
                    "ResultSetId": term.id.to_string(), "Result": result, "Notes": notes,
                })));
                next_id += 1;
            }
        }
    }
    rows
}

/// A result for an aspect from a pupil's score in the subject (0 to 99), and any note on it.
fn result(aspect: &Aspect, score: u32, rng: &mut Rng) -> (String, Option<&'static str>) {
    let grade = |set: &GradeSet, from_best: usize| {
        set.grades[from_best.min(set.grades.len() - 1)]
            .0
            .to_string()
    };
    // Levels counted from the lowest grade: GCSE 1 to 9 (0 is U), KS3 0 (Emerging) to 3.
    let gcse = |level: u32| grade(&GCSE, 9 - level.min(9) as usize);
    let ks3 = |level: u32| grade(&KS3, 3 - level.min(3) as usize);
    let stretch = 1 + rng.below(2) as u32;
    match (aspect.measure, aspect.stage) {
        (Measure::WorkingAt, Some(Stage::Four)) => {
            (gcse(score * 9 / 100 + u32::from(score >= 3)), None)
        }
        (Measure::Target, Some(Stage::Four)) => (gcse(score * 9 / 100 + 1 + stretch), None),
        (Measure::WorkingAt, _) => (ks3(score * 4 / 100), None),
        (Measure::Target, _) => (ks3(score * 4 / 100 + 1), None),
        (Measure::Effort, _) => {
            let from_best = ((100 - score) + rng.below(20) as u32) / 30;
            (grade(&EFFORT, from_best as usize), None)
        }
        (Measure::Test, _) => {
            let mark = (score + rng.below(21) as u32).saturating_sub(5).min(100);
            let note = rng.chance(3).then_some("Sat in the catch-up session");
            (mark.to_string(), note)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{text, values};
    use std::collections::{BTreeMap, BTreeSet};

    use time::macros::date;

    use super::super::{SyntheticSchool, sandbox};

    const SETS: [&str; 11] = [
        "Aspects",
        "Templates",
        "Marksheets",
        "Columns",
        "ResultSets",
        "GradeSetHistory",
        "GradeSets",
        "Grades",
        "MarkSets",
        "Categories",
        "AsmResults",
    ];

    /// A Sunday in the autumn term and a Wednesday in the spring term.
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

    /// `key` → `value` of every row of a set.
    fn map(
        school: &SyntheticSchool,
        set: &str,
        key: &str,
        value: &str,
    ) -> BTreeMap<String, String> {
        school
            .rows(set)
            .iter()
            .map(|r| (text(r, key), text(r, value)))
            .collect()
    }

    #[test]
    fn every_set_has_rows_and_the_structure_resolves() {
        for (school, _) in schools() {
            for set in SETS {
                assert!(!school.rows(set).is_empty(), "{set} is empty");
            }
            let teaching: BTreeSet<String> = school
                .rows("Group")
                .iter()
                .filter(|g| g["Type"] == "TeachingGrp")
                .map(|g| text(g, "Id"))
                .collect();
            assert_eq!(values(&school, "Marksheets", "GroupId"), teaching);
            let templates = values(&school, "Templates", "Id");
            let aspects = values(&school, "Aspects", "Id");
            let result_sets = values(&school, "ResultSets", "Id");
            let grade_sets = values(&school, "GradeSets", "Id");
            let staff = values(&school, "Staff", "Id");
            for m in school.rows("Marksheets") {
                assert!(templates.contains(&text(m, "TemplateId")));
            }
            for c in school.rows("Columns") {
                assert!(templates.contains(&text(c, "TemplateId")));
                assert!(aspects.contains(&text(c, "AspectId")));
                assert!(result_sets.contains(&text(c, "ResultSetId")));
            }
            for t in school.rows("Templates") {
                assert!(staff.contains(&text(t, "CreatorId")));
            }
            for a in school.rows("Aspects") {
                let integer = a["AspectType"] == "Integer";
                assert_eq!(a["GradeSetId"].is_null(), integer);
                assert!(integer || grade_sets.contains(&text(a, "GradeSetId")));
            }
            for m in school.rows("MarkSets") {
                assert!(aspects.contains(&text(m, "AspectId")));
            }
            let histories = values(&school, "GradeSetHistory", "Id");
            assert!(
                school
                    .rows("Grades")
                    .iter()
                    .all(|g| histories.contains(&text(g, "GradeSetHistoryId")))
            );
            assert!(
                values(&school, "ResultSets", "Name")
                    .iter()
                    .any(|n| n.starts_with("2026/2027 "))
            );
        }
    }

    #[test]
    fn results_are_grades_of_their_aspect_in_this_academic_year() {
        for (school, today) in schools() {
            let students = values(&school, "Students", "Id");
            let result_sets = values(&school, "ResultSets", "Id");
            let aspect_grade_set = map(&school, "Aspects", "Id", "GradeSetId");
            let history_set = map(&school, "GradeSetHistory", "Id", "GradeSetId");
            let mut grades: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
            for g in school.rows("Grades") {
                let set = history_set[&text(g, "GradeSetHistoryId")].clone();
                grades.entry(set).or_default().insert(text(g, "Value"));
            }
            for r in school.rows("AsmResults") {
                assert!(students.contains(&text(r, "StudentId")));
                assert!(result_sets.contains(&text(r, "ResultSetId")));
                let date = text(r, "ResultDate");
                assert!(
                    ("2026-09-01"..="2027-08-31").contains(&&date[..10]),
                    "{date}"
                );
                assert!(date[..10] <= *today, "{date} is after {today}");
                let result = text(r, "Result");
                match aspect_grade_set
                    .get(&text(r, "AspectId"))
                    .map(String::as_str)
                {
                    None => panic!("AspectId {} is not an aspect", r["AspectId"]),
                    Some("null") => assert!(result.parse::<u32>().is_ok_and(|m| m <= 100)),
                    Some(set) => assert!(grades[set].contains(&result), "{result} not in {set}"),
                }
            }
        }
    }

    /// Every result is found through a marksheet of one of the pupil's groups whose template
    /// has a column for the result's aspect and result set, as assessmentresults selects them.
    #[test]
    fn results_are_reached_through_marksheets_and_columns() {
        for (school, _) in schools() {
            let mut groups_of: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
            for m in school.rows("StudentMembers") {
                groups_of
                    .entry(text(m, "StudentId"))
                    .or_default()
                    .insert(text(m, "GroupId"));
            }
            let mut columns: BTreeSet<(String, String, String)> = BTreeSet::new();
            for c in school.rows("Columns") {
                columns.insert((
                    text(c, "TemplateId"),
                    text(c, "AspectId"),
                    text(c, "ResultSetId"),
                ));
            }
            let sheets: Vec<(String, String)> = school
                .rows("Marksheets")
                .iter()
                .map(|m| (text(m, "GroupId"), text(m, "TemplateId")))
                .collect();
            let mut template_of: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
            for (group, template) in &sheets {
                template_of
                    .entry(group.as_str())
                    .or_default()
                    .push(template.as_str());
            }
            for r in school.rows("AsmResults") {
                let key = |t: &str| (t.to_string(), text(r, "AspectId"), text(r, "ResultSetId"));
                let reached = groups_of[&text(r, "StudentId")].iter().any(|g| {
                    template_of
                        .get(g.as_str())
                        .is_some_and(|ts| ts.iter().any(|t| columns.contains(&key(t))))
                });
                assert!(
                    reached,
                    "result {} is on no marksheet of the pupil",
                    r["Id"]
                );
            }
        }
    }
}
