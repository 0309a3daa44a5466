//! One pass of the agent: read the source folder; upload the result sets whose content changed
//! since rollcall last confirmed them (every one with `--full`); take the school's tasks
//! (write-backs into the outbox; refreshes the school asked for, whose sets it sends again
//! now and reports done); report the results the MIS side left in the outbox.
//!
//! Never lose, never duplicate: before an upload is sent, its idempotency key and the content
//! it carries are written to the state file; once rollcall answers, the result sets are
//! recorded as confirmed. A run that finds an upload pending (the agent stopped between the
//! two) sends it again with the same key when its content has not changed since: rollcall
//! answers a key it already stored with its first answer, so nothing is stored twice.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use rollcall_core::secret::random_hex;
use rollcall_core::timestamp::Timestamp;

use crate::config::{Config, state_path};
use crate::outbox::Outbox;
use crate::progress::Bar;
use crate::server::{AgentError, Server};
use crate::sources::{Extract, read_folder_with};
use crate::state::{Pending, Run, SentSet, State, content_hash, row_hashes};
use crate::{BATCH_BYTES, STAGED_BATCH_BYTES, upload_body};

#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// Read and check everything, print what would be sent, call nothing.
    pub dry_run: bool,
    /// Send every result set, changed or not.
    pub full: bool,
    /// Draw progress bars (stdout is a terminal).
    pub progress: bool,
}

/// What a run did.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// Result sets uploaded (or, in a dry run, that would be), with their row counts.
    pub sent: Vec<(String, usize)>,
    pub unchanged: Vec<String>,
    pub tasks_written: usize,
    pub results_reported: usize,
}

fn now() -> String {
    Timestamp::from_millis(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64),
    )
    .to_rfc3339()
}

/// Reads the source folder and hashes each result set.
fn read(
    config: &Config,
    progress: bool,
) -> Result<(Extract, BTreeMap<String, String>), AgentError> {
    let bar = Bar::new(progress, "reading", 0);
    let read = read_folder_with(&config.source, &mut |file, files| {
        bar.set_length(files as u64);
        bar.doing(&file.file_name().unwrap_or_default().to_string_lossy());
        bar.advance(1);
    });
    bar.finish();
    let extract = read.map_err(|e| AgentError::Input(e.to_string()))?;
    if let Some(estab) = &config.estab {
        extract
            .check_school(estab)
            .map_err(|e| AgentError::Input(e.to_string()))?;
    }
    let hashes = extract
        .sets
        .iter()
        .map(|(name, set)| (name.clone(), content_hash(&set.rows)))
        .collect();
    Ok((extract, hashes))
}

pub async fn run(
    config_path: &Path,
    config: &Config,
    server: &Server,
    options: Options,
    out: &mut dyn Write,
) -> Result<Outcome, AgentError> {
    let state_file = state_path(config_path);
    let mut state = State::load(&state_file).map_err(|e| AgentError::Config(e.to_string()))?;
    let started_at = now();
    let result = pass(
        config_path,
        config,
        server,
        options,
        &mut state,
        &state_file,
        out,
    )
    .await;
    if options.dry_run {
        return result;
    }
    let (succeeded, message, sent) = match &result {
        Ok(outcome) => (
            true,
            None,
            outcome.sent.iter().map(|(n, _)| n.clone()).collect(),
        ),
        Err(error) => (false, Some(error.to_string()), Vec::new()),
    };
    state.record_run(Run {
        started_at,
        ended_at: now(),
        succeeded,
        sent,
        message,
    });
    state
        .save(&state_file)
        .map_err(|e| AgentError::Config(e.to_string()))?;
    let counts = Outbox::new(config.outbox(config_path)).counts();
    let report = crate::health::report(config, &state, counts);
    if let Err(problem) = crate::health::send(server, &report).await {
        let _ = writeln!(out, "warning: the health report was not sent: {problem}");
    }
    result
}

