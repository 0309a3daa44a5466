//! The people and groups of the core school, read back from its rows, for the areas that refer
//! to them (timetable, attendance, conduct, ...). Every id an area writes comes from here, so
//! the whole sandbox cross-references as a real MIS extract does.

use super::SyntheticSchool;
use crate::dataset::Row;

#[derive(Debug, Clone)]
pub struct Pupil {
    pub id: String,
    pub forename: String,
    pub surname: String,
    /// National curriculum year, 7 to 11.
    pub year: u32,
    pub reg_group_id: String,
    /// `N`, `K` (SEN support) or `E` (education, health and care plan).
    pub sen: String,
    pub fsm: bool,
    pub pupil_premium: bool,
    /// `yyyy-mm-dd`.
    pub entry_date: String,
    /// Ids of the pupil's groups of every kind (year, registration, house, teaching).
    pub groups: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct StaffMember {
    pub id: String,
    pub code: String,
    pub title: String,
    pub forename: String,
    pub surname: String,
    pub display_name: String,
    pub teacher: bool,
}

#[derive(Debug, Clone)]
pub struct Contact {
    pub id: String,
    pub forename: String,
    pub surname: String,
}

#[derive(Debug, Clone)]
pub struct Group {
    pub id: String,
    pub code: String,
    pub name: String,
    /// `YearGrp`, `RegGrp`, `TeachingGrp` or `HouseGrp`.
    pub kind: String,
    /// `(code, name)` of a teaching group's subject.
    pub subject: Option<(String, String)>,
    pub staff_id: String,
    /// The year group a year, registration or teaching group belongs to.
    pub year: Option<u32>,
    /// Indexes into [`Roster::pupils`].
    pub members: Vec<usize>,
}

/// The core school as the other areas see it.
#[derive(Debug, Clone, Default)]
pub struct Roster {
    pub pupils: Vec<Pupil>,
    pub staff: Vec<StaffMember>,
    pub contacts: Vec<Contact>,
    pub groups: Vec<Group>,
}

fn text(row: &Row, field: &str) -> String {
    match row.get(field) {
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(serde_json::Value::Number(n)) => n.to_string(),
        _ => String::new(),
    }
}

fn flag(row: &Row, field: &str) -> bool {
    text(row, field) == "1"
}

impl Roster {
    pub fn of(school: &SyntheticSchool) -> Self {
        let mut pupils: Vec<Pupil> = school
            .rows("Students")
            .iter()
            .map(|row| Pupil {
                id: text(row, "Id"),
                forename: text(row, "Forename"),
                surname: text(row, "Surname"),
                year: text(row, "YearGroup")
                    .trim_start_matches("Year ")
                    .parse()
                    .unwrap_or(7),
                reg_group_id: text(row, "RegGroupId"),
                sen: text(row, "SENProvision"),
                fsm: flag(row, "FsmEligible"),
                pupil_premium: flag(row, "PupilPremium"),
                entry_date: text(row, "EntryDate"),
                groups: Vec::new(),
            })
            .collect();
        let pupil_index: std::collections::HashMap<String, usize> = pupils
            .iter()
            .enumerate()
            .map(|(i, p)| (p.id.clone(), i))
            .collect();
        let mut groups: Vec<Group> = school
            .rows("Group")
            .iter()
            .map(|row| {
                let code = text(row, "Code");
                let kind = text(row, "Type");
                let year = match kind.as_str() {
                    "YearGrp" => code.trim_start_matches("Year ").parse().ok(),
                    "RegGrp" | "TeachingGrp" => code
                        .chars()
                        .take_while(char::is_ascii_digit)
                        .collect::<String>()
                        .parse()
                        .ok(),
                    _ => None,
                };
                let subject = row
                    .get("SubjectCode")
                    .map(|_| (text(row, "SubjectCode"), text(row, "SubjectName")));
                Group {
                    id: text(row, "Id"),
                    name: text(row, "Name"),
                    code,
                    kind,
                    subject,
                    staff_id: text(row, "PrimaryStaffId"),
                    year,
                    members: Vec::new(),
                }
            })
            .collect();
        let group_index: std::collections::HashMap<String, usize> = groups
            .iter()
            .enumerate()
            .map(|(i, g)| (g.id.clone(), i))
            .collect();
        for member in school.rows("StudentMembers") {
            let (group, pupil) = (text(member, "GroupId"), text(member, "StudentId"));
            if let (Some(&g), Some(&p)) = (group_index.get(&group), pupil_index.get(&pupil)) {
                groups[g].members.push(p);
                pupils[p].groups.push(group);
            }
        }
        let staff = school
            .rows("Staff")
            .iter()
            .map(|row| StaffMember {
                id: text(row, "Id"),
                code: text(row, "StaffCode"),
                title: text(row, "Title"),
                forename: text(row, "Forename"),
                surname: text(row, "Surname"),
                display_name: text(row, "DisplayName"),
                teacher: flag(row, "IsTeacher"),
            })
            .collect();
        let contacts = school
            .rows("Contacts")
            .iter()
            .map(|row| Contact {
                id: text(row, "Id"),
                forename: text(row, "Forename"),
                surname: text(row, "Surname"),
            })
            .collect();
        Self {
            pupils,
            staff,
            contacts,
            groups,
        }
    }

    pub fn teaching_groups(&self) -> impl Iterator<Item = &Group> {
        self.groups.iter().filter(|g| g.kind == "TeachingGrp")
    }
}
