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
//! - no opted-out person's id, code or IDaaS id appears in a successful answer;
//! - no token of the other school appears;
//! - every row answered carries exactly the fields the consent releases (less omissions,
//!   option columns not asked for, and `select`).
//!
//! The expected fields come from `catalogue.toml` through a separate, naive evaluator of the
//! scope expressions. `ROLLCALL_PROPTEST_CASES` sets the number of cases (CI: 10,000).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, LazyLock};

use axum::Router;
use axum::body::Body;
use http_body_util::BodyExt;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use rollcall_consent::registry::{register_partner, register_school};
use rollcall_core::catalogue::{Catalogue, Endpoint, OptionEffect, ResultSet, View};
use rollcall_core::ports::{ManualClock, Ports};
use rollcall_core::scope::ScopeSet;
use rollcall_core::timestamp::Timestamp;
use rollcall_infra::local::LocalPorts;
use secrecy::ExposeSecret;
use serde_json::{Value, json};
use tower::ServiceExt;

const SCHOOL: &str = "9991001";
const OTHER: &str = "9991002";
const PARTNER: &str = "property-partner";
const STUDENTS: [&str; 5] = ["S1", "S2", "S3", "S4", "S5"];
const STAFF: [&str; 4] = ["T1", "T2", "T3", "T4"];
const CONTACTS: [&str; 4] = ["C1", "C2", "C3", "C4"];
const T0: Timestamp = Timestamp::from_millis(1_790_000_000_000);

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

/// A stored value: a person id, list or code where the field refers to one, else a token
/// naming the school, set and field.
fn value(school: &str, rs: &ResultSet, field: &str, n: usize, pick: usize) -> Value {
    let student = STUDENTS[(n + pick) % STUDENTS.len()];
    let staff = STAFF[(n + pick) % STAFF.len()];
    let contact = CONTACTS[(n + pick) % CONTACTS.len()];
    let people = &rs.people;
    if let Some(subject) = people.subjects.iter().find(|s| s.field == field) {
        return json!(match &subject.reference {
            rollcall_core::catalogue::Reference::Kind(kind) => match kind {
                rollcall_core::catalogue::PersonKind::Student => student,
                rollcall_core::catalogue::PersonKind::Staff => staff,
                rollcall_core::catalogue::PersonKind::Contact => contact,
            },
            rollcall_core::catalogue::Reference::Typed { .. } => [student, staff, contact][n % 3],
        });
    }
    if field == "PersonType" {
        return json!(["Student", "Staff", "Contact"][n % 3]);
    }
    if let Some(mention) = people.mentions.iter().find(|m| m.field == field) {
        use rollcall_core::catalogue::{PersonKind, Shape};
        let pool: Vec<&str> = match mention.kind {
            PersonKind::Student => STUDENTS.to_vec(),
            PersonKind::Staff => STAFF.to_vec(),
            PersonKind::Contact => CONTACTS.to_vec(),
        };
        let form = |id: &str| match mention.alias.as_deref() {
            Some(alias) => format!("{alias}-{id}"),
            None => id.to_owned(),
        };
        return json!(match mention.shape {
            Shape::One => form(pool[(n + pick) % pool.len()]),
            Shape::List => [pool[pick % pool.len()], pool[(pick + 1) % pool.len()]]
                .map(form)
                .join(","),
            Shape::Name => format!("NAME-{}", pool[pick % pool.len()]),
        });
    }
    // The person's own aliases: `StaffCode` of T2 is `StaffCode-T2`, and so on.
    if let Some(kind) = own_kind(&rs.name) {
        // The row's own id (see `upload_body`), not a picked one.
        let id = [
            STUDENTS[n % STUDENTS.len()],
            STAFF[n % STAFF.len()],
            CONTACTS[n % CONTACTS.len()],
        ][kind];
        if field == "StaffCode" || field == "IdaasId" || field == "ExternalId" {
            return json!(format!("{field}-{id}"));
        }
    }
    if field.contains("Date") {
        return json!("2026-09-21T09:00:00");
    }
    json!(format!("{school}~{}~{field}~{n}", rs.name))
}

fn own_kind(set: &str) -> Option<usize> {
    ["Students", "Staff", "Contacts"]
        .iter()
        .position(|s| *s == set)
}

