//! The school agent's health: the report it posts after each run (`POST /agent/v1/health`),
//! kept per school (the latest replaces the one before, stamped with the time rollcall received
//! it), and what the school's admin reads about its agent (`GET /admin/v1/agent`): that report,
//! whether the agent has gone silent, and when each result set was last uploaded.
//!
//! A report says how the agent runs, not what it sent: versions, folders, times, counts and
//! the last error's text (capped at [`MAX_LAST_ERROR_CHARS`]). Every field has a bound, and a
//! key rollcall does not know is refused by name, so a report cannot grow into a store of
//! anything else.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::model::{Estab, VersionRecord};
use crate::timestamp::{Duration, Timestamp};

/// An agent with no report for this long is silent.
pub const SILENCE_AFTER: Duration = Duration::hours(48);
/// The largest report body.
pub const MAX_REPORT_BYTES: usize = 64 * 1024;
/// `lastError` is cut to this many characters.
pub const MAX_LAST_ERROR_CHARS: usize = 500;
/// The most result sets one report lists.
pub const MAX_REPORTED_SETS: usize = 256;

const SHAPE: &str = "{\"agentVersion\", \"os\", \"sourceFolder\", \"lastRunStart\", \"lastRunEnd\", \
     \"lastSuccess\", \"lastError\", \"resultSets\": [{\"name\", \"rows\", \"sentAt\"}], \
     \"outbox\": {\"pending\", \"results\", \"done\"}}";
const REPORT_KEYS: [&str; 9] = [
    "agentVersion",
    "os",
    "sourceFolder",
    "lastRunStart",
    "lastRunEnd",
    "lastSuccess",
    "lastError",
    "resultSets",
    "outbox",
];
const SET_KEYS: [&str; 3] = ["name", "rows", "sentAt"];
const OUTBOX_KEYS: [&str; 3] = ["pending", "results", "done"];

/// Why a health report was refused; each says which field and what to send. Values are never
/// quoted (a folder or an error text may name a person).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum HealthReportError {
    #[error("the body is not valid JSON ({0}); send {SHAPE}")]
    NotJson(String),
    #[error("{0}; send {SHAPE}")]
    Invalid(String),
}

/// One result set the agent last sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReportedSet {
    pub name: String,
    pub rows: u64,
    pub sent_at: Option<Timestamp>,
}

/// The agent's queue of write-backs: waiting, applied with a result to report, reported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outbox {
    pub pending: u64,
    pub results: u64,
    pub done: u64,
}

/// A report as the agent sent it, checked and bounded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HealthReport {
    pub agent_version: String,
    pub os: String,
    pub source_folder: String,
    pub last_run_start: Option<Timestamp>,
    pub last_run_end: Option<Timestamp>,
    pub last_success: Option<Timestamp>,
    /// At most [`MAX_LAST_ERROR_CHARS`] characters.
    pub last_error: Option<String>,
    pub result_sets: Vec<ReportedSet>,
    pub outbox: Outbox,
}

/// A school's latest report and when rollcall received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthRecord {
    pub estab: Estab,
    pub received_at: Timestamp,
    pub report: HealthReport,
}

fn invalid(message: impl Into<String>) -> HealthReportError {
    HealthReportError::Invalid(message.into())
}

/// Names shown in a message: cut, so a long key is not echoed whole.
fn shown(name: &str) -> String {
    name.chars().take(40).collect()
}

/// Refuses keys of `object` that are not in `known`, naming them (at most ten).
fn only_keys(
    object: &Map<String, Value>,
    known: &[&str],
    at: &str,
) -> Result<(), HealthReportError> {
    let unknown: BTreeSet<String> = object
        .keys()
        .filter(|k| !known.contains(&k.as_str()))
        .map(|k| format!("`{}`", shown(k)))
        .collect();
    if unknown.is_empty() {
        return Ok(());
    }
    let count = unknown.len();
    let mut names: Vec<String> = unknown.into_iter().take(10).collect();
    if count > names.len() {
        names.push(format!("and {} more", count - names.len()));
    }
    Err(invalid(format!(
        "{at} has unknown keys {}; send only {}",
        names.join(", "),
        known.join(", ")
    )))
}

