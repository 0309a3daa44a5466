//! Who a row is about, and who else it names: every field of a result set that refers to a
//! pupil, a member of staff or a contact is declared in the catalogue, so an opt-out reaches
//! every row and column about that person, and a row's release can depend on whom it is about.
//!
//! In `catalogue.toml`, per result set:
//! - `people = { StudentId = "student", PersonId = "person" }`: the row's subjects. A row whose
//!   subject is opted out is never answered. `person` reads the kind from the row's
//!   `PersonType`.
//! - `mentions = { PrimaryStaffId = "staff", StudentIds = "student list",
//!   Staff = "staff list of StaffCode", RecordedBy = "staff name" }`: other references. An
//!   opted-out person's id is blanked (`null`) where it is the whole value and removed from a
//!   list; `of <Field>` names the field of the person's own record (Staff, Students, Contacts)
//!   the value holds instead of the id; a `name` is free text that cannot be matched, so it is
//!   blanked in every row while anyone of that kind is opted out.
//! - `not_people = ["Head"]`: fields whose name looks like a reference but is not one (the
//!   catalogue test asks every such field to be declared one way or the other).
//! - `row_scope = { field = "PersonType", Student = "Student / StudentLite", ... }`: the scope a
//!   row needs, by the kind of person it is about; a row of a kind not listed is never answered.

use std::collections::BTreeMap;

use super::CatalogueError;
use crate::scope::FieldScope;

/// The kinds of person a school can opt out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PersonKind {
    Student,
    Staff,
    Contact,
}

impl PersonKind {
    pub const ALL: [PersonKind; 3] = [PersonKind::Student, PersonKind::Staff, PersonKind::Contact];

    fn parse(text: &str) -> Option<Self> {
        match text {
            "student" => Some(Self::Student),
            "staff" => Some(Self::Staff),
            "contact" => Some(Self::Contact),
            _ => None,
        }
    }

    /// The kind a `PersonType` value names (`Student`, `Pupil`, `Staff`, `Contact`, `Parent`),
    /// without regard to case; `None` for any other value.
    pub fn of_person_type(value: &str) -> Option<Self> {
        let value = value.trim().to_ascii_lowercase();
        if value.starts_with("stud") || value.starts_with("pupil") {
            Some(Self::Student)
        } else if value.starts_with("staff") {
            Some(Self::Staff)
        } else if value.starts_with("contact") || value.starts_with("parent") {
            Some(Self::Contact)
        } else {
            None
        }
    }

    /// The stored result set holding this kind's own records.
    pub fn own_set(self) -> &'static str {
        match self {
            Self::Student => "Students",
            Self::Staff => "Staff",
            Self::Contact => "Contacts",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Student => "pupil",
            Self::Staff => "member of staff",
            Self::Contact => "contact",
        }
    }
}

/// Whom a subject field refers to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reference {
    Kind(PersonKind),
    /// A `PersonId` whose kind is in the row's `type_field`.
    Typed {
        type_field: String,
    },
}

/// A field whose value is the id of the person the row is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject {
    pub field: String,
    pub reference: Reference,
}

impl Subject {
    /// The one kind of person the field holds, where it is not typed by the row.
    pub fn kind(&self) -> Option<PersonKind> {
        match self.reference {
            Reference::Kind(kind) => Some(kind),
            Reference::Typed { .. } => None,
        }
    }
}

/// How a mention holds its person.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// The whole value is one reference.
    One,
    /// A comma-separated list of references.
    List,
    /// Free text (a name): cannot be matched to an id.
    Name,
    /// How many people of the kind the row counts (`NumStudents`): it would count the
    /// opted-out too, and which of them it counts cannot be told.
    Count,
}

/// A field that names a person the row is not about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mention {
    pub field: String,
    pub kind: PersonKind,
    pub shape: Shape,
    /// The field of the person's own record the value holds (`StaffCode`), `None` for the id.
    pub alias: Option<String>,
}

/// The scope a row needs, by the kind of person its `field` names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowScope {
    pub field: String,
    pub cases: Vec<(PersonKind, FieldScope)>,
}