/// Every stored set an endpoint's plan may read: its answered sets, its via sets, the own
/// sets of people (for aliases) and StudentContacts (for orphaned contacts).
fn sets_for(endpoint: &Endpoint) -> BTreeSet<String> {
    let catalogue = Catalogue::get();
    let mut sets: BTreeSet<String> = endpoint.sets.iter().map(|s| s.stored.clone()).collect();
    for filter in &endpoint.filters {
        let mut via = filter.via.as_ref();
        while let Some(hop) = via {
            sets.insert(hop.set.clone());
            via = hop.through.as_deref();
        }
    }
    for own in ["Students", "Staff", "Contacts", "StudentContacts"] {
        sets.insert(own.to_owned());
    }
    sets.retain(|s| catalogue.stored_set(s).is_some());
    sets
}

fn upload_body(school: &str, endpoint: &Endpoint, picks: &[usize]) -> Value {
    let catalogue = Catalogue::get();
    let mut sets = serde_json::Map::new();
    for name in sets_for(endpoint) {
        let rs = catalogue.stored_set(&name).unwrap();
        let own = own_kind(&name);
        let count = match own {
            Some(0) => STUDENTS.len(),
            Some(1) => STAFF.len(),
            Some(_) => CONTACTS.len(),
            None => 4,
        };
        let rows: Vec<Value> = (0..count)
            .map(|n| {
                let pick = picks[n % picks.len()];
                let mut row = serde_json::Map::new();
                for field in rs.fields.iter().filter(|f| !f.is_computed()) {
                    let v = if field.name == "Id"
                        && own.is_none()
                        && rs.people.subjects.iter().all(|s| s.field != "Id")
                    {
                        json!(format!("{}-{n}", rs.name))
                    } else if field.name == "Id" && own.is_some() {
                        json!([&STUDENTS[..], &STAFF[..], &CONTACTS[..]][own.unwrap()][n])
                    } else if rs.link.as_deref() == Some(field.name.as_str()) {
                        json!(format!("{}-{}", endpoint.primary().stored, n % 2))
                    } else {
                        value(school, rs, &field.name, n, pick)
                    };
                    row.insert(field.name.clone(), v);
                }
                Value::Object(row)
            })
            .collect();
        // Sets keyed by a person need unique ids.
        let rows = dedupe_ids(rows);
        sets.insert(name, Value::Array(rows));
    }
    json!({ "resultSets": sets })
}

fn dedupe_ids(rows: Vec<Value>) -> Vec<Value> {
    let mut seen = BTreeSet::new();
    rows.into_iter()
        .filter(|row| seen.insert(row["Id"].to_string()))
        .collect()
}

struct World {
    app: Router,
    _dir: tempfile::TempDir,
    ports: Ports,
    admin: String,
    agent: String,
    other_agent: String,
    management: String,
}

async fn send(
    app: &Router,
    method: &str,
    path: &str,
    auth: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = axum::http::Request::builder()
        .method(method)
        .uri(path)
        .header("authorization", auth);
    if body.is_some() {
        request = request.header("content-type", "application/json");
    }
    let body = body.map_or(Body::empty(), |b| Body::from(b.to_string()));
    let response = app
        .clone()
        .oneshot(request.body(body).unwrap())
        .await
        .unwrap();
    let status = response.status().as_u16();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

async fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(T0));
    let local = LocalPorts::open(dir.path()).unwrap();
    let ports = local.ports(clock);
    let app = rollcall::local_stack(&ports, None);
    let control = ports.control.as_ref();
    let school = register_school(control, SCHOOL, "Property School", T0)
        .await
        .unwrap();
    let other = register_school(control, OTHER, "Other School", T0)
        .await
        .unwrap();
    let all: Vec<String> = Catalogue::get().scopes().iter().cloned().collect();
    let partner = register_partner(control, PARTNER, "Property Partner", &all, T0)
        .await
        .unwrap();
    World {
        app,
        _dir: dir,
        ports,
        admin: school.admin_key.expose_secret().to_owned(),
        agent: school.agent_key.expose_secret().to_owned(),
        other_agent: other.agent_key.expose_secret().to_owned(),
        management: partner.management_secret.expose_secret().to_owned(),
    }
}

