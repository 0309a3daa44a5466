//! After each run the agent tells rollcall how it is (`POST /agent/v1/health`), so the
//! school's data protection lead sees a silent or failing agent without visiting the server.
//! The report holds no personal data: versions, times, the source folder, result-set names and
//! row counts, outbox counts, and the last error's message.

use std::time::Duration;

use serde_json::{Value, json};

use crate::config::Config;
use crate::outbox::Counts;
use crate::server::Server;
use crate::state::State;

/// The report of the state after a run.
pub fn report(config: &Config, state: &State, outbox: Counts) -> Value {
    let last = state.runs.last();
    let last_success = state.runs.iter().rev().find(|r| r.succeeded);
    let sets: Vec<Value> = state
        .sets
        .iter()
        .map(|(name, set)| json!({"name": name, "rows": set.rows.len(), "sentAt": set.sent_at}))
        .collect();
    json!({
        "agentVersion": env!("CARGO_PKG_VERSION"),
        "os": format!("{} {}", std::env::consts::OS, std::env::consts::ARCH),
        "sourceFolder": config.source.display().to_string(),
        "lastRunStart": last.map(|r| r.started_at.clone()),
        "lastRunEnd": last.map(|r| r.ended_at.clone()),
        "lastSuccess": last_success.map(|r| r.ended_at.clone()),
        "lastError": last.and_then(|r| r.message.clone()),
        "resultSets": sets,
        "outbox": {"pending": outbox.pending, "results": outbox.results, "done": outbox.done},
    })
}

/// Sends the report once, without the run's long retries: a report that cannot be sent is
/// a warning, and the next run sends a fresh one.
pub async fn send(server: &Server, report: &Value) -> Result<(), String> {
    let mut once = server.clone();
    once.max_wait = Duration::ZERO;
    once.call("the health report", |client| {
        client.post(once.url("/agent/v1/health")).json(report)
    })
    .await
    .map(|_| ())
    .map_err(|e| e.to_string())
}
