//! The school admin API: who asks for what, grants and narrowing, revocation.

use axum::Json;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use rollcall_core::catalogue::Catalogue;
use rollcall_core::consent::validate_grant;
use rollcall_core::model::{Consent, Partner, PartnerId};
use rollcall_core::timestamp::{Duration, Timestamp};
use rollcall_http::credentials::AdminSchool;
use rollcall_http::request::{BodyShape, JsonBody};
use rollcall_http::{ApiError, ApiResult};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::{ConsentState, secrets};

/// How far in the past a revocation's `endDate` may be (clock skew between school and us).
const END_DATE_TOLERANCE: Duration = Duration::minutes(5);

/// A consent's state as the school and the partner see it.
pub(crate) fn status(consent: Option<&Consent>, now: Timestamp) -> &'static str {
    match consent {
        None => "requested",
        Some(c) if !c.in_force(now) => "revoked",
        Some(c) if c.end_date.is_some() => "ending",
        Some(_) => "granted",
    }
}

pub(crate) async fn requests(
    State(state): State<ConsentState>,
    AdminSchool(school): AdminSchool,
) -> ApiResult<Json<Value>> {
    let now = state.clock.now();
    let consents = state.consents.consents_of_school(&school.estab).await?;
    let partners = state.partners.partners().await?;
    let requests: Vec<Value> = partners
        .iter()
        .map(|partner| {
            let consent = consents.iter().find(|c| c.partner == partner.id);
            let granted: Vec<&String> = consent
                .filter(|c| c.in_force(now))
                .map(|c| c.scopes.iter().collect())
                .unwrap_or_default();
            json!({
                "partner": partner.id,
                "name": partner.name,
                "requestedScopes": partner.requested_scopes,
                "grantedScopes": granted,
                "status": status(consent, now),
                "endDate": consent.and_then(|c| c.end_date).map(Timestamp::to_rfc3339),
            })
        })
        .collect();
    Ok(Json(json!({ "requests": requests })))
}

/// The registered partner named by the path's `{partner}`, or 404 saying where the partners
/// are listed. An extractor, so it is checked after the admin key and before the body is read.
pub(crate) struct KnownPartner(pub Partner);

impl FromRequestParts<ConsentState> for KnownPartner {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &ConsentState) -> ApiResult<Self> {
        let Path(id) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|_| ApiError::NotFound("name a partner in the path".to_owned()))?;
        known_partner(state, &id).await.map(Self)
    }
}

/// The registered partner `id`, or 404 saying where the partners are listed.
pub(crate) async fn known_partner(state: &ConsentState, id: &str) -> ApiResult<Partner> {
    let not_found = || {
        ApiError::NotFound(format!(
            "no partner `{}` is registered; GET /admin/v1/requests lists the partners \
             asking for access",
            id.chars().take(64).collect::<String>()
        ))
    };
    let id = PartnerId::parse(id).map_err(|_| not_found())?;
    state.partners.partner(&id).await?.ok_or_else(not_found)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct GrantBody {
    pub scopes: Vec<String>,
}

impl BodyShape for GrantBody {
    const SHAPE: &'static str = r#"{"scopes": ["Student", ...]}"#;
    const ADVICE: &'static str = "send only {\"scopes\": [...]}";
}

/// Grants a partner scopes, or narrows (or widens) a consent in force. A grant after a
/// revocation (or the first one) issues a new per-school secret; the old one stops working.
pub(crate) async fn grant(
    State(state): State<ConsentState>,
    AdminSchool(school): AdminSchool,
    KnownPartner(partner): KnownPartner,
    JsonBody(request): JsonBody<GrantBody>,
) -> ApiResult<Json<Value>> {
    let scopes = validate_grant(Catalogue::get(), &partner.requested_scopes, &request.scopes)?;
    let now = state.clock.now();
    let existing = state.consents.consent(&school.estab, &partner.id).await?;
    let expected = existing.as_ref().map(|c| c.version);
    let (consent, new_secret) = match existing {
        Some(current) if current.in_force(now) => (
            Consent {
                scopes,
                version: current.version + 1,
                updated_at: now,
                end_date: None,
                ..current
            },
            false,
        ),
        previous => {
            let generation = previous.as_ref().map_or(1, |c| c.secret_generation + 1);
            let secret = secrets::issue(
                state.key_generator.as_ref(),
                &school.estab,
                &partner.id,
                generation,
            )
            .await?;
            let consent = Consent {
                estab: school.estab.clone(),
                partner: partner.id.clone(),
                scopes,
                version: previous.as_ref().map_or(1, |c| c.version + 1),
                granted_at: now,
                updated_at: now,
                end_date: None,
                secret_hash: secret.hash,
                secret_sealed: secret.sealed,
                secret_generation: generation,
            };
            (consent, true)
        }
    };
    state.consents.put_consent(&consent, expected).await?;
    tracing::info!(estab = %school.estab, partner = %partner.id, version = consent.version, "consent granted");
    Ok(Json(json!({
        "partner": partner.id,
        "scopes": consent.scopes,
        "version": consent.version,
        "status": status(Some(&consent), now),
        "newSecretIssued": new_secret,
    })))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct RevokeBody {
    pub end_date: Option<String>,
}

impl BodyShape for RevokeBody {
    const SHAPE: &'static str =
        r#"{"endDate": "2026-12-31T00:00:00Z"} or no body to end access now"#;
    const ADVICE: &'static str = "send only {\"endDate\": ...}";

    fn when_empty() -> Option<Self> {
        Some(Self::default())
    }
}

/// Ends a partner's access now, or at `endDate`.
pub(crate) async fn revoke(
    State(state): State<ConsentState>,
    AdminSchool(school): AdminSchool,
    KnownPartner(partner): KnownPartner,
    JsonBody(request): JsonBody<RevokeBody>,
) -> ApiResult<Json<Value>> {
    let now = state.clock.now();
    let end = match request.end_date.as_deref() {
        None => now,
        Some(text) => {
            let end = Timestamp::parse(text).map_err(|_| {
                ApiError::BadRequest(format!(
                    "endDate `{}` is not an ISO 8601 date or date-time; send e.g. \
                     \"2026-12-31\" or \"2026-12-31T16:00:00Z\"",
                    text.chars().take(40).collect::<String>()
                ))
            })?;
            if end < now.minus(END_DATE_TOLERANCE) {
                return Err(ApiError::Unprocessable(format!(
                    "endDate {end} is in the past; omit endDate to end access now"
                )));
            }
            end.max(now)
        }
    };
    let current = state
        .consents
        .consent(&school.estab, &partner.id)
        .await?
        .filter(|c| c.in_force(now))
        .ok_or_else(|| {
            ApiError::Conflict(format!(
                "partner {} has no access to end at school {}",
                partner.id, school.estab
            ))
        })?;
    let expected = Some(current.version);
    let consent = Consent {
        version: current.version + 1,
        updated_at: now,
        end_date: Some(end),
        ..current
    };
    state.consents.put_consent(&consent, expected).await?;
    tracing::info!(estab = %school.estab, partner = %partner.id, "consent revoked");
    Ok(Json(json!({
        "partner": partner.id,
        "endDate": end.to_rfc3339(),
        "version": consent.version,
        "status": status(Some(&consent), now),
    })))
}
