//! Large uploads. `POST /agent/v1/uploads` answers a pre-signed PUT for one extract of an
//! exact size (up to [`MAX_STAGED_BYTES`]); once the object is there, [`ingest_staged`] runs on
//! it (from S3's `ObjectCreated` event, or the local stand-in's PUT) exactly as a small upload
//! is ingested, records the outcome and deletes the object. `GET /agent/v1/uploads/{id}`
//! tells the agent where its upload is.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use rollcall_core::catalogue::Catalogue;
use rollcall_core::dataset::parse_upload;
use rollcall_core::model::School;
use rollcall_core::ports::StoreError;
use rollcall_core::secret::random_hex;
use rollcall_core::staging::{
    CLAIM_TIMEOUT, MAX_STAGED_BYTES, STAGED_CONTENT_TYPE, StagedState, StagedUpload,
    UPLOAD_URL_LIFETIME, parse_object_key,
};
use rollcall_core::timestamp::Timestamp;
use rollcall_http::credentials::AgentSchool;
use rollcall_http::request::{BodyShape, JsonBodyBytes};
use rollcall_http::{ApiError, ApiResult};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::idempotency::{IdempotencyKeyHeader, run_once};
use crate::{IngestState, ingest};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct UploadRequest {
    content_length: u64,
    #[serde(default)]
    content_type: Option<String>,
}

impl BodyShape for UploadRequest {
    const SHAPE: &'static str =
        "{\"contentLength\": <bytes of the extract>, \"contentType\": \"application/json\"}";
    const LIMIT: usize = 4096;
    const ADVICE: &'static str = "send only the upload's size and type";
}

pub(crate) async fn create_upload(
    State(state): State<IngestState>,
    AgentSchool(school): AgentSchool,
    IdempotencyKeyHeader(key): IdempotencyKeyHeader,
    JsonBodyBytes(request, bytes): JsonBodyBytes<UploadRequest>,
) -> ApiResult<Response> {
    run_once(&state, &school, key, &bytes, || async {
        let answer = issue_upload(&state, &school, request).await?;
        Ok((StatusCode::CREATED, answer))
    })
    .await
}

/// Records a staged upload and signs its PUT; answers where and how to put the extract.
async fn issue_upload(
    state: &IngestState,
    school: &School,
    request: UploadRequest,
) -> ApiResult<Value> {
    let content_type = request
        .content_type
        .unwrap_or_else(|| STAGED_CONTENT_TYPE.to_owned());
    if content_type != STAGED_CONTENT_TYPE {
        return Err(ApiError::Unprocessable(format!(
            "contentType `{content_type}` is not accepted; an extract is {STAGED_CONTENT_TYPE}"
        )));
    }
    if request.content_length == 0 {
        return Err(ApiError::Unprocessable(
            "contentLength is 0; give the extract's size in bytes".to_owned(),
        ));
    }
    if request.content_length > MAX_STAGED_BYTES {
        return Err(ApiError::PayloadTooLarge(format!(
            "contentLength {} is over the {MAX_STAGED_BYTES}-byte ({} MiB) limit of one upload; \
             split the extract into uploads of fewer result sets",
            request.content_length,
            MAX_STAGED_BYTES / (1024 * 1024)
        )));
    }
    let now = state.clock.now();
    let upload = StagedUpload::new(
        school.estab.clone(),
        random_hex::<12>(),
        request.content_length,
        now,
    );
    let put = state
        .upload_signer
        .presign_put(
            &upload.object_key(),
            upload.content_length,
            &content_type,
            now,
            UPLOAD_URL_LIFETIME,
        )
        .await?;
    state.staged_uploads.insert_staged_upload(&upload).await?;
    tracing::info!(estab = %school.estab, upload = %upload.id, bytes = upload.content_length, "upload URL issued");
    let headers: Map<String, Value> = put
        .headers
        .into_iter()
        .map(|(name, value)| (name, Value::String(value)))
        .collect();
    Ok(json!({
        "uploadId": upload.id,
        "method": "PUT",
        "url": put.url,
        "headers": headers,
        "expiresAt": upload.url_expires_at.to_rfc3339(),
        "statusUrl": format!("/agent/v1/uploads/{}", upload.id),
    }))
}

pub(crate) async fn upload_status(
    State(state): State<IngestState>,
    Path(id): Path<String>,
    AgentSchool(school): AgentSchool,
) -> ApiResult<Json<Value>> {
    let now = state.clock.now();
    let upload = state
        .staged_uploads
        .staged_upload(&school.estab, &id)
        .await?
        .filter(|u| !u.is_expired(now))
        .ok_or_else(|| {
            ApiError::NotFound(format!(
                "school {} has no upload `{id}`; upload records are kept for 7 days after \
                 POST /agent/v1/uploads issued them",
                school.estab
            ))
        })?;
    Ok(Json(status_answer(&upload, now)))
}

