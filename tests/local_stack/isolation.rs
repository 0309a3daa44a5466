//! Isolation between schools and between partners, generated from the functions' route
//! tables. Every route whose path carries a parameter is listed in [`COVERED`] with what the
//! parameter names, so a new route fails [`every_route_with_a_parameter_is_covered`] until it
//! is probed here. For every id a route takes (in its path or query) and every credential of
//! the wrong school or partner, another school's or partner's object is refused exactly as one
//! that does not exist: the same status and the same text, once the id asked for is masked.
//! Each probe is also made for the caller's own object, which must be answered, so a refusal
//! for another reason (a bad body, a missing scope) cannot pass for isolation.

use reqwest::header::{CONTENT_TYPE, COOKIE, SET_COOKIE};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::world::World;

const A: &str = "9990001";
const B: &str = "9990002";
/// A school nobody registered.
const NOWHERE: &str = "9990009";
const P: &str = "iso-partner";
const Q: &str = "iso-other";
const SCOPES: &[&str] = &["Student", "WritebackAttendance"];

/// What each parameter of a route names, for every route with one. A route missing here fails
/// [`every_route_with_a_parameter_is_covered`]; the probes below make each listed one.
const COVERED: &[(&str, &[(&str, Covers)])] = &[
    (
        "/api/v1/School/{estab}/{endpoint}",
        &[("estab", Covers::School), ("endpoint", Covers::NotAnObject)],
    ),
    (
        "/api/v1/School/{estab}/{endpoint}/{id}",
        &[
            ("estab", Covers::School),
            ("endpoint", Covers::NotAnObject),
            ("id", Covers::Person),
        ],
    ),
    ("/api/v1/Attendance/{estab}", &[("estab", Covers::School)]),
    (
        "/api/v1/AttendanceAsync/{estab}",
        &[("estab", Covers::School)],
    ),
    ("/api/v1/Writeback/Status/{id}", &[("id", Covers::Task)]),
    ("/agent/v1/uploads/{id}", &[("id", Covers::Upload)]),
    ("/agent/v1/tasks/{id}/result", &[("id", Covers::Task)]),
    (
        "/admin/v1/consents/{partner}",
        &[("partner", Covers::SchoolsViewOfPartner)],
    ),
    (
        "/admin/v1/consents/{partner}/revoke",
        &[("partner", Covers::SchoolsViewOfPartner)],
    ),
    (
        "/admin/v1/opt-outs/{partner}",
        &[("partner", Covers::SchoolsViewOfPartner)],
    ),
    (
        "/admin/v1/subjects/{kind}/{id}",
        &[("kind", Covers::NotAnObject), ("id", Covers::Person)],
    ),
    ("/admin/v1/refresh/{task}", &[("task", Covers::Refresh)]),
    (
        "/admin/partners/{partner}",
        &[("partner", Covers::SchoolsViewOfPartner)],
    ),
    (
        "/admin/partners/{partner}/grant",
        &[("partner", Covers::SchoolsViewOfPartner)],
    ),
    (
        "/admin/partners/{partner}/revoke",
        &[("partner", Covers::SchoolsViewOfPartner)],
    ),
    (
        "/admin/partners/{partner}/opt-outs",
        &[("partner", Covers::SchoolsViewOfPartner)],
    ),
    (
        "/admin/subjects/{kind}/{id}",
        &[("kind", Covers::NotAnObject), ("id", Covers::Person)],
    ),
    (
        "/admin/subjects/{kind}/{id}/export",
        &[("kind", Covers::NotAnObject), ("id", Covers::Person)],
    ),
];

/// What a route parameter names, and so how it is probed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Covers {
    /// A school: another school's number is refused like an unregistered one.
    School,
    /// A pupil (or staff member, contact) of the caller's school: another school's is refused
    /// like one nobody holds.
    Person,
    /// A write-back (and so an agent task): another school's or partner's is refused like an
    /// unknown one.
    Task,
    /// A refresh the school's admin asked for: another school's is refused like an unknown one.
    Refresh,
    /// A staged upload: another school's is refused like an unknown one.
    Upload,
    /// A partner, which is not one school's: the school sees and changes only its own
    /// consent and opt-outs for it ([`a_schools_view_of_a_partner_is_its_own`]).
    SchoolsViewOfPartner,
    /// A result set, endpoint or kind of person: a name from the catalogue, not an object.
    NotAnObject,
}

