//! Write-backs: a partner's attendance marks, conduct events, seating plans and detentions,
//! checked against the consent in force and what the school has uploaded, sealed under the key
//! service and queued as one task for the school's agent. A refused request queues nothing.
//!
//! The `wait` form polls the task for a bounded time and answers the agent's outcome (or 202
//! with the tracking id if the agent has not reported yet); the `tracking` form answers the
//! tracking id at once. Either way `GET /api/v1/Writeback/Status/{trackingId}` tells where the
//! task is.

mod body;
mod validate;

use axum::Json;
use axum::body::Body;
use axum::extract::{FromRequest, FromRequestParts, Path, RawQuery, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use rollcall_core::catalogue::{Catalogue, PersonKind, Writeback, WritebackAnswer, WritebackBody};
use rollcall_core::included::Included;
use rollcall_core::model::{Estab, Token};
use rollcall_core::plan::{self, WritebackPlan};
use rollcall_core::task::{self, Task, TaskState};
use rollcall_core::timestamp::Timestamp;
use rollcall_http::credentials::PartnerToken;
use rollcall_http::request::{QueryParams, json_body, read_body};
use rollcall_http::{ApiError, ApiResult};
use serde_json::{Map, Value, json};

use crate::rows::{field_values, stored_ids};
use crate::{ServeState, access_log};
pub(crate) use validate::{Checked, Known};

/// The largest write-back body (conduct media files travel inside it).
pub const MAX_WRITEBACK_BYTES: usize = 5 * 1024 * 1024;
/// The deepest a write-back's JSON may nest (the MIS's bodies nest three or four levels); the
/// agent reads its tasks with a parser that stops at 128, so a deeper payload would never
/// reach it.
const MAX_WRITEBACK_DEPTH: usize = 16;

/// How often a waiting write-back looks at its task.
const POLL_EVERY: std::time::Duration = std::time::Duration::from_millis(250);

/// A write-back call as it arrives: the partner's token, the headers (for the body's size)
/// and the body, read only once the consent and the plan allow the write-back
/// ([`Submission::submit`]).
pub(crate) struct Submission {
    state: ServeState,
    partner: PartnerToken,
    headers: HeaderMap,
    body: Body,
}

impl FromRequest<ServeState> for Submission {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &ServeState) -> ApiResult<Self> {
        let (mut parts, body) = request.into_parts();
        let partner = PartnerToken::from_request_parts(&mut parts, state).await?;
        Ok(Self {
            state: state.clone(),
            partner,
            headers: parts.headers,
            body,
        })
    }
}

impl Submission {
    /// Checks and queues the write-back `id`, at `estab` when the route names the school.
    async fn submit(self, id: &str, estab: Option<&str>) -> ApiResult<Response> {
        submit(
            &self.state,
            self.partner,
            &self.headers,
            id,
            estab,
            self.body,
        )
        .await
    }
}

pub(crate) async fn attendance(Path(estab): Path<String>, call: Submission) -> ApiResult<Response> {
    call.submit("Writeback.Attendance", Some(&estab)).await
}

pub(crate) async fn attendance_async(
    Path(estab): Path<String>,
    call: Submission,
) -> ApiResult<Response> {
    call.submit("Writeback.AttendanceAsync", Some(&estab)).await
}

pub(crate) async fn conduct(call: Submission) -> ApiResult<Response> {
    call.submit("Writeback.Conduct", None).await
}

pub(crate) async fn conduct_async(call: Submission) -> ApiResult<Response> {
    call.submit("Writeback.ConductAsync", None).await
}

pub(crate) async fn seating_plan(call: Submission) -> ApiResult<Response> {
    call.submit("Writeback.SeatingPlan", None).await
}

/// `POST /api/v1/Writeback/?id=efw.Detention`: the write-back named by `id`.
pub(crate) async fn by_id(RawQuery(query): RawQuery, call: Submission) -> ApiResult<Response> {
    let params = QueryParams::parse(query.as_deref())?;
    match params.get("id") {
        Some(id) if id.eq_ignore_ascii_case("efw.Detention") => {
            call.submit("Writeback.Detention", None).await
        }
        other => Err(ApiError::NotFound(format!(
            "there is no write-back `{}` at /api/v1/Writeback/; use ?id=efw.Detention, or \
             /api/v1/Writeback/Conduct, /ConductAsync or /SeatingPlan",
            other.unwrap_or("")
        ))),
    }
}

