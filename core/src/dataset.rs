//! Result-set data: reading an agent's upload, diffing it against the stored version, splitting
//! it into scope groups for storage. What of the rows a partner may see is the read plan's
//! ([`crate::plan`]).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::catalogue::{Catalogue, ID, ResultSet, Shape, is_computed_field};
use crate::model::DISPOSAL_AFTER;
use crate::secret::{HashKey, keyed_hash_bytes};
use crate::timestamp::Timestamp;

/// One row: field name → scalar value, in upload (or catalogue) order.
pub type Row = serde_json::Map<String, Value>;

/// An upload that passed validation: known result sets, rows with ids, scalar values, and
/// nothing the catalogue does not know.
#[derive(Debug, Default)]
pub struct Upload {
    pub result_sets: Vec<(String, Vec<Row>)>,
    /// Fields dropped because the catalogue does not know them, per result set.
    pub ignored: BTreeMap<String, BTreeSet<String>>,
    /// What the agent should change though the upload was taken (a result set sent under a
    /// former name).
    pub warnings: Vec<String>,
}

/// Why an upload was refused. Each says where the problem is and how to fix it, and never
/// quotes a value (it could be a pupil's personal data).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum UploadError {
    #[error(
        "the body is not valid JSON ({0}); send {{\"resultSets\": {{\"Students\": [rows], ...}}}}"
    )]
    NotJson(String),
    #[error(
        "the body must be a JSON object {{\"resultSets\": {{\"<ResultSet>\": [rows], ...}}}}{0}"
    )]
    BadShape(String),
    #[error("unknown result set `{name}`; rollcall accepts: {known}")]
    UnknownResultSet { name: String, known: String },
    #[error(
        "resultSets holds `{result_set}` twice, once as `{alias}` (its former name); send it \
         once, as `{result_set}`"
    )]
    TwiceNamed { result_set: String, alias: String },
    #[error("resultSets.{result_set} must be an array of row objects")]
    NotAnArray { result_set: String },
    #[error("{result_set}[{row}] is not a JSON object; each row is an object of field: value")]
    RowNotObject { result_set: String, row: usize },
    #[error("{result_set}[{row}] has no `Id`; every row needs its MIS id as a string")]
    MissingId { result_set: String, row: usize },
    #[error("{result_set}[{row}].Id must be a non-empty string or a number")]
    BadId { result_set: String, row: usize },
    #[error(
        "{result_set}[{row}].Id repeats the Id of {result_set}[{first}]; ids must be unique in a result set"
    )]
    DuplicateId {
        result_set: String,
        row: usize,
        first: usize,
    },
    #[error(
        "{result_set}[{row}].{field} is {value}, which would not match the person or row it \
         means: an id is a string or a whole number written plainly (write 61001, not 61001.0, \
         6.1E+04 or with hidden or full-width characters)"
    )]
    IdNotWhole {
        result_set: String,
        row: usize,
        field: String,
        value: String,
    },
    #[error(
        "{result_set}[{row}].{field} is {kind}; values must be a string, number, boolean or null"
    )]
    NotScalar {
        result_set: String,
        row: usize,
        field: String,
        kind: &'static str,
    },
}

