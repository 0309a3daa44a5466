//! The adapters' tests, one binary: every port contract on each adapter set ([`contract`]),
//! then what only one adapter set has ([`local`]: the master key file, reopening the database;
//! [`aws`]: encryption at rest, upload URLs, the key cache).
//!
//! The AWS adapters run on an S3/DynamoDB/KMS emulator (`moto_server`, which `scripts/test`
//! starts, setting `ROLLCALL_TEST_AWS_ENDPOINT`); each test gets a fresh bucket, table and key.

mod aws;
mod contract;
mod local;

use rollcall_infra::aws::AwsPorts;

/// Fresh AWS resources on the emulator, or `None` when none runs here.
pub async fn emulator() -> Option<AwsPorts> {
    rollcall_infra::testing::emulator("rc").await
}
