//! Pastoral: SEN, medical, meals, exclusions, school history, agencies and entitlements.
//!
//! Every row is about a pupil of the roster and agrees with the pupil's own record: pupils at
//! SEN support (`K`) or with an education, health and care plan (`E`) have need types and
//! provision, pupils eligible for free meals are in the FSM entitlement group, and previous
//! schools were left before the pupil's entry date. History lies in the past of the day the
//! sandbox is generated for.

use serde_json::json;
use time::{Date, Duration, Month, Weekday};

use super::days::{date, ymd};
use super::roster::Pupil;
use super::{Days, FORENAMES, Rng, Roster, SURNAMES, Sets, row};
use crate::dataset::Row;

/// A kind of special educational need: DfE code, description, and a note as a SENCo writes it.
/// The first five are the most common.
const NEED_TYPES: &[(&str, &str, &str)] = &[
    (
        "SpLD",
        "Specific Learning Difficulty",
        "Dyslexic profile; reading age two years below chronological age",
    ),
    (
        "SEMH",
        "Social, Emotional and Mental Health",
        "Anxious in unstructured times; has a time-out card",
    ),
    (
        "SLCN",
        "Speech, Language and Communication Needs",
        "Word-finding difficulties; pre-teach key vocabulary",
    ),
    (
        "ASD",
        "Autistic Spectrum Disorder",
        "Needs advance notice of changes to routine",
    ),
    (
        "MLD",
        "Moderate Learning Difficulty",
        "Tasks broken into small steps; overlearning",
    ),
    (
        "HI",
        "Hearing Impairment",
        "Sits near the front; uses a radio aid",
    ),
    ("VI", "Visual Impairment", "Enlarged (A3) print resources"),
    (
        "PD",
        "Physical Disability",
        "Lift pass; leaves lessons five minutes early",
    ),
];

/// SEN provision codes as the DfE census has them.
const PROVISIONS: &[(&str, &str)] = &[
    ("K", "SEN Support"),
    ("E", "Education, Health and Care Plan"),
];

/// Disabilities a school records, as the MIS lookup names them.
const DISABILITIES: &[&str] = &[
    "Mobility",
    "Hearing",
    "Vision",
    "Manual dexterity",
    "Memory, ability to concentrate, learn or understand",
    "Long-term illness",
    "Mental health",
    "Stamina, breathing or fatigue",
];

/// A medical condition of the school's lookup.
struct Condition {
    name: &'static str,
    /// Pupils in a thousand who have it.
    per_thousand: usize,
    /// Whether the pupil has an individual health care plan (and the school nurse is involved).
    care_plan: bool,
    /// The dietary need it implies.
    diet: Option<&'static str>,
    /// A medical-room note and its summary.
    note: (&'static str, &'static str),
}

const CONDITIONS: &[Condition] = &[
    Condition {
        name: "Asthma",
        per_thousand: 100,
        care_plan: false,
        diet: None,
        note: (
            "Came to the medical room after PE short of breath. Used own blue inhaler and \
             returned to lesson.",
            "Needed inhaler",
        ),
    },
    Condition {
        name: "Hayfever",
        per_thousand: 60,
        care_plan: false,
        diet: None,
        note: (
            "Itchy, streaming eyes after break. Antihistamine given as agreed with parent.",
            "Antihistamine given",
        ),
    },
    Condition {
        name: "Eczema",
        per_thousand: 40,
        care_plan: false,
        diet: None,
        note: (
            "Asked to apply own emollient cream before PE.",
            "Emollient applied",
        ),
    },
    Condition {
        name: "Migraine",
        per_thousand: 20,
        care_plan: false,
        diet: None,
        note: (
            "Headache and sensitivity to light in period 3. Rested in a dark room; parent \
             informed.",
            "Migraine, parent informed",
        ),
    },
    Condition {
        name: "Nut allergy (anaphylaxis)",
        per_thousand: 20,
        care_plan: true,
        diet: Some("Nut free"),
        note: (
            "Adrenaline auto-injectors checked: one in bag, one in the medical room, both in \
             date.",
            "Auto-injectors checked",
        ),
    },
    Condition {
        name: "Coeliac disease",
        per_thousand: 10,
        care_plan: false,
        diet: Some("Gluten free"),
        note: (
            "Kitchen reminded of gluten-free requirement.",
            "Gluten free reminder",
        ),
    },
    Condition {
        name: "Epilepsy",
        per_thousand: 8,
        care_plan: true,
        diet: None,
        note: (
            "Health care plan reviewed with parent and school nurse; no changes.",
            "Care plan reviewed",
        ),
    },
    Condition {
        name: "Type 1 diabetes",
        per_thousand: 6,
        care_plan: true,
        diet: None,
        note: (
            "Low blood sugar before lunch. Glucose tablets given and retested after 15 \
             minutes.",
            "Hypo treated",
        ),
    },
    Condition {
        name: "Sickle cell disease",
        per_thousand: 3,
        care_plan: true,
        diet: None,
        note: (
            "Felt cold and tired; kept warm, fluids given, parent collected.",
            "Sent home, parent collected",
        ),
    },
];

/// Dietary needs of pupils without a condition that implies one.
const DIETS: &[&str] = &[
    "Vegetarian",
    "Halal",
    "Vegan",
    "No pork",
    "Lactose intolerant",
];

/// Lunch arrangements: code and type.
const MEALS: [(&str, &str); 3] = [
    ("SM", "School Meal"),
    ("PL", "Packed Lunch"),
    ("HM", "Home"),
];

