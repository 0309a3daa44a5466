//! The partner API, wire-compatible with XoD v1: consent-filtered reads of a school's result
//! sets. Every answer holds only the fields the consent in force now releases, and decrypts
//! only the scope groups those fields live in.
//!
//! Routes (`Authorization: Idaas <token>`):
//! - `GET /api/v1/School/{estab}/{endpoint}` and `/{endpoint}/{id}`, with `page`, `pageSize`,
//!   `options`, `select`, `updatedSince`, `changedRows`, `onlyGetDbStatus` and the `version`
//!   that `NextPage` carries.
//! - Info (`info`): `GET /api/v1/TokenDetails`, `/Scopes`, `/Queries`, `/Usage`, `/GDPRIDs`,
//!   `/Logs`, `/RunQuery/?id=edubase.search`.
//! - `GET /api/v1/openapi.json`: the OpenAPI 3.1 document, generated from the catalogue.
//! - Write-backs queued for the school's agent ([`writeback`]): `POST /api/v1/Attendance/{estab}/`,
//!   `/api/v1/AttendanceAsync/{estab}/`, `/api/v1/Writeback/Conduct`, `/ConductAsync`,
//!   `/SeatingPlan`, `/?id=efw.Detention`; `GET /api/v1/Writeback/Status/{trackingId}`.
//!
//! Every route checks the partner's token with [`rollcall_http::credentials::PartnerToken`];
//! what it may see is decided by core's read plan ([`rollcall_core::plan`]) alone.
//!
//! # Layout
//! - [`routes`]: the route table, listed once (the router and the edge's case-insensitive
//!   XoD paths are both made from it); [`ServeState`]: the ports serve holds.
//! - `read`: a data call as a pipeline (parse, plan, load, select, project, page, log).
//! - `query`: the call's paging, delta, `select` and option parameters; `filter`: its filters.
//! - `rows`: which version to read, and its scope groups decrypted into rows.
//! - `computed`: the endpoints rollcall computes from stored sets (Counts, Health, a
//!   person's timetable).
//! - `info`: TokenDetails, Scopes, Queries, Usage, Logs, GDPRIDs, RunQuery.
//! - [`writeback`]: write-backs checked and queued as tasks for the school's agent.
//! - `access_log`: every answered or refused call, recorded for the school.
//! - [`openapi`]: the OpenAPI document, generated from the catalogue.

mod access_log;
mod computed;
mod filter;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
mod info;
pub mod openapi;
mod query;
mod read;
mod rows;
pub mod writeback;

use std::sync::Arc;

use axum::Router;
use axum::extract::FromRef;
use axum::routing::{get, post};
use rollcall_core::ports::{
    AccessLog, Clock, ConsentStore, DataKeyGenerator, DataKeyUnwrapper, ObjectStore, OptOutStore,
    Ports, SchoolStore, TaskStore, TokenStore, VersionStore,
};
use rollcall_core::read_cache::{AnswerMemo, DEFAULT_ROWS_BUDGET, KeyCache};
use rollcall_core::vault::ReadCache;
use rollcall_http::Routes;
use rollcall_http::credentials::PartnerGate;

/// How long a synchronous write-back waits for the agent's outcome before answering 202 (under
/// API Gateway's 30-second limit).
pub const WRITEBACK_WAIT: std::time::Duration = std::time::Duration::from_secs(20);

/// The partner API's ports: it checks tokens and consents, reads versions, opt-outs and the
/// school list, queues tasks and writes the access log; it cannot register, grant or publish.
#[derive(Clone)]
pub struct ServeState {
    tokens: Arc<dyn TokenStore>,
    consents: Arc<dyn ConsentStore>,
    schools: Arc<dyn SchoolStore>,
    versions: Arc<dyn VersionStore>,
    opt_outs: Arc<dyn OptOutStore>,
    tasks: Arc<dyn TaskStore>,
    access_log: Arc<dyn AccessLog>,
    objects: Arc<dyn ObjectStore>,
    /// The key service behind a [`KeyCache`]: many reads of a version cost one call.
    key_unwrapper: Arc<dyn DataKeyUnwrapper>,
    /// Opened versions and decrypted rows kept between reads ([`rollcall_core::read_cache`]).
    cache: Arc<ReadCache>,
    /// Rows as read plans answered them, kept between reads ([`AnswerMemo`]).
    answers: Arc<AnswerMemo>,
    /// Seals write-back payloads only (the key policy limits it to that context).
    key_generator: Arc<dyn DataKeyGenerator>,
    clock: Arc<dyn Clock>,
    writeback_wait: std::time::Duration,
}

