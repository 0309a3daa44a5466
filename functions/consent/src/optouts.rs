//! The school's per-person opt-outs for one partner (XoD's GDPR data controls): pupils, staff
//! and contacts whose data that partner no longer receives. The partner reads its list at
//! `GET /api/v1/GDPRIDs`, to delete what it already holds.

use std::collections::BTreeSet;

use axum::Json;
use axum::extract::State;
use rollcall_core::catalogue::PersonKind;
use rollcall_core::dataset::unmatchable_id;
use rollcall_core::model::{Estab, PartnerId};
use rollcall_core::optout::{OptOutRecord, OptOuts};
use rollcall_core::ports::StoreError;
use rollcall_http::credentials::AdminSchool;
use rollcall_http::request::{BodyShape, JsonBody};
use rollcall_http::{ApiError, ApiResult};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::ConsentState;
use crate::admin::KnownPartner;
use crate::subjects::held_ids;

/// The most people of one kind a school may opt out for one partner.
const MAX_PEOPLE: usize = 10_000;
const SHAPE: &str = r#"{"studentIds": [...], "staffIds": [...], "contactIds": [...]}"#;

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct OptOutBody {
    #[serde(default)]
    pub student_ids: Vec<Value>,
    #[serde(default)]
    pub staff_ids: Vec<Value>,
    #[serde(default)]
    pub contact_ids: Vec<Value>,
}

impl BodyShape for OptOutBody {
    const SHAPE: &'static str = SHAPE;
    const ADVICE: &'static str = concat!(
        "send only ",
        r#"{"studentIds": [...], "staffIds": [...], "contactIds": [...]}"#
    );
}

pub(crate) fn ids(name: &str, values: Vec<Value>) -> ApiResult<BTreeSet<String>> {
    if values.len() > MAX_PEOPLE {
        return Err(ApiError::Unprocessable(format!(
            "{name} lists {} people; at most {MAX_PEOPLE} may be opted out for one partner",
            values.len()
        )));
    }
    values
        .into_iter()
        .map(|value| match value {
            value if unmatchable_id(&value).is_some() => Err(ApiError::Unprocessable(format!(
                "{name} holds {value}, a number with a fraction or hidden or full-width \
                 characters; give the MIS ids as they are, e.g. \"61001\", not \"61001.0\""
            ))),
            Value::String(s) if !s.trim().is_empty() && s.len() <= 64 => Ok(s.trim().to_owned()),
            Value::Number(n) => Ok(n.to_string()),
            other => Err(ApiError::Unprocessable(format!(
                "{name} holds {other}, which is not an id; give the MIS ids as strings"
            ))),
        })
        .collect()
}

fn answer(record: &OptOutRecord) -> Json<Value> {
    Json(json!({
        "partner": record.partner,
        "studentIds": record.people.students,
        "staffIds": record.people.staff,
        "contactIds": record.people.contacts,
        "updatedAt": record.updated_at.to_rfc3339(),
    }))
}

/// A warning per id of `people` that is not among those the school has uploaded of its kind
/// (a typing slip, or someone not uploaded yet, who is opted out once they are).
async fn not_found(
    state: &ConsentState,
    estab: &Estab,
    people: &OptOuts,
) -> ApiResult<Vec<String>> {
    let mut warnings = Vec::new();
    for (name, kind) in [
        ("studentIds", PersonKind::Student),
        ("staffIds", PersonKind::Staff),
        ("contactIds", PersonKind::Contact),
    ] {
        let ids = people.of(kind);
        if ids.is_empty() {
            continue;
        }
        let Some(held) = held_ids(state, estab, kind).await? else {
            continue;
        };
        let missing: Vec<&str> = (ids.iter())
            .filter(|id| !held.contains(*id))
            .map(String::as_str)
            .collect();
        if !missing.is_empty() {
            warnings.push(format!(
                "{name}: {} matched no {} school {estab} has uploaded; they are opted out as \
                 given, so check the ids against the MIS (someone not uploaded yet is opted out \
                 once they are)",
                missing.join(", "),
                kind.name()
            ));
        }
    }
    Ok(warnings)
}

/// `PUT /admin/v1/opt-outs/{partner}`: replaces the partner's opt-out lists.
pub(crate) async fn put(
    State(state): State<ConsentState>,
    AdminSchool(school): AdminSchool,
    KnownPartner(partner): KnownPartner,
    JsonBody(request): JsonBody<OptOutBody>,
) -> ApiResult<Json<Value>> {
    let people = OptOuts {
        students: ids("studentIds", request.student_ids)?,
        staff: ids("staffIds", request.staff_ids)?,
        contacts: ids("contactIds", request.contact_ids)?,
    };
    // Read first, so that a failure to read changes nothing.
    let warnings = not_found(&state, &school.estab, &people).await?;
    let record = update(&state, &school.estab, &partner.id, |current| {
        *current = people.clone();
    })
    .await?;
    let Json(mut body) = answer(&record);
    body["warnings"] = json!(warnings);
    Ok(Json(body))
}

/// How often a change is made again when another landed first (each after a short, random
/// pause that grows, so changes made at the same moment fall apart).
const TRIES: u64 = 30;

/// Applies `change` to the partner's opt-outs as stored now, and writes the result over the
/// version it was made from: when another change landed first, it is made again on that one,
/// so two changes at once never lose one another.
pub(crate) async fn update(
    state: &ConsentState,
    estab: &Estab,
    partner: &PartnerId,
    change: impl Fn(&mut OptOuts),
) -> ApiResult<OptOutRecord> {
    for attempt in 0..TRIES {
        if attempt > 0 {
            let [jitter] = rollcall_core::secret::random_bytes::<1>();
            let pause = u64::from(jitter) % (2 * attempt + 1);
            tokio::time::sleep(std::time::Duration::from_millis(pause)).await;
        }
        let current = state.opt_outs.opt_outs(estab, partner).await?;
        let expected = current.as_ref().map(|r| r.version);
        let mut people = current.map(|r| r.people).unwrap_or_default();
        change(&mut people);
        let record = OptOutRecord {
            estab: estab.clone(),
            partner: partner.clone(),
            people,
            updated_at: state.clock.now(),
            version: expected.unwrap_or(0) + 1,
        };
        match state.opt_outs.put_opt_outs(&record, expected).await {
            Ok(()) => {
                tracing::info!(
                    %partner,
                    students = record.people.students.len(),
                    staff = record.people.staff.len(),
                    contacts = record.people.contacts.len(),
                    "opt-outs changed"
                );
                return Ok(record);
            }
            Err(StoreError::Conflict(_)) => continue,
            Err(other) => return Err(other.into()),
        }
    }
    Err(ApiError::Conflict(
        "the opt-outs were changing while this change was made; nothing was changed, try again"
            .to_owned(),
    ))
}

/// `GET /admin/v1/opt-outs/{partner}`.
pub(crate) async fn get(
    State(state): State<ConsentState>,
    AdminSchool(school): AdminSchool,
    KnownPartner(partner): KnownPartner,
) -> ApiResult<Json<Value>> {
    let record = state
        .opt_outs
        .opt_outs(&school.estab, &partner.id)
        .await?
        .unwrap_or(OptOutRecord {
            estab: school.estab,
            partner: partner.id,
            people: OptOuts::default(),
            updated_at: rollcall_core::timestamp::Timestamp::from_millis(0),
            version: 0,
        });
    Ok(answer(&record))
}
