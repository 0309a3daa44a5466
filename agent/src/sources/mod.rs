//! The school's MIS exports, read from one source folder into the extract the agent uploads.
//!
//! - `<ResultSet>.json`: an array of rows named as XoD names fields, or `{"<ResultSet>": [...]}`;
//! - `<ResultSet>.csv`: UTF-8 (with or without a byte-order mark), a header row of field
//!   names, RFC 4180 quoting; an empty cell is null;
//! - `*.xml`: Common Transfer Files, read into Students, Contacts and StudentContacts.
//!
//! Every row is checked by the same rules the server applies (`rollcall_core::dataset`), so a
//! file the server would refuse is refused here, before anything is sent, with the file and
//! the line (or row, or element) at fault. One file that cannot be used fails the whole read:
//! a half-read export must never replace a good snapshot. A column or element rollcall does
//! not know is a warning, and is not sent.

pub mod csv;
pub mod ctf;
pub mod json;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use rollcall_core::catalogue::Catalogue;
use rollcall_core::dataset::{Row, UploadError, parse_upload};
use serde_json::{Value, json};

/// A file the agent cannot use: where, and what to do about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceError {
    pub file: PathBuf,
    /// `line 14`, `row 3`, `field Forename`, an XML element path...; empty for the whole file.
    pub place: String,
    pub message: String,
}

impl fmt::Display for SourceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let file = self.file.display();
        if self.place.is_empty() {
            write!(f, "{file}: {}", self.message)
        } else {
            write!(f, "{file}: {}: {}", self.place, self.message)
        }
    }
}

impl std::error::Error for SourceError {}

impl SourceError {
    pub fn new(file: &Path, place: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            file: file.to_owned(),
            place: place.into(),
            message: message.into(),
        }
    }
}

/// The rows of one result set as a reader found them, with where each row came from.
#[derive(Debug, Clone, Default)]
pub struct ReadRows {
    pub rows: Vec<Row>,
    /// The place of each row in its file (`line 12`, `row 3`), for messages.
    pub places: Vec<String>,
}

/// One result set, read and checked.
#[derive(Debug, Clone, PartialEq)]
pub struct ReadSet {
    pub rows: Vec<Row>,
    pub file: PathBuf,
}

/// Everything read from the source folder.
#[derive(Debug, Clone, Default)]
pub struct Extract {
    /// Result set (as rollcall names it) → its rows and the file they came from.
    pub sets: BTreeMap<String, ReadSet>,
    pub warnings: Vec<String>,
    /// Each CTF file read, with the school that wrote it (`Header/SourceSchool`).
    pub transfers: Vec<(PathBuf, SourceSchool)>,
}

/// The school a CTF says wrote it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SourceSchool {
    /// The DfE number: the LEA's three digits and the Estab's four; empty when the header
    /// gives neither.
    pub estab: String,
    pub name: String,
}

impl Extract {
    /// Refuses a CTF written by another school than `estab` (the school the agent key
    /// uploads for): a transfer file received from another school, or an export of the
    /// wrong school, must never be uploaded as this school's pupils.
    pub fn check_school(&self, estab: &str) -> Result<(), SourceError> {
        for (file, school) in &self.transfers {
            if !school.estab.is_empty() && school.estab != estab {
                return Err(SourceError::new(
                    file,
                    "Header/SourceSchool",
                    format!(
                        "written by school {} ({}), but this agent uploads for school {estab}; \
                         a CTF received from another school is not this school's export: move \
                         it out of the source folder",
                        school.estab, school.name
                    ),
                ));
            }
        }
        Ok(())
    }