fn text(object: &Map<String, Value>, key: &str, max: usize) -> Result<String, HealthReportError> {
    match object.get(key) {
        Some(Value::String(s)) if !s.is_empty() && s.chars().count() <= max => Ok(s.clone()),
        Some(Value::String(s)) if !s.is_empty() => {
            Err(invalid(format!("`{key}` is longer than {max} characters")))
        }
        None => Err(invalid(format!("`{key}` is missing"))),
        Some(_) => Err(invalid(format!(
            "`{key}` must be a non-empty string of at most {max} characters"
        ))),
    }
}

fn time(
    object: &Map<String, Value>,
    key: &str,
    at: &str,
) -> Result<Option<Timestamp>, HealthReportError> {
    match object.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Timestamp::parse(s).map(Some).map_err(|_| {
            invalid(format!(
                "`{at}{key}` must be an ISO 8601 date-time (e.g. 2026-09-01T08:30:00Z) or null"
            ))
        }),
        Some(_) => Err(invalid(format!(
            "`{at}{key}` must be an ISO 8601 date-time (e.g. 2026-09-01T08:30:00Z) or null"
        ))),
    }
}

fn count(object: &Map<String, Value>, key: &str, at: &str) -> Result<u64, HealthReportError> {
    match object.get(key) {
        Some(value) => value
            .as_u64()
            .ok_or_else(|| invalid(format!("`{at}{key}` must be a whole number, 0 or more"))),
        None => Err(invalid(format!("`{at}{key}` is missing"))),
    }
}

