//! The operator's side of rollcall: the local stack (the functions' routers merged into one
//! server over one set of ports) and the demo that seeds it.
//!
//! # Layout
//! - [`local_stack`]: the merged router, wrapped in the same edge as each Lambda function.
//! - [`demo`]: a synthetic school, a partner and a partial consent, seeded through the APIs.
//! - [`local_bucket`]: the stand-in for S3's pre-signed PUTs of large uploads.

pub mod demo;
pub mod local_bucket;

use std::sync::Arc;

use axum::Router;
use rollcall_consent::ConsentState;
use rollcall_core::ports::Ports;
use rollcall_http::Limits;
use rollcall_infra::local::LocalUploadSigner;
use rollcall_ingest::IngestState;
use rollcall_serve::ServeState;

/// Every HTTP function's router over `ports`, as one application; with the local adapters'
/// `signer`, also the route that takes the large uploads it signs URLs for (on AWS, S3 does).
/// The abuse controls' limits come from the environment, as in Lambda.
pub fn local_stack(ports: &Ports, signer: Option<Arc<LocalUploadSigner>>) -> Router {
    let limits = Limits::from_env().unwrap_or_else(|bad| panic!("{bad}"));
    local_stack_with(ports, signer, limits)
}

/// [`local_stack`] with these abuse controls' limits.
pub fn local_stack_with(
    ports: &Ports,
    signer: Option<Arc<LocalUploadSigner>>,
    limits: Limits,
) -> Router {
    local_stack_serving(ports, signer, limits, ServeState::new(ports))
}

/// [`local_stack_with`], the partner API served from `serve` (a state configured otherwise).
pub fn local_stack_serving(
    ports: &Ports,
    signer: Option<Arc<LocalUploadSigner>>,
    limits: Limits,
    serve: ServeState,
) -> Router {
    let mut router = Router::new()
        .merge(rollcall_ingest::router(IngestState::new(ports)))
        .merge(rollcall_consent::router(ConsentState::new(ports)))
        .merge(rollcall_serve::router(serve));
    if let Some(signer) = signer {
        router = router.merge(local_bucket::router(ports, signer));
    }
    rollcall_http::app_with(router, &xod_paths(), limits)
}

/// The path templates of every HTTP function, for the edge's case-insensitive matching.
pub fn xod_paths() -> Vec<&'static str> {
    let mut paths = rollcall_ingest::routes().paths();
    paths.extend(rollcall_consent::routes().paths());
    paths.extend(rollcall_serve::routes().paths());
    paths
}