/// Reads and validates an agent's upload against the catalogue.
pub fn parse_upload(catalogue: &Catalogue, body: &[u8]) -> Result<Upload, UploadError> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| UploadError::NotJson(json_error_position(&e)))?;
    let Value::Object(mut top) = value else {
        return Err(UploadError::BadShape(String::new()));
    };
    if let Some(extra) = top.keys().find(|k| *k != "resultSets") {
        return Err(UploadError::BadShape(format!(
            "; unknown key `{}`",
            truncate(extra)
        )));
    }
    let Some(Value::Object(sets)) = top.remove("resultSets") else {
        return Err(UploadError::BadShape(
            "; `resultSets` is missing or not an object".into(),
        ));
    };
    if sets.is_empty() {
        return Err(UploadError::BadShape(
            "; `resultSets` names no result set".into(),
        ));
    }
    let sent_names: BTreeSet<String> = sets.keys().cloned().collect();
    let mut upload = Upload::default();
    for (sent, rows) in sets {
        let Some((rs, renamed)) = catalogue.uploaded_set(&sent) else {
            let known: Vec<&str> = catalogue.stored_sets().map(|r| r.name.as_str()).collect();
            return Err(UploadError::UnknownResultSet {
                name: truncate(&sent),
                known: known.join(", "),
            });
        };
        let name = rs.name.clone();
        if renamed {
            if sent_names.contains(&name) {
                return Err(UploadError::TwiceNamed {
                    result_set: name,
                    alias: sent,
                });
            }
            upload.warnings.push(format!(
                "`{sent}` is the former name of `{name}`, XoD's name for it; it was stored as \
                 `{name}`; send `{name}`, as `{sent}` will be refused in a later release"
            ));
        }
        let Value::Array(rows) = rows else {
            return Err(UploadError::NotAnArray { result_set: name });
        };
        let references = reference_fields(catalogue, rs);
        let (rows, ignored) = validate_rows(rs, &references, rows)?;
        if !ignored.is_empty() {
            upload.ignored.insert(name.clone(), ignored);
        }
        upload.result_sets.push((name, rows));
    }
    Ok(upload)
}

/// The fields of `rs` that hold ids compared as text (by opt-outs, links and filters): its
/// `Id`, its link, the people it is about, those it mentions by id, and, in a person's own
/// record, the codes other rows mention them by. A number there must be written as the id
/// reads (`61001`): `61001.0` would not match the pupil it means.
fn reference_fields<'c>(catalogue: &'c Catalogue, rs: &'c ResultSet) -> BTreeSet<&'c str> {
    let people = &rs.people;
    let subjects = people.subjects.iter().map(|s| s.field.as_str());
    let mentions = (people.mentions.iter())
        .filter(|m| matches!(m.shape, Shape::One | Shape::List))
        .map(|m| m.field.as_str());
    let aliases = catalogue.stored_sets().flat_map(|other| {
        (other.people.mentions.iter())
            .filter(|m| m.kind.own_set() == rs.name)
            .filter_map(|m| m.alias.as_deref())
    });
    [ID].into_iter()
        .chain(rs.link.as_deref())
        .chain(subjects)
        .chain(mentions)
        .chain(aliases)
        .collect()
}

fn validate_rows(
    rs: &ResultSet,
    references: &BTreeSet<&str>,
    rows: Vec<Value>,
) -> Result<(Vec<Row>, BTreeSet<String>), UploadError> {
    let name = || rs.name.clone();
    let mut ignored = BTreeSet::new();
    let mut seen: HashMap<String, usize> = HashMap::with_capacity(rows.len());
    let mut out = Vec::with_capacity(rows.len());
    for (index, row) in rows.into_iter().enumerate() {
        let Value::Object(row) = row else {
            return Err(UploadError::RowNotObject {
                result_set: name(),
                row: index,
            });
        };
        let mut clean = Row::new();
        for (field, value) in row {
            if let Some(kind) = non_scalar_kind(&value) {
                return Err(UploadError::NotScalar {
                    result_set: name(),
                    row: index,
                    field: truncate(&field),
                    kind,
                });
            }
            if references.contains(field.as_str())
                && let Some(written) = unmatchable_id(&value)
            {
                return Err(UploadError::IdNotWhole {
                    result_set: name(),
                    row: index,
                    field: truncate(&field),
                    value: truncate(&written),
                });
            }
            if is_computed_field(&field) {
                // rollcall computes RowHash and LastUpdated itself, from what changed.
                continue;
            }
            if rs.field(&field).is_none() {
                ignored.insert(truncate(&field));
                continue;
            }
            clean.insert(field, value);
        }
        let id = match clean.get(ID) {
            None | Some(Value::Null) => {
                return Err(UploadError::MissingId {
                    result_set: name(),
                    row: index,
                });
            }
            Some(Value::String(s)) if !s.is_empty() => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            Some(_) => {
                return Err(UploadError::BadId {
                    result_set: name(),
                    row: index,
                });
            }
        };
        // XoD ids are strings on the wire, whatever the MIS sends.
        clean.insert(ID.to_owned(), Value::String(id.clone()));
        if let Some(first) = seen.insert(id, index) {
            return Err(UploadError::DuplicateId {
                result_set: name(),
                row: index,
                first,
            });
        }
        out.push(clean);
    }
    Ok((out, ignored))
}

