//! `GET /admin/v1/partners`: what a school's data protection lead decides on. Every partner
//! asking for access, the scopes it asks for and those granted now, the consent's start and
//! end, and each scope in plain words: who it is about, what it releases field by field (from
//! the catalogue) and whether it is special-category data, which is granted only with an
//! explicit confirmation.

use axum::Json;
use axum::extract::State;
use rollcall_core::catalogue::Catalogue;
use rollcall_core::model::{Consent, Partner};
use rollcall_core::timestamp::Timestamp;
use rollcall_http::ApiResult;
use rollcall_http::credentials::AdminSchool;
use serde_json::{Map, Value, json};

use crate::ConsentState;
use crate::admin::status;

pub(crate) async fn partners(
    State(state): State<ConsentState>,
    AdminSchool(school): AdminSchool,
) -> ApiResult<Json<Value>> {
    let now = state.clock.now();
    let consents = state.consents.consents_of_school(&school.estab).await?;
    let partners = state.partners.partners().await?;
    let partners: Vec<Value> = partners
        .iter()
        .map(|partner| {
            let consent = consents.iter().find(|c| c.partner == partner.id);
            partner_view(partner, consent, now)
        })
        .collect();
    Ok(Json(json!({ "partners": partners })))
}

/// One partner as the school sees it at `now`.
fn partner_view(partner: &Partner, consent: Option<&Consent>, now: Timestamp) -> Value {
    let in_force = consent.filter(|c| c.in_force(now));
    let granted = |scope: &str| in_force.is_some_and(|c| c.scopes.contains(scope));
    let scopes: Vec<Value> = partner
        .requested_scopes
        .iter()
        .map(|scope| scope_view(scope, granted(scope)))
        .collect();
    json!({
        "partner": partner.id,
        "name": partner.name,
        "status": status(consent, now),
        "requestedScopes": partner.requested_scopes,
        "grantedScopes": in_force.map(|c| c.scopes.iter().collect::<Vec<_>>()).unwrap_or_default(),
        "grantedAt": in_force.map(|c| c.granted_at.to_rfc3339()),
        "endDate": consent.and_then(|c| c.end_date).map(Timestamp::to_rfc3339),
        "scopes": scopes,
    })
}

/// A scope: its catalogue description, whether it is granted, and what it releases.
fn scope_view(scope: &str, granted: bool) -> Value {
    let catalogue = Catalogue::get();
    let info = catalogue.scope(scope);
    let releases: Map<String, Value> = catalogue
        .fields_of_scope(scope)
        .into_iter()
        .map(|(set, fields)| (set.to_owned(), json!(fields)))
        .collect();
    json!({
        "scope": scope,
        "category": info.map(|i| i.category.as_str()),
        "description": info.map(|i| i.description.as_str()),
        "special": info.is_some_and(|i| i.special),
        "granted": granted,
        "releases": releases,
    })
}
