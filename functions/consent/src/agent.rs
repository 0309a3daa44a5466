//! The school's view of its agent (`GET /admin/v1/agent`): the latest health report it sent,
//! whether it has gone silent, when each result set was last uploaded, and the refreshes the
//! school asked for that the agent has not finished. Only the admin key's own school is read.

use axum::Json;
use axum::extract::State;
use rollcall_core::agent_health::admin_view;
use rollcall_core::task::REFRESH;
use rollcall_http::ApiResult;
use rollcall_http::credentials::AdminSchool;
use serde_json::{Value, json};

use crate::ConsentState;

pub(crate) async fn agent(
    State(state): State<ConsentState>,
    AdminSchool(school): AdminSchool,
) -> ApiResult<Json<Value>> {
    let now = state.clock.now();
    let record = state.agent_health.agent_health(&school.estab).await?;
    let current = state.versions.current_versions(&school.estab).await?;
    let mut view = admin_view(record.as_ref(), &current, now);
    let refreshes: Vec<Value> = (state.tasks.open_tasks(&school.estab).await?.iter())
        .filter(|t| t.partner.is_none() && t.kind == REFRESH)
        .map(|t| {
            json!({
                "task": t.id,
                "status": t.state.name(),
                "requestedAt": t.created_at.to_rfc3339(),
            })
        })
        .collect();
    view["openRefreshes"] = json!(refreshes);
    Ok(Json(view))
}
