//! Checking a write-back before it is queued, against what the school has uploaded: pupils and
//! staff that exist, mark codes and conduct types the school uses, one date per attendance
//! request. A valid body is rewritten with the canonical key names the agent reads.

use std::collections::BTreeSet;

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

/// A checked request: the payload for the agent and how many records it holds.
#[derive(Debug)]
pub(crate) struct Checked {
    pub payload: Value,
    pub records: u64,
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
pub(crate) fn attendance(
    body: &Map<String, Value>,
    known: &Known,
    estab: &str,
) -> Result<Checked, Problems> {
    let mut problems = Problems::default();
    let body = Record::new(String::new(), body);
    body.once_each(&mut problems);
    let marks = records(&body, "Marks", true, &mut problems);
    too_many("Marks", marks.len(), &mut problems);
    let mut dates = BTreeSet::new();
    let mut out = Vec::with_capacity(marks.len());
    for mark in &marks {
        let student = mark.required_text("StudentId", &mut problems);
        check_member(
            (&known.students, known.name_students),
            "a pupil",
            estab,
            mark,
            "StudentId",
            &student,
            &mut problems,
        );
        let mark_type = mark.required_choice("MarkType", &["S", "L"], &mut problems);
        let date = mark.required_date("Date", &mut problems);
        dates.extend(date.clone());
        let (session, instance) = match mark_type {
            Some("S") => (
                mark.required_choice("Session", &["AM", "PM"], &mut problems),
                None,
            ),
            Some(_) => (None, mark.required_text("InstanceId", &mut problems)),
            None => (None, None),
        };
        let code = mark.required_text("Mark", &mut problems);
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
                &mut problems,
            );
        }
        let minutes = mark.integer("Mins", &mut problems);
        if minutes.is_some_and(|m| m < 0) {
            problems.add(&format!("{}.Mins", mark.place), "must not be negative");
        }
        let notes = mark.note("Notes", MAX_NOTE, &mut problems);
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
    let callback = callback(&body, &mut problems);
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(Checked {
        records: out.len() as u64,
        payload: json!({ "Marks": out, "Callback": callback }),
    })
}

