//! `POST /admin/v1/refresh`: the school asks its agent to send result sets again now (all of
//! them, or those named), as one task the agent takes on its next run. While a refresh is open
//! a request it already covers answers that one; a wider request replaces the refreshes still
//! waiting (not yet taken) with one that covers them all.

use std::collections::BTreeSet;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use rollcall_core::catalogue::Catalogue;
use rollcall_core::ports::StoreError;
use rollcall_core::task::{self, QUEUED, REFRESH, Task, TaskState};
use rollcall_http::credentials::AdminSchool;
use rollcall_http::request::{BodyShape, JsonBody};
use rollcall_http::{ApiError, ApiResult};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::ConsentState;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct RefreshBody {
    /// The result sets to send again; empty or absent: all of them.
    #[serde(default)]
    pub result_sets: Vec<String>,
}

impl BodyShape for RefreshBody {
    const SHAPE: &'static str = r#"{"resultSets": ["Students", ...]} (or {} for all)"#;
    const LIMIT: usize = 16 * 1024;
    const ADVICE: &'static str = "name each result set once, or send {} for all";

    fn when_empty() -> Option<Self> {
        Some(Self::default())
    }
}

/// What a refresh asks for: named sets, or everything (`None`).
type Wanted = Option<BTreeSet<String>>;

pub(crate) async fn refresh(
    State(state): State<ConsentState>,
    AdminSchool(school): AdminSchool,
    JsonBody(body): JsonBody<RefreshBody>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let wanted = wanted(&body.result_sets)?;
    let now = state.clock.now();
    let mut open: Vec<(Task, Wanted)> = Vec::new();
    for task in state.tasks.open_tasks(&school.estab).await? {
        if task.partner.is_none() && task.kind == REFRESH {
            let payload = (task.open_payload(state.key_unwrapper.as_ref()).await)
                .map_err(ApiError::internal)?;
            open.push((task, Task::refresh_sets(&payload)));
        }
    }
    if let Some((task, sets)) = open.iter().find(|(_, sets)| covers(sets, &wanted)) {
        return Ok((StatusCode::OK, Json(answer(task, sets, true))));
    }
    // Waiting ones are folded into the new task; one the agent took already runs as it is.
    let waiting: Vec<&(Task, Wanted)> = open
        .iter()
        .filter(|(t, _)| t.state == TaskState::Queued)
        .collect();
    let merged = (waiting.iter()).fold(wanted, |all, (_, sets)| union(all, sets.as_ref()));
    let mut task = Task::new(school.estab.clone(), None, REFRESH, "", Vec::new(), now);
    let payload = json!({ "resultSets": merged.iter().flatten().collect::<Vec<_>>() });
    task.seal(state.key_generator.as_ref(), &payload).await?;
    state.tasks.insert_task(&task).await?;
    for (old, _) in waiting {
        let replaced = TaskState::Failed {
            at: now,
            message: format!("replaced by refresh {}, which covers it", task.id),
        };
        match (state.tasks)
            .update_task(&school.estab, &old.id, &[QUEUED], &replaced)
            .await
        {
            // Taken by the agent meanwhile: it runs as well.
            Ok(()) | Err(StoreError::Conflict(_)) => {}
            Err(other) => return Err(other.into()),
        }
    }
    tracing::info!(task = %task.id, "refresh queued for the agent");
    Ok((StatusCode::ACCEPTED, Json(answer(&task, &merged, false))))
}

/// `GET /admin/v1/refresh/{task}`: where one of the school's refreshes is, and how it ended
/// (the sets sent, or why not).
pub(crate) async fn refresh_status(
    State(state): State<ConsentState>,
    AdminSchool(school): AdminSchool,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let not_found = || {
        ApiError::NotFound(
            "no refresh of this school has that id; POST /admin/v1/refresh answers the id of \
             the one it queued"
                .to_owned(),
        )
    };
    if !task::is_tracking_id(&id) {
        return Err(not_found());
    }
    let task = (state.tasks.task(&school.estab, &id).await?)
        .filter(|t| t.partner.is_none() && t.kind == REFRESH)
        .ok_or_else(not_found)?;
    let payload =
        (task.open_payload(state.key_unwrapper.as_ref()).await).map_err(ApiError::internal)?;
    let mut answer = answer(&task, &Task::refresh_sets(&payload), false);
    match &task.state {
        TaskState::Succeeded { at, result } => {
            answer["finishedAt"] = json!(at.to_rfc3339());
            answer["result"] = result.clone();
        }
        TaskState::Failed { at, message } => {
            answer["finishedAt"] = json!(at.to_rfc3339());
            answer["message"] = json!(message);
        }
        TaskState::Queued | TaskState::Delivered { .. } => {}
    }
    Ok(Json(answer))
}

/// The named sets, checked against the catalogue's uploadable sets; none named is all.
fn wanted(names: &[String]) -> ApiResult<Wanted> {
    if names.is_empty() {
        return Ok(None);
    }
    let catalogue = Catalogue::get();
    let mut sets = BTreeSet::new();
    for name in names {
        let Some((rs, _)) = catalogue.uploaded_set(name.trim()) else {
            return Err(ApiError::BadRequest(format!(
                "`{}` is not a result set the agent sends; name stored result sets such as \
                 Students, Staff, Contacts, or send {{}} to refresh all",
                name.chars().take(64).collect::<String>()
            )));
        };
        sets.insert(rs.name.clone());
    }
    Ok(Some(sets))
}

fn covers(open: &Wanted, wanted: &Wanted) -> bool {
    match (open, wanted) {
        (None, _) => true,
        (Some(_), None) => false,
        (Some(open), Some(wanted)) => wanted.is_subset(open),
    }
}

/// Named sets only while both name sets; everything with everything.
fn union(all: Wanted, more: Option<&BTreeSet<String>>) -> Wanted {
    match (all, more) {
        (Some(mut all), Some(more)) => {
            all.extend(more.iter().cloned());
            Some(all)
        }
        _ => None,
    }
}

fn answer(task: &Task, sets: &Wanted, deduplicated: bool) -> Value {
    json!({
        "task": task.id,
        "status": task.state.name(),
        "requestedAt": task.created_at.to_rfc3339(),
        "resultSets": match sets {
            Some(sets) => json!(sets),
            None => json!("all"),
        },
        "deduplicated": deduplicated,
    })
}
