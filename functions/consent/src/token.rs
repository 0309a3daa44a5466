//! XoD GetToken: a partner trades the per-school secret for a short-lived token.

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use rollcall_core::consent::consent_in_force;
use rollcall_core::model::{Estab, PartnerId, Token};
use rollcall_core::secret::{KeyHash, SecretKind, new_secret};
use rollcall_http::request::{json_body, read_body};
use rollcall_http::{ApiError, ApiResult};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Map, Value, json};

use crate::{ConsentState, MAX_BODY_BYTES, TOKEN_LIFETIME};

const SHAPE: &str = r#"{"relyingParty": "<partner id>", "thirdPartyId": "XporterOnDemand", "estab": "<estab>", "password": "<school secret>"}"#;

/// GetToken's body fields, read without regard to the case of their names.
struct TokenRequest {
    partner: PartnerId,
    estab: Estab,
    password: SecretString,
}

fn parse_request(bytes: &[u8]) -> ApiResult<TokenRequest> {
    let body: Map<String, Value> = json_body(bytes, &format!("a JSON object {SHAPE}"))?;
    let field = |name: &str| -> ApiResult<String> {
        body.iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .and_then(|(_, value)| match value {
                Value::String(text) => Some(text.trim().to_owned()),
                Value::Number(n) => Some(n.to_string()),
                _ => None,
            })
            .filter(|text| !text.is_empty())
            .ok_or_else(|| {
                ApiError::BadRequest(format!("GetToken needs `{name}` as a string; send {SHAPE}"))
            })
    };
    let partner = PartnerId::parse(&field("relyingParty")?)
        .map_err(|e| ApiError::BadRequest(format!("relyingParty: {e}")))?;
    let estab =
        Estab::parse(&field("estab")?).map_err(|e| ApiError::BadRequest(format!("estab: {e}")))?;
    let password = SecretString::from(field("password")?);
    Ok(TokenRequest {
        partner,
        estab,
        password,
    })
}

pub(crate) async fn get_token(
    State(state): State<ConsentState>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Json<Value>> {
    let bytes = read_body(
        body,
        &headers,
        MAX_BODY_BYTES,
        "GetToken takes a small JSON object",
    )
    .await?;
    let request = parse_request(&bytes)?;
    let now = state.clock.now();
    let consent = state
        .consents
        .consent(&request.estab, &request.partner)
        .await?
        .filter(|c| {
            c.secret_hash
                .matches(&KeyHash::of_secret(&request.password))
        })
        .ok_or_else(|| {
            ApiError::Unauthorized(format!(
                "relyingParty, estab and password do not match: use the secret school {} \
                 issued to {} (GET /partner/v1/schools lists them); a school that re-grants \
                 access issues a new one",
                request.estab, request.partner
            ))
        })?;
    let token_secret = new_secret(SecretKind::Token);
    let token = Token {
        hash: KeyHash::of_secret(&token_secret),
        partner: request.partner.clone(),
        estab: request.estab.clone(),
        secret_generation: consent.secret_generation,
        issued_at: now,
        expires_at: now.plus(TOKEN_LIFETIME),
    };
    consent_in_force(Some(consent), &token, now)
        .map_err(|denied| ApiError::Forbidden(denied.to_string()))?;
    state.tokens.insert_token(&token).await?;
    tracing::info!(estab = %token.estab, partner = %token.partner, "token issued");
    Ok(Json(json!({
        "token": token_secret.expose_secret(),
        "expires": token.expires_at.to_rfc3339(),
    })))
}
