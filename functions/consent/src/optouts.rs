//! The school's per-person opt-outs for one partner (XoD's GDPR data controls): pupils, staff
//! and contacts whose data that partner no longer receives. The partner reads its list at
//! `GET /api/v1/GDPRIDs`, to delete what it already holds.

use std::collections::BTreeSet;

use axum::Json;
use axum::extract::State;
use rollcall_core::optout::{OptOutRecord, OptOuts};
use rollcall_http::credentials::AdminSchool;
use rollcall_http::request::{BodyShape, JsonBody};
use rollcall_http::{ApiError, ApiResult};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::ConsentState;
use crate::admin::KnownPartner;

/// The most people of one kind a school may opt out for one partner.
const MAX_PEOPLE: usize = 10_000;
const SHAPE: &str = r#"{"studentIds": [...], "staffIds": [...], "contactIds": [...]}"#;

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct OptOutBody {
    #[serde(default)]
    student_ids: Vec<Value>,
    #[serde(default)]
    staff_ids: Vec<Value>,
    #[serde(default)]
    contact_ids: Vec<Value>,
}

impl BodyShape for OptOutBody {
    const SHAPE: &'static str = SHAPE;
    const ADVICE: &'static str = concat!(
        "send only ",
        r#"{"studentIds": [...], "staffIds": [...], "contactIds": [...]}"#
    );
}

fn ids(name: &str, values: Vec<Value>) -> ApiResult<BTreeSet<String>> {
    if values.len() > MAX_PEOPLE {
        return Err(ApiError::Unprocessable(format!(
            "{name} lists {} people; at most {MAX_PEOPLE} may be opted out for one partner",
            values.len()
        )));
    }
    values
        .into_iter()
        .map(|value| match value {
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

/// `PUT /admin/v1/opt-outs/{partner}`: replaces the partner's opt-out lists.
pub(crate) async fn put(
    State(state): State<ConsentState>,
    AdminSchool(school): AdminSchool,
    KnownPartner(partner): KnownPartner,
    JsonBody(request): JsonBody<OptOutBody>,
) -> ApiResult<Json<Value>> {
    let record = OptOutRecord {
        estab: school.estab.clone(),
        partner: partner.id.clone(),
        people: OptOuts {
            students: ids("studentIds", request.student_ids)?,
            staff: ids("staffIds", request.staff_ids)?,
            contacts: ids("contactIds", request.contact_ids)?,
        },
        updated_at: state.clock.now(),
    };
    state.opt_outs.put_opt_outs(&record).await?;
    tracing::info!(
        partner = %partner.id,
        students = record.people.students.len(),
        staff = record.people.staff.len(),
        contacts = record.people.contacts.len(),
        "opt-outs replaced"
    );
    Ok(answer(&record))
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
        });
    Ok(answer(&record))
}
