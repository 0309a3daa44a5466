//! A partner read's path and query string, as the serve function parses them: the endpoint
//! (byte 0 picks one; byte 1 says whether the path names an id, which is then the text up to
//! the first `?`), options, paging, select, filters and dates, and any changeset hash or page
//! pin, verified as a read verifies them. A refusal must be a 4xx, never a 5xx or a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rollcall_core::catalogue::Catalogue;
use rollcall_core::timestamp::Timestamp;
use rollcall_serve::fuzzing::read_query;

fuzz_target!(|data: &[u8]| {
    let [pick, by_id, rest @ ..] = data else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    let endpoints = Catalogue::get().endpoints();
    let name = endpoints[usize::from(*pick) % endpoints.len()].path.as_str();
    let (id, query) = match (by_id % 2 == 1, text.split_once('?')) {
        (true, Some((id, query))) => (Some(id), Some(query)),
        (true, None) => (Some(text), None),
        (false, _) => (None, Some(text)),
    };
    let now = Timestamp::from_millis(1_795_000_000_000);
    if let Err(status) = read_query(name, id, query, b"fuzz-school-key", now) {
        assert!((400..500).contains(&status), "a read's query was answered {status}");
    }
});
