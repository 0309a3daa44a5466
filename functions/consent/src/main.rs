//! The consent function in AWS Lambda: its router, served by `lambda_http`.

use rollcall_consent::{ConsentState, router, routes};
use rollcall_infra::telemetry::{LogFormat, init};

#[global_allocator]
static ALLOCATOR: rollcall_infra::Allocator = rollcall_infra::Allocator;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    init(LogFormat::Json);
    let ports = rollcall_infra::ports_from_env().await?;
    let paths = routes().paths();
    lambda_http::run(rollcall_http::app(
        router(ConsentState::new(&ports)),
        &paths,
    ))
    .await
}
