//! Write-backs to the MIS, queued as tasks for the school's agent. A partner's write is
//! validated, sealed under the key service (it holds pupils' marks and notes) and queued; the
//! agent takes the open tasks of its school, applies them to the MIS and reports each outcome,
//! which the partner reads with the task's tracking id.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::envelope::{self, KeyContext};
use crate::model::{Estab, PartnerId};
use crate::ports::{DataKeyGenerator, DataKeyUnwrapper, KeyError};
use crate::secret::random_hex;
use crate::timestamp::{Duration, Timestamp};

/// How long a task's record (and its sealed payload) is kept after it was queued.
pub const TASK_LIFETIME: Duration = Duration::days(30);
/// The key-service context of a school's write-back payloads.
pub const TASK_KEY_CONTEXT: &str = "Writebacks";

/// The kind of the school's own task asking its agent to send result sets again
/// (`POST /admin/v1/refresh`); its payload is `{"resultSets": [...]}`, empty for all.
pub const REFRESH: &str = "Refresh";

/// One task for the school's agent: a partner's write-back on its way to the MIS, or the
/// school's own request (a refresh).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Task {
    pub estab: Estab,
    /// The tracking id: `{yyyyMMddHHmmss}.{32 hex}`, so ids sort by the time they were queued.
    pub id: String,
    /// The partner whose write-back it is; `None` for the school's own task, which no
    /// partner can see and no consent bounds.
    pub partner: Option<PartnerId>,
    /// The catalogue id of the write-back (`Writeback.Attendance`, ...).
    pub kind: String,
    /// The scopes the consent in force must still grant when the agent takes the task.
    pub scopes: String,
    /// The validated request, sealed (see [`payload_aad`]).
    pub payload: Vec<u8>,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    pub state: TaskState,
}

/// Where a task is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "camelCase")]
pub enum TaskState {
    /// Accepted, not yet taken by the agent.
    Queued,
    /// The agent took it at `at` and has not reported yet.
    Delivered { at: Timestamp },
    /// Applied to the MIS; `result` is what the agent reported (e.g. the MIS ids created).
    Succeeded { at: Timestamp, result: Value },
    /// Not applied: refused by the MIS, or never delivered (the consent ended first).
    Failed { at: Timestamp, message: String },
}

impl TaskState {
    /// The state's name, as the control stores keep it for conditions.
    pub fn name(&self) -> &'static str {
        match self {
            TaskState::Queued => QUEUED,
            TaskState::Delivered { .. } => DELIVERED,
            TaskState::Succeeded { .. } => "succeeded",
            TaskState::Failed { .. } => "failed",
        }
    }

    pub fn is_open(&self) -> bool {
        matches!(self, TaskState::Queued | TaskState::Delivered { .. })
    }
}

pub const QUEUED: &str = "queued";
pub const DELIVERED: &str = "delivered";
/// The states from which a task may still finish.
pub const OPEN: [&str; 2] = [QUEUED, DELIVERED];

impl Task {
    /// A new queued task with a fresh tracking id.
    pub fn new(
        estab: Estab,
        partner: Option<PartnerId>,
        kind: &str,
        scopes: &str,
        payload: Vec<u8>,
        now: Timestamp,
    ) -> Self {
        Self {
            id: tracking_id(now),
            estab,
            partner,
            kind: kind.to_owned(),
            scopes: scopes.to_owned(),
            payload,
            created_at: now,
            expires_at: now.plus(TASK_LIFETIME),
            state: TaskState::Queued,
        }
    }

    /// Seals `payload` as the task's, under a fresh data key of the school's task context.
    pub async fn seal(
        &mut self,
        generator: &dyn DataKeyGenerator,
        payload: &Value,
    ) -> Result<(), KeyError> {
        let key = generator.generate(&key_context(&self.estab)).await?;
        let plain = serde_json::to_vec(payload).expect("JSON values serialise");
        self.payload = envelope::seal(
            &key.plaintext,
            &key.wrapped,
            &payload_aad(&self.estab, &self.id),
            &plain,
        );
        Ok(())
    }
}

/// Why a task's payload did not open.
#[derive(Debug, thiserror::Error)]
pub enum PayloadError {
    #[error(transparent)]
    Key(#[from] KeyError),
    /// It does not open as this task's, or is not JSON: never expected of a stored task.
    #[error("task {0}'s payload does not open")]
    Corrupt(String),
}

impl Task {
    /// The task's payload, opened.
    pub async fn open_payload(
        &self,
        unwrapper: &dyn DataKeyUnwrapper,
    ) -> Result<Value, PayloadError> {
        let corrupt = || PayloadError::Corrupt(self.id.clone());
        let wrapped = envelope::wrapped_key(&self.payload).map_err(|_| corrupt())?;
        let key = unwrapper.unwrap(&key_context(&self.estab), wrapped).await?;
        let plain = envelope::open(&key, &payload_aad(&self.estab, &self.id), &self.payload)
            .map_err(|_| corrupt())?;
        serde_json::from_slice(&plain).map_err(|_| corrupt())
    }

    /// The result sets a school's refresh asks for; `None`: all of them.
    pub fn refresh_sets(payload: &Value) -> Option<std::collections::BTreeSet<String>> {
        let sets: std::collections::BTreeSet<String> = payload["resultSets"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| s.as_str().map(str::to_owned))
            .collect();
        (!sets.is_empty()).then_some(sets)
    }
}

fn tracking_id(now: Timestamp) -> String {
    let stamp: String = now
        .to_xod()
        .chars()
        .filter(char::is_ascii_digit)
        .take(14)
        .collect();
    format!("{stamp}.{}", random_hex::<16>())
}

/// Whether `id` has the form of a tracking id (so a malformed one is refused before a lookup).
pub fn is_tracking_id(id: &str) -> bool {
    match id.split_once('.') {
        Some((stamp, random)) => {
            stamp.len() == 14
                && stamp.bytes().all(|b| b.is_ascii_digit())
                && random.len() == 32
                && random.bytes().all(|b| b.is_ascii_hexdigit())
        }
        None => false,
    }
}

pub fn key_context(estab: &Estab) -> KeyContext {
    KeyContext::new(estab, TASK_KEY_CONTEXT)
}

/// The associated data of a task's sealed payload: it opens only as this task of this school.
pub fn payload_aad(estab: &Estab, id: &str) -> Vec<u8> {
    format!("rollcall-task|{estab}|{id}").into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tracking_ids_sort_by_time_and_are_recognised() {
        let first = tracking_id(Timestamp::from_millis(1_790_000_000_000));
        let later = tracking_id(Timestamp::from_millis(1_790_000_001_000));
        assert!(is_tracking_id(&first), "{first}");
        assert!(first < later);
        assert!(!is_tracking_id("20261123.abc"));
        assert!(!is_tracking_id("../../etc"));
    }

    #[test]
    fn only_queued_and_delivered_tasks_are_open() {
        let at = Timestamp::from_millis(0);
        assert!(TaskState::Queued.is_open());
        assert!(TaskState::Delivered { at }.is_open());
        let failed = TaskState::Failed {
            at,
            message: "refused".into(),
        };
        assert!(!failed.is_open());
        assert_eq!(failed.name(), "failed");
    }
}