async fn submit(
    state: &ServeState,
    partner: PartnerToken,
    headers: &HeaderMap,
    id: &str,
    estab: Option<&str>,
    body: Body,
) -> ApiResult<Response> {
    let (token, now) = (&partner.token, partner.now);
    if let Some(estab) = estab {
        let estab = Estab::parse(estab).map_err(|e| ApiError::NotFound(e.to_string()))?;
        partner.check_school(&estab)?;
    }
    let writeback = Catalogue::get()
        .writeback(id)
        .expect("routes name catalogue write-backs");
    let outcome = queue_checked(state, headers, &partner, writeback, body).await;
    let (task, records) =
        access_log::unless_refused(state, token, &writeback.id, outcome, now).await?;
    tracing::info!(task = %task.id, kind = %writeback.id, records, "write-back queued");
    match writeback.answer {
        WritebackAnswer::Tracking => Ok(tracking_answer(writeback, &task.id)),
        WritebackAnswer::Wait => wait(state, &task).await,
    }
}

/// Checks a write-back against the consent, the opt-outs and what the school uploaded, and
/// queues it for the school's agent: the task and how many records it holds.
async fn queue_checked(
    state: &ServeState,
    headers: &HeaderMap,
    partner: &PartnerToken,
    writeback: &'static Writeback,
    body: Body,
) -> ApiResult<(Task, u64)> {
    let (token, now) = (&partner.token, partner.now);
    let consent = partner.consent().await?;
    let opt_outs = crate::read::opt_outs(state, token, now).await?;
    let plan = plan::writeback_plan(
        Catalogue::get(),
        writeback,
        &consent.scopes,
        &opt_outs,
        token.estab.as_str(),
    )?;
    let bytes = read_body(
        body,
        headers,
        MAX_WRITEBACK_BYTES,
        "send fewer records in each request",
    )
    .await?;
    let object = read_body_object(&bytes)?;
    let checked = check(state, &plan, writeback.body, &object, &token.estab, now).await?;
    let task = queue(state, token, writeback, &checked, now).await?;
    let scopes_used = writeback
        .scope
        .scopes()
        .filter(|s| consent.scopes.contains(*s))
        .map(str::to_owned)
        .collect();
    access_log::answered(
        state,
        token,
        &writeback.id,
        scopes_used,
        checked.records,
        // A write-back answers no school data about anyone.
        &Included::default(),
        now,
    )
    .await?;
    Ok((task, checked.records))
}

/// Checks the body against what the school has uploaded.
async fn check(
    state: &ServeState,
    plan: &WritebackPlan,
    kind: WritebackBody,
    object: &Map<String, Value>,
    estab: &Estab,
    now: Timestamp,
) -> ApiResult<Checked> {
    let known = known(state, plan, kind, estab, now).await?;
    validate_body(kind, object, &known, estab.as_str())
}

/// What the school has that a write-back of `kind` may refer to: its pupils (less the
/// opted-out), and as the kind needs them its staff, attendance marks or conduct types.
async fn known(
    state: &ServeState,
    plan: &WritebackPlan,
    kind: WritebackBody,
    estab: &Estab,
    now: Timestamp,
) -> ApiResult<Known> {
    let students = stored_ids(state, estab, "Students", now).await?;
    let mut known = Known {
        students: plan.known(PersonKind::Student, students),
        name_students: plan.name_students,
        name_staff: plan.name_staff,
        name_marks: plan.name_marks,
        name_conduct_types: plan.name_conduct_types,
        ..Known::default()
    };
    if matches!(kind, WritebackBody::Conduct | WritebackBody::Detention) {
        let staff = stored_ids(state, estab, "Staff", now).await?;
        known.staff = plan.known(PersonKind::Staff, staff);
    }
    if kind == WritebackBody::Attendance {
        known.marks = field_values(state, estab, "AttendCodes", "Mark", now).await?;
    }
    if kind == WritebackBody::Conduct
        && (state.versions)
            .current_version(estab, "ConductTypes")
            .await?
            .is_some()
    {
        let types = field_values(state, estab, "ConductTypes", "LocalId", now).await?;
        known.conduct_types = Some(types);
    }
    Ok(known)
}

/// Reads a write-back's body: a JSON object, nested at most [`MAX_WRITEBACK_DEPTH`] deep.
pub(crate) fn read_body_object(bytes: &[u8]) -> ApiResult<Map<String, Value>> {
    let object: Map<String, Value> = json_body(bytes, "a JSON object")?;
    refuse_deep_nesting(&object)?;
    Ok(object)
}

/// Checks a body of `kind` against what the school has (`known`): the payload for the agent,
/// or a 422 listing every problem.
pub(crate) fn validate_body(
    kind: WritebackBody,
    object: &Map<String, Value>,
    known: &Known,
    estab: &str,
) -> ApiResult<Checked> {
    validate::check(kind, object, known, estab).map_err(|problems| {
        ApiError::Unprocessable(format!(
            "the write-back was not queued: {}; correct these and send it again",
            problems.message()
        ))
    })
}

/// Seals the checked payload and queues it as one task.
async fn queue(
    state: &ServeState,
    token: &Token,
    writeback: &Writeback,
    checked: &Checked,
    now: Timestamp,
) -> ApiResult<Task> {
    let mut task = Task::new(
        token.estab.clone(),
        Some(token.partner.clone()),
        &writeback.id,
        &writeback.scopes_text,
        Vec::new(),
        now,
    );
    task.seal(state.key_generator.as_ref(), &checked.payload)
        .await?;
    state.tasks.insert_task(&task).await?;
    Ok(task)
}

