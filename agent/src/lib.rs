//! The school-side agent: reads the MIS's exports ([`sources`]), uploads what changed
//! ([`run`], with its [`state`] and idempotency keys), retries what may pass ([`server`]),
//! hands write-backs to the MIS ([`outbox`]); configured by [`setup`] and [`config`]; stops
//! cleanly on Ctrl-C ([`stop`]).
//!
//! An upload that fits one request goes to `POST /agent/v1/extracts`; a larger one is put to
//! a pre-signed URL from `POST /agent/v1/uploads` and its outcome polled. The server publishes
//! an upload's result sets in atomic chunks of 33, in order; an upload refused with 409
//! (another upload raced it) may leave earlier chunks published, and running the agent again
//! confirms those and publishes the rest.

pub mod config;
pub mod files;
pub mod health;
pub mod outbox;
pub mod progress;
pub mod run;
pub mod server;
pub mod setup;
pub mod sources;
pub mod state;
pub mod status;
pub mod stop;

use std::time::Duration;

use anyhow::{Context, bail};
use reqwest::{Client, RequestBuilder};
use serde_json::{Map, Value, json};

pub use server::{AgentError, Answer, Server};

/// The direct upload limit, with a margin for the JSON around each batch.
pub const BATCH_BYTES: usize = 5 * 1024 * 1024 - 64 * 1024;
/// The staged upload limit, with the same margin.
pub const STAGED_BATCH_BYTES: usize = 50 * 1024 * 1024 - 64 * 1024;
/// How long the agent waits for a staged upload's outcome.
pub const OUTCOME_WAIT: Duration = Duration::from_secs(15 * 60);

/// Splits `{"resultSets": {...}}` into bodies under `limit` bytes, whole result sets each.
pub fn batches(extract: &Value, limit: usize) -> anyhow::Result<Vec<Value>> {
    let sets = extract
        .get("resultSets")
        .and_then(Value::as_object)
        .context(
            "the extract must be a JSON object {\"resultSets\": {\"Students\": [...], ...}}",
        )?;
    let mut batches: Vec<Map<String, Value>> = Vec::new();
    let mut current = Map::new();
    let mut size = 0;
    for (name, rows) in sets {
        let len = serde_json::to_vec(rows)?.len() + name.len() + 8;
        if len > limit {
            bail!("result set {name} alone is {len} bytes, over the {limit}-byte upload limit");
        }
        if size + len > limit && !current.is_empty() {
            batches.push(std::mem::take(&mut current));
            size = 0;
        }
        current.insert(name.clone(), rows.clone());
        size += len;
    }
    if !current.is_empty() {
        batches.push(current);
    }
    Ok(batches
        .into_iter()
        .map(|b| json!({ "resultSets": b }))
        .collect())
}

/// Uploads an extract to `base_url`; answers what rollcall reported for each upload.
pub async fn upload(
    client: &Client,
    base_url: &str,
    agent_key: &str,
    extract: &Value,
) -> anyhow::Result<Vec<Value>> {
    let mut server = Server::new(base_url, agent_key, UPLOAD_RETRY);
    server.client = client.clone();
    let body = serde_json::to_vec(extract)?;
    if body.len() <= BATCH_BYTES {
        return Ok(vec![upload_body(&server, body, None).await?.body]);
    }
    let mut answers = Vec::new();
    for batch in batches(extract, STAGED_BATCH_BYTES)? {
        let body = serde_json::to_vec(&batch)?;
        answers.push(upload_body(&server, body, None).await?.body);
    }
    Ok(answers)
}

/// How long `upload` retries a transient failure.
const UPLOAD_RETRY: Duration = Duration::from_secs(120);

/// Uploads one extract body: directly when it fits one request, else through a pre-signed
/// URL. With an idempotency key, a repeat of an upload rollcall already stored answers its
/// first answer instead of storing it again.
pub async fn upload_body(
    server: &Server,
    body: Vec<u8>,
    idempotency_key: Option<&str>,
) -> Result<Answer, AgentError> {
    if body.len() <= BATCH_BYTES {
        return server
            .call("the extract", |client| {
                with_key(
                    client.post(server.url("/agent/v1/extracts")),
                    idempotency_key,
                )
                .header("content-type", "application/json")
                .body(body.clone())
            })
            .await;
    }
    upload_staged(server, body, idempotency_key).await
}

