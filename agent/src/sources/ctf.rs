//! Reads a DfE Common Transfer File (CTF, any version from 19.0) into XoD's `Students`,
//! `Contacts` and `StudentContacts` rows.
//!
//! The file is read as a stream of XML events (quick-xml), one pupil at a time: what is held
//! besides the rows made so far is the open elements, the pupil being read and, to merge
//! parents repeated under siblings, each contact's few identifying values. Field names and
//! values follow the CTF → XoD table of the CTF reference (`shared/reference/ctf/README.md`):
//! text is trimmed, ids are strings, flags are `0`/`1`, dates `yyyy-mm-dd`, a pupil's contacts
//! are sorted by `Order`, `AddressAsPupil` copies the pupil's address, relationship codes
//! become text (`PAM` → `Mother`). Elements this reader does not know (a vendor's `SuppInfo`,
//! a later version's additions) are skipped with one warning per element path; parts of the
//! CTF that XoD's three sets do not carry (attendance, assessments, school history, ...) are
//! skipped silently. What cannot be read safely is an error naming the file, the element
//! (`CTfile/CTFpupilData/Pupil[12]/DOB`), the line, and what to fix.
//!
//! # Ids
//!
//! A CTF carries no MIS ids, so the ids are made here, from the file alone, the same way on
//! every run.
//!
//! * **`Students.Id`** is the first 64 bits, in hex, of SHA-256 over a fixed label and the
//!   pupil's UPN (trimmed, upper case): see [`student_id`]. Not the UPN itself: `Id` is
//!   released with a pupil's basic details and in every set that links to a pupil, while the
//!   UPN is released only to a partner granted the `UPN` scope. The hash is not a secret
//!   (anyone who can list a school's candidate UPNs can compute it); it keeps the UPN out of
//!   the basic scope. A UPN is unique per pupil (two pupils with one UPN are refused), so two
//!   pupils could share an id only if two UPNs collided in 64 bits; that is checked, and
//!   refused rather than merged. The id changes if the pupil's UPN does (a temporary UPN
//!   replaced by a permanent one).
//! * **`Contacts.Id`**: each `Contact` element is one *occurrence* of a person, keyed by the
//!   pupil's UPN, the contact's surname and forename (trimmed, case and spacing folded) and
//!   relationship code (plus its `Order`, then its place in the file, in the rare case that one
//!   pupil lists two contacts with the same key). Occurrences under *different* pupils are
//!   merged into one contact only on strong evidence: the same surname, forename and
//!   relationship **and** a shared phone number (digits compared), e-mail address (case
//!   folded) or address (the address block's letters and digits, case folded). A shared
//!   name alone never merges: different parents with equal names (which SIMS has merged,
//!   see the reference) stay different contacts. Two occurrences under the *same* pupil are
//!   never merged, not even through a chain of merges. The contact's id is made like a
//!   pupil's from the smallest occurrence key among its occurrences, so it depends only on
//!   the file's contents, not on the order of pupils in it; it stays the same from file to
//!   file while that pupil (its smallest-UPN pupil) is in the file and the contact's name and
//!   relationship stay the same. Occurrence keys are unique, so different contacts get
//!   different keys; a 64-bit collision of two keys is checked and refused.
//! * **`StudentContacts.Id`** is `{StudentId}.{ContactId}`; `Priority` is the contact's
//!   `Order`, `ParResp` its `Responsibility` (`true` → 1).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::{self, BufRead, Read};
use std::path::Path;

use quick_xml::Reader;
use quick_xml::events::Event;
use serde_json::{Map, Value, json};
use time::Date;

/// One XoD row: field name → value.
pub type Row = Map<String, Value>;

/// The oldest CTF version read.
pub const OLDEST_VERSION: u32 = 19;

/// What a CTF holds for XoD.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CtfExtract {
    /// `Header/CTFversion` as written, e.g. `25.0`.
    pub version: String,
    /// `Header/SourceSchool`: LEA, Estab and SchoolName (empty when absent).
    pub source_school: (String, String, String),
    pub students: Vec<Row>,
    pub contacts: Vec<Row>,
    pub student_contacts: Vec<Row>,
    /// What was skipped or passed through unchecked, each once, with where it was first seen.
    pub warnings: Vec<String>,
}

impl CtfExtract {
    /// The agent's upload body: `{"resultSets": {"Students": [...], "Contacts": [...],
    /// "StudentContacts": [...]}}`.
    pub fn upload_body(&self) -> Value {
        json!({ "resultSets": {
            "Students": self.students,
            "Contacts": self.contacts,
            "StudentContacts": self.student_contacts,
        }})
    }
}

/// What went wrong, for the kind of fix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CtfErrorKind {
    /// The file could not be read.
    Unreadable,
    /// The XML is not well formed.
    Malformed,
    /// Well-formed XML, but not a CTF.
    NotCtf,
    /// `Header/CTFversion` missing, unreadable or older than [`OLDEST_VERSION`].
    Version,
    MissingUpn,
    DuplicateUpn,
    BadDate,
    /// A flag, number or other value that cannot be read.
    BadValue,
    /// Two different pupils or contacts would get one id (a 64-bit hash collision).
    IdCollision,
}

/// A CTF that cannot be read: the file, the element, the line where known, and what to fix.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{file}{}: {element}: {problem}. {fix}", line_suffix(.line))]
pub struct CtfError {
    pub kind: CtfErrorKind,
    pub file: String,
    /// The element's path, e.g. `CTfile/CTFpupilData/Pupil[12]/DOB` (empty before the root).
    pub element: String,
    /// 1-based line of the element (or of the markup the XML broke at).
    pub line: Option<u64>,
    pub problem: String,
    pub fix: String,
}

fn line_suffix(line: &Option<u64>) -> String {
    line.map(|l| format!(":{l}")).unwrap_or_default()
}

/// Reads a CTF from `input`; `path_for_messages` names it in errors and warnings. Whether a
/// pupil is eligible for free school meals now is judged as of today (UTC).
pub fn read_ctf(path_for_messages: &Path, input: impl BufRead) -> Result<CtfExtract, CtfError> {
    read_ctf_as_of(
        path_for_messages,
        input,
        time::OffsetDateTime::now_utc().date(),
    )
}

