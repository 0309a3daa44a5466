//! The catalogue: which partner endpoints rollcall serves, the result sets behind them, every
//! field and the scope expression that releases it. The data lives in `core/catalogue.toml`,
//! compiled in, and is checked once when first used.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::LazyLock;

use serde::Deserialize;

use crate::scope::{EndpointScope, FieldScope, ScopeExprError, ScopeSet};
use crate::timestamp::Duration;

/// Fields every stored row carries that rollcall computes itself at ingest.
pub const ROW_HASH: &str = "RowHash";
pub const LAST_UPDATED: &str = "LastUpdated";
pub const ID: &str = "Id";

/// The catalogue file, compiled into every function.
const CATALOGUE_TOML: &str = include_str!("../catalogue.toml");

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
    endpoints: Vec<Endpoint>,
    result_sets: BTreeMap<String, ResultSet>,
}

/// A partner endpoint under `/api/v1/School/{estab}/`.
#[derive(Debug)]
pub struct Endpoint {
    pub id: String,
    /// The path segment, in the case XoD documents it (`Students`).
    pub path: String,
    pub scope: EndpointScope,
    /// Whether `/{Endpoint}/{id}` selects one row.
    pub by_id: bool,
    /// The result set answered always, and paginated.
    pub result_set: String,
    /// Options that add a related result set: option name → result set.
    pub options: BTreeMap<String, String>,
}

/// How long an area's data is current after the school's agent confirmed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Area {
    /// School, groups, students, staff, contacts: uploaded proactively, daily.
    Core,
}

impl Area {
    pub fn validity(self) -> Duration {
        match self {
            Area::Core => Duration::hours(24),
        }
    }
}

#[derive(Debug)]
pub struct ResultSet {
    pub name: String,
    pub area: Area,
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
        let scopes: BTreeSet<String> = raw.scopes.into_iter().collect();
        let mut result_sets = BTreeMap::new();
        for (name, raw_rs) in raw.result_set {
            let rs = ResultSet::build(name.clone(), raw_rs, &scopes)?;
            result_sets.insert(name, rs);
        }
        let mut endpoints = Vec::new();
        for raw_ep in raw.endpoint {
            let scope = EndpointScope::parse(&raw_ep.scopes)?;
            check_known(scope.scopes(), &scopes, &raw_ep.id)?;
            for rs in std::iter::once(&raw_ep.result_set).chain(raw_ep.options.values()) {
                if !result_sets.contains_key(rs) {
                    return Err(CatalogueError::Invalid(format!(
                        "endpoint {} names result set {rs}, which is not defined",
                        raw_ep.id
                    )));
                }
            }
            endpoints.push(Endpoint {
                id: raw_ep.id,
                path: raw_ep.path,
                scope,
                by_id: raw_ep.by_id,
                result_set: raw_ep.result_set,
                options: raw_ep.options,
            });
        }
        Ok(Self {
            scopes,
            endpoints,
            result_sets,
        })
    }

    /// Every scope a school can grant.
    pub fn scopes(&self) -> &BTreeSet<String> {
        &self.scopes
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

    pub fn result_set(&self, name: &str) -> Option<&ResultSet> {
        self.result_sets.get(name)
    }

    pub fn result_sets(&self) -> impl Iterator<Item = &ResultSet> {
        self.result_sets.values()
    }

    /// The result sets an endpoint answers for a set of options, the primary one first.
    pub fn answered_result_sets<'a>(
        &'a self,
        endpoint: &'a Endpoint,
        options: &BTreeSet<String>,
    ) -> Vec<&'a ResultSet> {
        let mut out = vec![&self.result_sets[&endpoint.result_set]];
        for (option, rs) in &endpoint.options {
            if options.contains(option) {
                out.push(&self.result_sets[rs]);
            }
        }
        out
    }
}

impl ResultSet {
    fn build(
        name: String,
        raw: RawResultSet,
        scopes: &BTreeSet<String>,
    ) -> Result<Self, CatalogueError> {
        let area = match raw.area.as_str() {
            "core" => Area::Core,
            other => {
                return Err(CatalogueError::Invalid(format!(
                    "result set {name} has unknown area {other}"
                )));
            }
        };
        let mut fields: Vec<Field> = Vec::new();
        for (field_name, expr) in raw.fields {
            if fields.iter().any(|f| f.name == field_name) {
                return Err(CatalogueError::Invalid(format!(
                    "result set {name} lists {field_name} twice"
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
        for required in [ID, ROW_HASH, LAST_UPDATED] {
            if !fields.iter().any(|f| f.name == required) {
                return Err(CatalogueError::Invalid(format!(
                    "result set {name} has no {required} field"
                )));
            }
        }
        let assumed: BTreeSet<String> = raw.assumed.into_iter().collect();
        let extra: BTreeSet<String> = raw.extra.into_iter().collect();
        if let Some(unknown) = assumed
            .iter()
            .chain(&extra)
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
        let groups = group_fields(&fields);
        for field in fields.iter_mut().filter(|f| !f.is_computed()) {
            field.group = groups.iter().position(|g| g.scope == field.scope);
        }
        Ok(Self {
            name,
            area,
            link: raw.link,
            fields,
            groups,
            assumed,
            extra,
        })
    }

    pub fn field(&self, name: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.name == name)
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

fn check_known<'a>(
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
    scopes: Vec<String>,
    endpoint: Vec<RawEndpoint>,
    result_set: BTreeMap<String, RawResultSet>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEndpoint {
    id: String,
    path: String,
    scopes: String,
    by_id: bool,
    result_set: String,
    #[serde(default)]
    options: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawResultSet {
    area: String,
    #[serde(default)]
    link: Option<String>,
    #[serde(default)]
    assumed: Vec<String>,
    #[serde(default)]
    extra: Vec<String>,
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
            scopes = ["School"]
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
