//! The consent property, on the code that ships: random consents × random opt-outs × random
//! rows of every stored endpoint's result sets × random `select`, filters (via filters
//! included) and options, each call sent in process (`tower::ServiceExt::oneshot`) through the
//! same merged router `rollcall dev` serves, over the embedded store. Two schools hold data;
//! the partner reads the first.
//!
//! Every value the generator stores is a unique token that says which field it belongs to, so
//! an answer can be searched as text. Whatever the case:
//! - no field outside the consent is emitted, and no token of an unreleased field appears
//!   anywhere in the body (so nothing decrypted only for filtering or opt-outs leaks);
//! - no opted-out pupil's, member of staff's or contact's id, code or IDaaS id appears in a
//!   successful answer;
//! - no token of the other school appears;
//! - every row answered carries exactly the fields the consent releases (less omissions,
//!   option columns not asked for, and `select`);
//! - the same call (plain, with `updatedSince`, or continuing a changeset) after the school
//!   uploads again with every unreleased plain field changed answers the same rows, `RowHash`,
//!   `LastUpdated` and changeset block, byte for byte;
//! - after the school then deletes random rows of every set (an incident with its pupils'
//!   rows, a pupil with their records), a changeset lists as deleted only rows the call that
//!   began it answered;
//! - every call answers byte for byte as the same call to a stack that keeps no answered rows
//!   between calls, also once only the opt-outs changed, changed back, the sets besides the
//!   primary one changed, or the consent lost a scope.
//!
//! The expected fields come from `catalogue.toml` through a separate, naive evaluator of the
//! scope expressions. `ROLLCALL_PROPTEST_CASES` sets the number of cases (CI: 10,000).

mod generated;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::LazyLock;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use rollcall_core::catalogue::{Catalogue, Endpoint, OptionEffect, View};
use rollcall_core::ports::Clock;
use rollcall_core::scope::ScopeSet;
use rollcall_core::timestamp::Duration;
use serde_json::{Value, json};

use generated::*;

/// Field name → raw scope expression, per result set, read straight from the catalogue file.
static EXPRESSIONS: LazyLock<BTreeMap<String, BTreeMap<String, String>>> = LazyLock::new(|| {
    let doc: toml::Table = toml::from_str(include_str!("../core/catalogue.toml")).unwrap();
    let mut out = BTreeMap::new();
    for (name, rs) in doc["result_set"].as_table().unwrap() {
        let fields = rs["fields"].as_array().unwrap();
        let map = fields
            .iter()
            .map(|pair| {
                let pair = pair.as_array().unwrap();
                let (field, expr) = (pair[0].as_str().unwrap(), pair[1].as_str().unwrap());
                (field.to_owned(), expr.to_owned())
            })
            .collect();
        out.insert(name.clone(), map);
    }
    out
});

/// `A / B + C`: every `+` part needs one of its `/` names granted; `*` needs nothing.
fn naive_allows(expr: &str, granted: &ScopeSet) -> bool {
    expr.trim() == "*"
        || expr
            .split('+')
            .all(|clause| clause.split('/').any(|s| granted.contains(s.trim())))
}

fn released(set: &str, field: &str, granted: &ScopeSet) -> bool {
    EXPRESSIONS[set]
        .get(field)
        .is_some_and(|e| naive_allows(e, granted))
}

/// The stored endpoints (computed ones are covered by the catalogue-wide opt-out test).
fn endpoints() -> Vec<&'static Endpoint> {
    Catalogue::get()
        .endpoints()
        .iter()
        .filter(|e| e.view == View::Stored)
        .collect()
}

/// One generated case.
#[derive(Debug, Clone)]
struct Case {
    endpoint: usize,
    granted: Vec<String>,
    students_out: Vec<bool>,
    staff_out: Vec<bool>,
    contacts_out: Vec<bool>,
    options: Vec<bool>,
    /// 0: a plain read; 1: `updatedSince`; 2: a changeset continued.
    delta: u8,
    select: Option<Vec<usize>>,
    filters: Vec<(usize, usize)>,
    picks: Vec<usize>,
    /// Which rows a later upload deletes, and whether each set loses different ones
    /// ([`delete_rows`]).
    deletions: (Vec<bool>, bool),
}

