//! What a caller sends to be recognised: request headers (Authorization with any scheme, the
//! page's session cookie), the query string's parameters, and the sealed or signed values
//! rollcall hands out and reads back (changeset hashes, page pins, subject-access cursors,
//! staged upload keys, ids). The input is fields separated by NUL: header lines
//! (`name: value`), a query string, then one value given to every reader of tokens.
#![no_main]

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use libfuzzer_sys::fuzz_target;
use rollcall_core::changeset::ChangesetScope;
use rollcall_core::cursor::open_cursor;
use rollcall_core::model::{Estab, PartnerId};
use rollcall_core::session::Session;
use rollcall_core::staging::parse_object_key;
use rollcall_core::timestamp::Timestamp;
use rollcall_core::walk::WalkPin;
use rollcall_http::request::{QueryParams, authorization, credential, session_cookie};

const KEY: &[u8] = b"fuzz-school-key";

fuzz_target!(|data: &[u8]| {
    let mut fields = data.split(|b| *b == 0);
    let headers = headers(fields.next().unwrap_or_default());
    if let Some((scheme, secret)) = authorization(&headers) {
        assert_eq!(scheme, scheme.to_ascii_lowercase());
        assert_eq!(secret, secret.trim());
    }
    let _ = credential(&headers, "Idaas", "partner token");
    let _ = credential(&headers, "Bearer", "agent key");
    if let Some(cookie) = session_cookie(&headers) {
        let _ = Session::school_of(&cookie);
    }
    if let Ok(query) = std::str::from_utf8(fields.next().unwrap_or_default())
        && let Ok(params) = QueryParams::parse(Some(query))
    {
        for name in params.names() {
            let _ = params.get(name);
            let _ = params.number(name);
            let _ = params.bounded(name, 1, 1000);
        }
    }
    let Ok(token) = std::str::from_utf8(fields.next().unwrap_or_default()) else {
        return;
    };
    let binding = ChangesetScope {
        partner: "fuzz-partner".into(),
        estab: "9990001".into(),
        endpoint: "Students".into(),
        parameters: vec!["options=includecontacts".into()],
    };
    let now = Timestamp::from_millis(1_795_000_000_000);
    assert!(binding.verify(KEY, token).is_err(), "a forged changeset hash was taken");
    assert!(WalkPin::verify(KEY, &binding, token, now).is_err(), "a forged pin was taken");
    assert!(open_cursor(KEY, "9990001", token).is_none(), "a forged cursor was opened");
    let _ = parse_object_key(token);
    let _ = Estab::parse(token);
    let _ = PartnerId::parse(token);
});

/// The header lines of `bytes` that are valid names and values.
fn headers(bytes: &[u8]) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for line in bytes.split(|b| *b == b'\n') {
        let Some(colon) = line.iter().position(|b| *b == b':') else {
            continue;
        };
        let (name, value) = (&line[..colon], line[colon + 1..].trim_ascii_start());
        if let (Ok(name), Ok(value)) = (HeaderName::from_bytes(name), HeaderValue::from_bytes(value)) {
            headers.append(name, value);
        }
    }
    headers
}