impl World {
    async fn grant(&self, scopes: &ScopeSet) {
        let (status, body) = send(
            &self.app,
            "PUT",
            &format!("/admin/v1/consents/{PARTNER}"),
            &format!("Bearer {}", self.admin),
            Some(json!({ "scopes": scopes })),
        )
        .await;
        assert_eq!(status, 200, "{body}");
    }

    async fn token(&self) -> String {
        let (_, schools) = send(
            &self.app,
            "GET",
            "/partner/v1/schools",
            &format!("Bearer {}", self.management),
            None,
        )
        .await;
        let password = schools["schools"][0]["password"]
            .as_str()
            .unwrap()
            .to_owned();
        let (status, body) = send(
            &self.app,
            "POST",
            "/idaas/sts/STS/GetToken",
            "",
            Some(
                json!({"relyingParty": PARTNER, "thirdPartyId": "XporterOnDemand",
                        "estab": SCHOOL, "password": password}),
            ),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        body["token"].as_str().unwrap().to_owned()
    }
}

/// One generated case.
#[derive(Debug, Clone)]
struct Case {
    endpoint: usize,
    granted: Vec<String>,
    students_out: Vec<bool>,
    staff_out: Vec<bool>,
    options: Vec<bool>,
    select: Option<Vec<usize>>,
    filters: Vec<(usize, usize)>,
    picks: Vec<usize>,
}

fn case() -> impl Strategy<Value = Case> {
    let endpoint_count = endpoints().len();
    let scopes: Vec<String> = Catalogue::get().scopes().iter().cloned().collect();
    (
        0..endpoint_count,
        proptest::sample::subsequence(scopes.clone(), 1..scopes.len()),
        proptest::collection::vec(any::<bool>(), STUDENTS.len()),
        proptest::collection::vec(any::<bool>(), STAFF.len()),
        proptest::collection::vec(any::<bool>(), 12),
        proptest::option::weighted(0.3, proptest::collection::vec(0usize..64, 1..4)),
        proptest::collection::vec((0usize..16, 0usize..8), 0..3),
        proptest::collection::vec(0usize..8, 1..4),
    )
        .prop_map(
            |(endpoint, granted, students_out, staff_out, options, select, filters, picks)| Case {
                endpoint,
                granted,
                students_out,
                staff_out,
                options,
                select,
                filters,
                picks,
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

fn required_filters(endpoint: &Endpoint) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = endpoint
        .filters
        .iter()
        .filter(|f| f.required)
        .filter_map(|f| Some((f.name.clone()?, "2026-09-21".to_owned())))
        .collect();
    if let Some(first) = endpoint.required_any.first() {
        out.push((first.clone(), "S1".to_owned()));
    }
    out
}

async fn run_case(world: &World, token: &str, case: &Case) -> Result<(), TestCaseError> {
    let catalogue = Catalogue::get();
    let endpoint = endpoints()[case.endpoint];
    let granted: ScopeSet = case.granted.iter().cloned().collect();
    // Arrange: the data of both schools, the consent and the opt-outs.
    let body = upload_body(SCHOOL, endpoint, &case.picks);
    let (status, answer) = send(
        &world.app,
        "POST",
        "/agent/v1/extracts",
        &format!("Bearer {}", world.agent),
        Some(body),
    )
    .await;
    prop_assert_eq!(status, 200, "{}", answer);
    let body = upload_body(OTHER, endpoint, &case.picks);
    let (status, _) = send(
        &world.app,
        "POST",
        "/agent/v1/extracts",
        &format!("Bearer {}", world.other_agent),
        Some(body),
    )
    .await;
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
    let (status, answer) = send(
        &world.app,
        "PUT",
        &format!("/admin/v1/opt-outs/{PARTNER}"),
        &format!("Bearer {}", world.admin),
        Some(json!({"studentIds": students_out, "staffIds": staff_out})),
    )
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
    let query = serde_urlencoded::to_string(&params).unwrap();
    let path = format!("/api/v1/School/{SCHOOL}/{}?{query}", endpoint.path);
    let (status, answer) = send(&world.app, "GET", &path, &format!("Idaas {token}"), None).await;

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
    for id in students_out.iter().chain(&staff_out) {
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
    let token = runtime.block_on(world.token());
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&case(), |case| {
            runtime.block_on(run_case(&world, &token, &case))
        })
        .unwrap();
    drop(world.ports);
}
