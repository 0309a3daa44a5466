//! The catalogue: which partner endpoints rollcall serves, the result sets behind them, every
//! field and the scope expression that releases it. The data lives in `core/catalogue.toml`,
//! compiled in, and is checked once when first used.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::LazyLock;

use serde::{Deserialize, Serialize};

mod endpoints;
mod people;
mod writebacks;

pub use people::{Mention, People, PersonKind, Reference, RowScope, Shape, Subject};
pub use writebacks::{NamedQuery, PersonField, Writeback, WritebackAnswer, WritebackBody};

use crate::scope::{EndpointScope, FieldScope, ScopeExprError, ScopeSet};
use crate::timestamp::Duration;

/// Fields every stored row carries that rollcall computes itself at ingest.
pub const ROW_HASH: &str = "RowHash";
pub const LAST_UPDATED: &str = "LastUpdated";
pub const ID: &str = "Id";

/// The catalogue file, compiled into every function.
const CATALOGUE_TOML: &str = include_str!("../../catalogue.toml");

static CATALOGUE: LazyLock<Catalogue> = LazyLock::new(|| {
    Catalogue::from_toml(CATALOGUE_TOML).expect("core/catalogue.toml is valid (checked by tests)")
});

/// Why the catalogue file is unusable. Only a developer editing the file can see one.
#[derive(Debug, thiserror::Error)]
pub enum CatalogueError {
    #[error("catalogue is not valid TOML: {0}")]
    Toml(#[from] toml::de::Error),
    #[error(transparent)]
    Scope(#[from] ScopeExprError),
    #[error("catalogue: {0}")]
    Invalid(String),
}

#[derive(Debug)]
pub struct Catalogue {
    scopes: BTreeSet<String>,
    scope_info: Vec<ScopeInfo>,
    endpoints: Vec<Endpoint>,
    result_sets: BTreeMap<String, ResultSet>,
    writebacks: Vec<Writeback>,
    queries: Vec<NamedQuery>,
}

/// A scope as `/api/v1/Scopes` describes it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ScopeInfo {
    pub name: String,
    /// Who the scope is about (`Students`, `Staff`, `School`, `Writeback`...).
    pub category: String,
    pub description: String,
    /// Special-category data (UK GDPR Article 9: ethnicity, religion, health...) or as
    /// sensitive (photographs, SEN, family circumstances): a school grants it only with an
    /// explicit confirmation. From the catalogue's `special` list.
    pub special: bool,
}

/// A partner endpoint under `/api/v1/School/{estab}/`.
#[derive(Debug)]
pub struct Endpoint {
    pub id: String,
    /// Other reference ids served by the same path (the assessment result variants).
    pub aliases: Vec<String>,
    /// The path segment, in the case XoD documents it (`Students`).
    pub path: String,
    pub scope: EndpointScope,
    /// Whether `/{Endpoint}/{id}` is accepted; the id feeds the `id` filter.
    pub by_id: bool,
    /// rollcall's one-line description, for `/api/v1/Queries` and the OpenAPI document.
    pub summary: String,
    pub view: View,
    /// The result sets answered, the primary (paginated) one first.
    pub sets: Vec<AnsweredSet>,
    /// Every option the endpoint accepts and what it does.
    pub options: BTreeMap<String, OptionEffect>,
    pub filters: Vec<Filter>,
    /// Filters of which at least one must be given.
    pub required_any: Vec<String>,
    /// Why the endpoint's scopes are stricter than the reference's, where they are.
    pub corrected: Option<String>,
    /// The order XoD answers the sets in, where it is not `sets`' (whose first is the
    /// paginated one): TimetableStructure answers `TTDays` first but pages `TTPeriods`.
    pub answer_order: Vec<String>,
}

impl Endpoint {
    /// Where a result set stands in the answer: by `answer_order`, then as in `sets`; any
    /// other key (a `_deleted` set) after them all.
    pub fn answer_position(&self, name: &str) -> usize {
        if let Some(at) = self.answer_order.iter().position(|n| n == name) {
            return at;
        }
        self.sets
            .iter()
            .position(|s| s.name == name)
            .map_or(usize::MAX, |at| self.answer_order.len() + at)
    }
}

/// Where an endpoint's rows come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    /// The stored result sets, filtered.
    Stored,
    /// How many rows the school shares per area.
    Counts,
    /// Whether each stored result set is current.
    Health,
    /// A member of staff's lessons, from `Lessons` and `LessonStaff`.
    TimetableForStaff,
    /// A pupil's lessons, from `Lessons` and `StudentMembers`.
    TimetableForStudent,
}

