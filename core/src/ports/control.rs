//! The control store's ports, one per aggregate, named for who calls them. An adapter
//! (SQLite, DynamoDB) implements them all on one store ([`ControlStore`]); a function's state
//! holds only the ones it uses ([`ControlPorts`] hands them out), so the types say that purge
//! cannot issue tokens and serve cannot register schools.
//!
//! | port | aggregate | used by |
//! |------|-----------|---------|
//! | [`Registry`] | registering schools and partners | the operator's CLI |
//! | [`SchoolStore`] | schools, found by number or key hash | consent, ingest, serve (edubase search) |
//! | [`PartnerStore`] | partners, found by id or management secret | consent |
//! | [`ConsentStore`] | one consent per school and partner | consent, serve, ingest |
//! | [`TokenStore`] | partner tokens | consent (issues), serve (checks) |
//! | [`VersionStore`] | result-set versions, published per upload | ingest, serve, consent (reads a school's current ones) |
//! | [`StagedUploadStore`] | extracts put to a pre-signed URL | ingest, purge (reads) |
//! | [`IdempotencyStore`] | `Idempotency-Key`s of the agent's uploads | ingest |
//! | [`AgentHealthStore`] | the agent's latest health report per school | ingest (writes), consent (reads) |
//! | [`OptOutStore`] | per-partner opt-outs of people | consent, serve |
//! | [`TaskStore`] | write-backs queued for the agent | serve, ingest, purge |
//! | [`AccessLog`] | every partner call on a school, answered or refused | serve, consent |
//! | [`Disposal`] | every version, and records past their lifetime | purge |

use std::sync::Arc;

use async_trait::async_trait;

use super::StoreError;
use crate::agent_health::HealthRecord;
use crate::idempotency::{IdempotencyKey, IdempotencyRecord, StoredAnswer};
use crate::model::{AccessEntry, Consent, Estab, Partner, PartnerId, School, Token, VersionRecord};
use crate::optout::OptOutRecord;
use crate::secret::KeyHash;
use crate::staging::{StagedState, StagedUpload};
use crate::task::{Task, TaskState};
use crate::timestamp::Timestamp;

/// How many versions are published in one atomic step: DynamoDB's transaction limit (100
/// items) less the two other items each publication writes (the result set's head and the
/// superseded version). An upload of more is published chunk by chunk in order, on both
/// adapters alike, so an upload behaves the same wherever it runs.
pub const PUBLICATION_CHUNK: usize = 33;

/// One result set's new version, published together with the others of its upload.
#[derive(Debug, Clone)]
pub struct Publication {
    pub record: VersionRecord,
    /// The version it replaces; the publication fails with `Conflict` if that is no longer
    /// the current one (another upload won the race).
    pub replaces: Option<u64>,
}

#[async_trait]
pub trait SchoolStore: Send + Sync {
    async fn school(&self, estab: &Estab) -> Result<Option<School>, StoreError>;
    /// Every registered school, by establishment number.
    async fn schools(&self) -> Result<Vec<School>, StoreError>;
    async fn school_by_agent_key(&self, hash: &KeyHash) -> Result<Option<School>, StoreError>;
    async fn school_by_admin_key(&self, hash: &KeyHash) -> Result<Option<School>, StoreError>;
}

#[async_trait]
pub trait PartnerStore: Send + Sync {
    async fn partner(&self, id: &PartnerId) -> Result<Option<Partner>, StoreError>;
    async fn partner_by_management_secret(
        &self,
        hash: &KeyHash,
    ) -> Result<Option<Partner>, StoreError>;
    async fn partners(&self) -> Result<Vec<Partner>, StoreError>;
}

#[async_trait]
pub trait ConsentStore: Send + Sync {
    async fn consent(
        &self,
        estab: &Estab,
        partner: &PartnerId,
    ) -> Result<Option<Consent>, StoreError>;
    async fn consents_of_school(&self, estab: &Estab) -> Result<Vec<Consent>, StoreError>;
    async fn consents_of_partner(&self, partner: &PartnerId) -> Result<Vec<Consent>, StoreError>;
    /// Writes `consent` if the stored one still has version `expected` (`None`: none stored),
    /// else `Conflict`.
    async fn put_consent(&self, consent: &Consent, expected: Option<u64>)
    -> Result<(), StoreError>;
}

