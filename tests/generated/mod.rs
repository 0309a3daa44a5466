//! The data the consent tests upload, and the in-process stack they send it to: every field
//! of every result set an endpoint reads, filled so that an answer can be searched as text.
//! A person reference holds one of a few ids (`S1`.. pupils, `T1`.. staff, `C1`.. contacts),
//! a person's own aliases say whose they are (`StaffCode-T2`), and every other value is a
//! token naming its school, result set, field and row (`9991001~Students~Forename~0`).

// Shared by several test crates, each of which uses only part of it.
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use http_body_util::BodyExt;
use proptest::prop_assert;
use proptest::test_runner::TestCaseError;
use rollcall_consent::registry::{register_partner, register_school};
use rollcall_core::catalogue::{Catalogue, Endpoint, PersonKind, Reference, ResultSet, Shape};
use rollcall_core::ports::{Clock, ManualClock, Ports};
use rollcall_core::scope::ScopeSet;
use rollcall_core::timestamp::{Duration, Timestamp};
use rollcall_infra::local::LocalPorts;
use secrecy::ExposeSecret;
use serde_json::{Value, json};
use tower::ServiceExt;

pub const SCHOOL: &str = "9991001";
pub const OTHER: &str = "9991002";
pub const PARTNER: &str = "property-partner";
pub const STUDENTS: [&str; 5] = ["S1", "S2", "S3", "S4", "S5"];
pub const STAFF: [&str; 4] = ["T1", "T2", "T3", "T4"];
pub const CONTACTS: [&str; 4] = ["C1", "C2", "C3", "C4"];
pub const T0: Timestamp = Timestamp::from_millis(1_790_000_000_000);

/// A stored value: a person id, list or code where the field refers to one, else a token
/// naming the school, set and field.
pub fn value(school: &str, rs: &ResultSet, field: &str, n: usize, pick: usize) -> Value {
    value_of(school, rs, field, n, pick, "")
}