/// DfE suspension reasons: code, description, and a comment a head of year might write.
const EXCLUSION_REASONS: &[(&str, &str, &str)] = &[
    (
        "PD",
        "Persistent disruptive behaviour",
        "Repeated refusal to follow instructions in several lessons after warnings.",
    ),
    (
        "VA",
        "Verbal abuse/threatening behaviour against an adult",
        "Swore at a member of staff when asked to move seats.",
    ),
    (
        "VP",
        "Verbal abuse/threatening behaviour against a pupil",
        "Threatened another pupil on the way to the bus stop.",
    ),
    (
        "PP",
        "Physical assault against a pupil",
        "Fight on the field at lunchtime; the other pupil was unhurt.",
    ),
    (
        "PA",
        "Physical assault against an adult",
        "Pushed a member of staff who was blocking the corridor.",
    ),
    ("DM", "Damage", "Graffiti on the walls of the toilet block."),
    (
        "TH",
        "Theft",
        "Took another pupil's phone from a bag in the changing room.",
    ),
    (
        "BU",
        "Bullying",
        "Continued name-calling of a younger pupil after a restorative meeting.",
    ),
    (
        "DA",
        "Drug and alcohol related",
        "Brought a vape containing an unknown substance into school.",
    ),
];

/// Invented primary schools of the sandbox's fictional authority (999) and a neighbour (998):
/// name, authority code, DfE establishment number, and whether it is an academy.
const PRIMARIES: &[(&str, &str, &str, bool)] = &[
    ("Larkfield Primary School", "999", "9992104", false),
    ("St Anne's C of E Primary School", "999", "9993312", false),
    ("Eduville Junior School", "999", "9992231", false),
    ("Testbury Community Primary School", "999", "9992417", false),
    (
        "Sampleton Church of England Primary Academy",
        "998",
        "9983058",
        true,
    ),
    ("Orchard Way Primary School", "998", "9982140", false),
    ("Hill-Top Rise Primary Academy", "999", "9992555", true),
    (
        "Our Lady of Lourdes Catholic Primary School",
        "998",
        "9983406",
        false,
    ),
];

/// An outside agency the school works with.
struct AgencyKind {
    name: &'static str,
    kind: &'static str,
    /// How a pupil is linked to the agency, and to one of its agents.
    agency_link: &'static str,
    agent_link: &'static str,
    domain: &'static str,
    street: &'static str,
    town: &'static str,
}

const AGENCIES: &[AgencyKind] = &[
    AgencyKind {
        name: "Eduville Educational Psychology Service",
        kind: "Educational Psychology",
        agency_link: "Educational Psychology",
        agent_link: "Educational Psychologist",
        domain: "eps.eduville.example",
        street: "Civic Centre, Market Street",
        town: "Eduville",
    },
    AgencyKind {
        name: "Eduville CAMHS",
        kind: "Health",
        agency_link: "Child and Adolescent Mental Health",
        agent_link: "Mental Health Practitioner",
        domain: "camhs.eduville.example",
        street: "Riverside Clinic, Mill Lane",
        town: "Eduville",
    },
    AgencyKind {
        name: "Testbury Children's Social Care",
        kind: "Social Services",
        agency_link: "Social Care",
        agent_link: "Social Worker",
        domain: "socialcare.testbury.example",
        street: "County Hall, Orchard Way",
        town: "Testbury",
    },
    AgencyKind {
        name: "Sampleton School Nursing Team",
        kind: "Medical",
        agency_link: "School Nursing",
        agent_link: "School Nurse",
        domain: "schoolnursing.sampleton.example",
        street: "Health Centre, Larkfield Road",
        town: "Sampleton",
    },
    AgencyKind {
        name: "Eduville Speech and Language Therapy",
        kind: "Health",
        agency_link: "Speech and Language Therapy",
        agent_link: "Speech and Language Therapist",
        domain: "salt.eduville.example",
        street: "Riverside Clinic, Mill Lane",
        town: "Eduville",
    },
];

/// Indexes into [`AGENCIES`].
const EDUCATIONAL_PSYCHOLOGY: usize = 0;
const CAMHS: usize = 1;
const SOCIAL_CARE: usize = 2;
const SCHOOL_NURSING: usize = 3;
const SPEECH_THERAPY: usize = 4;

/// Funding entitlement groups: id, short name, full name.
const ENTITLEMENTS: &[(&str, &str, &str)] = &[
    ("100", "FSM", "Free School Meals"),
    ("101", "E6", "Ever 6 FSM"),
    ("102", "PP", "Pupil Premium"),
    ("103", "SP", "Service Premium"),
];

/// The pastoral result sets of the school: SEN (need types, provision, disabilities), medical
/// (conditions and their lookup, the medical record, medical-room notes), meals, exclusions,
/// previous schools, outside agencies and agents with the pupils they work with, and funding
/// entitlement groups.
pub(super) fn sets(roster: &Roster, days: &Days, rng: &mut Rng) -> Sets {
    let dates = Dates::new(days);
    let sen = sen(roster, &dates, rng);
    let medical = medical(roster, &dates, rng, &sen.disabled);
    let agencies = agencies(roster, &dates, rng, &sen.needs, &medical.care_plan);
    vec![
        ("StudentSENTypeHistory".into(), sen.types),
        ("StudentSENProvisionHistory".into(), sen.provisions),
        ("StudentDisabilities".into(), sen.disabilities),
        ("ConditionLookups".into(), medical.lookups),
        ("StudentConditions".into(), medical.conditions),
        ("StudentMedical".into(), medical.records),
        ("StudentMedicalNotes".into(), medical.notes),
        ("StudentMeals".into(), meals(roster, rng)),
        ("StudentExclusions".into(), exclusions(roster, &dates, rng)),
        (
            "StudentSchoolHistory".into(),
            school_history(roster, &dates, rng),
        ),
        ("Agency".into(), agencies.agencies),
        ("Agent".into(), agencies.agents),
        ("AgencyStudent".into(), agencies.agency_students),
        ("AgentStudent".into(), agencies.agent_students),
        ("AgencyAgent".into(), agencies.agency_agents),
        ("EntitlementGroups".into(), entitlement_groups()),
        (
            "EntitlementGroupStudents".into(),
            entitlement_members(roster, &dates, rng),
        ),
    ]
}

