//! Test helpers shared by every crate's tests and the benches (feature `testing`): the
//! S3/DynamoDB/KMS emulator the AWS adapters are tested against, and a key service that
//! counts its calls.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use rollcall_core::envelope::{DataKey, KeyContext, PlainKey};
use rollcall_core::model::{Consent, Estab, PartnerId, VersionRecord};
use rollcall_core::optout::OptOutRecord;
use rollcall_core::ports::{
    ConsentStore, DataKeyGenerator, DataKeyUnwrapper, Disposal, KeyError, ObjectStore, OptOutStore,
    Ports, Publication, StoreError, TaskStore, VersionStore,
};
use rollcall_core::task::{Task, TaskState};
use rollcall_core::timestamp::Timestamp;

use crate::aws::{AwsPorts, provision_emulator};

/// Set by `scripts/test` to the emulator it started (`moto_server` on 127.0.0.1).
pub const EMULATOR_VAR: &str = "ROLLCALL_TEST_AWS_ENDPOINT";
/// Set by `scripts/test`: a missing emulator fails a test instead of skipping it.
pub const REQUIRE_EMULATOR_VAR: &str = "ROLLCALL_REQUIRE_EMULATOR";

/// The emulator's endpoint, or `None` (and a note) when none is running here; panics when
/// [`REQUIRE_EMULATOR_VAR`] says one must be.
pub fn emulator_endpoint() -> Option<String> {
    match std::env::var(EMULATOR_VAR) {
        Ok(endpoint) => Some(endpoint),
        Err(_) => {
            assert!(
                std::env::var_os(REQUIRE_EMULATOR_VAR).is_none(),
                "{REQUIRE_EMULATOR_VAR} is set but {EMULATOR_VAR} is not"
            );
            eprintln!(
                "skipped: no emulator; scripts/test starts moto_server and sets {EMULATOR_VAR}"
            );
            None
        }
    }
}

/// Fresh AWS resources (bucket, table, key) on the emulator, named after `label`.
pub async fn emulator(label: &str) -> Option<AwsPorts> {
    let endpoint = emulator_endpoint()?;
    Some(
        provision_emulator(&endpoint, "eu-west-2", label)
            .await
            .expect("the emulator provisions a bucket, table and key"),
    )
}

/// A key service that counts what it is asked (KMS's GenerateDataKey and Decrypt).
pub struct CountingKeys {
    generator: Arc<dyn DataKeyGenerator>,
    unwrapper: Arc<dyn DataKeyUnwrapper>,
    pub generated: AtomicUsize,
    pub unwrapped: AtomicUsize,
}

impl CountingKeys {
    pub fn over(ports: &mut Ports) -> Arc<Self> {
        let counting = Arc::new(Self {
            generator: ports.key_generator.clone(),
            unwrapper: ports.key_unwrapper.clone(),
            generated: AtomicUsize::new(0),
            unwrapped: AtomicUsize::new(0),
        });
        ports.key_generator = counting.clone();
        ports.key_unwrapper = counting.clone();
        counting
    }

    pub fn generated(&self) -> usize {
        self.generated.load(Ordering::SeqCst)
    }

