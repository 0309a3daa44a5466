//! Checking a write-back before it is queued, against what the school has uploaded: pupils and
//! staff that exist, mark codes and conduct types the school uses, one date per attendance
//! request. A valid body is rewritten with the canonical key names the agent reads.

use std::collections::BTreeSet;

use rollcall_core::catalogue::{PersonKind, WritebackBody};
use serde_json::{Map, Value, json};

use super::body::{Problems, Record, callback, records};

/// The longest note, comment or description a write-back may carry.
pub(crate) const MAX_NOTE: usize = 500;
/// The most marks or conduct records in one request.
pub(crate) const MAX_RECORDS: usize = 5000;

/// What the school has, to check references against (opted-out people left out, so they are
/// refused exactly as unknown ids are), and whether a refusal may say which value was wrong
/// (only where the consent releases the set that would tell the partner anyway).
#[derive(Debug, Default)]
pub(crate) struct Known {
    pub students: BTreeSet<String>,
    pub staff: BTreeSet<String>,
    pub marks: BTreeSet<String>,
    /// The conduct types' `LocalId`s, when the school has uploaded them.
    pub conduct_types: Option<BTreeSet<String>>,
    pub name_students: bool,
    pub name_staff: bool,
    pub name_marks: bool,
    pub name_conduct_types: bool,
}

impl Known {
    /// The ids of `kind` a write-back may name, whether a refusal may say which was wrong, and
    /// what such a person is called. No write-back names a contact: none may be named.
    fn people(&self, kind: PersonKind) -> (&BTreeSet<String>, bool, &'static str) {
        static NONE: BTreeSet<String> = BTreeSet::new();
        match kind {
            PersonKind::Student => (&self.students, self.name_students, "a pupil"),
            PersonKind::Staff => (&self.staff, self.name_staff, "a member of staff"),
            PersonKind::Contact => (&NONE, false, "a contact"),
        }
    }
}

/// A checked request: the payload for the agent and how many records it holds.
#[derive(Debug)]
pub(crate) struct Checked {
    pub payload: Value,
    pub records: u64,
}

/// A body read with canonical names, before the people it names are checked.
struct Draft {
    payload: Value,
    records: usize,
}

/// Checks a body of `kind` against what the school has: its own fields by the kind's reader,
/// then every person it names, then its `Callback`. Every problem is listed.
pub(crate) fn check(
    kind: WritebackBody,
    object: &Map<String, Value>,
    known: &Known,
    estab: &str,
) -> Result<Checked, Problems> {
    let mut problems = Problems::default();
    let body = Record::new(String::new(), object);
    body.once_each(&mut problems);
    let read = match kind {
        WritebackBody::Attendance => attendance,
        WritebackBody::Conduct => conduct,
        WritebackBody::SeatingPlan => seating_plan,
        WritebackBody::Detention => detention,
    };
    let Draft {
        mut payload,
        records,
    } = read(&body, known, estab, &mut problems);
    check_people(kind, (&body, &payload), known, estab, &mut problems);
    let callback = callback(&body, &mut problems);
    if !problems.is_empty() {
        return Err(problems);
    }
    payload["Callback"] = json!(callback);
    Ok(Checked {
        payload,
        records: records as u64,
    })
}

fn too_many(name: &str, count: usize, problems: &mut Problems) {
    if count > MAX_RECORDS {
        problems.add(
            name,
            format!("has {count} entries; send at most {MAX_RECORDS} in one request"),
        );
    }
}