#[async_trait]
pub trait TokenStore: Send + Sync {
    async fn insert_token(&self, token: &Token) -> Result<(), StoreError>;
    async fn token(&self, hash: &KeyHash) -> Result<Option<Token>, StoreError>;
}

#[async_trait]
pub trait VersionStore: Send + Sync {
    /// The version now served for a result set (not superseded), whatever its age.
    async fn current_version(
        &self,
        estab: &Estab,
        result_set: &str,
    ) -> Result<Option<VersionRecord>, StoreError>;
    /// One version, current or superseded, while its record lasts (a paginated walk stays on
    /// the version it started with).
    async fn version_record(
        &self,
        estab: &Estab,
        result_set: &str,
        version: u64,
    ) -> Result<Option<VersionRecord>, StoreError>;
    /// A school's current versions (not superseded), one per result set it holds, whatever
    /// their age, in no particular order.
    async fn current_versions(&self, estab: &Estab) -> Result<Vec<VersionRecord>, StoreError>;
    /// Publishes at most [`PUBLICATION_CHUNK`] versions at once, or none (`Conflict` when a
    /// version one replaces is no longer current). Callers use [`Self::publish_versions`].
    async fn publish_chunk(
        &self,
        publications: &[Publication],
        now: Timestamp,
    ) -> Result<(), StoreError>;
    /// Publishes an upload's versions in order, [`PUBLICATION_CHUNK`] at a time, each chunk
    /// all or none, on every adapter alike. `Conflict` stops at the chunk it is in: the
    /// chunks before it stay published, which the caller sees in `current_version`.
    async fn publish_versions(
        &self,
        publications: &[Publication],
        now: Timestamp,
    ) -> Result<(), StoreError> {
        for chunk in publications.chunks(PUBLICATION_CHUNK) {
            self.publish_chunk(chunk, now).await?;
        }
        Ok(())
    }
    /// Records that an upload carried the current version's content again.
    async fn confirm_version(
        &self,
        estab: &Estab,
        result_set: &str,
        version: u64,
        confirmed_at: Timestamp,
        valid_until: Timestamp,
    ) -> Result<(), StoreError>;
}

#[async_trait]
pub trait StagedUploadStore: Send + Sync {
    /// `Conflict` if an upload with this school and id exists.
    async fn insert_staged_upload(&self, upload: &StagedUpload) -> Result<(), StoreError>;
    /// The record as stored, expired or not (the caller checks `expires_at`).
    async fn staged_upload(
        &self,
        estab: &Estab,
        id: &str,
    ) -> Result<Option<StagedUpload>, StoreError>;
    /// Moves an upload to `Ingesting { since: now }` if it is waiting, or ingesting since before
    /// `stale_before` (an ingest that died); `Conflict` otherwise, `NotFound` if there is none.
    /// Answers the record as claimed.
    async fn claim_staged_upload(
        &self,
        estab: &Estab,
        id: &str,
        now: Timestamp,
        stale_before: Timestamp,
    ) -> Result<StagedUpload, StoreError>;
    /// Records the outcome of an upload this caller claimed (still `Ingesting { since }`),
    /// else `Conflict`.
    async fn finish_staged_upload(
        &self,
        estab: &Estab,
        id: &str,
        since: Timestamp,
        outcome: &StagedState,
    ) -> Result<(), StoreError>;
}

/// The agent's `Idempotency-Key`s, per school: claimed before an upload runs, completed with
/// its answer or released when it fails ([`crate::idempotency`]).
#[async_trait]
pub trait IdempotencyStore: Send + Sync {
    /// Stores `record` (a new claim, `InProgress`) if its school's key is free: never used,
    /// released, expired at `record.created_at`, or claimed before `stale_before` (a request
    /// that died). `Conflict` if a live record holds the key.
    async fn claim_idempotency_key(
        &self,
        record: &IdempotencyRecord,
        stale_before: Timestamp,
    ) -> Result<(), StoreError>;
    /// The record of a school's key as stored, expired or not (the caller checks
    /// `expires_at`); `None` if there is none or it was released.
    async fn idempotency_record(
        &self,
        estab: &Estab,
        key: &IdempotencyKey,
    ) -> Result<Option<IdempotencyRecord>, StoreError>;
    /// Completes the claim named `claim` with the request's answer (at most
    /// [`crate::idempotency::MAX_STORED_ANSWER_BYTES`]); `Conflict` if the key is no longer
    /// held by that claim.
    async fn complete_idempotency_key(
        &self,
        estab: &Estab,
        key: &IdempotencyKey,
        claim: &str,
        answer: &StoredAnswer,
    ) -> Result<(), StoreError>;
    /// Releases the claim named `claim`, so the key may be claimed again; succeeds if there is
    /// no such key (or it is released already), `Conflict` if another claim holds it or it
    /// is completed.
    async fn release_idempotency_key(
        &self,
        estab: &Estab,
        key: &IdempotencyKey,
        claim: &str,
    ) -> Result<(), StoreError>;
}

