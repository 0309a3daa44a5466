//! An agent's upload body, as ingest reads it: parsed and validated against the catalogue;
//! what passes is diffed as a first version and again against itself, which must find
//! nothing changed, and split into its scope groups, one part per row in each.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rollcall_core::catalogue::Catalogue;
use rollcall_core::dataset::{diff, parse_upload, split_groups};
use rollcall_core::timestamp::Timestamp;

fuzz_target!(|data: &[u8]| {
    let catalogue = Catalogue::get();
    let Ok(upload) = parse_upload(catalogue, data) else {
        return;
    };
    let now = Timestamp::from_millis(1_795_000_000_000);
    for (name, rows) in &upload.result_sets {
        let rs = catalogue.result_set(name).expect("a validated set is the catalogue's");
        let first = diff(None, rs, rows, b"fuzz-key", now);
        assert_eq!(first.added + first.changed, first.index.rows.len());
        let again = diff(Some(&first.index), rs, rows, b"fuzz-key", now);
        assert!(again.is_unchanged(), "the same rows diffed twice changed");
        for group in split_groups(rs, rows) {
            assert_eq!(group.len(), rows.len());
        }
    }
});
