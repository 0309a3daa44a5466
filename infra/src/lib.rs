//! Adapters for rollcall's ports, chosen once at start-up, and the process-wide telemetry.
//!
//! # Layout
//! - [`aws`]: S3, DynamoDB and KMS adapters.
//! - [`local`]: the embedded default: SQLite control store, objects on disk, master key file.
//! - [`telemetry`]: the tracing subscriber (JSON in Lambda, text on a terminal).
//! - `contract` (feature `testing`): every port's behaviour suite, run on both adapter sets by
//!   `contract_tests!` (`infra/tests/adapters/`).
//! - `testing` (feature `testing`): helpers every crate's tests share (the AWS emulator).

pub mod aws;
#[cfg(feature = "testing")]
pub mod contract;
pub mod local;
pub mod telemetry;

/// The allocator every rollcall binary declares (`#[global_allocator]`): mimalloc, which serves
/// a read's many small, short-lived allocations (rows of JSON values) about a third faster
/// than glibc's malloc on the partner-read benchmark (BENCHMARKS.md).
pub use mimalloc::MiMalloc as Allocator;
#[cfg(feature = "testing")]
pub mod testing;

use std::path::PathBuf;
use std::sync::Arc;

use rollcall_core::ports::{Ports, SystemClock};

/// Where a function keeps the embedded store when it runs without AWS settings.
pub const DATA_DIR_VAR: &str = "ROLLCALL_DATA_DIR";

/// The ports a function's `main` runs on, chosen from its environment: the AWS adapters when
/// `ROLLCALL_TABLE` is set (with `ROLLCALL_BUCKET`, `ROLLCALL_KEY_ID`, `AWS_REGION`, see
/// [`aws::AwsSettings::from_env`]), else the embedded store in `ROLLCALL_DATA_DIR` (default
/// `.rollcall`).
pub async fn ports_from_env() -> anyhow::Result<Ports> {
    if std::env::var_os(aws::TABLE_VAR).is_some() {
        let settings = aws::AwsSettings::from_env()?;
        return Ok(aws::AwsPorts::connect(settings)
            .await
            .ports(Arc::new(SystemClock)));
    }
    let dir = std::env::var_os(DATA_DIR_VAR)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(".rollcall"));
    let local = local::LocalPorts::open(&dir)?;
    Ok(local.ports(Arc::new(SystemClock)))
}
