//! A subject access search: which stored rows are about one person or name them, for the
//! school's own export of everything rollcall holds about someone. This is the school reading
//! its own data (the controller), so no consent or opt-out applies; what a *partner* may see
//! is the read plan's alone.
//!
//! A row refers to the person where the catalogue declares a field of it a reference to
//! their kind ([`crate::catalogue::People`]): a subject (`StudentId`, or `PersonId` of the
//! row's `PersonType`), a mention by id or in a list, a mention by another field of the
//! person's own record (a staff code), or, for rows about people through another set (an
//! incident through its pupils' rows), a link to a row of that set about them. Mentions by
//! name are free text and are not matched.

use std::collections::{BTreeMap, BTreeSet};

use crate::catalogue::{ID, PersonKind, Reference, ResultSet, Shape};
use crate::dataset::Row;
use crate::plan::{list, text};

/// What is searched for: one person, with what their own record and the sets that say whom
/// other rows are about tell of them.
#[derive(Debug, Clone)]
pub struct SubjectSearch {
    pub kind: PersonKind,
    pub id: String,
    /// Fields of the person's own record, as other sets may name them (`StaffCode`).
    own_fields: BTreeMap<String, String>,
    /// Per set with `about_through`, the ids of its rows linked to rows about the person.
    through: BTreeMap<String, BTreeSet<String>>,
}

impl SubjectSearch {
    pub fn new(kind: PersonKind, id: &str) -> Self {
        Self {
            kind,
            id: id.trim().to_owned(),
            own_fields: BTreeMap::new(),
            through: BTreeMap::new(),
        }
    }

    /// Learns the person's own record from the rows of their kind's own set (`Students`,
    /// `Staff`, `Contacts`), so mentions by another of its fields can be matched.
    pub fn learn_own_record(&mut self, rows: &[Row]) {
        let own = rows
            .iter()
            .find(|row| text(row.get(ID)).is_some_and(|id| id.trim() == self.id));
        if let Some(row) = own {
            self.own_fields = row
                .iter()
                .filter_map(|(field, value)| Some((field.clone(), text(Some(value))?.into_owned())))
                .filter(|(_, value)| !value.trim().is_empty())
                .collect();
        }
    }

    /// Learns, from the rows of `through_set` (a set other sets' rows are about people
    /// through, such as `StudentConducts`), which rows of `about` (`Conducts`) are about the
    /// person: those a row of `through_set` about them links to.
    pub fn learn_through(&mut self, about: &ResultSet, through_set: &ResultSet, rows: &[Row]) {
        let Some(link) = through_set.link.as_deref() else {
            return;
        };
        let linked: BTreeSet<String> = rows
            .iter()
            .filter(|row| self.is_subject_of(through_set, row))
            .filter_map(|row| text(row.get(link)).map(|v| v.trim().to_owned()))
            .collect();
        self.through
            .entry(about.name.clone())
            .or_default()
            .extend(linked);
    }

    /// Whether `row` of `rs` is about the person or names them.
    pub fn refers_to(&self, rs: &ResultSet, row: &Row) -> bool {
        self.excerpt(rs, row).is_some()
    }

    /// What of `row` an export about the person holds: all of a row about them (their own
    /// record, a row whose subject they are, an incident they were part of); of a row about
    /// someone else that only names them (a sibling's record listing them, a group listing its
    /// pupils), just its `Id` and the fields naming them, holding them alone; `None` for a row
    /// that does neither.
    pub fn excerpt(&self, rs: &ResultSet, row: &Row) -> Option<Row> {
        if self.is_subject_of(rs, row) || self.is_through(rs, row) {
            return Some(row.clone());
        }
        let naming = self.naming(rs, row);
        if naming.is_empty() {
            return None;
        }
        let mut kept = Row::new();
        if let Some(id) = row.get(ID) {
            kept.insert(ID.to_owned(), id.clone());
        }
        for (field, value) in naming {
            kept.insert(
                field.to_owned(),
                serde_json::Value::String(value.to_owned()),
            );
        }
        Some(kept)
    }

    /// The value by which a mention of the person's kind names them: their id, or the field
    /// of their own record it holds (a staff code); `None` for another kind, or a field their
    /// record does not give.
    fn mentioned_as(&self, mention: &crate::catalogue::Mention) -> Option<&str> {
        if mention.kind != self.kind {
            return None;
        }
        match &mention.alias {
            None => Some(self.id.as_str()),
            Some(field) => self.own_fields.get(field).map(|v| v.trim()),
        }
    }