/// The days pastoral history is placed among.
struct Dates {
    /// The day before the sandbox's today: the latest day of history.
    yesterday: Date,
    year_start: Date,
    /// School days of the academic year up to the last school day (the last four weeks when
    /// the year has only just begun).
    year_so_far: Vec<Date>,
}

impl Dates {
    fn new(days: &Days) -> Self {
        let from = (days.academic_year_start() - days.today).whole_days();
        let to = (days.last_school_day() - days.today).whole_days();
        let mut year_so_far = days.school_days(from, to);
        if year_so_far.len() < 10 {
            year_so_far = days.school_days(-28, to);
        }
        Self {
            yesterday: days.day(-1),
            year_start: days.academic_year_start(),
            year_so_far,
        }
    }

    /// The pupil's entry date, no later than yesterday.
    fn entry(&self, pupil: &Pupil) -> Date {
        parse_ymd(&pupil.entry_date)
            .unwrap_or(self.year_start)
            .min(self.yesterday)
    }

    /// A day from `from` to `to` inclusive, never after yesterday (`to`, or yesterday, when
    /// the range is empty).
    fn between(&self, rng: &mut Rng, from: Date, to: Date) -> Date {
        let to = to.min(self.yesterday);
        let span = (to - from).whole_days();
        if span <= 0 {
            return to;
        }
        from + Duration::days(rng.below(span as usize + 1) as i64)
    }

    /// A school day of the academic year so far.
    fn school_day(&self, rng: &mut Rng) -> Date {
        self.year_so_far[rng.below(self.year_so_far.len())]
    }
}

/// `yyyy-mm-dd` as a date.
fn parse_ymd(text: &str) -> Option<Date> {
    let mut parts = text.get(..10)?.split('-');
    let year = parts.next()?.parse().ok()?;
    let month = Month::try_from(parts.next()?.parse::<u8>().ok()?).ok()?;
    let day = parts.next()?.parse().ok()?;
    Date::from_calendar_date(year, month, day).ok()
}

fn years(n: i64) -> Duration {
    Duration::days(365 * n)
}

/// The next id of a set whose ids count up from `base`.
fn next_id(rows: &[Row], base: usize) -> String {
    (base + rows.len()).to_string()
}

/// The SEN sets, with each pupil's active need codes and whether a disability is active
/// (indexed as the roster's pupils).
struct Sen {
    types: Vec<Row>,
    provisions: Vec<Row>,
    disabilities: Vec<Row>,
    needs: Vec<Vec<&'static str>>,
    disabled: Vec<bool>,
}

/// Need types, provision and disabilities: K and E pupils have a current provision (E pupils
/// were at SEN support before their plan) and one or two active needs; a few pupils now at
/// `N` have ended records from an earlier time at SEN support.
fn sen(roster: &Roster, dates: &Dates, rng: &mut Rng) -> Sen {
    let mut sen = Sen {
        types: Vec::new(),
        provisions: Vec::new(),
        disabilities: Vec::new(),
        needs: Vec::with_capacity(roster.pupils.len()),
        disabled: Vec::with_capacity(roster.pupils.len()),
    };
    for pupil in &roster.pupils {
        let needs = match pupil.sen.as_str() {
            "K" | "E" => current_sen(&mut sen, pupil, dates, rng),
            _ => {
                if rng.chance(4) {
                    former_sen(&mut sen, pupil, dates, rng);
                }
                Vec::new()
            }
        };
        let disabled = disability(&mut sen.disabilities, pupil, &needs, dates, rng);
        sen.needs.push(needs);
        sen.disabled.push(disabled);
    }
    sen
}

/// The provision and needs of a pupil at SEN support or with a plan; the active need codes.
fn current_sen(sen: &mut Sen, pupil: &Pupil, dates: &Dates, rng: &mut Rng) -> Vec<&'static str> {
    let entry = dates.entry(pupil);
    let start = dates.between(rng, entry - years(3), dates.yesterday - Duration::days(30));
    if pupil.sen == "E" {
        let plan = dates.between(rng, start + Duration::days(180), dates.yesterday);
        let support_end = (plan - Duration::days(1)).max(start);
        provision(
            &mut sen.provisions,
            pupil,
            PROVISIONS[0],
            start,
            Some(support_end),
        );
        provision(&mut sen.provisions, pupil, PROVISIONS[1], plan, None);
    } else {
        provision(&mut sen.provisions, pupil, PROVISIONS[0], start, None);
    }
    let primary = if rng.chance(85) {
        NEED_TYPES[rng.below(5)]
    } else {
        NEED_TYPES[rng.below(NEED_TYPES.len())]
    };
    need(&mut sen.types, pupil, primary, 1, start, None);
    let mut active = vec![primary.0];
    if rng.chance(30) {
        let secondary = NEED_TYPES[rng.below(NEED_TYPES.len())];
        if secondary.0 != primary.0 {
            let from = dates.between(rng, start, dates.yesterday);
            need(&mut sen.types, pupil, secondary, 2, from, None);
            active.push(secondary.0);
        }
    }
    if rng.chance(15) && !active.contains(&"SLCN") {
        // Speech and language needs identified at primary school, since met.
        let from = dates.between(rng, entry - years(4), start - Duration::days(200));
        let to = dates.between(rng, from + Duration::days(120), start);
        need(&mut sen.types, pupil, NEED_TYPES[2], 2, from, Some(to));
    }
    active
}