impl ServeState {
    pub fn new(ports: &Ports) -> Self {
        let control = &ports.control;
        Self {
            tokens: control.tokens.clone(),
            consents: control.consents.clone(),
            schools: control.schools.clone(),
            versions: control.versions.clone(),
            opt_outs: control.opt_outs.clone(),
            tasks: control.tasks.clone(),
            access_log: control.access_log.clone(),
            objects: ports.objects.clone(),
            key_unwrapper: Arc::new(KeyCache::new(ports.key_unwrapper.clone())),
            cache: Arc::new(ReadCache::new(read_cache_budget())),
            answers: Arc::new(AnswerMemo::new(read_cache_budget())),
            key_generator: ports.key_generator.clone(),
            clock: ports.clock.clone(),
            writeback_wait: WRITEBACK_WAIT,
        }
    }

    /// The same state with its answered rows kept within `budget` bytes (0 keeps none: every
    /// call answers its rows itself).
    pub fn with_answer_memo(mut self, budget: usize) -> Self {
        self.answers = Arc::new(AnswerMemo::new(budget));
        self
    }

    /// The same state with another bound on a synchronous write-back's wait.
    pub fn with_writeback_wait(mut self, wait: std::time::Duration) -> Self {
        self.writeback_wait = wait;
        self
    }
}

/// The bound on the read cache's rows, on its indexes and on the answered rows kept:
/// `ROLLCALL_READ_CACHE_MB` each (0 keeps none), else [`DEFAULT_ROWS_BUDGET`].
fn read_cache_budget() -> usize {
    std::env::var("ROLLCALL_READ_CACHE_MB")
        .ok()
        .and_then(|mb| mb.trim().parse::<usize>().ok())
        .map_or(DEFAULT_ROWS_BUDGET, |mb| mb.saturating_mul(1 << 20))
}

/// Every partner route checks its token through this ([`rollcall_http::credentials`]).
impl FromRef<ServeState> for PartnerGate {
    fn from_ref(state: &ServeState) -> Self {
        PartnerGate {
            tokens: state.tokens.clone(),
            consents: state.consents.clone(),
            clock: state.clock.clone(),
        }
    }
}

/// The partner API's routes, listed once (the edge derives its case-insensitive prefixes
/// from them).
pub fn routes() -> Routes<ServeState> {
    Routes::default()
        .route("/api/v1/School/{estab}/{endpoint}", get(read::endpoint))
        .route(
            "/api/v1/School/{estab}/{endpoint}/{id}",
            get(read::endpoint_by_id),
        )
        .route("/api/v1/openapi.json", get(openapi::serve))
        .route("/api/v1/TokenDetails", get(info::token_details))
        .route("/api/v1/Scopes", get(info::scopes))
        .route("/api/v1/Queries", get(info::queries))
        .route("/api/v1/Usage", get(info::usage))
        .route("/api/v1/GDPRIDs", get(info::gdpr_ids))
        .route("/api/v1/Logs", get(info::logs))
        .route("/api/v1/RunQuery", get(info::run_query))
        .route("/api/v1/Attendance/{estab}", post(writeback::attendance))
        .route(
            "/api/v1/AttendanceAsync/{estab}",
            post(writeback::attendance_async),
        )
        .route("/api/v1/Writeback/Conduct", post(writeback::conduct))
        .route(
            "/api/v1/Writeback/ConductAsync",
            post(writeback::conduct_async),
        )
        .route(
            "/api/v1/Writeback/SeatingPlan",
            post(writeback::seating_plan),
        )
        .route("/api/v1/Writeback", post(writeback::by_id))
        .route("/api/v1/Writeback/Status/{id}", get(writeback::status))
}

pub fn router(state: ServeState) -> Router {
    routes().into_router(state)
}
