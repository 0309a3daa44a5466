//! The control records: schools, partners, consents, tokens, stored versions and access-log
//! entries, with the identifiers that name them.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::scope::ScopeSet;
use crate::secret::KeyHash;
use crate::timestamp::{Duration, Timestamp};

/// Data more than this long out of date is disposed of, and never served.
pub const DISPOSAL_AFTER: Duration = Duration::days(30);

/// An identifier a caller gave that is not of the expected form.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("`{value}` is not a valid {what}: {rule}")]
pub struct IdError {
    pub what: &'static str,
    pub value: String,
    pub rule: &'static str,
}

/// A school's establishment number (LA code and DfE number, e.g. `9992001`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Estab(String);

impl Estab {
    pub fn parse(value: &str) -> Result<Self, IdError> {
        let ok =
            (1..=16).contains(&value.len()) && value.chars().all(|c| c.is_ascii_alphanumeric());
        if ok {
            Ok(Self(value.to_owned()))
        } else {
            Err(IdError {
                what: "establishment number",
                value: value.chars().take(40).collect(),
                rule: "use 1 to 16 letters or digits, e.g. 9992001",
            })
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A partner's id (XoD's relying party), e.g. `acme-homework`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PartnerId(String);

impl PartnerId {
    pub fn parse(value: &str) -> Result<Self, IdError> {
        let ok = (1..=64).contains(&value.len())
            && value
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if ok {
            Ok(Self(value.to_owned()))
        } else {
            Err(IdError {
                what: "partner id",
                value: value.chars().take(70).collect(),
                rule: "use 1 to 64 letters, digits, '-', '_' or '.'",
            })
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

macro_rules! string_id {
    ($t:ty) => {
        impl TryFrom<String> for $t {
            type Error = IdError;
            fn try_from(value: String) -> Result<Self, IdError> {
                Self::parse(&value)
            }
        }
        impl From<$t> for String {
            fn from(value: $t) -> String {
                value.0
            }
        }
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}
string_id!(Estab);
string_id!(PartnerId);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct School {
    pub estab: Estab,
    pub name: String,
    pub agent_key_hash: KeyHash,
    pub admin_key_hash: KeyHash,
    /// Key of the keyed row hash, so a `RowHash` cannot be used to guess fields a partner was
    /// not granted (a plain hash of a row with a small-domain field like ethnicity could be).
    pub row_hash_key: Vec<u8>,
    pub created_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partner {
    pub id: PartnerId,
    pub name: String,
    pub requested_scopes: ScopeSet,
    pub management_secret_hash: KeyHash,
    pub created_at: Timestamp,
}

/// A school's consent to one partner. It has a version, bumped on every change, so that two
/// admins changing it at once cannot silently overwrite each other.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consent {
    pub estab: Estab,
    pub partner: PartnerId,
    pub scopes: ScopeSet,
    pub version: u64,
    pub granted_at: Timestamp,
    pub updated_at: Timestamp,
    /// When the consent ends (revocation); `None` while it lasts.
    pub end_date: Option<Timestamp>,
    /// The per-school secret (GetToken's password): its hash, to check it, and the secret
    /// sealed under the key service, so the partner management API can show it again.
    pub secret_hash: KeyHash,
    pub secret_sealed: Vec<u8>,
    /// Bumped whenever a new secret is issued; tokens carry it, so old tokens stop working.
    pub secret_generation: u64,
}

impl Consent {
    pub fn in_force(&self, now: Timestamp) -> bool {
        self.end_date.is_none_or(|end| now < end)
    }
}

/// A partner's access token for one school, stored only as a hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    pub hash: KeyHash,
    pub partner: PartnerId,
    pub estab: Estab,
    pub secret_generation: u64,
    pub issued_at: Timestamp,
    pub expires_at: Timestamp,
}

/// One stored version of a school's result set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionRecord {
    pub estab: Estab,
    pub result_set: String,
    pub version: u64,
    pub created_at: Timestamp,
    /// The last upload that carried exactly this content: the data is current as of then.
    pub confirmed_at: Timestamp,
    /// When a newer version replaced it.
    pub superseded_at: Option<Timestamp>,
    pub rows: u64,
    /// The scope groups stored as objects, by group id.
    pub groups: Vec<String>,
    /// When the data goes out of date (confirmed_at + the area's validity).
    pub valid_until: Timestamp,
    /// A random id of the upload that wrote the objects: part of their keys, so two uploads
    /// racing for the same version number never write over each other's objects.
    pub upload: String,
}

impl VersionRecord {
    /// Past this, the data is disposed of and never served.
    pub fn disposal_at(&self) -> Timestamp {
        self.valid_until.plus(DISPOSAL_AFTER)
    }

    pub fn is_disposable(&self, now: Timestamp) -> bool {
        now >= self.disposal_at()
    }

    pub fn is_stale(&self, now: Timestamp) -> bool {
        now >= self.valid_until
    }

    /// The object key prefix of this version: `{estab}/{result set}/{version}/`.
    pub fn object_prefix(&self) -> String {
        version_prefix(&self.estab, &self.result_set, self.version, &self.upload)
    }

    pub fn object_key(&self, group: &str) -> String {
        format!("{}{group}", self.object_prefix())
    }
}

/// The object holding a version's row index (ids, row hashes, update times, deletions).
pub const INDEX_GROUP: &str = "_index";

/// Where a version's objects live: `{estab}/{result set}/{version}-{upload}/`.
pub fn version_prefix(estab: &Estab, result_set: &str, version: u64, upload: &str) -> String {
    format!("{estab}/{result_set}/{version:010}-{upload}/")
}

/// One partner call, answered or refused, as the school sees it in its access log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AccessEntry {
    pub estab: Estab,
    pub partner: PartnerId,
    pub at: Timestamp,
    pub endpoint: String,
    pub scopes_used: ScopeSet,
    pub rows: u64,
    /// Set when the call was refused: what the partner was answered instead of data.
    pub refused: Option<Refused>,
    /// Who the answer included, ids only ([`crate::included`]'s text form; empty for none).
    /// Not shown in the log itself: a subject access export searches it.
    #[serde(skip)]
    pub people: String,
}

/// A refused partner call: the HTTP status and the message the partner received (which says
/// what it asked for that the school has not released; never any school data).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Refused {
    pub status: u16,
    pub reason: String,
}

impl Refused {
    /// The longest reason kept: a message's first part says what was refused.
    pub const MAX_REASON: usize = 300;

    pub fn new(status: u16, reason: &str) -> Self {
        Self {
            status,
            reason: reason.chars().take(Self::MAX_REASON).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn estab_refuses_path_characters() {
        assert!(Estab::parse("9992001").is_ok());
        assert!(Estab::parse("../etc").is_err());
        assert!(Estab::parse("").is_err());
    }

    #[test]
    fn consent_ends_at_its_end_date() {
        let at = Timestamp::from_millis(1_000);
        let consent = Consent {
            estab: Estab::parse("1").unwrap(),
            partner: PartnerId::parse("p").unwrap(),
            scopes: ScopeSet::new(),
            version: 1,
            granted_at: at,
            updated_at: at,
            end_date: Some(Timestamp::from_millis(2_000)),
            secret_hash: KeyHash::of(b"x"),
            secret_sealed: vec![],
            secret_generation: 1,
        };
        assert!(consent.in_force(Timestamp::from_millis(1_999)));
        assert!(!consent.in_force(Timestamp::from_millis(2_000)));
    }
}
