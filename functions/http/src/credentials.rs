//! The credentials, one extractor each, so a handler names who may call it in its signature
//! and never re-does the check:
//!
//! | extractor | header | finds | needs from the state |
//! |-----------|--------|-------|----------------------|
//! | [`PartnerToken`] | `Authorization: Idaas <token>` | a live token, its school and partner | [`PartnerGate`] |
//! | [`AgentSchool`] | `Authorization: Bearer <agent key>` | the agent's school | [`SchoolKeys`] |
//! | [`AdminSchool`] | `Authorization: Bearer <admin key>` | the school whose admin calls | [`SchoolKeys`] |
//! | [`ManagingPartner`] | `Authorization: Bearer <management secret>` | the partner | [`PartnerKeys`] |
//!
//! A state gives an extractor what it needs through `FromRef`, so only functions whose state
//! holds the right ports can use it. A refused credential is a 401 that says what to send.

use std::sync::Arc;

use axum::extract::{FromRef, FromRequestParts};
use axum::http::request::Parts;
use rollcall_core::consent::consent_in_force;
use rollcall_core::model::{Consent, Estab, Partner, School, Token};
use rollcall_core::ports::{Clock, ConsentStore, PartnerStore, SchoolStore, TokenStore};
use rollcall_core::secret::KeyHash;
use rollcall_core::timestamp::Timestamp;

use crate::abuse::Guard;
use crate::error::{ApiError, ApiResult};
use crate::request::credential;

/// What the partner check reads: tokens, the consents behind them, and the time.
#[derive(Clone)]
pub struct PartnerGate {
    pub tokens: Arc<dyn TokenStore>,
    pub consents: Arc<dyn ConsentStore>,
    pub clock: Arc<dyn Clock>,
}

/// A partner's token, known and unexpired at `now` (the time the call is served at). Its
/// school and consent are checked by the handler ([`PartnerToken::check_school`],
/// [`PartnerToken::consent`]) so that a refusal there can be recorded in the access log.
pub struct PartnerToken {
    pub token: Token,
    pub now: Timestamp,
    consents: Arc<dyn ConsentStore>,
}

impl PartnerToken {
    /// Refuses a token made for another school.
    pub fn check_school(&self, estab: &Estab) -> ApiResult<()> {
        if &self.token.estab == estab {
            return Ok(());
        }
        Err(ApiError::Forbidden(format!(
            "this token is for school {}, not {estab}; get a token for school {estab} with \
             the secret that school issued to you",
            self.token.estab
        )))
    }

    /// The consent in force now behind the token: granted, not ended, and made with the
    /// school's current secret.
    pub async fn consent(&self) -> ApiResult<Consent> {
        let token = &self.token;
        let consent = self.consents.consent(&token.estab, &token.partner).await?;
        Ok(consent_in_force(consent, token, self.now)?)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for PartnerToken
where
    PartnerGate: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> ApiResult<Self> {
        let gate = PartnerGate::from_ref(state);
        let now = gate.clock.now();
        let secret = credential(&parts.headers, "Idaas", "token")?;
        let token = gate
            .tokens
            .token(&KeyHash::of_secret(&secret))
            .await?
            .ok_or_else(|| {
                ApiError::UnknownCredential(
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
        check_partner_rate(parts, token.partner.as_str())?;
        Ok(Self {
            token,
            now,
            consents: gate.consents,
        })
    }
}

/// 429 when `partner` is over its rate, as the edge's abuse controls count it (nothing is
/// counted for a router served without the edge).
fn check_partner_rate(parts: &Parts, partner: &str) -> ApiResult<()> {
    match parts.extensions.get::<Arc<Guard>>() {
        Some(guard) => guard.check_partner(partner),
        None => Ok(()),
    }
}

/// The hash of the `Authorization: Bearer <what>` credential, as stored; 401 saying what to
/// send when there is none.
fn bearer_hash(parts: &Parts, what: &str) -> ApiResult<KeyHash> {
    let secret = credential(&parts.headers, "Bearer", what)?;
    Ok(KeyHash::of_secret(&secret))
}

/// Who a bearer credential belongs to, or 401 with `unknown` (what to use instead).
fn registered<T>(found: Option<T>, unknown: &str) -> ApiResult<T> {
    found.ok_or_else(|| ApiError::UnknownCredential(unknown.to_owned()))
}

/// What the school credentials are checked against.
#[derive(Clone)]
pub struct SchoolKeys(pub Arc<dyn SchoolStore>);

/// The school whose agent calls (`Authorization: Bearer <agent key>`).
pub struct AgentSchool(pub School);

impl<S: Send + Sync> FromRequestParts<S> for AgentSchool
where
    SchoolKeys: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> ApiResult<Self> {
        let hash = bearer_hash(parts, "agent key")?;
        let school = SchoolKeys::from_ref(state)
            .0
            .school_by_agent_key(&hash)
            .await?;
        registered(
            school,
            "this agent key is not registered; use the agent key printed by `rollcall school \
             add` for this school",
        )
        .map(Self)
    }
}

/// The school whose data controller calls (`Authorization: Bearer <admin key>`).
pub struct AdminSchool(pub School);

impl<S: Send + Sync> FromRequestParts<S> for AdminSchool
where
    SchoolKeys: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> ApiResult<Self> {
        let hash = bearer_hash(parts, "admin key")?;
        let school = SchoolKeys::from_ref(state)
            .0
            .school_by_admin_key(&hash)
            .await?;
        registered(
            school,
            "this admin key is not registered; use the admin key printed by `rollcall school \
             add` for your school",
        )
        .map(Self)
    }
}

/// What the partner management secret is checked against.
#[derive(Clone)]
pub struct PartnerKeys(pub Arc<dyn PartnerStore>);

/// The partner managing its account (`Authorization: Bearer <management secret>`).
pub struct ManagingPartner(pub Partner);

impl<S: Send + Sync> FromRequestParts<S> for ManagingPartner
where
    PartnerKeys: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> ApiResult<Self> {
        let hash = bearer_hash(parts, "management secret")?;
        let partners = PartnerKeys::from_ref(state).0;
        let partner = partners.partner_by_management_secret(&hash).await?;
        let partner = registered(
            partner,
            "this management secret is not registered; use the one issued when your partner \
             account was registered",
        )?;
        check_partner_rate(parts, partner.id.as_str())?;
        Ok(Self(partner))
    }
}
