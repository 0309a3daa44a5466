//! The ports: what the functions need from the outside world, named for the domain. Each has a
//! local adapter (embedded) and an AWS adapter in `rollcall-infra`.
//!
//! The key service is split the way IAM splits its permissions: a reader gets
//! [`DataKeyUnwrapper`] only; generating keys is [`DataKeyGenerator`].

use std::sync::atomic::{AtomicI64, Ordering};

use async_trait::async_trait;

use crate::envelope::{DataKey, KeyContext, PlainKey};
use crate::model::{AccessEntry, Consent, Estab, Partner, PartnerId, School, Token, VersionRecord};
use crate::optout::OptOutRecord;
use crate::secret::KeyHash;
use crate::staging::{StagedState, StagedUpload};
use crate::task::{Task, TaskState};
use crate::timestamp::{Duration, Timestamp};

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A port's failure, in the domain's terms.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found: {0}")]
    NotFound(String),
    /// A conditional write lost a race, or the item already exists.
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("store unavailable")]
    Unavailable(#[source] BoxError),
}

impl StoreError {
    pub fn unavailable(error: impl Into<BoxError>) -> Self {
        Self::Unavailable(error.into())
    }
}

/// Opaque blobs by key (S3, or files on disk).
#[async_trait]
pub trait ObjectStore: Send + Sync {
    async fn put(&self, key: &str, bytes: Vec<u8>) -> Result<(), StoreError>;
    /// `NotFound` when there is no such object.
    async fn get(&self, key: &str) -> Result<Vec<u8>, StoreError>;
    /// Succeeds when the object is already gone.
    async fn delete(&self, key: &str) -> Result<(), StoreError>;
    /// Every key that starts with `prefix`, sorted.
    async fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError>;
}

/// One result set's new version, published together with the others of its upload.
#[derive(Debug, Clone)]
pub struct Publication {
    pub record: VersionRecord,
    /// The version it replaces; the publication fails with `Conflict` if that is no longer
    /// the current one (another upload won the race).
    pub replaces: Option<u64>,
}

/// Control data (DynamoDB, or SQLite): domain-level operations with conditional writes.
#[async_trait]
pub trait ControlStore: Send + Sync {
    /// `Conflict` if the school exists.
    async fn insert_school(&self, school: &School) -> Result<(), StoreError>;
    async fn school(&self, estab: &Estab) -> Result<Option<School>, StoreError>;
    /// Every registered school, by establishment number.
    async fn schools(&self) -> Result<Vec<School>, StoreError>;
    async fn school_by_agent_key(&self, hash: &KeyHash) -> Result<Option<School>, StoreError>;
    async fn school_by_admin_key(&self, hash: &KeyHash) -> Result<Option<School>, StoreError>;

    /// `Conflict` if the partner exists.
    async fn insert_partner(&self, partner: &Partner) -> Result<(), StoreError>;
    async fn partner(&self, id: &PartnerId) -> Result<Option<Partner>, StoreError>;
    async fn partner_by_management_secret(
        &self,
        hash: &KeyHash,
    ) -> Result<Option<Partner>, StoreError>;
    async fn partners(&self) -> Result<Vec<Partner>, StoreError>;

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

    async fn insert_token(&self, token: &Token) -> Result<(), StoreError>;
    async fn token(&self, hash: &KeyHash) -> Result<Option<Token>, StoreError>;
    /// Deletes tokens that expired before `now`; returns how many.
    async fn delete_expired_tokens(&self, now: Timestamp) -> Result<u64, StoreError>;

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
    /// Publishes all of an upload's versions at once, or none (`Conflict`).
    async fn publish_versions(
        &self,
        publications: &[Publication],
        now: Timestamp,
    ) -> Result<(), StoreError>;
    /// Records that an upload carried the current version's content again.
    async fn confirm_version(
        &self,
        estab: &Estab,
        result_set: &str,
        version: u64,
        confirmed_at: Timestamp,
        valid_until: Timestamp,
    ) -> Result<(), StoreError>;
    /// Every version record of every school, current and superseded (for the purge).
    async fn all_versions(&self) -> Result<Vec<VersionRecord>, StoreError>;
    async fn delete_version(
        &self,
        estab: &Estab,
        result_set: &str,
        version: u64,
    ) -> Result<(), StoreError>;

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
    /// Deletes staged upload records whose `expires_at` has passed; returns how many.
    async fn delete_expired_staged_uploads(&self, now: Timestamp) -> Result<u64, StoreError>;

