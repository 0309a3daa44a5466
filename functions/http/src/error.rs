//! The one place errors become HTTP answers. Every error carries the XoD error body, since XoD
//! clients detect errors by `ExceptionMessage` whatever the status, and every message says
//! what was wrong and how to fix it.
//!
//! Core's error enums convert with `From` (so call sites use `?`), and converting has no side
//! effects: an answer carries its [`Failure`] in its extensions and the edge's one logging
//! layer ([`crate::edge`]) writes it to the log beside the request id.

use axum::Json;
use axum::http::header::RETRY_AFTER;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use rollcall_core::consent::{AccessDenied, GrantError};
use rollcall_core::ports::{BoxError, KeyError, StoreError};
use rollcall_core::secret::keyed_hash_bytes;
use rollcall_core::xod::error_body;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request cannot be read (malformed JSON, bad parameter).
    #[error("{0}")]
    BadRequest(String),
    /// No credentials, or credentials rollcall does not know, or an expired token.
    #[error("{0}")]
    Unauthorized(String),
    /// A credential rollcall does not know (a token, key or secret that is wrong, not merely
    /// missing or expired): counted against the client by the edge ([`crate::abuse`]).
    #[error("{0}")]
    UnknownCredential(String),
    /// Over a rate limit, or locked out after refused credentials: retry after `retry_after`
    /// seconds.
    #[error("{message}")]
    TooManyRequests { message: String, retry_after: u64 },
    /// A request target (path and query) longer than rollcall reads.
    #[error("{0}")]
    UriTooLong(String),
    /// Request headers larger than rollcall reads.
    #[error("{0}")]
    HeadersTooLarge(String),
    /// Genuine credentials that do not cover what was asked.
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    MethodNotAllowed(String),
    /// Someone else changed the same thing at the same moment; sending again is safe.
    #[error("{0}")]
    Conflict(String),
    /// What the call refers to existed once and is no longer kept.
    #[error("{0}")]
    Gone(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    /// Well-formed, but not acceptable (validation).
    #[error("{0}")]
    Unprocessable(String),
    /// The data asked for is not available now (not uploaded, out of date).
    #[error("{0}")]
    Unavailable(String),
    /// A service rollcall depends on (its store, its key service) failed; the cause is
    /// logged, never sent.
    #[error("rollcall's {what} is unavailable at the moment; try again in a minute")]
    Down {
        what: &'static str,
        #[source]
        cause: BoxError,
    },
    /// A bug or a failure on rollcall's side; the detail is logged, never sent.
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl ApiError {
    pub fn internal(error: impl Into<anyhow::Error>) -> Self {
        Self::Internal(error.into())
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) | ApiError::UnknownCredential(_) => StatusCode::UNAUTHORIZED,
            ApiError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::UriTooLong(_) => StatusCode::URI_TOO_LONG,
            ApiError::HeadersTooLarge(_) => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::Gone(_) => StatusCode::GONE,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Unavailable(_) | ApiError::Down { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The text sent to the caller.
    pub fn message(&self) -> String {
        match self {
            ApiError::Internal(_) => "something went wrong inside rollcall; the error is logged \
                 under this answer's x-request-id; try again, and quote that id if it persists"
                .to_owned(),
            other => other.to_string(),
        }
    }

    /// What is logged about this error: the cause on rollcall's side, if there is one (the
    /// message a caller got is not repeated: it may quote what the caller sent).
    fn failure(&self) -> Failure {
        let cause = match self {
            ApiError::Internal(error) => Some(format!("{error:#}")),
            ApiError::Down { what, cause } => Some(format!("{what}: {cause}")),
            _ => None,
        };
        Failure { cause }
    }
}

/// An error answer's record for the log, carried in the response's extensions to the edge's
/// logging layer.
#[derive(Debug, Clone)]
pub struct Failure {
    /// What failed on rollcall's side; `None` for a refusal (a 4xx, or data not held).
    pub cause: Option<String>,
}

/// Marks an answer that refused a credential rollcall does not know, for the edge to count
/// against the client ([`crate::abuse`]). The edge names a credential sent in the headers
/// itself; one sent in the body (GetToken's secret, the page's sign-in key), which the edge
/// does not read, is named here by a hash ([`CredentialRefused::sent`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct CredentialRefused {
    pub tried: Option<[u8; 32]>,
}

impl CredentialRefused {
    /// A refusal of the credential made of `parts` (sent in the body).
    pub fn sent(parts: &[&[u8]]) -> Self {
        let mut text = Vec::new();
        for part in parts {
            text.extend_from_slice(&(part.len() as u64).to_be_bytes());
            text.extend_from_slice(part);
        }
        Self {
            tried: Some(keyed_hash_bytes(b"rollcall refused credential", &text)),
        }
    }

    /// Names the credential `response` refused, if it refused one.
    pub fn name(self, mut response: Response) -> Response {
        if response.extensions().get::<Self>().is_some() {
            response.extensions_mut().insert(self);
        }
        response
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let failure = self.failure();
        let mut response = (status, Json(error_body(&self.message()))).into_response();
        match &self {
            ApiError::UnknownCredential(_) => {
                response
                    .extensions_mut()
                    .insert(CredentialRefused::default());
            }
            ApiError::TooManyRequests { retry_after, .. } => {
                response
                    .headers_mut()
                    .insert(RETRY_AFTER, HeaderValue::from(*retry_after));
            }
            _ => {}
        }
        response.extensions_mut().insert(failure);
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Conflict(_) => ApiError::Conflict(
                "the same record was changed by another request at the same moment; \
                 send this request again"
                    .to_owned(),
            ),
            StoreError::Unavailable(cause) => ApiError::Down {
                what: "store",
                cause,
            },
            StoreError::NotFound(what) => {
                ApiError::internal(anyhow::anyhow!("stored item missing: {what}"))
            }
        }
    }
}

