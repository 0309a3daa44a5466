//! The school-side agent's uploads. An extract that fits one request goes to
//! `POST /agent/v1/extracts`; a larger one is put to a pre-signed URL from
//! `POST /agent/v1/uploads` and its outcome polled, in as few uploads as the staged limit
//! allows. The server publishes an upload's result sets in atomic chunks of 33, in order; an
//! upload refused with 409 (another upload raced it) may leave earlier chunks published, and
//! running the agent again confirms those and publishes the rest.

pub mod sources;

use std::time::Duration;

use anyhow::{Context, bail};
use reqwest::{Client, Response};
use serde_json::{Map, Value, json};

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
    let agent = Agent {
        client,
        base_url: base_url.trim_end_matches('/'),
        agent_key,
    };
    let body = serde_json::to_vec(extract)?;
    if body.len() <= BATCH_BYTES {
        return Ok(vec![agent.upload_direct(body).await?]);
    }
    let mut answers = Vec::new();
    for batch in batches(extract, STAGED_BATCH_BYTES)? {
        answers.push(agent.upload_staged(serde_json::to_vec(&batch)?).await?);
    }
    Ok(answers)
}

struct Agent<'a> {
    client: &'a Client,
    base_url: &'a str,
    agent_key: &'a str,
}

impl Agent<'_> {
    async fn upload_direct(&self, body: Vec<u8>) -> anyhow::Result<Value> {
        let response = self
            .client
            .post(format!("{}/agent/v1/extracts", self.base_url))
            .bearer_auth(self.agent_key)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .with_context(|| format!("sending the extract to {}", self.base_url))?;
        answer_of(response).await
    }

    /// Asks for a pre-signed URL, puts the extract there, and waits for its outcome.
    async fn upload_staged(&self, body: Vec<u8>) -> anyhow::Result<Value> {
        let response = self
            .client
            .post(format!("{}/agent/v1/uploads", self.base_url))
            .bearer_auth(self.agent_key)
            .json(&json!({ "contentLength": body.len(), "contentType": "application/json" }))
            .send()
            .await
            .with_context(|| format!("asking {} for an upload URL", self.base_url))?;
        let grant = answer_of(response).await?;
        let url = grant["url"]
            .as_str()
            .context("rollcall answered no upload URL")?;
        let mut put = self.client.put(url).body(body);
        for (name, value) in grant["headers"].as_object().into_iter().flatten() {
            // reqwest sets the length from the body itself.
            if !name.eq_ignore_ascii_case("content-length") {
                put = put.header(name.as_str(), value.as_str().unwrap_or_default());
            }
        }
        let stored = put
            .send()
            .await
            .context("putting the extract to its upload URL")?;
        if !stored.status().is_success() {
            let status = stored.status();
            let text = stored.text().await.unwrap_or_default();
            bail!("the upload URL refused the extract ({status}): {text}");
        }
        let status_url = grant["statusUrl"]
            .as_str()
            .context("rollcall answered no status URL")?;
        self.wait_for_outcome(status_url).await
    }

    async fn wait_for_outcome(&self, status_url: &str) -> anyhow::Result<Value> {
        let deadline = tokio::time::Instant::now() + OUTCOME_WAIT;
        let mut pause = Duration::from_millis(200);
        loop {
            let response = self
                .client
                .get(format!("{}{status_url}", self.base_url))
                .bearer_auth(self.agent_key)
                .send()
                .await
                .context("asking rollcall how the upload went")?;
            let status = answer_of(response).await?;
            match status["status"].as_str() {
                Some("stored") => return Ok(status["result"].clone()),
                Some("refused" | "expired") => bail!(
                    "rollcall refused the upload: {}",
                    status["message"].as_str().unwrap_or("no message")
                ),
                _ if tokio::time::Instant::now() >= deadline => {
                    bail!(
                        "the upload is still {} after {OUTCOME_WAIT:?}",
                        status["status"]
                    )
                }
                _ => {
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_secs(5));
                }
            }
        }
    }
}

/// The JSON of a successful answer, or an error with rollcall's message.
async fn answer_of(response: Response) -> anyhow::Result<Value> {
    let status = response.status();
    let answer: Value = response.json().await.context("reading rollcall's answer")?;
    if !status.is_success() {
        let message = answer["ExceptionMessage"].as_str().unwrap_or("no message");
        bail!("rollcall refused the upload ({status}): {message}");
    }
    Ok(answer)
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
