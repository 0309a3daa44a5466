//! Registering schools and partners (the operator's `rollcall school add` / `partner add`).
//! Each issues its secrets once: only their hashes are kept.

use rollcall_core::catalogue::Catalogue;
use rollcall_core::consent::validate_scopes;
use rollcall_core::model::{Estab, Partner, PartnerId, School};
use rollcall_core::ports::{Registry, SchoolStore, StoreError};
use rollcall_core::secret::{KeyHash, SecretKind, new_secret, random_bytes};
use rollcall_core::timestamp::Timestamp;
use secrecy::SecretString;

#[derive(Debug, thiserror::Error)]
pub enum RegisterError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Exists(String),
    #[error(transparent)]
    Store(StoreError),
}

pub struct NewSchool {
    pub school: School,
    pub agent_key: SecretString,
    pub admin_key: SecretString,
}

pub struct NewPartner {
    pub partner: Partner,
    pub management_secret: SecretString,
}

pub async fn register_school(
    registry: &dyn Registry,
    estab: &str,
    name: &str,
    now: Timestamp,
) -> Result<NewSchool, RegisterError> {
    let estab = Estab::parse(estab).map_err(|e| RegisterError::Invalid(e.to_string()))?;
    let name = required_name(name, "school")?;
    let agent_key = new_secret(SecretKind::AgentKey);
    let admin_key = new_secret(SecretKind::AdminKey);
    let school = School {
        estab: estab.clone(),
        name,
        agent_key_hash: KeyHash::of_secret(&agent_key),
        admin_key_hash: KeyHash::of_secret(&admin_key),
        row_hash_key: random_bytes::<32>().to_vec(),
        created_at: now,
    };
    registry.insert_school(&school).await.map_err(|e| match e {
        StoreError::Conflict(_) => {
            RegisterError::Exists(format!("school {estab} is already registered"))
        }
        other => RegisterError::Store(other),
    })?;
    Ok(NewSchool {
        school,
        agent_key,
        admin_key,
    })
}

/// Gives a registered school a new admin key and answers it (shown once). The old key stops
/// working at once, and with it every signed-in session of the consent page (a session is
/// sealed under a key derived from the admin key's hash).
pub async fn replace_admin_key(
    schools: &dyn SchoolStore,
    registry: &dyn Registry,
    estab: &str,
) -> Result<SecretString, RegisterError> {
    let estab = Estab::parse(estab).map_err(|e| RegisterError::Invalid(e.to_string()))?;
    let school = (schools.school(&estab).await)
        .map_err(RegisterError::Store)?
        .ok_or_else(|| RegisterError::Invalid(format!("school {estab} is not registered")))?;
    let admin_key = new_secret(SecretKind::AdminKey);
    let replaced = School {
        admin_key_hash: KeyHash::of_secret(&admin_key),
        ..school.clone()
    };
    registry
        .replace_admin_key(&replaced, &school.admin_key_hash)
        .await
        .map_err(|e| match e {
            StoreError::Conflict(_) => RegisterError::Exists(format!(
                "school {estab}'s admin key was replaced by someone else meanwhile; run it again"
            )),
            other => RegisterError::Store(other),
        })?;
    Ok(admin_key)
}

pub async fn register_partner(
    registry: &dyn Registry,
    id: &str,
    name: &str,
    scopes: &[String],
    now: Timestamp,
) -> Result<NewPartner, RegisterError> {
    let id = PartnerId::parse(id).map_err(|e| RegisterError::Invalid(e.to_string()))?;
    let name = required_name(name, "partner")?;
    let requested_scopes = validate_scopes(Catalogue::get(), scopes)
        .map_err(|e| RegisterError::Invalid(e.to_string()))?;
    let management_secret = new_secret(SecretKind::ManagementSecret);
    let partner = Partner {
        id: id.clone(),
        name,
        requested_scopes,
        management_secret_hash: KeyHash::of_secret(&management_secret),
        created_at: now,
    };
    registry
        .insert_partner(&partner)
        .await
        .map_err(|e| match e {
            StoreError::Conflict(_) => {
                RegisterError::Exists(format!("partner {id} is already registered"))
            }
            other => RegisterError::Store(other),
        })?;
    Ok(NewPartner {
        partner,
        management_secret,
    })
}

fn required_name(name: &str, what: &str) -> Result<String, RegisterError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(RegisterError::Invalid(format!(
            "give the {what} a name of 1 to 200 characters"
        )));
    }
    Ok(name.to_owned())
}
