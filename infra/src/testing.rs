//! Test helpers shared by every crate's tests and the benches (feature `testing`): the
//! S3/DynamoDB/KMS emulator the AWS adapters are tested against, and a key service that
//! counts its calls.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use rollcall_core::envelope::{DataKey, KeyContext, PlainKey};
use rollcall_core::ports::{DataKeyGenerator, DataKeyUnwrapper, KeyError, Ports};

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
