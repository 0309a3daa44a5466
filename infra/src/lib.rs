//! Adapters for rollcall's ports, chosen once at start-up, and the process-wide telemetry.
//!
//! # Layout
//! - [`local`]: the embedded default: SQLite control store, objects on disk, master key file.
//! - [`telemetry`]: the tracing subscriber (JSON in Lambda, text on a terminal).
//! - `contract` (feature `testing`): one behaviour suite per port, run against every adapter.

pub mod local;
pub mod telemetry;

#[cfg(feature = "testing")]
pub mod contract;
