//! Scheduled disposal: every version whose data is more than 30 days out of date, and every
//! superseded version once no read can still be using it, loses its objects and then its
//! record; expired tokens go too, and staged uploads: their objects once ingested, refused
//! or a day old, their records after a week; write-back tasks 30 days after they were queued;
//! the agent's idempotency keys a day after their first use; and objects no version record
//! names that no upload can still publish (an upload stopped between writing its objects and
//! publishing them).
//! Deterministic and idempotent: a run that stops half-way is finished by the next.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use rollcall_core::model::VersionRecord;
use rollcall_core::ports::{Clock, Disposal, ObjectStore, Ports, StagedUploadStore, StoreError};
use rollcall_core::staging::{STAGING_PREFIX, parse_object_key};
use rollcall_core::timestamp::{Duration, Timestamp};
use serde::Serialize;

/// How long a superseded version's objects stay, for reads that started before the upload
/// that replaced it: as long as a paginated walk may read the version it started on.
pub const SUPERSEDED_GRACE: Duration = rollcall_core::walk::WALK_GRACE;
/// How long a staged extract may wait to be ingested (the bucket's lifecycle rule agrees).
pub const STAGED_OBJECT_LIFETIME: Duration = Duration::days(1);

/// The purge's ports: disposal, and reading staged uploads to judge their objects. It can
/// issue, grant or register nothing.
#[derive(Clone)]
pub struct PurgeState {
    disposal: Arc<dyn Disposal>,
    staged_uploads: Arc<dyn StagedUploadStore>,
    objects: Arc<dyn ObjectStore>,
    clock: Arc<dyn Clock>,
}

impl PurgeState {
    pub fn new(ports: &Ports) -> Self {
        Self {
            disposal: ports.control.disposal.clone(),
            staged_uploads: ports.control.staged_uploads.clone(),
            objects: ports.objects.clone(),
            clock: ports.clock.clone(),
        }
    }
}

#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PurgeReport {
    /// Versions whose data was more than 30 days out of date.
    pub expired_versions: u64,
    /// Versions replaced by a newer upload.
    pub superseded_versions: u64,
    pub objects_deleted: u64,
    /// Objects of versions never published (an upload that stopped half-way).
    pub orphan_objects_deleted: u64,
    pub tokens_deleted: u64,
    /// Staged extracts no ingest will take any more.
    pub staged_objects_deleted: u64,
    /// Staged upload records a week old.
    pub staged_uploads_deleted: u64,
    /// Write-back tasks past their lifetime (their sealed payloads with them).
    pub tasks_deleted: u64,
    /// Idempotency keys of uploads a day old (their stored answers with them).
    pub idempotency_keys_deleted: u64,
}

/// Why a version goes, if it does.
fn disposal_reason(record: &VersionRecord, now: Timestamp) -> Option<Reason> {
    if record.is_disposable(now) {
        return Some(Reason::Expired);
    }
    match record.superseded_at {
        Some(at) if now >= at.plus(SUPERSEDED_GRACE) => Some(Reason::Superseded),
        _ => None,
    }
}

enum Reason {
    Expired,
    Superseded,
}

pub async fn purge(state: &PurgeState) -> Result<PurgeReport, StoreError> {
    let now = state.clock.now();
    let mut report = PurgeReport::default();
    let mut records = state.disposal.all_versions().await?;
    // Oldest first within a result set: a run that fails part-way never leaves a superseded
    // version behind a disposed current one (whose number the next upload reuses).
    records.sort_by(|a, b| {
        (&a.estab, &a.result_set, a.version).cmp(&(&b.estab, &b.result_set, b.version))
    });
    for record in records {
        let Some(reason) = disposal_reason(&record, now) else {
            continue;
        };
        report.objects_deleted += dispose(state, &record).await?;
        match reason {
            Reason::Expired => report.expired_versions += 1,
            Reason::Superseded => report.superseded_versions += 1,
        }
    }
    report.orphan_objects_deleted = collect_orphans(state).await?;
    report.tokens_deleted = state.disposal.delete_expired_tokens(now).await?;
    report.staged_objects_deleted = purge_staged_objects(state, now).await?;
    report.staged_uploads_deleted = state.disposal.delete_expired_staged_uploads(now).await?;
    report.tasks_deleted = state.disposal.delete_expired_tasks(now).await?;
    report.idempotency_keys_deleted = state.disposal.delete_expired_idempotency_keys(now).await?;
    tracing::info!(
        expired_versions = report.expired_versions,
        superseded_versions = report.superseded_versions,
        objects_deleted = report.objects_deleted,
        orphan_objects_deleted = report.orphan_objects_deleted,
        tokens_deleted = report.tokens_deleted,
        staged_objects_deleted = report.staged_objects_deleted,
        staged_uploads_deleted = report.staged_uploads_deleted,
        tasks_deleted = report.tasks_deleted,
        idempotency_keys_deleted = report.idempotency_keys_deleted,
        "purge finished"
    );
    Ok(report)
}