/// Ended SEN support of a pupil no longer on the SEN register, with the need it was for.
fn former_sen(sen: &mut Sen, pupil: &Pupil, dates: &Dates, rng: &mut Rng) {
    let entry = dates.entry(pupil);
    let from = dates.between(rng, entry - years(4), dates.yesterday - Duration::days(200));
    let to = dates.between(rng, from + Duration::days(120), dates.yesterday);
    provision(&mut sen.provisions, pupil, PROVISIONS[0], from, Some(to));
    let kind = NEED_TYPES[rng.below(5)];
    need(&mut sen.types, pupil, kind, 1, from, Some(to));
}

/// A StudentSENProvisionHistory row, active when it has no end.
fn provision(
    rows: &mut Vec<Row>,
    pupil: &Pupil,
    (code, description): (&str, &str),
    start: Date,
    end: Option<Date>,
) {
    let id = next_id(rows, 70_001);
    rows.push(row(json!({
        "Id": id, "StudentMis_Id": pupil.id, "SENProvisionCode": code,
        "SENProvisionDescription": description, "SENProvisionStartDate": ymd(start),
        "SENProvisionEndDate": end.map(ymd), "Active": u8::from(end.is_none()),
    })));
}

/// A StudentSENTypeHistory row, active when it has no end.
fn need(
    rows: &mut Vec<Row>,
    pupil: &Pupil,
    (code, description, note): (&str, &str, &str),
    rank: u32,
    start: Date,
    end: Option<Date>,
) {
    let id = next_id(rows, 60_001);
    rows.push(row(json!({
        "Id": id, "StudentMis_Id": pupil.id, "NeedTypeDescription": description,
        "NeedTypeCode": code, "Rank": rank, "NeedNotes": note, "NeedStartDate": ymd(start),
        "NeedEndDate": end.map(ymd), "Active": u8::from(end.is_none()),
    })));
}

/// A pupil's disability, if any: always for hearing, visual and physical needs, sometimes
/// for other pupils (more often those with a plan). Whether it is active.
fn disability(
    rows: &mut Vec<Row>,
    pupil: &Pupil,
    needs: &[&str],
    dates: &Dates,
    rng: &mut Rng,
) -> bool {
    let implied = needs.iter().find_map(|code| match *code {
        "PD" => Some(DISABILITIES[0]),
        "HI" => Some(DISABILITIES[1]),
        "VI" => Some(DISABILITIES[2]),
        _ => None,
    });
    let chance = match pupil.sen.as_str() {
        "E" => 30,
        "K" => 8,
        _ => 1,
    };
    let Some(disability) = implied.or_else(|| {
        rng.chance(chance)
            .then(|| DISABILITIES[rng.below(DISABILITIES.len())])
    }) else {
        return false;
    };
    let start = dates.between(
        rng,
        dates.entry(pupil) - years(3),
        dates.yesterday - Duration::days(60),
    );
    let end = (implied.is_none() && rng.chance(10))
        .then(|| dates.between(rng, start + Duration::days(30), dates.yesterday));
    let id = next_id(rows, 20);
    rows.push(row(json!({
        "Id": id, "StudentMis_Id": pupil.id, "Disability": disability,
        "DisabilityStartDate": ymd(start), "DisabilityEndDate": end.map(ymd),
        "Active": u8::from(end.is_none()),
    })));
    end.is_none()
}

/// The medical sets, with whether each pupil has a health care plan (indexed as the
/// roster's pupils).
struct Medical {
    lookups: Vec<Row>,
    conditions: Vec<Row>,
    records: Vec<Row>,
    notes: Vec<Row>,
    care_plan: Vec<bool>,
}

/// The condition lookup, pupils' conditions at their usual prevalence, a medical record for
/// every pupil (dietary needs, emergency consent, assessed disabled as the SEN record says)
/// and medical-room notes of this year for some pupils with a condition.
fn medical(roster: &Roster, dates: &Dates, rng: &mut Rng, disabled: &[bool]) -> Medical {
    let mut medical = Medical {
        lookups: CONDITIONS
            .iter()
            .enumerate()
            .map(|(i, c)| row(json!({"Id": (i + 1).to_string(), "ConditionDescription": c.name})))
            .collect(),
        conditions: Vec::new(),
        records: Vec::with_capacity(roster.pupils.len()),
        notes: Vec::new(),
        care_plan: Vec::with_capacity(roster.pupils.len()),
    };
    for (pupil, &disabled) in roster.pupils.iter().zip(disabled) {
        let mut diet = None;
        let mut care_plan = false;
        for (i, condition) in CONDITIONS.iter().enumerate() {
            if rng.below(1000) >= condition.per_thousand {
                continue;
            }
            let lookup = (i + 1).to_string();
            medical.conditions.push(row(json!({
                "Id": format!("{lookup}.{}", pupil.id), "StudentId": pupil.id,
                "MedicalConditionId": lookup, "ConditionDescription": condition.name,
            })));
            diet = diet.or(condition.diet);
            care_plan |= condition.care_plan;
            if rng.chance(40) {
                medical_note(&mut medical.notes, pupil, condition, dates, rng);
            }
        }
        if diet.is_none() && rng.chance(12) {
            diet = Some(rng.pick(DIETS));
        }
        medical.records.push(row(json!({
            "Id": pupil.id, "DietaryNeeds": diet, "StudentAssessedDisabled": u8::from(disabled),
            "EmergencyConsent": u8::from(rng.chance(93)), "PregnantPupil": 0,
        })));
        medical.care_plan.push(care_plan);
    }
    medical
}

