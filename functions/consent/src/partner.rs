//! The partner management API: the schools that granted this partner access, and the
//! per-school secrets to get tokens with.

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use rollcall_core::model::Partner;
use rollcall_core::secret::KeyHash;
use rollcall_core::timestamp::Timestamp;
use rollcall_http::request::credential;
use rollcall_http::{ApiError, ApiResult};
use secrecy::ExposeSecret;
use serde_json::{Value, json};

use crate::{ConsentState, admin::status, secrets};

async fn authenticate_partner(state: &ConsentState, headers: &HeaderMap) -> ApiResult<Partner> {
    let secret = credential(headers, "Bearer", "management secret")?;
    state
        .partners
        .partner_by_management_secret(&KeyHash::of_secret(&secret))
        .await?
        .ok_or_else(|| {
            ApiError::Unauthorized(
                "this management secret is not registered; use the one issued when your \
                 partner account was registered"
                    .to_owned(),
            )
        })
}

/// Every school that has granted this partner access, with the secret for GetToken while the
/// access lasts.
pub(crate) async fn schools(
    State(state): State<ConsentState>,
    headers: HeaderMap,
) -> ApiResult<Json<Value>> {
    let partner = authenticate_partner(&state, &headers).await?;
    let now = state.clock.now();
    let mut schools = Vec::new();
    for consent in state.consents.consents_of_partner(&partner.id).await? {
        let name = state
            .schools
            .school(&consent.estab)
            .await?
            .map(|s| s.name)
            .unwrap_or_default();
        let password = if consent.in_force(now) {
            let secret = secrets::reveal(
                state.key_unwrapper.as_ref(),
                &consent.estab,
                &partner.id,
                consent.secret_generation,
                &consent.secret_sealed,
            )
            .await?;
            Some(secret.expose_secret().to_owned())
        } else {
            None
        };
        schools.push(json!({
            "estab": consent.estab,
            "name": name,
            "scopes": consent.scopes,
            "status": status(Some(&consent), now),
            "endDate": consent.end_date.map(Timestamp::to_rfc3339),
            "password": password,
        }));
    }
    Ok(Json(json!({ "schools": schools })))
}
