//! The school-side agent's uploads: whole result sets, in as few requests as the API's body
//! limit allows. All result sets of one request are published together or not at all.

use anyhow::{Context, bail};
use serde_json::{Map, Value, json};

/// The API's upload limit, with a margin for the JSON around each batch.
pub const BATCH_BYTES: usize = 5 * 1024 * 1024 - 64 * 1024;

/// Splits `{"resultSets": {...}}` into bodies under [`BATCH_BYTES`], whole result sets each.
pub fn batches(extract: &Value) -> anyhow::Result<Vec<Value>> {
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
        if len > BATCH_BYTES {
            bail!(
                "result set {name} alone is {len} bytes, over the {BATCH_BYTES}-byte upload limit"
            );
        }
        if size + len > BATCH_BYTES && !current.is_empty() {
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

/// Uploads an extract to `base_url`; answers what rollcall reported for each batch.
pub async fn upload(
    client: &reqwest::Client,
    base_url: &str,
    agent_key: &str,
    extract: &Value,
) -> anyhow::Result<Vec<Value>> {
    let mut answers = Vec::new();
    for body in batches(extract)? {
        let response = client
            .post(format!(
                "{}/agent/v1/extracts",
                base_url.trim_end_matches('/')
            ))
            .bearer_auth(agent_key)
            .json(&body)
            .send()
            .await
            .with_context(|| format!("sending the extract to {base_url}"))?;
        let status = response.status();
        let answer: Value = response.json().await.context("reading rollcall's answer")?;
        if !status.is_success() {
            let message = answer["ExceptionMessage"].as_str().unwrap_or("no message");
            bail!("rollcall refused the upload ({status}): {message}");
        }
        answers.push(answer);
    }
    Ok(answers)
}