    /// The upload body of the named sets.
    pub fn body_of<'a>(&self, names: impl IntoIterator<Item = &'a String>) -> Value {
        let sets: serde_json::Map<String, Value> = names
            .into_iter()
            .filter_map(|name| {
                let set = self.sets.get(name)?;
                let rows = set.rows.iter().cloned().map(Value::Object).collect();
                Some((name.clone(), Value::Array(rows)))
            })
            .collect();
        json!({ "resultSets": sets })
    }

    /// Adds a result set read from `file`, checked by the server's rules; refuses a result
    /// set given by two files.
    pub fn add(&mut self, file: &Path, sent_name: &str, read: ReadRows) -> Result<(), SourceError> {
        let (name, rows, warnings) = check(file, sent_name, read)?;
        if let Some(earlier) = self.sets.get(&name) {
            return Err(SourceError::new(
                file,
                "",
                format!(
                    "{name} is also given by {}; keep one file per result set",
                    earlier.file.display()
                ),
            ));
        }
        self.warnings.extend(warnings);
        self.sets.insert(
            name,
            ReadSet {
                rows,
                file: file.to_owned(),
            },
        );
        Ok(())
    }
}

/// Checks one result set's rows by the server's rules: answers its name as rollcall knows it,
/// the rows without unknown fields, and a warning for each unknown field or former name.
fn check(
    file: &Path,
    sent_name: &str,
    read: ReadRows,
) -> Result<(String, Vec<Row>, Vec<String>), SourceError> {
    let rows: Vec<Value> = read.rows.into_iter().map(Value::Object).collect();
    let body = serde_json::to_vec(&json!({ "resultSets": { sent_name: rows } }))
        .map_err(|e| SourceError::new(file, "", e.to_string()))?;
    let upload = parse_upload(Catalogue::get(), &body).map_err(|error| {
        let place = row_of(&error)
            .and_then(|row| read.places.get(row).cloned())
            .unwrap_or_default();
        SourceError::new(file, place, advice(&error, &read.places))
    })?;
    let mut warnings: Vec<String> = upload
        .warnings
        .into_iter()
        .map(|w| format!("{}: {w}", file.display()))
        .collect();
    for (set, fields) in &upload.ignored {
        let fields: Vec<&str> = fields.iter().map(String::as_str).collect();
        warnings.push(format!(
            "{}: {} not a field of {set} that rollcall knows; not sent",
            file.display(),
            match fields.as_slice() {
                [one] => format!("{one} is"),
                many => format!("{} are", many.join(", ")),
            }
        ));
    }
    let (name, rows) = upload
        .result_sets
        .into_iter()
        .next()
        .ok_or_else(|| SourceError::new(file, "", "no result set was read"))?;
    Ok((name, rows, warnings))
}

/// The row an upload error is about, if it is about one.
fn row_of(error: &UploadError) -> Option<usize> {
    match error {
        UploadError::RowNotObject { row, .. }
        | UploadError::MissingId { row, .. }
        | UploadError::BadId { row, .. }
        | UploadError::DuplicateId { row, .. }
        | UploadError::NotScalar { row, .. } => Some(*row),
        _ => None,
    }
}

/// The server's message, with what to do about it in a file rather than a request body.
fn advice(error: &UploadError, places: &[String]) -> String {
    match error {
        UploadError::DuplicateId { first, .. } => format!(
            "its Id repeats the Id of {}; ids must be unique in a result set",
            places.get(*first).map_or("an earlier row", String::as_str)
        ),
        UploadError::UnknownResultSet { name, known } => format!(
            "`{name}` is not a result set rollcall knows; name the file after one of: {known}"
        ),
        other => other.to_string(),
    }
}

/// Reads every `.json`, `.csv` and `.xml` file of `folder` (in name order); other files are
/// skipped with a warning.
pub fn read_folder(folder: &Path) -> Result<Extract, SourceError> {
    read_folder_with(folder, &mut |_, _| {})
}