/// A result set as an endpoint answers it.
#[derive(Debug)]
pub struct AnsweredSet {
    /// The name on the wire.
    pub name: String,
    /// The stored (or computed) result set behind it.
    pub stored: String,
    /// The option that adds it; `None` when it is always answered.
    pub option: Option<String>,
    /// Fields of the stored set this endpoint does not answer.
    pub omit: BTreeSet<String>,
}

/// What an option does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OptionEffect {
    /// Adds one or more result sets (named by the sets that carry the option).
    Sets,
    /// Adds these columns to the primary result set; without the option they are left out.
    Columns(BTreeSet<String>),
    /// Rows matching the condition are left out unless the option is given.
    Reveal(Condition),
    /// Only rows matching the condition are answered.
    Keep(Condition),
    /// Rows matching the condition are left out.
    Drop(Condition),
    /// Accepted for compatibility; changes nothing rollcall answers.
    Accepted,
}

/// A test of one field of a row, for options: `Field=value`, `Field<today`, `Field>today`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition {
    pub field: String,
    pub test: Test,
    /// Where the condition is about the person a row refers to rather than the row itself
    /// (a pupil's exclusions left out when the pupil has left): the row's field holding the
    /// person, whose own record (`Students`...) `field` is read from.
    pub of: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Test {
    Equals(String),
    BeforeToday,
    AfterToday,
}

impl std::fmt::Display for Condition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.test {
            Test::Equals(value) => write!(f, "{} is {value}", self.field)?,
            Test::BeforeToday => write!(f, "{} is before today", self.field)?,
            Test::AfterToday => write!(f, "{} is after today", self.field)?,
        }
        match &self.of {
            Some(of) => write!(f, " for the person in {of}"),
            None => Ok(()),
        }
    }
}

/// A query parameter that narrows the rows of one answered result set.
#[derive(Debug, Clone)]
pub struct Filter {
    /// The parameter name (matched without regard to case); `None` for a fixed filter.
    pub name: Option<String>,
    /// The fields compared; a row matches when any of them does (for `Pairs`, the first and
    /// second field of each pair).
    pub fields: Vec<String>,
    pub op: FilterOp,
    /// The wire name of the answered set it narrows.
    pub set: String,
    pub required: bool,
    /// A value always applied (`fixed = "today"` for the ...ForToday views).
    pub fixed: Option<String>,
    /// The value used when the parameter is absent (`today-7`).
    pub default: Option<String>,
    /// The filter's values are first mapped through another stored result set.
    pub via: Option<Via>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FilterOp {
    /// Equal, without regard to case.
    Eq,
    /// Equal to one of a comma-separated list.
    In,
    /// Starts with, without regard to case.
    Prefix,
    /// The date part is the given date.
    On,
    /// The date part is on or after the given date.
    From,
    /// The date part is on or before the given date.
    To,
    /// `A|B,C|` pairs: the field equals A and, where B is given, the second field equals B.
    Pairs,
}

/// Maps filter values through a stored result set: rows whose `matches` field holds a value
/// give their `take` field; `through` maps the values first.
#[derive(Debug, Clone)]
pub struct Via {
    pub set: String,
    pub matches: String,
    pub take: String,
    pub through: Option<Box<Via>>,
}

impl Endpoint {
    /// The answered sets for a set of options, the primary one first.
    pub fn answered(&self, options: &BTreeSet<String>) -> impl Iterator<Item = &AnsweredSet> {
        self.sets
            .iter()
            .filter(|s| s.option.as_ref().is_none_or(|o| options.contains(o)))
    }

