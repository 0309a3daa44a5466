//! `rollcall-agent status`: what the agent recorded (its last runs, what rollcall confirmed,
//! what is pending, the outbox) and what rollcall holds of the school now
//! (`GET /agent/v1/resultsets`), with where the two disagree.

use std::io::Write;
use std::path::Path;

use serde_json::Value;

use crate::config::{Config, state_path};
use crate::outbox::Outbox;
use crate::server::{AgentError, Server};
use crate::state::State;

/// Writes the status to `out`; `server` is asked what it holds (a failure to reach it is
/// reported, not an error: the local part stands on its own).
pub async fn status(
    config_path: &Path,
    config: &Config,
    server: &Server,
    out: &mut dyn Write,
) -> Result<(), AgentError> {
    let state =
        State::load(&state_path(config_path)).map_err(|e| AgentError::Config(e.to_string()))?;
    local(config_path, config, &state, out).map_err(|e| AgentError::Other(e.into()))?;
    let held = server
        .call("what rollcall holds", |client| {
            client.get(server.url("/agent/v1/resultsets"))
        })
        .await;
    match held {
        Ok(answer) => remote(&state, &answer.body, out),
        Err(error) => writeln!(
            out,
            "\nrollcall could not say what it holds: {error}\n\
             (the agent's own record above still stands)"
        ),
    }
    .map_err(|e| AgentError::Other(e.into()))
}

fn local(
    config_path: &Path,
    config: &Config,
    state: &State,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    writeln!(out, "rollcall: {}", config.url)?;
    if let Some(estab) = &config.estab {
        writeln!(out, "school: {estab}")?;
    }
    writeln!(out, "source folder: {}", config.source.display())?;
    writeln!(out, "\nlast runs:")?;
    if state.runs.is_empty() {
        writeln!(out, "  none yet: `rollcall-agent run`")?;
    }
    for run in state.runs.iter().rev().take(5) {
        let outcome = if run.succeeded { "ok" } else { "failed" };
        let detail = run
            .message
            .clone()
            .unwrap_or_else(|| format!("{} sent", run.sent.len()));
        writeln!(
            out,
            "  {} → {}  {outcome}: {detail}",
            run.started_at, run.ended_at
        )?;
    }
    writeln!(out, "\nresult sets confirmed by rollcall:")?;
    for (name, set) in &state.sets {
        writeln!(
            out,
            "  {name}: {} rows, version {}, sent {}",
            set.rows.len(),
            set.version,
            set.sent_at
        )?;
    }
    writeln!(out, "\npending uploads: {}", state.pending.len())?;
    for pending in &state.pending {
        let names: Vec<&String> = pending.sets.keys().collect();
        writeln!(out, "  since {}: {names:?}", pending.started_at)?;
    }
    let counts = Outbox::new(config.outbox(config_path)).counts();
    writeln!(
        out,
        "\noutbox: {} tasks waiting for the MIS, {} results to report, {} done",
        counts.pending, counts.results, counts.done
    )
}

/// rollcall's answer, each set with a note where the agent's record differs.
fn remote(state: &State, held: &Value, out: &mut dyn Write) -> std::io::Result<()> {
    let sets = held["resultSets"].as_array().cloned().unwrap_or_default();
    writeln!(
        out,
        "\nrollcall holds for school {}: {} result sets",
        held["estab"].as_str().unwrap_or("?"),
        sets.len()
    )?;
    for set in &sets {
        let name = set["name"].as_str().unwrap_or("?");
        let stale = if set["stale"] == true {
            "; STALE: out of date, partners are told so; send it again"
        } else {
            ""
        };
        let note = match state.sets.get(name) {
            Some(sent) if sent.version.is_u64() && sent.version != set["version"] => format!(
                "; the agent last confirmed version {}: another upload (a script, a second \
                 agent) has replaced it",
                sent.version
            ),
            None => "; not sent by this agent".to_owned(),
            Some(_) => String::new(),
        };
        writeln!(
            out,
            "  {name}: version {}, {} rows, uploaded {}, current until {}{stale}{note}",
            set["version"],
            set["rows"],
            set["uploadedAt"].as_str().unwrap_or("?"),
            set["validUntil"].as_str().unwrap_or("?"),
        )?;
    }
    Ok(())
}