/// `Conducts` (achievement or behaviour events) with their `Participants` (pupils), and
/// optionally `Staff` and `MediaFiles`, linked by `ConductId`.
pub(crate) fn conduct(
    body: &Map<String, Value>,
    known: &Known,
    estab: &str,
) -> Result<Checked, Problems> {
    let mut problems = Problems::default();
    let body = Record::new(String::new(), body);
    body.once_each(&mut problems);
    let conducts = records(&body, "Conducts", true, &mut problems);
    too_many("Conducts", conducts.len(), &mut problems);
    let mut ids = BTreeSet::new();
    let mut out_conducts = Vec::with_capacity(conducts.len());
    for conduct in &conducts {
        let id = conduct.required_integer("Id", &mut problems);
        if let Some(id) = id
            && !ids.insert(id)
        {
            problems.add(
                &format!("{}.Id", conduct.place),
                format!("{id} is used by two conducts"),
            );
        }
        let kind = conduct.required_choice("IncidentType", &["Ach", "Beh"], &mut problems);
        let recorded_by = conduct.required_text("RecordedById", &mut problems);
        check_member(
            (&known.staff, known.name_staff),
            "a member of staff",
            estab,
            conduct,
            "RecordedById",
            &recorded_by,
            &mut problems,
        );
        let type_id = conduct.required_integer("TypeId", &mut problems);
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
                &mut problems,
            );
        }
        let status = if kind == Some("Beh") {
            conduct.required_integer("StatusId", &mut problems)
        } else {
            conduct.integer("StatusId", &mut problems)
        };
        let mut record = json!({
            "Id": id, "IncidentType": kind, "RecordedById": recorded_by,
            "EntryDate": conduct.required_date("EntryDate", &mut problems),
            "TypeId": type_id, "StatusId": status,
            "Note": conduct.note("Note", MAX_NOTE, &mut problems),
        });
        for optional in ["ActivityId", "BullTypeId", "LocationId", "EntryTimeId"] {
            record[optional] = json!(conduct.integer(optional, &mut problems));
        }
        out_conducts.push(record);
    }

    let participants = records(&body, "Participants", true, &mut problems);
    too_many("Participants", participants.len(), &mut problems);
    let mut involved = BTreeSet::new();
    let mut out_participants = Vec::with_capacity(participants.len());
    for participant in &participants {
        let conduct_id = conduct_ref(participant, &ids, &mut problems);
        involved.extend(conduct_id);
        let student = participant.required_text("StudentId", &mut problems);
        check_member(
            (&known.students, known.name_students),
            "a pupil",
            estab,
            participant,
            "StudentId",
            &student,
            &mut problems,
        );
        out_participants.push(json!({
            "ConductId": conduct_id, "StudentId": student,
            "Points": participant.required_integer("Points", &mut problems),
            "RoleId": participant.integer("RoleId", &mut problems),
            "OutcomeId": participant.integer("OutcomeId", &mut problems),
        }));
    }
    for missing in ids.difference(&involved) {
        problems.add(
            "Participants",
            format!("conduct {missing} has no participant; give at least one pupil for it"),
        );
    }

    let staff = records(&body, "Staff", false, &mut problems);
    let mut out_staff = Vec::with_capacity(staff.len());
    for member in &staff {
        let staff_id = member.required_text("StaffId", &mut problems);
        check_member(
            (&known.staff, known.name_staff),
            "a member of staff",
            estab,
            member,
            "StaffId",
            &staff_id,
            &mut problems,
        );
        out_staff.push(json!({
            "ConductId": conduct_ref(member, &ids, &mut problems), "StaffId": staff_id,
            "StaffRoleId": member.integer("StaffRoleId", &mut problems),
        }));
    }

    let media = records(&body, "MediaFiles", false, &mut problems);
    let mut out_media = Vec::with_capacity(media.len());
    for file in &media {
        let content = file.required_text("MediaBase64", &mut problems);
        if content.as_deref().is_some_and(|c| !looks_like_base64(c)) {
            problems.add(
                &format!("{}.MediaBase64", file.place),
                "is not base64 (A-Z, a-z, 0-9, +, / and = padding, in groups of four)",
            );
        }
        out_media.push(json!({
            "Id": file.required_integer("Id", &mut problems),
            "ConductId": conduct_ref(file, &ids, &mut problems),
            "MediaDateTime": file.required_text("MediaDateTime", &mut problems),
            "Description": file.required_note("Description", MAX_NOTE, &mut problems),
            "MediaType": file.required_text("MediaType", &mut problems),
            "FileName": file.required_text("FileName", &mut problems),
            "MediaBase64": content,
        }));
    }
    let callback = callback(&body, &mut problems);
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(Checked {
        records: out_conducts.len() as u64,
        payload: json!({
            "Conducts": out_conducts, "Participants": out_participants, "Staff": out_staff,
            "MediaFiles": out_media, "Callback": callback,
        }),
    })
}

/// The most rows or columns of desks a seating plan may have.
pub(crate) const MAX_SEAT: i64 = 100;
/// The longest group, room or location name.
const MAX_NAME: usize = 100;

