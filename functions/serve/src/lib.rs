//! The partner API, wire-compatible with XoD v1: consent-filtered reads of a school's result
//! sets. Every answer holds only the fields the consent in force now releases, and decrypts
//! only the scope groups those fields live in.
//!
//! Routes (`Authorization: Idaas <token>`):
//! - `GET /api/v1/School/{estab}/{endpoint}` and `/{endpoint}/{id}`, with `page`, `pageSize`,
//!   `options`, `select`, `updatedSince`, `changedRows`, `onlyGetDbStatus` and the `version`
//!   that `NextPage` carries.

mod filter;
mod query;
mod read;
mod rows;
mod views;

use std::sync::Arc;

use axum::Router;
use axum::routing::get;
use rollcall_core::ports::{Clock, ControlStore, DataKeyUnwrapper, ObjectStore, Ports};

#[derive(Clone)]
pub struct ServeState {
    control: Arc<dyn ControlStore>,
    objects: Arc<dyn ObjectStore>,
    key_unwrapper: Arc<dyn DataKeyUnwrapper>,
    clock: Arc<dyn Clock>,
}

impl ServeState {
    pub fn new(ports: &Ports) -> Self {
        Self {
            control: ports.control.clone(),
            objects: ports.objects.clone(),
            key_unwrapper: ports.key_unwrapper.clone(),
            clock: ports.clock.clone(),
        }
    }
}

pub fn router(state: ServeState) -> Router {
    Router::new()
        .route("/api/v1/School/{estab}/{endpoint}", get(read::endpoint))
        .route(
            "/api/v1/School/{estab}/{endpoint}/{id}",
            get(read::endpoint_by_id),
        )
        .with_state(state)
}