/// Reads and checks an agent's health report: every key known, every field of its type and
/// within its bound; `lastError` is cut to [`MAX_LAST_ERROR_CHARS`] characters. The times may
/// be null (an agent that never ran), as may `lastError`.
pub fn parse_health_report(body: &[u8]) -> Result<HealthReport, HealthReportError> {
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        HealthReportError::NotJson(format!("line {}, column {}", e.line(), e.column()))
    })?;
    let Value::Object(top) = value else {
        return Err(invalid("the health report must be a JSON object"));
    };
    only_keys(&top, &REPORT_KEYS, "the health report")?;
    let last_error = match top.get("lastError") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.chars().take(MAX_LAST_ERROR_CHARS).collect()),
        Some(_) => return Err(invalid("`lastError` must be a string or null")),
    };
    let Some(Value::Array(sets)) = top.get("resultSets") else {
        return Err(invalid(
            "`resultSets` must be an array of {\"name\", \"rows\", \"sentAt\"} (empty if none was sent)",
        ));
    };
    if sets.len() > MAX_REPORTED_SETS {
        return Err(invalid(format!(
            "`resultSets` lists {} result sets; list at most {MAX_REPORTED_SETS}",
            sets.len()
        )));
    }
    let result_sets = sets
        .iter()
        .enumerate()
        .map(|(i, set)| {
            let at = format!("resultSets[{i}].");
            let Value::Object(set) = set else {
                return Err(invalid(format!(
                    "`resultSets[{i}]` must be an object {{\"name\", \"rows\", \"sentAt\"}}"
                )));
            };
            only_keys(set, &SET_KEYS, &format!("`resultSets[{i}]`"))?;
            Ok(ReportedSet {
                name: text(set, "name", 64).map_err(|e| prefixed(e, &at))?,
                rows: count(set, "rows", &at)?,
                sent_at: time(set, "sentAt", &at)?,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let Some(Value::Object(outbox)) = top.get("outbox") else {
        return Err(invalid(
            "`outbox` must be an object {\"pending\", \"results\", \"done\"} of counts",
        ));
    };
    only_keys(outbox, &OUTBOX_KEYS, "`outbox`")?;
    Ok(HealthReport {
        agent_version: text(&top, "agentVersion", 64)?,
        os: text(&top, "os", 128)?,
        source_folder: text(&top, "sourceFolder", 1024)?,
        last_run_start: time(&top, "lastRunStart", "")?,
        last_run_end: time(&top, "lastRunEnd", "")?,
        last_success: time(&top, "lastSuccess", "")?,
        last_error,
        result_sets,
        outbox: Outbox {
            pending: count(outbox, "pending", "outbox.")?,
            results: count(outbox, "results", "outbox.")?,
            done: count(outbox, "done", "outbox.")?,
        },
    })
}

/// A nested field's message names its path (`resultSets[2].name`).
fn prefixed(error: HealthReportError, at: &str) -> HealthReportError {
    match error {
        HealthReportError::Invalid(message) => {
            HealthReportError::Invalid(message.replacen('`', &format!("`{at}"), 1))
        }
        other => other,
    }
}

fn rfc3339(time: Option<Timestamp>) -> Value {
    time.map_or(Value::Null, |t| Value::String(t.to_rfc3339()))
}

impl HealthReport {
    /// The report as the admin reads it, in the shape the agent sent it (times in RFC 3339).
    pub fn to_json(&self) -> Value {
        json!({
            "agentVersion": self.agent_version,
            "os": self.os,
            "sourceFolder": self.source_folder,
            "lastRunStart": rfc3339(self.last_run_start),
            "lastRunEnd": rfc3339(self.last_run_end),
            "lastSuccess": rfc3339(self.last_success),
            "lastError": self.last_error,
            "resultSets": self.result_sets.iter().map(|s| json!({
                "name": s.name,
                "rows": s.rows,
                "sentAt": rfc3339(s.sent_at),
            })).collect::<Vec<_>>(),
            "outbox": {
                "pending": self.outbox.pending,
                "results": self.outbox.results,
                "done": self.outbox.done,
            },
        })
    }
}

/// Whether an agent last heard from at `last_seen` (`None`: never) is silent at `now`.
pub fn is_silent(last_seen: Option<Timestamp>, now: Timestamp) -> bool {
    last_seen.is_none_or(|seen| now.since(seen) >= SILENCE_AFTER)
}

/// What a school's admin reads about its agent at `now`: the latest report, when it came and
/// whether the agent is silent, and when each result set was last uploaded (from `current`,
/// the school's current versions), by name.
pub fn admin_view(
    record: Option<&HealthRecord>,
    current: &[VersionRecord],
    now: Timestamp,
) -> Value {
    let last_seen = record.map(|r| r.received_at);
    json!({
        "report": record.map(|r| r.report.to_json()),
        "lastSeen": rfc3339(last_seen),
        "secondsSinceSeen": last_seen.map(|seen| now.since(seen).as_seconds()),
        "silent": is_silent(last_seen, now),
        "resultSets": held_view(current, now),
    })
}

/// What rollcall holds of a school at `now`, by result set name: each current version, its
/// row count, when an upload last confirmed it, until when it is current, whether it is
/// stale and when it will be disposed of. No row is read.
pub fn held_view(current: &[VersionRecord], now: Timestamp) -> Value {
    let mut held: Vec<&VersionRecord> = current.iter().collect();
    held.sort_by(|a, b| a.result_set.cmp(&b.result_set));
    held.iter()
        .map(|v| {
            json!({
                "name": v.result_set,
                "version": v.version,
                "rows": v.rows,
                "uploadedAt": v.confirmed_at.to_rfc3339(),
                "validUntil": v.valid_until.to_rfc3339(),
                "stale": v.is_stale(now),
                "disposalAt": v.disposal_at().to_rfc3339(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report() -> Value {
        json!({
            "agentVersion": "1.4.0",
            "os": "Windows Server 2022",
            "sourceFolder": "D:\\MIS\\exports",
            "lastRunStart": "2026-09-01T06:00:00Z",
            "lastRunEnd": "2026-09-01T06:02:10Z",
            "lastSuccess": "2026-09-01T06:02:10Z",
            "lastError": null,
            "resultSets": [{"name": "Students", "rows": 1200, "sentAt": "2026-09-01T06:01:00Z"}],
            "outbox": {"pending": 0, "results": 1, "done": 14},
        })
    }

    fn parse(value: &Value) -> Result<HealthReport, HealthReportError> {
        parse_health_report(value.to_string().as_bytes())
    }

    #[test]
    fn a_well_formed_report_round_trips_to_the_admin() {
        let parsed = parse(&report()).unwrap();
        assert_eq!(parsed.result_sets[0].rows, 1200);
        assert_eq!(parsed.to_json(), report());
    }

    #[test]
    fn unknown_keys_are_refused_by_name_at_every_level() {
        let mut top = report();
        top["pupils"] = json!([]);
        top["extra"] = json!(1);
        let message = parse(&top).unwrap_err().to_string();
        assert!(
            message.contains("unknown keys `extra`, `pupils`"),
            "{message}"
        );
        let mut nested = report();
        nested["resultSets"][0]["forename"] = json!("x");
        let message = parse(&nested).unwrap_err().to_string();
        assert!(
            message.contains("`resultSets[0]` has unknown keys `forename`"),
            "{message}"
        );
        let mut outbox = report();
        outbox["outbox"]["failed"] = json!(2);
        assert!(
            parse(&outbox)
                .unwrap_err()
                .to_string()
                .contains("`outbox` has unknown keys `failed`")
        );
    }

    #[test]
    fn fields_are_checked_for_type_and_size_and_named() {
        let cases = [
            ("agentVersion", json!(""), "`agentVersion`"),
            ("os", json!("x".repeat(129)), "`os` is longer than 128"),
            (
                "lastRunStart",
                json!("yesterday"),
                "`lastRunStart` must be an ISO 8601",
            ),
            (
                "outbox",
                json!({"pending": -1, "results": 0, "done": 0}),
                "`outbox.pending` must be a whole number",
            ),
            (
                "resultSets",
                json!([{"name": "", "rows": 1, "sentAt": null}]),
                "`resultSets[0].name`",
            ),
            ("resultSets", json!({}), "`resultSets` must be an array"),
        ];
        for (key, value, expected) in cases {
            let mut body = report();
            body[key] = value;
            let message = parse(&body).unwrap_err().to_string();
            assert!(message.contains(expected), "{key}: {message}");
        }
        let mut missing = report();
        missing.as_object_mut().unwrap().remove("os");
        assert!(
            parse(&missing)
                .unwrap_err()
                .to_string()
                .contains("`os` is missing")
        );
        let many: Vec<Value> = (0..=MAX_REPORTED_SETS)
            .map(|i| json!({"name": format!("S{i}"), "rows": 1, "sentAt": null}))
            .collect();
        let mut body = report();
        body["resultSets"] = Value::Array(many);
        assert!(
            parse(&body)
                .unwrap_err()
                .to_string()
                .contains("list at most 256")
        );
        assert!(matches!(
            parse_health_report(b"{not json"),
            Err(HealthReportError::NotJson(_))
        ));
    }

    #[test]
    fn the_last_error_is_capped_and_the_times_may_be_null() {
        let mut body = report();
        body["lastError"] = json!("é".repeat(MAX_LAST_ERROR_CHARS + 20));
        body["lastSuccess"] = Value::Null;
        body.as_object_mut().unwrap().remove("lastRunEnd");
        let parsed = parse(&body).unwrap();
        assert_eq!(
            parsed.last_error.unwrap().chars().count(),
            MAX_LAST_ERROR_CHARS
        );
        assert_eq!(parsed.last_success, None);
        assert_eq!(parsed.last_run_end, None);
    }

    #[test]
    fn an_agent_is_silent_after_48_hours_or_if_never_heard_from() {
        let seen = Timestamp::from_millis(1_000_000);
        assert!(is_silent(None, seen));
        assert!(!is_silent(Some(seen), seen.plus(Duration::hours(47))));
        assert!(is_silent(Some(seen), seen.plus(SILENCE_AFTER)));
    }
}
