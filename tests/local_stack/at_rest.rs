//! What lies on disk: no plaintext of an upload anywhere under the data directory.

use reqwest::StatusCode;
use rollcall_core::synthetic;

use crate::support::Stack;

#[tokio::test]
async fn no_plaintext_name_from_an_upload_is_on_disk() {
    let stack = Stack::start().await;
    let school = stack.school("9990001").await;
    let data = synthetic::school("9990001", 120, 9);
    stack
        .upload(&school.agent, &data.upload_body())
        .await
        .expect(StatusCode::OK);

    let mut needles: Vec<String> = Vec::new();
    for (result_set, fields) in [
        (
            "Students",
            &["Forename", "Surname", "DisplayName", "DateOfBirth"][..],
        ),
        ("Contacts", &["Forename", "Surname", "Email", "Street"][..]),
        ("Staff", &["Forename", "Surname"][..]),
    ] {
        for row in data.rows(result_set) {
            for field in fields {
                if let Some(text) = row.get(*field).and_then(|v| v.as_str()) {
                    if text.len() >= 4 {
                        needles.push(text.to_owned());
                    }
                }
            }
        }
    }
    needles.sort();
    needles.dedup();
    assert!(needles.len() > 200, "the scan must look for many names");
    assert!(needles.iter().any(|n| n.contains('\'')) && needles.iter().any(|n| !n.is_ascii()));

    let files = stack.snapshot();
    assert!(files.keys().any(|p| p.starts_with("objects")));
    for (path, bytes) in &files {
        // UTF-8 resynchronises after invalid bytes, so every UTF-8 needle stored in a file
        // survives the lossy decoding intact.
        let text = String::from_utf8_lossy(bytes);
        for needle in &needles {
            assert!(
                !text.contains(needle.as_str()),
                "{} holds the plaintext {needle:?}",
                path.display()
            );
        }
    }
}
