//! `<ResultSet>.csv`: UTF-8 with or without a byte-order mark, a header row of field names,
//! RFC 4180 quoting. An empty cell is null; every other cell is sent as text.

use std::path::Path;

use serde_json::Value;

use super::{ReadRows, SourceError, text_of};

pub fn read(file: &Path) -> Result<ReadRows, SourceError> {
    parse(file, &text_of(file)?)
}

/// Reads the rows of `text`, the contents of `file` (which names it in errors).
pub fn parse(file: &Path, text: &str) -> Result<ReadRows, SourceError> {
    let mut reader = ::csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(false)
        .from_reader(text.as_bytes());
    let headers: Vec<String> = reader
        .headers()
        .map_err(|e| error(file, text, &e))?
        .iter()
        .map(|h| h.trim().to_owned())
        .collect();
    if let Some(blank) = headers.iter().position(String::is_empty) {
        return Err(SourceError::new(
            file,
            "line 1",
            format!("column {} has no name; name every column", blank + 1),
        ));
    }
    let mut read = ReadRows::default();
    for record in reader.records() {
        let record = record.map_err(|e| error(file, text, &e))?;
        let line = record.position().map_or(0, |p| line_at(text, p.byte()));
        let row = headers
            .iter()
            .zip(record.iter())
            .map(|(field, cell)| {
                let value = if cell.is_empty() {
                    Value::Null
                } else {
                    Value::String(cell.to_owned())
                };
                (field.clone(), value)
            })
            .collect();
        read.rows.push(row);
        read.places.push(format!("line {line}"));
    }
    // A quote never closed in the last column swallows the rest of the file into one cell.
    if text.matches('"').count() % 2 == 1 {
        let last = read
            .places
            .last()
            .cloned()
            .unwrap_or_else(|| "line 1".into());
        return Err(unbalanced_at(file, last));
    }
    Ok(read)
}

/// The line (from 1) a record starting at `byte` is on. The reader's own count, and its
/// offsets, include the blank lines it skipped before the record.
fn line_at(text: &str, byte: u64) -> u64 {
    let bytes = text.as_bytes();
    let mut start = (byte as usize).min(bytes.len());
    while start < bytes.len() && matches!(bytes[start], b'\r' | b'\n') {
        start += 1;
    }
    1 + bytes[..start].iter().filter(|b| **b == b'\n').count() as u64
}

fn unbalanced(file: &Path, line: u64) -> SourceError {
    unbalanced_at(file, format!("line {line}"))
}

fn unbalanced_at(file: &Path, place: String) -> SourceError {
    SourceError::new(
        file,
        place,
        "a quoted cell is not closed (unbalanced \"); close the quote, or double a quote \
         inside a quoted cell (\"\")",
    )
}

/// What is wrong at the record where the reader stopped. A quote never closed runs to the end
/// of the file, so from that record on the file holds an odd number of quotes.
fn error(file: &Path, text: &str, error: &::csv::Error) -> SourceError {
    let line = error.position().map_or(0, |p| line_at(text, p.byte()));
    let from = error.position().map_or(0, |p| p.byte() as usize);
    let quotes = text.get(from..).unwrap_or_default().matches('"').count();
    if quotes % 2 == 1 {
        return unbalanced(file, line);
    }
    match error.kind() {
        ::csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => SourceError::new(
            file,
            format!("line {line}"),
            format!(
                "has {len} cells where the header has {expected_len}; a cell with a comma or a \
                 line break must be quoted, and a quote inside it doubled"
            ),
        ),
        _ => SourceError::new(
            file,
            format!("line {line}"),
            format!("is not valid CSV: {error}"),
        ),
    }
}