/// A medical-room note about a pupil's condition, written this year.
fn medical_note(
    rows: &mut Vec<Row>,
    pupil: &Pupil,
    condition: &Condition,
    dates: &Dates,
    rng: &mut Rng,
) {
    let id = next_id(rows, 1_401);
    let (note, summary) = condition.note;
    rows.push(row(json!({
        "Id": id, "StudentId": pupil.id, "Note": note, "Summary": summary,
        "LastModified": ymd(dates.school_day(rng)),
    })));
}

/// Each pupil's lunch for every day of the week: mostly one arrangement (school meals for
/// nearly every pupil with free meals), sometimes a different one on Fridays; nothing at
/// weekends.
fn meals(roster: &Roster, rng: &mut Rng) -> Vec<Row> {
    const WEEKDAYS: [&str; 5] = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday"];
    roster
        .pupils
        .iter()
        .map(|pupil| {
            let usual = if pupil.fsm && rng.chance(90) {
                MEALS[0]
            } else {
                match rng.below(20) {
                    0..=10 => MEALS[0],
                    11..=17 => MEALS[1],
                    _ => MEALS[2],
                }
            };
            let friday = if rng.chance(15) {
                MEALS[rng.below(2)]
            } else {
                usual
            };
            let mut meal = row(json!({
                "Id": pupil.id, "Forename": pupil.forename, "Surname": pupil.surname,
                "SaturdayCode": null, "SaturdayType": null, "SundayCode": null, "SundayType": null,
            }));
            for day in WEEKDAYS {
                let (code, kind) = if day == "Friday" { friday } else { usual };
                meal.insert(format!("{day}Code"), json!(code));
                meal.insert(format!("{day}Type"), json!(kind));
            }
            meal
        })
        .collect()
}

/// Suspensions of about one pupil in thirty this academic year (a few twice): fixed-term
/// mostly, some at lunchtime; longer ones went to the governors' committee and a few of those
/// to appeal. At least one pupil is suspended.
fn exclusions(roster: &Roster, dates: &Dates, rng: &mut Rng) -> Vec<Row> {
    let mut rows = Vec::new();
    for pupil in &roster.pupils {
        if rng.chance(3) {
            let times = if rng.chance(25) { 2 } else { 1 };
            for _ in 0..times {
                exclusion(&mut rows, pupil, dates, rng);
            }
        }
    }
    if rows.is_empty() && !roster.pupils.is_empty() {
        let pupil = &roster.pupils[rng.below(roster.pupils.len())];
        exclusion(&mut rows, pupil, dates, rng);
    }
    rows
}

/// One suspension of a pupil, from a school day of the year so far.
fn exclusion(rows: &mut Vec<Row>, pupil: &Pupil, dates: &Dates, rng: &mut Rng) {
    let (reason_code, reason, comment) = if rng.chance(40) {
        EXCLUSION_REASONS[0]
    } else {
        EXCLUSION_REASONS[rng.below(EXCLUSION_REASONS.len())]
    };
    let lunchtime = rng.chance(10);
    let (kind_code, kind) = if lunchtime {
        ("LNCH", "Lunchtime")
    } else {
        ("FIXD", "Fixed Term")
    };
    let sessions: usize = if lunchtime {
        1
    } else {
        [1, 2, 2, 2, 3, 4, 6, 10][rng.below(8)]
    };
    let start = dates.school_day(rng);
    // A one-session suspension is an afternoon; longer ones start in the morning.
    let first = usize::from(sessions == 1);
    let last = first + sessions - 1;
    let end = after_school_days(start, (last / 2) as i64);
    let session = |n: usize| if n % 2 == 0 { "AM" } else { "PM" };
    let days = if sessions % 2 == 0 {
        json!(sessions / 2)
    } else {
        json!(sessions as f64 / 2.0)
    };
    let mut exclusion = row(json!({
        "Id": next_id(rows, 2_301), "StudentId": pupil.id, "Forename": pupil.forename,
        "Surname": pupil.surname, "ExclusionType": kind, "ExclusionTypeCode": kind_code,
        "ExclusionReason": reason, "ExclusionReasonCode": reason_code,
        "ExclusionSessions": sessions, "StartDate": ymd(start), "EndDate": ymd(end),
        "StartSession": session(first), "EndSession": session(last), "ExclusionDays": days,
        "Comments": comment,
    }));
    exclusion.extend(committee(end, sessions, dates, rng));
    rows.push(exclusion);
}

/// The governors' committee and appeal columns of a suspension that ended `end`: filled for
/// about half of those of three days or more whose hearing has taken place, empty otherwise.
fn committee(end: Date, sessions: usize, dates: &Dates, rng: &mut Rng) -> Row {
    let hearing = end + Duration::days(5 + rng.below(10) as i64);
    let heard = sessions >= 6 && hearing <= dates.yesterday && rng.chance(50);
    if !heard {
        return row(json!({
            "DisiplinaryResult": null, "CommiteeHearingDate": null, "ParentalRepresentation": 0,
            "CommiteeReinstatementDate": null, "AppealIndicator": 0, "AppealDate": null,
            "AppealResult": null, "HearingNoticeOfAppealDate": null, "AppealReinstatementDate": null,
        }));
    }
    let reinstated = rng.chance(20);
    let appeal = (!reinstated && rng.chance(30))
        .then(|| hearing + Duration::days(7 + rng.below(7) as i64))
        .filter(|appeal| *appeal <= dates.yesterday);
    row(json!({
        "DisiplinaryResult": if reinstated { "Reinstated" } else { "Exclusion Stands" },
        "CommiteeHearingDate": ymd(hearing), "ParentalRepresentation": u8::from(rng.chance(70)),
        "CommiteeReinstatementDate": reinstated.then(|| ymd(hearing)),
        "AppealIndicator": u8::from(appeal.is_some()), "AppealDate": appeal.map(ymd),
        "AppealResult": appeal.map(|_| "Decision upheld"),
        "HearingNoticeOfAppealDate": appeal.map(|a| ymd(a - Duration::days(5))),
        "AppealReinstatementDate": null,
    }))
}