/// A class's seating plan: `GroupId`, optionally `RoomId`, and its `Seats`, each a pupil at a
/// `SeatRow` and `SeatColumn` (from 1), every pupil and every desk at most once.
pub(crate) fn seating_plan(
    body: &Map<String, Value>,
    known: &Known,
    estab: &str,
) -> Result<Checked, Problems> {
    let mut problems = Problems::default();
    let body = Record::new(String::new(), body);
    body.once_each(&mut problems);
    body.only(&["GroupId", "RoomId", "Seats", "Callback"], &mut problems);
    let group = body.required_note("GroupId", MAX_NAME, &mut problems);
    let room = body.note("RoomId", MAX_NAME, &mut problems);
    let seats = records(&body, "Seats", true, &mut problems);
    too_many("Seats", seats.len(), &mut problems);
    let (mut pupils, mut desks) = (BTreeSet::new(), BTreeSet::new());
    let mut out = Vec::with_capacity(seats.len());
    for seat in &seats {
        seat.only(&["StudentId", "SeatRow", "SeatColumn"], &mut problems);
        let student = seat.required_text("StudentId", &mut problems);
        check_member(
            (&known.students, known.name_students),
            "a pupil",
            estab,
            seat,
            "StudentId",
            &student,
            &mut problems,
        );
        if let Some(student) = &student
            && !pupils.insert(student.clone())
        {
            problems.add(
                &format!("{}.StudentId", seat.place),
                "is given a seat twice; give each pupil one seat",
            );
        }
        let row = seat_number(seat, "SeatRow", &mut problems);
        let column = seat_number(seat, "SeatColumn", &mut problems);
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
    let callback = callback(&body, &mut problems);
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(Checked {
        records: out.len() as u64,
        payload: json!({ "GroupId": group, "RoomId": room, "Seats": out, "Callback": callback }),
    })
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
pub(crate) fn detention(
    body: &Map<String, Value>,
    known: &Known,
    estab: &str,
) -> Result<Checked, Problems> {
    let mut problems = Problems::default();
    let body = Record::new(String::new(), body);
    body.once_each(&mut problems);
    body.only(&["Detentions", "Callback"], &mut problems);
    let detentions = records(&body, "Detentions", true, &mut problems);
    too_many("Detentions", detentions.len(), &mut problems);
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
            &mut problems,
        );
        let student = detention.required_text("StudentId", &mut problems);
        check_member(
            (&known.students, known.name_students),
            "a pupil",
            estab,
            detention,
            "StudentId",
            &student,
            &mut problems,
        );
        let staff = |field: &str, required: bool, problems: &mut Problems| {
            let id = if required {
                detention.required_text(field, problems)
            } else {
                detention.text(field, problems)
            };
            check_member(
                (&known.staff, known.name_staff),
                "a member of staff",
                estab,
                detention,
                field,
                &id,
                problems,
            );
            id
        };
        let set_by = staff("SetById", true, &mut problems);
        let supervisor = staff("SupervisorId", false, &mut problems);
        let start = detention.required_time("StartTime", &mut problems);
        let end = detention.required_time("EndTime", &mut problems);
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
            "Id": detention.integer("Id", &mut problems),
            "StudentId": student,
            "Date": detention.required_date("Date", &mut problems),
            "StartTime": time(start), "EndTime": time(end),
            "SetById": set_by, "SupervisorId": supervisor,
            "Location": detention.note("Location", MAX_NAME, &mut problems),
            "Reason": detention.note("Reason", MAX_NOTE, &mut problems),
            "ConductId": detention.integer("ConductId", &mut problems),
        }));
    }
    let callback = callback(&body, &mut problems);
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(Checked {
        records: out.len() as u64,
        payload: json!({ "Detentions": out, "Callback": callback }),
    })
}

/// Refuses an id that is not among `people` (the school's pupils or staff, named `what`).
/// Where the consent does not release who they are (`named` false), the refusal says only
/// that some id was wrong, never which, so it cannot be used to test ids.
fn check_member(
    (people, named): (&BTreeSet<String>, bool),
    what: &str,
    estab: &str,
    record: &Record<'_>,
    field: &str,
    id: &Option<String>,
    problems: &mut Problems,
) {
    let Some(id) = id else { return };
    if people.contains(id) {
        return;
    }
    refuse_unknown(
        named,
        (&format!("{}.{field}", record.place), field),
        format!("`{id}` is not {what} of school {estab}"),
        format!(
            "one or more are not {what} of school {estab} you may write about; check them \
             against your own records"
        ),
        problems,
    );
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
        let message = attendance(&body, &known, "9992001").unwrap_err().message();
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
        let checked = attendance(&body, &known(), "9992001").unwrap();
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
        ]}));
        let message = attendance(&body, &known(), "9992001")
            .unwrap_err()
            .message();
        for expected in [
            "Marks[0].StudentId: `S9` is not a pupil",
            "Marks[0].Session: `XX` is not one of AM, PM",
            "Marks[0].Mark: `Q` is not an attendance mark",
            "Marks[1].InstanceId: is required",
            "Marks[1].Notes: has 501 characters",
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
        let message = conduct(&body, &known(), "9992001").unwrap_err().message();
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
        let checked = conduct(&body, &known, "9992001").unwrap();
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
        let checked = detention(&body, &known(), "9992001");
        assert!(checked.is_err(), "pupil 1 is not known");
        let body = object_of(json!({"detentions": [
            {"studentid": "S1", "date": "2026-11-23", "starttime": "15:30", "endtime": "16:00",
             "setbyid": "T1", "location": "Room 4"}
        ]}));
        let checked = detention(&body, &known(), "9992001").unwrap();
        let expected = json!({"Id": null, "StudentId": "S1", "Date": "2026-11-23",
            "StartTime": "15:30", "EndTime": "16:00", "SetById": "T1", "SupervisorId": null,
            "Location": "Room 4", "Reason": null, "ConductId": null});
        assert_eq!(checked.payload["Detentions"][0], expected);
        let body = object_of(json!({"Detentions": [
            {"StudentId": "S1", "Date": "2026-11-23", "StartTime": "16:00", "EndTime": "16:00",
             "SetById": "T1"}
        ]}));
        let message = detention(&body, &known(), "9992001").unwrap_err().message();
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
        let message = seating_plan(&body, &known(), "9992001")
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
}