    pub fn primary(&self) -> &AnsweredSet {
        &self.sets[0]
    }

    /// Every id the endpoint is known by in the reference.
    pub fn ids(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.id.as_str()).chain(self.aliases.iter().map(String::as_str))
    }

    /// The columns of the primary set that options add, and which option adds each.
    pub fn option_columns(&self) -> impl Iterator<Item = (&str, &str)> {
        self.options
            .iter()
            .flat_map(|(option, effect)| match effect {
                OptionEffect::Columns(columns) => columns
                    .iter()
                    .map(|c| (c.as_str(), option.as_str()))
                    .collect::<Vec<_>>(),
                _ => vec![],
            })
    }

    /// The distinct parameter names of the endpoint's filters, in catalogue order.
    pub fn parameters(&self) -> Vec<&str> {
        let mut names: Vec<&str> = Vec::new();
        for name in self.filters.iter().filter_map(|f| f.name.as_deref()) {
            if !names.iter().any(|n| n.eq_ignore_ascii_case(name)) {
                names.push(name);
            }
        }
        names
    }
}

/// How long an area's data is current after the school's agent confirmed it. Areas also
/// group calls for usage reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Area {
    /// School, groups, students, staff, contacts and the like: uploaded proactively, daily.
    Core,
    Attendance,
    Conduct,
    Assessment,
    Timetable,
    /// SEN, medical, exclusions, meals, agencies, funding.
    Pastoral,
    /// Staff absence and contracts.
    Staff,
    Documents,
}

impl Area {
    /// How long an upload of this area counts as fresh (its `valid_until`; the 30 days to
    /// disposal run from there). The same 24 hours for every area for now: the agreements'
    /// shorter validities (attendance 30 minutes, photos 7 days) come with the on-demand
    /// cache policy of DESIGN.md, which also decides when a refresh is demanded.
    pub fn validity(self) -> Duration {
        Duration::hours(24)
    }

    pub fn name(self) -> &'static str {
        match self {
            Area::Core => "Core",
            Area::Attendance => "Attendance",
            Area::Conduct => "Conduct",
            Area::Assessment => "Assessment",
            Area::Timetable => "Timetable",
            Area::Pastoral => "Pastoral",
            Area::Staff => "Staff",
            Area::Documents => "Documents",
        }
    }
}

#[derive(Debug)]
pub struct ResultSet {
    pub name: String,
    pub area: Area,
    /// Computed by rollcall at read time from stored sets; never uploaded or stored.
    pub computed: bool,
    /// For a result set answered beside another (members beside groups): the field that holds
    /// the id of the primary row it belongs to.
    pub link: Option<String>,
    pub fields: Vec<Field>,
    /// Stored fields grouped by scope expression; each group is stored and encrypted on its own.
    pub groups: Vec<ScopeGroup>,
    /// Fields the reference lists without a scope, given one here.
    pub assumed: BTreeSet<String>,
    /// Fields rollcall serves that the reference's table for this result set omits.
    pub extra: BTreeSet<String>,
    /// Fields whose scope rollcall deliberately sets otherwise than the reference (where the
    /// reference's scope is one the endpoint never grants).
    pub corrected: BTreeSet<String>,
    /// The fields that refer to people, and how a row's release depends on whom it is about.
    pub people: People,
    /// Former names agents may still upload this set under, each answered with a warning.
    pub upload_aliases: Vec<String>,
}

#[derive(Debug)]
pub struct Field {
    pub name: String,
    pub scope: FieldScope,
    /// The position in [`ResultSet::groups`] of the group that stores it; `None` for computed
    /// fields, which live in the row index.
    pub group: Option<usize>,
}

