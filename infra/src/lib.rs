//! Adapters for rollcall's ports, chosen once at start-up, and the process-wide telemetry.
//!
//! # Layout
//! - [`aws`]: S3, DynamoDB and KMS adapters.
//! - [`local`]: the embedded default: SQLite control store, objects on disk, master key file.
//! - [`telemetry`]: the tracing subscriber (JSON in Lambda, text on a terminal).
//! - `contract` (feature `testing`): one behaviour suite per port, run against every adapter.

pub mod aws;
pub mod local;
pub mod telemetry;

use std::path::PathBuf;
use std::sync::Arc;

use rollcall_core::ports::{Ports, SystemClock};

/// Where a function keeps the embedded store when run outside the local stack.
pub const DATA_DIR_VAR: &str = "ROLLCALL_DATA_DIR";

/// The ports a function's `main` runs on, chosen from its environment: the embedded store in
/// `ROLLCALL_DATA_DIR` (default `.rollcall`).
pub fn ports_from_env() -> anyhow::Result<Ports> {
    let dir = std::env::var_os(DATA_DIR_VAR)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(".rollcall"));
    let local = local::LocalPorts::open(&dir)?;
    Ok(local.ports(Arc::new(SystemClock)))
}

#[cfg(feature = "testing")]
pub mod contract;
