//! The agent's side of write-backs: it takes its school's open tasks and reports each outcome.
//! A task is handed over only while the write-back's plan, made again under the consent and
//! opt-outs in force, still allows it: one whose consent ended or narrowed, or that names
//! someone the school has opted out since it was queued, fails instead and never reaches the
//! MIS.

use axum::Json;
use axum::extract::{Path, State};
use rollcall_core::catalogue::Catalogue;
use rollcall_core::model::School;
use rollcall_core::plan;
use rollcall_core::ports::StoreError;
use rollcall_core::task::{self, OPEN, PayloadError, QUEUED, Task, TaskState};
use rollcall_core::timestamp::Timestamp;
use rollcall_http::credentials::AgentSchool;
use rollcall_http::request::{BodyShape, JsonBody};
use rollcall_http::{ApiError, ApiResult};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::IngestState;

/// `GET /agent/v1/tasks`: the school's open tasks, oldest first, with their payloads.
pub(crate) async fn open_tasks(
    State(state): State<IngestState>,
    AgentSchool(school): AgentSchool,
) -> ApiResult<Json<Value>> {
    let now = state.clock.now();
    let mut handed = Vec::new();
    for task in state.tasks.open_tasks(&school.estab).await? {
        let payload = unseal(&state, &task).await?;
        if let Some(reason) = withdrawn(&state, &task, &payload, now).await? {
            fail(&state, &task, reason, now).await?;
            continue;
        }
        if task.state == TaskState::Queued {
            let delivered = TaskState::Delivered { at: now };
            match state
                .tasks
                .update_task(&school.estab, &task.id, &[QUEUED], &delivered)
                .await
            {
                // Another poll delivered it first: it is still open, and handed out again.
                Ok(()) | Err(StoreError::Conflict(_)) => {}
                Err(other) => return Err(other.into()),
            }
        }
        handed.push(json!({
            "id": task.id,
            "kind": task.kind,
            "partner": task.partner,
            "queuedAt": task.created_at.to_rfc3339(),
            "payload": payload,
        }));
    }
    tracing::info!(tasks = handed.len(), "tasks handed to the agent");
    Ok(Json(json!({ "tasks": handed })))
}

/// Why a task may no longer reach the MIS, if it may not: the write-back's plan is made
/// again under the consent and opt-outs in force, as when it was queued; it must still allow
/// the write-back (its scope, and the consent to read the people it names), and no one the
/// payload names may have been opted out since. The school's own tasks are bounded by no
/// consent.
async fn withdrawn(
    state: &IngestState,
    task: &Task,
    payload: &Value,
    now: Timestamp,
) -> ApiResult<Option<String>> {
    let Some(partner) = &task.partner else {
        return Ok(None);
    };
    let catalogue = Catalogue::get();
    let writeback = (catalogue.writeback(&task.kind)).ok_or_else(|| {
        ApiError::internal(anyhow::anyhow!("a task of unknown kind {}", task.kind))
    })?;
    let consent = match state.consents.consent(&task.estab, partner).await? {
        Some(consent) if consent.in_force(now) => consent,
        _ => {
            return Ok(Some(format!(
                "the school's consent for {partner} ended before its agent took the \
                 write-back; it was not delivered"
            )));
        }
    };
    let opt_outs = (state.opt_outs.opt_outs(&task.estab, partner).await?)
        .map(|record| record.people)
        .unwrap_or_default();
    if !writeback.scope.is_satisfied_by(&consent.scopes) {
        return Ok(Some(format!(
            "the school no longer grants {} to {partner}; the write-back was not delivered",
            task.scopes
        )));
    }
    let estab = task.estab.as_str();
    let Ok(plan) = plan::writeback_plan(catalogue, writeback, &consent.scopes, &opt_outs, estab)
    else {
        return Ok(Some(format!(
            "the school no longer lets {partner} read who the people the write-back names are; \
             it was not delivered"
        )));
    };
    Ok(plan.names_opted_out(writeback.body, payload).then(|| {
        "the school opted out someone the write-back names after it was queued; it was not \
         delivered"
            .to_owned()
    }))
}

async fn fail(state: &IngestState, task: &Task, message: String, now: Timestamp) -> ApiResult<()> {
    let failed = TaskState::Failed { at: now, message };
    match state
        .tasks
        .update_task(&task.estab, &task.id, &OPEN, &failed)
        .await
    {
        Ok(()) | Err(StoreError::Conflict(_)) => Ok(()),
        Err(other) => Err(other.into()),
    }
}

async fn unseal(state: &IngestState, task: &Task) -> ApiResult<Value> {
    task.open_payload(state.key_unwrapper.as_ref())
        .await
        .map_err(payload_error)
}

fn payload_error(error: PayloadError) -> ApiError {
    match error {
        PayloadError::Key(key) => key.into(),
        corrupt => ApiError::internal(corrupt),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Report {
    succeeded: bool,
    #[serde(default)]
    result: Value,
    #[serde(default)]
    message: Option<String>,
}

impl BodyShape for Report {
    const SHAPE: &'static str = concat!(
        "a JSON object ",
        r#"{"succeeded": true, "result": [...]} or {"succeeded": false, "message": "why the MIS refused it"}"#
    );
    /// The largest outcome report.
    const LIMIT: usize = 64 * 1024;
    const ADVICE: &'static str = "report the MIS ids created, not the data written";
}

/// `POST /agent/v1/tasks/{id}/result`: the outcome of one task, reported once.
pub(crate) async fn report(
    State(state): State<IngestState>,
    Path(id): Path<String>,
    AgentSchool(school): AgentSchool,
    JsonBody(report): JsonBody<Report>,
) -> ApiResult<Json<Value>> {
    let now = state.clock.now();
    let outcome = outcome(report, now)?;
    let task = find(&state, &school, &id).await?;
    match state
        .tasks
        .update_task(&school.estab, &task.id, &OPEN, &outcome)
        .await
    {
        Ok(()) => {}
        Err(StoreError::Conflict(_)) => {
            return Err(ApiError::Conflict(format!(
                "task {id} already has an outcome; an outcome is reported once"
            )));
        }
        Err(other) => return Err(other.into()),
    }
    tracing::info!(task = %task.id, outcome = outcome.name(), "task outcome reported");
    Ok(Json(json!({ "id": task.id, "status": outcome.name() })))
}

fn outcome(report: Report, now: Timestamp) -> ApiResult<TaskState> {
    if report.succeeded {
        return Ok(TaskState::Succeeded {
            at: now,
            result: report.result,
        });
    }
    match report.message.map(|m| m.trim().to_owned()) {
        Some(message) if !message.is_empty() => Ok(TaskState::Failed {
            at: now,
            message: message.chars().take(1000).collect(),
        }),
        _ => Err(ApiError::BadRequest(format!(
            "a failed outcome needs a `message` saying why, for the partner; send {}",
            Report::SHAPE
        ))),
    }
}

async fn find(state: &IngestState, school: &School, id: &str) -> ApiResult<Task> {
    let unknown = || {
        ApiError::NotFound(format!(
            "school {} has no task `{}`; use an id from GET /agent/v1/tasks",
            school.estab,
            id.chars().take(60).collect::<String>()
        ))
    };
    if !task::is_tracking_id(id) {
        return Err(unknown());
    }
    let task = state
        .tasks
        .task(&school.estab, id)
        .await?
        .ok_or_else(unknown)?;
    Ok(task)
}
