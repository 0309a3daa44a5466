//! Idempotency keys on the agent's uploads. An agent that lost an answer (a timeout, a dropped
//! connection) sends the same upload again with the same `Idempotency-Key`; rollcall answers
//! what it answered the first time instead of running the upload twice.
//!
//! Per school and key, rollcall keeps for [`IDEMPOTENCY_LIFETIME`] a keyed hash of the request
//! body and, once the request succeeded, its status and JSON answer ([`StoredAnswer`]). The key
//! is *claimed* before the request runs (a conditional insert in the control store), so of two
//! concurrent requests with one key only one runs; a request that fails releases its claim so
//! that a retry can run. A claim whose request died (the function timed out) is taken over
//! after [`IDEMPOTENCY_CLAIM_TIMEOUT`].
//!
//! The stored answer is the upload's answer as sent: result-set names, versions and counts,
//! ignored field names and warnings, or a staged upload's id and URL; never a row.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::model::Estab;
use crate::secret::{keyed_hash_bytes, random_hex};
use crate::timestamp::{Duration, Timestamp};

/// How long a key is remembered after its first use.
pub const IDEMPOTENCY_LIFETIME: Duration = Duration::hours(24);
/// A claim older than this is taken over by the next request with its key: its request can no
/// longer be running (ingest's Lambda timeout is 120 s; API Gateway gives up after 30 s).
pub const IDEMPOTENCY_CLAIM_TIMEOUT: Duration = Duration::minutes(5);
/// The largest answer kept for replay, well under DynamoDB's 400 KB item, and the same on
/// every adapter. A larger answer is not kept: the key is released, and a repeat runs again
/// (which stores nothing new: an upload of the same content only confirms it).
pub const MAX_STORED_ANSWER_BYTES: usize = 256 * 1024;
/// The longest key accepted.
pub const MAX_KEY_LEN: usize = 128;

/// Why a request with an `Idempotency-Key` was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum IdempotencyError {
    #[error(
        "the Idempotency-Key header must be 1 to {MAX_KEY_LEN} characters of letters, digits, \
         '_', '.', ':' or '-' (e.g. a UUID); send a new key of that form"
    )]
    BadKey,
    #[error(
        "this Idempotency-Key was used for a different extract; use a new key for a new extract"
    )]
    DifferentBody,
    #[error("an upload with this Idempotency-Key is in progress; retry later")]
    InProgress,
}

/// An `Idempotency-Key` header value of the accepted form.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    pub fn parse(value: &str) -> Result<Self, IdempotencyError> {
        let ok = (1..=MAX_KEY_LEN).contains(&value.len())
            && value
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '-'));
        if ok {
            Ok(Self(value.to_owned()))
        } else {
            Err(IdempotencyError::BadKey)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for IdempotencyKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The hash of a request body kept beside its key: HMAC-SHA256 under the school's own key
/// (separated from its row hashes by a label), so the stored hash of a small body cannot be
/// matched against guessed bodies by someone who reads the table.
pub fn request_hash(school_key: &[u8], body: &[u8]) -> String {
    let mut labelled = Vec::with_capacity(body.len() + 24);
    labelled.extend_from_slice(b"rollcall idempotency\0");
    labelled.extend_from_slice(body);
    hex::encode(keyed_hash_bytes(school_key, &labelled))
}

/// A successful answer, kept to be answered again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredAnswer {
    pub status: u16,
    pub body: Value,
}

impl StoredAnswer {
    /// The answer to keep, if it is small enough to keep.
    pub fn new(status: u16, body: Value) -> Option<Self> {
        let size = serde_json::to_vec(&body).map_or(usize::MAX, |b| b.len());
        (size <= MAX_STORED_ANSWER_BYTES).then_some(Self { status, body })
    }
}

/// Where a key's request is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "camelCase")]
pub enum IdempotencyState {
    /// A request holds the key: `claim` names it (only it may complete or release the key).
    InProgress { claim: String, since: Timestamp },
    /// The request succeeded with this answer.
    Completed { answer: StoredAnswer },
}

impl IdempotencyState {
    /// The state's name, as the control stores keep it for conditions.
    pub fn name(&self) -> &'static str {
        match self {
            IdempotencyState::InProgress { .. } => "in_progress",
            IdempotencyState::Completed { .. } => "completed",
        }
    }
}