    pub fn unwrapped(&self) -> usize {
        self.unwrapped.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl DataKeyGenerator for CountingKeys {
    async fn generate(&self, context: &KeyContext) -> Result<DataKey, KeyError> {
        self.generated.fetch_add(1, Ordering::SeqCst);
        self.generator.generate(context).await
    }
}

#[async_trait]
impl DataKeyUnwrapper for CountingKeys {
    async fn unwrap(&self, context: &KeyContext, wrapped: &[u8]) -> Result<PlainKey, KeyError> {
        self.unwrapped.fetch_add(1, Ordering::SeqCst);
        self.unwrapper.unwrap(context, wrapped).await
    }
}

/// Where a [`Faults`] plan stands: which write fails, and how many were made.
#[derive(Debug, Default)]
pub struct FaultPlan {
    writes: AtomicUsize,
    /// The write (counted from 1 since [`FaultPlan::fail_write`]) that fails; 0 for none.
    fail_at: AtomicUsize,
    failed: AtomicUsize,
}

impl FaultPlan {
    /// Counts writes afresh; the `k`th from now fails (and only it).
    pub fn fail_write(&self, k: usize) {
        self.writes.store(0, Ordering::SeqCst);
        self.failed.store(0, Ordering::SeqCst);
        self.fail_at.store(k, Ordering::SeqCst);
    }

    /// No write fails.
    pub fn off(&self) {
        self.fail_at.store(0, Ordering::SeqCst);
    }

    /// Whether the planned write was reached (and failed).
    pub fn failed(&self) -> bool {
        self.failed.load(Ordering::SeqCst) > 0
    }

    /// Writes made since [`FaultPlan::fail_write`].
    pub fn writes(&self) -> usize {
        self.writes.load(Ordering::SeqCst)
    }

    /// Counts one write of `what`: an error if it is the one planned to fail.
    fn write(&self, what: &str) -> Result<(), StoreError> {
        let n = self.writes.fetch_add(1, Ordering::SeqCst) + 1;
        if n == self.fail_at.load(Ordering::SeqCst) {
            self.failed.fetch_add(1, Ordering::SeqCst);
            return Err(StoreError::Unavailable(
                format!("injected fault at write {n} ({what})").into(),
            ));
        }
        Ok(())
    }
}

/// Ports that fail the write a [`FaultPlan`] names: every write of the object store and of
/// the control store's versions, consents, opt-outs, tasks and disposal goes through the
/// plan's count; reads pass through untouched.
pub struct Faults<T: ?Sized> {
    plan: Arc<FaultPlan>,
    inner: Arc<T>,
}

impl<T: ?Sized> Faults<T> {
    fn wrap(plan: &Arc<FaultPlan>, inner: Arc<T>) -> Arc<Self> {
        Arc::new(Self {
            plan: plan.clone(),
            inner,
        })
    }
}

/// Puts [`Faults`] in front of `ports`' writing stores; the plan says which write fails.
pub fn inject_faults(ports: &mut Ports) -> Arc<FaultPlan> {
    let plan = Arc::new(FaultPlan::default());
    ports.objects = Faults::wrap(&plan, ports.objects.clone());
    let control = &mut ports.control;
    control.versions = Faults::wrap(&plan, control.versions.clone());
    control.consents = Faults::wrap(&plan, control.consents.clone());
    control.opt_outs = Faults::wrap(&plan, control.opt_outs.clone());
    control.tasks = Faults::wrap(&plan, control.tasks.clone());
    control.disposal = Faults::wrap(&plan, control.disposal.clone());
    plan
}

#[async_trait]
impl ObjectStore for Faults<dyn ObjectStore> {
    async fn put(&self, key: &str, bytes: Vec<u8>) -> Result<(), StoreError> {
        self.plan.write("object put")?;
        self.inner.put(key, bytes).await
    }
    async fn get(&self, key: &str) -> Result<Vec<u8>, StoreError> {
        self.inner.get(key).await
    }
    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.plan.write("object delete")?;
        self.inner.delete(key).await
    }
    async fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        self.inner.list(prefix).await
    }
}

#[async_trait]
impl VersionStore for Faults<dyn VersionStore> {
    async fn current_version(
        &self,
        estab: &Estab,
        result_set: &str,
    ) -> Result<Option<VersionRecord>, StoreError> {
        self.inner.current_version(estab, result_set).await
    }
    async fn version_record(
        &self,
        estab: &Estab,
        result_set: &str,
        version: u64,
    ) -> Result<Option<VersionRecord>, StoreError> {
        self.inner.version_record(estab, result_set, version).await
    }
    async fn current_versions(&self, estab: &Estab) -> Result<Vec<VersionRecord>, StoreError> {
        self.inner.current_versions(estab).await
    }
    async fn publish_chunk(
        &self,
        publications: &[Publication],
        now: Timestamp,
    ) -> Result<(), StoreError> {
        self.plan.write("publish versions")?;
        self.inner.publish_chunk(publications, now).await
    }
    async fn confirm_version(
        &self,
        estab: &Estab,
        result_set: &str,
        version: u64,
        confirmed_at: Timestamp,
        valid_until: Timestamp,
    ) -> Result<(), StoreError> {
        self.plan.write("confirm version")?;
        (self.inner)
            .confirm_version(estab, result_set, version, confirmed_at, valid_until)
            .await
    }
}