fn case() -> impl Strategy<Value = Case> {
    let endpoint_count = endpoints().len();
    let scopes: Vec<String> = Catalogue::get().scopes().iter().cloned().collect();
    (
        0..endpoint_count,
        proptest::sample::subsequence(scopes.clone(), 1..scopes.len()),
        proptest::collection::vec(any::<bool>(), STUDENTS.len()),
        proptest::collection::vec(any::<bool>(), STAFF.len()),
        proptest::collection::vec(any::<bool>(), CONTACTS.len()),
        proptest::collection::vec(any::<bool>(), 12),
        0u8..3,
        proptest::option::weighted(0.3, proptest::collection::vec(0usize..64, 1..4)),
        proptest::collection::vec((0usize..16, 0usize..8), 0..3),
        proptest::collection::vec(0usize..8, 1..4),
        (proptest::collection::vec(any::<bool>(), 8), any::<bool>()),
    )
        .prop_map(
            |(
                endpoint,
                granted,
                students_out,
                staff_out,
                contacts_out,
                options,
                delta,
                select,
                filters,
                picks,
                deletions,
            )| Case {
                endpoint,
                granted,
                students_out,
                staff_out,
                contacts_out,
                options,
                delta,
                select,
                filters,
                picks,
                deletions,
            },
        )
}

/// A filter value for parameter `name` of `endpoint`: a person id, a date, or a stored token.
fn filter_value(
    endpoint: &Endpoint,
    filter_index: usize,
    choice: usize,
) -> Option<(String, String)> {
    let named: Vec<_> = endpoint
        .filters
        .iter()
        .filter(|f| f.name.is_some())
        .collect();
    let filter = named.get(filter_index % named.len().max(1))?;
    let name = filter.name.clone()?;
    let value = match filter.op {
        rollcall_core::catalogue::FilterOp::On
        | rollcall_core::catalogue::FilterOp::From
        | rollcall_core::catalogue::FilterOp::To => "2026-09-21".to_owned(),
        _ => {
            let pool: Vec<&str> = STUDENTS
                .iter()
                .chain(&STAFF)
                .chain(&CONTACTS)
                .copied()
                .collect();
            if choice % 2 == 0 {
                pool[choice % pool.len()].to_owned()
            } else {
                format!("{}-{}", endpoint.primary().stored, choice % 2)
            }
        }
    };
    Some((name, value))
}

