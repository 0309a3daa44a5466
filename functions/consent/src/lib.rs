//! Consent: the school admin API (requests, grants, narrowing, revocation, access log,
//! per-person opt-outs), the partner's token issuing (XoD GetToken) and management API. The
//! check every partner call goes through is the edge's
//! ([`rollcall_http::credentials::PartnerToken`]), shared with serve.
//!
//! Routes:
//! - `POST /idaas/sts/STS/GetToken` (XoD; `password` = the per-school secret)
//! - `GET /admin/v1/requests`, `PUT /admin/v1/consents/{partner}`,
//!   `POST /admin/v1/consents/{partner}/revoke`, `GET /admin/v1/access-log`,
//!   `GET`/`PUT /admin/v1/opt-outs/{partner}`, `GET /admin/v1/agent`,
//!   `GET /admin/v1/subjects/{kind}/{id}`, `POST /admin/v1/refresh`,
//!   `GET /admin/v1/refresh/{task}`
//!   (`Authorization: Bearer <admin key>`)
//! - `GET /partner/v1/schools` (`Authorization: Bearer <management secret>`)
//! - the consent page: `/admin/` and the screens under it (a session cookie; see `page`)
//!
//! # Layout
//! - [`routes`]: the route table, listed once; [`ConsentState`]: the ports consent holds.
//! - `admin`: requests, grants and narrowing, revocation, the access log; the path's partner.
//! - `optouts`: a school's per-person opt-outs for one partner.
//! - `agent`: the school's view of its agent (its latest health report, uploads per set).
//! - `subjects`: subject access exports (everything held about one person, and who read it).
//! - `refresh`: the school asking its agent to send result sets again (one open task).
//! - `page`: the consent page at `/admin/` (sign-in, sessions, screens over the handlers above).
//! - `token`: XoD GetToken.
//! - `management`: the partner's management API (its schools and their secrets).
//! - `secrets`: per-school partner secrets, issued, hashed and sealed.
//! - [`registry`]: registering schools and partners (the operator's CLI).

mod access_log;
mod admin;
mod agent;
mod management;
mod optouts;
mod page;
mod partners;
mod refresh;
pub mod registry;
mod secrets;
mod subjects;
mod token;

use std::sync::Arc;

use axum::Router;
use axum::extract::FromRef;
use axum::routing::{get, post, put};
use rollcall_core::ports::{
    AccessLog, AgentHealthStore, Clock, ConsentStore, DataKeyGenerator, DataKeyUnwrapper,
    ObjectStore, OptOutStore, PartnerStore, Ports, SchoolStore, TaskStore, TokenStore,
    VersionStore,
};
use rollcall_http::Routes;
use rollcall_http::credentials::{PartnerKeys, SchoolKeys};

/// How long a partner's token lasts.
pub const TOKEN_LIFETIME: rollcall_core::timestamp::Duration =
    rollcall_core::timestamp::Duration::hours(1);

/// The consent function's ports: it reads schools and partners but never registers them,
/// issues tokens, writes consents and opt-outs, and reads the agent's health and the school's
/// current versions (for the admin's view of its agent).
#[derive(Clone)]
pub struct ConsentState {
    schools: Arc<dyn SchoolStore>,
    partners: Arc<dyn PartnerStore>,
    consents: Arc<dyn ConsentStore>,
    tokens: Arc<dyn TokenStore>,
    opt_outs: Arc<dyn OptOutStore>,
    access_log: Arc<dyn AccessLog>,
    agent_health: Arc<dyn AgentHealthStore>,
    versions: Arc<dyn VersionStore>,
    /// The school's own agent tasks (refreshes).
    tasks: Arc<dyn TaskStore>,
    /// Stored extracts, read for subject access exports only.
    objects: Arc<dyn ObjectStore>,
    /// Seals per-school partner secrets (their own key-service context); unwraps the data
    /// keys of stored extracts for subject access exports.
    key_generator: Arc<dyn DataKeyGenerator>,
    key_unwrapper: Arc<dyn DataKeyUnwrapper>,
    clock: Arc<dyn Clock>,
}

impl ConsentState {
    pub fn new(ports: &Ports) -> Self {
        let control = &ports.control;
        Self {
            schools: control.schools.clone(),
            partners: control.partners.clone(),
            consents: control.consents.clone(),
            tokens: control.tokens.clone(),
            opt_outs: control.opt_outs.clone(),
            access_log: control.access_log.clone(),
            agent_health: control.agent_health.clone(),
            versions: control.versions.clone(),
            tasks: control.tasks.clone(),
            objects: ports.objects.clone(),
            key_generator: ports.key_generator.clone(),
            key_unwrapper: ports.key_unwrapper.clone(),
            clock: ports.clock.clone(),
        }
    }
}

/// Admin keys are checked against the schools ([`rollcall_http::credentials::AdminSchool`]).
impl FromRef<ConsentState> for SchoolKeys {
    fn from_ref(state: &ConsentState) -> Self {
        SchoolKeys(state.schools.clone())
    }
}

/// Management secrets are checked against the partners
/// ([`rollcall_http::credentials::ManagingPartner`]).
impl FromRef<ConsentState> for PartnerKeys {
    fn from_ref(state: &ConsentState) -> Self {
        PartnerKeys(state.partners.clone())
    }
}

/// The consent function's routes, listed once.
pub fn routes() -> Routes<ConsentState> {
    let routes = Routes::default()
        .route("/idaas/sts/STS/GetToken", post(token::get_token))
        .route("/admin/v1/requests", get(admin::requests))
        .route("/admin/v1/partners", get(partners::partners))
        .route("/admin/v1/consents/{partner}", put(admin::grant))
        .route("/admin/v1/consents/{partner}/revoke", post(admin::revoke))
        .route("/admin/v1/access-log", get(access_log::access_log))
        .route("/admin/v1/agent", get(agent::agent))
        .route("/admin/v1/subjects/{kind}/{id}", get(subjects::subject))
        .route("/admin/v1/refresh", post(refresh::refresh))
        .route("/admin/v1/refresh/{task}", get(refresh::refresh_status))
        .route(
            "/admin/v1/opt-outs/{partner}",
            get(optouts::get).put(optouts::put),
        )
        .route("/partner/v1/schools", get(management::schools));
    page::routes(routes)
}

pub fn router(state: ConsentState) -> Router {
    routes().into_router(state)
}