/// An id written so that it would match no one: a number with a fraction or an exponent
/// (`61001.0`, `6.1e4`); text a spreadsheet made of a number (`"61001.0"`, `"61001."`,
/// `"6.1E+04"`, alone or in a list); or text holding a character that does not show or is a
/// full-width form (a byte-order mark, a zero-width space, `"６１００１"`), which a reader may
/// drop or fold though rollcall compares the id as written.
pub fn unmatchable_id(value: &Value) -> Option<String> {
    match value {
        Value::Number(number) if number.is_f64() => Some(number.to_string()),
        Value::String(text)
            if text.split(',').any(spreadsheet_number) || text.chars().any(hidden_or_wide) =>
        {
            Some(format!("{text:?}"))
        }
        _ => None,
    }
}

/// `61001.0`, `61001.`, `6.1E+04`: a number as a spreadsheet writes it, not as the id reads.
fn spreadsheet_number(item: &str) -> bool {
    let digits = |part: &str| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit());
    let item = item.trim();
    let (mantissa, exponent) = match item.split_once(['e', 'E']) {
        Some((mantissa, exponent)) => (mantissa, Some(exponent)),
        None => (item, None),
    };
    let Some((whole, fraction)) = mantissa.split_once('.') else {
        // Without a point, only an exponent with a sign (`61E+3`) is a spreadsheet's.
        return digits(mantissa)
            && exponent.is_some_and(|e| e.starts_with(['+', '-']) && digits(&e[1..]));
    };
    let fraction_ok = fraction.is_empty() || digits(fraction);
    match exponent {
        None => digits(whole) && (fraction.is_empty() || fraction.bytes().all(|b| b == b'0')),
        Some(exponent) => {
            let exponent = exponent.strip_prefix(['+', '-']).unwrap_or(exponent);
            digits(whole) && fraction_ok && digits(exponent)
        }
    }
}

/// A character that does not show (format characters: soft hyphen, zero-width spaces and
/// joiners, direction marks, byte-order mark) or a full-width form of an ASCII one.
fn hidden_or_wide(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{061C}' | '\u{180E}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{2064}' | '\u{2066}'..='\u{206F}' | '\u{FEFF}' | '\u{FF01}'..='\u{FF5E}')
}

fn non_scalar_kind(value: &Value) -> Option<&'static str> {
    match value {
        Value::Object(_) => Some("an object"),
        Value::Array(_) => Some("an array"),
        _ => None,
    }
}

/// Where the JSON broke, without quoting the body.
fn json_error_position(error: &serde_json::Error) -> String {
    let what = match error.classify() {
        serde_json::error::Category::Eof => "it ends too early",
        serde_json::error::Category::Syntax => "syntax error",
        serde_json::error::Category::Data => "unexpected value",
        serde_json::error::Category::Io => "could not be read",
    };
    format!("{what} at line {} column {}", error.line(), error.column())
}

fn truncate(text: &str) -> String {
    text.chars().take(64).collect()
}

