//! The sample events in `events/`, each through its function's Lambda handler: API Gateway
//! (HTTP API, payload 2.0) requests through `lambda_http`'s conversion into the function's
//! router wrapped by the shared edge (the ingest function's whole handler, which also takes
//! S3 events); the EventBridge schedule through the purge handler. They run in order, as one
//! school's day: upload, grant, token, read; the S3 event of a large upload on its own.

use std::path::Path;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use http_body_util::BodyExt;
use rollcall_core::model::{Estab, PartnerId, School, Token};
use rollcall_core::ports::{ManualClock, Ports};
use rollcall_core::secret::KeyHash;
use rollcall_core::timestamp::{Duration, Timestamp};
use rollcall_infra::local::LocalPorts;
use serde_json::Value;
use tower::ServiceExt;

const ESTAB: &str = "9999001";
const PARTNER: &str = "demo-homework";

fn event_text(name: &str) -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("events")
            .join(name),
    )
    .unwrap()
}

/// The credential an event carries after `prefix` (`Bearer `, `Idaas `) or in its body.
fn secret_in(name: &str, marker: &str) -> String {
    let text = event_text(name);
    let start = text
        .find(marker)
        .unwrap_or_else(|| panic!("{name} holds no {marker}"));
    text[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect()
}

async fn invoke(app: Router, event: &str) -> (u16, Value) {
    let request = lambda_http::request::from_str(&event_text(event)).unwrap();
    let (parts, body) = request.into_parts();
    let request = axum::http::Request::from_parts(parts, Body::from(body.to_vec()));
    let response = app.oneshot(request).await.unwrap();
    let status = response.status().as_u16();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap())
}

/// An event through the ingest function's Lambda handler, as its `main` runs it.
async fn invoke_ingest(ports: &Ports, event: &str) -> Value {
    let state = rollcall_ingest::IngestState::new(ports);
    let app = rollcall_http::app(
        rollcall_ingest::router(state.clone()),
        &rollcall_ingest::routes().paths(),
    );
    let payload: Value = serde_json::from_str(&event_text(event)).unwrap();
    let event = lambda_runtime::LambdaEvent::new(payload, lambda_runtime::Context::default());
    rollcall_ingest::lambda::handle_event(&state, &app, event)
        .await
        .unwrap()
}

fn consent(ports: &Ports) -> Router {
    rollcall_http::app(
        rollcall_consent::router(rollcall_consent::ConsentState::new(ports)),
        &rollcall_consent::routes().paths(),
    )
}

fn serve(ports: &Ports) -> Router {
    rollcall_http::app(
        rollcall_serve::router(rollcall_serve::ServeState::new(ports)),
        &rollcall_serve::routes().paths(),
    )
}

/// A store holding the school (under the keys the events carry) and the partner.
async fn world(dir: &Path) -> (Ports, Arc<ManualClock>) {
    let now = Timestamp::parse("2026-11-23T10:00:00Z").unwrap();
    let clock = Arc::new(ManualClock::new(now));
    let ports = LocalPorts::open(dir).unwrap().ports(clock.clone());
    let school = School {
        estab: Estab::parse(ESTAB).unwrap(),
        name: "Event School".into(),
        agent_key_hash: KeyHash::of(secret_in("agent-upload.json", "rca_").as_bytes()),
        admin_key_hash: KeyHash::of(secret_in("admin-grant.json", "rcs_").as_bytes()),
        row_hash_key: vec![7; 32],
        created_at: now,
    };
    ports.control.registry.insert_school(&school).await.unwrap();
    rollcall_consent::registry::register_partner(
        ports.control.registry.as_ref(),
        PARTNER,
        "Event Partner",
        &["Student".to_owned(), "StudentDemographic".to_owned()],
        now,
    )
    .await
    .unwrap();
    (ports, clock)
}

