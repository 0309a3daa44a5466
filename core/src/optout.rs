//! Per-person opt-outs (XoD's GDPR data controls): a school names pupils, staff and contacts
//! whose data one partner must not receive. Every row that refers to one of them, in any result
//! set, is left out of that partner's answers.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::dataset::Row;
use crate::model::{Estab, PartnerId};
use crate::timestamp::Timestamp;

/// The fields through which a row refers to a person; a read with opt-outs needs them
/// decrypted (to hide rows, never to show them).
pub const PERSON_FIELDS: [&str; 6] = [
    "Id",
    "StudentId",
    "StaffId",
    "ContactId",
    "PersonId",
    "PersonType",
];

/// The people one partner must not see at one school.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OptOuts {
    pub students: BTreeSet<String>,
    pub staff: BTreeSet<String>,
    pub contacts: BTreeSet<String>,
}

/// A school's opt-outs for one partner, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OptOutRecord {
    pub estab: Estab,
    pub partner: PartnerId,
    pub people: OptOuts,
    pub updated_at: Timestamp,
}

fn text(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

impl OptOuts {
    pub fn is_empty(&self) -> bool {
        self.students.is_empty() && self.staff.is_empty() && self.contacts.is_empty()
    }

    /// Whether `row` of result set `result_set` refers to someone opted out.
    pub fn hides(&self, result_set: &str, row: &Row) -> bool {
        if self.is_empty() {
            return false;
        }
        let holds = |field: &str, people: &BTreeSet<String>| {
            text(row.get(field)).is_some_and(|id| people.contains(&id))
        };
        let own_id = match result_set {
            "Students" => holds("Id", &self.students),
            "Staff" => holds("Id", &self.staff),
            "Contacts" => holds("Id", &self.contacts),
            _ => false,
        };
        own_id
            || holds("StudentId", &self.students)
            || holds("StaffId", &self.staff)
            || holds("ContactId", &self.contacts)
            || self.hides_person(row)
    }

    /// `PersonId` read with its `PersonType`; without a known type, anyone of that id.
    fn hides_person(&self, row: &Row) -> bool {
        let Some(id) = text(row.get("PersonId")) else {
            return false;
        };
        let kind = text(row.get("PersonType"))
            .unwrap_or_default()
            .to_ascii_lowercase();
        if kind.starts_with("stud") || kind.starts_with("pupil") {
            self.students.contains(&id)
        } else if kind.starts_with("staff") {
            self.staff.contains(&id)
        } else if kind.starts_with("contact") {
            self.contacts.contains(&id)
        } else {
            self.students.contains(&id) || self.staff.contains(&id) || self.contacts.contains(&id)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn row(value: Value) -> Row {
        serde_json::from_value(value).unwrap()
    }

    fn opt_outs() -> OptOuts {
        OptOuts {
            students: ["7".to_owned()].into(),
            staff: ["12".to_owned()].into(),
            contacts: BTreeSet::new(),
        }
    }

    #[test]
    fn rows_about_an_opted_out_person_are_hidden_in_any_set() {
        let o = opt_outs();
        assert!(o.hides("Students", &row(json!({"Id": "7"}))));
        assert!(
            !o.hides("Staff", &row(json!({"Id": "7"}))),
            "staff 7 is someone else"
        );
        assert!(o.hides("StudentMembers", &row(json!({"Id": "x", "StudentId": 7}))));
        assert!(o.hides("LessonStaff", &row(json!({"StaffId": "12"}))));
        assert!(o.hides(
            "Photos",
            &row(json!({"PersonId": "7", "PersonType": "Student"}))
        ));
        assert!(!o.hides(
            "Photos",
            &row(json!({"PersonId": "7", "PersonType": "Staff"}))
        ));
        assert!(o.hides("PersonComms", &row(json!({"PersonId": "12"}))));
        assert!(!o.hides("Students", &row(json!({"Id": "8"}))));
        assert!(!OptOuts::default().hides("Students", &row(json!({"Id": "7"}))));
    }
}