/// What rollcall keeps about each row of a version beside the data: its id and, per scope
/// group, a keyed hash of the row's part and when that part last changed; plus the ids deleted
/// recently. Kept per group so that what a partner sees of a row's changes (`RowHash`,
/// `LastUpdated`, `updatedSince`, `changedRows`) can be made of the groups its consent releases
/// only (see [`crate::plan::SetPlan::answer`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RowIndex {
    pub rows: Vec<IndexEntry>,
    pub deleted: Vec<Deletion>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexEntry {
    pub id: String,
    /// One mark per scope group of the result set, in catalogue order. Empty in an index
    /// written before marks were kept: every group of such a row counts as changed at that
    /// version's creation.
    #[serde(default)]
    pub groups: Vec<GroupMark>,
}

impl IndexEntry {
    /// When the row's part in `group` last changed, if the index says.
    pub fn updated(&self, group: usize) -> Option<Timestamp> {
        self.groups.get(group).map(|mark| mark.updated)
    }
}

/// A row's part in one scope group: a keyed hash of its fields (to see whether it changed)
/// and when it last did. Stored as a two-element array to keep the index small.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "(u64, Timestamp)", into = "(u64, Timestamp)")]
pub struct GroupMark {
    pub hash: u64,
    pub updated: Timestamp,
}

impl From<(u64, Timestamp)> for GroupMark {
    fn from((hash, updated): (u64, Timestamp)) -> Self {
        Self { hash, updated }
    }
}

impl From<GroupMark> for (u64, Timestamp) {
    fn from(mark: GroupMark) -> Self {
        (mark.hash, mark.updated)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deletion {
    pub id: String,
    pub at: Timestamp,
    /// What the row held of the fields a partner's plan judges rows on
    /// ([`crate::plan::tombstone_fields`]) when it was deleted; `None` in an index written
    /// before these were kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kept: Option<Row>,
}

impl Deletion {
    /// The row as its tombstone keeps it: the kept fields and its `Id`; `None` for a
    /// deletion recorded without them.
    pub fn row(&self) -> Option<Row> {
        let mut row = self.kept.clone()?;
        row.insert(ID.to_owned(), Value::String(self.id.clone()));
        Some(row)
    }
}

/// The outcome of comparing an upload's rows with the stored version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diff {
    pub index: RowIndex,
    pub added: usize,
    pub changed: usize,
    pub deleted: usize,
    pub unchanged: usize,
}

impl Diff {
    /// The ids this upload deleted, whose tombstones are still to be kept.
    pub fn newly_deleted(&self) -> BTreeSet<&str> {
        self.index
            .deleted
            .iter()
            .filter(|d| d.kept.is_none())
            .map(|d| d.id.as_str())
            .collect()
    }

    /// Keeps, with each deletion of this upload, what its row held of the fields plans
    /// judge rows on.
    pub fn keep_tombstones(&mut self, mut kept: HashMap<String, Row>) {
        for deletion in &mut self.index.deleted {
            if deletion.kept.is_none() {
                deletion.kept = kept.remove(&deletion.id);
            }
        }
    }

    pub fn is_unchanged(&self) -> bool {
        self.added == 0 && self.changed == 0 && self.deleted == 0
    }
}

/// A row's `RowHash` as it is defined, from the fields `sorted` yields (already in name order,
/// each name once): kept as the tests' reference for what the read plan writes in one pass
/// ([`row_hash_of`] of its canonical text).
#[cfg(test)]
pub(crate) fn row_hash_sorted<'a>(
    key: &HashKey,
    sorted: impl Iterator<Item = (&'a String, &'a Value)>,
) -> String {
    let mut canonical = Vec::with_capacity(1024);
    canonical.push(b'{');
    for (n, (name, value)) in sorted.enumerate() {
        if n > 0 {
            canonical.push(b',');
        }
        serde_json::to_writer(&mut canonical, name).expect("a string serialises");
        canonical.push(b':');
        serde_json::to_writer(&mut canonical, value).expect("scalar JSON values serialise");
    }
    canonical.push(b'}');
    row_hash_of(key, &canonical)
}