/// The fields of a result set that share one scope expression.
#[derive(Debug)]
pub struct ScopeGroup {
    pub id: String,
    pub scope: FieldScope,
    pub fields: Vec<String>,
}

impl Field {
    /// Whether rollcall computes the field (and keeps it in the row index) instead of storing
    /// the agent's value.
    pub fn is_computed(&self) -> bool {
        is_computed_field(&self.name)
    }
}

pub fn is_computed_field(name: &str) -> bool {
    name == ROW_HASH || name == LAST_UPDATED
}

impl Catalogue {
    /// The catalogue compiled into this build.
    pub fn get() -> &'static Catalogue {
        &CATALOGUE
    }

    pub fn from_toml(text: &str) -> Result<Self, CatalogueError> {
        let raw: RawCatalogue = toml::from_str(text)?;
        let scope_info: Vec<ScopeInfo> = raw
            .scopes
            .into_iter()
            .map(|(name, category, description)| ScopeInfo {
                special: raw.special.contains(&name),
                name,
                category,
                description,
            })
            .collect();
        let scopes: BTreeSet<String> = scope_info.iter().map(|s| s.name.clone()).collect();
        if scopes.len() != scope_info.len() {
            return Err(CatalogueError::Invalid("a scope is listed twice".into()));
        }
        check_known(
            raw.special.iter().map(String::as_str),
            &scopes,
            "the special list",
        )?;
        let mut result_sets = BTreeMap::new();
        for (name, raw_rs) in raw.result_set {
            let rs = ResultSet::build(name.clone(), raw_rs, &scopes)?;
            result_sets.insert(name, rs);
        }
        check_aliases(&result_sets)?;
        let endpoints = raw
            .endpoint
            .into_iter()
            .map(|raw| endpoints::build(raw, &scopes, &result_sets))
            .collect::<Result<Vec<_>, _>>()?;
        let writebacks = raw
            .writeback
            .into_iter()
            .map(writebacks::build_writeback)
            .collect::<Result<Vec<_>, _>>()?;
        let queries = raw
            .query
            .into_iter()
            .map(writebacks::build_query)
            .collect::<Result<Vec<_>, _>>()?;
        for scope in writebacks
            .iter()
            .flat_map(|w| w.scope.scopes())
            .chain(queries.iter().flat_map(|q| q.scope.scopes()))
        {
            check_known(std::iter::once(scope), &scopes, "a write-back or query")?;
        }
        Ok(Self {
            scopes,
            scope_info,
            endpoints,
            result_sets,
            writebacks,
            queries,
        })
    }

    pub fn writebacks(&self) -> &[Writeback] {
        &self.writebacks
    }

    /// The write-back known by rollcall's id (`Writeback.Attendance`).
    pub fn writeback(&self, id: &str) -> Option<&Writeback> {
        self.writebacks.iter().find(|w| w.id == id)
    }

    pub fn queries(&self) -> &[NamedQuery] {
        &self.queries
    }

    pub fn query(&self, id: &str) -> Option<&NamedQuery> {
        self.queries.iter().find(|q| q.id.eq_ignore_ascii_case(id))
    }

    /// Every scope a school can grant.
    pub fn scopes(&self) -> &BTreeSet<String> {
        &self.scopes
    }

    /// Every scope with its category and description, in catalogue order.
    pub fn scope_info(&self) -> &[ScopeInfo] {
        &self.scope_info
    }

    /// The scope named `name`, as [`Catalogue::scope_info`] describes it.
    pub fn scope(&self, name: &str) -> Option<&ScopeInfo> {
        self.scope_info.iter().find(|s| s.name == name)
    }

    /// What granting `scope` releases, by result set (in name order): each field whose
    /// scope expression names it (alone, or with the other scopes that expression needs).
    pub fn fields_of_scope(&self, scope: &str) -> Vec<(&str, Vec<&str>)> {
        self.result_sets
            .values()
            .filter(|rs| !rs.computed)
            .filter_map(|rs| {
                let fields: Vec<&str> = rs
                    .fields
                    .iter()
                    .filter(|f| !is_computed_field(&f.name) && f.scope.scopes().any(|s| s == scope))
                    .map(|f| f.name.as_str())
                    .collect();
                (!fields.is_empty()).then_some((rs.name.as_str(), fields))
            })
            .collect()
    }

    pub fn endpoints(&self) -> &[Endpoint] {
        &self.endpoints
    }

    /// The endpoint whose path segment is `segment`, in any letter case.
    pub fn endpoint_by_path(&self, segment: &str) -> Option<&Endpoint> {
        self.endpoints
            .iter()
            .find(|e| e.path.eq_ignore_ascii_case(segment))
    }

    /// The endpoint known by a reference id (`school.students`), aliases included.
    pub fn endpoint_by_id(&self, id: &str) -> Option<&Endpoint> {
        self.endpoints.iter().find(|e| e.ids().any(|i| i == id))
    }

    pub fn result_set(&self, name: &str) -> Option<&ResultSet> {
        self.result_sets.get(name)
    }

    pub fn result_sets(&self) -> impl Iterator<Item = &ResultSet> {
        self.result_sets.values()
    }

    /// A result set agents upload and rollcall stores (not one computed at read time).
    pub fn stored_set(&self, name: &str) -> Option<&ResultSet> {
        self.result_set(name).filter(|rs| !rs.computed)
    }

    /// The stored set an agent names in an upload: by its name, or by a former name (then
    /// `true`, so the upload can warn).
    pub fn uploaded_set(&self, name: &str) -> Option<(&ResultSet, bool)> {
        if let Some(rs) = self.stored_set(name) {
            return Some((rs, false));
        }
        self.stored_sets()
            .find(|rs| rs.upload_aliases.iter().any(|alias| alias == name))
            .map(|rs| (rs, true))
    }

    pub fn stored_sets(&self) -> impl Iterator<Item = &ResultSet> {
        self.result_sets.values().filter(|rs| !rs.computed)
    }
}

