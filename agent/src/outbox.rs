//! The outbox: where the agent hands write-backs to the MIS side, and takes their results.
//!
//! - `outbox/<task id>.json`: one task, as rollcall hands it: `{"id", "kind", "partner",
//!   "queuedAt", "payload"}` (the payload is the partner's write-back, checked by rollcall);
//! - `outbox/results/<task id>.json`: written by the MIS side when it has applied (or refused)
//!   the task: `{"succeeded": true, "result": [...]}` or `{"succeeded": false, "message":
//!   "why"}`;
//! - `outbox/done/`: where both files go once the result is reported to rollcall.
//!
//! The school's own refresh tasks (kind `Refresh`, no partner) never go to the outbox: the
//! agent itself sends the result sets they name on the same run and reports the outcome.
//!
//! A task is written once: the state file records it, and a task whose file is in the outbox
//! or in `done/` is never written again, even if the agent stopped before recording it.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::files::{move_into, write_atomic};
use crate::server::{AgentError, Server};
use crate::state::State;

pub struct Outbox {
    dir: PathBuf,
}

/// The school asking for result sets again: `sets` (`None`: all of them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refresh {
    pub id: String,
    pub sets: Option<BTreeSet<String>>,
}

impl Refresh {
    fn of(task: &Value) -> Option<Self> {
        let school_task = task["partner"].is_null() && task["kind"] == "Refresh";
        let id = task["id"].as_str().filter(|_| school_task)?;
        let sets: BTreeSet<String> = (task["payload"]["resultSets"].as_array().into_iter())
            .flatten()
            .filter_map(|s| s.as_str().map(str::to_owned))
            .collect();
        Some(Self {
            id: id.to_owned(),
            sets: (!sets.is_empty()).then_some(sets),
        })
    }

    pub fn wants(&self, set: &str) -> bool {
        self.sets.as_ref().is_none_or(|sets| sets.contains(set))
    }
}

/// What taking the school's tasks gave: write-backs written to the outbox, and refreshes
/// for the agent itself.
#[derive(Debug, Clone, Default)]
pub struct Taken {
    pub written: usize,
    pub refreshes: Vec<Refresh>,
}

/// How many files wait in each part of the outbox.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub pending: usize,
    pub results: usize,
    pub done: usize,
}

impl Outbox {
    pub fn new(dir: PathBuf) -> Self {
        Self { dir }
    }

    fn task_file(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.json"))
    }

    fn done_file(&self, id: &str) -> PathBuf {
        self.dir.join("done").join(format!("{id}.json"))
    }

    /// Writes each open write-back not written before; answers how many were written, and
    /// the school's refreshes.
    pub async fn take_tasks(
        &self,
        server: &Server,
        state: &mut State,
        state_file: &Path,
    ) -> Result<Taken, AgentError> {
        let answer = server
            .call("the school's tasks", |client| {
                client.get(server.url("/agent/v1/tasks"))
            })
            .await?;
        let mut taken = Taken::default();
        for task in answer.body["tasks"].as_array().into_iter().flatten() {
            if let Some(refresh) = Refresh::of(task) {
                taken.refreshes.push(refresh);
                continue;
            }
            let Some(id) = task["id"].as_str().filter(|id| safe_id(id)) else {
                eprintln!(
                    "rollcall-agent: a task with an unusable id was skipped: {}",
                    task["id"]
                );
                continue;
            };
            if state.tasks_written.contains(id)
                || self.task_file(id).exists()
                || self.done_file(id).exists()
            {
                continue;
            }
            let bytes = serde_json::to_vec_pretty(task).map_err(|e| AgentError::Other(e.into()))?;
            write_atomic(&self.task_file(id), &bytes).map_err(|e| {
                AgentError::Config(format!(
                    "cannot write to the outbox {}: {e}",
                    self.dir.display()
                ))
            })?;
            state.tasks_written.insert(id.to_owned());
            state
                .save(state_file)
                .map_err(|e| AgentError::Config(e.to_string()))?;
            taken.written += 1;
        }
        Ok(taken)
    }