fn with_key(request: RequestBuilder, key: Option<&str>) -> RequestBuilder {
    match key {
        Some(key) => request.header("Idempotency-Key", key),
        None => request,
    }
}

/// Asks for a pre-signed URL, puts the extract there, and waits for its outcome. A replayed
/// grant (the same idempotency key as an upload already made) goes straight to the outcome.
async fn upload_staged(
    server: &Server,
    body: Vec<u8>,
    idempotency_key: Option<&str>,
) -> Result<Answer, AgentError> {
    let request = json!({ "contentLength": body.len(), "contentType": "application/json" });
    let grant = server
        .call("an upload URL", |client| {
            with_key(
                client.post(server.url("/agent/v1/uploads")),
                idempotency_key,
            )
            .json(&request)
        })
        .await?;
    let status_url = grant.body["statusUrl"]
        .as_str()
        .context("rollcall answered no status URL")?
        .to_owned();
    if !grant.replayed {
        let url = grant.body["url"]
            .as_str()
            .context("rollcall answered no upload URL")?;
        let headers: Vec<(String, String)> = grant.body["headers"]
            .as_object()
            .into_iter()
            .flatten()
            // reqwest sets the length from the body itself.
            .filter(|(name, _)| !name.eq_ignore_ascii_case("content-length"))
            .map(|(name, value)| (name.clone(), value.as_str().unwrap_or_default().to_owned()))
            .collect();
        let stored = server
            .client
            .put(url)
            .headers(header_map(&headers))
            .body(body)
            .send()
            .await
            .context("putting the extract to its upload URL")?;
        if !stored.status().is_success() {
            let status = stored.status();
            let text = stored.text().await.unwrap_or_default();
            return Err(AgentError::Refused {
                what: "the extract at its upload URL".into(),
                status,
                message: text,
            });
        }
    }
    let mut outcome = wait_for_outcome(server, &status_url).await?;
    outcome.replayed = grant.replayed;
    Ok(outcome)
}

fn header_map(headers: &[(String, String)]) -> reqwest::header::HeaderMap {
    headers
        .iter()
        .filter_map(|(name, value)| {
            Some((
                reqwest::header::HeaderName::from_bytes(name.as_bytes()).ok()?,
                reqwest::header::HeaderValue::from_str(value).ok()?,
            ))
        })
        .collect()
}

async fn wait_for_outcome(server: &Server, status_url: &str) -> Result<Answer, AgentError> {
    let deadline = tokio::time::Instant::now() + OUTCOME_WAIT;
    let mut pause = Duration::from_millis(200);
    loop {
        let status = server
            .call("the upload's outcome", |client| {
                client.get(server.url(status_url))
            })
            .await?;
        match status.body["status"].as_str() {
            Some("stored") => {
                return Ok(Answer {
                    body: status.body["result"].clone(),
                    ..status
                });
            }
            Some("refused" | "expired") => {
                return Err(AgentError::Refused {
                    what: "the upload".into(),
                    status: reqwest::StatusCode::UNPROCESSABLE_ENTITY,
                    message: status.body["message"]
                        .as_str()
                        .unwrap_or("no message")
                        .to_owned(),
                });
            }
            _ if tokio::time::Instant::now() >= deadline => {
                return Err(AgentError::Other(anyhow::anyhow!(
                    "the upload is still {} after {OUTCOME_WAIT:?}; run again later to confirm it",
                    status.body["status"]
                )));
            }
            _ => {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(5));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_keep_result_sets_whole_and_under_the_limit() {
        let rows = |n: usize| json!(vec![json!({"Id": "1", "Note": "x".repeat(n)}); 1]);
        let extract = json!({"resultSets": {"A": rows(40), "B": rows(40), "C": rows(10)}});
        let split = batches(&extract, 120).unwrap();
        let names: Vec<Vec<&String>> = split
            .iter()
            .map(|b| b["resultSets"].as_object().unwrap().keys().collect())
            .collect();
        assert_eq!(names, vec![vec!["A"], vec!["B", "C"]]);
        let error = batches(&json!({"resultSets": {"A": rows(200)}}), 120).unwrap_err();
        assert!(
            error.to_string().contains("result set A alone is"),
            "{error}"
        );
        assert!(batches(&json!({"Students": []}), 80).is_err());
    }
}