impl ResultSet {
    fn build(
        name: String,
        raw: RawResultSet,
        scopes: &BTreeSet<String>,
    ) -> Result<Self, CatalogueError> {
        let mut fields: Vec<Field> = Vec::new();
        for (field_name, expr) in raw.fields {
            if fields
                .iter()
                .any(|f| f.name.eq_ignore_ascii_case(&field_name))
            {
                return Err(CatalogueError::Invalid(format!(
                    "result set {name} lists {field_name} twice (field names are matched without regard to case)"
                )));
            }
            let scope = FieldScope::parse(&expr)?;
            check_known(scope.scopes(), scopes, &name)?;
            fields.push(Field {
                name: field_name,
                scope,
                group: None,
            });
        }
        for required in [ID, ROW_HASH, LAST_UPDATED]
            .iter()
            .filter(|_| !raw.computed)
        {
            if !fields.iter().any(|f| f.name == *required) {
                return Err(CatalogueError::Invalid(format!(
                    "result set {name} has no {required} field"
                )));
            }
        }
        let assumed: BTreeSet<String> = raw.assumed.into_iter().collect();
        let extra: BTreeSet<String> = raw.extra.into_iter().collect();
        let corrected: BTreeSet<String> = raw.corrected.into_iter().collect();
        if let Some(unknown) = assumed
            .iter()
            .chain(&extra)
            .chain(&corrected)
            .find(|a| !fields.iter().any(|f| &f.name == *a))
        {
            return Err(CatalogueError::Invalid(format!(
                "result set {name} marks {unknown} as assumed or extra, but does not list it"
            )));
        }
        if let Some(link) = raw.link.as_deref()
            && !fields.iter().any(|f| f.name == link)
        {
            return Err(CatalogueError::Invalid(format!(
                "result set {name} links to its primary rows by {link}, which it does not list"
            )));
        }
        let people = people::build(
            &name,
            people::RawPeople {
                people: raw.people,
                mentions: raw.mentions,
                not_people: raw.not_people,
                row_scope: raw.row_scope,
                about_through: raw.about_through,
            },
            |f| fields.iter().any(|x| x.name == f),
        )?;
        let groups = if raw.computed {
            vec![]
        } else {
            group_fields(&fields)
        };
        for field in fields.iter_mut().filter(|f| !f.is_computed()) {
            field.group = groups.iter().position(|g| g.scope == field.scope);
        }
        Ok(Self {
            name,
            area: raw.area,
            computed: raw.computed,
            link: raw.link,
            fields,
            groups,
            assumed,
            extra,
            corrected,
            people,
            upload_aliases: raw.upload_aliases,
        })
    }