impl From<KeyError> for ApiError {
    fn from(error: KeyError) -> Self {
        match error {
            KeyError::Denied => ApiError::internal(anyhow::anyhow!(
                "the key service refused a data key for its context"
            )),
            KeyError::Unavailable(cause) => ApiError::Down {
                what: "key service",
                cause,
            },
        }
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

impl From<rollcall_core::vault::VaultError> for ApiError {
    fn from(error: rollcall_core::vault::VaultError) -> Self {
        use rollcall_core::vault::VaultError;
        match error {
            VaultError::Store(e) => e.into(),
            VaultError::Key(e) => e.into(),
            other => ApiError::internal(other),
        }
    }
}

impl From<rollcall_core::plan::Refusal> for ApiError {
    fn from(refusal: rollcall_core::plan::Refusal) -> Self {
        use rollcall_core::plan::Refusal;
        match refusal {
            Refusal::NotGranted(message) => ApiError::Forbidden(message),
            Refusal::BadQuery(message) => ApiError::BadRequest(message),
        }
    }
}

impl From<AccessDenied> for ApiError {
    fn from(denied: AccessDenied) -> Self {
        ApiError::Forbidden(denied.to_string())
    }
}

impl From<GrantError> for ApiError {
    fn from(error: GrantError) -> Self {
        ApiError::Unprocessable(error.to_string())
    }
}

/// A page out of range or of a size rollcall does not serve: the caller's to fix.
impl From<rollcall_core::xod::PageError> for ApiError {
    fn from(error: rollcall_core::xod::PageError) -> Self {
        ApiError::BadRequest(error.to_string())
    }
}

/// A changeset hash that is not one this partner was given for this endpoint.
impl From<rollcall_core::changeset::ChangesetError> for ApiError {
    fn from(error: rollcall_core::changeset::ChangesetError) -> Self {
        ApiError::BadRequest(error.to_string())
    }
}

/// An upload that is not JSON is malformed (400); one that is, but breaks the catalogue's
/// rules, is refused as unprocessable (422).
impl From<rollcall_core::dataset::UploadError> for ApiError {
    fn from(error: rollcall_core::dataset::UploadError) -> Self {
        use rollcall_core::dataset::UploadError;
        match error {
            UploadError::NotJson(_) => ApiError::BadRequest(error.to_string()),
            other => ApiError::Unprocessable(other.to_string()),
        }
    }
}

/// A malformed `Idempotency-Key` is the caller's to fix (400); a key reused for another body is
/// unprocessable (422); a key whose first request is still running is a conflict (409: retry).
impl From<rollcall_core::idempotency::IdempotencyError> for ApiError {
    fn from(error: rollcall_core::idempotency::IdempotencyError) -> Self {
        use rollcall_core::idempotency::IdempotencyError;
        match error {
            IdempotencyError::BadKey => ApiError::BadRequest(error.to_string()),
            IdempotencyError::DifferentBody => ApiError::Unprocessable(error.to_string()),
            IdempotencyError::InProgress => ApiError::Conflict(error.to_string()),
        }
    }
}

/// A health report that is not JSON is malformed (400); one that is, but breaks the report's
/// shape or bounds, is unprocessable (422), as an upload is.
impl From<rollcall_core::agent_health::HealthReportError> for ApiError {
    fn from(error: rollcall_core::agent_health::HealthReportError) -> Self {
        use rollcall_core::agent_health::HealthReportError;
        match error {
            HealthReportError::NotJson(_) => ApiError::BadRequest(error.to_string()),
            HealthReportError::Invalid(_) => ApiError::Unprocessable(error.to_string()),
        }
    }
}
