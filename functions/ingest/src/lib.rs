//! The agent API: a school's agent uploads full snapshots of result sets; each is validated
//! against the catalogue, diffed against the stored version, split into scope groups,
//! encrypted group by group and published as a new version (or confirmed, if unchanged).
//!
//! Routes (`Authorization: Bearer <agent key>`):
//! - `POST /agent/v1/extracts`: an upload of up to 5 MiB, answered when stored.
//! - `POST /agent/v1/uploads`, `GET /agent/v1/uploads/{id}`: a large upload, put to a
//!   pre-signed URL and ingested from the stored object ([`staged`]).
//! - `GET /agent/v1/tasks`, `POST /agent/v1/tasks/{id}/result`: write-backs to apply to the
//!   MIS, and their outcomes ([`tasks`]).
//! - `GET /agent/v1/whoami`, `POST /agent/v1/health`: the school the key belongs to, and the
//!   agent's report on itself (`agent`).
//!
//! Both uploads take an optional `Idempotency-Key`: a repeat is answered the first answer
//! ([`idempotency`]).
//!
//! In Lambda the function also receives S3 `ObjectCreated` events of staged uploads
//! ([`lambda::handle_event`]).
//!
//! # Layout
//! - [`routes`]: the route table, listed once; [`IngestState`]: the ports ingest holds;
//!   [`ingest`]: validate, diff, seal and publish one upload (here, with its helpers).
//! - `agent`: the agent's calls about itself (whoami, health).
//! - [`idempotency`]: the `Idempotency-Key` header, and running an upload once per key.
//! - [`staged`]: large uploads through a pre-signed URL.
//! - [`tasks`]: the agent's side of write-backs.
//! - [`lambda`]: the Lambda handler for both kinds of event.

