//! XoD GetToken: a partner trades the per-school secret for a short-lived token.

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use rollcall_core::consent::consent_in_force;
use rollcall_core::model::{Estab, PartnerId, Token};
use rollcall_core::secret::{KeyHash, SecretKind, new_secret};
use rollcall_http::error::CredentialRefused;
use rollcall_http::request::{BodyShape, JsonBody};
use rollcall_http::{ApiError, ApiResult};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Map, Value, json};

use crate::{ConsentState, TOKEN_LIFETIME};

const SHAPE: &str = r#"{"relyingParty": "<partner id>", "thirdPartyId": "XporterOnDemand", "estab": "<estab>", "password": "<school secret>"}"#;

/// GetToken's body as sent: an object whose field names XoD clients spell in any case.
#[derive(serde::Deserialize)]
#[serde(transparent)]
pub(crate) struct TokenBody(Map<String, Value>);

impl BodyShape for TokenBody {
    const SHAPE: &'static str = concat!(
        "a JSON object ",
        r#"{"relyingParty": "<partner id>", "thirdPartyId": "XporterOnDemand", "estab": "<estab>", "password": "<school secret>"}"#
    );
    const ADVICE: &'static str = "GetToken takes a small JSON object";
}

/// GetToken's body fields, read without regard to the case of their names.
struct TokenRequest {
    partner: PartnerId,
    estab: Estab,
    password: SecretString,
}

fn parse_request(TokenBody(body): TokenBody) -> ApiResult<TokenRequest> {
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
    JsonBody(body): JsonBody<TokenBody>,
) -> Response {
    let request = match parse_request(body) {
        Ok(request) => request,
        Err(error) => return error.into_response(),
    };
    // A refusal is counted against the caller by what it tried, which is in the body.
    let tried = CredentialRefused::sent(&[
        request.partner.as_str().as_bytes(),
        request.estab.as_str().as_bytes(),
        request.password.expose_secret().as_bytes(),
    ]);
    tried.name(issue_token(&state, request).await.into_response())
}

async fn issue_token(state: &ConsentState, request: TokenRequest) -> ApiResult<Json<Value>> {
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
            ApiError::UnknownCredential(format!(
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
    consent_in_force(Some(consent), &token, now)?;
    state.tokens.insert_token(&token).await?;
    tracing::info!(estab = %token.estab, partner = %token.partner, "token issued");
    Ok(Json(json!({
        "token": token_secret.expose_secret(),
        "expires": token.expires_at.to_rfc3339(),
    })))
}