/// The parameters of a path template, in order.
fn parameters(template: &str) -> Vec<&str> {
    template
        .split('/')
        .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
        .collect()
}

#[test]
fn every_route_with_a_parameter_is_covered() {
    for template in rollcall::xod_paths() {
        let params = parameters(template);
        if params.is_empty() {
            continue;
        }
        let Some((_, covered)) = COVERED.iter().find(|(t, _)| *t == template) else {
            panic!(
                "{template} takes {params:?}: add it to COVERED in tests/local_stack/isolation.rs \
                 with a probe of each id it takes"
            );
        };
        let named: Vec<&str> = covered.iter().map(|(p, _)| *p).collect();
        assert_eq!(named, params, "{template}: COVERED lists other parameters");
    }
    for (template, _) in COVERED {
        assert!(
            rollcall::xod_paths().contains(template),
            "{template} is in COVERED but no longer routed"
        );
    }
}

/// A credential, as a request carries it.
#[derive(Clone)]
enum Credential {
    Token(String),
    Bearer(String),
    Session(String),
    None,
}

/// A request body.
#[derive(Clone)]
enum Body {
    Json(Value),
    Form(Vec<(String, String)>),
    Empty,
}

/// One probe: a route asked by `who` for its own object, another school's or partner's, and
/// one that does not exist, each with the id to mask in the answer.
struct Probe {
    what: String,
    method: Method,
    who: Credential,
    body: Body,
    own: String,
    foreign: (String, String),
    missing: (String, String),
}

struct Raw {
    status: StatusCode,
    text: String,
}

async fn send(base: &str, method: &Method, path: &str, who: &Credential, body: &Body) -> Raw {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let mut request = client.request(method.clone(), format!("{base}{path}"));
    request = match who {
        Credential::Token(token) => request.header("authorization", format!("Idaas {token}")),
        Credential::Bearer(key) => request.header("authorization", format!("Bearer {key}")),
        Credential::Session(cookie) => request.header(COOKIE, cookie),
        Credential::None => request,
    };
    request = match body {
        Body::Json(value) => request
            .header(CONTENT_TYPE, "application/json")
            .body(value.to_string()),
        Body::Form(fields) => request
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(serde_urlencoded::to_string(fields).unwrap()),
        Body::Empty => request,
    };
    let response = request.send().await.unwrap();
    Raw {
        status: response.status(),
        text: response.text().await.unwrap(),
    }
}

/// `text` with every occurrence of `id` masked.
fn masked(text: &str, id: &str) -> String {
    text.replace(id, "<id>")
}

impl Probe {
    async fn run(&self, base: &str) {
        let foreign = send(base, &self.method, &self.foreign.0, &self.who, &self.body).await;
        let missing = send(base, &self.method, &self.missing.0, &self.who, &self.body).await;
        let what = &self.what;
        assert_eq!(
            (foreign.status, masked(&foreign.text, &self.foreign.1)),
            (missing.status, masked(&missing.text, &self.missing.1)),
            "{what}: another's object is answered unlike one that does not exist"
        );
        // The caller's own object is answered, and otherwise than one that does not exist:
        // the probe reached the lookup of the id.
        let own = send(base, &self.method, &self.own, &self.who, &self.body).await;
        assert!(
            own.status.is_success(),
            "{what}: the caller's own object answered {}: {}",
            own.status,
            own.text
        );
        assert_ne!(
            (own.status, own.text),
            (missing.status, missing.text),
            "{what}: the caller's own object is answered as one that does not exist"
        );
    }
}

/// A pupil only A holds (the generator numbers every school's pupils alike).
const ONLY_AT_A: &str = "77777";

