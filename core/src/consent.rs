//! Consent rules: what a school may grant, and whether a partner's token is backed by a consent
//! in force now.

use crate::catalogue::Catalogue;
use crate::model::{Consent, Token};
use crate::scope::ScopeSet;
use crate::timestamp::Timestamp;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum GrantError {
    #[error("no scopes given; to stop sharing with this partner, revoke its consent instead")]
    Empty,
    #[error("`{scope}` is not a scope; valid scopes are: {known}")]
    UnknownScope { scope: String, known: String },
    #[error("the partner did not request `{scope}`; it requested: {requested}")]
    NotRequested { scope: String, requested: String },
}

/// Checks that `asked` names known scopes that the partner requested.
pub fn validate_grant(
    catalogue: &Catalogue,
    requested: &ScopeSet,
    asked: &[String],
) -> Result<ScopeSet, GrantError> {
    if asked.is_empty() {
        return Err(GrantError::Empty);
    }
    for scope in asked {
        if !catalogue.scopes().contains(scope) {
            return Err(GrantError::UnknownScope {
                scope: scope.chars().take(64).collect(),
                known: join(catalogue.scopes()),
            });
        }
        if !requested.contains(scope) {
            return Err(GrantError::NotRequested {
                scope: scope.clone(),
                requested: join(requested),
            });
        }
    }
    Ok(asked.iter().cloned().collect())
}

/// Checks that scope names are known (for a partner's request).
pub fn validate_scopes(catalogue: &Catalogue, asked: &[String]) -> Result<ScopeSet, GrantError> {
    validate_grant(catalogue, catalogue.scopes(), asked)
}

fn join<'a>(scopes: impl IntoIterator<Item = &'a String>) -> String {
    scopes
        .into_iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Why a partner call is refused although its token is genuine.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AccessDenied {
    #[error("school {estab} has not granted this partner access")]
    NoConsent { estab: String },
    #[error("school {estab} ended this partner's access on {at}")]
    Ended { estab: String, at: Timestamp },
    #[error(
        "school {estab} has issued a new secret since this token was made; get a new token with it"
    )]
    SecretReplaced { estab: String },
}

/// The consent behind `token`, if it is in force at `now` and the token was made with the
/// secret in force.
pub fn consent_in_force(
    consent: Option<Consent>,
    token: &Token,
    now: Timestamp,
) -> Result<Consent, AccessDenied> {
    let estab = token.estab.to_string();
    let consent = consent.ok_or_else(|| AccessDenied::NoConsent {
        estab: estab.clone(),
    })?;
    if !consent.in_force(now) {
        let at = consent.end_date.unwrap_or(now);
        return Err(AccessDenied::Ended { estab, at });
    }
    if consent.secret_generation != token.secret_generation {
        return Err(AccessDenied::SecretReplaced { estab });
    }
    Ok(consent)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(names: &[&str]) -> ScopeSet {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn grant_must_be_a_known_requested_subset() {
        let catalogue = Catalogue::get();
        let requested = set(&["Student", "Contact"]);
        let ok = validate_grant(catalogue, &requested, &["Student".into()]).unwrap();
        assert_eq!(ok, set(&["Student"]));
        assert!(matches!(
            validate_grant(catalogue, &requested, &["StudentMedical".into()]),
            Err(GrantError::NotRequested { .. })
        ));
        assert!(matches!(
            validate_grant(catalogue, &requested, &["Pupils".into()]),
            Err(GrantError::UnknownScope { .. })
        ));
        assert_eq!(
            validate_grant(catalogue, &requested, &[]),
            Err(GrantError::Empty)
        );
    }
}