/// [`read_ctf`] with free school meal eligibility judged as of `today`.
pub fn read_ctf_as_of(
    path_for_messages: &Path,
    input: impl BufRead,
    today: Date,
) -> Result<CtfExtract, CtfError> {
    let mut parser = Parser::new(path_for_messages.display().to_string(), today);
    let mut reader = Reader::from_reader(Lines {
        inner: input,
        newlines: 0,
    });
    // End tags are matched here, to name the element left open and where it was opened.
    reader.config_mut().check_end_names = false;
    let mut buf = Vec::new();
    loop {
        let line = reader.get_ref().newlines + 1;
        let event = match reader.read_event_into(&mut buf) {
            Ok(event) => event,
            Err(quick_xml::Error::Io(e)) => {
                return Err(parser.error(
                    CtfErrorKind::Unreadable,
                    Some(line),
                    format!("the file could not be read: {e}"),
                    "Check that the file is there and readable, and copy it again if it was cut short",
                ));
            }
            Err(e) => return Err(parser.malformed(line, e.to_string())),
        };
        match event {
            Event::Start(e) => {
                let name = parser.name(e.local_name().as_ref(), line)?;
                parser.start(name, line)?;
            }
            Event::Empty(e) => {
                let name = parser.name(e.local_name().as_ref(), line)?;
                parser.start(name.clone(), line)?;
                parser.end(&name, line)?;
            }
            Event::End(e) => {
                let name = parser.name(e.local_name().as_ref(), line)?;
                parser.end(&name, line)?;
            }
            Event::Text(t) => {
                if parser.wants_text() {
                    let text = t
                        .xml10_content()
                        .map_err(|e| parser.malformed(line, e.to_string()))?;
                    parser.text(&text);
                }
            }
            Event::CData(t) => {
                if parser.wants_text() {
                    let text = t
                        .xml10_content()
                        .map_err(|e| parser.malformed(line, e.to_string()))?;
                    parser.text(&text);
                }
            }
            Event::GeneralRef(r) => {
                let resolved = match r.resolve_char_ref() {
                    Ok(Some(c)) => Some(c.to_string()),
                    Ok(None) => r.decode().ok().and_then(|name| {
                        quick_xml::escape::resolve_predefined_entity(&name).map(str::to_owned)
                    }),
                    Err(_) => None,
                };
                let Some(resolved) = resolved else {
                    let name = String::from_utf8_lossy(&r).into_owned();
                    return Err(parser.malformed(
                        line,
                        format!("`&{name};` is not an XML character or entity reference"),
                    ));
                };
                if parser.wants_text() {
                    parser.text(&resolved);
                }
            }
            Event::Eof => break,
            Event::Comment(_) | Event::Decl(_) | Event::PI(_) | Event::DocType(_) => {}
        }
        buf.clear();
    }
    parser.finish()
}

/// Counts the lines quick-xml has consumed, for messages. quick-xml reads through
/// `fill_buf`/`consume` only, and a consumed range is still in the inner buffer when
/// `consume` is called, so it is counted there without reading anything.
struct Lines<R> {
    inner: R,
    newlines: u64,
}

fn count_newlines(bytes: &[u8]) -> u64 {
    bytes.iter().filter(|&&b| b == b'\n').count() as u64
}

impl<R: BufRead> Read for Lines<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.newlines += count_newlines(&buf[..n]);
        Ok(n)
    }
}

impl<R: BufRead> BufRead for Lines<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        self.inner.fill_buf()
    }
    fn consume(&mut self, amount: usize) {
        if let Ok(buffered) = self.inner.fill_buf() {
            self.newlines += count_newlines(&buffered[..amount.min(buffered.len())]);
        }
        self.inner.consume(amount);
    }
}

/// Where an element sits in a CTF, as far as this reader cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ctx {
    Document,
    Root,
    Header,
    School,
    PupilData,
    Pupil,
    BasicDetails,
    Languages,
    LangType,
    Fsm,
    FsmInstance,
    LookedAfter,
    SenHistory,
    Sen,
    Address,
    Bs7666,
    AddressLines,
    Phones,
    Phone,
    Contacts,
    Contact,
    Leaf(LeafKind),
    /// Known, but not carried into XoD: skipped silently with everything inside.
    Skip,
    /// Not known: skipped with everything inside, with a warning.
    Unknown,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LeafKind {
    Text,
    Date,
    Flag,
    Number,
}

impl Ctx {
    /// An element whose leaves are kept together: one header, pupil, contact, phone, ...
    fn is_record(self) -> bool {
        matches!(
            self,
            Ctx::Header
                | Ctx::Pupil
                | Ctx::Contact
                | Ctx::Phone
                | Ctx::LangType
                | Ctx::FsmInstance
                | Ctx::Sen
        )
    }
    /// Elements that repeat, shown with their 1-based index in paths.
    fn repeats(self) -> bool {
        matches!(
            self,
            Ctx::Pupil | Ctx::Contact | Ctx::Phone | Ctx::LangType | Ctx::FsmInstance | Ctx::Sen
        )
    }
}

/// The structure of a CTF (see the reference), element by element.
fn child(parent: Ctx, name: &str) -> Ctx {
    use Ctx::*;
    use LeafKind::{Date, Flag, Number, Text};
    match (parent, name) {
        (Skip | Unknown, _) => Skip,
        (Document, "CTfile") => Root,
        (Root, "Header") => Header,
        (Root, "CTFpupilData") => PupilData,
        (
            Header,
            "DocumentName" | "CTFversion" | "DateTime" | "DocumentQualifier" | "DataQualifier"
            | "DataDescriptor" | "SupplierID",
        ) => Leaf(Text),
        (Header, "SourceSchool" | "DestSchool") => School,
        (School, "LEA" | "Estab" | "URN" | "SchoolName" | "AcademicYear") => Leaf(Text),
        (PupilData, "Pupil") => Pupil,
        (
            Pupil,
            "UPN"
            | "UniqueLearnerNumber"
            | "UCI"
            | "Surname"
            | "Forename"
            | "Gender"
            | "Sex"
            | "Email",
        ) => Leaf(Text),
        (Pupil, "DOB") => Leaf(Date),
        (Pupil, "BasicDetails") => BasicDetails,
        (
            BasicDetails,
            "FormerUPN" | "PreferredSurname" | "PreferredForename" | "FormerSurname"
            | "FormerForename" | "MiddleNames" | "NCyearActual" | "Ethnicity" | "EthnicitySource"
            | "ServiceChild" | "EnrolStatus",
        ) => Leaf(Text),
        (BasicDetails, "MedicalFlag") => Leaf(Flag),
        (BasicDetails, "Languages") => Languages,
        (BasicDetails, "Disabilities") => Skip,
        (Languages, "Type") => LangType,
        (LangType, "LanguageType" | "Language") => Leaf(Text),
        (Pupil, "FSMhistory") => Fsm,
        (Fsm, "FSMreviewDate") => Leaf(Date),
        (Fsm, "FSMinstance") => FsmInstance,
        (FsmInstance, "FSMstartDate" | "FSMendDate" | "FSMEligibilityVerificationDate") => {
            Leaf(Date)
        }
        (FsmInstance, "UKcountry" | "FSMCategory") => Leaf(Text),
        (Pupil, "LookedAfter") => LookedAfter,
        (LookedAfter, "InCare") => Leaf(Flag),
        (LookedAfter, "CareAuthority") => Leaf(Text),
        (Pupil, "SENhistory") => SenHistory,
        (SenHistory, "SEN") => Sen,
        (SenHistory, "SENneeds") => Skip,
        (Sen, "StartDate" | "EndDate") => Leaf(Date),
        (Sen, "SENprovision") => Leaf(Text),
        (Pupil | Contact, "Address") => Address,
        (Address, "AddressAsPupil") => Leaf(Flag),
        (Address, "BS7666Address") => Bs7666,
        (Address, "AddressLines") => AddressLines,
        (Address, "County" | "PostCode" | "Zip" | "ZIP" | "Country" | "Easting" | "Northing") => {
            Leaf(Text)
        }
        (
            Bs7666,
            "SAON"
            | "PAON"
            | "Street"
            | "Locality"
            | "Town"
            | "AdministrativeArea"
            | "PostTown"
            | "UniquePropertyReferenceNumber",
        ) => Leaf(Text),
        (
            AddressLines,
            "AddressLine1" | "AddressLine2" | "AddressLine3" | "AddressLine4" | "AddressLine5",
        ) => Leaf(Text),
        (Pupil | Contact, "Phones") => Phones,
        (Phones, "Phone") => Phone,
        (Phone, "TelephoneType" | "PhoneNo") => Leaf(Text),
        (Pupil, "NAWdetails" | "Attendance" | "StageAssessments" | "SchoolHistory") => Skip,
        (Pupil, "Contacts") => Contacts,
        (Contacts, "Contact") => Contact,
        (Contact, "Order") => Leaf(Number),
        (Contact, "Responsibility") => Leaf(Flag),
        (
            Contact,
            "Title" | "Surname" | "Forename" | "MiddleNames" | "Gender" | "Sex" | "Relationship"
            | "Email",
        ) => Leaf(Text),
        _ => Unknown,
    }
}