    pub fn field(&self, name: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.name == name)
    }

    /// The groups holding any of `fields`, each once, in catalogue order: what to decrypt to
    /// read just those fields.
    pub fn groups_holding(&self, fields: &[&str]) -> Vec<&ScopeGroup> {
        let positions: BTreeSet<usize> = fields
            .iter()
            .filter_map(|f| self.field(f).and_then(|f| f.group))
            .collect();
        positions.into_iter().map(|g| &self.groups[g]).collect()
    }

    /// The groups a consent lets a partner read: the only ones a read decrypts.
    pub fn visible_groups<'a>(
        &'a self,
        granted: &'a ScopeSet,
    ) -> impl Iterator<Item = &'a ScopeGroup> {
        self.groups
            .iter()
            .filter(move |g| g.scope.is_satisfied_by(granted))
    }

    /// The fields, in catalogue order, that a consent releases.
    pub fn visible_fields<'a>(&'a self, granted: &'a ScopeSet) -> impl Iterator<Item = &'a Field> {
        self.fields
            .iter()
            .filter(move |f| f.scope.is_satisfied_by(granted))
    }
}

fn group_fields(fields: &[Field]) -> Vec<ScopeGroup> {
    let mut groups: Vec<ScopeGroup> = Vec::new();
    for field in fields.iter().filter(|f| !f.is_computed()) {
        match groups.iter_mut().find(|g| g.scope == field.scope) {
            Some(group) => group.fields.push(field.name.clone()),
            None => groups.push(ScopeGroup {
                id: field.scope.group_id(),
                scope: field.scope.clone(),
                fields: vec![field.name.clone()],
            }),
        }
    }
    groups
}

/// A mention `of <Field>` names a field of the person's own record.
fn check_aliases(result_sets: &BTreeMap<String, ResultSet>) -> Result<(), CatalogueError> {
    for rs in result_sets.values() {
        if let Some(through) = &rs.people.about_through {
            let linked = result_sets.get(through).filter(|t| {
                t.link.is_some() && t.people.subjects.iter().any(|s| s.kind().is_some())
            });
            if linked.is_none() {
                return Err(CatalogueError::Invalid(format!(
                    "result set {}: about_through {through} must be a set linked to it with a \
                     person it is about",
                    rs.name
                )));
            }
        }
        for mention in &rs.people.mentions {
            let Some(alias) = &mention.alias else {
                continue;
            };
            let own = mention.kind.own_set();
            if result_sets.get(own).and_then(|o| o.field(alias)).is_none() {
                return Err(CatalogueError::Invalid(format!(
                    "result set {}: {} holds {own}.{alias}, which does not exist",
                    rs.name, mention.field
                )));
            }
        }
    }
    Ok(())
}

