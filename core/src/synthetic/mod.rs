//! A deterministic synthetic school, for the demo, the tests and the benchmarks. Every person
//! in it is invented; names carry apostrophes, hyphens and accents, as real MIS data does.

use serde_json::{Value, json};

use crate::dataset::Row;

mod assessment;
mod attendance;
mod conduct;
pub mod ctf;
pub mod days;
mod documents;
mod pastoral;
pub mod roster;
mod staffing;
mod timetable;

use days::Days;
use roster::Roster;

/// Result sets an area adds: name and rows.
type Sets = Vec<(String, Vec<Row>)>;

const FORENAMES: &[&str] = &[
    "Zoë",
    "Siobhán",
    "José",
    "Chloé",
    "Renée",
    "Aoife",
    "Oluwaseun",
    "Amara",
    "Oliver",
    "Isla",
    "Noah",
    "Freya",
    "Arjun",
    "Maja",
    "Kacper",
    "Léa",
    "Niamh",
    "Tomás",
    "Ffion",
    "Dafydd",
    "Anna-Marie",
    "Jean-Luc",
    "Yusuf",
    "Priya",
    "Bartłomiej",
    "Saoirse",
    "Eilidh",
    "Kai",
    "Hiroshi",
    "Mei",
    "Ayşe",
    "Emre",
    "Gráinne",
    "Rhys",
    "Leah",
    "Ibrahim",
    "Nia",
    "Søren",
];
const SURNAMES: &[&str] = &[
    "O'Connor",
    "D'Arcy",
    "Smith-Jones",
    "Brontë",
    "Nowak",
    "Okafor",
    "Patel",
    "MacDonald",
    "Ní Bhriain",
    "Lloyd-Price",
    "Müller",
    "Núñez",
    "O'Neill",
    "Fitzgerald-Hughes",
    "Kowalczyk",
    "Adebayo",
    "Haddad",
    "Ó Súilleabháin",
    "Van der Berg",
    "Quinn",
    "Thorne",
    "Ashdown",
    "Wren",
    "Calloway",
    "Pryce",
    "Akhtar",
    "Lindqvist",
    "Szabó",
    "Mendoza",
    "Dębski",
];
const STREETS: &[&str] = &[
    "Larkfield Road",
    "Mill Lane",
    "St Anne's Close",
    "Orchard Way",
    "Hill-Top Rise",
];
const TOWNS: &[&str] = &["Eduville", "Testbury", "Sampleton"];
const ETHNICITIES: &[(&str, &str)] = &[
    ("WBRI", "White - British"),
    ("WIRI", "White - Irish"),
    ("ABAN", "Asian - Bangladeshi"),
    ("AIND", "Asian - Indian"),
    ("BAFR", "Black - African"),
    ("MWBC", "Mixed - White and Black Caribbean"),
    ("WPOL", "White - Polish"),
    ("REFU", "Refused"),
];
const HOUSES: &[&str] = &["Brontë", "Seacole", "Turing", "Hepworth"];
const SUBJECTS: &[(&str, &str)] = &[
    ("Ma", "Mathematics"),
    ("En", "English"),
    ("Sc", "Science"),
    ("Fr", "French"),
];
const YEARS: std::ops::RangeInclusive<u32> = 7..=11;

/// A school's whole extract: result set name → rows, in the order an agent would send them.
#[derive(Debug, Clone)]
pub struct SyntheticSchool {
    pub estab: String,
    pub name: String,
    pub result_sets: Vec<(String, Vec<Row>)>,
}

impl SyntheticSchool {
    /// The agent's upload body for this school.
    pub fn upload_body(&self) -> Value {
        let sets: serde_json::Map<String, Value> = self
            .result_sets
            .iter()
            .map(|(name, rows)| {
                (
                    name.clone(),
                    Value::Array(rows.iter().cloned().map(Value::Object).collect()),
                )
            })
            .collect();
        json!({ "resultSets": sets })
    }

    pub fn rows(&self, result_set: &str) -> &[Row] {
        self.result_sets
            .iter()
            .find(|(name, _)| name == result_set)
            .map(|(_, rows)| rows.as_slice())
            .unwrap_or(&[])
    }
}

/// SplitMix64: small, fast, deterministic; not for secrets.
struct Rng(u64);

