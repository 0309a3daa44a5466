//! An endpoint's filters as a call gives them: read from the query (names without regard to
//! case) and checked for form (dates, required ones). What they may read and how they apply
//! is the read plan's ([`rollcall_core::plan`]).

use std::collections::BTreeMap;

use rollcall_core::catalogue::{Endpoint, Filter, FilterOp};
use rollcall_core::plan::GivenFilter;
use rollcall_core::timestamp::Timestamp;
use rollcall_http::ApiError;
use rollcall_http::request::QueryParams;

/// The filters a call applies, and the parameters it gave (for `NextPage` and changesets).
#[derive(Debug, Clone, Default)]
pub(crate) struct Filters {
    /// Every filter in effect with its checked value; what it does is the read plan's.
    pub active: Vec<GivenFilter<'static>>,
    /// `name=value` of every filter parameter the call gave, names lower-case, sorted.
    pub given: BTreeMap<String, String>,
}

impl Filters {
    /// Reads the endpoint's filter parameters; `path_id` is the `/{id}` segment, which is the
    /// `id` parameter by another route.
    pub fn parse(
        endpoint: &'static Endpoint,
        params: &QueryParams,
        path_id: Option<&str>,
        now: Timestamp,
    ) -> Result<Self, ApiError> {
        let mut given = BTreeMap::new();
        for name in endpoint.parameters() {
            // A value is taken as given, but for the spaces around a text one; a date must be
            // a date as it stands. Empty is as if not given.
            let raw = params.get(name);
            let from_query = if takes_date(endpoint, name) {
                raw
            } else {
                raw.map(str::trim)
            }
            .filter(|v| !v.is_empty());
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
                (Some(fixed), _) => Some(FilterValue::Catalogue(fixed)),
                (None, Some(name)) => given
                    .get(&name.to_ascii_lowercase())
                    .map(|v| FilterValue::Given(v.as_str()))
                    .or_else(|| filter.default.as_deref().map(FilterValue::Catalogue)),
                (None, None) => None,
            };
            let Some(value) = value else {
                if filter.required {
                    return Err(missing(endpoint, filter));
                }
                continue;
            };
            let value = normalise(endpoint, filter, value, now)?;
            active.push(GivenFilter { filter, value });
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

/// Whether the parameter `name` is a date filter's.
fn takes_date(endpoint: &Endpoint, name: &str) -> bool {
    endpoint.filters.iter().any(|filter| {
        is_date(filter.op)
            && filter
                .name
                .as_deref()
                .is_some_and(|n| n.eq_ignore_ascii_case(name))
    })
}

/// A filter's value: the caller's, or the catalogue's `fixed` or `default`.
#[derive(Clone, Copy)]
enum FilterValue<'a> {
    Given(&'a str),
    Catalogue(&'a str),
}

/// Checks a value and puts dates in `yyyy-mm-dd` form. The catalogue's `today`, `today-7` and
/// `today+14` are resolved against the clock; a caller's date must be a date (`today...` from
/// a caller is a 400 like any other text, not an error of rollcall's).
fn normalise(
    endpoint: &Endpoint,
    filter: &Filter,
    value: FilterValue<'_>,
    now: Timestamp,
) -> Result<String, ApiError> {
    let parsed = match value {
        FilterValue::Given(value) | FilterValue::Catalogue(value) if !is_date(filter.op) => {
            return Ok(value.to_owned());
        }
        FilterValue::Given(value) => Timestamp::parse_given_date(value).map_err(|_| {
            ApiError::BadRequest(format!(
                "{} of {}: `{}` is not a date; write it yyyy-mm-dd",
                filter.name.as_deref().unwrap_or_default(),
                endpoint.path,
                value.chars().take(32).collect::<String>()
            ))
        })?,
        FilterValue::Catalogue(value) if value.starts_with("today") => {
            return rollcall_core::plan::relative_date(value, now).ok_or_else(|| {
                ApiError::internal(anyhow::anyhow!("catalogue date default {value}"))
            });
        }
        FilterValue::Catalogue(value) => Timestamp::parse(value)
            .map_err(|_| ApiError::internal(anyhow::anyhow!("catalogue date default {value}")))?,
    };
    Ok(rollcall_core::plan::date_of(&parsed.to_xod()).to_owned())
}

#[cfg(test)]
mod tests {
    use rollcall_core::catalogue::Catalogue;

    use super::*;

    fn parse(path: &str, query: &str) -> Result<Filters, ApiError> {
        let endpoint = Catalogue::get().endpoint_by_path(path).unwrap();
        let now = Timestamp::parse("2026-09-09T10:00:00Z").unwrap();
        Filters::parse(endpoint, &QueryParams::parse(Some(query))?, None, now)
    }

    fn dates(filters: &Filters) -> Vec<&str> {
        filters.active.iter().map(|f| f.value.as_str()).collect()
    }

    #[test]
    fn a_callers_date_must_be_a_date_and_the_catalogues_today_is_resolved() {
        // `+` in a query is a space: `today+1` arrives as `today 1`.
        for value in [
            "todayfoo",
            "today+1",
            "today-",
            " ",
            "%202026-09-01",
            "2026-09-01+",
            "2026-09-01T10:00:00",
            "20260901",
            "2026-02-30",
            "%2B2026-09-01",
            "today-9999999999999",
            "tomorrow",
        ] {
            let error = parse("AttendanceForDate", &format!("date={value}"))
                .err()
                .unwrap_or_else(|| panic!("{value} was taken"));
            assert!(
                matches!(&error, ApiError::BadRequest(m) if m.contains("is not a date")),
                "{value}: {error:?}"
            );
        }
        // An optional date left empty is not given; spaces are not empty (`+` is a space).
        let empty = parse("AchievementForToday", "IncidentDate=").unwrap();
        assert!(
            !empty.given.contains_key("incidentdate"),
            "{:?}",
            empty.given
        );
        let spaces = parse("AchievementForToday", "IncidentDate=+").err();
        assert!(
            matches!(&spaces, Some(ApiError::BadRequest(m)) if m.contains("is not a date")),
            "{spaces:?}"
        );
        let given = parse("AttendanceForDate", "date=2026-09-01").unwrap();
        assert_eq!(dates(&given), ["2026-09-01"]);
        let fixed = parse("ConductForToday", "").unwrap();
        assert!(dates(&fixed).contains(&"2026-09-09"), "{:?}", dates(&fixed));
        let defaults = parse("TimetableForStudent", "id=1").unwrap();
        for date in ["2026-09-02", "2026-09-23"] {
            assert!(dates(&defaults).contains(&date), "{:?}", dates(&defaults));
        }
    }
}
