//! Reading the `[[endpoint]]` tables of the catalogue and checking every name they use: result
//! sets, fields, options and filters must all exist, so a typo fails the build's tests, not a
//! partner's call.

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;

use super::{
    AnsweredSet, CatalogueError, Condition, Endpoint, Filter, FilterOp, OptionEffect, Reference,
    ResultSet, Test, Via, View, check_known,
};
use crate::scope::{EndpointScope, FieldScope};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawEndpoint {
    id: String,
    #[serde(default)]
    aliases: Vec<String>,
    path: String,
    scopes: String,
    #[serde(default)]
    by_id: bool,
    summary: String,
    #[serde(default)]
    view: Option<String>,
    sets: Vec<RawSet>,
    #[serde(default)]
    options: BTreeMap<String, RawOption>,
    #[serde(default)]
    filters: Vec<RawFilter>,
    #[serde(default)]
    required_any: Vec<String>,
    #[serde(default)]
    corrected: Option<String>,
    #[serde(default)]
    answer_order: Vec<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawSet {
    Name(String),
    Full {
        name: String,
        #[serde(default)]
        stored: Option<String>,
        #[serde(default)]
        option: Option<String>,
        #[serde(default)]
        omit: Vec<String>,
    },
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawOption {
    #[serde(default)]
    columns: Vec<String>,
    #[serde(default)]
    reveal: Option<String>,
    #[serde(default)]
    keep: Option<String>,
    #[serde(default)]
    drop: Option<String>,
    /// The row's field holding the person whose own record the condition tests.
    #[serde(default)]
    of: Option<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFilter {
    #[serde(default)]
    name: Option<String>,
    field: OneOrMany,
    #[serde(default)]
    op: Option<String>,
    #[serde(default)]
    set: Option<String>,
    #[serde(default)]
    required: bool,
    #[serde(default)]
    fixed: Option<String>,
    #[serde(default)]
    default: Option<String>,
    #[serde(default)]
    second: Option<String>,
    #[serde(default)]
    via: Option<RawVia>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawVia {
    set: String,
    #[serde(rename = "match")]
    matches: String,
    take: String,
    #[serde(default)]
    through: Option<Box<RawVia>>,
}

pub(crate) fn build(
    raw: RawEndpoint,
    scopes: &BTreeSet<String>,
    result_sets: &BTreeMap<String, ResultSet>,
) -> Result<Endpoint, CatalogueError> {
    let id = raw.id;
    let invalid = |what: String| CatalogueError::Invalid(format!("endpoint {id}: {what}"));
    let scope = EndpointScope::parse(&raw.scopes)?;
    check_known(scope.scopes(), scopes, &id)?;
    let view = match raw.view.as_deref() {
        None => View::Stored,
        Some("counts") => View::Counts,
        Some("health") => View::Health,
        Some("timetable_for_staff") => View::TimetableForStaff,
        Some("timetable_for_student") => View::TimetableForStudent,
        Some(other) => return Err(invalid(format!("unknown view {other}"))),
    };
    let sets: Vec<AnsweredSet> = raw.sets.into_iter().map(answered_set).collect();
    let Some(primary) = sets.first() else {
        return Err(invalid("answers no result set".into()));
    };
    if primary.option.is_some() {
        return Err(invalid(
            "its primary result set cannot depend on an option".into(),
        ));
    }
    let stored_set = |name: &str| {
        result_sets
            .get(name)
            .ok_or_else(|| invalid(format!("result set {name} is not defined")))
    };
    let answered_set_named = |name: &str| -> Result<&ResultSet, CatalogueError> {
        let set = sets
            .iter()
            .find(|s| s.name == name)
            .ok_or_else(|| invalid(format!("{name} is not one of its result sets")))?;
        stored_set(&set.stored)
    };
    for set in &sets {
        let rs = stored_set(&set.stored)?;
        if rs.computed != (view != View::Stored) {
            return Err(invalid(format!(
                "result set {} is computed only for computed views",
                rs.name
            )));
        }
        if let Some(field) = set.omit.iter().find(|f| rs.field(f).is_none()) {
            return Err(invalid(format!("omits {field}, which {} lacks", rs.name)));
        }
    }
    let primary_rs = stored_set(&primary.stored)?;
    let mut options = BTreeMap::new();
    for (name, raw_option) in raw.options {
        let effect = option_effect(&raw_option).map_err(|e| invalid(format!("{name}: {e}")))?;
        let named: Vec<&String> = match &effect {
            OptionEffect::Columns(columns) => columns.iter().collect(),
            OptionEffect::Reveal(Condition { of: Some(of), .. }) => vec![of],
            OptionEffect::Reveal(c) | OptionEffect::Keep(c) | OptionEffect::Drop(c) => {
                vec![&c.field]
            }
            _ => vec![],
        };
        if let OptionEffect::Reveal(Condition {
            of: Some(of),
            field,
            ..
        }) = &effect
        {
            let kind = primary_rs
                .people
                .subjects
                .iter()
                .find_map(|s| match s.reference {
                    Reference::Kind(kind) if &s.field == of => Some(kind),
                    _ => None,
                })
                .ok_or_else(|| {
                    invalid(format!(
                        "option {name}: {of} is not declared as a person {} is about",
                        primary_rs.name
                    ))
                })?;
            if stored_set(kind.own_set())?.field(field).is_none() {
                return Err(invalid(format!(
                    "option {name} tests {field}, which {} lacks",
                    kind.own_set()
                )));
            }
        }
        for field in named {
            let Some(field) = primary_rs.field(field) else {
                return Err(invalid(format!(
                    "option {name} names {field}, which {} lacks",
                    primary_rs.name
                )));
            };
            // A partner-chosen keep or drop on a field it may not read would reveal that
            // field. A reveal only brings back rows left out by default (leavers,
            // pre-admissions, guests): being on roll is part of what the endpoint releases.
            let chosen = matches!(effect, OptionEffect::Keep(_) | OptionEffect::Drop(_));
            if chosen && !implied_by(&scope, &field.scope) {
                return Err(invalid(format!(
                    "option {name} tests {}, which the endpoint's scopes do not release: \
                     answering it would read a group the consent may not cover",
                    field.name
                )));
            }
        }
        options.insert(name, effect);
    }
    for option in sets.iter().filter_map(|s| s.option.as_ref()) {
        if options
            .insert(option.clone(), OptionEffect::Sets)
            .is_some_and(|e| e != OptionEffect::Sets)
        {
            return Err(invalid(format!(
                "option {option} both adds a set and does more"
            )));
        }
    }
    let mut filters = Vec::new();
    for raw_filter in raw.filters {
        let set = raw_filter
            .set
            .clone()
            .unwrap_or_else(|| primary.name.clone());
        let rs = answered_set_named(&set)?;
        let filter = filter(raw_filter, set).map_err(&invalid)?;
        for field in &filter.fields {
            if rs.field(field).is_none() {
                return Err(invalid(format!(
                    "filters on {field}, which {} lacks",
                    rs.name
                )));
            }
        }
        check_via(filter.via.as_ref(), result_sets).map_err(&invalid)?;
        filters.push(filter);
    }
    if raw.by_id && view == View::Stored && !filters.iter().any(is_id_filter) {
        filters.insert(0, id_filter(&primary.name));
    }
    for name in &raw.required_any {
        if !filters
            .iter()
            .any(|f| f.name.as_deref() == Some(name.as_str()))
        {
            return Err(invalid(format!(
                "requires one of {name}, which is not a filter"
            )));
        }
    }
    for name in &raw.answer_order {
        if !sets.iter().any(|s: &AnsweredSet| &s.name == name) {
            return Err(invalid(format!(
                "answer_order names `{name}`, which it does not answer"
            )));
        }
    }
    Ok(Endpoint {
        answer_order: raw.answer_order,
        id,
        aliases: raw.aliases,
        path: raw.path,
        scope,
        by_id: raw.by_id,
        summary: raw.summary,
        view,
        sets,
        options,
        filters,
        required_any: raw.required_any,
        corrected: raw.corrected,
    })
}

/// Whether every consent that opens the endpoint also releases the field.
fn implied_by(endpoint: &EndpointScope, field: &FieldScope) -> bool {
    endpoint
        .alternatives()
        .iter()
        .all(|alternative| field.is_satisfied_by(alternative))
}

fn is_id_filter(filter: &Filter) -> bool {
    filter
        .name
        .as_deref()
        .is_some_and(|n| n.eq_ignore_ascii_case("id"))
}

/// Without a declared `id` filter, `/{Endpoint}/{id}` and `?id=` select the primary row by `Id`.
fn id_filter(set: &str) -> Filter {
    Filter {
        name: Some("id".into()),
        fields: vec![super::ID.into()],
        op: FilterOp::Eq,
        set: set.to_owned(),
        required: false,
        fixed: None,
        default: None,
        via: None,
    }
}

fn answered_set(raw: RawSet) -> AnsweredSet {
    match raw {
        RawSet::Name(name) => AnsweredSet {
            stored: name.clone(),
            name,
            option: None,
            omit: BTreeSet::new(),
        },
        RawSet::Full {
            name,
            stored,
            option,
            omit,
        } => AnsweredSet {
            stored: stored.unwrap_or_else(|| name.clone()),
            name,
            option,
            omit: omit.into_iter().collect(),
        },
    }
}

fn option_effect(raw: &RawOption) -> Result<OptionEffect, String> {
    let conditions = [&raw.reveal, &raw.keep, &raw.drop];
    let given =
        conditions.iter().filter(|c| c.is_some()).count() + usize::from(!raw.columns.is_empty());
    if given > 1 {
        return Err("an option does one thing".into());
    }
    if raw.of.is_some() && raw.reveal.is_none() {
        return Err("only a reveal can test the person a row refers to (`of`)".into());
    }
    let condition = |text: &str| {
        condition(text).map(|c| Condition {
            of: raw.of.clone(),
            ..c
        })
    };
    Ok(if !raw.columns.is_empty() {
        OptionEffect::Columns(raw.columns.iter().cloned().collect())
    } else if let Some(c) = &raw.reveal {
        OptionEffect::Reveal(condition(c)?)
    } else if let Some(c) = &raw.keep {
        OptionEffect::Keep(condition(c)?)
    } else if let Some(c) = &raw.drop {
        OptionEffect::Drop(condition(c)?)
    } else {
        OptionEffect::Accepted
    })
}

fn condition(text: &str) -> Result<Condition, String> {
    if let Some(field) = text.strip_suffix("<today") {
        return Ok(Condition {
            field: field.into(),
            test: Test::BeforeToday,
            of: None,
        });
    }
    if let Some(field) = text.strip_suffix(">today") {
        return Ok(Condition {
            field: field.into(),
            test: Test::AfterToday,
            of: None,
        });
    }
    let (field, value) = text.split_once('=').ok_or_else(|| {
        format!("condition `{text}` is not Field=value, Field<today or Field>today")
    })?;
    Ok(Condition {
        field: field.into(),
        test: Test::Equals(value.into()),
        of: None,
    })
}

fn filter(raw: RawFilter, set: String) -> Result<Filter, String> {
    let op = match raw.op.as_deref().unwrap_or("eq") {
        "eq" => FilterOp::Eq,
        "in" => FilterOp::In,
        "prefix" => FilterOp::Prefix,
        "on" => FilterOp::On,
        "from" => FilterOp::From,
        "to" => FilterOp::To,
        "pairs" => FilterOp::Pairs,
        other => return Err(format!("unknown filter op {other}")),
    };
    if raw.name.is_none() && raw.fixed.is_none() {
        return Err("a filter without a parameter name needs a fixed value".into());
    }
    if (op == FilterOp::Pairs) != raw.second.is_some() {
        return Err("`second` goes with op = \"pairs\", and only with it".into());
    }
    let mut fields = match raw.field {
        OneOrMany::One(f) => vec![f],
        OneOrMany::Many(fs) => fs,
    };
    if let Some(second) = raw.second.clone() {
        fields.push(second);
    }
    Ok(Filter {
        name: raw.name,
        fields,
        op,
        set,
        required: raw.required,
        fixed: raw.fixed,
        default: raw.default,
        via: raw.via.map(via),
    })
}

fn via(raw: RawVia) -> Via {
    Via {
        set: raw.set,
        matches: raw.matches,
        take: raw.take,
        through: raw.through.map(|t| Box::new(via(*t))),
    }
}

fn check_via(via: Option<&Via>, result_sets: &BTreeMap<String, ResultSet>) -> Result<(), String> {
    let Some(via) = via else {
        return Ok(());
    };
    let rs = result_sets
        .get(&via.set)
        .filter(|rs| !rs.computed)
        .ok_or_else(|| format!("maps through {}, which is not a stored result set", via.set))?;
    for field in [&via.matches, &via.take] {
        if rs.field(field).is_none() {
            return Err(format!(
                "maps through {}.{field}, which does not exist",
                via.set
            ));
        }
    }
    check_via(via.through.as_deref(), result_sets)
}
