//! The school agent's uploader against the local stack (large extracts: `staged.rs`).

use rollcall_core::synthetic;

use crate::support::Stack;

#[tokio::test]
async fn the_agent_uploads_a_small_extract_directly() {
    let stack = Stack::start().await;
    let school = stack.school("9990001").await;
    let data = synthetic::school("9990001", 40, 2);

    let answers = rollcall_agent::upload(
        &reqwest::Client::new(),
        &stack.base,
        &school.agent,
        &data.upload_body(),
    )
    .await
    .unwrap();

    assert_eq!(answers.len(), 1);
    for (name, rows) in &data.result_sets {
        assert_eq!(
            answers[0]["resultSets"][name]["added"],
            rows.len() as u64,
            "{name}"
        );
    }
    assert!(stack.staged_objects().await.is_empty());
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