#[tokio::test]
async fn every_event_through_its_lambda_handler() {
    let dir = tempfile::tempdir().unwrap();
    let (ports, clock) = world(dir.path()).await;

    let response = invoke_ingest(&ports, "agent-upload.json").await;
    assert_eq!(response["statusCode"], 200, "{response}");
    let body: Value = serde_json::from_str(response["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["resultSets"]["Students"]["added"], 2);

    let (status, body) = invoke(consent(&ports), "admin-grant.json").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["scopes"], serde_json::json!(["Student"]));

    // The school's secret is issued at random; make it the one the GetToken event sends.
    let estab = Estab::parse(ESTAB).unwrap();
    let partner = PartnerId::parse(PARTNER).unwrap();
    let mut granted = ports
        .control
        .consents
        .consent(&estab, &partner)
        .await
        .unwrap()
        .unwrap();
    let expected = Some(granted.version);
    granted.secret_hash = KeyHash::of(secret_in("partner-get-token.json", "rcp_").as_bytes());
    granted.version += 1;
    ports
        .control
        .consents
        .put_consent(&granted, expected)
        .await
        .unwrap();
    let (status, body) = invoke(consent(&ports), "partner-get-token.json").await;
    assert_eq!(status, 200, "{body}");
    assert!(body["token"].as_str().unwrap().starts_with("rct_"));

    // The read event carries a fixed token: issue it as GetToken would have.
    let now = clock_now(&clock);
    let token = Token {
        hash: KeyHash::of(secret_in("partner-read.json", "rct_").as_bytes()),
        partner,
        estab,
        secret_generation: granted.secret_generation,
        issued_at: now,
        expires_at: now.plus(Duration::hours(1)),
    };
    ports.control.tokens.insert_token(&token).await.unwrap();
    let (status, body) = invoke(serve(&ports), "partner-read.json").await;
    assert_eq!(status, 200, "{body}");
    let first = &body["Students"][0];
    assert_eq!(first["Forename"], "Siobhán");
    assert!(
        first.get("Ethnicity").is_none(),
        "StudentDemographic was requested, not granted"
    );
    assert!(first.get("DateOfBirth").is_none());
    assert_eq!(body["__pagination__"][0]["RowCount"], 2);

    let (status, body) = invoke(serve(&ports), "partner-read-bad-page.json").await;
    assert_eq!(status, 400);
    assert!(
        body["ExceptionMessage"]
            .as_str()
            .unwrap()
            .contains("page must be 1 or more")
    );

    // A day and a half on, the scheduled purge disposes of the expired token.
    clock.advance(Duration::hours(36));
    let schedule: Value = serde_json::from_str(&event_text("purge-schedule.json")).unwrap();
    let event = lambda_runtime::LambdaEvent::new(schedule, lambda_runtime::Context::default());
    let report = rollcall_purge::handle(&rollcall_purge::PurgeState::new(&ports), event)
        .await
        .unwrap();
    assert_eq!(report.tokens_deleted, 2);
    assert_eq!(
        report.expired_versions, 0,
        "the data is stale, not yet 30 days out of date"
    );
}

#[tokio::test]
async fn a_large_upload_is_ingested_from_its_s3_event() {
    let dir = tempfile::tempdir().unwrap();
    let (ports, clock) = world(dir.path()).await;
    // The agent asked for the URL the event's key names, and put the extract there.
    let event: Value = serde_json::from_str(&event_text("s3-object-created.json")).unwrap();
    let key = event["Records"][0]["s3"]["object"]["key"].as_str().unwrap();
    let (estab, id) = rollcall_core::staging::parse_object_key(key).unwrap();
    let extract = serde_json::json!({"resultSets": {"Students": [
        {"Id": "20001", "Forename": "Aoife", "Surname": "Byrne", "YearGroup": "Year 7"},
        {"Id": "20002", "Forename": "Kacper", "Surname": "Wiśniewski", "YearGroup": "Year 7"},
        {"Id": "20003", "Forename": "Amara", "Surname": "Okafor", "YearGroup": "Year 8"},
    ]}})
    .to_string()
    .into_bytes();
    let upload = rollcall_core::staging::StagedUpload::new(
        estab.clone(),
        id.clone(),
        extract.len() as u64,
        clock_now(&clock),
    );
    ports
        .control
        .staged_uploads
        .insert_staged_upload(&upload)
        .await
        .unwrap();
    ports.objects.put(key, extract).await.unwrap();

    let outcome = invoke_ingest(&ports, "s3-object-created.json").await;

    assert_eq!(outcome, serde_json::json!(["stored"]));
    let record = ports
        .control
        .staged_uploads
        .staged_upload(&estab, &id)
        .await
        .unwrap()
        .unwrap();
    match record.state {
        rollcall_core::staging::StagedState::Stored { result } => {
            assert_eq!(result["resultSets"]["Students"]["added"], 3)
        }
        other => panic!("not stored: {other:?}"),
    }
    assert!(ports.objects.list("incoming/").await.unwrap().is_empty());
    let current = ports
        .control
        .versions
        .current_version(&estab, "Students")
        .await
        .unwrap();
    assert_eq!(current.map(|v| v.rows), Some(3));

    // S3 delivers events at least once: the second delivery changes nothing.
    let again = invoke_ingest(&ports, "s3-object-created.json").await;
    assert_eq!(again, serde_json::json!(["skipped: already taken"]));
}

fn clock_now(clock: &ManualClock) -> Timestamp {
    use rollcall_core::ports::Clock;
    clock.now()
}