/// `Marks` of session (`MarkType` S, with `Session` AM/PM) or lesson (`MarkType` L, with
/// `InstanceId`) attendance, all of one date.
fn attendance(body: &Record<'_>, known: &Known, estab: &str, problems: &mut Problems) -> Draft {
    let marks = records(body, "Marks", true, problems);
    too_many("Marks", marks.len(), problems);
    let mut dates = BTreeSet::new();
    let mut out = Vec::with_capacity(marks.len());
    for mark in &marks {
        let student = mark.required_text("StudentId", problems);
        let mark_type = mark.required_choice("MarkType", &["S", "L"], problems);
        let date = mark.required_date("Date", problems);
        dates.extend(date.clone());
        let (session, instance) = match mark_type {
            Some("S") => (
                mark.required_choice("Session", &["AM", "PM"], problems),
                None,
            ),
            Some(_) => (None, mark.required_text("InstanceId", problems)),
            None => (None, None),
        };
        let code = mark.required_text("Mark", problems);
        if let Some(code) = &code
            && !known.marks.contains(code)
        {
            refuse_unknown(
                known.name_marks,
                (&format!("{}.Mark", mark.place), "Marks"),
                format!(
                    "`{code}` is not an attendance mark of school {estab}; the valid ones are \
                     listed by GET /api/v1/School/{estab}/AttendanceCodes"
                ),
                format!(
                    "one or more marks are not attendance marks of school {estab}; check them \
                     against the codes the school gave you"
                ),
                problems,
            );
        }
        let minutes = mark.integer("Mins", problems);
        if minutes.is_some_and(|m| m < 0) {
            problems.add(&format!("{}.Mins", mark.place), "must not be negative");
        }
        let notes = mark.note("Notes", MAX_NOTE, problems);
        out.push(json!({
            "StudentId": student, "MarkType": mark_type, "Date": date, "Session": session,
            "InstanceId": instance, "Mark": code, "Mins": minutes, "Notes": notes,
        }));
    }
    if dates.len() > 1 {
        problems.add(
            "Marks",
            format!(
                "holds marks of {} dates ({}); send one request per date",
                dates.len(),
                dates.into_iter().collect::<Vec<_>>().join(", ")
            ),
        );
    }
    Draft {
        records: out.len(),
        payload: json!({ "Marks": out }),
    }
}

/// `Conducts` (achievement or behaviour events) with their `Participants` (pupils), and
/// optionally `Staff` and `MediaFiles`, linked by `ConductId`.
fn conduct(body: &Record<'_>, known: &Known, estab: &str, problems: &mut Problems) -> Draft {
    let conducts = records(body, "Conducts", true, problems);
    too_many("Conducts", conducts.len(), problems);
    let mut ids = BTreeSet::new();
    let mut out_conducts = Vec::with_capacity(conducts.len());
    for conduct in &conducts {
        let id = conduct.required_integer("Id", problems);
        if let Some(id) = id
            && !ids.insert(id)
        {
            problems.add(
                &format!("{}.Id", conduct.place),
                format!("{id} is used by two conducts"),
            );
        }
        let kind = conduct.required_choice("IncidentType", &["Ach", "Beh"], problems);
        let recorded_by = conduct.required_text("RecordedById", problems);
        let type_id = conduct.required_integer("TypeId", problems);
        if let (Some(type_id), Some(types)) = (type_id, &known.conduct_types)
            && !types.contains(&type_id.to_string())
        {
            refuse_unknown(
                known.name_conduct_types,
                (&format!("{}.TypeId", conduct.place), "Conducts"),
                format!(
                    "{type_id} is not a conduct type of school {estab}; the valid ones are the \
                     ConductTypes LocalIds of GET /api/v1/School/{estab}/conductlookups"
                ),
                format!(
                    "one or more TypeIds are not conduct types of school {estab}; check them \
                     against the types the school gave you"
                ),
                problems,
            );
        }
        let status = if kind == Some("Beh") {
            conduct.required_integer("StatusId", problems)
        } else {
            conduct.integer("StatusId", problems)
        };
        let mut record = json!({
            "Id": id, "IncidentType": kind, "RecordedById": recorded_by,
            "EntryDate": conduct.required_date("EntryDate", problems),
            "TypeId": type_id, "StatusId": status,
            "Note": conduct.note("Note", MAX_NOTE, problems),
        });
        for optional in ["ActivityId", "BullTypeId", "LocationId", "EntryTimeId"] {
            record[optional] = json!(conduct.integer(optional, problems));
        }
        out_conducts.push(record);
    }

    let participants = records(body, "Participants", true, problems);
    too_many("Participants", participants.len(), problems);
    let mut involved = BTreeSet::new();
    let mut out_participants = Vec::with_capacity(participants.len());
    for participant in &participants {
        let conduct_id = conduct_ref(participant, &ids, problems);
        involved.extend(conduct_id);
        let student = participant.required_text("StudentId", problems);
        out_participants.push(json!({
            "ConductId": conduct_id, "StudentId": student,
            "Points": participant.required_integer("Points", problems),
            "RoleId": participant.integer("RoleId", problems),
            "OutcomeId": participant.integer("OutcomeId", problems),
        }));
    }
    for missing in ids.difference(&involved) {
        problems.add(
            "Participants",
            format!("conduct {missing} has no participant; give at least one pupil for it"),
        );
    }

    let staff = records(body, "Staff", false, problems);
    let mut out_staff = Vec::with_capacity(staff.len());
    for member in &staff {
        let staff_id = member.required_text("StaffId", problems);
        out_staff.push(json!({
            "ConductId": conduct_ref(member, &ids, problems), "StaffId": staff_id,
            "StaffRoleId": member.integer("StaffRoleId", problems),
        }));
    }

    let media = records(body, "MediaFiles", false, problems);
    let mut out_media = Vec::with_capacity(media.len());
    for file in &media {
        let content = file.required_text("MediaBase64", problems);
        if content.as_deref().is_some_and(|c| !looks_like_base64(c)) {
            problems.add(
                &format!("{}.MediaBase64", file.place),
                "is not base64 (A-Z, a-z, 0-9, +, / and = padding, in groups of four)",
            );
        }
        out_media.push(json!({
            "Id": file.required_integer("Id", problems),
            "ConductId": conduct_ref(file, &ids, problems),
            "MediaDateTime": file.required_text("MediaDateTime", problems),
            "Description": file.required_note("Description", MAX_NOTE, problems),
            "MediaType": file.required_text("MediaType", problems),
            "FileName": file.required_text("FileName", problems),
            "MediaBase64": content,
        }));
    }
    Draft {
        records: out_conducts.len(),
        payload: json!({
            "Conducts": out_conducts, "Participants": out_participants, "Staff": out_staff,
            "MediaFiles": out_media,
        }),
    }
}