    /// A school's opt-outs for one partner (`None`: none recorded).
    async fn opt_outs(
        &self,
        estab: &Estab,
        partner: &PartnerId,
    ) -> Result<Option<OptOutRecord>, StoreError>;
    /// Replaces a school's opt-outs for one partner.
    async fn put_opt_outs(&self, record: &OptOutRecord) -> Result<(), StoreError>;

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
    /// Deletes tasks whose `expires_at` has passed; returns how many.
    async fn delete_expired_tasks(&self, now: Timestamp) -> Result<u64, StoreError>;

    async fn append_access(&self, entry: &AccessEntry) -> Result<(), StoreError>;
    /// The newest `limit` entries of a school's access log, newest first.
    async fn access_log(&self, estab: &Estab, limit: usize)
    -> Result<Vec<AccessEntry>, StoreError>;
    /// The newest `limit` entries of one partner at a school since `since`, newest first.
    async fn partner_access(
        &self,
        estab: &Estab,
        partner: &PartnerId,
        since: Timestamp,
        limit: usize,
    ) -> Result<Vec<AccessEntry>, StoreError>;
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The wrapped key does not open under this context (another school's, or tampered).
    #[error("the key service refused to unwrap the data key for this context")]
    Denied,
    #[error("key service unavailable")]
    Unavailable(#[source] BoxError),
}

#[async_trait]
pub trait DataKeyGenerator: Send + Sync {
    async fn generate(&self, context: &KeyContext) -> Result<DataKey, KeyError>;
}

#[async_trait]
pub trait DataKeyUnwrapper: Send + Sync {
    async fn unwrap(&self, context: &KeyContext, wrapped: &[u8]) -> Result<PlainKey, KeyError>;
}

/// A pre-signed PUT: the URL and the headers the PUT must carry, exactly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresignedPut {
    pub url: String,
    pub headers: Vec<(String, String)>,
}

/// Issues URLs that let an agent put one object of an exact size and type, for a short time,
/// without credentials of its own (S3 pre-signed URLs, or the local stand-in's signed URLs).
#[async_trait]
pub trait UploadUrlSigner: Send + Sync {
    async fn presign_put(
        &self,
        key: &str,
        content_length: u64,
        content_type: &str,
        now: Timestamp,
        expires_in: Duration,
    ) -> Result<PresignedPut, StoreError>;
}

/// What time it is; a port so expiry and disposal are testable without waiting.
pub trait Clock: Send + Sync {
    fn now(&self) -> Timestamp;
}

pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        let since_epoch = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Timestamp::from_millis(since_epoch.as_millis() as i64)
    }
}

/// A clock that only moves when told to.
pub struct ManualClock(AtomicI64);

impl ManualClock {
    pub fn new(start: Timestamp) -> Self {
        Self(AtomicI64::new(start.millis()))
    }

    pub fn advance(&self, by: crate::timestamp::Duration) {
        self.0.fetch_add(by.as_millis(), Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_millis(self.0.load(Ordering::SeqCst))
    }
}

/// Every port an adapter set provides, chosen once at start-up. Each function takes the ones
/// it needs from here into its own state.
#[derive(Clone)]
pub struct Ports {
    pub control: std::sync::Arc<dyn ControlStore>,
    pub objects: std::sync::Arc<dyn ObjectStore>,
    pub key_generator: std::sync::Arc<dyn DataKeyGenerator>,
    pub key_unwrapper: std::sync::Arc<dyn DataKeyUnwrapper>,
    pub upload_signer: std::sync::Arc<dyn UploadUrlSigner>,
    pub clock: std::sync::Arc<dyn Clock>,
}
