//! The agent's calls about itself: which school its key belongs to (`GET /agent/v1/whoami`),
//! so an installer can check its configuration before the first upload; what rollcall holds
//! of the school (`GET /agent/v1/resultsets`), for `rollcall-agent status`; and its health
//! report after each run (`POST /agent/v1/health`), which the school's admin reads.

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use rollcall_core::agent_health::{HealthRecord, MAX_REPORT_BYTES, held_view, parse_health_report};
use rollcall_http::ApiResult;
use rollcall_http::credentials::AgentSchool;
use rollcall_http::request::read_body;
use serde_json::{Value, json};

use crate::IngestState;

/// `GET /agent/v1/whoami`: the key's school, by number and name.
pub(crate) async fn whoami(AgentSchool(school): AgentSchool) -> Json<Value> {
    tracing::info!(estab = %school.estab, "agent identified");
    Json(json!({ "estab": school.estab, "name": school.name }))
}

/// `GET /agent/v1/resultsets`: the key's school's current versions, as
/// [`held_view`] describes them.
pub(crate) async fn held(
    State(state): State<IngestState>,
    AgentSchool(school): AgentSchool,
) -> ApiResult<Json<Value>> {
    let current = state.versions.current_versions(&school.estab).await?;
    Ok(Json(json!({
        "estab": school.estab,
        "resultSets": held_view(&current, state.clock.now()),
    })))
}

/// `POST /agent/v1/health`: the agent's report on itself, checked and kept as its school's
/// latest, stamped with the time it was received.
pub(crate) async fn report_health(
    State(state): State<IngestState>,
    AgentSchool(school): AgentSchool,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Json<Value>> {
    let bytes = read_body(
        body,
        &headers,
        MAX_REPORT_BYTES,
        "send one report of the agent's state, listing each result set once",
    )
    .await?;
    let report = parse_health_report(&bytes)?;
    let record = HealthRecord {
        estab: school.estab.clone(),
        received_at: state.clock.now(),
        report,
    };
    state.agent_health.put_agent_health(&record).await?;
    tracing::info!(
        estab = %school.estab,
        result_sets = record.report.result_sets.len(),
        pending = record.report.outbox.pending,
        failing = record.report.last_error.is_some(),
        "agent health recorded"
    );
    Ok(Json(
        json!({ "receivedAt": record.received_at.to_rfc3339() }),
    ))
}
