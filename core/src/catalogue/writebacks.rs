//! The catalogue's write-backs (partner requests queued for the school's agent) and named
//! queries (`/api/v1/RunQuery/?id=...`).

use serde::Deserialize;

use super::{CatalogueError, PersonKind};
use crate::scope::EndpointScope;

/// A write-back endpoint.
#[derive(Debug)]
pub struct Writeback {
    /// rollcall's name of the write-back, the kind of the tasks it queues.
    pub id: String,
    /// The XoD reference ids it serves.
    pub reference: Vec<String>,
    /// The full path, `{estab}` where the school is named in it.
    pub path: String,
    pub scope: EndpointScope,
    pub scopes_text: String,
    pub body: WritebackBody,
    pub answer: WritebackAnswer,
    pub summary: String,
}

/// How a write-back's body is checked before it is queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WritebackBody {
    /// `Marks` of one date, for pupils and mark codes the school has.
    Attendance,
    /// `Conducts` with their `Participants`, `Staff` and `MediaFiles`.
    Conduct,
    /// A class's `Seats`: which pupil sits at which row and column.
    #[serde(rename = "seatingplan")]
    SeatingPlan,
    /// `Detentions`: a pupil, when and where, set by a member of staff.
    Detention,
}

/// Where a checked write-back's payload names a person: the field of each record of a list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PersonField {
    pub list: &'static str,
    pub field: &'static str,
    pub kind: PersonKind,
}

const fn person(list: &'static str, field: &'static str, kind: PersonKind) -> PersonField {
    PersonField { list, field, kind }
}

const ATTENDANCE_PEOPLE: &[PersonField] = &[person("Marks", "StudentId", PersonKind::Student)];
const CONDUCT_PEOPLE: &[PersonField] = &[
    person("Conducts", "RecordedById", PersonKind::Staff),
    person("Participants", "StudentId", PersonKind::Student),
    person("Staff", "StaffId", PersonKind::Staff),
];
const SEATING_PLAN_PEOPLE: &[PersonField] = &[person("Seats", "StudentId", PersonKind::Student)];
const DETENTION_PEOPLE: &[PersonField] = &[
    person("Detentions", "StudentId", PersonKind::Student),
    person("Detentions", "SetById", PersonKind::Staff),
    person("Detentions", "SupervisorId", PersonKind::Staff),
];

impl WritebackBody {
    /// Every field of the checked payload (canonical names) that names a person.
    pub fn person_fields(self) -> &'static [PersonField] {
        match self {
            Self::Attendance => ATTENDANCE_PEOPLE,
            Self::Conduct => CONDUCT_PEOPLE,
            Self::SeatingPlan => SEATING_PLAN_PEOPLE,
            Self::Detention => DETENTION_PEOPLE,
        }
    }
}

/// What the partner is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WritebackAnswer {
    /// Waits a bounded time for the agent's outcome.
    Wait,
    /// A tracking id at once.
    Tracking,
}

/// A query run by name.
#[derive(Debug)]
pub struct NamedQuery {
    pub id: String,
    pub path: String,
    pub scope: EndpointScope,
    pub scopes_text: String,
    pub options: Vec<String>,
    pub parameters: Vec<String>,
    pub summary: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawWriteback {
    id: String,
    reference: Vec<String>,
    path: String,
    scopes: String,
    body: WritebackBody,
    answer: WritebackAnswer,
    summary: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawQuery {
    id: String,
    path: String,
    scopes: String,
    #[serde(default)]
    options: Vec<String>,
    #[serde(default)]
    parameters: Vec<String>,
    summary: String,
}

pub(crate) fn build_writeback(raw: RawWriteback) -> Result<Writeback, CatalogueError> {
    if !raw.path.starts_with("/api/v1/") {
        return Err(CatalogueError::Invalid(format!(
            "write-back {} has path {}, outside /api/v1/",
            raw.id, raw.path
        )));
    }
    Ok(Writeback {
        scope: EndpointScope::parse(&raw.scopes)?,
        scopes_text: raw.scopes,
        id: raw.id,
        reference: raw.reference,
        path: raw.path,
        body: raw.body,
        answer: raw.answer,
        summary: raw.summary,
    })
}

pub(crate) fn build_query(raw: RawQuery) -> Result<NamedQuery, CatalogueError> {
    Ok(NamedQuery {
        scope: EndpointScope::parse(&raw.scopes)?,
        scopes_text: raw.scopes,
        id: raw.id,
        path: raw.path,
        options: raw.options,
        parameters: raw.parameters,
        summary: raw.summary,
    })
}