impl Rng {
    /// The generator of one area: areas draw from their own streams, so adding rows to one
    /// never changes another.
    fn area(seed: u64, area: &str) -> Self {
        let salt = area.bytes().fold(0xCBF2_9CE4_8422_2325u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01B3)
        });
        Self(seed ^ salt)
    }
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

fn row(value: Value) -> Row {
    match value {
        Value::Object(map) => map,
        _ => unreachable!("rows are built from object literals"),
    }
}

/// A school of `pupils` pupils (years 7 to 11), their contacts, about one member of staff per
/// 14 pupils, and year, registration, house and teaching groups with memberships. The same
/// `seed` and size always give the same school.
pub fn school(estab: &str, pupils: usize, seed: u64) -> SyntheticSchool {
    let mut rng = Rng(seed);
    let name = "Larkfield Test Academy".to_string();
    let staff = staff_rows(&mut rng, (pupils / 14).max(8));
    let mut groups = Vec::new();
    let mut student_members = Vec::new();
    let mut staff_members = Vec::new();
    let mut next_group = 100u32;
    let mut add_group = |groups: &mut Vec<Row>,
                         kind: &str,
                         type_id: u32,
                         code: String,
                         subject: Option<(&str, &str)>| {
        next_group += 1;
        let id = next_group;
        let mut g = row(json!({
            "Id": id.to_string(), "XID": format!("XG{id:07}"), "ExternalId": format!("grp-{id:08}"), "IdaasId": format!("GC-{id}"),
            "Code": code, "Name": code, "TypeId": type_id.to_string(), "Type": kind,
        }));
        if let Some((subject_code, subject_name)) = subject {
            g.insert("SubjectCode".into(), json!(subject_code));
            g.insert("SubjectName".into(), json!(subject_name));
        }
        groups.push(g);
        id
    };
    let houses: Vec<u32> = HOUSES
        .iter()
        .map(|h| add_group(&mut groups, "HouseGrp", 4, h.to_string(), None))
        .collect();
    let per_year = pupils.div_ceil(YEARS.count());
    let reg_per_year = per_year.div_ceil(30).max(1);
    let mut students = Vec::with_capacity(pupils);
    let mut contacts = Vec::new();
    let mut student_contacts = Vec::new();
    let mut family: Vec<(String, String)> = Vec::new();
    // The pupils of each household (indexes into `students`): siblings share contacts.
    let mut households: Vec<Vec<usize>> = Vec::new();
    let mut next_contact = 50_000u32;
    // A teaching group's teacher: all sets of a subject in a year are taught at the same time,
    // so each set of each subject gets its own teacher (the same one in every year).
    let mut teacher_slots: std::collections::HashMap<String, usize> =
        std::collections::HashMap::new();
    for (year_index, year) in YEARS.enumerate() {
        let year_group = add_group(&mut groups, "YearGrp", 1, format!("Year {year}"), None);
        let regs: Vec<(u32, String)> = (0..reg_per_year)
            .map(|r| {
                let code = format!("{year}{}", (b'A' + r as u8) as char);
                (
                    add_group(&mut groups, "RegGrp", 2, code.clone(), None),
                    code,
                )
            })
            .collect();
        let teaching: Vec<u32> = SUBJECTS
            .iter()
            .flat_map(|subject| (1..=reg_per_year).map(move |set| (subject, set)))
            .enumerate()
            .map(|(slot, (subject, set))| {
                let id = add_group(
                    &mut groups,
                    "TeachingGrp",
                    3,
                    format!("{year}{}{set}", subject.0),
                    Some(*subject),
                );
                teacher_slots.insert(id.to_string(), slot);
                id
            })
            .collect();
        let first = year_index * per_year;
        for n in first..(first + per_year).min(pupils) {
            let id = (10_000 + n).to_string();
            let (reg_id, reg_code) = &regs[(n - first) % regs.len()];
            let house = houses[n % houses.len()];
            let student = student_row(&mut rng, &id, year, year_group, (*reg_id, reg_code), house);
            // About one pupil in six is a younger sibling of the one before, sharing contacts.
            let sibling = rng.chance(16) && !family.is_empty();
            match households.last_mut() {
                Some(household) if sibling => household.push(students.len()),
                _ => households.push(vec![students.len()]),
            }
            if !sibling {
                family.clear();
                let surname = student["Surname"].as_str().unwrap_or_default().to_string();
                for (priority, relationship) in [(1, "Mother"), (2, "Father")]
                    .into_iter()
                    .take(1 + rng.below(2))
                {
                    next_contact += 1;
                    let contact =
                        contact_row(&mut rng, next_contact, &surname, relationship, &student);
                    family.push((
                        contact["Id"].as_str().unwrap_or_default().to_string(),
                        format!("{priority}:{relationship}"),
                    ));
                    contacts.push(contact);
                }
            }
            for (contact_id, link) in &family {
                let (priority, relationship) = link.split_once(':').unwrap_or(("1", "Carer"));
                student_contacts.push(row(json!({
                    "Id": format!("PL-{id}.PC-{contact_id}"), "StudentId": id, "ContactId": contact_id,
                    "Relationship": relationship, "Priority": priority.parse::<u32>().unwrap_or(1), "ParResp": 1,
                })));
            }
            let mut memberships = vec![year_group, *reg_id, house];
            memberships.extend(
                teaching
                    .iter()
                    .skip((n - first) % reg_per_year)
                    .step_by(reg_per_year),
            );
            for group in memberships {
                student_members.push(row(json!({
                    "Id": format!("GC-{group}.PL-{id}"), "GroupId": group.to_string(), "StudentId": id,
                    "GroupExternalId": format!("grp-{group:08}"), "StudentIdaasId": format!("PL-{id}"),
                    "GroupIdaasId": format!("GC-{group}"),
                })));
            }
            students.push(student);
        }
    }
    for household in households.iter().filter(|h| h.len() > 1) {
        for &pupil in household {
            let others: Vec<&str> = household
                .iter()
                .filter(|&&other| other != pupil)
                .filter_map(|&other| students[other]["Id"].as_str())
                .collect();
            let list = json!(others.join(","));
            students[pupil].insert("StudentSiblingIds".into(), list);
        }
    }
    let mut group_sizes: std::collections::HashMap<String, usize> =
        std::collections::HashMap::new();
    for member in &student_members {
        if let Some(group) = member["GroupId"].as_str() {
            *group_sizes.entry(group.to_owned()).or_default() += 1;
        }
    }
    let teachers: Vec<&Row> = staff.iter().filter(|s| s["IsTeacher"] == 1).collect();
    for (index, group) in groups.iter_mut().enumerate() {
        let group_key = group["Id"].as_str().unwrap_or_default();
        let teacher = match teacher_slots.get(group_key) {
            Some(slot) => teachers[slot % teachers.len()],
            None => &staff[index % staff.len()],
        };
        let staff_id = teacher["Id"].as_str().unwrap_or_default().to_string();
        let group_id = group["Id"].as_str().unwrap_or_default().to_string();
        let count = group_sizes.get(&group_id).copied().unwrap_or(0);
        group.insert("PrimaryStaffId".into(), json!(staff_id));
        group.insert("Staff".into(), teacher["StaffCode"].clone());
        group.insert("NumStudents".into(), json!(count));
        staff_members.push(row(json!({
            "Id": format!("GC-{group_id}.PWT-{staff_id}"), "GroupId": group_id, "StaffId": staff_id,
            "StaffRole": if group["Type"] == "TeachingGrp" { "Teacher" } else { "Tutor" },
            "StaffIdaasId": format!("PWT-{staff_id}"), "GroupIdaasId": format!("GC-{group_id}"),
        })));
    }
    let school_info = vec![row(json!({
        "Id": "1", "Name": name, "Head": "Dr Ngozi O'Brien-Ashe", "MainContact": "Dr N O'Brien-Ashe",
        "Telephone": "01632960000", "Web": "www.larkfield.example", "Email": "office@larkfield.example",
        "Governance": "Academy", "Phase": "Secondary", "Address": "1 Larkfield Road, Eduville, ZZ1 1ZZ",
        "EstabId": estab,
    }))];
    let group_types = [
        ("1", "YearGrp", "Year Group"),
        ("2", "RegGrp", "Registration Group"),
        ("3", "TeachingGrp", "Teaching Group"),
        ("4", "HouseGrp", "House Group"),
    ]
    .iter()
    .map(|(id, code, description)| {
        row(json!({"Id": id, "TypeCode": code, "TypeDescription": description}))
    })
    .collect();
    SyntheticSchool {
        estab: estab.to_string(),
        name,
        result_sets: vec![
            ("SchoolInfo".into(), school_info),
            ("Students".into(), students),
            ("Contacts".into(), contacts),
            ("StudentContacts".into(), student_contacts),
            ("Staff".into(), staff),
            ("Group".into(), groups),
            ("GroupTypes".into(), group_types),
            ("StudentMembers".into(), student_members),
            ("StaffMembers".into(), staff_members),
        ],
    }
}

