//! An endpoint's filters as a call gives them: read from the query (names without regard to
//! case), checked (dates, required ones, consent), and applied to full rows.

use std::collections::{BTreeMap, BTreeSet};

use rollcall_core::catalogue::{Catalogue, Condition, Endpoint, Filter, FilterOp, Test};
use rollcall_core::dataset::Row;
use rollcall_core::scope::ScopeSet;
use rollcall_core::timestamp::{Duration, Timestamp};
use rollcall_http::ApiError;
use rollcall_http::request::QueryParams;
use serde_json::Value;

/// One filter with the value it applies, and (for a filter mapped through another result
/// set) the values that mapping produced.
#[derive(Debug, Clone)]
pub(crate) struct ActiveFilter {
    pub filter: Filter,
    pub value: String,
    pub mapped: Option<BTreeSet<String>>,
}

/// The filters a call applies, and the parameters it gave (for `NextPage` and changesets).
#[derive(Debug, Clone, Default)]
pub(crate) struct Filters {
    pub active: Vec<ActiveFilter>,
    /// `name=value` of every filter parameter the call gave, names lower-case, sorted.
    pub given: BTreeMap<String, String>,
}

impl Filters {
    /// Reads the endpoint's filter parameters; `path_id` is the `/{id}` segment, which is the
    /// `id` parameter by another route.
    pub fn parse(
        endpoint: &Endpoint,
        params: &QueryParams,
        path_id: Option<&str>,
        now: Timestamp,
    ) -> Result<Self, ApiError> {
        let mut given = BTreeMap::new();
        for name in endpoint.parameters() {
            let from_query = params.get(name).map(str::trim).filter(|v| !v.is_empty());
            let value = match (name.eq_ignore_ascii_case("id"), path_id, from_query) {
                (true, Some(_), Some(_)) => {
                    return Err(ApiError::BadRequest(
                        "the id is given twice, in the path and as ?id=; give it once".into(),
                    ));
                }
                (true, Some(id), None) => Some(id),
                (_, _, v) => v,
            };
            if let Some(value) = value {
                given.insert(name.to_ascii_lowercase(), value.to_owned());
            }
        }
        let mut active = Vec::new();
        for filter in &endpoint.filters {
            let value = match (&filter.fixed, &filter.name) {
                (Some(fixed), _) => Some(fixed.clone()),
                (None, Some(name)) => given
                    .get(&name.to_ascii_lowercase())
                    .cloned()
                    .or_else(|| filter.default.clone()),
                (None, None) => None,
            };
            let Some(value) = value else {
                if filter.required {
                    return Err(missing(endpoint, filter));
                }
                continue;
            };
            let value = normalise(endpoint, filter, &value, now)?;
            active.push(ActiveFilter {
                filter: filter.clone(),
                value,
                mapped: None,
            });
        }
        if !endpoint.required_any.is_empty()
            && !endpoint
                .required_any
                .iter()
                .any(|name| given.contains_key(&name.to_ascii_lowercase()))
        {
            return Err(ApiError::BadRequest(format!(
                "{} needs at least one of these parameters: {}",
                endpoint.path,
                endpoint.required_any.join(", ")
            )));
        }
        Ok(Self { active, given })
    }

    /// A filter given by the partner on a field the consent does not release would reveal
    /// that field's values; it is refused, naming the field.
    pub fn check_consent(
        &self,
        catalogue: &Catalogue,
        endpoint: &Endpoint,
        granted: &ScopeSet,
        estab: &str,
    ) -> Result<(), ApiError> {
        for active in self.active.iter().filter(|a| a.filter.name.is_some()) {
            let set = endpoint
                .sets
                .iter()
                .find(|s| s.name == active.filter.set)
                .expect("filters name answered sets (catalogue checked)");
            let rs = catalogue
                .result_set(&set.stored)
                .expect("catalogue checked");
            for field in &active.filter.fields {
                let field = rs.field(field).expect("catalogue checked");
                if !field.scope.is_satisfied_by(granted) {
                    return Err(ApiError::Forbidden(format!(
                        "{} filters on {}.{}, which needs {}; school {estab} has not granted \
                         it to you, so leave the parameter out or ask the school to grant it",
                        active.filter.name.as_deref().unwrap_or_default(),
                        rs.name,
                        field.name,
                        field.scope
                    )));
                }
            }
        }
        Ok(())
    }

    /// The filters that narrow the answered set `set`.
    pub fn on<'a>(&'a self, set: &'a str) -> impl Iterator<Item = &'a ActiveFilter> {
        self.active.iter().filter(move |a| a.filter.set == set)
    }