    fn is_subject_of(&self, rs: &ResultSet, row: &Row) -> bool {
        rs.people.subjects.iter().any(|subject| {
            let same_id = text(row.get(&subject.field)).is_some_and(|v| v.trim() == self.id);
            same_id
                && match &subject.reference {
                    Reference::Kind(kind) => *kind == self.kind,
                    // A person of no known kind may be anyone of that id.
                    Reference::Typed { type_field } => text(row.get(type_field))
                        .and_then(|t| PersonKind::of_person_type(&t))
                        .is_none_or(|kind| kind == self.kind),
                }
        })
    }

    /// The fields of `row` that name the person, each with the value naming them.
    fn naming<'r>(&'r self, rs: &'r ResultSet, row: &Row) -> Vec<(&'r str, &'r str)> {
        (rs.people.mentions.iter())
            .filter_map(|mention| {
                let wanted = self.mentioned_as(mention)?;
                let value = text(row.get(&mention.field))?;
                let names = match mention.shape {
                    Shape::One => value.trim() == wanted,
                    Shape::List => list(&value).any(|item| item == wanted),
                    Shape::Name | Shape::Count => false,
                };
                names.then_some((mention.field.as_str(), wanted))
            })
            .collect()
    }

    fn is_through(&self, rs: &ResultSet, row: &Row) -> bool {
        self.through
            .get(&rs.name)
            .is_some_and(|ids| text(row.get(ID)).is_some_and(|id| ids.contains(id.trim())))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::catalogue::Catalogue;

    fn row(value: serde_json::Value) -> Row {
        serde_json::from_value(value).unwrap()
    }

    fn set(name: &str) -> &'static ResultSet {
        Catalogue::get().stored_set(name).unwrap()
    }

    #[test]
    fn a_pupil_is_found_as_subject_in_lists_and_through_links() {
        let search = |id| {
            let mut s = SubjectSearch::new(PersonKind::Student, id);
            s.learn_through(
                set("Conducts"),
                set("StudentConducts"),
                &[row(
                    json!({"Id": "L1", "ConductId": "C1", "StudentId": "7"}),
                )],
            );
            s
        };
        let students = set("Students");
        let sibling = row(json!({"Id": "8", "StudentSiblingIds": "6, 7"}));
        assert!(search("7").refers_to(students, &row(json!({"Id": " 7 "}))));
        assert!(search("7").refers_to(students, &sibling));
        // A sibling's record that lists them is theirs only as far as it names them.
        let named = search("7").excerpt(students, &sibling).unwrap();
        assert_eq!(
            serde_json::Value::Object(named),
            json!({"Id": "8", "StudentSiblingIds": "7"})
        );
        let own = row(json!({"Id": "7", "Forename": "Ann", "StudentSiblingIds": "8"}));
        assert_eq!(search("7").excerpt(students, &own), Some(own.clone()));
        assert!(!search("6 ").refers_to(students, &row(json!({"Id": "7"}))));
        let incident = row(json!({"Id": "C1"}));
        assert!(search("7").refers_to(set("Conducts"), &incident));
        assert!(!search("8").refers_to(set("Conducts"), &incident));
        // A contact of the same id is someone else.
        let contacts = set("Contacts");
        assert!(!search("7").refers_to(contacts, &row(json!({"Id": "7"}))));
    }

    #[test]
    fn staff_are_found_by_a_field_of_their_own_record() {
        let mut search = SubjectSearch::new(PersonKind::Staff, "S1");
        search.learn_own_record(&[row(json!({"Id": "S1", "StaffCode": "ABC"}))]);
        let mentioning = Catalogue::get()
            .stored_sets()
            .flat_map(|rs| rs.people.mentions.iter().map(move |m| (rs, m)))
            .find(|(_, m)| m.kind == PersonKind::Staff && m.alias.as_deref() == Some("StaffCode"))
            .expect("the catalogue names staff by code somewhere");
        let (rs, mention) = mentioning;
        let value = match mention.shape {
            Shape::List => "XYZ,ABC",
            _ => "ABC",
        };
        let named = row(json!({ mention.field.clone(): value }));
        assert!(search.refers_to(rs, &named));
        let other = row(json!({ mention.field.clone(): "XYZ" }));
        assert!(!search.refers_to(rs, &other));
    }
}