/// The sandbox school: the core school of [`school`] and every other area of the catalogue,
/// cross-referenced with it (a timetable of its groups, staff and rooms; attendance of its
/// pupils at those lessons; conduct, assessment, SEN, medical, meals, exclusions, history,
/// calendar, staff absence and contracts, user-defined fields, documents, agencies,
/// entitlements, seating plans, photographs). Dates are relative to `today`: the same seed,
/// size and day always give the same school.
pub fn sandbox(estab: &str, pupils: usize, seed: u64, today: time::Date) -> SyntheticSchool {
    let mut school = school(estab, pupils, seed);
    let roster = Roster::of(&school);
    let days = Days::new(today);
    let timetable = timetable::Timetable::plan(&roster, &days);
    let areas: [Sets; 7] = [
        timetable.sets(&roster, &days),
        attendance::sets(
            &roster,
            &timetable,
            &days,
            &mut Rng::area(seed, "attendance"),
        ),
        conduct::sets(&roster, &days, &mut Rng::area(seed, "conduct")),
        assessment::sets(&roster, &days, &mut Rng::area(seed, "assessment")),
        pastoral::sets(&roster, &days, &mut Rng::area(seed, "pastoral")),
        staffing::sets(&roster, &days, &mut Rng::area(seed, "staffing")),
        documents::sets(&roster, &days, &mut Rng::area(seed, "documents")),
    ];
    school.result_sets.extend(areas.into_iter().flatten());
    let siblings = siblings(school.rows("Students"));
    school
        .result_sets
        .push(("StudentSiblings".into(), siblings));
    if let Some((_, info)) = school
        .result_sets
        .iter_mut()
        .find(|(n, _)| n == "SchoolInfo")
    {
        for row in info {
            row.insert(
                "CurrentAcademicYear".into(),
                json!(days.academic_year_label()),
            );
        }
    }
    school
}