fn status_answer(upload: &StagedUpload, now: Timestamp) -> Value {
    let mut answer = json!({
        "uploadId": upload.id,
        "createdAt": upload.created_at.to_rfc3339(),
        "contentLength": upload.content_length,
    });
    let fields = match &upload.state {
        StagedState::Waiting if now >= upload.url_expires_at => json!({
            "status": "expired",
            "message": "the upload URL expired before the extract arrived; ask for a new one \
                        with POST /agent/v1/uploads",
        }),
        StagedState::Waiting => json!({
            "status": "waiting",
            "urlExpiresAt": upload.url_expires_at.to_rfc3339(),
        }),
        StagedState::Ingesting { since } => json!({
            "status": "ingesting",
            "since": since.to_rfc3339(),
        }),
        StagedState::Stored { result } => json!({ "status": "stored", "result": result }),
        StagedState::Refused { message } => json!({ "status": "refused", "message": message }),
    };
    if let (Value::Object(answer), Value::Object(fields)) = (&mut answer, fields) {
        answer.extend(fields);
    }
    answer
}

/// What [`ingest_staged`] did with an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StagedOutcome {
    Stored,
    Refused(String),
    /// Not a staged upload rollcall is waiting for (unknown key, or already taken).
    Skipped(&'static str),
}

impl std::fmt::Display for StagedOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StagedOutcome::Stored => f.write_str("stored"),
            StagedOutcome::Refused(message) => write!(f, "refused: {message}"),
            StagedOutcome::Skipped(why) => write!(f, "skipped: {why}"),
        }
    }
}

/// Ingests the staged extract at `key`, once: claims its record, validates and stores it as a
/// small upload would be, records the outcome and deletes the object. A failure of rollcall's
/// own (store or key service down) releases the claim and keeps the object, and is returned as
/// an error so the event is delivered again.
pub async fn ingest_staged(state: &IngestState, key: &str) -> Result<StagedOutcome, ApiError> {
    let Some((estab, id)) = parse_object_key(key) else {
        tracing::warn!("object created outside the staged-upload layout; left alone");
        return Ok(StagedOutcome::Skipped("not a staged upload key"));
    };
    let now = state.clock.now();
    let claimed = state
        .staged_uploads
        .claim_staged_upload(&estab, &id, now, now.minus(CLAIM_TIMEOUT))
        .await;
    let upload = match claimed {
        Ok(upload) => upload,
        Err(StoreError::NotFound(_)) => {
            tracing::warn!(%estab, upload = %id, "staged object without an upload record; deleted");
            state.objects.delete(key).await?;
            return Ok(StagedOutcome::Skipped("no upload record"));
        }
        Err(StoreError::Conflict(_)) => {
            // A redelivered event, or a second PUT to the URL: only a finished upload's
            // object is deleted (an ingest in flight still reads it).
            let finished = state
                .staged_uploads
                .staged_upload(&estab, &id)
                .await?
                .is_some_and(|u| u.state.is_finished());
            if finished {
                state.objects.delete(key).await?;
            }
            tracing::info!(%estab, upload = %id, "staged upload already taken; event ignored");
            return Ok(StagedOutcome::Skipped("already taken"));
        }
        Err(other) => return Err(other.into()),
    };
    let outcome = match state.schools.school(&estab).await? {
        Some(school) => ingest_object(state, &school, &upload, key).await,
        None => Err(ApiError::NotFound(format!(
            "school {estab} is not registered"
        ))),
    };
    let state_after = match &outcome {
        Ok(result) => StagedState::Stored {
            result: result.clone(),
        },
        Err(error) if is_retryable(error) => StagedState::Waiting,
        Err(error) => StagedState::Refused {
            message: error.message(),
        },
    };
    state
        .staged_uploads
        .finish_staged_upload(&estab, &id, now, &state_after)
        .await?;
    let outcome = match outcome {
        Err(error) if is_retryable(&error) => {
            tracing::warn!(%estab, upload = %id, "staged upload released for another attempt");
            return Err(error);
        }
        Ok(_) => StagedOutcome::Stored,
        Err(error) => StagedOutcome::Refused(error.message()),
    };
    if let Err(error) = state.objects.delete(key).await {
        tracing::warn!(%estab, upload = %id, error = %error, "staged object not deleted; the bucket lifecycle will");
    }
    tracing::info!(%estab, upload = %id, status = state_after.name(), "staged upload done");
    Ok(outcome)
}

async fn ingest_object(
    state: &IngestState,
    school: &School,
    upload: &StagedUpload,
    key: &str,
) -> ApiResult<Value> {
    let bytes = state.objects.get(key).await.map_err(|error| match error {
        StoreError::NotFound(_) => ApiError::Unavailable(
            "the extract is not in the store (yet); put it again while the URL lasts".to_owned(),
        ),
        other => other.into(),
    })?;
    if bytes.len() as u64 != upload.content_length {
        return Err(ApiError::Unprocessable(format!(
            "the extract is {} bytes, but the upload URL was issued for {}; ask for a new URL \
             with the extract's exact size",
            bytes.len(),
            upload.content_length
        )));
    }
    let extract = parse_upload(Catalogue::get(), &bytes)?;
    ingest(state, school, extract).await
}

/// Failures another attempt may not meet: rollcall's own, or a race lost to another upload.
fn is_retryable(error: &ApiError) -> bool {
    matches!(
        error,
        ApiError::Unavailable(_) | ApiError::Internal(_) | ApiError::Conflict(_)
    )
}
