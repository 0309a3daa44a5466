//! What the agent knows of what it sent: for each result set the content hash, a hash of each
//! row by id (to tell added, changed and deleted rows), the server's version and when; the
//! uploads sent but not yet confirmed, with their idempotency keys; the tasks written to the
//! outbox; and the last runs. Kept in `<config>.state.json`, written atomically, so a crash at
//! any point leaves either the old state or the new one. It holds ids and hashes, no names
//! or other personal data.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use rollcall_core::dataset::Row;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::files::write_atomic;

/// How many runs the state remembers.
const RUNS_KEPT: usize = 20;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct State {
    /// Result sets whose upload rollcall confirmed.
    #[serde(default)]
    pub sets: BTreeMap<String, SentSet>,
    /// Uploads sent, or about to be, whose answer was not recorded yet.
    #[serde(default)]
    pub pending: Vec<Pending>,
    /// Ids of the tasks written to the outbox.
    #[serde(default)]
    pub tasks_written: BTreeSet<String>,
    #[serde(default)]
    pub runs: Vec<Run>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SentSet {
    pub hash: String,
    /// Row id → hash of the row.
    pub rows: BTreeMap<String, String>,
    /// The version rollcall stored (`null` when the upload stored nothing new).
    #[serde(default)]
    pub version: Value,
    pub sent_at: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Pending {
    pub idempotency_key: String,
    /// Result set → content hash of what this upload carries.
    pub sets: BTreeMap<String, String>,
    pub started_at: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Run {
    pub started_at: String,
    pub ended_at: String,
    pub succeeded: bool,
    #[serde(default)]
    pub sent: Vec<String>,
    #[serde(default)]
    pub message: Option<String>,
}

/// Rows added, changed and deleted against what was last sent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Changes {
    pub added: usize,
    pub changed: usize,
    pub deleted: usize,
}

impl State {
    /// The state at `path`; an empty one if there is none yet.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                anyhow::anyhow!(
                    "{} is not a valid state file ({e}); move it away and run with --full",
                    path.display()
                )
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(e) => Err(anyhow::anyhow!("cannot read {}: {e}", path.display())),
        }
    }

    pub fn save(&self, path: &Path) -> anyhow::Result<()> {
        let bytes = serde_json::to_vec_pretty(self)?;
        write_atomic(path, &bytes)
            .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))
    }

    /// Whether `name` with content `hash` differs from what rollcall confirmed.
    pub fn changed(&self, name: &str, hash: &str) -> bool {
        self.sets.get(name).is_none_or(|sent| sent.hash != hash)
    }

    /// How `rows` differ from what was last sent of `name`.
    pub fn changes(&self, name: &str, rows: &[Row]) -> Changes {
        let before = self.sets.get(name).map(|s| &s.rows);
        let now = row_hashes(rows);
        let mut changes = Changes::default();
        for (id, hash) in &now {
            match before.and_then(|b| b.get(id)) {
                None => changes.added += 1,
                Some(old) if old != hash => changes.changed += 1,
                Some(_) => {}
            }
        }
        changes.deleted =
            before.map_or(0, |b| b.keys().filter(|id| !now.contains_key(*id)).count());
        changes
    }

    pub fn record_run(&mut self, run: Run) {
        self.runs.push(run);
        let excess = self.runs.len().saturating_sub(RUNS_KEPT);
        self.runs.drain(..excess);
    }
}

/// The content hash of a result set's rows.
pub fn content_hash(rows: &[Row]) -> String {
    let bytes = serde_json::to_vec(rows).unwrap_or_default();
    hash_hex(&bytes, 32)
}

/// Row id → a short hash of the row.
pub fn row_hashes(rows: &[Row]) -> BTreeMap<String, String> {
    rows.iter()
        .map(|row| {
            let id = match row.get("Id") {
                Some(Value::String(s)) => s.clone(),
                Some(other) => other.to_string(),
                None => String::new(),
            };
            let bytes = serde_json::to_vec(row).unwrap_or_default();
            (id, hash_hex(&bytes, 12))
        })
        .collect()
}

fn hash_hex(bytes: &[u8], chars: usize) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes);
    let mut text = hex::encode(digest.as_ref());
    text.truncate(chars);
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rows(values: Value) -> Vec<Row> {
        values
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_object().unwrap().clone())
            .collect()
    }

    #[test]
    fn changes_count_added_changed_and_deleted_rows() {
        let first = rows(json!([{"Id": "1", "A": "x"}, {"Id": "2", "A": "y"}]));
        let mut state = State::default();
        state.sets.insert(
            "Students".into(),
            SentSet {
                hash: content_hash(&first),
                rows: row_hashes(&first),
                ..SentSet::default()
            },
        );
        assert!(!state.changed("Students", &content_hash(&first)));
        let next = rows(json!([{"Id": "1", "A": "z"}, {"Id": "3", "A": "w"}]));
        assert!(state.changed("Students", &content_hash(&next)));
        let changes = state.changes("Students", &next);
        assert_eq!(
            changes,
            Changes {
                added: 1,
                changed: 1,
                deleted: 1
            }
        );
        assert!(state.changed("Staff", "anything"));
    }

    #[test]
    fn the_state_is_saved_whole_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agent.state.json");
        assert_eq!(State::load(&path).unwrap(), State::default());
        let mut state = State::default();
        state.tasks_written.insert("t1".into());
        for n in 0..25 {
            state.record_run(Run {
                started_at: n.to_string(),
                ended_at: n.to_string(),
                succeeded: true,
                sent: vec![],
                message: None,
            });
        }
        state.save(&path).unwrap();
        let read = State::load(&path).unwrap();
        assert_eq!(read, state);
        assert_eq!(read.runs.len(), 20);
        assert_eq!(read.runs[0].started_at, "5");
        std::fs::write(&path, "{").unwrap();
        assert!(
            State::load(&path)
                .unwrap_err()
                .to_string()
                .contains("--full")
        );
    }
}