mod agent;
pub mod idempotency;
pub mod lambda;
pub mod staged;
pub mod tasks;

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{FromRef, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use idempotency::{IdempotencyKeyHeader, run_once};
use rollcall_core::catalogue::Catalogue;
use rollcall_core::dataset::{Diff, Row, Upload, diff, parse_upload};
use rollcall_core::envelope::KeyContext;
use rollcall_core::model::{Estab, School, VersionRecord};
use rollcall_core::plan::tombstone_fields;
use rollcall_core::ports::{
    AgentHealthStore, Clock, ConsentStore, DataKeyGenerator, DataKeyUnwrapper, IdempotencyStore,
    ObjectStore, OptOutStore, Ports, Publication, SchoolStore, StagedUploadStore, TaskStore,
    UploadUrlSigner, VersionStore,
};
use rollcall_core::secret::random_hex;
use rollcall_core::timestamp::Timestamp;
use rollcall_core::vault::{OpenVersion, put_version, remove_objects, seal_version};
use rollcall_http::credentials::{AgentSchool, SchoolKeys};
use rollcall_http::request::read_body;
use rollcall_http::{ApiResult, Routes};
use serde_json::{Map, Value, json};

/// The largest upload body: under Lambda's 6 MB request limit with room for the event around it.
pub const MAX_UPLOAD_BYTES: usize = 5 * 1024 * 1024;

/// The ingest function's ports: it finds the agent's school, publishes versions, takes staged
/// uploads, keeps uploads' idempotency keys and the agent's health, and hands tasks to the agent (checking the consent
/// behind each).
#[derive(Clone)]
pub struct IngestState {
    schools: Arc<dyn SchoolStore>,
    consents: Arc<dyn ConsentStore>,
    opt_outs: Arc<dyn OptOutStore>,
    versions: Arc<dyn VersionStore>,
    staged_uploads: Arc<dyn StagedUploadStore>,
    idempotency: Arc<dyn IdempotencyStore>,
    agent_health: Arc<dyn AgentHealthStore>,
    tasks: Arc<dyn TaskStore>,
    objects: Arc<dyn ObjectStore>,
    key_generator: Arc<dyn DataKeyGenerator>,
    key_unwrapper: Arc<dyn DataKeyUnwrapper>,
    upload_signer: Arc<dyn UploadUrlSigner>,
    clock: Arc<dyn Clock>,
}

impl IngestState {
    pub fn new(ports: &Ports) -> Self {
        let control = &ports.control;
        Self {
            schools: control.schools.clone(),
            consents: control.consents.clone(),
            opt_outs: control.opt_outs.clone(),
            versions: control.versions.clone(),
            staged_uploads: control.staged_uploads.clone(),
            idempotency: control.idempotency.clone(),
            agent_health: control.agent_health.clone(),
            tasks: control.tasks.clone(),
            objects: ports.objects.clone(),
            key_generator: ports.key_generator.clone(),
            key_unwrapper: ports.key_unwrapper.clone(),
            upload_signer: ports.upload_signer.clone(),
            clock: ports.clock.clone(),
        }
    }
}

/// Agent keys are checked against the schools ([`AgentSchool`]).
impl FromRef<IngestState> for SchoolKeys {
    fn from_ref(state: &IngestState) -> Self {
        SchoolKeys(state.schools.clone())
    }
}

/// The ingest function's routes, listed once.
pub fn routes() -> Routes<IngestState> {
    Routes::default()
        .route("/agent/v1/extracts", post(upload_extracts))
        .route("/agent/v1/uploads", post(staged::create_upload))
        .route("/agent/v1/uploads/{id}", get(staged::upload_status))
        .route("/agent/v1/tasks", get(tasks::open_tasks))
        .route("/agent/v1/tasks/{id}/result", post(tasks::report))
        .route("/agent/v1/whoami", get(agent::whoami))
        .route("/agent/v1/resultsets", get(agent::held))
        .route("/agent/v1/health", post(agent::report_health))
}

pub fn router(state: IngestState) -> Router {
    routes().into_router(state)
}

async fn upload_extracts(
    State(state): State<IngestState>,
    AgentSchool(school): AgentSchool,
    IdempotencyKeyHeader(key): IdempotencyKeyHeader,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let bytes = read_body(
        body,
        &headers,
        MAX_UPLOAD_BYTES,
        "send the result sets in several uploads, each a full snapshot of the result sets it \
         names, or put the extract to a URL from POST /agent/v1/uploads",
    )
    .await?;
    run_once(&state, &school, key, &bytes, || async {
        let upload = parse_upload(Catalogue::get(), &bytes)?;
        Ok((StatusCode::OK, ingest(&state, &school, upload).await?))
    })
    .await
}

/// What happens to one result set of an upload.
enum Outcome {
    /// Same content as the current version: confirm it.
    Unchanged { version: u64, diff: Diff },
    /// New content, sealed and put, waiting to be published.
    Changed {
        publication: Publication,
        diff: Diff,
        keys: Vec<String>,
    },
}

/// Stores an upload that passed validation: every changed result set becomes a new version,
/// published in chunks of [`rollcall_core::ports::PUBLICATION_CHUNK`], each all or none (a
/// conflict leaves earlier chunks published; sending the upload again confirms them and
/// publishes the rest); unchanged ones are confirmed. Answers per result set
/// `{version, added, changed, deleted, unchanged}` and the fields ignored.
pub async fn ingest(state: &IngestState, school: &School, upload: Upload) -> ApiResult<Value> {
    let now = state.clock.now();
    let upload_id = random_hex::<6>();
    let mut outcomes = Vec::with_capacity(upload.result_sets.len());
    for (name, rows) in &upload.result_sets {
        match prepare(state, school, name, rows, now, &upload_id).await {
            Ok(outcome) => outcomes.push((name.as_str(), outcome)),
            Err(error) => {
                discard(state, &outcomes).await;
                return Err(error);
            }
        }
    }
    let publications: Vec<Publication> = outcomes
        .iter()
        .filter_map(|(_, o)| match o {
            Outcome::Changed { publication, .. } => Some(publication.clone()),
            Outcome::Unchanged { .. } => None,
        })
        .collect();
    if !publications.is_empty() {
        if let Err(error) = state.versions.publish_versions(&publications, now).await {
            discard_unpublished(state, &school.estab, &outcomes).await;
            return Err(error.into());
        }
    }
    let mut answer = Map::new();
    for (name, outcome) in &outcomes {
        let (version, diff) = match outcome {
            Outcome::Unchanged { version, diff } => {
                let rs = Catalogue::get().result_set(name).expect("validated");
                let valid_until = now.plus(rs.area.validity());
                state
                    .versions
                    .confirm_version(&school.estab, name, *version, now, valid_until)
                    .await?;
                (*version, diff)
            }
            Outcome::Changed {
                publication, diff, ..
            } => (publication.record.version, diff),
        };
        tracing::info!(
            estab = %school.estab,
            result_set = name,
            version,
            added = diff.added,
            changed = diff.changed,
            deleted = diff.deleted,
            "result set stored"
        );
        answer.insert(
            (*name).to_owned(),
            json!({
                "version": version,
                "added": diff.added,
                "changed": diff.changed,
                "deleted": diff.deleted,
                "unchanged": diff.unchanged,
            }),
        );
    }
    Ok(json!({
        "resultSets": answer,
        "ignored": upload.ignored,
        "warnings": upload.warnings,
    }))
}

async fn prepare(
    state: &IngestState,
    school: &School,
    name: &str,
    rows: &[Row],
    now: Timestamp,
    upload_id: &str,
) -> ApiResult<Outcome> {
    let rs = Catalogue::get()
        .result_set(name)
        .expect("parse_upload accepts catalogued result sets only");
    let current = state.versions.current_version(&school.estab, name).await?;
    // A version past disposal is never read again, not even to diff against.
    let live = current.clone().filter(|v| !v.is_disposable(now));
    let previous = match live.clone() {
        Some(record) => Some(
            OpenVersion::open(state.objects.as_ref(), state.key_unwrapper.as_ref(), record).await?,
        ),
        None => None,
    };
    let mut diff = diff(
        previous.as_ref().map(|p| p.index.as_ref()),
        rs,
        rows,
        &school.row_hash_key,
        now,
    );
    if let Some(previous) = &previous {
        let deleted = diff.newly_deleted();
        if !deleted.is_empty() {
            let fields = tombstone_fields(Catalogue::get(), rs);
            let kept = previous
                .tombstones(state.objects.as_ref(), rs, &fields, &deleted)
                .await?;
            diff.keep_tombstones(kept);
        }
    }
    if let Some(record) = live.filter(|_| diff.is_unchanged()) {
        return Ok(Outcome::Unchanged {
            version: record.version,
            diff,
        });
    }
    let version = current.as_ref().map_or(1, |c| c.version + 1);
    let key = state
        .key_generator
        .generate(&KeyContext::new(&school.estab, name))
        .await?;
    let sealed = seal_version(
        &key,
        &school.estab,
        rs,
        version,
        upload_id,
        rows,
        &diff.index,
    );
    let keys: Vec<String> = sealed.objects.iter().map(|(k, _)| k.clone()).collect();
    let record = VersionRecord {
        estab: school.estab.clone(),
        result_set: name.to_owned(),
        version,
        created_at: now,
        confirmed_at: now,
        superseded_at: None,
        rows: rows.len() as u64,
        groups: sealed.groups.clone(),
        valid_until: now.plus(rs.area.validity()),
        upload: upload_id.to_owned(),
    };
    put_version(state.objects.as_ref(), sealed).await?;
    Ok(Outcome::Changed {
        publication: Publication {
            record,
            replaces: current.map(|c| c.version),
        },
        diff,
        keys,
    })
}

/// Removes the objects of versions that will not be published.
/// After a failed publication, removes the objects of every new version that was never
/// published (its chunk lost a race). A published one keeps them even if another upload has
/// replaced it since: a superseded version is still read by walks pinned to it until the purge
/// disposes of it. When it cannot tell, it keeps the objects: an orphan costs storage, a
/// missing object an outage.
async fn discard_unpublished(state: &IngestState, estab: &Estab, outcomes: &[(&str, Outcome)]) {
    for (name, outcome) in outcomes {
        let Outcome::Changed {
            publication, keys, ..
        } = outcome
        else {
            continue;
        };
        let record = &publication.record;
        match state
            .versions
            .version_record(estab, name, record.version)
            .await
        {
            Ok(Some(stored)) if stored.upload == record.upload => {}
            Ok(_) => remove_objects(state.objects.as_ref(), keys).await,
            Err(error) => {
                tracing::warn!(result_set = name, error = %error, "kept objects of a version whose publication is unknown");
            }
        }
    }
}

async fn discard(state: &IngestState, outcomes: &[(&str, Outcome)]) {
    for (_, outcome) in outcomes {
        if let Outcome::Changed { keys, .. } = outcome {
            remove_objects(state.objects.as_ref(), keys).await;
        }
    }
}