async fn pass(
    config_path: &Path,
    config: &Config,
    server: &Server,
    options: Options,
    state: &mut State,
    state_file: &Path,
    out: &mut dyn Write,
) -> Result<Outcome, AgentError> {
    let (extract, hashes) = read(config, options.progress)?;
    for warning in &extract.warnings {
        let _ = writeln!(out, "warning: {warning}");
    }
    let mut outcome = Outcome::default();
    let (changed, unchanged): (Vec<&String>, Vec<&String>) = extract
        .sets
        .keys()
        .partition(|name| options.full || state.changed(name, &hashes[*name]));
    outcome.unchanged = unchanged.into_iter().cloned().collect();
    if options.dry_run {
        for name in &changed {
            let rows = &extract.sets[*name].rows;
            let c = state.changes(name, rows);
            let _ = writeln!(
                out,
                "would send {name}: {} rows ({} added, {} changed, {} deleted)",
                rows.len(),
                c.added,
                c.changed,
                c.deleted
            );
            outcome.sent.push(((*name).clone(), rows.len()));
        }
        let _ = writeln!(out, "unchanged: {}", outcome.unchanged.len());
        return Ok(outcome);
    }
    server.check_stop("uploading")?;
    finish_pending(server, &extract, &hashes, state, state_file, out).await?;
    let changed: Vec<String> = changed
        .into_iter()
        .filter(|name| options.full || state.changed(name, &hashes[*name]))
        .cloned()
        .collect();
    let uploads = Uploads {
        server,
        extract: &extract,
        hashes: &hashes,
        state_file,
        progress: options.progress,
    };
    uploads.send(&changed, state, &mut outcome, out).await?;
    let outbox = Outbox::new(config.outbox(config_path));
    server.check_stop("taking the school's tasks")?;
    let taken = outbox.take_tasks(server, state, state_file).await?;
    outcome.tasks_written = taken.written;
    if !taken.refreshes.is_empty() {
        // What the school asked for again and this run has not sent yet.
        let again: Vec<String> = (extract.sets.keys())
            .filter(|name| taken.refreshes.iter().any(|r| r.wants(name)))
            .filter(|name| !changed.contains(name))
            .cloned()
            .collect();
        uploads.send(&again, state, &mut outcome, out).await?;
        outcome.unchanged.retain(|name| !again.contains(name));
        let sent: Vec<String> = outcome.sent.iter().map(|(name, _)| name.clone()).collect();
        let exported = extract.sets.keys().cloned().collect();
        (outbox.report_refreshes(server, &taken.refreshes, &sent, &exported)).await?;
    }
    server.check_stop("reporting the MIS's results")?;
    outcome.results_reported = outbox.report_results(server).await?;
    Ok(outcome)
}

/// Sending result sets of one extract, each upload recorded as pending before it is sent.
struct Uploads<'a> {
    server: &'a Server,
    extract: &'a Extract,
    hashes: &'a BTreeMap<String, String>,
    state_file: &'a Path,
    progress: bool,
}

impl Uploads<'_> {
    async fn send(
        &self,
        names: &[String],
        state: &mut State,
        outcome: &mut Outcome,
        out: &mut dyn Write,
    ) -> Result<(), AgentError> {
        let bar = Bar::new(
            self.progress && !names.is_empty(),
            "uploading",
            names.len() as u64,
        );
        let out = &mut bar.around(out);
        for batch in batches(self.extract, names)? {
            self.server
                .check_stop(&format!("uploading {}", batch.join(", ")))?;
            bar.doing(&batch.join(", "));
            let pending = Pending {
                idempotency_key: format!("rc-{}", random_hex::<16>()),
                sets: (batch.iter())
                    .map(|name| (name.clone(), self.hashes[name].clone()))
                    .collect(),
                started_at: now(),
            };
            state.pending.push(pending.clone());
            state
                .save(self.state_file)
                .map_err(|e| AgentError::Config(e.to_string()))?;
            send(
                self.server,
                self.extract,
                &pending,
                state,
                self.state_file,
                out,
            )
            .await?;
            bar.advance(batch.len() as u64);
            for name in &batch {
                let rows = self.extract.sets[name].rows.len();
                outcome.sent.push((name.clone(), rows));
            }
        }
        bar.finish();
        Ok(())
    }
}