/// What `estab` uploads: `pupils` generated ones (and at A, one more: [`ONLY_AT_A`]), and the
/// attendance codes write-backs use.
fn school(estab: &str, pupils: usize) -> Value {
    let mut body = rollcall_core::synthetic::school(estab, pupils, 4).upload_body();
    if estab == A {
        let students = body["resultSets"]["Students"].as_array_mut().unwrap();
        let mut extra = students[0].clone();
        extra["Id"] = json!(ONLY_AT_A);
        students.push(extra);
    }
    body["resultSets"]["AttendCodes"] = json!([
        {"Id": "1", "Mark": "/", "Description": "Present (AM)"},
        {"Id": "2", "Mark": "\\", "Description": "Present (PM)"},
    ]);
    body
}

/// Two schools, B holding pupils A does not; partner P granted at both, partner Q at A.
async fn world() -> World {
    World::build(A)
        .data(school(A, 6))
        .school(B, Some(school(B, 12)))
        .partner(P, SCOPES)
        .partner(Q, SCOPES)
        .grant(A, P, SCOPES)
        .grant(B, P, SCOPES)
        .grant(A, Q, SCOPES)
        .start()
        .await
}

/// Pupil ids `estab` uploaded in `world` (the first school's, or B's from its generator).
fn pupils_of(world: &World, estab: &str) -> Vec<String> {
    if estab == world.estab {
        return world.pupils();
    }
    school(B, 12)["resultSets"]["Students"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| {
            row["Id"]
                .as_str()
                .map_or_else(|| row["Id"].to_string(), str::to_owned)
        })
        .collect()
}

/// A pupil held by B and not by A.
fn pupil_only_at_b(world: &World) -> String {
    let at_a = pupils_of(world, A);
    pupils_of(world, B)
        .into_iter()
        .find(|id| !at_a.contains(id))
        .expect("B holds a pupil A does not")
}

/// An id of the same shape as `id` that names nothing: its last character changed.
fn forged(id: &str) -> String {
    let mut chars: Vec<char> = id.chars().collect();
    let last = chars.last_mut().expect("an id");
    *last = match *last {
        '0' => '1',
        'a' => 'b',
        'A' => 'B',
        c if c.is_ascii_digit() => '0',
        c if c.is_ascii_lowercase() => 'a',
        _ => 'A',
    };
    chars.into_iter().collect()
}

/// Today's attendance marks for `pupils`.
fn marks(world: &World, pupils: &[String]) -> Value {
    let date = world.today();
    json!({ "Marks": pupils.iter().map(|p| json!({
        "StudentId": p, "MarkType": "S", "Date": date, "Session": "AM", "Mark": "/",
    })).collect::<Vec<_>>() })
}

/// Posts an asynchronous attendance write-back: its tracking id (also the agent's task id).
async fn tracking(world: &World, token: &str, estab: &str) -> String {
    let pupils = pupils_of(world, estab);
    let body = marks(world, &pupils[..1]);
    let answer = world
        .stack
        .send(
            Method::POST,
            &format!("/api/v1/AttendanceAsync/{estab}"),
            Some(&format!("Idaas {token}")),
            Some(body.to_string().into_bytes()),
        )
        .await
        .expect(StatusCode::OK);
    answer["TrackingId"].as_str().unwrap().to_owned()
}

/// A staged upload's id, asked for by `agent`.
async fn upload_id(world: &World, agent: &str) -> String {
    let answer = world
        .stack
        .send(
            Method::POST,
            "/agent/v1/uploads",
            Some(&format!("Bearer {agent}")),
            Some(json!({ "contentLength": 5 }).to_string().into_bytes()),
        )
        .await
        .expect(StatusCode::CREATED);
    let status_url = answer["statusUrl"]
        .as_str()
        .unwrap_or_else(|| panic!("an upload's status URL: {answer}"));
    status_url.rsplit('/').next().unwrap().to_owned()
}

