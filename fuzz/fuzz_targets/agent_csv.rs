//! A school's `<ResultSet>.csv` file, as the agent reads it: decoded as UTF-8 (a byte-order
//! mark allowed), then parsed with its header row; every row read has a place to report.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use rollcall_agent::sources::{csv, decode_text};

fuzz_target!(|data: &[u8]| {
    let file = Path::new("Students.csv");
    let Ok(text) = decode_text(file, data) else {
        return;
    };
    if let Ok(read) = csv::parse(file, &text) {
        assert_eq!(read.rows.len(), read.places.len());
    }
});