/// Everything a result set declares about people.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct People {
    pub subjects: Vec<Subject>,
    pub mentions: Vec<Mention>,
    pub not_people: Vec<String>,
    pub row_scope: Option<RowScope>,
    /// A set whose rows, linked to this set's `Id`, name the people a row is about (an
    /// incident's pupils): a row whose people are all opted out is about them alone.
    pub about_through: Option<String>,
}

impl People {
    /// Whether `field` is declared as a subject, a mention or not a person.
    pub fn declares(&self, field: &str) -> bool {
        self.subjects.iter().any(|s| s.field == field)
            || self.mentions.iter().any(|m| m.field == field)
            || self.not_people.iter().any(|n| n == field)
    }
}

#[derive(Default)]
pub(crate) struct RawPeople {
    pub people: BTreeMap<String, String>,
    pub mentions: BTreeMap<String, String>,
    pub not_people: Vec<String>,
    pub row_scope: Option<BTreeMap<String, String>>,
    pub about_through: Option<String>,
}

pub(crate) fn build(
    set: &str,
    raw: RawPeople,
    has_field: impl Fn(&str) -> bool,
) -> Result<People, CatalogueError> {
    let invalid = |what: String| CatalogueError::Invalid(format!("result set {set}: {what}"));
    let known = |field: &str| {
        if has_field(field) {
            Ok(())
        } else {
            Err(invalid(format!("declares {field}, which it does not list")))
        }
    };
    let mut subjects = Vec::new();
    for (field, kind) in raw.people {
        known(&field)?;
        let reference = if kind == "person" {
            if !has_field("PersonType") {
                return Err(invalid(format!(
                    "{field} is a `person`, but there is no PersonType to say which kind"
                )));
            }
            Reference::Typed {
                type_field: "PersonType".into(),
            }
        } else {
            Reference::Kind(PersonKind::parse(&kind).ok_or_else(|| {
                invalid(format!(
                    "{field}: `{kind}` is not student, staff, contact or person"
                ))
            })?)
        };
        subjects.push(Subject { field, reference });
    }
    let mut mentions = Vec::new();
    for (field, text) in raw.mentions {
        known(&field)?;
        mentions.push(mention(field, &text).map_err(&invalid)?);
    }
    for field in &raw.not_people {
        known(field)?;
    }
    let row_scope = match raw.row_scope {
        None => None,
        Some(mut table) => {
            let field = table
                .remove("field")
                .ok_or_else(|| invalid("row_scope needs a `field`".into()))?;
            known(&field)?;
            let mut cases = Vec::new();
            for (kind, expr) in table {
                let kind = PersonKind::parse(&kind.to_ascii_lowercase())
                    .ok_or_else(|| invalid(format!("row_scope: `{kind}` is not a person kind")))?;
                cases.push((kind, FieldScope::parse(&expr)?));
            }
            Some(RowScope { field, cases })
        }
    };
    Ok(People {
        subjects,
        mentions,
        not_people: raw.not_people,
        row_scope,
        about_through: raw.about_through,
    })
}

/// Reads `staff`, `student list`, `staff list of StaffCode`, `staff name`.
fn mention(field: String, text: &str) -> Result<Mention, String> {
    let (head, alias) = match text.split_once(" of ") {
        Some((head, alias)) => (head, Some(alias.trim().to_owned())),
        None => (text, None),
    };
    let mut words = head.split_whitespace();
    let kind = words.next().and_then(PersonKind::parse).ok_or_else(|| {
        format!("{field}: `{text}` does not start with student, staff or contact")
    })?;
    let shape = match words.next() {
        None => Shape::One,
        Some("list") => Shape::List,
        Some("name") => Shape::Name,
        Some("count") => Shape::Count,
        Some(other) => return Err(format!("{field}: `{other}` is not list, name or count")),
    };
    if matches!(shape, Shape::Name | Shape::Count) && alias.is_some() {
        return Err(format!("{field}: a name or count has no `of` field"));
    }
    Ok(Mention {
        field,
        kind,
        shape,
        alias,
    })
}