/// [`value`], with `generation` appended to a plain token (not to an id, list, code, date or
/// type), so a second upload can change exactly the plain fields a consent does not release.
pub fn value_of(
    school: &str,
    rs: &ResultSet,
    field: &str,
    n: usize,
    pick: usize,
    generation: &str,
) -> Value {
    let student = STUDENTS[(n + pick) % STUDENTS.len()];
    let staff = STAFF[(n + pick) % STAFF.len()];
    let contact = CONTACTS[(n + pick) % CONTACTS.len()];
    let people = &rs.people;
    if let Some(subject) = people.subjects.iter().find(|s| s.field == field) {
        return json!(match &subject.reference {
            Reference::Kind(kind) => match kind {
                PersonKind::Student => student,
                PersonKind::Staff => staff,
                PersonKind::Contact => contact,
            },
            Reference::Typed { .. } => [student, staff, contact][n % 3],
        });
    }
    if field == "PersonType" {
        return json!(["Student", "Staff", "Contact"][n % 3]);
    }
    if let Some(mention) = people.mentions.iter().find(|m| m.field == field) {
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
            Shape::Count => return json!(pool.len()),
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
    json!(format!("{school}~{}~{field}~{n}{generation}", rs.name))
}

pub fn own_kind(set: &str) -> Option<usize> {
    ["Students", "Staff", "Contacts"]
        .iter()
        .position(|s| *s == set)
}

/// Every stored set an endpoint's plan may read: its answered sets, its via sets, the own
/// sets of people (for aliases) and StudentContacts (for orphaned contacts).
pub fn sets_for(endpoint: &Endpoint) -> BTreeSet<String> {
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

pub fn upload_body(school: &str, endpoint: &Endpoint, picks: &[usize]) -> Value {
    upload_body_changing(school, endpoint, picks, &|_, _| false)
}

/// [`upload_body`], with every plain token of a field `change` picks given a new value.
pub fn upload_body_changing(
    school: &str,
    endpoint: &Endpoint,
    picks: &[usize],
    change: &dyn Fn(&str, &str) -> bool,
) -> Value {
    upload_sets(
        school,
        &sets_for(endpoint),
        &endpoint.primary().stored,
        4,
        picks,
        change,
    )
}

/// The upload body of the stored sets `names`, `rows` rows each (the people's own sets one
/// row per person); a related set's link field points at rows of `linked` (`{linked}-0`,
/// `{linked}-1`).
pub fn upload_sets(
    school: &str,
    names: &BTreeSet<String>,
    linked: &str,
    rows: usize,
    picks: &[usize],
    change: &dyn Fn(&str, &str) -> bool,
) -> Value {
    let catalogue = Catalogue::get();
    let mut sets = serde_json::Map::new();
    for name in names.iter().cloned() {
        let rs = catalogue.stored_set(&name).unwrap();
        let own = own_kind(&name);
        let count = match own {
            Some(0) => STUDENTS.len(),
            Some(1) => STAFF.len(),
            Some(_) => CONTACTS.len(),
            None => rows,
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
                    } else if rs.link.as_deref() == Some(field.name.as_str())
                        // A link that holds a person (a pupil's medical notes, linked to
                        // the pupil's record) is filled as a person reference, below.
                        && rs.people.subjects.iter().all(|s| s.field != field.name)
                    {
                        json!(format!("{linked}-{}", n % 2))
                    } else {
                        let generation = if change(&rs.name, &field.name) {
                            "~v2"
                        } else {
                            ""
                        };
                        value_of(school, rs, &field.name, n, pick, generation)
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

pub fn dedupe_ids(rows: Vec<Value>) -> Vec<Value> {
    let mut seen = BTreeSet::new();
    rows.into_iter()
        .filter(|row| seen.insert(row["Id"].to_string()))
        .collect()
}

pub struct World {
    pub app: Router,
    /// The same stack over the same store, its partner API keeping no answered rows
    /// ([`rollcall_serve::ServeState::with_answer_memo`] 0): every call it answers is made
    /// afresh, which [`World::read`] holds `app`'s answers to.
    pub fresh: Router,
    pub _dir: tempfile::TempDir,
    pub ports: Ports,
    pub clock: Arc<ManualClock>,
    /// The partner's token and when it was issued (tokens last an hour; each case moves the
    /// clock on).
    pub token: std::sync::Mutex<Option<(String, Timestamp)>>,
    pub admin: String,
    pub agent: String,
    pub other_agent: String,
    pub management: String,
}

pub async fn send(
    app: &Router,
    method: &str,
    path: &str,
    auth: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let (status, bytes) = send_raw(app, method, path, auth, body).await;
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

/// [`send`], the answer's bytes as they came.
pub async fn send_raw(
    app: &Router,
    method: &str,
    path: &str,
    auth: &str,
    body: Option<Value>,
) -> (u16, Vec<u8>) {
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
    (status, bytes.to_vec())
}

pub async fn world() -> World {
    let dir = tempfile::tempdir_in("/dev/shm").unwrap();
    let clock = Arc::new(ManualClock::new(T0));
    let local = LocalPorts::open(dir.path()).unwrap();
    let ports = local.ports(clock.clone());
    // These tests walk every endpoint many times a second with one token: the abuse
    // controls' own tests are tests/local_stack/abuse.rs.
    let app = rollcall::local_stack_with(&ports, None, rollcall_http::Limits::unlimited());
    let fresh = rollcall::local_stack_serving(
        &ports,
        None,
        rollcall_http::Limits::unlimited(),
        rollcall_serve::ServeState::new(&ports).with_answer_memo(0),
    );
    let control = ports.control.registry.as_ref();
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
        fresh,
        _dir: dir,
        ports,
        clock,
        token: std::sync::Mutex::new(None),
        admin: school.admin_key.expose_secret().to_owned(),
        agent: school.agent_key.expose_secret().to_owned(),
        other_agent: other.agent_key.expose_secret().to_owned(),
        management: partner.management_secret.expose_secret().to_owned(),
    }
}

impl World {
    /// A partner's GET of `path`, sent to `app`, then at the same moment to `fresh`: status
    /// and answer, once both answered the same (answers kept between calls change nothing).
    pub async fn read(&self, path: &str, auth: &str) -> Result<(u16, Value), TestCaseError> {
        let kept = send_raw(&self.app, "GET", path, auth, None).await;
        let made = send_raw(&self.fresh, "GET", path, auth, None).await;
        prop_assert!(
            kept == made,
            "{} answered {} {} from kept answers, but {} {} made afresh",
            path,
            kept.0,
            String::from_utf8_lossy(&kept.1),
            made.0,
            String::from_utf8_lossy(&made.1)
        );
        Ok((
            kept.0,
            serde_json::from_slice(&kept.1).unwrap_or(Value::Null),
        ))
    }

    /// An agent upload with `agent_key` (the first school's or the other's): status, answer.
    pub async fn upload(&self, agent_key: &str, body: Value) -> (u16, Value) {
        send(
            &self.app,
            "POST",
            "/agent/v1/extracts",
            &format!("Bearer {agent_key}"),
            Some(body),
        )
        .await
    }

    /// Replaces the first school's opt-outs for the partner: status, answer.
    pub async fn opt_out(&self, body: Value) -> (u16, Value) {
        send(
            &self.app,
            "PUT",
            &format!("/admin/v1/opt-outs/{PARTNER}"),
            &format!("Bearer {}", self.admin),
            Some(body),
        )
        .await
    }

    pub async fn grant(&self, scopes: &ScopeSet) {
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

    /// A token that lasts for the case: the last one, or a new one when it is 50 minutes old.
    pub async fn fresh_token(&self) -> String {
        let now = self.clock.now();
        let held = self.token.lock().unwrap().clone();
        if let Some((token, issued)) = held
            && now < issued.plus(Duration::minutes(50))
        {
            return token;
        }
        let token = self.token().await;
        *self.token.lock().unwrap() = Some((token.clone(), now));
        token
    }

    pub async fn token(&self) -> String {
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

pub fn required_filters(endpoint: &Endpoint) -> Vec<(String, String)> {
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

/// An answer less what moves with every upload whatever it holds: `meta`'s time,
/// `__DbStatus__`, and the page pin (new on every walk).
pub fn comparable(answer: &Value) -> Value {
    let mut answer = answer.clone();
    if let Some(object) = answer.as_object_mut() {
        object.remove("meta");
        object.remove("__DbStatus__");
        if let Some(pages) = object
            .get_mut("__pagination__")
            .and_then(Value::as_array_mut)
        {
            for page in pages {
                page["NextPage"] = Value::Null;
            }
        }
    }
    answer
}
