//! The school agent's uploader against the local stack.

use rollcall_core::synthetic;

use crate::support::Stack;

#[tokio::test]
async fn the_agent_uploads_a_large_extract_in_batches() {
    let stack = Stack::start().await;
    let school = stack.school("9990001").await;
    let data = synthetic::school("9990001", 2500, 2);
    let extract = data.upload_body();
    let size = extract.to_string().len();
    assert!(
        size > rollcall_ingest::MAX_UPLOAD_BYTES,
        "the extract ({size} bytes) must need batches"
    );

    let answers = rollcall_agent::upload(
        &reqwest::Client::new(),
        &stack.base,
        &school.agent,
        &extract,
    )
    .await
    .unwrap();
    assert!(answers.len() > 1);
    let mut stored: Vec<(String, u64)> = answers
        .iter()
        .flat_map(|a| a["resultSets"].as_object().unwrap().clone())
        .map(|(name, report)| (name, report["added"].as_u64().unwrap()))
        .collect();
    stored.sort();
    let mut expected: Vec<(String, u64)> = data
        .result_sets
        .iter()
        .map(|(name, rows)| (name.clone(), rows.len() as u64))
        .collect();
    expected.sort();
    assert_eq!(stored, expected);
}

#[tokio::test]
async fn the_agent_reports_a_refusal_with_rollcall_message() {
    let stack = Stack::start().await;
    let extract = serde_json::json!({"resultSets": {"Students": []}});
    let error = rollcall_agent::upload(
        &reqwest::Client::new(),
        &stack.base,
        "rca_unknown",
        &extract,
    )
    .await
    .unwrap_err();
    assert!(
        error.to_string().contains("agent key is not registered"),
        "{error}"
    );
}
