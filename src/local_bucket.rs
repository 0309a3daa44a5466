//! The local stand-in for the bucket's pre-signed PUTs: `PUT /local/v1/objects/{key}` with the
//! signed URL's query takes a staged extract, checks it as S3 would check a pre-signed PUT
//! (signature, expiry, exact length and type), stores it, and then ingests it, as the S3
//! `ObjectCreated` event does in AWS, before answering.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use axum::routing::put;
use axum::{Json, Router};
use rollcall_core::ports::{Clock, ObjectStore, Ports};
use rollcall_http::request::{QueryParams, read_body};
use rollcall_http::{ApiError, ApiResult};
use rollcall_infra::local::{LOCAL_PUT_PATH, LocalPut, LocalPutError, LocalUploadSigner};
use rollcall_ingest::IngestState;
use rollcall_ingest::staged::ingest_staged;
use serde_json::{Value, json};

#[derive(Clone)]
struct BucketState {
    signer: Arc<LocalUploadSigner>,
    objects: Arc<dyn ObjectStore>,
    clock: Arc<dyn Clock>,
    ingest: IngestState,
}

pub fn router(ports: &Ports, signer: Arc<LocalUploadSigner>) -> Router {
    let state = BucketState {
        signer,
        objects: ports.objects.clone(),
        clock: ports.clock.clone(),
        ingest: IngestState::new(ports),
    };
    Router::new()
        .route(&format!("{LOCAL_PUT_PATH}{{*key}}"), put(put_object))
        .with_state(state)
}

async fn put_object(
    State(state): State<BucketState>,
    Path(key): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Json<Value>> {
    let query = QueryParams::parse(query.as_deref())?;
    let signature = query.get("signature").unwrap_or_default();
    let header = |name| headers.get(name).and_then(|v| v.to_str().ok());
    let request = LocalPut {
        key: &key,
        expires: query.number("expires")?.unwrap_or_default() as i64,
        length: query.number("length")?.unwrap_or_default(),
        signature,
        content_type: header(CONTENT_TYPE),
        content_length: header(CONTENT_LENGTH).and_then(|v| v.parse().ok()),
    };
    state
        .signer
        .verify(&request, state.clock.now())
        .map_err(refusal)?;
    let expected = request.length;
    let bytes = read_body(
        body,
        &headers,
        expected as usize,
        "send the extract the URL was issued for",
    )
    .await?;
    if bytes.len() as u64 != expected {
        return Err(refusal(LocalPutError::WrongBody { expected }));
    }
    state.objects.put(&key, bytes).await?;
    let outcome = ingest_staged(&state.ingest, &key).await?.to_string();
    Ok(Json(json!({ "stored": key, "ingest": outcome })))
}

fn refusal(error: LocalPutError) -> ApiError {
    match error {
        LocalPutError::WrongBody { .. } => ApiError::BadRequest(error.to_string()),
        other => ApiError::Forbidden(other.to_string()),
    }
}