/// [`read_folder`], calling `on_file(file, files)` before each file is read (`files`: how
/// many the folder holds), to show progress.
pub fn read_folder_with(
    folder: &Path,
    on_file: &mut dyn FnMut(&Path, usize),
) -> Result<Extract, SourceError> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(folder)
        .map_err(|e| SourceError::new(folder, "", format!("cannot read the folder: {e}")))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    let count = files.len();
    let mut extract = Extract::default();
    let mut transfers = Transfers::default();
    for file in files {
        on_file(&file, count);
        let extension = file
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        let stem = file
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default()
            .to_owned();
        match extension.as_deref() {
            Some("json") => {
                let read = json::read(&file, &stem)?;
                extract.add(&file, &stem, read)?;
            }
            Some("csv") => {
                let read = csv::read(&file)?;
                extract.add(&file, &stem, read)?;
            }
            Some("xml") => transfers.read(&file)?,
            _ => extract.warnings.push(format!(
                "{}: not a .json, .csv or .xml export; skipped",
                file.display()
            )),
        }
    }
    transfers.add_to(&mut extract)?;
    if extract.sets.is_empty() {
        return Err(SourceError::new(
            folder,
            "",
            "holds no export: put <ResultSet>.json, <ResultSet>.csv or CTF .xml files in it",
        ));
    }
    Ok(extract)
}

/// The pupils, contacts and links of every CTF file of the folder, added to the extract as
/// one Students, one Contacts and one StudentContacts (a school may export a file per year).
#[derive(Default)]
struct Transfers {
    files: Vec<(PathBuf, SourceSchool)>,
    students: ReadRows,
    contacts: ReadRows,
    links: ReadRows,
    warnings: Vec<String>,
}

impl Transfers {
    fn read(&mut self, file: &Path) -> Result<(), SourceError> {
        let input = std::fs::File::open(file)
            .map_err(|e| SourceError::new(file, "", format!("cannot read: {e}")))?;
        let ctf = ctf::read_ctf(file, std::io::BufReader::new(input))
            .map_err(|e| SourceError::new(file, "", e.to_string()))?;
        let name = file.file_name().map(|n| n.to_string_lossy().into_owned());
        let name = name.unwrap_or_default();
        for (rows, into, what) in [
            (ctf.students, &mut self.students, "pupil"),
            (ctf.contacts, &mut self.contacts, "contact"),
            (ctf.student_contacts, &mut self.links, "contact link"),
        ] {
            for (n, row) in rows.into_iter().enumerate() {
                into.places.push(format!("{name}, {what} {}", n + 1));
                into.rows.push(row);
            }
        }
        self.warnings.extend(ctf.warnings);
        let (lea, estab, school) = ctf.source_school;
        let school = SourceSchool {
            estab: if lea.is_empty() && estab.is_empty() {
                String::new()
            } else {
                format!("{lea}{estab}")
            },
            name: school,
        };
        self.files.push((file.to_owned(), school));
        Ok(())
    }

    fn add_to(self, extract: &mut Extract) -> Result<(), SourceError> {
        let Some((first, _)) = self.files.first() else {
            return Ok(());
        };
        let first = first.clone();
        extract.warnings.extend(self.warnings);
        extract.transfers = self.files;
        let first = &first;
        extract.add(first, "Students", self.students)?;
        extract.add(first, "Contacts", self.contacts)?;
        extract.add(first, "StudentContacts", self.links)
    }
}

/// Reads a whole file as UTF-8 text, without a byte-order mark.
fn text_of(file: &Path) -> Result<String, SourceError> {
    let bytes =
        std::fs::read(file).map_err(|e| SourceError::new(file, "", format!("cannot read: {e}")))?;
    decode_text(file, &bytes)
}