/// The most rows or columns of desks a seating plan may have.
pub(crate) const MAX_SEAT: i64 = 100;
/// The longest group, room or location name.
const MAX_NAME: usize = 100;

/// A class's seating plan: `GroupId`, optionally `RoomId`, and its `Seats`, each a pupil at a
/// `SeatRow` and `SeatColumn` (from 1), every pupil and every desk at most once.
fn seating_plan(body: &Record<'_>, _: &Known, _: &str, problems: &mut Problems) -> Draft {
    body.only(&["GroupId", "RoomId", "Seats", "Callback"], problems);
    let group = body.required_note("GroupId", MAX_NAME, problems);
    let room = body.note("RoomId", MAX_NAME, problems);
    let seats = records(body, "Seats", true, problems);
    too_many("Seats", seats.len(), problems);
    let (mut pupils, mut desks) = (BTreeSet::new(), BTreeSet::new());
    let mut out = Vec::with_capacity(seats.len());
    for seat in &seats {
        seat.only(&["StudentId", "SeatRow", "SeatColumn"], problems);
        let student = seat.required_text("StudentId", problems);
        if let Some(student) = &student
            && !pupils.insert(student.clone())
        {
            problems.add(
                &format!("{}.StudentId", seat.place),
                "is given a seat twice; give each pupil one seat",
            );
        }
        let row = seat_number(seat, "SeatRow", problems);
        let column = seat_number(seat, "SeatColumn", problems);
        if let (Some(row), Some(column)) = (row, column)
            && !desks.insert((row, column))
        {
            problems.add(
                &seat.place,
                format!("row {row}, column {column} is given to two pupils"),
            );
        }
        out.push(json!({ "StudentId": student, "SeatRow": row, "SeatColumn": column }));
    }
    Draft {
        records: out.len(),
        payload: json!({ "GroupId": group, "RoomId": room, "Seats": out }),
    }
}

/// A desk's row or column: a whole number from 1 to [`MAX_SEAT`].
fn seat_number(seat: &Record<'_>, name: &str, problems: &mut Problems) -> Option<i64> {
    let number = seat.required_integer(name, problems)?;
    if !(1..=MAX_SEAT).contains(&number) {
        problems.add(
            &format!("{}.{name}", seat.place),
            format!("{number} is out of range; count from 1, up to {MAX_SEAT}"),
        );
    }
    Some(number)
}

