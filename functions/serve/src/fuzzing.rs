//! The partner API's parsers of outside bytes, opened to the fuzz targets (`fuzz/`): each entry
//! point calls the function the handlers call, and answers what a handler would answer.
//! Built only with the `fuzzing` feature.

use std::collections::BTreeSet;

use axum::response::IntoResponse;
use rollcall_core::catalogue::{Catalogue, WritebackBody};
use rollcall_core::changeset::ChangesetScope;
use rollcall_core::timestamp::Timestamp;
use rollcall_core::walk::WalkPin;
use rollcall_http::ApiError;
use serde_json::Value;

use crate::query::ChangedRows;
use crate::read::{find_endpoint, parse_query};
use crate::writeback::{read_body_object, validate_body};

use crate::writeback::Known;

/// The endpoint named `name` read with `query` (and the path's `id`), as a read parses it:
/// the endpoint, the query's options, paging, filters, changeset hash and page pin, each
/// verified under `key`. `Err` is the status a partner would be answered.
pub fn read_query(
    name: &str,
    id: Option<&str>,
    query: Option<&str>,
    key: &[u8],
    now: Timestamp,
) -> Result<(), u16> {
    let endpoint = find_endpoint(Catalogue::get(), name, id.is_some()).map_err(status_of)?;
    let (query, filters) = parse_query(endpoint, query, id, now).map_err(status_of)?;
    let binding = ChangesetScope {
        partner: "fuzz-partner".into(),
        estab: "9990001".into(),
        endpoint: endpoint.path.clone(),
        parameters: query.binding(&filters),
    };
    if let Some(ChangedRows::Since(hash)) = &query.changed_rows {
        let _ = binding.verify(key, hash);
    }
    if let Some(pin) = &query.version {
        let _ = WalkPin::verify(key, &binding, pin, now);
    }
    let _ = query.carry(query.version.as_deref(), &filters);
    Ok(())
}

/// What a school has, as a write-back's check knows it: pupils, staff, attendance marks and
/// conduct types (the partner may write about), and whether a refusal may name them.
#[derive(Debug, Clone, Copy)]
pub struct SchoolHas<'a> {
    pub students: &'a [&'a str],
    pub staff: &'a [&'a str],
    pub marks: &'a [&'a str],
    pub conduct_types: Option<&'a [&'a str]>,
    pub named: bool,
}

impl SchoolHas<'_> {
    fn known(&self) -> Known {
        let set = |items: &[&str]| {
            items
                .iter()
                .map(|s| (*s).to_owned())
                .collect::<BTreeSet<_>>()
        };
        Known {
            students: set(self.students),
            staff: set(self.staff),
            marks: set(self.marks),
            conduct_types: self.conduct_types.map(set),
            name_students: self.named,
            name_staff: self.named,
            name_marks: self.named,
            name_conduct_types: self.named,
        }
    }
}

/// A write-back body of `kind` checked as `POST` checks it, against what the school `has`:
/// the payload queued for the agent, or the status the partner would be answered.
pub fn writeback(
    kind: WritebackBody,
    body: &[u8],
    has: &SchoolHas<'_>,
    estab: &str,
) -> Result<Value, u16> {
    let object = read_body_object(body).map_err(status_of)?;
    validate_body(kind, &object, &has.known(), estab)
        .map(|checked| checked.payload)
        .map_err(status_of)
}

fn status_of(error: ApiError) -> u16 {
    error.into_response().status().as_u16()
}