/// StudentSiblings: a row for each pupil and each brother or sister on roll, from the pupils'
/// `StudentSiblingIds`.
fn siblings(students: &[Row]) -> Vec<Row> {
    let gender: std::collections::HashMap<&str, &str> = students
        .iter()
        .filter_map(|s| Some((s["Id"].as_str()?, s["Gender"].as_str()?)))
        .collect();
    let mut rows = Vec::new();
    for student in students {
        let (Some(id), Some(list)) = (student["Id"].as_str(), student.get("StudentSiblingIds"))
        else {
            continue;
        };
        for sibling in list.as_str().unwrap_or_default().split(',') {
            let relationship = match gender.get(sibling) {
                Some(&"F") => "Sister",
                _ => "Brother",
            };
            rows.push(row(json!({
                "Id": format!("{id}.{sibling}"), "StudentId": id, "SiblingId": sibling,
                "Relationship": relationship,
            })));
        }
    }
    rows
}

fn student_row(
    rng: &mut Rng,
    id: &str,
    year: u32,
    year_group: u32,
    reg: (u32, &String),
    house: u32,
) -> Row {
    let forename = rng.pick(FORENAMES);
    let surname = rng.pick(SURNAMES);
    let (ethnicity_code, ethnicity) = ETHNICITIES[rng.below(ETHNICITIES.len())];
    let birth_year = 2026 - 11 - (year - 7) as i32;
    let dob = format!(
        "{birth_year}-{:02}-{:02}",
        1 + rng.below(12),
        1 + rng.below(28)
    );
    let house_no = 1 + rng.below(120);
    let street = rng.pick(STREETS);
    let town = rng.pick(TOWNS);
    let postcode = format!("ZZ{} {}ZZ", 1 + rng.below(9), rng.below(10));
    let sen = ["N", "N", "N", "N", "K", "E"][rng.below(6)];
    row(json!({
        "Id": id, "XID": format!("XP{id:0>7}"), "ExternalId": format!("stu-{id}"), "IdaasId": format!("PL-{id}"),
        "Forename": forename, "Surname": surname, "DisplayName": format!("{forename} {surname}"),
        "Gender": if rng.chance(50) { "F" } else { "M" },
        "RegGroupId": reg.0.to_string(), "RegGroup": reg.1, "YearGroupId": year_group.to_string(),
        "YearGroup": format!("Year {year}"), "HouseGroupId": house.to_string(),
        "AdmissionNo": format!("{:06}", 4000 + id.parse::<u32>().unwrap_or(0) % 100_000),
        "DateOfBirth": dob, "LegalForename": forename, "LegalSurname": surname,
        "EntryDate": format!("{}-09-03", 2026 - (year - 6) as i32), "EnrolmentStatus": "C", "StudentStatus": "Current", "Boarder": 0,
        "SENProvision": sen,
        "EAL": u8::from(rng.chance(20)), "EthnicityCode": ethnicity_code, "Ethnicity": ethnicity, "EthnicitySource": "P",
        "FirstLanguageCode": "ENG", "FirstLanguage": "English", "FsmEligible": u8::from(rng.chance(22)),
        "PupilPremium": u8::from(rng.chance(25)), "InLeaCare": u8::from(rng.chance(2)), "ServiceChild": 0,
        "UPN": format!("Z{:012}", 999_200_000_000u64 + id.parse::<u64>().unwrap_or(0)),
        "HouseNo": house_no.to_string(), "Street": street, "TownOrCity": town, "PostCode": postcode,
        "Country": "United Kingdom", "AddressBlock": format!("{house_no} {street}\n{town}\n{postcode}"),
    }))
}

