//! The partner management API: the schools that granted this partner access, and the
//! per-school secrets to get tokens with.

use axum::Json;
use axum::extract::State;
use rollcall_core::timestamp::Timestamp;
use rollcall_http::ApiResult;
use rollcall_http::credentials::ManagingPartner;
use secrecy::ExposeSecret;
use serde_json::{Value, json};

use crate::{ConsentState, admin::status, secrets};

/// Every school that has granted this partner access, with the secret for GetToken while the
/// access lasts.
pub(crate) async fn schools(
    State(state): State<ConsentState>,
    ManagingPartner(partner): ManagingPartner,
) -> ApiResult<Json<Value>> {
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
