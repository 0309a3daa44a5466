//! `<ResultSet>.json`: an array of rows, or an object whose one key is the result set's name.

use std::path::Path;

use serde_json::Value;

use super::{ReadRows, SourceError, text_of};

/// The rows of a JSON export named after `result_set`.
pub fn read(file: &Path, result_set: &str) -> Result<ReadRows, SourceError> {
    let text = text_of(file)?;
    let value: Value = serde_json::from_str(&text).map_err(|e| {
        SourceError::new(
            file,
            format!("line {}, column {}", e.line(), e.column()),
            format!("is not valid JSON: {e}"),
        )
    })?;
    let rows = match value {
        Value::Array(rows) => rows,
        Value::Object(mut top) if top.len() == 1 => match top.remove(result_set) {
            Some(Value::Array(rows)) => rows,
            _ => return Err(shape(file, result_set)),
        },
        _ => return Err(shape(file, result_set)),
    };
    let mut read = ReadRows::default();
    for (index, row) in rows.into_iter().enumerate() {
        let place = format!("row {}", index + 1);
        let Value::Object(row) = row else {
            return Err(SourceError::new(
                file,
                place,
                "is not an object of field: value",
            ));
        };
        if let Some((field, _)) = row
            .iter()
            .find(|(_, v)| matches!(v, Value::Object(_) | Value::Array(_)))
        {
            return Err(SourceError::new(
                file,
                format!("{place}, field {field}"),
                "holds a nested object or array; a field's value must be a string, number, \
                 true/false or null",
            ));
        }
        read.rows.push(row);
        read.places.push(place);
    }
    Ok(read)
}

fn shape(file: &Path, result_set: &str) -> SourceError {
    SourceError::new(
        file,
        "",
        format!(
            "must hold an array of rows, [{{\"Id\": \"1\", ...}}, ...], or \
             {{\"{result_set}\": [rows]}}, named after its result set"
        ),
    )
}