fn contact_row(rng: &mut Rng, id: u32, surname: &str, relationship: &str, student: &Row) -> Row {
    let forename = rng.pick(FORENAMES);
    let title = if relationship == "Mother" {
        "Mrs"
    } else {
        "Mr"
    };
    row(json!({
        "Id": id.to_string(), "IdaasId": format!("PC-{id}"), "ExternalId": format!("con-{id}"),
        "Title": title, "Surname": surname, "Forename": forename, "DisplayName": format!("{title} {forename} {surname}"),
        "HomeEmail": format!("parent{id}@mail.example"), "MobilePhone": format!("07700 9{:05}", id % 100_000),
        "HomeLanguage": "English", "HomeLanguageCode": "ENG", "TranslatorRequired": 0,
        "AddressBlock": student["AddressBlock"].clone(), "HouseNo": student["HouseNo"].clone(),
        "Street": student["Street"].clone(), "TownOrCity": student["TownOrCity"].clone(),
        "PostCode": student["PostCode"].clone(), "Country": "United Kingdom",
    }))
}

fn staff_rows(rng: &mut Rng, count: usize) -> Vec<Row> {
    (0..count)
        .map(|n| {
            let id = (5 + n).to_string();
            let forename = rng.pick(FORENAMES);
            let surname = rng.pick(SURNAMES);
            let title = ["Mr", "Ms", "Mrs", "Dr", "Mx"][rng.below(5)];
            let initial = forename.chars().next().unwrap_or('X');
            let code: String = format!("{initial}{}{n}", surname.chars().find(|c| c.is_alphabetic()).unwrap_or('X')).to_uppercase();
            let teacher = n % 5 != 4;
            let dob = format!("{}-0{}-1{}", 1965 + rng.below(35), 1 + rng.below(9), rng.below(10));
            let postcode = format!("ZZ{} 9ZZ", 1 + rng.below(9));
            row(json!({
                "Id": id, "XID": format!("XS{id:0>7}"), "ExternalId": format!("stf-{id}"), "IdaasId": format!("PWT-{id}"), "Title": title,
                "StaffCode": code, "StaffStatus": "Current", "Forename": forename, "Surname": surname,
                "DisplayName": format!("{title} {initial} {surname}"), "WorkEmail": format!("staff{id}@larkfield.example"),
                "IsTeacher": u8::from(teacher), "IsSupport": u8::from(!teacher), "Gender": if rng.chance(60) { "F" } else { "M" },
                "DateOfBirth": dob,
                "PayrollNumber": format!("P{:06}", n), "NINumber": format!("ZZ{:06}A", 100_000 + n),
                "HomeEmail": format!("home{id}@mail.example"), "PostCode": postcode,
            }))
        })
        .collect()
}

/// What the areas' tests read rows with.
#[cfg(test)]
mod testing {
    use std::collections::BTreeSet;

    use super::SyntheticSchool;
    use crate::dataset::Row;

    /// A field as text (`null` for a missing one).
    pub fn text(row: &Row, field: &str) -> String {
        match &row[field] {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        }
    }