/// The school day `n` school days after `day`.
fn after_school_days(day: Date, n: i64) -> Date {
    let mut day = day;
    let mut left = n;
    while left > 0 {
        day = day.next_day().unwrap_or(day);
        if !matches!(day.weekday(), Weekday::Saturday | Weekday::Sunday) {
            left -= 1;
        }
    }
    day
}

/// Each pupil's primary school, left in the July before joining in September (or shortly
/// before an in-year entry); about one pupil in eight moved primary school earlier.
fn school_history(roster: &Roster, dates: &Dates, rng: &mut Rng) -> Vec<Row> {
    let mut rows = Vec::with_capacity(roster.pupils.len() * 9 / 8);
    for pupil in &roster.pupils {
        let entry = dates.entry(pupil);
        let (left, reason) = if entry.month() == Month::September {
            (
                last_weekday_by(entry.year(), Month::July, 22),
                "End of phase transfer",
            )
        } else {
            (
                entry - Duration::days(3 + rng.below(18) as i64),
                "Moved house",
            )
        };
        let last = PRIMARIES[rng.below(PRIMARIES.len())];
        if rng.chance(12) {
            let earlier = PRIMARIES[rng.below(PRIMARIES.len())];
            let moved = dates.between(rng, left - years(5), left - years(1));
            let why = if rng.chance(50) {
                "Moved house"
            } else {
                "Parental preference"
            };
            previous_school(&mut rows, pupil, earlier, moved, why);
        }
        let why = if reason == "End of phase transfer" {
            if last.3 {
                "End of phase transfer - Academy"
            } else {
                "End of phase transfer - Maintained school"
            }
        } else {
            reason
        };
        previous_school(&mut rows, pupil, last, left, why);
    }
    rows
}

/// The weekday on or before `day` of `month` of `year`.
fn last_weekday_by(year: i32, month: Month, day: u8) -> Date {
    let mut date = Date::from_calendar_date(year, month, day).unwrap_or(Date::MIN);
    while matches!(date.weekday(), Weekday::Saturday | Weekday::Sunday) {
        date = date.previous_day().unwrap_or(date);
    }
    date
}

/// A StudentSchoolHistory row.
fn previous_school(
    rows: &mut Vec<Row>,
    pupil: &Pupil,
    (name, lea, estab, _): (&str, &str, &str, bool),
    left: Date,
    reason: &str,
) {
    rows.push(row(json!({
        "Id": next_id(rows, 2_318), "StudentId": pupil.id, "Forename": pupil.forename,
        "Surname": pupil.surname, "PreviousSchoolName": name, "LEA": lea, "EstabId": estab,
        "LeavingDate": ymd(left), "LeavingReason": reason,
    })));
}

/// The agency sets.
struct Agencies {
    agencies: Vec<Row>,
    agents: Vec<Row>,
    agency_students: Vec<Row>,
    agent_students: Vec<Row>,
    agency_agents: Vec<Row>,
}

/// The outside agencies (educational psychology, CAMHS, social care, school nursing, speech
/// and language therapy), two or three invented agents of each, and the pupils they work
/// with: pupils with a plan and some at SEN support see the educational psychologist, pupils
/// with social, emotional and mental health needs CAMHS, pupils with speech and language
/// needs the therapists, pupils with a health care plan the school nurse, and a few pupils
/// have a social worker.
fn agencies(
    roster: &Roster,
    dates: &Dates,
    rng: &mut Rng,
    needs: &[Vec<&str>],
    care_plan: &[bool],
) -> Agencies {
    let mut out = Agencies {
        agencies: AGENCIES.iter().enumerate().map(agency_row).collect(),
        agents: Vec::new(),
        agency_students: Vec::new(),
        agent_students: Vec::new(),
        agency_agents: Vec::new(),
    };
    let mut staff_of: Vec<Vec<String>> = Vec::with_capacity(AGENCIES.len());
    for (index, agency) in AGENCIES.iter().enumerate() {
        let mut ids = Vec::new();
        for _ in 0..2 + rng.below(2) {
            let id = next_id(&out.agents, 3_451);
            out.agents.push(agent_row(&id, agency, rng));
            out.agency_agents.push(row(json!({
                "Id": format!("{}.{id}", 30 + index), "AgencyId": (30 + index).to_string(),
                "AgentId": id,
            })));
            ids.push(id);
        }
        staff_of.push(ids);
    }
    for ((pupil, needs), &care_plan) in roster.pupils.iter().zip(needs).zip(care_plan) {
        for agency in agencies_of(pupil, needs, care_plan, rng) {
            let agent = &staff_of[agency][rng.below(staff_of[agency].len())];
            link(&mut out, pupil, agency, agent, dates, rng);
        }
    }
    out
}