    /// Reports each refresh done: the sets it asked for were sent on this run, or some are
    /// not among the school's exports at all.
    pub async fn report_refreshes(
        &self,
        server: &Server,
        refreshes: &[Refresh],
        sent: &[String],
        exported: &BTreeSet<String>,
    ) -> Result<(), AgentError> {
        for refresh in refreshes {
            let missing: Vec<&String> = (refresh.sets.iter().flatten())
                .filter(|set| !exported.contains(*set))
                .collect();
            let body = match missing.is_empty() {
                true => json!({
                    "succeeded": true,
                    "result": { "sent": sent.iter().filter(|s| refresh.wants(s)).collect::<Vec<_>>() },
                }),
                false => json!({
                    "succeeded": false,
                    "message": format!(
                        "the agent's source folder holds no {}: the MIS export does not include it",
                        missing.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
                    ),
                }),
            };
            let path = format!("/agent/v1/tasks/{}/result", refresh.id);
            match server
                .call("a refresh's result", |client| {
                    client.post(server.url(&path)).json(&body)
                })
                .await
            {
                // Reported before: a run that stopped after reporting it.
                Ok(_) => {}
                Err(AgentError::Refused { status, .. })
                    if status == reqwest::StatusCode::CONFLICT => {}
                Err(AgentError::Refused { message, .. }) => {
                    eprintln!(
                        "rollcall-agent: refresh {}: rollcall refused its result: {message}",
                        refresh.id
                    );
                }
                Err(other) => return Err(other),
            }
        }
        Ok(())
    }

    /// Reports every result the MIS side left in `results/`; answers how many were reported.
    /// A result rollcall refuses stays where it is, with a message saying why.
    pub async fn report_results(&self, server: &Server) -> Result<usize, AgentError> {
        let results = self.dir.join("results");
        let Ok(entries) = std::fs::read_dir(&results) else {
            return Ok(0);
        };
        let mut files: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .collect();
        files.sort();
        let mut reported = 0;
        for file in files {
            let Some(id) = file
                .file_stem()
                .and_then(|s| s.to_str())
                .filter(|id| safe_id(id))
            else {
                continue;
            };
            let id = id.to_owned();
            let body: Value = match std::fs::read(&file)
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok())
            {
                Some(body) => body,
                None => {
                    eprintln!(
                        "rollcall-agent: {} is not JSON; write {{\"succeeded\": true, \"result\": [...]}} \
                         or {{\"succeeded\": false, \"message\": \"why\"}}",
                        file.display()
                    );
                    continue;
                }
            };
            let path = format!("/agent/v1/tasks/{id}/result");
            match server
                .call("a task's result", |client| {
                    client.post(server.url(&path)).json(&body)
                })
                .await
            {
                Ok(_) => reported += 1,
                // Reported before: the agent stopped before moving the files.
                Err(AgentError::Refused { status, .. })
                    if status == reqwest::StatusCode::CONFLICT => {}
                Err(AgentError::Refused { message, .. }) => {
                    eprintln!(
                        "rollcall-agent: {}: rollcall refused it: {message}",
                        file.display()
                    );
                    continue;
                }
                Err(other) => return Err(other),
            }
            let done = self.dir.join("done");
            let moved =
                move_into(&file, &done.join(format!("{id}.result.json"))).and_then(|()| match self
                    .task_file(&id)
                    .exists()
                {
                    true => move_into(&self.task_file(&id), &self.done_file(&id)),
                    false => Ok(()),
                });
            moved.map_err(|e| {
                AgentError::Config(format!(
                    "cannot move {} to {}: {e}",
                    file.display(),
                    done.display()
                ))
            })?;
        }
        Ok(reported)
    }

    pub fn counts(&self) -> Counts {
        let count = |dir: &Path| {
            std::fs::read_dir(dir).map_or(0, |entries| {
                entries
                    .filter_map(Result::ok)
                    .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
                    .count()
            })
        };
        Counts {
            pending: count(&self.dir),
            results: count(&self.dir.join("results")),
            done: count(&self.dir.join("done")),
        }
    }
}

/// An id usable as a file name (rollcall's are `<time>.<hex>`): letters, digits, `-`, `_`
/// and `.`, never a leading dot or `..`.
fn safe_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && !id.starts_with('.')
        && !id.contains("..")
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

#[cfg(test)]
mod tests {
    #[test]
    fn task_ids_are_file_names_and_nothing_else() {
        assert!(super::safe_id("20260921141320.388cf036f6c048e5"));
        for bad in ["", ".hidden", "../state", "a/b", "a\\b", "a..b"] {
            assert!(!super::safe_id(bad), "{bad}");
        }
    }
}
