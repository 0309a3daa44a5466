//! The ports: what the functions need from the outside world, named for the domain. Each has a
//! local adapter (embedded) and an AWS adapter in `rollcall-infra`. The control store is a
//! port per aggregate ([`control`]'s table says who uses which).
//!
//! The key service is split the way IAM splits its permissions: a reader gets
//! [`DataKeyUnwrapper`] only; generating keys is [`DataKeyGenerator`].

use std::sync::atomic::{AtomicI64, Ordering};

use async_trait::async_trait;

mod control;

pub use control::{
    AccessLog, AgentHealthStore, ConsentStore, ControlPorts, ControlStore, Disposal,
    IdempotencyStore, LogPage, LogQuery, OptOutStore, PUBLICATION_CHUNK, PartnerStore, Publication,
    Registry, SchoolStore, StagedUploadStore, TaskStore, TokenStore, VersionStore,
};

use crate::envelope::{DataKey, KeyContext, PlainKey};
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
    pub control: ControlPorts,
    pub objects: std::sync::Arc<dyn ObjectStore>,
    pub key_generator: std::sync::Arc<dyn DataKeyGenerator>,
    pub key_unwrapper: std::sync::Arc<dyn DataKeyUnwrapper>,
    pub upload_signer: std::sync::Arc<dyn UploadUrlSigner>,
    pub clock: std::sync::Arc<dyn Clock>,
}