pub(crate) fn check_known<'a>(
    used: impl Iterator<Item = &'a str>,
    known: &BTreeSet<String>,
    context: &str,
) -> Result<(), CatalogueError> {
    for scope in used {
        if !known.contains(scope) {
            return Err(CatalogueError::Invalid(format!(
                "{context} uses scope {scope}, which is not in the scope list"
            )));
        }
    }
    Ok(())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCatalogue {
    scopes: Vec<(String, String, String)>,
    #[serde(default)]
    special: Vec<String>,
    endpoint: Vec<endpoints::RawEndpoint>,
    #[serde(default)]
    writeback: Vec<writebacks::RawWriteback>,
    #[serde(default)]
    query: Vec<writebacks::RawQuery>,
    result_set: BTreeMap<String, RawResultSet>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawResultSet {
    area: Area,
    #[serde(default)]
    computed: bool,
    #[serde(default)]
    link: Option<String>,
    #[serde(default)]
    assumed: Vec<String>,
    #[serde(default)]
    extra: Vec<String>,
    #[serde(default)]
    corrected: Vec<String>,
    #[serde(default)]
    people: BTreeMap<String, String>,
    #[serde(default)]
    mentions: BTreeMap<String, String>,
    #[serde(default)]
    not_people: Vec<String>,
    #[serde(default)]
    row_scope: Option<BTreeMap<String, String>>,
    #[serde(default)]
    about_through: Option<String>,
    #[serde(default)]
    upload_aliases: Vec<String>,
    fields: Vec<(String, String)>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_compiled_catalogue_is_valid() {
        let catalogue = Catalogue::from_toml(CATALOGUE_TOML).unwrap();
        assert!(catalogue.endpoint_by_path("students").is_some());
        assert!(catalogue.endpoint_by_path("STUDENTCONTACTS").is_some());
    }

    #[test]
    fn computed_fields_are_not_stored_in_groups() {
        let students = Catalogue::get().result_set("Students").unwrap();
        let stored: Vec<&String> = students.groups.iter().flat_map(|g| &g.fields).collect();
        assert!(stored.iter().all(|f| !is_computed_field(f)));
        assert!(stored.iter().any(|f| *f == "Id"));
    }

    #[test]
    fn special_scopes_are_marked_and_say_what_they_release() {
        let catalogue = Catalogue::get();
        for special in ["StudentEthnicity", "StudentMedical", "SEN", "Photos"] {
            assert!(catalogue.scope(special).unwrap().special, "{special}");
        }
        for plain in ["Student", "School", "Attendance"] {
            assert!(!catalogue.scope(plain).unwrap().special, "{plain}");
        }
        let ethnicity = catalogue.fields_of_scope("StudentDemographic");
        let students = ethnicity
            .iter()
            .find(|(set, _)| *set == "Students")
            .unwrap();
        assert!(students.1.contains(&"Ethnicity"), "{ethnicity:?}");
        assert!(!students.1.contains(&"Forename"), "{ethnicity:?}");
        assert!(catalogue.fields_of_scope("NoSuchScope").is_empty());
    }

    #[test]
    fn a_special_scope_the_catalogue_does_not_list_is_refused() {
        let text = r#"
            scopes = [["School", "School", "The school."]]
            special = ["Schol"]
            endpoint = []
            result_set = {}
        "#;
        let error = Catalogue::from_toml(text).unwrap_err().to_string();
        assert!(error.contains("Schol"), "{error}");
    }

    #[test]
    fn special_category_fields_are_in_their_own_group() {
        let students = Catalogue::get().result_set("Students").unwrap();
        let granted: ScopeSet = ["Student".to_string()].into();
        let visible: Vec<&str> = students
            .visible_fields(&granted)
            .map(|f| f.name.as_str())
            .collect();
        assert!(visible.contains(&"Forename"));
        assert!(!visible.contains(&"Ethnicity"));
        assert!(!visible.contains(&"DateOfBirth"));
    }

    #[test]
    fn a_field_listed_twice_is_refused() {
        let text = r#"
            scopes = [["School", "School", "The school."]]
            endpoint = []
            [result_set.X]
            area = "core"
            fields = [["Id", "School"], ["Id", "School"], ["RowHash", "School"], ["LastUpdated", "School"]]
        "#;
        assert!(matches!(
            Catalogue::from_toml(text),
            Err(CatalogueError::Invalid(_))
        ));
    }
}