/// Which agencies (indexes into [`AGENCIES`]) work with a pupil.
fn agencies_of(pupil: &Pupil, needs: &[&str], care_plan: bool, rng: &mut Rng) -> Vec<usize> {
    let has = |code: &str| needs.contains(&code);
    let mut out = Vec::new();
    let psychology = match pupil.sen.as_str() {
        "E" => true,
        "K" => (has("SpLD") || has("MLD") || has("ASD")) && rng.chance(25),
        _ => false,
    };
    if psychology {
        out.push(EDUCATIONAL_PSYCHOLOGY);
    }
    if (has("SEMH") && rng.chance(40)) || rng.chance(1) {
        out.push(CAMHS);
    }
    if rng.chance(2) {
        out.push(SOCIAL_CARE);
    }
    if care_plan {
        out.push(SCHOOL_NURSING);
    }
    if (has("SLCN") && rng.chance(60)) || (has("ASD") && rng.chance(20)) {
        out.push(SPEECH_THERAPY);
    }
    out
}

/// An Agency row; agencies' ids are 30 upwards.
fn agency_row((index, agency): (usize, &AgencyKind)) -> Row {
    let (house_name, street) = agency
        .street
        .split_once(", ")
        .unwrap_or(("", agency.street));
    let postcode = format!("ZZ{} {}ZZ", 1 + index, 3 + index);
    row(json!({
        "Id": (30 + index).to_string(), "AgencyType": agency.kind, "AgencyName": agency.name,
        "Telephone": format!("01632 960{:03}", 100 + index * 10),
        "Fax": (index % 2 == 0).then(|| format!("01632 960{:03}", 101 + index * 10)),
        "EmailAddress": format!("enquiries@{}", agency.domain),
        "Website": format!("www.{}", agency.domain), "HouseNumber": null,
        "HouseName": house_name, "Apartment": null, "Street": street, "District": null,
        "Town": agency.town, "County": "Exampleshire", "Postcode": postcode,
        "Country": "United Kingdom",
        "AddressBlock": format!("{house_name}\n{street}\n{}\n{postcode}", agency.town),
    }))
}

/// An invented agent of an agency (names from the sandbox's lists).
fn agent_row(id: &str, agency: &AgencyKind, rng: &mut Rng) -> Row {
    let forename = rng.pick(FORENAMES);
    let surname = rng.pick(SURNAMES);
    let title = ["Ms", "Mr", "Mrs", "Dr", "Mx"][rng.below(5)];
    let gender = match title {
        "Ms" | "Mrs" => "F",
        "Mr" => "M",
        _ if rng.chance(50) => "F",
        _ => "M",
    };
    let initial = forename.chars().next().unwrap_or('x').to_lowercase();
    let email = format!("{initial}.{id}@{}", agency.domain);
    let phone = format!("01632 960{:03}", 300 + rng.below(700));
    row(json!({
        "Id": id, "Title": title, "Surname": surname, "Forename": forename,
        "MiddleName": null, "Gender": gender, "Telephone": phone,
        "EmailAddress": email, "PrimaryTelephone": format!("07700 900{:03}", rng.below(1000)),
        "PrimaryEmailAddress": email,
    }))
}

/// A pupil's link to an agency and to one of its agents, from the same day; about one in
/// seven has ended.
fn link(
    out: &mut Agencies,
    pupil: &Pupil,
    agency: usize,
    agent: &str,
    dates: &Dates,
    rng: &mut Rng,
) {
    let start = dates.between(
        rng,
        dates.entry(pupil) - years(1),
        dates.yesterday - Duration::days(14),
    );
    let end = rng
        .chance(15)
        .then(|| dates.between(rng, start + Duration::days(42), dates.yesterday));
    let kind = &AGENCIES[agency];
    out.agency_students.push(row(json!({
        "Id": next_id(&out.agency_students, 4_355), "AgencyId": (30 + agency).to_string(),
        "StudentId": pupil.id, "AgencyStudentLinkType": kind.agency_link,
        "AgencyStudentStartDate": ymd(start), "AgencyStudentEndDate": end.map(ymd),
    })));
    out.agent_students.push(row(json!({
        "Id": next_id(&out.agent_students, 5_355), "AgentId": agent, "StudentId": pupil.id,
        "AgentStudentLinkType": kind.agent_link, "AgentStudentStartDate": ymd(start),
        "AgentStudentEndDate": end.map(ymd),
    })));
}

/// The funding entitlement groups.
fn entitlement_groups() -> Vec<Row> {
    ENTITLEMENTS
        .iter()
        .map(|(id, short, full)| row(json!({"Id": id, "Shortname": short, "Fullname": full})))
        .collect()
}

/// Pupils' memberships of the entitlement groups: pupils eligible for free meals are in FSM
/// and Ever 6 from the same day; most other pupil premium pupils had free meals once (an
/// ended FSM membership, an open Ever 6 one); pupil premium pupils are in PP for this year.
fn entitlement_members(roster: &Roster, dates: &Dates, rng: &mut Rng) -> Vec<Row> {
    let [fsm, ever6, premium, _] = [0, 1, 2, 3].map(|i| ENTITLEMENTS[i].0);
    let mut rows = Vec::new();
    for pupil in &roster.pupils {
        let entry = dates.entry(pupil);
        if pupil.fsm {
            let from = dates.between(rng, entry - years(3), dates.yesterday - Duration::days(14));
            membership(&mut rows, pupil, fsm, from, None);
            membership(&mut rows, pupil, ever6, from, None);
        } else if pupil.pupil_premium && rng.chance(60) {
            let from = dates.between(rng, entry - years(4), entry + years(1));
            let to = dates.between(rng, from + Duration::days(120), dates.yesterday);
            membership(&mut rows, pupil, fsm, from, Some(to));
            membership(&mut rows, pupil, ever6, from, None);
        }
        if pupil.pupil_premium {
            membership(&mut rows, pupil, premium, dates.year_start, None);
        }
    }
    rows
}