/// A file's bytes as text: UTF-8, with or without a byte-order mark.
pub fn decode_text(file: &Path, bytes: &[u8]) -> Result<String, SourceError> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    String::from_utf8(bytes.to_vec()).map_err(|e| {
        let before = &bytes[..e.utf8_error().valid_up_to()];
        let line = 1 + before.iter().filter(|b| **b == b'\n').count();
        SourceError::new(
            file,
            format!("line {line}"),
            "is not UTF-8 text; export the file as UTF-8",
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn folder(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in files {
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        dir
    }

    fn error_of(files: &[(&str, &str)]) -> SourceError {
        read_folder(folder(files).path()).unwrap_err()
    }

    #[test]
    fn csv_and_json_exports_are_read_with_unknown_columns_warned_of() {
        let dir = folder(&[
            (
                "Students.csv",
                "\u{feff}Id,Forename,Surname,ShoeSize,MiddleName\r\n1,Zoë,\"O'Neill, Jr\",5,\r\n2,\"Ann \"\"Nan\"\"\",Smith,,\r\n",
            ),
            (
                "AttendCodes.json",
                r#"[{"Id": "1", "Mark": "/", "Description": "Present"}]"#,
            ),
            (
                "Staff.json",
                r#"{"Staff": [{"Id": "5", "Surname": "Abara"}]}"#,
            ),
            ("README.txt", "not an export"),
        ]);
        let extract = read_folder(dir.path()).unwrap();
        let names: Vec<&String> = extract.sets.keys().collect();
        assert_eq!(names, ["AttendCodes", "Staff", "Students"]);
        let pupils = &extract.sets["Students"].rows;
        assert_eq!(pupils[0]["Surname"], "O'Neill, Jr");
        assert_eq!(pupils[0]["MiddleName"], Value::Null);
        assert_eq!(pupils[1]["Forename"], "Ann \"Nan\"");
        assert!(pupils[0].get("ShoeSize").is_none());
        let warnings = extract.warnings.join("\n");
        assert!(
            warnings.contains("ShoeSize is not a field of Students"),
            "{warnings}"
        );
        assert!(warnings.contains("README.txt"), "{warnings}");
    }

    #[test]
    fn an_unclosed_quote_is_reported_at_its_line() {
        let csv = "Id,Forename,Surname\n1,Zoë,Smith\n2,\"Ann,Jones\n3,Bob,Lee\n";
        let error = error_of(&[("Students.csv", csv)]);
        assert_eq!(error.place, "line 3", "{error}");
        assert!(error.message.contains("not closed"), "{error}");
        let last_column = "Id,Forename,Surname\n1,Zoë,Smith\n2,Ann,\"Jones\n3,Bob,Lee\n";
        let error = error_of(&[("Students.csv", last_column)]);
        assert_eq!(error.place, "line 3", "{error}");
    }

    #[test]
    fn a_row_with_too_many_cells_names_its_line() {
        let error = error_of(&[("Students.csv", "Id,Forename\n1,Zoë\n2,Ann,Extra\n")]);
        assert_eq!(error.place, "line 3", "{error}");
        assert!(
            error.message.contains("3 cells where the header has 2"),
            "{error}"
        );
    }

    #[test]
    fn a_nested_json_value_names_its_row_and_field() {
        let json = r#"[{"Id": "1"}, {"Id": "2", "Address": {"Street": "Mill Lane"}}]"#;
        let error = error_of(&[("Students.json", json)]);
        assert_eq!(error.place, "row 2, field Address", "{error}");
        assert!(error.to_string().contains("Students.json"), "{error}");
    }

    #[test]
    fn the_servers_rules_apply_with_the_place_of_the_row() {
        let error = error_of(&[("Students.csv", "Id,Forename\n1,Zoë\n\n1,Ann\n")]);
        assert_eq!(error.place, "line 4", "{error}");
        assert!(error.message.contains("repeats the Id"), "{error}");
        let error = error_of(&[("Pupils.csv", "Id\n1\n")]);
        assert!(
            error.message.contains("`Pupils` is not a result set"),
            "{error}"
        );
        let error = error_of(&[("Students.json", "[{\"Id\": \"1\",}]")]);
        assert!(error.place.starts_with("line 1, column"), "{error}");
    }

    #[test]
    fn a_result_set_in_two_files_is_refused() {
        let error = error_of(&[
            ("Students.csv", "Id\n1\n"),
            ("Students.json", "[{\"Id\": \"1\"}]"),
        ]);
        assert!(error.message.contains("also given by"), "{error}");
    }
}
