//! The serve function in AWS Lambda: its router, served by `lambda_http`.

use rollcall_infra::telemetry::{LogFormat, init};
use rollcall_serve::{ServeState, router, routes};

#[global_allocator]
static ALLOCATOR: rollcall_infra::Allocator = rollcall_infra::Allocator;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    init(LogFormat::Json);
    let ports = rollcall_infra::ports_from_env().await?;
    let paths = routes().paths();
    lambda_http::run(rollcall_http::app(router(ServeState::new(&ports)), &paths)).await
}