#[async_trait]
impl ConsentStore for Faults<dyn ConsentStore> {
    async fn consent(
        &self,
        estab: &Estab,
        partner: &PartnerId,
    ) -> Result<Option<Consent>, StoreError> {
        self.inner.consent(estab, partner).await
    }
    async fn consents_of_school(&self, estab: &Estab) -> Result<Vec<Consent>, StoreError> {
        self.inner.consents_of_school(estab).await
    }
    async fn consents_of_partner(&self, partner: &PartnerId) -> Result<Vec<Consent>, StoreError> {
        self.inner.consents_of_partner(partner).await
    }
    async fn put_consent(
        &self,
        consent: &Consent,
        expected: Option<u64>,
    ) -> Result<(), StoreError> {
        self.plan.write("put consent")?;
        self.inner.put_consent(consent, expected).await
    }
}

#[async_trait]
impl OptOutStore for Faults<dyn OptOutStore> {
    async fn opt_outs(
        &self,
        estab: &Estab,
        partner: &PartnerId,
    ) -> Result<Option<OptOutRecord>, StoreError> {
        self.inner.opt_outs(estab, partner).await
    }
    async fn put_opt_outs(
        &self,
        record: &OptOutRecord,
        expected: Option<u64>,
    ) -> Result<(), StoreError> {
        self.plan.write("put opt-outs")?;
        self.inner.put_opt_outs(record, expected).await
    }
}

#[async_trait]
impl TaskStore for Faults<dyn TaskStore> {
    async fn insert_task(&self, task: &Task) -> Result<(), StoreError> {
        self.plan.write("insert task")?;
        self.inner.insert_task(task).await
    }
    async fn task(&self, estab: &Estab, id: &str) -> Result<Option<Task>, StoreError> {
        self.inner.task(estab, id).await
    }
    async fn open_tasks(&self, estab: &Estab) -> Result<Vec<Task>, StoreError> {
        self.inner.open_tasks(estab).await
    }
    async fn update_task(
        &self,
        estab: &Estab,
        id: &str,
        from: &[&str],
        state: &TaskState,
    ) -> Result<(), StoreError> {
        self.plan.write("update task")?;
        self.inner.update_task(estab, id, from, state).await
    }
}

#[async_trait]
impl Disposal for Faults<dyn Disposal> {
    async fn all_versions(&self) -> Result<Vec<VersionRecord>, StoreError> {
        self.inner.all_versions().await
    }
    async fn delete_version(
        &self,
        estab: &Estab,
        result_set: &str,
        version: u64,
    ) -> Result<(), StoreError> {
        self.plan.write("delete version")?;
        self.inner.delete_version(estab, result_set, version).await
    }
    async fn delete_expired_tokens(&self, now: Timestamp) -> Result<u64, StoreError> {
        self.plan.write("delete expired tokens")?;
        self.inner.delete_expired_tokens(now).await
    }
    async fn delete_expired_staged_uploads(&self, now: Timestamp) -> Result<u64, StoreError> {
        self.plan.write("delete expired staged uploads")?;
        self.inner.delete_expired_staged_uploads(now).await
    }
    async fn delete_expired_tasks(&self, now: Timestamp) -> Result<u64, StoreError> {
        self.plan.write("delete expired tasks")?;
        self.inner.delete_expired_tasks(now).await
    }
    async fn delete_expired_idempotency_keys(&self, now: Timestamp) -> Result<u64, StoreError> {
        self.plan.write("delete expired idempotency keys")?;
        self.inner.delete_expired_idempotency_keys(now).await
    }
}