/// A row's `RowHash`: a keyed hash (HMAC-SHA256, under a prepared key) of `canonical`, 40
/// upper-case hex digits like XoD's. Keyed, so nobody without the key can test guesses
/// against it. The hashed text is the shown fields' canonical JSON: the compact object of
/// them in name order (each name once, computed fields left out), as `serde_json` writes a
/// sorted map.
pub fn row_hash_of(key: &HashKey, canonical: &[u8]) -> String {
    let mut text = hex::encode_upper(key.hash(canonical));
    text.truncate(40);
    text
}

/// The key of the `RowHash`es one partner sees of one school: derived from the school's
/// row-hash key and the partner, so two partners' hashes of the same row do not match and
/// cannot link their answers.
pub fn partner_row_hash_key(school_key: &[u8], partner: &str) -> Vec<u8> {
    keyed_hash_bytes(school_key, format!("rowhash\n{partner}").as_bytes()).to_vec()
}

/// A group's part of a row as hashed: its fields sorted by name, by reference.
type Part<'r> = BTreeMap<&'r String, &'r Value>;

/// The keyed hash of a row's part in one group, `buffer` reused for its canonical JSON.
fn group_hash(key: &HashKey, part: &Part<'_>, buffer: &mut Vec<u8>) -> u64 {
    buffer.clear();
    serde_json::to_writer(&mut *buffer, part).expect("scalar JSON values serialise");
    let tag = key.hash(buffer);
    u64::from_be_bytes(
        tag[..8]
            .try_into()
            .expect("an HMAC-SHA256 tag has 32 bytes"),
    )
}

/// Compares `rows` with the previous index group by group: a row's part in a group that did
/// not change keeps its time, a changed or new one gets `now`; ids no longer present are
/// remembered as deleted at `now`. Deletions older than the disposal period are forgotten,
/// and an id that comes back is no longer deleted.
pub fn diff(
    previous: Option<&RowIndex>,
    rs: &ResultSet,
    rows: &[Row],
    hash_key: &[u8],
    now: Timestamp,
) -> Diff {
    let empty = RowIndex::default();
    let previous = previous.unwrap_or(&empty);
    let before: HashMap<&str, &IndexEntry> =
        previous.rows.iter().map(|e| (e.id.as_str(), e)).collect();
    let (mut added, mut changed, mut unchanged) = (0, 0, 0);
    let mut entries = Vec::with_capacity(rows.len());
    let key = HashKey::new(hash_key);
    let mut buffer = Vec::new();
    for row in rows {
        let id = row_id(row).to_owned();
        let old = before.get(id.as_str());
        let groups: Vec<GroupMark> = row_parts(rs, row)
            .iter()
            .enumerate()
            .map(|(group, part)| {
                let hash = group_hash(&key, part, &mut buffer);
                let kept = old
                    .and_then(|old| old.groups.get(group))
                    .filter(|mark| mark.hash == hash);
                GroupMark {
                    hash,
                    updated: kept.map_or(now, |mark| mark.updated),
                }
            })
            .collect();
        match old {
            None => added += 1,
            Some(old) if old.groups == groups => unchanged += 1,
            Some(_) => changed += 1,
        }
        entries.push(IndexEntry { id, groups });
    }
    let present: BTreeSet<&str> = entries.iter().map(|e| e.id.as_str()).collect();
    let newly_deleted: Vec<Deletion> = previous
        .rows
        .iter()
        .filter(|e| !present.contains(e.id.as_str()))
        .map(|e| Deletion {
            id: e.id.clone(),
            at: now,
            kept: None,
        })
        .collect();
    let deleted = newly_deleted.len();
    let horizon = now.minus(DISPOSAL_AFTER);
    let mut deletions: Vec<Deletion> = previous
        .deleted
        .iter()
        .filter(|d| d.at > horizon && !present.contains(d.id.as_str()))
        .cloned()
        .collect();
    deletions.extend(newly_deleted);
    Diff {
        index: RowIndex {
            rows: entries,
            deleted: deletions,
        },
        added,
        changed,
        deleted,
        unchanged,
    }
}

fn row_id(row: &Row) -> &str {
    row.get(ID)
        .and_then(Value::as_str)
        .expect("validated rows carry a string Id")
}