/// `Detentions`, each a pupil (`StudentId`) on a `Date` from `StartTime` to `EndTime`, set by
/// a member of staff (`SetById`), optionally with a supervisor, a location, a reason, the
/// behaviour event it follows (`ConductId`) and the partner's own `Id` for it (to edit it).
fn detention(body: &Record<'_>, _: &Known, _: &str, problems: &mut Problems) -> Draft {
    body.only(&["Detentions", "Callback"], problems);
    let detentions = records(body, "Detentions", true, problems);
    too_many("Detentions", detentions.len(), problems);
    let mut out = Vec::with_capacity(detentions.len());
    for detention in &detentions {
        detention.only(
            &[
                "Id",
                "StudentId",
                "Date",
                "StartTime",
                "EndTime",
                "SetById",
                "SupervisorId",
                "Location",
                "Reason",
                "ConductId",
            ],
            problems,
        );
        let student = detention.required_text("StudentId", problems);
        let set_by = detention.required_text("SetById", problems);
        let supervisor = detention.text("SupervisorId", problems);
        let start = detention.required_time("StartTime", problems);
        let end = detention.required_time("EndTime", problems);
        if let (Some(start), Some(end)) = (start, end)
            && end <= start
        {
            problems.add(
                &format!("{}.EndTime", detention.place),
                "is not after StartTime; a detention ends after it starts",
            );
        }
        let time = |minutes: Option<u32>| minutes.map(|m| format!("{:02}:{:02}", m / 60, m % 60));
        out.push(json!({
            "Id": detention.integer("Id", problems),
            "StudentId": student,
            "Date": detention.required_date("Date", problems),
            "StartTime": time(start), "EndTime": time(end),
            "SetById": set_by, "SupervisorId": supervisor,
            "Location": detention.note("Location", MAX_NAME, problems),
            "Reason": detention.note("Reason", MAX_NOTE, problems),
            "ConductId": detention.integer("ConductId", problems),
        }));
    }
    Draft {
        records: out.len(),
        payload: json!({ "Detentions": out }),
    }
}