/// A refresh task asked for by `admin`.
async fn refresh_task(world: &World, admin: &str) -> String {
    let answer = world
        .stack
        .send(
            Method::POST,
            "/admin/v1/refresh",
            Some(&format!("Bearer {admin}")),
            Some(
                json!({ "resultSets": ["Students"] })
                    .to_string()
                    .into_bytes(),
            ),
        )
        .await
        .expect(StatusCode::ACCEPTED);
    answer["task"].as_str().unwrap().to_owned()
}

/// A signed-in session of `admin` (its cookie).
async fn session(world: &World, admin: &str) -> String {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let response = client
        .post(format!("{}/admin/sign-in", world.stack.base))
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(serde_urlencoded::to_string([("key", admin)]).unwrap())
        .send()
        .await
        .unwrap();
    response.headers()[SET_COOKIE]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned()
}

/// The `__changedRows__` hash a token's `changedRows=*` read of `estab`'s pupils answers.
async fn changeset(world: &World, token: &str, estab: &str) -> String {
    let body = world
        .stack
        .read(
            token,
            &format!("/api/v1/School/{estab}/Students?changedRows=*"),
        )
        .await
        .expect(StatusCode::OK);
    body["__changedRows__"][0]["NextChangedRows"]
        .as_str()
        .unwrap_or_else(|| panic!("a changeset hash: {}", body["__changedRows__"]))
        .to_owned()
}

/// The page pin (`version`) the first one-row page of a token's walk of `estab`'s pupils
/// carries to the next.
async fn page_pin(world: &World, token: &str, estab: &str) -> String {
    let body = world
        .stack
        .read(
            token,
            &format!("/api/v1/School/{estab}/Students?page=1&pageSize=1"),
        )
        .await
        .expect(StatusCode::OK);
    let next = body["__pagination__"][0]["NextPage"].as_str().unwrap();
    let pin = next
        .split('&')
        .find_map(|pair| pair.strip_prefix("version="))
        .unwrap_or_else(|| panic!("a version pin in {next}"));
    pin.to_owned()
}

