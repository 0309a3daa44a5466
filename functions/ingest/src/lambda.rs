//! The ingest function's Lambda handler. It receives two kinds of event: API Gateway HTTP
//! requests for the agent API, and S3 `ObjectCreated` notifications for staged uploads.

use aws_lambda_events::s3::S3Event;
use axum::Router;
use lambda_http::request::LambdaRequest;
use lambda_http::{Adapter, LambdaEvent, Service};
use serde_json::Value;

use crate::IngestState;
use crate::staged::ingest_staged;

pub type Error = lambda_http::Error;

/// Routes one invocation: an S3 event to [`ingest_staged`], anything else to the agent API's
/// router (wrapped in the shared edge) as `lambda_http::run` would.
pub async fn handle_event(
    state: &IngestState,
    app: &Router,
    event: LambdaEvent<Value>,
) -> Result<Value, Error> {
    let LambdaEvent { payload, context } = event;
    if is_s3_event(&payload) {
        let event: S3Event = serde_json::from_value(payload)?;
        let outcomes = ingest_objects(state, &event).await?;
        return Ok(serde_json::to_value(outcomes)?);
    }
    let request: LambdaRequest = serde_json::from_value(payload)?;
    let mut adapter = Adapter::from(app.clone());
    let response = adapter.call(LambdaEvent::new(request, context)).await?;
    Ok(serde_json::to_value(response)?)
}

fn is_s3_event(payload: &Value) -> bool {
    payload["Records"]
        .as_array()
        .is_some_and(|records| records.iter().any(|r| r["eventSource"] == "aws:s3"))
}

/// Every created object of the event, ingested in turn; answers what became of each.
async fn ingest_objects(state: &IngestState, event: &S3Event) -> Result<Vec<String>, Error> {
    let mut outcomes = Vec::new();
    for record in &event.records {
        let created = record
            .event_name
            .as_deref()
            .is_some_and(|name| name.starts_with("ObjectCreated:"));
        // Staged keys hold only letters, digits, '/', '.' (nothing S3 would URL-encode).
        let Some(key) = record.s3.object.key.as_deref().filter(|_| created) else {
            continue;
        };
        let outcome = ingest_staged(state, key).await.map_err(|e| e.message())?;
        outcomes.push(outcome.to_string());
    }
    Ok(outcomes)
}
