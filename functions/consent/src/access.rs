//! The check every partner call goes through: a live token, for this school, backed by a
//! consent in force now and made with the school's current secret.

use axum::http::HeaderMap;
use rollcall_core::consent::consent_in_force;
use rollcall_core::model::{Consent, Estab, Token};
use rollcall_core::ports::ControlStore;
use rollcall_core::secret::KeyHash;
use rollcall_core::timestamp::Timestamp;
use rollcall_http::request::credential;
use rollcall_http::{ApiError, ApiResult};

/// The partner's token from `Authorization: Idaas <token>`, if it is known and unexpired.
pub async fn authenticate(
    control: &dyn ControlStore,
    headers: &HeaderMap,
    now: Timestamp,
) -> ApiResult<Token> {
    let secret = credential(headers, "Idaas", "token")?;
    let token = control
        .token(&KeyHash::of_secret(&secret))
        .await?
        .ok_or_else(|| {
            ApiError::Unauthorized(
                "this token is not recognised; get one from POST /idaas/sts/STS/GetToken"
                    .to_owned(),
            )
        })?;
    if now >= token.expires_at {
        return Err(ApiError::Unauthorized(format!(
            "this token expired at {}; get a new one from POST /idaas/sts/STS/GetToken",
            token.expires_at
        )));
    }
    Ok(token)
}

/// Refuses a token made for another school.
pub fn check_school(token: &Token, estab: &Estab) -> ApiResult<()> {
    if &token.estab == estab {
        return Ok(());
    }
    Err(ApiError::Forbidden(format!(
        "this token is for school {}, not {estab}; get a token for school {estab} with the \
         secret that school issued to you",
        token.estab
    )))
}

/// The consent in force now behind `token`.
pub async fn consent(
    control: &dyn ControlStore,
    token: &Token,
    now: Timestamp,
) -> ApiResult<Consent> {
    let consent = control.consent(&token.estab, &token.partner).await?;
    consent_in_force(consent, token, now).map_err(|denied| ApiError::Forbidden(denied.to_string()))
}
