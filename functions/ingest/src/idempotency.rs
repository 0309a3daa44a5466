//! `Idempotency-Key` on the agent's uploads (`POST /agent/v1/extracts`, `POST /agent/v1/uploads`):
//! a repeat of a request with the same key and body is answered the first answer, with
//! `Idempotent-Replayed: true`, and stores nothing ([`rollcall_core::idempotency`] has the
//! rules). The key is claimed before the upload runs, so two concurrent requests with one key
//! never both store; a failed upload releases it, so a retry runs.

use std::future::Future;

use axum::Json;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use rollcall_core::idempotency::{
    IDEMPOTENCY_CLAIM_TIMEOUT, IdempotencyError, IdempotencyKey, IdempotencyRecord, StoredAnswer,
    request_hash,
};
use rollcall_core::model::School;
use rollcall_core::ports::StoreError;
use rollcall_http::{ApiError, ApiResult};
use serde_json::Value;

use crate::IngestState;

/// The request header naming an upload's idempotency key.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";
/// The answer header that marks an answer given again for a repeated key.
pub const IDEMPOTENT_REPLAYED: &str = "idempotent-replayed";

/// The request's `Idempotency-Key`, if it sent one; 400 when it is not of the accepted form.
pub struct IdempotencyKeyHeader(pub Option<IdempotencyKey>);

impl<S: Send + Sync> FromRequestParts<S> for IdempotencyKeyHeader {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> ApiResult<Self> {
        let Some(value) = parts.headers.get(IDEMPOTENCY_KEY) else {
            return Ok(Self(None));
        };
        let text = value.to_str().map_err(|_| IdempotencyError::BadKey)?;
        Ok(Self(Some(IdempotencyKey::parse(text)?)))
    }
}

/// Runs an upload (`run`, answering a status and a JSON body) at most once per school and
/// `key`: without a key it just runs; with one, a repeat with the same `body` is answered the
/// stored answer, one with another body is refused (422), and one while the first still runs
/// is refused (409). Only a successful answer is kept; a failure releases the key.
pub(crate) async fn run_once<F, Fut>(
    state: &IngestState,
    school: &School,
    key: Option<IdempotencyKey>,
    body: &[u8],
    run: F,
) -> ApiResult<Response>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = ApiResult<(StatusCode, Value)>>,
{
    let Some(key) = key else {
        let (status, answer) = run().await?;
        return Ok((status, Json(answer)).into_response());
    };
    let now = state.clock.now();
    let hash = request_hash(&school.row_hash_key, body);
    let record = IdempotencyRecord::claim(school.estab.clone(), key, hash, now);
    // Twice at most: a key released or expired between the failed claim and the read is free
    // for a second claim.
    for _ in 0..2 {
        match state
            .idempotency
            .claim_idempotency_key(&record, now.minus(IDEMPOTENCY_CLAIM_TIMEOUT))
            .await
        {
            Ok(()) => return run_claimed(state, &record, run).await,
            Err(StoreError::Conflict(_)) => {}
            Err(other) => return Err(other.into()),
        }
        let held = state
            .idempotency
            .idempotency_record(&record.estab, &record.key)
            .await?
            .filter(|held| !held.is_expired(now));
        if let Some(held) = held {
            let answer = held.replay(&record.request_hash)?;
            tracing::info!(estab = %school.estab, status = answer.status, "upload answered again for its idempotency key");
            return Ok(replayed(answer));
        }
    }
    Err(IdempotencyError::InProgress.into())
}

/// Runs the upload under the claim `record` holds, then keeps its answer, or releases the key
/// if it failed.
async fn run_claimed<F, Fut>(
    state: &IngestState,
    record: &IdempotencyRecord,
    run: F,
) -> ApiResult<Response>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = ApiResult<(StatusCode, Value)>>,
{
    let claim = record.claim_id().expect("a new record is a claim");
    let store = state.idempotency.as_ref();
    let (estab, key) = (&record.estab, &record.key);
    match run().await {
        Ok((status, answer)) => {
            match StoredAnswer::new(status.as_u16(), answer.clone()) {
                Some(stored) => {
                    // The upload is stored whatever happens here: a key left claimed is taken
                    // over after the claim timeout, and the repeat then confirms what it sent.
                    if let Err(error) = store
                        .complete_idempotency_key(estab, key, claim, &stored)
                        .await
                    {
                        tracing::warn!(%estab, error = %error, "upload stored but its idempotency key not completed");
                    }
                }
                None => {
                    tracing::warn!(%estab, "upload answer too large to keep; idempotency key released");
                    release(state, record, claim).await;
                }
            }
            Ok((status, Json(answer)).into_response())
        }
        Err(error) => {
            release(state, record, claim).await;
            Err(error)
        }
    }
}

async fn release(state: &IngestState, record: &IdempotencyRecord, claim: &str) {
    let released = state
        .idempotency
        .release_idempotency_key(&record.estab, &record.key, claim)
        .await;
    if let Err(error) = released {
        tracing::warn!(estab = %record.estab, error = %error, "idempotency key not released; it is free again after the claim timeout");
    }
}

fn replayed(answer: &StoredAnswer) -> Response {
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::OK);
    let mut response = (status, Json(answer.body.clone())).into_response();
    response
        .headers_mut()
        .insert(IDEMPOTENT_REPLAYED, HeaderValue::from_static("true"));
    response
}
