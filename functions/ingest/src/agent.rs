//! The agent's calls about itself: which school its key belongs to (`GET /agent/v1/whoami`),
//! so an installer can check its configuration before the first upload.

use axum::Json;
use rollcall_http::credentials::AgentSchool;
use serde_json::{Value, json};

/// `GET /agent/v1/whoami`: the key's school, by number and name.
pub(crate) async fn whoami(AgentSchool(school): AgentSchool) -> Json<Value> {
    tracing::info!(estab = %school.estab, "agent identified");
    Json(json!({ "estab": school.estab, "name": school.name }))
}
