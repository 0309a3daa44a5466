//! rollcall's domain, with no I/O: the catalogue of XoD endpoints, result sets, fields and scope
//! expressions; consent rules; the field filter; diffing; the envelope format; the XoD wire
//! format; and the ports the functions are written against.
//!
//! # Layout
//! - [`agent_health`]: the agent's health reports, and what the school's admin reads of them.
//! - [`scope`]: scope sets and the two notations of scope expression.
//! - [`catalogue`]: endpoints, result sets, fields and their scope groups (`catalogue.toml`).
//! - [`changeset`]: stateless `changedRows` hashes bound to a partner's call.
//! - [`plan`]: the read plan, the one place that decides what a partner may see.
//! - [`optout`]: a school's per-person opt-outs for one partner.
//! - [`dataset`]: upload validation, row hashes and diffing, scope-group split and assembly.
//! - [`consent`]: what may be granted; whether a consent is in force.
//! - [`envelope`]: AES-256-GCM envelope encryption of stored objects.
//! - [`included`]: who a partner's answer included (ids only), as the access log keeps it.
//! - [`idempotency`]: `Idempotency-Key`s on the agent's uploads: claims, stored answers, replays.
//! - [`model`]: ids and control records (schools, partners, consents, tokens, versions).
//! - [`secret`]: issued secrets and the hashes stored in their place.
//! - [`xod`]: the partner wire format (error body, answer object, pagination).
//! - [`vault`]: versions at rest: sealing a version's objects, opening them group by group.
//! - [`read_cache`]: data keys and opened versions kept between reads: one school per entry,
//!   bounded, time-limited, zeroized.
//! - [`walk`]: page pins that keep a paginated walk on the version it started on.
//! - [`subject_access`]: which stored rows are about one person, for the school's export.
//! - [`session`]: the consent page's signed-in sessions (sealed cookies) and CSRF tokens.
//! - [`staging`]: large uploads put to a pre-signed URL and ingested from the object.
//! - [`ports`]: object store, key service, upload URL signer and clock traits, and the control
//!   store's ports, one per aggregate (`ports::control` says who uses which).
//! - [`synthetic`]: a deterministic invented school for demos, tests and benchmarks.
//! - [`task`]: write-back tasks queued for the school's agent, their states and sealed payloads.
//! - [`timestamp`]: time points and their wire formats.
//! - `xod_reference` (feature `testing`): reads the XoD v1 reference for the tests that
//!   compare the catalogue and the answers with it.

pub mod agent_health;
pub mod catalogue;
pub mod changeset;
pub mod consent;
pub mod cursor;
pub mod dataset;
pub mod envelope;
pub mod idempotency;
pub mod included;
pub mod model;
pub mod optout;
pub mod plan;
pub mod ports;
pub mod read_cache;
pub mod scope;
pub mod secret;
pub mod session;
pub mod staging;
pub mod subject_access;
pub mod synthetic;
pub mod task;
pub mod timestamp;
pub mod vault;
pub mod walk;
pub mod xod;
#[cfg(feature = "testing")]
pub mod xod_reference;
