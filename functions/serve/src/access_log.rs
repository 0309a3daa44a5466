//! The access log: every partner call on its own school's data, answered or refused, so the
//! school sees probing (a refused scope, an opted-out id, a pin of another walk) as well as
//! reads. Entries hold what was asked and answered in outline, never school data.

use rollcall_core::included::Included;
use rollcall_core::model::{AccessEntry, Consent, Refused, Token};
use rollcall_core::scope::ScopeSet;
use rollcall_core::timestamp::Timestamp;
use rollcall_http::ApiResult;
use rollcall_http::credentials::PartnerToken;

use crate::ServeState;

/// The longest endpoint name kept for a call to an endpoint rollcall does not serve.
const MAX_ENDPOINT: usize = 64;

/// Records an answered call.
pub(crate) async fn answered(
    state: &ServeState,
    token: &Token,
    endpoint: &str,
    scopes_used: ScopeSet,
    rows: u64,
    included: &Included,
    now: Timestamp,
) -> ApiResult<()> {
    let mut entry = entry(token, endpoint, scopes_used, rows, None, now);
    entry.people = included.encode();
    state.access_log.append_access(&entry).await?;
    Ok(())
}

/// Passes `outcome` on, first recording it if it is a refusal (a 4xx): a failure on
/// rollcall's side is not the partner's doing and is logged as an error instead.
pub(crate) async fn unless_refused<T>(
    state: &ServeState,
    token: &Token,
    endpoint: &str,
    outcome: ApiResult<T>,
    now: Timestamp,
) -> ApiResult<T> {
    let error = match outcome {
        Ok(value) => return Ok(value),
        Err(error) => error,
    };
    if error.status().is_client_error() {
        let refused = Refused::new(error.status().as_u16(), &error.message());
        let entry = entry(token, endpoint, ScopeSet::new(), 0, Some(refused), now);
        state.access_log.append_access(&entry).await?;
    }
    Err(error)
}

/// The consent in force for the partner's token, for a call to `route` that reads no school
/// data; a refusal (the consent revoked or ended) is recorded like any other.
pub(crate) async fn consent(
    state: &ServeState,
    partner: &PartnerToken,
    route: &str,
) -> ApiResult<Consent> {
    let outcome = partner.consent().await;
    unless_refused(state, &partner.token, route, outcome, partner.now).await
}

fn entry(
    token: &Token,
    endpoint: &str,
    scopes_used: ScopeSet,
    rows: u64,
    refused: Option<Refused>,
    now: Timestamp,
) -> AccessEntry {
    AccessEntry {
        estab: token.estab.clone(),
        partner: token.partner.clone(),
        at: now,
        endpoint: endpoint_name(endpoint),
        scopes_used,
        rows,
        refused,
        people: String::new(),
    }
}

/// The endpoint as logged: what the partner named, cut short and to plain characters (it
/// may be any text for an endpoint that does not exist).
fn endpoint_name(endpoint: &str) -> String {
    endpoint
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        .take(MAX_ENDPOINT)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_endpoint_is_logged_short_and_plain() {
        assert_eq!(endpoint_name("Students"), "Students");
        assert_eq!(endpoint_name("<script>x</script>"), "scriptxscript");
        assert_eq!(endpoint_name(&"a".repeat(500)).len(), MAX_ENDPOINT);
    }
}