/// The school agent's health: the latest report per school replaces the one before.
#[async_trait]
pub trait AgentHealthStore: Send + Sync {
    /// Stores `record` as its school's latest report, replacing any before it.
    async fn put_agent_health(&self, record: &HealthRecord) -> Result<(), StoreError>;
    /// A school's latest report (`None`: its agent never reported).
    async fn agent_health(&self, estab: &Estab) -> Result<Option<HealthRecord>, StoreError>;
}

#[async_trait]
pub trait OptOutStore: Send + Sync {
    /// A school's opt-outs for one partner (`None`: none recorded).
    async fn opt_outs(
        &self,
        estab: &Estab,
        partner: &PartnerId,
    ) -> Result<Option<OptOutRecord>, StoreError>;
    /// Replaces a school's opt-outs for one partner, if the stored record's version is still
    /// `expected` (`None`: no record yet); `Conflict` if it moved meanwhile.
    async fn put_opt_outs(
        &self,
        record: &OptOutRecord,
        expected: Option<u64>,
    ) -> Result<(), StoreError>;
}

#[async_trait]
pub trait TaskStore: Send + Sync {
    async fn insert_task(&self, task: &Task) -> Result<(), StoreError>;
    async fn task(&self, estab: &Estab, id: &str) -> Result<Option<Task>, StoreError>;
    /// A school's queued and delivered tasks, oldest first.
    async fn open_tasks(&self, estab: &Estab) -> Result<Vec<Task>, StoreError>;
    /// Moves a task to `state` if it is in one of the states named `from`; otherwise
    /// `Conflict` (someone else moved it first), or `NotFound`.
    async fn update_task(
        &self,
        estab: &Estab,
        id: &str,
        from: &[&str],
        state: &TaskState,
    ) -> Result<(), StoreError>;
}

/// Which entries of a school's access log to read: newest first, those of one partner or
/// endpoint, at or after `from` and before `to`, after the page `cursor` ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogQuery {
    pub partner: Option<PartnerId>,
    /// As recorded (the endpoint's path, e.g. `Students`).
    pub endpoint: Option<String>,
    pub from: Option<Timestamp>,
    pub to: Option<Timestamp>,
    /// Where the previous page ended ([`LogPage::next`]).
    pub cursor: Option<String>,
    pub limit: usize,
}

impl LogQuery {
    pub fn with_limit(self, limit: usize) -> Self {
        Self { limit, ..self }
    }

    /// The newest `limit` entries, unfiltered.
    pub fn newest(limit: usize) -> Self {
        Self {
            partner: None,
            endpoint: None,
            from: None,
            to: None,
            cursor: None,
            limit,
        }
    }
}

/// A page of the access log, and where the next one starts (`None`: this is the last).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogPage {
    pub entries: Vec<AccessEntry>,
    /// Opaque to callers; only the store that issued it reads it.
    pub next: Option<String>,
}

#[async_trait]
pub trait AccessLog: Send + Sync {
    async fn append_access(&self, entry: &AccessEntry) -> Result<(), StoreError>;
    /// The entries of a school's access log `query` selects, newest first, at most
    /// `query.limit`. A cursor this store did not issue is `NotFound`.
    async fn access_log(&self, estab: &Estab, query: &LogQuery) -> Result<LogPage, StoreError>;
    /// The newest `limit` entries of one partner at a school since `since`, newest first.
    async fn partner_access(
        &self,
        estab: &Estab,
        partner: &PartnerId,
        since: Timestamp,
        limit: usize,
    ) -> Result<Vec<AccessEntry>, StoreError>;
}