async fn run_case(world: &World, case: &Case) -> Result<(), TestCaseError> {
    world.clock.advance(Duration::seconds(1));
    let token = &world.fresh_token().await;
    let catalogue = Catalogue::get();
    let endpoint = endpoints()[case.endpoint];
    let granted: ScopeSet = case.granted.iter().cloned().collect();
    // Arrange: the data of both schools, the consent and the opt-outs.
    let body = upload_body(SCHOOL, endpoint, &case.picks);
    let (status, answer) = world.upload(&world.agent, body).await;
    prop_assert_eq!(status, 200, "{}", answer);
    let body = upload_body(OTHER, endpoint, &case.picks);
    let (status, _) = world.upload(&world.other_agent, body).await;
    prop_assert_eq!(status, 200);
    world.grant(&granted).await;
    let chosen = |pool: &[&str], out: &[bool]| -> Vec<String> {
        pool.iter()
            .zip(out)
            .filter(|(_, o)| **o)
            .map(|(p, _)| (*p).to_owned())
            .collect()
    };
    let students_out = chosen(&STUDENTS, &case.students_out);
    let staff_out = chosen(&STAFF, &case.staff_out);
    let contacts_out = chosen(&CONTACTS, &case.contacts_out);
    let (status, answer) = world
        .opt_out(json!({"studentIds": students_out, "staffIds": staff_out,
                        "contactIds": contacts_out}))
        .await;
    prop_assert_eq!(status, 200, "{}", answer);

    // Act: the call.
    let options: Vec<&String> = endpoint
        .options
        .keys()
        .zip(&case.options)
        .filter(|(_, on)| **on)
        .map(|(o, _)| o)
        .collect();
    let primary_rs = catalogue.result_set(&endpoint.primary().stored).unwrap();
    let select: Option<Vec<&str>> = case.select.as_ref().map(|fields| {
        fields
            .iter()
            .map(|i| primary_rs.fields[i % primary_rs.fields.len()].name.as_str())
            .collect()
    });
    let mut params: Vec<(String, String)> = required_filters(endpoint);
    for (index, choice) in &case.filters {
        if let Some((name, value)) = filter_value(endpoint, *index, *choice)
            && !params.iter().any(|(n, _)| n.eq_ignore_ascii_case(&name))
        {
            params.push((name, value));
        }
    }
    if !options.is_empty() {
        params.push((
            "options".into(),
            options
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(","),
        ));
    }
    if let Some(select) = &select {
        params.push(("select".into(), select.join(",")));
    }
    let auth = format!("Idaas {token}");
    let at = |params: &[(String, String)]| {
        let query = serde_urlencoded::to_string(params).unwrap();
        format!("/api/v1/School/{SCHOOL}/{}?{query}", endpoint.path)
    };
    let mut began_with = None;
    match case.delta {
        1 => params.push((
            "updatedSince".into(),
            world.clock.now().minus(Duration::seconds(30)).to_xod(),
        )),
        2 => {
            let mut start = params.clone();
            start.push(("changedRows".into(), "*".into()));
            let (status, answer) = world.read(&at(&start), &auth).await?;
            if let Some(hash) = answer["__changedRows__"][0]["NextChangedRows"].as_str() {
                prop_assert_eq!(status, 200);
                params.push(("changedRows".into(), hash.to_owned()));
                began_with = Some(ids_of(&answer, &endpoint.primary().name));
            }
        }
        _ => {}
    }
    let path = at(&params);
    let (status, answer) = world.read(&path, &auth).await?;

    // The school uploads again a second later with every plain field the consent does not
    // release changed: nothing the partner sees may move (rows, RowHash, LastUpdated,
    // updatedSince, changesets), only the times of the upload itself.
    world.clock.advance(Duration::seconds(1));
    let changed = upload_body_changing(SCHOOL, endpoint, &case.picks, &|set, field| {
        !released(set, field, &granted)
    });
    let (upload, _) = world.upload(&world.agent, changed).await;
    prop_assert_eq!(upload, 200);
    let (again_status, again) = world.read(&path, &auth).await?;
    prop_assert_eq!(again_status, status, "{}", again);
    prop_assert_eq!(
        comparable(&again),
        comparable(&answer),
        "unreleased fields changed what {} answers",
        path
    );
    if let Some(answered) = began_with {
        world.clock.advance(Duration::seconds(1));
        let mut body = upload_body(SCHOOL, endpoint, &case.picks);
        let stored = &endpoint.primary().stored;
        let before = ids_of(&body["resultSets"], stored);
        delete_rows(&mut body, &case.deletions);
        let removed: BTreeSet<String> = before
            .difference(&ids_of(&body["resultSets"], stored))
            .cloned()
            .collect();
        let (upload, _) = world.upload(&world.agent, body).await;
        prop_assert_eq!(upload, 200);
        let (_, after) = world.read(&path, &auth).await?;
        // Earlier cases' deletions may be listed too (a changeset that began with no rows
        // continues from the start of time), as the consent in force would answer them.
        let deleted = ids_of(&after, &format!("{}_deleted", endpoint.primary().name));
        let unseen: Vec<&String> = deleted
            .intersection(&removed)
            .filter(|id| !answered.contains(*id))
            .collect();
        prop_assert!(
            unseen.is_empty(),
            "{} lists as deleted {:?}, which its changeset never answered ({:?})",
            path,
            unseen,
            answered
        );
    }

    // Answers kept between calls follow what is shared: the same call once only the opt-outs
    // changed (every choice flipped), once they are back (the answers kept before may serve
    // again), then once only the consent lost a scope; each is held to the same call made
    // afresh ([`World::read`]).
    let flipped = |out: &[bool]| out.iter().map(|o| !o).collect::<Vec<bool>>();
    for (students, staff, contacts) in [
        (
            flipped(&case.students_out),
            flipped(&case.staff_out),
            flipped(&case.contacts_out),
        ),
        (
            case.students_out.clone(),
            case.staff_out.clone(),
            case.contacts_out.clone(),
        ),
    ] {
        let (status, answer) = world
            .opt_out(json!({"studentIds": chosen(&STUDENTS, &students),
                            "staffIds": chosen(&STAFF, &staff),
                            "contactIds": chosen(&CONTACTS, &contacts)}))
            .await;
        prop_assert_eq!(status, 200, "{}", answer);
        world.read(&path, &auth).await?;
    }
    // Then once only the other sets changed (every pick moved on): whom rows are about, the
    // codes people go by and what filters map through may all have moved, the primary rows not.
    let moved: Vec<usize> = case.picks.iter().map(|pick| pick + 1).collect();
    let mut others = upload_body(SCHOOL, endpoint, &moved);
    if let Some(sets) = others["resultSets"].as_object_mut() {
        sets.remove(&endpoint.primary().stored);
        if !sets.is_empty() {
            world.clock.advance(Duration::seconds(1));
            let (upload, answer) = world.upload(&world.agent, others).await;
            prop_assert_eq!(upload, 200, "{}", answer);
            world.read(&path, &auth).await?;
        }
    }
    if let Some((_, narrower)) = case.granted.split_first()
        && !narrower.is_empty()
    {
        world.grant(&narrower.iter().cloned().collect()).await;
        world.read(&path, &auth).await?;
    }

    // Assert.
    let mut text = answer.clone();
    if let Some(object) = text.as_object_mut() {
        object.remove("__pagination__");
        object.remove("__changedRows__");
    }
    let text = text.to_string();
    prop_assert!(
        !text.contains(OTHER),
        "another school's data in {}: {}",
        path,
        text
    );
    for set in &endpoint.sets {
        let rs = catalogue.result_set(&set.stored).unwrap();
        for field in &rs.fields {
            if !released(&rs.name, &field.name, &granted) {
                let marker = format!("~{}~{}~", rs.name, field.name);
                prop_assert!(
                    !text.contains(&marker),
                    "unreleased {} in {}: {}",
                    marker,
                    path,
                    text
                );
            }
        }
    }
    if status != 200 {
        prop_assert!(
            matches!(status, 400 | 403 | 503),
            "{} answered {}: {}",
            path,
            status,
            answer
        );
        return Ok(());
    }
    let staff_codes: Vec<String> = staff_out
        .iter()
        .flat_map(|t| {
            [
                format!("StaffCode-{t}"),
                format!("IdaasId-{t}"),
                format!("ExternalId-{t}"),
            ]
        })
        .collect();
    let student_aliases: Vec<String> = students_out
        .iter()
        .flat_map(|s| [format!("IdaasId-{s}"), format!("ExternalId-{s}")])
        .collect();
    for id in students_out.iter().chain(&staff_out).chain(&contacts_out) {
        for form in [format!("\"{id}\""), format!("{id},"), format!(",{id}\"")] {
            prop_assert!(
                !text.contains(&form),
                "opted-out {} in {}: {}",
                id,
                path,
                text
            );
        }
    }
    for alias in staff_codes.iter().chain(&student_aliases) {
        prop_assert!(
            !text.contains(alias.as_str()),
            "opted-out alias {} in {}: {}",
            alias,
            path,
            text
        );
    }
    if !staff_out.is_empty() {
        prop_assert!(
            !text.contains("NAME-T"),
            "a staff name while staff are opted out: {}",
            text
        );
    }
    // A count of pupils would count the opted-out too: it is left out while any pupil is.
    if !students_out.is_empty() {
        for set in &endpoint.sets {
            let rs = catalogue.result_set(&set.stored).unwrap();
            let counts = rs.people.mentions.iter().filter(|m| {
                m.shape == rollcall_core::catalogue::Shape::Count
                    && m.kind == rollcall_core::catalogue::PersonKind::Student
            });
            for count in counts {
                for row in answer[&set.name].as_array().into_iter().flatten() {
                    prop_assert!(
                        row.get(&count.field).is_none_or(Value::is_null),
                        "{} while pupils are opted out: {}",
                        count.field,
                        row
                    );
                }
            }
        }
    }
    for (position, set) in endpoint
        .answered(&options.iter().map(|s| (*s).clone()).collect())
        .enumerate()
    {
        let rs = catalogue.result_set(&set.stored).unwrap();
        let rows = answer[&set.name].as_array();
        prop_assert!(rows.is_some(), "{} missing from {}", set.name, text);
        let hidden: BTreeSet<&str> = endpoint
            .options
            .iter()
            .filter(|(name, _)| !options.contains(name))
            .flat_map(|(_, effect)| match effect {
                OptionEffect::Columns(c) => c.iter().map(String::as_str).collect(),
                _ => vec![],
            })
            .collect();
        let expected: BTreeSet<&str> = rs
            .fields
            .iter()
            .map(|f| f.name.as_str())
            .filter(|f| released(&rs.name, f, &granted) && !set.omit.contains(*f))
            .filter(|f| position > 0 || !hidden.contains(f))
            .filter(|f| {
                position > 0
                    || select
                        .as_ref()
                        .is_none_or(|s| *f == "Id" || s.iter().any(|x| x.eq_ignore_ascii_case(f)))
            })
            .collect();
        for row in rows.unwrap() {
            let keys: BTreeSet<&str> = row
                .as_object()
                .unwrap()
                .keys()
                .map(String::as_str)
                .collect();
            prop_assert_eq!(
                &keys,
                &expected,
                "{}.{} in {}",
                endpoint.path,
                set.name,
                path
            );
        }
    }
    Ok(())
}