/// An EntitlementGroupStudents row; open when it has no end.
fn membership(rows: &mut Vec<Row>, pupil: &Pupil, group: &str, from: Date, to: Option<Date>) {
    rows.push(row(json!({
        "Id": next_id(rows, 8_601), "EntitlementGroupId": group, "StudentId": pupil.id,
        "StartDate": date(from), "EndDate": to.map(date),
    })));
}

#[cfg(test)]
mod tests {
    use super::super::testing::{text, values};
    use std::collections::BTreeSet;

    use crate::synthetic::SyntheticSchool;

    fn school() -> SyntheticSchool {
        super::super::sandbox("9992001", 120, 7, time::macros::date!(2026 - 12 - 06))
    }

    #[test]
    fn every_pupil_and_link_id_resolves() {
        let school = school();
        let pupils = values(&school, "Students", "Id");
        for (set, field) in [
            ("StudentSENTypeHistory", "StudentMis_Id"),
            ("StudentSENProvisionHistory", "StudentMis_Id"),
            ("StudentDisabilities", "StudentMis_Id"),
            ("StudentConditions", "StudentId"),
            ("StudentMedical", "Id"),
            ("StudentMedicalNotes", "StudentId"),
            ("StudentMeals", "Id"),
            ("StudentExclusions", "StudentId"),
            ("StudentSchoolHistory", "StudentId"),
            ("AgencyStudent", "StudentId"),
            ("AgentStudent", "StudentId"),
            ("EntitlementGroupStudents", "StudentId"),
        ] {
            let ids = values(&school, set, field);
            assert!(ids.is_subset(&pupils), "{set}.{field}: {ids:?}");
        }
        assert_eq!(values(&school, "StudentMedical", "Id"), pupils);
        assert_eq!(values(&school, "StudentMeals", "Id"), pupils);
        for (set, field, target) in [
            (
                "StudentConditions",
                "MedicalConditionId",
                "ConditionLookups",
            ),
            ("AgencyStudent", "AgencyId", "Agency"),
            ("AgentStudent", "AgentId", "Agent"),
            ("AgencyAgent", "AgencyId", "Agency"),
            ("AgencyAgent", "AgentId", "Agent"),
            (
                "EntitlementGroupStudents",
                "EntitlementGroupId",
                "EntitlementGroups",
            ),
        ] {
            let ids = values(&school, set, field);
            let targets = values(&school, target, "Id");
            assert!(ids.is_subset(&targets), "{set}.{field}: {ids:?}");
        }
    }

    #[test]
    fn sen_records_agree_with_the_pupils_sen_status() {
        let school = school();
        let active_provision: BTreeSet<(String, String)> = school
            .rows("StudentSENProvisionHistory")
            .iter()
            .filter(|r| r["Active"] == 1)
            .map(|r| (text(r, "StudentMis_Id"), text(r, "SENProvisionCode")))
            .collect();
        let with_need: BTreeSet<String> = school
            .rows("StudentSENTypeHistory")
            .iter()
            .filter(|r| r["Active"] == 1 && r["Rank"] == 1)
            .map(|r| text(r, "StudentMis_Id"))
            .collect();
        for pupil in school.rows("Students") {
            let (id, sen) = (text(pupil, "Id"), text(pupil, "SENProvision"));
            let current = active_provision.contains(&(id.clone(), sen.clone()));
            assert_eq!(current, sen != "N", "pupil {id} at {sen}");
            assert_eq!(with_need.contains(&id), sen != "N", "pupil {id} at {sen}");
        }
        for r in school.rows("StudentSENTypeHistory") {
            assert_eq!(r["Active"] == 1, r["NeedEndDate"].is_null(), "{r:?}");
        }
    }

    #[test]
    fn history_is_in_the_past_and_before_entry() {
        let school = school();
        let today = "2026-12-06".to_string();
        let entry: std::collections::BTreeMap<String, String> = school
            .rows("Students")
            .iter()
            .map(|r| (text(r, "Id"), text(r, "EntryDate")))
            .collect();
        for r in school.rows("StudentSchoolHistory") {
            let left = text(r, "LeavingDate");
            assert!(left < entry[&text(r, "StudentId")], "{r:?}");
            assert_eq!(text(r, "EstabId").len(), 7);
        }
        for r in school.rows("StudentExclusions") {
            let (start, end) = (text(r, "StartDate"), text(r, "EndDate"));
            assert!(start.as_str() >= "2026-09-01" && start < today, "{r:?}");
            assert!(end >= start && end.as_str() < "2026-12-31", "{r:?}");
        }
        for (set, field) in [
            ("StudentSENTypeHistory", "NeedStartDate"),
            ("StudentSENProvisionHistory", "SENProvisionStartDate"),
            ("EntitlementGroupStudents", "StartDate"),
            ("AgencyStudent", "AgencyStudentStartDate"),
        ] {
            assert!(
                values(&school, set, field).iter().all(|d| *d < today),
                "{set}"
            );
        }
    }

    #[test]
    fn free_meal_pupils_are_in_the_fsm_group() {
        let school = school();
        let in_fsm: BTreeSet<String> = school
            .rows("EntitlementGroupStudents")
            .iter()
            .filter(|r| r["EntitlementGroupId"] == "100" && r["EndDate"].is_null())
            .map(|r| text(r, "StudentId"))
            .collect();
        let eligible: BTreeSet<String> = school
            .rows("Students")
            .iter()
            .filter(|r| r["FsmEligible"] == 1)
            .map(|r| text(r, "Id"))
            .collect();
        assert_eq!(in_fsm, eligible);
    }
}