/// Leaves of one record, by path below it (`Address/BS7666Address/PAON`); the first wins.
type Rec = HashMap<String, String>;

fn get<'r>(rec: &'r Rec, key: &str) -> Option<&'r str> {
    rec.get(key).map(String::as_str).filter(|v| !v.is_empty())
}

struct Frame {
    name: String,
    index: u32,
    line: u64,
    ctx: Ctx,
    text: String,
    /// How many children of each name this element has had, for indexes.
    children: Vec<(String, u32)>,
}

impl Frame {
    fn push_display(&self, out: &mut String) {
        out.push_str(&self.name);
        if self.ctx.repeats() {
            let _ = write!(out, "[{}]", self.index);
        }
    }
}

#[derive(Default)]
struct ContactBuf {
    index: u32,
    line: u64,
    fields: Rec,
    phones: Vec<Rec>,
}

#[derive(Default)]
struct PupilBuf {
    index: u32,
    line: u64,
    path: String,
    fields: Rec,
    languages: Vec<Rec>,
    fsm: Option<Vec<Rec>>,
    sen: Option<Vec<Rec>>,
    phones: Vec<Rec>,
    contacts: Vec<ContactBuf>,
}

/// One `Contact` element: one person as one pupil lists them.
struct Occurrence {
    pupil: usize,
    student_id: String,
    /// Unique in the file: UPN, folded names, relationship (and order, place if repeated).
    key: String,
    /// Folded surname, forename and relationship: occurrences merge only within one.
    name_key: String,
    /// Folded phone numbers, e-mail and address.
    evidence: Vec<String>,
    relationship: Option<String>,
    order: Option<u32>,
    responsibility: bool,
    /// The contact's fields, without `Id`.
    row: Row,
}

/// Warnings, each once, with how often it was seen.
#[derive(Default)]
struct Notes {
    notes: Vec<(String, u32)>,
    index: HashMap<String, usize>,
}

impl Notes {
    fn add(&mut self, key: String, message: impl FnOnce() -> String) {
        match self.index.get(&key) {
            Some(&i) => self.notes[i].1 += 1,
            None => {
                self.index.insert(key, self.notes.len());
                self.notes.push((message(), 1));
            }
        }
    }
    fn into_warnings(self) -> Vec<String> {
        self.notes
            .into_iter()
            .map(|(message, count)| match count {
                1 => message,
                n => format!("{message} ({n} times in the file)"),
            })
            .collect()
    }
}

struct Parser {
    file: String,
    today: String,
    stack: Vec<Frame>,
    root_closed: bool,
    header: Rec,
    version: Option<String>,
    pupil: Option<PupilBuf>,
    in_contact: bool,
    students: Vec<Row>,
    occurrences: Vec<Occurrence>,
    /// UPN → (pupil's index, line), for duplicates.
    upns: HashMap<String, (u32, u64)>,
    /// Students.Id → UPN, for collisions.
    student_ids: HashMap<String, String>,
    notes: Notes,
}

impl Parser {
    fn new(file: String, today: Date) -> Self {
        Self {
            file,
            today: iso_date(today),
            stack: Vec::new(),
            root_closed: false,
            header: Rec::new(),
            version: None,
            pupil: None,
            in_contact: false,
            students: Vec::new(),
            occurrences: Vec::new(),
            upns: HashMap::new(),
            student_ids: HashMap::new(),
            notes: Notes::default(),
        }
    }

    fn path(&self) -> String {
        let mut out = String::new();
        for (i, frame) in self.stack.iter().enumerate() {
            if i > 0 {
                out.push('/');
            }
            frame.push_display(&mut out);
        }
        out
    }

    /// The element path without indexes: one warning per path.
    fn plain_path(&self) -> String {
        let names: Vec<&str> = self.stack.iter().map(|f| f.name.as_str()).collect();
        names.join("/")
    }

    fn error(
        &self,
        kind: CtfErrorKind,
        line: Option<u64>,
        problem: impl Into<String>,
        fix: impl Into<String>,
    ) -> CtfError {
        self.error_at(kind, self.path(), line, problem, fix)
    }

    fn error_at(
        &self,
        kind: CtfErrorKind,
        element: String,
        line: Option<u64>,
        problem: impl Into<String>,
        fix: impl Into<String>,
    ) -> CtfError {
        CtfError {
            kind,
            file: self.file.clone(),
            element,
            line,
            problem: problem.into(),
            fix: fix.into(),
        }
    }

    fn malformed(&self, line: u64, problem: String) -> CtfError {
        self.error(
            CtfErrorKind::Malformed,
            Some(line),
            format!("the XML is malformed: {problem}"),
            "Correct the XML there, or export the CTF from the MIS again",
        )
    }