    /// The values of `field` in every row of `set`.
    pub fn values(school: &SyntheticSchool, set: &str, field: &str) -> BTreeSet<String> {
        school.rows(set).iter().map(|r| text(r, field)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::catalogue::{Catalogue, PersonKind, Reference};
    use time::macros::date;

    fn bytes(school: &SyntheticSchool) -> Vec<u8> {
        serde_json::to_vec(&school.upload_body()).unwrap()
    }

    #[test]
    fn the_same_seed_gives_the_same_school() {
        let a = school("9992001", 200, 7);
        let b = school("9992001", 200, 7);
        assert_eq!(a.upload_body(), b.upload_body());
        assert_eq!(a.rows("Students").len(), 200);
    }

    #[test]
    fn the_same_seed_and_day_give_the_same_bytes_and_another_day_moves_the_dates() {
        let day = date!(2026 - 12 - 07);
        let a = bytes(&sandbox("9992001", 150, 7, day));
        assert_eq!(a, bytes(&sandbox("9992001", 150, 7, day)));
        assert_ne!(a, bytes(&sandbox("9992001", 150, 8, day)));
        let later = sandbox("9992001", 150, 7, date!(2027 - 02 - 01));
        assert!(later.rows("Lessons")[0]["StartDateTime"].as_str().unwrap() > "2027-01-01");
    }

    #[test]
    fn the_sandbox_fills_every_stored_set_with_unique_ids_and_nothing_ignored() {
        let s = sandbox("9992001", 40, 3, date!(2026 - 12 - 06));
        for rs in Catalogue::get().stored_sets() {
            let rows = s.rows(&rs.name);
            assert!(!rows.is_empty(), "the sandbox has no {}", rs.name);
            let ids: std::collections::BTreeSet<String> =
                rows.iter().map(|r| r["Id"].to_string()).collect();
            assert_eq!(ids.len(), rows.len(), "{} repeats an Id", rs.name);
        }
        let upload = crate::dataset::parse_upload(Catalogue::get(), &bytes(&s)).unwrap();
        assert!(upload.ignored.is_empty(), "{:?}", upload.ignored);
    }

    /// Every field the catalogue says holds a pupil, member of staff or contact holds one of
    /// the school's.
    #[test]
    fn every_person_a_row_is_about_is_on_the_school_roll() {
        let s = sandbox("9992001", 80, 5, date!(2026 - 12 - 08));
        let roll = |kind: PersonKind| -> std::collections::BTreeSet<String> {
            s.rows(kind.own_set())
                .iter()
                .map(|r| r["Id"].as_str().unwrap().to_owned())
                .collect()
        };
        let rolls: Vec<(PersonKind, _)> = PersonKind::ALL.iter().map(|k| (*k, roll(*k))).collect();
        let mut checked = 0;
        for rs in Catalogue::get().stored_sets() {
            for subject in &rs.people.subjects {
                for row in s.rows(&rs.name) {
                    let kind = match &subject.reference {
                        Reference::Kind(kind) => *kind,
                        Reference::Typed { type_field } => {
                            PersonKind::of_person_type(row[type_field].as_str().unwrap()).unwrap()
                        }
                    };
                    let id = row[&subject.field].as_str().unwrap_or_default();
                    let roll = &rolls.iter().find(|(k, _)| *k == kind).unwrap().1;
                    assert!(roll.contains(id), "{}.{} = {id:?}", rs.name, subject.field);
                    checked += 1;
                }
            }
        }
        assert!(checked > 5_000, "{checked}");
    }

    #[test]
    fn every_pupil_has_a_contact_and_memberships() {
        let s = school("9992001", 300, 1);
        for student in s.rows("Students") {
            let id = &student["Id"];
            assert!(
                s.rows("StudentContacts")
                    .iter()
                    .any(|l| &l["StudentId"] == id)
            );
            assert!(
                s.rows("StudentMembers")
                    .iter()
                    .filter(|m| &m["StudentId"] == id)
                    .count()
                    >= 4
            );
        }
    }

    #[test]
    fn the_school_passes_upload_validation_with_nothing_ignored() {
        let s = school("9992001", 100, 3);
        let body = serde_json::to_vec(&s.upload_body()).unwrap();
        let upload =
            crate::dataset::parse_upload(crate::catalogue::Catalogue::get(), &body).unwrap();
        assert!(upload.ignored.is_empty(), "{:?}", upload.ignored);
    }
}