    /// The fields of `set` its filters read.
    pub fn fields_of<'a>(&'a self, set: &'a str) -> impl Iterator<Item = &'a str> {
        self.on(set)
            .flat_map(|a| a.filter.fields.iter().map(String::as_str))
    }
}

fn missing(endpoint: &Endpoint, filter: &Filter) -> ApiError {
    let name = filter.name.as_deref().unwrap_or_default();
    let hint = if is_date(filter.op) {
        " (a date, yyyy-mm-dd)"
    } else {
        ""
    };
    ApiError::BadRequest(format!(
        "{} needs the parameter {name}{hint}",
        endpoint.path
    ))
}

fn is_date(op: FilterOp) -> bool {
    matches!(op, FilterOp::On | FilterOp::From | FilterOp::To)
}

/// Checks a value and puts dates in `yyyy-mm-dd` form; `today`, `today-7` and `today+14` are
/// resolved against the clock.
fn normalise(
    endpoint: &Endpoint,
    filter: &Filter,
    value: &str,
    now: Timestamp,
) -> Result<String, ApiError> {
    if !is_date(filter.op) {
        return Ok(value.to_owned());
    }
    if let Some(offset) = value.strip_prefix("today") {
        let days: i64 = if offset.is_empty() {
            0
        } else {
            offset.trim_start_matches('+').parse().map_err(|_| {
                ApiError::internal(anyhow::anyhow!("catalogue date default {value}"))
            })?
        };
        return Ok(date_of(&now.plus(Duration::days(days)).to_xod()).to_owned());
    }
    let parsed = Timestamp::parse(value).map_err(|_| {
        ApiError::BadRequest(format!(
            "{} of {}: `{}` is not a date; write it yyyy-mm-dd",
            filter.name.as_deref().unwrap_or_default(),
            endpoint.path,
            value.chars().take(32).collect::<String>()
        ))
    })?;
    Ok(date_of(&parsed.to_xod()).to_owned())
}

/// The `yyyy-mm-dd` part of an ISO 8601 value.
pub(crate) fn date_of(text: &str) -> &str {
    text.get(..10).unwrap_or(text)
}

/// A scalar as filters compare it.
pub(crate) fn text_of(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(if *b { "1" } else { "0" }.to_owned()),
        _ => None,
    }
}

impl ActiveFilter {
    pub fn matches(&self, row: &Row) -> bool {
        let field_text = |name: &str| row.get(name).and_then(text_of);
        if let Some(mapped) = &self.mapped {
            return self
                .filter
                .fields
                .iter()
                .any(|f| field_text(f).is_some_and(|v| mapped.contains(&v)));
        }
        if self.filter.op == FilterOp::Pairs {
            return self.matches_pairs(row);
        }
        self.filter.fields.iter().any(|field| {
            let Some(text) = field_text(field) else {
                return false;
            };
            match self.filter.op {
                FilterOp::Eq => text.eq_ignore_ascii_case(&self.value),
                FilterOp::In => values(&self.value).any(|v| text.eq_ignore_ascii_case(v)),
                FilterOp::Prefix => text
                    .to_ascii_lowercase()
                    .starts_with(&self.value.to_ascii_lowercase()),
                FilterOp::On => date_of(&text) == self.value,
                FilterOp::From => date_of(&text) >= self.value.as_str(),
                FilterOp::To => date_of(&text) <= self.value.as_str(),
                FilterOp::Pairs => unreachable!("handled above"),
            }
        })
    }

    fn matches_pairs(&self, row: &Row) -> bool {
        let [first, second] = &self.filter.fields[..] else {
            return false;
        };
        let a = row.get(first).and_then(text_of);
        let b = row.get(second).and_then(text_of);
        values(&self.value).any(|pair| {
            let (want_a, want_b) = pair.split_once('|').unwrap_or((pair, ""));
            a.as_deref() == Some(want_a.trim())
                && (want_b.trim().is_empty() || b.as_deref() == Some(want_b.trim()))
        })
    }
}

/// The items of a comma-separated list.
pub(crate) fn values(list: &str) -> impl Iterator<Item = &str> {
    list.split(',').map(str::trim).filter(|v| !v.is_empty())
}

/// Whether a row passes an option's condition.
pub(crate) fn condition_holds(condition: &Condition, row: &Row, today: &str) -> bool {
    let Some(text) = row.get(&condition.field).and_then(text_of) else {
        return false;
    };
    match &condition.test {
        Test::Equals(value) => text.eq_ignore_ascii_case(value),
        Test::BeforeToday => !text.is_empty() && date_of(&text) < today,
        Test::AfterToday => !text.is_empty() && date_of(&text) > today,
    }
}