/// Registering schools and partners: the operator's commands only.
#[async_trait]
pub trait Registry: Send + Sync {
    /// `Conflict` if the school exists.
    async fn insert_school(&self, school: &School) -> Result<(), StoreError>;
    /// `Conflict` if the partner exists.
    async fn insert_partner(&self, partner: &Partner) -> Result<(), StoreError>;
    /// Gives `school` (as stored, but for its admin key's hash) a new admin key, if its
    /// admin key's hash is still `old`: the old key no longer finds it. `Conflict` if the key
    /// changed meanwhile.
    async fn replace_admin_key(&self, school: &School, old: &KeyHash) -> Result<(), StoreError>;
}

/// What the purge deletes: versions (it finds them all), and every record whose lifetime has
/// passed. No other function holds it.
#[async_trait]
pub trait Disposal: Send + Sync {
    /// Every version record of every school, current and superseded (for the purge).
    async fn all_versions(&self) -> Result<Vec<VersionRecord>, StoreError>;
    async fn delete_version(
        &self,
        estab: &Estab,
        result_set: &str,
        version: u64,
    ) -> Result<(), StoreError>;
    /// Deletes tokens that expired before `now`; returns how many.
    async fn delete_expired_tokens(&self, now: Timestamp) -> Result<u64, StoreError>;
    /// Deletes staged upload records whose `expires_at` has passed; returns how many.
    async fn delete_expired_staged_uploads(&self, now: Timestamp) -> Result<u64, StoreError>;
    /// Deletes tasks whose `expires_at` has passed; returns how many.
    async fn delete_expired_tasks(&self, now: Timestamp) -> Result<u64, StoreError>;
    /// Deletes idempotency records (completed, in progress or released) whose `expires_at`
    /// has passed; returns how many.
    async fn delete_expired_idempotency_keys(&self, now: Timestamp) -> Result<u64, StoreError>;
}

/// What a control-store adapter provides: every aggregate's port over one store. Only
/// wiring ([`ControlPorts::over`]) and the adapters' contract tests name it; functions hold
/// the narrow ports.
pub trait ControlStore:
    SchoolStore
    + PartnerStore
    + ConsentStore
    + TokenStore
    + VersionStore
    + StagedUploadStore
    + IdempotencyStore
    + AgentHealthStore
    + OptOutStore
    + TaskStore
    + AccessLog
    + Registry
    + Disposal
{
}

impl<T> ControlStore for T where
    T: SchoolStore
        + PartnerStore
        + ConsentStore
        + TokenStore
        + VersionStore
        + StagedUploadStore
        + IdempotencyStore
        + AgentHealthStore
        + OptOutStore
        + TaskStore
        + AccessLog
        + Registry
        + Disposal
{
}

/// The control store's ports, one handle per aggregate, all over the same adapter. A
/// function's state takes the ones it uses.
#[derive(Clone)]
pub struct ControlPorts {
    pub schools: Arc<dyn SchoolStore>,
    pub partners: Arc<dyn PartnerStore>,
    pub consents: Arc<dyn ConsentStore>,
    pub tokens: Arc<dyn TokenStore>,
    pub versions: Arc<dyn VersionStore>,
    pub staged_uploads: Arc<dyn StagedUploadStore>,
    pub idempotency: Arc<dyn IdempotencyStore>,
    pub agent_health: Arc<dyn AgentHealthStore>,
    pub opt_outs: Arc<dyn OptOutStore>,
    pub tasks: Arc<dyn TaskStore>,
    pub access_log: Arc<dyn AccessLog>,
    pub registry: Arc<dyn Registry>,
    pub disposal: Arc<dyn Disposal>,
}

impl ControlPorts {
    /// Every port over one adapter.
    pub fn over<T: ControlStore + 'static>(store: Arc<T>) -> Self {
        Self {
            schools: store.clone(),
            partners: store.clone(),
            consents: store.clone(),
            tokens: store.clone(),
            versions: store.clone(),
            staged_uploads: store.clone(),
            idempotency: store.clone(),
            agent_health: store.clone(),
            opt_outs: store.clone(),
            tasks: store.clone(),
            access_log: store.clone(),
            registry: store.clone(),
            disposal: store,
        }
    }
}