/// What rollcall remembers of one key of one school.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyRecord {
    pub estab: Estab,
    pub key: IdempotencyKey,
    /// [`request_hash`] of the body the key was first used with.
    pub request_hash: String,
    pub created_at: Timestamp,
    /// The record is forgotten (and disposed of) at this time.
    pub expires_at: Timestamp,
    pub state: IdempotencyState,
}

impl IdempotencyRecord {
    /// A new claim of `key` by a request with a body of hash `request_hash`, made at `now`.
    pub fn claim(estab: Estab, key: IdempotencyKey, request_hash: String, now: Timestamp) -> Self {
        Self {
            estab,
            key,
            request_hash,
            created_at: now,
            expires_at: now.plus(IDEMPOTENCY_LIFETIME),
            state: IdempotencyState::InProgress {
                claim: random_hex::<12>(),
                since: now,
            },
        }
    }

    /// The claim id, while the record is in progress.
    pub fn claim_id(&self) -> Option<&str> {
        match &self.state {
            IdempotencyState::InProgress { claim, .. } => Some(claim),
            IdempotencyState::Completed { .. } => None,
        }
    }

    pub fn is_expired(&self, now: Timestamp) -> bool {
        now >= self.expires_at
    }

    /// What a request with this key and a body of hash `request_hash` gets when the key is
    /// already held: the first answer again, or why not.
    pub fn replay(&self, request_hash: &str) -> Result<&StoredAnswer, IdempotencyError> {
        if self.request_hash != request_hash {
            return Err(IdempotencyError::DifferentBody);
        }
        match &self.state {
            IdempotencyState::Completed { answer } => Ok(answer),
            IdempotencyState::InProgress { .. } => Err(IdempotencyError::InProgress),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keys_are_short_plain_tokens() {
        for good in [
            "a",
            "0b9e1c1e-6f7a-4b8e-9d0e-2f4a1c3b5d7e",
            "upload:2026-09-01.1_x",
        ] {
            assert!(IdempotencyKey::parse(good).is_ok(), "{good}");
        }
        let long = "k".repeat(MAX_KEY_LEN + 1);
        for bad in ["", "has space", "slash/y", "é", "a#b", long.as_str()] {
            assert_eq!(
                IdempotencyKey::parse(bad),
                Err(IdempotencyError::BadKey),
                "{bad}"
            );
        }
        assert!(IdempotencyKey::parse(&"k".repeat(MAX_KEY_LEN)).is_ok());
    }

    #[test]
    fn the_request_hash_depends_on_the_body_and_the_school_key() {
        let a = request_hash(b"school-a", b"{}");
        assert_eq!(a, request_hash(b"school-a", b"{}"));
        assert_ne!(a, request_hash(b"school-b", b"{}"));
        assert_ne!(a, request_hash(b"school-a", b"{ }"));
        assert_eq!(a.len(), 64);
    }

    #[test]
    fn a_repeat_gets_the_answer_only_with_the_same_body_once_completed() {
        let now = Timestamp::from_millis(1_000);
        let key = IdempotencyKey::parse("k1").unwrap();
        let mut record =
            IdempotencyRecord::claim(Estab::parse("1").unwrap(), key, "h1".into(), now);
        assert!(record.claim_id().is_some());
        assert_eq!(record.replay("h1"), Err(IdempotencyError::InProgress));
        assert_eq!(record.replay("h2"), Err(IdempotencyError::DifferentBody));
        let answer = StoredAnswer::new(200, json!({"resultSets": {}})).unwrap();
        record.state = IdempotencyState::Completed {
            answer: answer.clone(),
        };
        assert_eq!(record.replay("h1"), Ok(&answer));
        assert_eq!(record.replay("h2"), Err(IdempotencyError::DifferentBody));
        assert!(!record.is_expired(now.plus(Duration::hours(23))));
        assert!(record.is_expired(now.plus(IDEMPOTENCY_LIFETIME)));
    }

    #[test]
    fn an_answer_over_the_limit_is_not_kept() {
        let big = "x".repeat(MAX_STORED_ANSWER_BYTES);
        assert!(StoredAnswer::new(200, json!({ "warnings": [big] })).is_none());
        assert!(StoredAnswer::new(200, json!({ "warnings": ["small"] })).is_some());
    }
}
