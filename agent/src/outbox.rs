//! The outbox: where the agent hands write-backs to the MIS side, and takes their results.
//!
//! - `outbox/<task id>.json`: one task, as rollcall hands it: `{"id", "kind", "partner",
//!   "queuedAt", "payload"}` (the payload is the partner's write-back, checked by rollcall);
//! - `outbox/results/<task id>.json`: written by the MIS side when it has applied (or refused)
//!   the task: `{"succeeded": true, "result": [...]}` or `{"succeeded": false, "message":
//!   "why"}`;
//! - `outbox/done/`: where both files go once the result is reported to rollcall.
//!
//! A task is written once: the state file records it, and a task whose file is in the outbox
//! or in `done/` is never written again, even if the agent stopped before recording it.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::files::{move_into, write_atomic};
use crate::server::{AgentError, Server};
use crate::state::State;

pub struct Outbox {
    dir: PathBuf,
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

    /// Writes each open task not written before; answers how many were written.
    pub async fn take_tasks(
        &self,
        server: &Server,
        state: &mut State,
        state_file: &Path,
    ) -> Result<usize, AgentError> {
        let answer = server
            .call("the school's tasks", |client| {
                client.get(server.url("/agent/v1/tasks"))
            })
            .await?;
        let mut written = 0;
        for task in answer.body["tasks"].as_array().into_iter().flatten() {
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
            written += 1;
        }
        Ok(written)
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