/// Deletes a version's objects first and its record last, so a failed run leaves the record
/// for the next run to find.
async fn dispose(state: &PurgeState, record: &VersionRecord) -> Result<u64, StoreError> {
    let keys = state.objects.list(&record.object_prefix()).await?;
    for key in &keys {
        state.objects.delete(key).await?;
    }
    state
        .disposal
        .delete_version(&record.estab, &record.result_set, record.version)
        .await?;
    Ok(keys.len() as u64)
}

/// Deletes the objects of every version of a school that no record names and no upload can
/// still publish: one numbered at or below its set's current version (an upload in flight
/// writes the number after the current one, and one that lost a race discards its own). A
/// set with no current version keeps them (the bucket's lifecycle rule is the backstop).
async fn collect_orphans(state: &PurgeState) -> Result<u64, StoreError> {
    let records = state.disposal.all_versions().await?;
    let named: BTreeSet<String> = records.iter().map(VersionRecord::object_prefix).collect();
    let mut current: BTreeMap<(String, String), u64> = BTreeMap::new();
    for record in records.iter().filter(|r| r.superseded_at.is_none()) {
        let key = (record.estab.to_string(), record.result_set.clone());
        let number = current.entry(key).or_insert(record.version);
        *number = (*number).max(record.version);
    }
    let schools: BTreeSet<String> = records.iter().map(|r| r.estab.to_string()).collect();
    let mut deleted = 0;
    for estab in schools {
        for key in state.objects.list(&format!("{estab}/")).await? {
            let Some((prefix, set, version)) = version_of_object(&key) else {
                continue;
            };
            let settled = current
                .get(&(estab.clone(), set.to_owned()))
                .is_some_and(|&now| version <= now);
            if settled && !named.contains(prefix) {
                state.objects.delete(&key).await?;
                deleted += 1;
            }
        }
    }
    Ok(deleted)
}

/// An object key's version prefix, result set and version number:
/// `{estab}/{result set}/{version:010}-{upload}/{group}`.
fn version_of_object(key: &str) -> Option<(&str, &str, u64)> {
    let prefix = &key[..key.rfind('/')? + 1];
    let mut parts = prefix.trim_end_matches('/').split('/');
    let (_estab, set, folder) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let version = folder.split_once('-')?.0.parse().ok()?;
    Some((prefix, set, version))
}

/// Deletes every staged extract that is not waiting to be ingested: finished, unknown, or
/// issued more than [`STAGED_OBJECT_LIFETIME`] ago.
async fn purge_staged_objects(state: &PurgeState, now: Timestamp) -> Result<u64, StoreError> {
    let mut deleted = 0;
    for key in state.objects.list(STAGING_PREFIX).await? {
        let upload = match parse_object_key(&key) {
            Some((estab, id)) => state.staged_uploads.staged_upload(&estab, &id).await?,
            None => None,
        };
        let pending = upload.is_some_and(|u| {
            !u.state.is_finished() && now < u.created_at.plus(STAGED_OBJECT_LIFETIME)
        });
        if !pending {
            state.objects.delete(&key).await?;
            deleted += 1;
        }
    }
    Ok(deleted)
}

/// The Lambda handler: any scheduled event starts one run.
pub async fn handle(
    state: &PurgeState,
    event: lambda_runtime::LambdaEvent<serde_json::Value>,
) -> Result<PurgeReport, StoreError> {
    let scheduled_at = event.payload.get("time").and_then(|t| t.as_str());
    tracing::info!(
        request_id = %event.context.request_id,
        scheduled_at,
        "scheduled purge"
    );
    purge(state).await
}