#[tokio::test]
async fn another_schools_or_partners_objects_are_refused_like_ones_that_do_not_exist() {
    let world = world().await;
    let base = world.stack.base.clone();
    let token_pa = world.token_of(P, A).to_owned();
    let token_pb = world.token_of(P, B).to_owned();
    let token_qa = world.token_of(Q, A).to_owned();
    let school_a = world.school_of(A).clone();
    let school_b = world.school_of(B).clone();
    let own_pupil = pupils_of(&world, A)[0].clone();
    let their_pupil = pupil_only_at_b(&world);
    let nobody = format!("{their_pupil}0");
    assert!(!pupils_of(&world, A).contains(&nobody) && !pupils_of(&world, B).contains(&nobody));
    let partner_a = Credential::Token(token_pa.clone());
    let mut probes = Vec::new();

    // A school's number in the path: P's token for A, sent to B (which granted P too) and to
    // a school nobody registered.
    for (method, template, body) in [
        (Method::GET, "/api/v1/School/{estab}/Students", Body::Empty),
        (
            Method::GET,
            &*format!("/api/v1/School/{{estab}}/Students/{own_pupil}"),
            Body::Empty,
        ),
        (
            Method::POST,
            "/api/v1/Attendance/{estab}",
            Body::Json(marks(&world, std::slice::from_ref(&own_pupil))),
        ),
        (
            Method::POST,
            "/api/v1/AttendanceAsync/{estab}",
            Body::Json(marks(&world, std::slice::from_ref(&own_pupil))),
        ),
    ] {
        let at = |estab: &str| template.replace("{estab}", estab);
        probes.push(Probe {
            what: format!("{method} {template} with a token for another school"),
            method,
            who: partner_a.clone(),
            body,
            own: at(A),
            foreign: (at(B), B.to_owned()),
            missing: (at(NOWHERE), NOWHERE.to_owned()),
        });
    }

    // A person's id: one B holds, asked of A; and one nobody holds.
    let by_id = |id: &str| format!("/api/v1/School/{A}/Students/{id}");
    probes.push(Probe {
        what: "a pupil by id".into(),
        method: Method::GET,
        who: partner_a.clone(),
        body: Body::Empty,
        own: by_id(&own_pupil),
        foreign: (by_id(&their_pupil), their_pupil.clone()),
        missing: (by_id(&nobody), nobody.clone()),
    });
    let admin_a = Credential::Bearer(school_a.admin.clone());
    let session_a = Credential::Session(session(&world, &school_a.admin).await);
    for (who, template) in [
        (admin_a.clone(), "/admin/v1/subjects/student/{id}"),
        (session_a.clone(), "/admin/subjects/student/{id}"),
        (session_a.clone(), "/admin/subjects/student/{id}/export"),
    ] {
        let at = |id: &str| template.replace("{id}", id);
        probes.push(Probe {
            what: format!("GET {template}: a subject access of another school's pupil"),
            method: Method::GET,
            who,
            body: Body::Empty,
            own: at(&own_pupil),
            foreign: (at(&their_pupil), their_pupil.clone()),
            missing: (at(&nobody), nobody.clone()),
        });
    }

    // Write-back tracking ids: P's at B and Q's at A, asked with P's token for A.
    let own_tracking = tracking(&world, &token_pa, A).await;
    let tracking_pb = tracking(&world, &token_pb, B).await;
    let tracking_qa = tracking(&world, &token_qa, A).await;
    let status = |id: &str| format!("/api/v1/Writeback/Status/{id}");
    for (whose, foreign) in [("P's at B", &tracking_pb), ("Q's at A", &tracking_qa)] {
        probes.push(Probe {
            what: format!("a write-back's status: {whose}"),
            method: Method::GET,
            who: partner_a.clone(),
            body: Body::Empty,
            own: status(&own_tracking),
            foreign: (status(foreign), foreign.clone()),
            missing: (status(&forged(foreign)), forged(foreign)),
        });
    }

    // Agent tasks and staged uploads: B's, asked with A's agent key.
    let agent_a = Credential::Bearer(school_a.agent.clone());
    let result = |id: &str| format!("/agent/v1/tasks/{id}/result");
    probes.push(Probe {
        what: "an agent's task result for another school's task".into(),
        method: Method::POST,
        who: agent_a.clone(),
        body: Body::Json(json!({ "succeeded": true, "result": [] })),
        own: result(&own_tracking),
        foreign: (result(&tracking_pb), tracking_pb.clone()),
        missing: (result(&forged(&tracking_pb)), forged(&tracking_pb)),
    });
    let own_upload = upload_id(&world, &school_a.agent).await;
    let their_upload = upload_id(&world, &school_b.agent).await;
    let upload = |id: &str| format!("/agent/v1/uploads/{id}");
    probes.push(Probe {
        what: "another school's staged upload".into(),
        method: Method::GET,
        who: agent_a.clone(),
        body: Body::Empty,
        own: upload(&own_upload),
        foreign: (upload(&their_upload), their_upload.clone()),
        missing: (upload(&forged(&their_upload)), forged(&their_upload)),
    });

    // Refresh tasks: B's, asked with A's admin key.
    let own_refresh = refresh_task(&world, &school_a.admin).await;
    let their_refresh = refresh_task(&world, &school_b.admin).await;
    let refresh = |id: &str| format!("/admin/v1/refresh/{id}");
    probes.push(Probe {
        what: "another school's refresh".into(),
        method: Method::GET,
        who: admin_a.clone(),
        body: Body::Empty,
        own: refresh(&own_refresh),
        foreign: (refresh(&their_refresh), their_refresh.clone()),
        missing: (refresh(&forged(&their_refresh)), forged(&their_refresh)),
    });

    // Ids in the query: Q's changeset hash and page pin at A, and P's own from B, continued
    // with P's token for A.
    let own_hash = changeset(&world, &token_pa, A).await;
    let students = |query: &str| format!("/api/v1/School/{A}/Students?{query}");
    for (whose, hash) in [
        ("Q's at A", changeset(&world, &token_qa, A).await),
        ("P's at B", changeset(&world, &token_pb, B).await),
    ] {
        probes.push(Probe {
            what: format!("a changeset hash: {whose}"),
            method: Method::GET,
            who: partner_a.clone(),
            body: Body::Empty,
            own: students(&format!("changedRows={own_hash}")),
            foreign: (students(&format!("changedRows={hash}")), hash.clone()),
            missing: (
                students(&format!("changedRows={}", forged(&hash))),
                forged(&hash),
            ),
        });
    }
    let own_pin = page_pin(&world, &token_pa, A).await;
    for (whose, pin) in [
        ("Q's at A", page_pin(&world, &token_qa, A).await),
        ("P's at B", page_pin(&world, &token_pb, B).await),
    ] {
        let page2 = |pin: &str| students(&format!("page=2&pageSize=1&version={pin}"));
        probes.push(Probe {
            what: format!("a page pin: {whose}"),
            method: Method::GET,
            who: partner_a.clone(),
            body: Body::Empty,
            own: page2(&own_pin),
            foreign: (page2(&pin), pin.clone()),
            missing: (page2(&forged(&pin)), forged(&pin)),
        });
    }

    // A school's secret for P, presented for another school and for one nobody registered.
    let password_a = world
        .stack
        .password(&world.management, A)
        .await
        .expect("A granted P");
    // ... and by another partner (Q, granted at A too) for A, against a wrong secret.
    let get_token = |partner: &str, estab: &str, password: &str| {
        Body::Json(json!({
            "relyingParty": partner, "thirdPartyId": "XporterOnDemand",
            "estab": estab, "password": password,
        }))
    };
    let wrong = forged(&password_a);
    for (what, foreign, missing, id) in [
        (
            "A's secret for P, presented for B",
            get_token(P, B, &password_a),
            get_token(P, NOWHERE, &password_a),
            (B, NOWHERE),
        ),
        (
            "A's secret for P, presented by Q",
            get_token(Q, A, &password_a),
            get_token(Q, A, &wrong),
            (A, A),
        ),
    ] {
        let path = "/idaas/sts/STS/GetToken";
        let foreign = send(&base, &Method::POST, path, &Credential::None, &foreign).await;
        let missing = send(&base, &Method::POST, path, &Credential::None, &missing).await;
        assert!(foreign.status.is_client_error(), "{what}: {}", foreign.text);
        assert_eq!(
            (foreign.status, masked(&foreign.text, id.0)),
            (missing.status, masked(&missing.text, id.1)),
            "{what}: refused unlike a secret that does not exist"
        );
    }

    // A's agent applies the synchronous write-backs the own probes make while they wait.
    let applier = tokio::spawn(apply_synchronous_writebacks(base.clone(), school_a.agent));
    let count = probes.len();
    for probe in probes {
        probe.run(&base).await;
    }
    applier.abort();
    assert!(count >= 17, "{count} probes");
}

