//! The school's view of its agent (`GET /admin/v1/agent`): the latest health report it sent,
//! whether it has gone silent, and when each result set was last uploaded. Only the admin
//! key's own school is read.

use axum::Json;
use axum::extract::State;
use rollcall_core::agent_health::admin_view;
use rollcall_http::ApiResult;
use rollcall_http::credentials::AdminSchool;
use serde_json::Value;

use crate::ConsentState;

pub(crate) async fn agent(
    State(state): State<ConsentState>,
    AdminSchool(school): AdminSchool,
) -> ApiResult<Json<Value>> {
    let now = state.clock.now();
    let record = state.agent_health.agent_health(&school.estab).await?;
    let current = state.versions.current_versions(&school.estab).await?;
    Ok(Json(admin_view(record.as_ref(), &current, now)))
}
