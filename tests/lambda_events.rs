//! The sample API Gateway events in `events/`, through each function's router as Lambda
//! serves it (`lambda_http`'s event conversion, then the router wrapped by the shared edge).

use std::path::Path;

use axum::body::Body;
use http_body_util::BodyExt;
use rollcall_core::ports::SystemClock;
use rollcall_infra::local::LocalPorts;
use serde_json::Value;
use tower::ServiceExt;

async fn invoke(app: axum::Router, event: &str) -> (u16, Value) {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("events")
            .join(event),
    )
    .unwrap();
    let request = lambda_http::request::from_str(&text).unwrap();
    let (parts, body) = request.into_parts();
    let request = axum::http::Request::from_parts(parts, Body::from(body.to_vec()));
    let response = app.oneshot(request).await.unwrap();
    let status = response.status().as_u16();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap())
}

fn ports(dir: &Path) -> rollcall_core::ports::Ports {
    LocalPorts::open(dir)
        .unwrap()
        .ports(std::sync::Arc::new(SystemClock))
}

#[tokio::test]
async fn a_partner_read_with_an_unknown_token_is_refused_in_xod_form() {
    let dir = tempfile::tempdir().unwrap();
    let app = rollcall_http::app(rollcall_serve::router(rollcall_serve::ServeState::new(
        &ports(dir.path()),
    )));
    let (status, body) = invoke(app, "partner-read.json").await;
    assert_eq!(status, 401);
    assert!(
        body["ExceptionMessage"]
            .as_str()
            .unwrap()
            .contains("token is not recognised")
    );
}

#[tokio::test]
async fn a_malformed_get_token_body_is_refused_in_xod_form() {
    let dir = tempfile::tempdir().unwrap();
    let app = rollcall_http::app(rollcall_consent::router(
        rollcall_consent::ConsentState::new(&ports(dir.path())),
    ));
    let (status, body) = invoke(app, "get-token-malformed.json").await;
    assert_eq!(status, 400);
    assert!(
        body["ExceptionMessage"]
            .as_str()
            .unwrap()
            .contains("not valid JSON")
    );
}