/// What a school's agent does for `POST /api/v1/Attendance`: applies each such task it is
/// handed, until aborted. Other tasks are left open.
async fn apply_synchronous_writebacks(base: String, agent: String) {
    let who = Credential::Bearer(agent);
    loop {
        let open = send(&base, &Method::GET, "/agent/v1/tasks", &who, &Body::Empty).await;
        let tasks: Value = serde_json::from_str(&open.text).unwrap_or(Value::Null);
        for task in tasks["tasks"].as_array().into_iter().flatten() {
            if task["kind"] == "Writeback.Attendance" {
                let id = task["id"].as_str().unwrap();
                let result = Body::Json(json!({ "succeeded": true, "result": [] }));
                let path = format!("/agent/v1/tasks/{id}/result");
                send(&base, &Method::POST, &path, &who, &result).await;
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// A partner is no one school's: what a school's admin (key or session) reads and changes of
/// it, its consent and its opt-outs, is that school's alone.
#[tokio::test]
async fn a_schools_view_of_a_partner_is_its_own() {
    let world = world().await;
    let base = world.stack.base.clone();
    let (school_a, school_b) = (world.school_of(A).clone(), world.school_of(B).clone());
    let their_pupil = pupil_only_at_b(&world);
    let admin = |keys: &crate::support::SchoolKeys| Credential::Bearer(keys.admin.clone());
    let opt_outs = format!("/admin/v1/opt-outs/{P}");
    let put = Body::Json(json!({ "studentIds": [their_pupil] }));
    let answer = send(&base, &Method::PUT, &opt_outs, &admin(&school_b), &put).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);

    // B's opt-out is B's: A's key and A's session see none of it.
    let at_b = send(
        &base,
        &Method::GET,
        &opt_outs,
        &admin(&school_b),
        &Body::Empty,
    )
    .await;
    assert!(at_b.text.contains(&their_pupil), "{}", at_b.text);
    let at_a = send(
        &base,
        &Method::GET,
        &opt_outs,
        &admin(&school_a),
        &Body::Empty,
    )
    .await;
    assert_eq!(at_a.status, StatusCode::OK);
    assert!(!at_a.text.contains(&their_pupil), "{}", at_a.text);
    let session_a = Credential::Session(session(&world, &school_a.admin).await);
    for screen in [
        format!("/admin/partners/{P}"),
        format!("/admin/partners/{P}/opt-outs"),
    ] {
        let page = send(&base, &Method::GET, &screen, &session_a, &Body::Empty).await;
        assert_eq!(page.status, StatusCode::OK, "{screen}");
        assert!(
            !page.text.contains(&their_pupil),
            "{screen} shows B's opt-out"
        );
    }

    // A narrows, then revokes, P by key and by its page: P's consent at B is untouched.
    let narrow = Body::Json(json!({ "scopes": ["Student"] }));
    let consent = format!("/admin/v1/consents/{P}");
    let narrowed = send(&base, &Method::PUT, &consent, &admin(&school_a), &narrow).await;
    assert_eq!(narrowed.status, StatusCode::OK, "{}", narrowed.text);
    let page = send(
        &base,
        &Method::GET,
        &format!("/admin/partners/{P}"),
        &session_a,
        &Body::Empty,
    )
    .await;
    let csrf = csrf_of(&page.text);
    let revoke = Body::Form(vec![("csrf".into(), csrf), ("when".into(), "now".into())]);
    let revoked = send(
        &base,
        &Method::POST,
        &format!("/admin/partners/{P}/revoke"),
        &session_a,
        &revoke,
    )
    .await;
    assert!(
        revoked.status.is_redirection() || revoked.status.is_success(),
        "{} {}",
        revoked.status,
        revoked.text
    );
    let partners = send(
        &base,
        &Method::GET,
        "/admin/v1/partners",
        &admin(&school_b),
        &Body::Empty,
    )
    .await;
    let partners: Value = serde_json::from_str(&partners.text).unwrap();
    let p_at_b = partners["partners"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["partner"] == P)
        .unwrap_or_else(|| panic!("P at B: {partners}"))
        .clone();
    let granted: Vec<&str> = p_at_b["grantedScopes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(granted, SCOPES, "{p_at_b}");
    world
        .stack
        .read(
            world.token_of(P, B),
            &format!("/api/v1/School/{B}/Students"),
        )
        .await
        .expect(StatusCode::OK);
    let refused = world
        .stack
        .read(
            world.token_of(P, A),
            &format!("/api/v1/School/{A}/Students"),
        )
        .await;
    assert!(
        refused.status.is_client_error(),
        "P at A after A revoked: {}",
        refused.status
    );

    // A's revocation by key of a partner B granted changes nothing at B either.
    let revoke = format!("/admin/v1/consents/{Q}/revoke");
    let answer = send(
        &base,
        &Method::POST,
        &revoke,
        &admin(&school_b),
        &Body::Json(json!({})),
    )
    .await;
    assert!(
        answer.status.is_success() || answer.status.is_client_error(),
        "{}",
        answer.text
    );
    world
        .stack
        .read(
            world.token_of(Q, A),
            &format!("/api/v1/School/{A}/Students"),
        )
        .await
        .expect(StatusCode::OK);
}

/// The CSRF token of the first form of a page.
fn csrf_of(html: &str) -> String {
    let at = html
        .find("name=\"csrf\" value=\"")
        .expect("the page has a form with a token");
    let rest = &html[at + "name=\"csrf\" value=\"".len()..];
    rest[..rest.find('"').unwrap()].to_owned()
}

/// Every route with a parameter, its parameters filled with school A's objects, asked with
/// each of B's credentials (its partner's token, agent key, admin key and page session, and
/// none) in every method: answered exactly as with objects nobody holds.
#[tokio::test]
async fn every_route_answers_another_schools_credentials_alike_for_real_and_missing_objects() {
    let world = world().await;
    let base = world.stack.base.clone();
    let school_a = world.school_of(A).clone();
    let school_b = world.school_of(B).clone();
    let pupil = ONLY_AT_A.to_owned();
    assert!(!pupils_of(&world, B).contains(&pupil));
    let nobody = format!("{ONLY_AT_A}0");
    let task = tracking(&world, world.token_of(P, A), A).await;
    let upload = upload_id(&world, &school_a.agent).await;
    let refresh = refresh_task(&world, &school_a.admin).await;
    // A's object and one nobody holds, for each kind of parameter.
    let object = |covers: Covers| -> (String, String) {
        match covers {
            Covers::School => (A.to_owned(), NOWHERE.to_owned()),
            Covers::Person => (pupil.clone(), nobody.clone()),
            Covers::Task => (task.clone(), forged(&task)),
            Covers::Refresh => (refresh.clone(), forged(&refresh)),
            Covers::Upload => (upload.clone(), forged(&upload)),
            // Not one school's: the same in both, so only the other ids differ.
            Covers::SchoolsViewOfPartner => (P.to_owned(), P.to_owned()),
            Covers::NotAnObject => ("Students".to_owned(), "Students".to_owned()),
        }
    };
    let credentials = [
        (
            "B's partner token",
            Credential::Token(world.token_of(P, B).to_owned()),
        ),
        ("B's agent key", Credential::Bearer(school_b.agent.clone())),
        ("B's admin key", Credential::Bearer(school_b.admin.clone())),
        (
            "B's page session",
            Credential::Session(session(&world, &school_b.admin).await),
        ),
        ("no credential", Credential::None),
    ];
    let mut cases = 0;
    for (template, params) in COVERED {
        let mut real = template.to_string();
        let mut missing = template.to_string();
        let mut masks = Vec::new();
        for (name, covers) in *params {
            let (ours, none) = match (*name, *covers) {
                ("kind", _) => ("student".to_owned(), "student".to_owned()),
                (_, covers) => object(covers),
            };
            real = real.replace(&format!("{{{name}}}"), &ours);
            missing = missing.replace(&format!("{{{name}}}"), &none);
            if ours != none {
                masks.push((ours, none));
            }
        }
        if masks.is_empty() {
            // A partner is not A's object; a_schools_view_of_a_partner_is_its_own covers it.
            continue;
        }
        for method in [Method::GET, Method::POST, Method::PUT] {
            for (who, credential) in &credentials {
                let body = Body::Json(json!({}));
                let a = send(&base, &method, &real, credential, &body).await;
                let b = send(&base, &method, &missing, credential, &body).await;
                let (mut a_text, mut b_text) = (a.text.clone(), b.text.clone());
                for (ours, none) in &masks {
                    a_text = masked(&a_text, ours);
                    b_text = masked(&b_text, none);
                }
                assert_eq!(
                    (a.status, a_text),
                    (b.status, b_text),
                    "{method} {template} with {who}: A's objects answered unlike missing ones"
                );
                cases += 1;
            }
        }
    }
    assert!(cases >= 11 * 3 * 5, "{cases} cases");
}