    fn name(&self, raw: &[u8], line: u64) -> Result<String, CtfError> {
        std::str::from_utf8(raw)
            .map(str::to_owned)
            .map_err(|_| self.malformed(line, "an element name is not UTF-8".into()))
    }

    fn wants_text(&self) -> bool {
        matches!(self.stack.last(), Some(f) if matches!(f.ctx, Ctx::Leaf(_)))
    }

    fn text(&mut self, text: &str) {
        if let Some(frame) = self.stack.last_mut() {
            frame.text.push_str(text);
        }
    }

    fn start(&mut self, name: String, line: u64) -> Result<(), CtfError> {
        let parent = self.stack.last().map_or(Ctx::Document, |f| f.ctx);
        if parent == Ctx::Document && self.root_closed {
            return Err(self.error_at(
                CtfErrorKind::Malformed,
                name.clone(),
                Some(line),
                format!(
                    "the XML is malformed: <{name}> follows the end of the root element </CTfile>"
                ),
                "Remove what follows </CTfile>, or export the CTF from the MIS again",
            ));
        }
        let ctx = child(parent, &name);
        if parent == Ctx::Document && ctx != Ctx::Root {
            let fix = if name == "ATfile" {
                "This is an admissions transfer file (ATF); export a common transfer file (CTF) instead"
            } else {
                "Export a common transfer file (CTF) from the MIS"
            };
            return Err(self.error_at(
                CtfErrorKind::NotCtf,
                name.clone(),
                Some(line),
                format!("the root element is <{name}>, not <CTfile>: this is not a CTF"),
                fix,
            ));
        }
        let index = match self.stack.last_mut() {
            Some(parent) => match parent.children.iter_mut().find(|(n, _)| *n == name) {
                Some((_, count)) => {
                    *count += 1;
                    *count
                }
                None => {
                    parent.children.push((name.clone(), 1));
                    1
                }
            },
            None => 1,
        };
        self.stack.push(Frame {
            name,
            index,
            line,
            ctx,
            text: String::new(),
            children: Vec::new(),
        });
        match ctx {
            Ctx::Unknown => {
                let key = self.plain_path();
                let (file, path) = (&self.file, self.path());
                let name = &self.stack[self.stack.len() - 1].name;
                self.notes.add(key, || {
                    format!(
                        "{file}:{line}: {path}: <{name}> is not an element this reader knows; \
                         it and what it holds were ignored"
                    )
                });
            }
            Ctx::PupilData if self.version.is_none() => {
                return Err(self.error(
                    CtfErrorKind::Version,
                    Some(line),
                    "the pupil data comes before any Header/CTFversion, so the CTF's version is unknown",
                    "Export the CTF again from the MIS: its Header must give CTFversion",
                ));
            }
            Ctx::Pupil => {
                self.pupil = Some(PupilBuf {
                    index,
                    line,
                    path: self.path(),
                    ..PupilBuf::default()
                });
            }
            Ctx::Contact => {
                self.in_contact = true;
                if let Some(p) = &mut self.pupil {
                    p.contacts.push(ContactBuf {
                        index,
                        line,
                        ..ContactBuf::default()
                    });
                }
            }
            Ctx::Phone => {
                if let Some(p) = &mut self.pupil {
                    match (self.in_contact, p.contacts.last_mut()) {
                        (true, Some(c)) => c.phones.push(Rec::new()),
                        _ => p.phones.push(Rec::new()),
                    }
                }
            }
            Ctx::LangType => {
                if let Some(p) = &mut self.pupil {
                    p.languages.push(Rec::new());
                }
            }
            Ctx::Fsm => {
                if let Some(p) = &mut self.pupil {
                    p.fsm.get_or_insert_with(Vec::new);
                }
            }
            Ctx::FsmInstance => {
                if let Some(p) = &mut self.pupil {
                    p.fsm.get_or_insert_with(Vec::new).push(Rec::new());
                }
            }
            Ctx::SenHistory => {
                if let Some(p) = &mut self.pupil {
                    p.sen.get_or_insert_with(Vec::new);
                }
            }
            Ctx::Sen => {
                if let Some(p) = &mut self.pupil {
                    p.sen.get_or_insert_with(Vec::new).push(Rec::new());
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn end(&mut self, name: &str, line: u64) -> Result<(), CtfError> {
        let Some(top) = self.stack.last() else {
            return Err(self.malformed(
                line,
                format!("the closing tag </{name}> has no opening tag"),
            ));
        };
        if top.name != name {
            return Err(match self.stack.iter().rposition(|f| f.name == name) {
                Some(open) => {
                    // The element just inside the one being closed was never closed.
                    let unclosed = &self.stack[open + 1];
                    let mut element = String::new();
                    for (i, frame) in self.stack[..=open + 1].iter().enumerate() {
                        if i > 0 {
                            element.push('/');
                        }
                        frame.push_display(&mut element);
                    }
                    self.error_at(
                        CtfErrorKind::Malformed,
                        element,
                        Some(unclosed.line),
                        format!(
                            "the XML is malformed: <{}> opened on line {} is not closed before </{name}> on line {line}",
                            unclosed.name, unclosed.line
                        ),
                        format!(
                            "Add </{}> where the element ends, or export the CTF from the MIS again",
                            unclosed.name
                        ),
                    )
                }
                None => self.malformed(
                    line,
                    format!(
                        "the closing tag </{name}> does not match <{}> opened on line {}",
                        top.name, top.line
                    ),
                ),
            });
        }
        let ctx = top.ctx;
        match ctx {
            Ctx::Leaf(kind) => self.leaf(kind)?,
            Ctx::Pupil => self.finish_pupil()?,
            Ctx::Contact => self.in_contact = false,
            Ctx::Root => self.root_closed = true,
            _ => {}
        }
        self.stack.pop();
        Ok(())
    }

    /// The leaf on top of the stack has ended: check its value and keep it in its record.
    fn leaf(&mut self, kind: LeafKind) -> Result<(), CtfError> {
        let frame = self.stack.last().expect("a leaf is open");
        let raw = frame.text.trim();
        if raw.is_empty() {
            return Ok(());
        }
        let line = Some(frame.line);
        let value = match kind {
            LeafKind::Text => raw.to_owned(),
            LeafKind::Date => parse_date(raw).ok_or_else(|| {
                self.error(
                    CtfErrorKind::BadDate,
                    line,
                    format!("`{raw}` is not a date"),
                    "Correct it in the MIS (a date is yyyy-mm-dd, e.g. 2015-03-14) and export the CTF again",
                )
            })?,
            LeafKind::Flag => match raw.to_ascii_lowercase().as_str() {
                "true" | "1" => "true".to_owned(),
                "false" | "0" => "false".to_owned(),
                _ => {
                    return Err(self.error(
                        CtfErrorKind::BadValue,
                        line,
                        format!("`{raw}` is neither true nor false"),
                        "Correct it to true or false, or export the CTF from the MIS again",
                    ));
                }
            },
            LeafKind::Number => match raw.parse::<u32>() {
                Ok(n) => n.to_string(),
                Err(_) => {
                    return Err(self.error(
                        CtfErrorKind::BadValue,
                        line,
                        format!("`{raw}` is not a whole number"),
                        "Correct the contacts' order in the MIS (1 for the first contact) and export the CTF again",
                    ));
                }
            },
        };
        let Some(owner) = self.stack.iter().rposition(|f| f.ctx.is_record()) else {
            return Ok(());
        };
        let key = self.stack[owner + 1..]
            .iter()
            .map(|f| f.name.as_str())
            .collect::<Vec<_>>()
            .join("/");
        if self.stack[owner].ctx == Ctx::Header && key == "CTFversion" {
            self.check_version(&value, line)?;
        }
        let record = match (self.stack[owner].ctx, &mut self.pupil) {
            (Ctx::Header, _) => Some(&mut self.header),
            (Ctx::Pupil, Some(p)) => Some(&mut p.fields),
            (Ctx::Contact, Some(p)) => p.contacts.last_mut().map(|c| &mut c.fields),
            (Ctx::Phone, Some(p)) => match (self.in_contact, p.contacts.last_mut()) {
                (true, Some(c)) => c.phones.last_mut(),
                _ => p.phones.last_mut(),
            },
            (Ctx::LangType, Some(p)) => p.languages.last_mut(),
            (Ctx::FsmInstance, Some(p)) => p.fsm.as_mut().and_then(|f| f.last_mut()),
            (Ctx::Sen, Some(p)) => p.sen.as_mut().and_then(|s| s.last_mut()),
            _ => None,
        };
        if let Some(record) = record {
            record.entry(key).or_insert(value);
        }
        Ok(())
    }

    fn check_version(&mut self, value: &str, line: Option<u64>) -> Result<(), CtfError> {
        let major = value
            .split_once('.')
            .map_or(Some(value), |(major, minor)| {
                minor.chars().all(|c| c.is_ascii_digit()).then_some(major)
            })
            .and_then(|major| major.parse::<u32>().ok());
        match major {
            None => Err(self.error(
                CtfErrorKind::Version,
                line,
                format!("the CTF version `{value}` cannot be read (expected e.g. 25.0)"),
                "Export the CTF again from the MIS",
            )),
            Some(major) if major < OLDEST_VERSION => Err(self.error(
                CtfErrorKind::Version,
                line,
                format!(
                    "CTF version {value} is older than {OLDEST_VERSION}.0, the oldest this reader accepts"
                ),
                "Export the CTF again from an up-to-date MIS, as CTF 19.0 or later",
            )),
            Some(_) => {
                self.version = Some(value.to_owned());
                Ok(())
            }
        }
    }

    /// A pupil has ended: make its Students row and its contacts' occurrences.
    fn finish_pupil(&mut self) -> Result<(), CtfError> {
        let Some(p) = self.pupil.take() else {
            return Ok(());
        };
        let Some(upn) = get(&p.fields, "UPN").map(|u| u.to_uppercase()) else {
            return Err(self.error_at(
                CtfErrorKind::MissingUpn,
                p.path,
                Some(p.line),
                "the pupil has no UPN",
                "Give the pupil a UPN (or a temporary UPN) in the MIS and export the CTF again",
            ));
        };
        if let Some(&(index, line)) = self.upns.get(&upn) {
            return Err(self.error_at(
                CtfErrorKind::DuplicateUpn,
                format!("{}/UPN", p.path),
                Some(p.line),
                format!("UPN {upn} is also the UPN of Pupil[{index}] on line {line}"),
                "Each pupil must have their own UPN: correct the duplicate in the MIS and export the CTF again",
            ));
        }
        self.upns.insert(upn.clone(), (p.index, p.line));
        if !is_upn_shaped(&upn) {
            let (file, path) = (&self.file, &p.path);
            self.notes.add("upn-shape".into(), || {
                format!(
                    "{file}:{}: {path}/UPN: `{upn}` is not shaped like a UPN (a letter, 11 digits, \
                     then a digit or letter); read as it is",
                    p.line
                )
            });
        }
        let id = student_id(&upn);
        if let Some(other) = self.student_ids.insert(id.clone(), upn.clone()) {
            return Err(self.error_at(
                CtfErrorKind::IdCollision,
                format!("{}/UPN", p.path),
                Some(p.line),
                format!("UPNs {other} and {upn} give the same id {id}"),
                "Report this to rollcall's developers with the two UPNs",
            ));
        }
        let (row, address) = self.student_row(&p, &id, &upn);
        let pupil = self.students.len();
        self.students.push(row);

        let mut contacts: Vec<Occurrence> = Vec::with_capacity(p.contacts.len());
        for c in &p.contacts {
            contacts.push(self.occurrence(&p, c, pupil, &id, &upn, &address));
        }
        // Contacts in Order; equal or missing Orders keep the file's order.
        contacts.sort_by_key(|o| o.order.unwrap_or(u32::MAX));
        // Make occurrence keys unique within the pupil.
        let mut seen: HashMap<String, u32> = HashMap::new();
        for o in &contacts {
            *seen.entry(o.key.clone()).or_default() += 1;
        }
        let mut with_order: HashMap<String, u32> = HashMap::new();
        for (position, o) in contacts.iter_mut().enumerate() {
            if seen[&o.key] > 1 {
                o.key = format!("{}\u{1f}#{}", o.key, o.order.unwrap_or(0));
                let n = with_order.entry(o.key.clone()).or_default();
                *n += 1;
                if *n > 1 || o.order.is_none() {
                    o.key = format!("{}\u{1f}@{position}", o.key);
                }
            }
        }
        self.occurrences.extend(contacts);
        Ok(())
    }

    fn student_row(&self, p: &PupilBuf, id: &str, upn: &str) -> (Row, Row) {
        let f = &p.fields;
        let mut row = Row::new();
        fn put(row: &mut Row, field: &str, value: Option<&str>) {
            if let Some(v) = value {
                row.insert(field.to_owned(), json!(v));
            }
        }
        row.insert("Id".into(), json!(id));
        row.insert("UPN".into(), json!(upn));
        put(&mut row, "FormerUPN", get(f, "BasicDetails/FormerUPN"));
        put(
            &mut row,
            "UniqueLearnerNumber",
            get(f, "UniqueLearnerNumber"),
        );
        let legal_forename = get(f, "Forename");
        let legal_surname = get(f, "Surname");
        put(
            &mut row,
            "Forename",
            get(f, "BasicDetails/PreferredForename").or(legal_forename),
        );
        put(
            &mut row,
            "Surname",
            get(f, "BasicDetails/PreferredSurname").or(legal_surname),
        );
        put(&mut row, "LegalForename", legal_forename);
        put(&mut row, "LegalSurname", legal_surname);
        put(&mut row, "MiddleName", get(f, "BasicDetails/MiddleNames"));
        put(&mut row, "DateOfBirth", get(f, "DOB"));
        let gender = get(f, "Sex").or(get(f, "Gender")).map(str::to_uppercase);
        put(&mut row, "Gender", gender.as_deref());
        put(&mut row, "EthnicityCode", get(f, "BasicDetails/Ethnicity"));
        put(
            &mut row,
            "EthnicitySource",
            get(f, "BasicDetails/EthnicitySource"),
        );
        let first_language = p
            .languages
            .iter()
            .find(|l| get(l, "LanguageType").is_some_and(|t| t.eq_ignore_ascii_case("F")))
            .and_then(|l| get(l, "Language"));
        put(&mut row, "FirstLanguageCode", first_language);
        put(
            &mut row,
            "EnrolmentStatus",
            get(f, "BasicDetails/EnrolStatus"),
        );
        if let Some(instances) = &p.fsm {
            let today = self.today.as_str();
            let current: Vec<&Rec> = instances
                .iter()
                .filter(|i| {
                    get(i, "FSMstartDate").is_some_and(|s| s <= today)
                        && get(i, "FSMendDate").is_none_or(|e| e >= today)
                })
                .collect();
            row.insert("FsmEligible".into(), json!(u8::from(!current.is_empty())));
            let open_ended = current.iter().any(|i| get(i, "FSMendDate").is_none());
            if !open_ended {
                let latest_end = instances.iter().filter_map(|i| get(i, "FSMendDate")).max();
                put(&mut row, "FsmEndDate", latest_end);
            }
        }
        if let Some(sen) = &p.sen {
            let open = sen
                .iter()
                .filter(|s| get(s, "EndDate").is_none())
                .max_by_key(|s| get(s, "StartDate"))
                .and_then(|s| get(s, "SENprovision"));
            put(&mut row, "SENProvision", Some(open.unwrap_or("N")));
        }
        if let Some(in_care) = get(f, "LookedAfter/InCare") {
            row.insert("InLeaCare".into(), json!(u8::from(in_care == "true")));
        }
        put(
            &mut row,
            "LeaCareAuthority",
            get(f, "LookedAfter/CareAuthority"),
        );
        match get(f, "BasicDetails/ServiceChild").map(str::to_ascii_uppercase) {
            Some(y) if y == "Y" || y == "TRUE" => {
                row.insert("ServiceChild".into(), json!(1));
            }
            Some(n) if n == "N" || n == "FALSE" => {
                row.insert("ServiceChild".into(), json!(0));
            }
            _ => {}
        }
        let address = address(f);
        row.extend(address.clone());
        (row, address)
    }

    fn occurrence(
        &mut self,
        p: &PupilBuf,
        c: &ContactBuf,
        pupil: usize,
        student_id: &str,
        upn: &str,
        pupil_address: &Row,
    ) -> Occurrence {
        let f = &c.fields;
        let order = get(f, "Order").and_then(|o| o.parse().ok());
        let position = format!("{}/Contacts/Contact[{}]", p.path, c.index);
        if order.is_none() {
            let file = &self.file;
            self.notes.add("no-order".into(), || {
                format!(
                    "{file}:{}: {position}: the contact has no Order; it is put after the pupil's \
                     other contacts, without a Priority",
                    c.line
                )
            });
        }
        let code = get(f, "Relationship").map(str::to_ascii_uppercase);
        let relationship = code.as_deref().map(|code| match relationship_text(code) {
            Some(text) => text.to_owned(),
            None => {
                let file = &self.file;
                self.notes.add(format!("relationship {code}"), || {
                    format!(
                        "{file}:{}: {position}/Relationship: `{code}` is not a relationship code \
                         this reader knows; passed on as it is",
                        c.line
                    )
                });
                code.to_owned()
            }
        });
        let mut row = Row::new();
        for (field, from) in [
            ("Title", "Title"),
            ("Forename", "Forename"),
            ("Surname", "Surname"),
        ] {
            if let Some(v) = get(f, from) {
                row.insert(field.into(), json!(v));
            }
        }
        let mut evidence = Vec::new();
        for (field, kind) in [("HomePhone", "H"), ("MobilePhone", "M"), ("WorkPhone", "W")] {
            let number = c
                .phones
                .iter()
                .find(|ph| get(ph, "TelephoneType").is_some_and(|t| t.eq_ignore_ascii_case(kind)))
                .and_then(|ph| get(ph, "PhoneNo"));
            if let Some(n) = number {
                row.insert(field.into(), json!(n));
            }
        }
        for phone in c.phones.iter().filter_map(|ph| get(ph, "PhoneNo")) {
            let digits = phone_digits(phone);
            if digits.len() >= 6 {
                evidence.push(format!("phone {digits}"));
            }
        }
        if let Some(email) = get(f, "Email") {
            row.insert("HomeEmail".into(), json!(email));
            evidence.push(format!("email {}", email.to_lowercase()));
        }
        let address = if get(f, "Address/AddressAsPupil") == Some("true") {
            pupil_address.clone()
        } else {
            address(f)
        };
        if let Some(block) = address.get("AddressBlock").and_then(Value::as_str) {
            let folded = fold_address(block);
            if !folded.is_empty() {
                evidence.push(format!("address {folded}"));
            }
        }
        row.extend(address);
        let surname = fold_name(get(f, "Surname").unwrap_or_default());
        let forename = fold_name(get(f, "Forename").unwrap_or_default());
        let code = code.unwrap_or_default();
        let name_key = format!("{surname}\u{1f}{forename}\u{1f}{code}");
        Occurrence {
            pupil,
            student_id: student_id.to_owned(),
            key: format!("{upn}\u{1f}{name_key}"),
            name_key,
            evidence,
            relationship,
            order,
            responsibility: get(f, "Responsibility") == Some("true"),
            row,
        }
    }

    fn finish(mut self) -> Result<CtfExtract, CtfError> {
        if let Some(open) = self.stack.last() {
            let problem = format!(
                "the XML is malformed: the file ends before <{}> opened on line {} is closed",
                open.name, open.line
            );
            return Err(self.error(
                CtfErrorKind::Malformed,
                Some(open.line),
                problem,
                "The file may have been cut short: copy or export the CTF again",
            ));
        }
        if !self.root_closed {
            return Err(self.error(
                CtfErrorKind::NotCtf,
                None,
                "the file has no <CTfile> element: it is empty or not a CTF",
                "Export a common transfer file (CTF) from the MIS",
            ));
        }
        let Some(version) = self.version.take() else {
            return Err(self.error_at(
                CtfErrorKind::Version,
                "CTfile/Header/CTFversion".into(),
                None,
                "the CTF gives no version",
                "Export the CTF again from the MIS: its Header must give CTFversion",
            ));
        };
        let (contacts, contact_of) = self.merge_contacts()?;
        let mut student_contacts = Vec::with_capacity(self.occurrences.len());
        for (o, contact_id) in self.occurrences.iter().zip(&contact_of) {
            let mut row = Row::new();
            row.insert("Id".into(), json!(format!("{}.{contact_id}", o.student_id)));
            row.insert("StudentId".into(), json!(o.student_id));
            row.insert("ContactId".into(), json!(contact_id));
            if let Some(r) = &o.relationship {
                row.insert("Relationship".into(), json!(r));
            }
            if let Some(order) = o.order {
                row.insert("Priority".into(), json!(order));
            }
            row.insert("ParResp".into(), json!(u8::from(o.responsibility)));
            student_contacts.push(row);
        }
        let school = |field: &str| {
            get(&self.header, &format!("SourceSchool/{field}"))
                .unwrap_or_default()
                .to_owned()
        };
        Ok(CtfExtract {
            version,
            source_school: (school("LEA"), school("Estab"), school("SchoolName")),
            students: self.students,
            contacts,
            student_contacts,
            warnings: self.notes.into_warnings(),
        })
    }

    /// Merges occurrences into contacts (see the module's doc); answers the contacts, in the
    /// order their first occurrence is in the file, and each occurrence's contact id.
    fn merge_contacts(&self) -> Result<(Vec<Row>, Vec<String>), CtfError> {
        let n = self.occurrences.len();
        // Occurrences by key, so the result does not depend on the order of pupils.
        let mut by_key: Vec<usize> = (0..n).collect();
        by_key.sort_by(|&a, &b| self.occurrences[a].key.cmp(&self.occurrences[b].key));
        let mut parent: Vec<usize> = (0..n).collect();
        let mut pupils: Vec<Vec<usize>> = self.occurrences.iter().map(|o| vec![o.pupil]).collect();
        let mut first_with: HashMap<(&str, &str), usize> = HashMap::new();
        fn root(parent: &mut [usize], mut i: usize) -> usize {
            while parent[i] != i {
                parent[i] = parent[parent[i]];
                i = parent[i];
            }
            i
        }
        for &i in &by_key {
            let o = &self.occurrences[i];
            for token in &o.evidence {
                let Some(&j) = first_with.get(&(o.name_key.as_str(), token.as_str())) else {
                    first_with.insert((o.name_key.as_str(), token.as_str()), i);
                    continue;
                };
                let (a, b) = (root(&mut parent, i), root(&mut parent, j));
                if a == b || pupils[a].iter().any(|p| pupils[b].contains(p)) {
                    continue;
                }
                // The root is the member with the smallest key: `j` came first in key order.
                let (keep, gone) = if self.occurrences[a].key < self.occurrences[b].key {
                    (a, b)
                } else {
                    (b, a)
                };
                parent[gone] = keep;
                let moved = std::mem::take(&mut pupils[gone]);
                pupils[keep].extend(moved);
            }
        }
        let roots: Vec<usize> = (0..n).map(|i| root(&mut parent, i)).collect();
        let mut ids: HashMap<usize, String> = HashMap::new();
        let mut keys_of_ids: HashMap<String, usize> = HashMap::new();
        for &r in &roots {
            if ids.contains_key(&r) {
                continue;
            }
            let id = stable_id("contact", &self.occurrences[r].key);
            if let Some(&other) = keys_of_ids.get(&id) {
                return Err(self.error_at(
                    CtfErrorKind::IdCollision,
                    "CTfile/CTFpupilData".into(),
                    None,
                    format!(
                        "two different contacts ({:?} and {:?}) give the same id {id}",
                        self.occurrences[other].key, self.occurrences[r].key
                    ),
                    "Report this to rollcall's developers",
                ));
            }
            keys_of_ids.insert(id.clone(), r);
            ids.insert(r, id);
        }
        // Members of each contact, smallest key first, to fill the row's fields.
        let mut members: HashMap<usize, Vec<usize>> = HashMap::new();
        for &i in &by_key {
            members.entry(roots[i]).or_default().push(i);
        }
        let mut contacts = Vec::with_capacity(ids.len());
        let mut done: Vec<bool> = vec![false; n];
        for &r in &roots {
            if done[r] {
                continue;
            }
            done[r] = true;
            let mut row = Row::new();
            row.insert("Id".into(), json!(ids[&r]));
            for &m in &members[&r] {
                for (field, value) in &self.occurrences[m].row {
                    if !row.contains_key(field) {
                        row.insert(field.clone(), value.clone());
                    }
                }
            }
            contacts.push(row);
        }
        let contact_of = roots.iter().map(|r| ids[r].clone()).collect();
        Ok((contacts, contact_of))
    }
}

/// `Students.Id` for a UPN: the first 64 bits of SHA-256 over a fixed label and the trimmed,
/// upper-case UPN, as 16 hex digits (see the module's doc).
pub fn student_id(upn: &str) -> String {
    stable_id("student", &upn.trim().to_uppercase())
}

fn stable_id(kind: &str, key: &str) -> String {
    let mut input = format!("rollcall CTF {kind} id\0").into_bytes();
    input.extend_from_slice(key.as_bytes());
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &input);
    digest.as_ref()[..8]
        .iter()
        .fold(String::with_capacity(16), |mut out, b| {
            let _ = write!(out, "{b:02x}");
            out
        })
}

fn iso_date(date: Date) -> String {
    format!(
        "{:04}-{:02}-{:02}",
        date.year(),
        u8::from(date.month()),
        date.day()
    )
}

/// `yyyy-mm-dd` (a time after it, `yyyy-mm-ddThh:mm:ss`, is dropped), checked as a real date.
fn parse_date(raw: &str) -> Option<String> {
    let date = match raw.split_once('T') {
        Some((date, _)) => date,
        None => raw,
    };
    let format = time::macros::format_description!("[year]-[month]-[day]");
    Date::parse(date, &format).ok().map(iso_date)
}

fn is_upn_shaped(upn: &str) -> bool {
    let b = upn.as_bytes();
    b.len() == 13
        && b[0].is_ascii_uppercase()
        && b[1..12].iter().all(u8::is_ascii_digit)
        && b[12].is_ascii_alphanumeric()
}

/// The CTF's relationship codes (reference, "Codes").
fn relationship_text(code: &str) -> Option<&'static str> {
    Some(match code {
        "PAM" => "Mother",
        "PAF" => "Father",
        "STM" => "Step-mother",
        "STF" => "Step-father",
        "FOM" => "Foster mother",
        "FOF" => "Foster father",
        "CAR" => "Carer",
        "FAM" => "Other family member",
        "REL" => "Other relative",
        "CHM" => "Childminder",
        "DOC" => "Doctor",
        "SWR" => "Social worker",
        "HTC" => "Head teacher",
        "TCH" => "Teacher",
        "RLG" => "Religious contact",
        "OTH" => "Other",
        _ => return None,
    })
}

/// A name for matching: case, spacing and apostrophe forms folded.
fn fold_name(name: &str) -> String {
    name.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
        .replace(['\u{2019}', '\u{2018}', '`'], "'")
}

fn phone_digits(phone: &str) -> String {
    let digits: String = phone.chars().filter(char::is_ascii_digit).collect();
    match digits.strip_prefix("44") {
        Some(rest) if phone.trim_start().starts_with('+') => format!("0{rest}"),
        _ => digits,
    }
}

/// An address block for matching: its letters and digits only, lower case (so `ZZ1 1AA` and
/// `zz11aa`, `St. Anne's` and `St Annes` match).
fn fold_address(block: &str) -> String {
    block
        .chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

/// XoD's address fields from a pupil's or contact's `Address` (reference, "Mapping").
fn address(rec: &Rec) -> Row {
    let a = |k: &str| get(rec, &format!("Address/{k}"));
    let bs = |k: &str| get(rec, &format!("Address/BS7666Address/{k}"));
    let mut row = Row::new();
    let saon = bs("SAON");
    let paon = bs("PAON");
    let street = bs("Street");
    let locality = bs("Locality");
    let town = bs("Town").or(bs("PostTown"));
    let county = a("County").or(bs("AdministrativeArea"));
    let postcode = a("PostCode").or(a("Zip")).or(a("ZIP"));
    let country = a("Country");
    let is_bs7666 = [saon, paon, street, locality, bs("Town"), bs("PostTown")]
        .iter()
        .any(Option::is_some);
    let lines: Vec<String> = if is_bs7666 {
        let first = [paon, street].into_iter().flatten().collect::<Vec<_>>();
        [saon.map(str::to_owned)]
            .into_iter()
            .chain([(!first.is_empty()).then(|| first.join(" "))])
            .chain([locality, town, county, postcode].map(|x| x.map(str::to_owned)))
            .flatten()
            .collect()
    } else {
        (1..=5)
            .map(|n| a(&format!("AddressLines/AddressLine{n}")))
            .chain([county, postcode])
            .flatten()
            .map(str::to_owned)
            .collect()
    };
    if !lines.is_empty() {
        row.insert("AddressBlock".into(), json!(lines.join("\n")));
    }
    if let Some(paon) = paon {
        let numeric = paon.trim_end_matches(|c: char| c.is_ascii_alphabetic());
        let is_number = !numeric.is_empty()
            && numeric.chars().all(|c| c.is_ascii_digit())
            && paon.len() - numeric.len() <= 1;
        let field = if is_number { "HouseNo" } else { "HouseName" };
        row.insert(field.into(), json!(paon));
    }
    for (field, value) in [
        ("Apartment", saon),
        ("Street", street),
        ("District", locality),
        ("TownOrCity", town),
        ("County", county),
        ("PostCode", postcode),
        ("Country", country),
    ] {
        if let Some(v) = value {
            row.insert(field.into(), json!(v));
        }
    }
    row
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_16_hex_digits_and_fold_the_upn() {
        let id = student_id(" k999200124001 ");
        assert_eq!(id, student_id("K999200124001"));
        assert_eq!(id.len(), 16);
        assert!(id.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(id, stable_id("contact", "K999200124001"));
    }

    #[test]
    fn dates_are_checked_and_times_dropped() {
        assert_eq!(parse_date("2015-03-14").as_deref(), Some("2015-03-14"));
        assert_eq!(
            parse_date("2015-03-14T00:00:00").as_deref(),
            Some("2015-03-14")
        );
        assert_eq!(parse_date("2015-02-30"), None);
        assert_eq!(parse_date("14/03/2015"), None);
    }

    #[test]
    fn paon_is_a_house_number_only_when_numeric() {
        let rec = |paon: &str| {
            let mut r = Rec::new();
            r.insert("Address/BS7666Address/PAON".into(), paon.into());
            address(&r)
        };
        assert_eq!(rec("14")["HouseNo"], "14");
        assert_eq!(rec("14A")["HouseNo"], "14A");
        assert_eq!(rec("Mill House")["HouseName"], "Mill House");
    }

    #[test]
    fn a_small_ctf_is_read_with_a_sibling_shared_parent_as_one_contact() {
        let pupil = |upn: &str, order: u32| {
            format!(
                "<Pupil><UPN>{upn}</UPN><Surname>Smith</Surname><Forename>Amy</Forename>\
                 <DOB>2014-05-01</DOB><Sex>F</Sex><Contacts><Contact><Order>{order}</Order>\
                 <Surname>Smith</Surname><Forename>Sarah</Forename><Relationship>PAM</Relationship>\
                 <Responsibility>true</Responsibility><Email>s@example.org</Email></Contact>\
                 </Contacts></Pupil>"
            )
        };
        let xml = format!(
            "<CTfile><Header><CTFversion>25.0</CTFversion><SourceSchool><LEA>999</LEA>\
             <Estab>2001</Estab><SchoolName>Larkfield</SchoolName></SourceSchool></Header>\
             <CTFpupilData>{}{}</CTFpupilData></CTfile>",
            pupil("A999200124001", 1),
            pupil("A999200124002", 2)
        );
        let today = time::macros::date!(2026 - 12 - 06);
        let x = read_ctf_as_of(Path::new("small.xml"), xml.as_bytes(), today).unwrap();
        assert_eq!(x.version, "25.0");
        assert_eq!(
            x.source_school,
            ("999".into(), "2001".into(), "Larkfield".into())
        );
        assert_eq!(x.students.len(), 2);
        assert_eq!(x.students[0]["Id"], student_id("A999200124001"));
        assert_eq!(x.contacts.len(), 1);
        let contact = x.contacts[0]["Id"].as_str().unwrap();
        assert_eq!(
            x.student_contacts[1]["Id"],
            format!("{}.{contact}", student_id("A999200124002"))
        );
        assert_eq!(x.student_contacts[1]["Relationship"], "Mother");
        assert_eq!(x.student_contacts[1]["Priority"], 2);
        assert_eq!(x.student_contacts[1]["ParResp"], 1);
    }

    #[test]
    fn phones_are_compared_by_digits() {
        assert_eq!(phone_digits("07700 900101"), "07700900101");
        assert_eq!(phone_digits("+44 7700 900101"), "07700900101");
    }
}
