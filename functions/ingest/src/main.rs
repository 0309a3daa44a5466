//! The ingest function in AWS Lambda: the agent API's router and the staged uploads' S3
//! events, through one handler.

use lambda_runtime::{LambdaEvent, service_fn};
use rollcall_infra::telemetry::{LogFormat, init};
use rollcall_ingest::lambda::{Error, handle_event};
use rollcall_ingest::{IngestState, router, routes};
use serde_json::Value;

#[global_allocator]
static ALLOCATOR: rollcall_infra::Allocator = rollcall_infra::Allocator;

#[tokio::main]
async fn main() -> Result<(), Error> {
    init(LogFormat::Json);
    let ports = rollcall_infra::ports_from_env().await?;
    let state = IngestState::new(&ports);
    let app = rollcall_http::app(router(state.clone()), &routes().paths());
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| {
        let (state, app) = (state.clone(), app.clone());
        async move { handle_event(&state, &app, event).await }
    }))
    .await
}