/// A row's parts as hashed, one per scope group of `rs` (in catalogue order), each holding
/// only that group's fields that the row has.
fn row_parts<'r>(rs: &ResultSet, row: &'r Row) -> Vec<Part<'r>> {
    let mut parts: Vec<Part<'r>> = rs.groups.iter().map(|_| Part::new()).collect();
    for (name, value) in row {
        if let Some(group) = rs.field(name).and_then(|f| f.group) {
            parts[group].insert(name, value);
        }
    }
    parts
}

/// A row's parts, one per scope group of `rs` (in catalogue order), each holding only that
/// group's fields that the row has.
fn split_row(rs: &ResultSet, row: &Row) -> Vec<Row> {
    let mut parts: Vec<Row> = rs.groups.iter().map(|_| Row::new()).collect();
    for (name, value) in row {
        if let Some(group) = rs.field(name).and_then(|f| f.group) {
            parts[group].insert(name.clone(), value.clone());
        }
    }
    parts
}

/// Splits rows into the result set's scope groups: for each group (in catalogue order), the
/// rows in the same order, each holding only that group's fields that the row has.
pub fn split_groups(rs: &ResultSet, rows: &[Row]) -> Vec<Vec<Row>> {
    let mut groups: Vec<Vec<Row>> = rs
        .groups
        .iter()
        .map(|_| Vec::with_capacity(rows.len()))
        .collect();
    for row in rows {
        for (group, part) in groups.iter_mut().zip(split_row(rs, row)) {
            group.push(part);
        }
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rows(value: Value) -> Vec<Row> {
        value
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r.as_object().unwrap().clone())
            .collect()
    }

    #[test]
    fn upload_drops_unknown_fields_and_lists_them() {
        let body =
            br#"{"resultSets": {"Students": [{"Id": 1, "Forename": "Zo\u00eb", "ShoeSize": 4}]}}"#;
        let upload = parse_upload(Catalogue::get(), body).unwrap();
        let (name, students) = &upload.result_sets[0];
        assert_eq!(name, "Students");
        assert_eq!(students[0].get("Id"), Some(&json!("1")));
        assert!(students[0].get("ShoeSize").is_none());
        assert_eq!(
            upload.ignored["Students"],
            BTreeSet::from(["ShoeSize".to_string()])
        );
    }

    #[test]
    fn a_former_set_name_is_taken_with_a_warning_but_not_beside_the_new_one() {
        let old = br#"{"resultSets": {"Groups": [{"Id": "8811", "Code": "9X1"}]}}"#;
        let upload = parse_upload(Catalogue::get(), old).unwrap();
        assert_eq!(upload.result_sets[0].0, "Group");
        assert_eq!(upload.warnings.len(), 1);
        assert!(
            upload.warnings[0].contains("send `Group`"),
            "{:?}",
            upload.warnings
        );

        let new = br#"{"resultSets": {"Group": [{"Id": "8811"}]}}"#;
        assert!(
            parse_upload(Catalogue::get(), new)
                .unwrap()
                .warnings
                .is_empty()
        );

        let both = br#"{"resultSets": {"Group": [], "Groups": [{"Id": "8811"}]}}"#;
        assert_eq!(
            parse_upload(Catalogue::get(), both).unwrap_err(),
            UploadError::TwiceNamed {
                result_set: "Group".into(),
                alias: "Groups".into()
            }
        );
    }

    #[test]
    fn upload_errors_name_result_set_row_and_field() {
        let nested =
            br#"{"resultSets": {"Students": [{"Id": "1"}, {"Id": "2", "Forename": {"a": 1}}]}}"#;
        let error = parse_upload(Catalogue::get(), nested).unwrap_err();
        assert_eq!(
            error.to_string(),
            "Students[1].Forename is an object; values must be a string, number, boolean or null"
        );
        let no_id = br#"{"resultSets": {"Staff": [{"Forename": "A"}]}}"#;
        assert!(matches!(
            parse_upload(Catalogue::get(), no_id),
            Err(UploadError::MissingId { row: 0, .. })
        ));
        let unknown = br#"{"resultSets": {"Pupils": []}}"#;
        assert!(matches!(
            parse_upload(Catalogue::get(), unknown),
            Err(UploadError::UnknownResultSet { .. })
        ));
        let duplicate = br#"{"resultSets": {"Staff": [{"Id": "5"}, {"Id": 5}]}}"#;
        assert!(matches!(
            parse_upload(Catalogue::get(), duplicate),
            Err(UploadError::DuplicateId {
                row: 1,
                first: 0,
                ..
            })
        ));
    }

    #[test]
    fn an_id_written_with_a_fraction_or_an_exponent_is_refused_where_ids_are_compared() {
        let refused = [
            (
                r#""AttendMarks": [{"Id": "1", "StudentId": 61001.0}]"#,
                "StudentId",
            ),
            (
                r#""StudentBehaviour": [{"Id": "1", "BehaviourId": 6.1e1}]"#,
                "BehaviourId",
            ),
            (r#""Students": [{"Id": 61001.0}]"#, "Id"),
            (r#""Staff": [{"Id": "7", "StaffCode": 12.0}]"#, "StaffCode"),
            (
                r#""Group": [{"Id": "1", "PrimaryStaffId": 7.0}]"#,
                "PrimaryStaffId",
            ),
            (
                r#""AttendMarks": [{"Id": "1", "StudentId": "61001.0"}]"#,
                "StudentId",
            ),
            (
                r#""Group": [{"Id": "1", "StudentIds": "61002, 61001.00 "}]"#,
                "StudentIds",
            ),
            (r#""Group": [{"Id": "1", "Staff": "AB,6.1E+04"}]"#, "Staff"),
            (r#""Group": [{"Id": "1", "Staff": "61001."}]"#, "Staff"),
            (r#""Group": [{"Id": "1", "Staff": "\ufeffSF0Q6"}]"#, "Staff"),
            (r#""Group": [{"Id": "1", "Staff": "S\u200bF"}]"#, "Staff"),
            (r#""Group": [{"Id": "1", "Staff": "ＳＦ０"}]"#, "Staff"),
            (
                r#""Staff": [{"Id": "7", "StaffCode": "SF\u00ad0Q6"}]"#,
                "StaffCode",
            ),
        ];
        for (sets, field) in refused {
            let body = format!(r#"{{"resultSets": {{{sets}}}}}"#);
            let error = parse_upload(Catalogue::get(), body.as_bytes()).unwrap_err();
            assert!(
                matches!(&error, UploadError::IdNotWhole { field: f, .. } if f == field),
                "{sets}: {error}"
            );
            assert!(error.to_string().contains("write 61001, not 61001.0"));
        }
        // Whole numbers are ids as they are; a fraction elsewhere is a value like any other.
        let taken = br#"{"resultSets": {"AttendMarks": [{"Id": 1, "StudentId": 61001}],
            "StudentBehaviour": [{"Id": "1", "BehaviourId": "2.5", "Points": 1.5}],
            "Staff": [{"Id": "7", "StaffCode": "A.0"}, {"Id": "8", "StaffCode": "1E5"},
                      {"Id": "9", "StaffCode": "Zo\u00eb"}]}}"#;
        assert!(parse_upload(Catalogue::get(), taken).is_ok());
    }

    #[test]
    fn malformed_json_says_where_without_quoting() {
        let error =
            parse_upload(Catalogue::get(), b"{\"resultSets\": {\"Students\": [").unwrap_err();
        assert!(error.to_string().contains("line 1 column"), "{error}");
    }

    #[test]
    fn diff_keeps_unchanged_rows_and_records_deletions() {
        let key = b"k";
        let t1 = Timestamp::from_millis(1_000_000);
        let t2 = Timestamp::from_millis(2_000_000);
        let first = rows(
            json!([{"Id": "1", "Forename": "Ann"}, {"Id": "2", "Forename": "Bo"}, {"Id": "3"}]),
        );
        let students = Catalogue::get().stored_set("Students").unwrap();
        let d1 = diff(None, students, &first, key, t1);
        assert_eq!(
            (d1.added, d1.changed, d1.deleted, d1.unchanged),
            (3, 0, 0, 0)
        );

        let second = rows(
            json!([{"Id": "1", "Forename": "Ann"}, {"Id": "2", "Forename": "Bea"}, {"Id": "4"}]),
        );
        let d2 = diff(Some(&d1.index), students, &second, key, t2);
        assert_eq!(
            (d2.added, d2.changed, d2.deleted, d2.unchanged),
            (1, 1, 1, 1)
        );
        assert_eq!(
            d2.index.rows[0], d1.index.rows[0],
            "unchanged row keeps hash and time"
        );
        let forename = students.field("Forename").unwrap().group.unwrap();
        assert_eq!(d2.index.rows[1].updated(forename), Some(t2));
        assert_eq!(
            d2.index.deleted,
            vec![Deletion {
                id: "3".into(),
                at: t2,
                kept: None,
            }]
        );
        assert_eq!(d2.newly_deleted(), BTreeSet::from(["3"]));

        let d3 = diff(
            Some(&d2.index),
            students,
            &second,
            key,
            Timestamp::from_millis(3_000_000),
        );
        assert!(d3.is_unchanged());
        assert_eq!(d3.index, d2.index);
    }

    #[test]
    fn a_change_moves_only_the_time_of_the_group_it_is_in() {
        let students = Catalogue::get().stored_set("Students").unwrap();
        let group = |field: &str| students.field(field).unwrap().group.unwrap();
        let (names, ethnicity) = (group("Forename"), group("Ethnicity"));
        assert_ne!(names, ethnicity, "the test needs fields of two groups");
        let (t1, t2) = (Timestamp::from_millis(1_000), Timestamp::from_millis(2_000));
        let before = rows(json!([{"Id": "1", "Forename": "Ann", "Ethnicity": "WBRI"}]));
        let after = rows(json!([{"Id": "1", "Forename": "Ann", "Ethnicity": "WIRI"}]));
        let d1 = diff(None, students, &before, b"k", t1);
        let d2 = diff(Some(&d1.index), students, &after, b"k", t2);
        assert_eq!((d2.changed, d2.unchanged), (1, 0));
        let row = &d2.index.rows[0];
        assert_eq!(row.updated(names), Some(t1));
        assert_eq!(row.updated(ethnicity), Some(t2));
        assert_eq!(row.groups.len(), students.groups.len());
        let stored = serde_json::to_value(&d2.index).unwrap();
        assert!(
            stored["rows"][0]["groups"][0].is_array(),
            "marks are stored compactly"
        );
        let read: RowIndex = serde_json::from_value(stored).unwrap();
        assert_eq!(read, d2.index);
    }

    #[test]
    fn an_index_written_without_marks_still_reads() {
        let old = json!({"rows": [{"id": "1", "hash": "AB", "updated": 5}], "deleted": []});
        let index: RowIndex = serde_json::from_value(old).unwrap();
        assert_eq!(index.rows[0].updated(0), None);
    }

    #[test]
    fn row_hash_is_the_keyed_hash_of_the_canonical_json() {
        let row = rows(json!([{"Forename": "Ann \"A\"", "Id": "1", "Score": 3, "X": null}]));
        let hash = |key: &[u8]| row_hash_sorted(&HashKey::new(key), row[0].iter());
        let canonical = br#"{"Forename":"Ann \"A\"","Id":"1","Score":3,"X":null}"#;
        let mut expected = hex::encode_upper(keyed_hash_bytes(b"k", canonical));
        expected.truncate(40);
        assert_eq!(hash(b"k"), expected);
        assert_ne!(hash(b"k"), hash(b"other"));
    }
}
