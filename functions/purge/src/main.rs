//! The purge function in AWS Lambda, run by an EventBridge schedule.

use lambda_runtime::{LambdaEvent, service_fn};
use rollcall_infra::telemetry::{LogFormat, init};
use rollcall_purge::{PurgeState, handle};
use serde_json::Value;

#[global_allocator]
static ALLOCATOR: rollcall_infra::Allocator = rollcall_infra::Allocator;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    init(LogFormat::Json);
    let ports = rollcall_infra::ports_from_env().await?;
    let state = PurgeState::new(&ports);
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| {
        let state = state.clone();
        async move { Ok::<_, lambda_runtime::Error>(handle(&state, event).await?) }
    }))
    .await
}
