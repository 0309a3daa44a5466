//! A Common Transfer File, as the agent reads it (streamed XML, any version it knows).
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use rollcall_agent::sources::ctf::read_ctf_as_of;
use time::macros::date;

fuzz_target!(|data: &[u8]| {
    if let Ok(extract) = read_ctf_as_of(Path::new("school.xml"), data, date!(2026 - 11 - 23)) {
        let _ = extract.upload_body();
    }
});