/// Refuses every id the payload names (where [`WritebackBody::person_fields`] says, the one
/// list the hand-out re-check also reads) that is not a pupil or member of staff the partner
/// may write about. Where the consent does not release who they are, the refusal says only
/// that some id was wrong, never which, so it cannot be used to test ids.
/// A payload list's `n`th record is written from the `n`th record [`records`] reads from
/// `body`'s list, whose place it is given.
fn check_people(
    kind: WritebackBody,
    (body, payload): (&Record<'_>, &Value),
    known: &Known,
    estab: &str,
    problems: &mut Problems,
) {
    for field in kind.person_fields() {
        let (people, named, what) = known.people(field.kind);
        // The reader has already listed what is wrong with the records themselves.
        let given = records(body, field.list, false, &mut Problems::default());
        let written = payload.get(field.list).and_then(Value::as_array);
        for (n, record) in written.into_iter().flatten().enumerate() {
            let Some(id) = record.get(field.field).and_then(Value::as_str) else {
                continue;
            };
            if people.contains(id) {
                continue;
            }
            let place = match given.get(n) {
                Some(read) => format!("{}.{}", read.place, field.field),
                None => format!("{}[{n}].{}", field.list, field.field),
            };
            refuse_unknown(
                named,
                (&place, field.field),
                format!("`{id}` is not {what} of school {estab}"),
                format!(
                    "one or more are not {what} of school {estab} you may write about; check \
                     them against your own records"
                ),
                problems,
            );
        }
    }
}

/// Refuses a value the school does not know. Where the consent releases the school's list
/// (`named`), the refusal names the value at its place; else it is said once under `group`,
/// never which value, so a write-back cannot test what the partner may not read.
fn refuse_unknown(
    named: bool,
    (place, group): (&str, &str),
    naming: String,
    unnamed: String,
    problems: &mut Problems,
) {
    if named {
        problems.add(place, naming);
    } else {
        problems.add_once(group, unnamed);
    }
}

/// A `ConductId` that names a conduct of this request.
fn conduct_ref(record: &Record<'_>, ids: &BTreeSet<i64>, problems: &mut Problems) -> Option<i64> {
    let id = record.required_integer("ConductId", problems)?;
    if !ids.contains(&id) {
        problems.add(
            &format!("{}.ConductId", record.place),
            format!("{id} is not the Id of a conduct in this request"),
        );
    }
    Some(id)
}

fn looks_like_base64(text: &str) -> bool {
    !text.is_empty()
        && text.len() % 4 == 0
        && text.trim_end_matches('=').len() + 2 >= text.len()
        && text
            .trim_end_matches('=')
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known() -> Known {
        Known {
            students: ["S1", "S2"].map(String::from).into(),
            staff: ["T1"].map(String::from).into(),
            marks: ["/", "\\", "L"].map(String::from).into(),
            conduct_types: Some(["4"].map(String::from).into()),
            name_students: true,
            name_staff: true,
            name_marks: true,
            name_conduct_types: true,
        }
    }

    #[test]
    fn without_the_consent_to_read_pupils_a_refusal_names_no_id() {
        let body = object_of(json!({"Marks": [
            {"StudentId": "S9", "MarkType": "S", "Date": "2026-11-23", "Session": "AM", "Mark": "Q"},
            {"StudentId": "S8", "MarkType": "S", "Date": "2026-11-23", "Session": "AM", "Mark": "/"},
        ]}));
        let known = Known {
            name_students: false,
            name_marks: false,
            ..known()
        };
        let message = check(WritebackBody::Attendance, &body, &known, "9992001")
            .unwrap_err()
            .message();
        assert!(
            !message.contains("S9") && !message.contains("S8"),
            "{message}"
        );
        assert!(
            !message.contains("Marks[0]") && !message.contains("Marks[1]"),
            "{message}"
        );
        assert!(!message.contains("`Q`"), "{message}");
        assert!(message.contains("one or more are not a pupil"), "{message}");
    }

    fn object_of(value: Value) -> Map<String, Value> {
        value.as_object().unwrap().clone()
    }

    #[test]
    fn a_session_mark_is_rewritten_with_canonical_names() {
        let body = object_of(json!({"marks": [
            {"studentid": "S1", "marktype": "s", "date": "2026-11-23", "session": "am", "mark": "/"}
        ]}));
        let checked = check(WritebackBody::Attendance, &body, &known(), "9992001").unwrap();
        assert_eq!(checked.records, 1);
        assert_eq!(checked.payload["Marks"][0]["Session"], "AM");
        assert_eq!(checked.payload["Marks"][0]["MarkType"], "S");
    }

    #[test]
    fn every_attendance_problem_is_listed_with_its_place() {
        let body = object_of(json!({"Marks": [
            {"StudentId": "S9", "MarkType": "S", "Date": "2026-11-23", "Session": "XX", "Mark": "Q"},
            {"StudentId": "S1", "MarkType": "L", "Date": "2026-11-24", "Mark": "/",
             "Notes": "x".repeat(501)},
            {"StudentId": "S1", "MarkType": "S", "Date": " 2026-11-23", "Session": "AM", "Mark": "/"},
            {"StudentId": "S1", "MarkType": "S", "Date": "2026-02-30", "Session": "AM", "Mark": "/"},
        ]}));
        let message = check(WritebackBody::Attendance, &body, &known(), "9992001")
            .unwrap_err()
            .message();
        for expected in [
            "Marks[0].StudentId: `S9` is not a pupil",
            "Marks[0].Session: `XX` is not one of AM, PM",
            "Marks[0].Mark: `Q` is not an attendance mark",
            "Marks[1].InstanceId: is required",
            "Marks[1].Notes: has 501 characters",
            "Marks[2].Date: ` 2026-11-23` is not a date",
            "Marks[3].Date: `2026-02-30` is not a date",
            "holds marks of 2 dates (2026-11-23, 2026-11-24)",
        ] {
            assert!(message.contains(expected), "{expected} not in {message}");
        }
    }

    #[test]
    fn conduct_references_must_resolve() {
        let body = object_of(json!({
            "Conducts": [{"Id": 1, "IncidentType": "Beh", "RecordedById": "T1",
                          "EntryDate": "2026-11-23", "TypeId": 5}],
            "Participants": [{"ConductId": 2, "Points": 1, "StudentId": "S1"}],
            "Staff": [{"ConductId": 1, "StaffId": "T9"}],
            "MediaFiles": [{"Id": 1, "ConductId": 1, "MediaDateTime": "2026-11-23T10:00:00",
                            "Description": "d", "MediaType": "png", "FileName": "a.png",
                            "MediaBase64": "not base64!"}],
        }));
        let message = check(WritebackBody::Conduct, &body, &known(), "9992001")
            .unwrap_err()
            .message();
        for expected in [
            "Conducts[0].TypeId: 5 is not a conduct type",
            "Conducts[0].StatusId: is required",
            "Participants[0].ConductId: 2 is not the Id of a conduct",
            "conduct 1 has no participant",
            "Staff[0].StaffId: `T9` is not a member of staff",
            "MediaFiles[0].MediaBase64: is not base64",
        ] {
            assert!(message.contains(expected), "{expected} not in {message}");
        }
    }

    #[test]
    fn a_valid_achievement_passes() {
        let body = object_of(json!({
            "Conducts": [{"Id": 1, "IncidentType": "Ach", "RecordedById": 1,
                          "EntryDate": "2026-11-23", "TypeId": "4"}],
            "Participants": [{"ConductId": 1, "Points": 10, "StudentId": "S2"}],
        }));
        let mut known = known();
        known.staff.insert("1".into());
        let checked = check(WritebackBody::Conduct, &body, &known, "9992001").unwrap();
        assert_eq!(checked.payload["Conducts"][0]["TypeId"], 4);
        assert_eq!(checked.payload["Participants"][0]["StudentId"], "S2");
        assert!(looks_like_base64("iVBORw0KGgo="));
    }

    #[test]
    fn a_detention_is_rewritten_with_canonical_names_and_must_end_after_it_starts() {
        let body = object_of(json!({"detentions": [
            {"studentid": 1, "date": "2026-11-23", "starttime": "15:30", "endtime": "16:00",
             "setbyid": "T1", "location": "Room 4"}
        ]}));
        let checked = check(WritebackBody::Detention, &body, &known(), "9992001");
        assert!(checked.is_err(), "pupil 1 is not known");
        let body = object_of(json!({"detentions": [
            {"studentid": "S1", "date": "2026-11-23", "starttime": "15:30", "endtime": "16:00",
             "setbyid": "T1", "location": "Room 4"}
        ]}));
        let checked = check(WritebackBody::Detention, &body, &known(), "9992001").unwrap();
        let expected = json!({"Id": null, "StudentId": "S1", "Date": "2026-11-23",
            "StartTime": "15:30", "EndTime": "16:00", "SetById": "T1", "SupervisorId": null,
            "Location": "Room 4", "Reason": null, "ConductId": null});
        assert_eq!(checked.payload["Detentions"][0], expected);
        let body = object_of(json!({"Detentions": [
            {"StudentId": "S1", "Date": "2026-11-23", "StartTime": "16:00", "EndTime": "16:00",
             "SetById": "T1"}
        ]}));
        let message = check(WritebackBody::Detention, &body, &known(), "9992001")
            .unwrap_err()
            .message();
        assert!(
            message.contains("Detentions[0].EndTime: is not after StartTime"),
            "{message}"
        );
    }

    #[test]
    fn a_seating_plan_gives_each_pupil_and_each_desk_once() {
        let body = object_of(json!({"GroupId": "7A", "Seats": [
            {"StudentId": "S1", "SeatRow": 1, "SeatColumn": 1},
            {"StudentId": "S1", "SeatRow": 1, "SeatColumn": 2},
            {"StudentId": "S2", "SeatRow": 1, "SeatColumn": 2},
            {"StudentId": "S2", "SeatRow": 101, "SeatColumn": 1, "Extra": 1},
        ]}));
        let message = check(WritebackBody::SeatingPlan, &body, &known(), "9992001")
            .unwrap_err()
            .message();
        for expected in [
            "Seats[1].StudentId: is given a seat twice",
            "Seats[2]: row 1, column 2 is given to two pupils",
            "Seats[3].SeatRow: 101 is out of range",
            "Seats[3].Extra: is not a field rollcall knows here; the fields are StudentId, \
             SeatRow, SeatColumn",
        ] {
            assert!(message.contains(expected), "{expected} not in {message}");
        }
    }

    /// A valid body of each kind naming someone in every field `person_fields` lists.
    fn valid_bodies() -> [(WritebackBody, Value); 4] {
        [
            (
                WritebackBody::Attendance,
                json!({"Marks": [{"StudentId": "S1", "MarkType": "S", "Date": "2026-11-23",
                                  "Session": "AM", "Mark": "/"}]}),
            ),
            (
                WritebackBody::Conduct,
                json!({
                    "Conducts": [{"Id": 1, "IncidentType": "Ach", "RecordedById": "T1",
                                  "EntryDate": "2026-11-23", "TypeId": 4}],
                    "Participants": [{"ConductId": 1, "Points": 10, "StudentId": "S2"}],
                    "Staff": [{"ConductId": 1, "StaffId": "T1"}],
                }),
            ),
            (
                WritebackBody::SeatingPlan,
                json!({"GroupId": "7A", "Seats": [{"StudentId": "S1", "SeatRow": 1,
                                                   "SeatColumn": 1}]}),
            ),
            (
                WritebackBody::Detention,
                json!({"Detentions": [{"StudentId": "S1", "Date": "2026-11-23",
                                       "StartTime": "15:30", "EndTime": "16:00",
                                       "SetById": "T1", "SupervisorId": "T1"}]}),
            ),
        ]
    }

    #[test]
    fn a_person_refused_after_an_entry_that_is_not_an_object_is_named_at_its_own_place() {
        let body = object_of(json!({"Marks": [
            5,
            {"StudentId": "S9", "MarkType": "S", "Date": "2026-11-23", "Session": "AM", "Mark": "/"},
        ]}));
        let message = check(WritebackBody::Attendance, &body, &known(), "9992001")
            .unwrap_err()
            .message();
        assert!(message.contains("Marks[0]: must be an object"), "{message}");
        assert!(
            message.contains("Marks[1].StudentId: `S9` is not a pupil"),
            "{message}"
        );
    }

    #[test]
    fn every_person_field_of_every_kind_is_checked_where_the_hand_out_checks_it() {
        let people = known()
            .students
            .union(&known().staff)
            .cloned()
            .collect::<Vec<_>>();
        for (kind, body) in valid_bodies() {
            let checked = check(kind, &object_of(body.clone()), &known(), "9992001");
            assert!(checked.is_ok(), "{kind:?}: {:?}", checked.err());
            // Every field of the sample that names a pupil or member of staff is listed.
            for (list, records) in body.as_object().unwrap() {
                for (field, value) in records
                    .as_array()
                    .into_iter()
                    .flatten()
                    .flat_map(|r| r.as_object().unwrap().iter())
                {
                    let names_someone = value
                        .as_str()
                        .is_some_and(|v| people.iter().any(|p| p == v));
                    let listed = kind
                        .person_fields()
                        .iter()
                        .any(|f| f.list == list && f.field == field);
                    assert!(
                        !names_someone || listed,
                        "{kind:?}: {list}.{field} names someone but is not a person field"
                    );
                }
            }
            for field in kind.person_fields() {
                let mut wrong = body.clone();
                let record = &mut wrong[field.list][0];
                assert!(
                    record.get(field.field).is_some(),
                    "the sample {kind:?} body names no one in {}.{}",
                    field.list,
                    field.field
                );
                record[field.field] = json!("X9");
                let message = check(kind, &object_of(wrong.clone()), &known(), "9992001")
                    .unwrap_err()
                    .message();
                let place = format!("{}[0].{}: `X9` is not", field.list, field.field);
                assert!(message.contains(&place), "{place} not in {message}");

                let unnamed = Known {
                    name_students: false,
                    name_staff: false,
                    ..known()
                };
                let message = check(kind, &object_of(wrong), &unnamed, "9992001")
                    .unwrap_err()
                    .message();
                assert!(!message.contains("X9"), "{message}");
                assert!(message.contains("one or more are not"), "{message}");
            }
        }
    }
}
