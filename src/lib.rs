//! The operator's side of rollcall: the local stack (the functions' routers merged into one
//! server over one set of ports) and the demo that seeds it.
//!
//! # Layout
//! - [`local_stack`]: the merged router, wrapped in the same edge as each Lambda function.
//! - [`demo`]: a synthetic school, a partner and a partial consent, seeded through the APIs.

pub mod demo;

use axum::Router;
use rollcall_consent::ConsentState;
use rollcall_core::ports::Ports;
use rollcall_ingest::IngestState;
use rollcall_serve::ServeState;

/// Every HTTP function's router over `ports`, as one application.
pub fn local_stack(ports: &Ports) -> Router {
    rollcall_http::app(
        Router::new()
            .merge(rollcall_ingest::router(IngestState::new(ports)))
            .merge(rollcall_consent::router(ConsentState::new(ports)))
            .merge(rollcall_serve::router(ServeState::new(ports))),
    )
}