/// Uploads left pending by an earlier run: again with the same key where their content is
/// unchanged (rollcall answers the first answer if it stored them), else dropped (the
/// changed content goes in a new upload).
async fn finish_pending(
    server: &Server,
    extract: &Extract,
    hashes: &BTreeMap<String, String>,
    state: &mut State,
    state_file: &Path,
    out: &mut dyn Write,
) -> Result<(), AgentError> {
    for pending in std::mem::take(&mut state.pending) {
        let same = pending
            .sets
            .iter()
            .all(|(name, hash)| hashes.get(name) == Some(hash));
        if same {
            state.pending.push(pending.clone());
            let _ = writeln!(
                out,
                "finishing an upload an earlier run left unconfirmed ({})",
                names(&pending)
            );
            send(server, extract, &pending, state, state_file, out).await?;
        }
    }
    state
        .save(state_file)
        .map_err(|e| AgentError::Config(e.to_string()))
}

fn names(pending: &Pending) -> String {
    pending.sets.keys().cloned().collect::<Vec<_>>().join(", ")
}

/// Sends one pending upload and records what rollcall confirmed.
async fn send(
    server: &Server,
    extract: &Extract,
    pending: &Pending,
    state: &mut State,
    state_file: &Path,
    out: &mut dyn Write,
) -> Result<(), AgentError> {
    let body = serde_json::to_vec(&extract.body_of(pending.sets.keys()))
        .map_err(|e| AgentError::Other(e.into()))?;
    let answer = upload_body(server, body, Some(&pending.idempotency_key)).await?;
    let sent_at = now();
    for (name, hash) in &pending.sets {
        let rows = &extract.sets[name].rows;
        let reported = &answer.body["resultSets"][name];
        let _ = writeln!(
            out,
            "sent {name}: {} rows ({} added, {} changed, {} deleted){}",
            rows.len(),
            reported["added"],
            reported["changed"],
            reported["deleted"],
            if answer.replayed { ", confirmed" } else { "" }
        );
        state.sets.insert(
            name.clone(),
            SentSet {
                hash: hash.clone(),
                rows: row_hashes(rows),
                version: reported["version"].clone(),
                sent_at: sent_at.clone(),
            },
        );
    }
    state
        .pending
        .retain(|p| p.idempotency_key != pending.idempotency_key);
    state
        .save(state_file)
        .map_err(|e| AgentError::Config(e.to_string()))
}

/// The changed result sets in uploads under the size limits: one upload while they fit a
/// direct request, else staged uploads of whole result sets.
fn batches(extract: &Extract, changed: &[String]) -> Result<Vec<Vec<String>>, AgentError> {
    let sizes: Vec<(String, usize)> = changed
        .iter()
        .map(|name| {
            let size = serde_json::to_vec(&extract.sets[name].rows).map_or(0, |b| b.len());
            (name.clone(), size + name.len() + 8)
        })
        .collect();
    let total: usize = sizes.iter().map(|(_, s)| s).sum();
    let limit = if total <= BATCH_BYTES {
        BATCH_BYTES
    } else {
        STAGED_BATCH_BYTES
    };
    let mut batches: Vec<Vec<String>> = Vec::new();
    let mut size = 0;
    for (name, len) in sizes {
        if len > limit {
            return Err(AgentError::Input(format!(
                "{}: {name} is {len} bytes, over the {limit}-byte limit of one upload",
                extract.sets[&name].file.display()
            )));
        }
        match batches.last_mut() {
            Some(batch) if size + len <= limit => batch.push(name),
            _ => {
                batches.push(vec![name]);
                size = 0;
            }
        }
        size += len;
    }
    Ok(batches)
}
