//! rollcall's HTTP edge, shared by the four functions: the error type and its one mapping to
//! HTTP (in the XoD error body), request reading (credentials, limited bodies, query
//! parameters) and the layers every router is served with.
//!
//! # Layout
//! - [`error`]: [`ApiError`], mapped to a status and an `ExceptionMessage` in one place.
//! - [`credentials`]: an extractor per credential (partner token, agent key, admin key,
//!   management secret) and the partner check serve's routes share.
//! - [`request`]: the `Authorization` header, size-limited bodies, the [`request::JsonBody`]
//!   extractor, case-insensitive query parameters.
//! - [`abuse`]: size limits, per-credential rates and lockouts after refused credentials,
//!   decided at the edge for every route.
//! - [`edge`]: [`app`], which wraps a router with path matching, request ids and tracing,
//!   and [`Routes`], each function's route table, from which the router and the
//!   case-insensitive XoD prefixes are both made.

pub mod abuse;
pub mod credentials;
pub mod edge;
pub mod error;
pub mod request;

pub use abuse::Limits;
pub use edge::{Routes, app, app_with};
pub use error::{ApiError, ApiResult, Failure};