/// The async answer, in the shape XoD's async write-backs answer.
fn tracking_answer(writeback: &Writeback, id: &str) -> Response {
    let error_query = format!("{}_OnError", writeback.id);
    Json(json!({
        "TrackingId": id,
        "DataSet": { "trackingid": [{ "trackingid": id, "errorquery": error_query }] },
        "Message": "success",
        "ExceptionType": null, "ExceptionMessage": null, "InnerException": null,
    }))
    .into_response()
}

/// Waits (bounded) for the agent's outcome.
/// 422 for a body that nests deeper than [`MAX_WRITEBACK_DEPTH`].
fn refuse_deep_nesting(object: &Map<String, Value>) -> ApiResult<()> {
    fn depth(value: &Value) -> usize {
        match value {
            Value::Array(items) => 1 + items.iter().map(depth).max().unwrap_or(0),
            Value::Object(fields) => 1 + fields.values().map(depth).max().unwrap_or(0),
            _ => 0,
        }
    }
    let deepest = 1 + object.values().map(depth).max().unwrap_or(0);
    if deepest > MAX_WRITEBACK_DEPTH {
        return Err(ApiError::Unprocessable(format!(
            "the write-back was not queued: its JSON nests {deepest} levels deep; send it \
             with at most {MAX_WRITEBACK_DEPTH}"
        )));
    }
    Ok(())
}

async fn wait(state: &ServeState, task: &Task) -> ApiResult<Response> {
    let started = tokio::time::Instant::now();
    loop {
        let current = state
            .tasks
            .task(&task.estab, &task.id)
            .await?
            .ok_or_else(|| {
                ApiError::internal(anyhow::anyhow!("queued task {} vanished", task.id))
            })?;
        match current.state {
            TaskState::Succeeded { result, .. } => {
                return Ok(Json(json!({
                    "TrackingId": task.id, "Status": "Succeeded", "result": result,
                    "Message": "success",
                    "ExceptionType": null, "ExceptionMessage": null, "InnerException": null,
                }))
                .into_response());
            }
            TaskState::Failed { message, .. } => {
                return Err(ApiError::Unprocessable(format!(
                    "write-back {} was not applied: {message}",
                    task.id
                )));
            }
            TaskState::Queued | TaskState::Delivered { .. } => {}
        }
        if started.elapsed() >= state.writeback_wait {
            let body = json!({
                "TrackingId": task.id, "Status": status_name(&current.state),
                "Message": format!(
                    "queued: the school's agent has not applied it yet; \
                     GET /api/v1/Writeback/Status/{} tells you when it has", task.id),
                "ExceptionType": null, "ExceptionMessage": null, "InnerException": null,
            });
            return Ok((StatusCode::ACCEPTED, Json(body)).into_response());
        }
        tokio::time::sleep(POLL_EVERY).await;
    }
}

fn status_name(state: &TaskState) -> &'static str {
    match state {
        TaskState::Queued => "Queued",
        TaskState::Delivered { .. } => "Delivered",
        TaskState::Succeeded { .. } => "Succeeded",
        TaskState::Failed { .. } => "Failed",
    }
}

/// `GET /api/v1/Writeback/Status/{trackingId}`: one of this partner's write-backs at the
/// token's school.
pub(crate) async fn status(
    State(state): State<ServeState>,
    Path(id): Path<String>,
    partner: PartnerToken,
) -> ApiResult<Json<Value>> {
    let token = &partner.token;
    access_log::consent(&state, &partner, "Writeback.Status").await?;
    let not_found = || {
        ApiError::NotFound(format!(
            "you have no write-back `{}` at school {}; use the TrackingId a write-back answered",
            id.chars().take(60).collect::<String>(),
            token.estab
        ))
    };
    if !task::is_tracking_id(&id) {
        return Err(not_found());
    }
    let task = state
        .tasks
        .task(&token.estab, &id)
        .await?
        .filter(|t| t.partner.as_ref() == Some(&token.partner))
        .ok_or_else(not_found)?;
    let (finished_at, result, error) = match &task.state {
        TaskState::Succeeded { at, result } => (Some(*at), result.clone(), Value::Null),
        TaskState::Failed { at, message } => (Some(*at), Value::Null, json!(message)),
        TaskState::Queued | TaskState::Delivered { .. } => (None, Value::Null, Value::Null),
    };
    Ok(Json(json!({
        "Writeback": [{
            "TrackingId": task.id,
            "Kind": task.kind,
            "Status": status_name(&task.state),
            "QueuedAt": task.created_at.to_xod(),
            "FinishedAt": finished_at.map(Timestamp::to_xod),
            "Result": result,
            "Error": error,
        }]
    })))
}
