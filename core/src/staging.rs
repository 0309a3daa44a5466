//! Large uploads: an agent whose extract is over the request limit asks for a short-lived,
//! pre-signed PUT of one object under `incoming/`, puts the extract there, and ingest takes it
//! from the object (on S3's `ObjectCreated` event, or the local stand-in's PUT). The staged
//! upload record tracks it from waiting to stored or refused, so the agent can poll the result.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::model::Estab;
use crate::timestamp::{Duration, Timestamp};

/// Where staged extracts are put; nothing else lives under it (the bucket expires it fast).
pub const STAGING_PREFIX: &str = "incoming/";
/// The only content type a staged extract may have.
pub const STAGED_CONTENT_TYPE: &str = "application/json";
/// The largest staged extract.
pub const MAX_STAGED_BYTES: u64 = 50 * 1024 * 1024;
/// How long the pre-signed PUT URL works.
pub const UPLOAD_URL_LIFETIME: Duration = Duration::minutes(15);
/// How long the record of a staged upload (and so its result) is kept.
pub const STAGED_RECORD_LIFETIME: Duration = Duration::days(7);
/// An ingest that claimed an upload and did not finish within this is taken over by the next
/// delivery of its event (the function timed out or crashed).
pub const CLAIM_TIMEOUT: Duration = Duration::minutes(15);

/// One large upload, from its pre-signed URL to its outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StagedUpload {
    pub estab: Estab,
    pub id: String,
    /// The exact size the PUT must have.
    pub content_length: u64,
    pub created_at: Timestamp,
    /// The pre-signed URL stops working at this time.
    pub url_expires_at: Timestamp,
    /// The record is disposed of at this time.
    pub expires_at: Timestamp,
    pub state: StagedState,
}

/// Where a staged upload is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "camelCase")]
pub enum StagedState {
    /// URL issued; the extract has not been taken yet.
    Waiting,
    /// An ingest claimed it at `since`.
    Ingesting { since: Timestamp },
    /// Ingested: the same answer a small upload gets.
    Stored { result: Value },
    /// Refused: what was wrong, for the agent.
    Refused { message: String },
}

impl StagedState {
    /// The state's name, as the control stores keep it for conditions.
    pub fn name(&self) -> &'static str {
        match self {
            StagedState::Waiting => "waiting",
            StagedState::Ingesting { .. } => "ingesting",
            StagedState::Stored { .. } => "stored",
            StagedState::Refused { .. } => "refused",
        }
    }

    pub fn is_finished(&self) -> bool {
        matches!(
            self,
            StagedState::Stored { .. } | StagedState::Refused { .. }
        )
    }
}

impl StagedUpload {
    /// A new record, waiting for its extract.
    pub fn new(estab: Estab, id: String, content_length: u64, now: Timestamp) -> Self {
        Self {
            estab,
            id,
            content_length,
            created_at: now,
            url_expires_at: now.plus(UPLOAD_URL_LIFETIME),
            expires_at: now.plus(STAGED_RECORD_LIFETIME),
            state: StagedState::Waiting,
        }
    }

    /// The object the extract is put to: `incoming/{estab}/{id}.json`.
    pub fn object_key(&self) -> String {
        format!("{STAGING_PREFIX}{}/{}.json", self.estab, self.id)
    }

    pub fn is_expired(&self, now: Timestamp) -> bool {
        now >= self.expires_at
    }
}

/// The school and upload id an object key under [`STAGING_PREFIX`] names, if it is one.
pub fn parse_object_key(key: &str) -> Option<(Estab, String)> {
    let rest = key.strip_prefix(STAGING_PREFIX)?;
    let (estab, file) = rest.split_once('/')?;
    let id = file.strip_suffix(".json")?;
    let id_ok = !id.is_empty() && id.len() <= 64 && id.chars().all(|c| c.is_ascii_hexdigit());
    let estab = Estab::parse(estab).ok()?;
    id_ok.then(|| (estab, id.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_keys_round_trip_and_nothing_else_parses() {
        let upload = StagedUpload::new(
            Estab::parse("9992001").unwrap(),
            "0a1b2c".into(),
            10,
            Timestamp::from_millis(0),
        );
        assert_eq!(upload.object_key(), "incoming/9992001/0a1b2c.json");
        assert_eq!(
            parse_object_key(&upload.object_key()),
            Some((upload.estab.clone(), upload.id.clone()))
        );
        for other in [
            "9992001/Students/0000000001-ab/_index",
            "incoming/9992001/0a1b2c",
            "incoming/../0a1b2c.json",
            "incoming/9992001/x/0a1b2c.json",
            "incoming/9992001/zz.json",
            "incoming/9992001/.json",
        ] {
            assert_eq!(parse_object_key(other), None, "{other}");
        }
    }

    #[test]
    fn a_new_upload_waits_with_a_short_url_and_a_week_of_record() {
        let now = Timestamp::from_millis(1_000_000);
        let upload = StagedUpload::new(Estab::parse("1").unwrap(), "ab".into(), 5, now);
        assert_eq!(upload.state, StagedState::Waiting);
        assert_eq!(upload.url_expires_at, now.plus(UPLOAD_URL_LIFETIME));
        assert!(!upload.is_expired(now.plus(Duration::days(6))));
        assert!(upload.is_expired(now.plus(Duration::days(7))));
    }
}