/// The `Id`s of `set`'s rows in an answer (none where it has no such set).
fn ids_of(answer: &Value, set: &str) -> BTreeSet<String> {
    answer[set]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|row| row["Id"].as_str().map(str::to_owned))
        .collect()
}

/// Removes from every set of an upload body the rows `picked` says: row `n` of every set
/// where `picked[n % 8]` (an incident goes with the rows naming its pupils, row `n` of a
/// related set naming row `n % 2` of the primary), or with `shifted`, row `n` of the `k`-th
/// set where `picked[(n + 3k) % 8]`, so sets lose different rows.
fn delete_rows(body: &mut Value, (picked, shifted): &(Vec<bool>, bool)) {
    let sets = body["resultSets"].as_object_mut().unwrap();
    for (k, rows) in sets.values_mut().enumerate() {
        let shift = if *shifted { 3 * k } else { 0 };
        let mut n = 0;
        rows.as_array_mut().unwrap().retain(|_| {
            n += 1;
            !picked[(n - 1 + shift) % picked.len()]
        });
    }
}

#[test]
fn no_answer_holds_anything_the_consent_and_opt_outs_withhold() {
    let cases: u32 = std::env::var("ROLLCALL_PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let world = runtime.block_on(world());
    let everything: ScopeSet = Catalogue::get().scopes().clone();
    runtime.block_on(world.grant(&everything));
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&case(), |case| runtime.block_on(run_case(&world, &case)))
        .unwrap();
    drop(world.ports);
}
