//! Test helpers shared by every crate's tests (feature `testing`): the S3/DynamoDB/KMS
//! emulator the AWS adapters are tested against.

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
