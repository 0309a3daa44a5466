//! The spine on the AWS adapters, over the emulator `scripts/test` starts: the same flow as on
//! the embedded store, then what lies in S3 and DynamoDB.

use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_s3::types::ServerSideEncryption;
use reqwest::StatusCode;
use rollcall_core::synthetic;

use crate::flow::{ESTAB, consented_flow};
use crate::support::Stack;
use reqwest::Method;
use serde_json::{Value, json};

const OTHER: &str = "9990009";

#[tokio::test]
async fn the_consented_flow_runs_on_aws_and_leaves_nothing_readable() {
    let Some(stack) = Stack::start_aws().await else {
        return;
    };
    let first = consented_flow(&stack).await;
    assert!(
        stack.objects_of(ESTAB).await.is_empty(),
        "the purge emptied the school's prefix"
    );

    // A second school stays, to look at what its data looks like at rest.
    let school = stack.school(OTHER).await;
    let management = stack.partner("at-rest-partner", &["Student"]).await;
    let data = synthetic::school(OTHER, 80, 21);
    stack
        .upload(&school.agent, &data.upload_body())
        .await
        .expect(StatusCode::OK);
    stack
        .grant(&school, "at-rest-partner", &["Student"])
        .await
        .expect(StatusCode::OK);
    stack.token("at-rest-partner", &management, OTHER).await;

    let aws = stack.aws.as_ref().unwrap();
    let s3 = aws.objects.client();
    let keys = stack.objects_of(OTHER).await;
    assert!(keys.len() > 10);
    let mut needles: Vec<String> = Vec::new();
    for source in [&first, &data] {
        for row in source
            .rows("Students")
            .iter()
            .chain(source.rows("Contacts"))
        {
            for field in ["Forename", "Surname", "DateOfBirth"] {
                if let Some(text) = row
                    .get(field)
                    .and_then(|v| v.as_str())
                    .filter(|t| t.len() >= 4)
                {
                    needles.push(text.to_owned());
                }
            }
        }
    }
    assert!(needles.len() > 100);
    for key in &keys {
        let object = s3
            .get_object()
            .bucket(aws.objects.bucket())
            .key(key)
            .send()
            .await
            .unwrap();
        assert_eq!(
            object.server_side_encryption(),
            Some(&ServerSideEncryption::AwsKms),
            "{key} was not put with SSE-KMS"
        );
        let bytes = object.body.collect().await.unwrap().into_bytes();
        let text = String::from_utf8_lossy(&bytes);
        for needle in &needles {
            assert!(
                !text.contains(needle.as_str()),
                "{key} holds the plaintext {needle:?}"
            );
        }
    }

    // Every item that must be disposed of carries the TTL attribute, in the future of its data.
    let items = aws
        .control
        .client()
        .scan()
        .table_name(aws.control.table())
        .send()
        .await
        .unwrap()
        .items
        .unwrap_or_default();
    let mut must_go = 0;
    for item in &items {
        let Some(AttributeValue::S(pk)) = item.get("pk") else {
            panic!("an item without pk")
        };
        let Some(AttributeValue::S(sk)) = item.get("sk") else {
            panic!("an item without sk")
        };
        if pk.starts_with("TOKEN#") || sk.starts_with("VERSION#") || sk.starts_with("UPLOAD#") {
            must_go += 1;
            let expires = match item.get("expires_at") {
                Some(AttributeValue::N(n)) => n.parse::<i64>().unwrap(),
                other => panic!("{pk} {sk} has no numeric expires_at: {other:?}"),
            };
            assert!(
                expires > crate::support::T0.seconds(),
                "{pk} {sk} expires in the past"
            );
        }
    }
    assert!(must_go >= 10, "versions and a token were found ({must_go})");
}

/// Another school's objects swapped in under a school's keys: the key service refuses to
/// unwrap them under this school's context, and the partner gets an error, never the other
/// school's rows.
pub async fn swapped_objects_are_refused(stack: &mut Stack) {
    let a = stack.school("9990101").await;
    let b = stack.school("9990102").await;
    let management = stack.partner("swap-partner", &["Student"]).await;
    for (keys, estab) in [(&a, "9990101"), (&b, "9990102")] {
        let data = synthetic::school(estab, 12, estab.len() as u64);
        stack
            .upload(&keys.agent, &data.upload_body())
            .await
            .expect(StatusCode::OK);
    }
    stack
        .grant(&a, "swap-partner", &["Student"])
        .await
        .expect(StatusCode::OK);
    let token = stack.token("swap-partner", &management, "9990101").await;
    let path = "/api/v1/School/9990101/Students";
    stack.read(&token, path).await.expect(StatusCode::OK);

    let theirs = stack.objects_of("9990102").await;
    for ours in stack
        .objects_of("9990101")
        .await
        .iter()
        .filter(|k| k.contains("/Students/"))
    {
        let group = ours.rsplit('/').next().unwrap();
        let source = theirs
            .iter()
            .find(|k| k.contains("/Students/") && k.ends_with(&format!("/{group}")))
            .unwrap();
        let bytes = stack.ports.objects.get(source).await.unwrap();
        stack.ports.objects.put(ours, bytes).await.unwrap();
    }
    // A serve function that read the version before keeps what it authenticated then (its
    // own school's rows) for a minute; one that opens the objects now refuses them.
    stack.restart().await;
    let refused = stack.read(&token, path).await;
    refused.expect_error(
        StatusCode::INTERNAL_SERVER_ERROR,
        "something went wrong inside rollcall",
    );
    assert!(refused.body.get("Students").is_none());
}

#[tokio::test]
async fn another_schools_objects_do_not_open_on_aws() {
    let Some(mut stack) = Stack::start_aws().await else {
        return;
    };
    swapped_objects_are_refused(&mut stack).await;
}

#[tokio::test]
async fn another_schools_objects_do_not_open_locally() {
    swapped_objects_are_refused(&mut Stack::start().await).await;
}

/// A large upload on AWS: the URL is S3's, the PUT goes to the bucket with SSE-KMS, and ingest
/// runs from the `ObjectCreated` event (fed through the ingest function's Lambda handler, as
/// the emulator does not deliver notifications).
#[tokio::test]
async fn a_large_upload_goes_through_s3_and_its_event() {
    let Some(stack) = Stack::start_aws().await else {
        return;
    };
    let school = stack.school(OTHER).await;
    let body = synthetic::school(OTHER, 40, 3)
        .upload_body()
        .to_string()
        .into_bytes();
    let grant = stack
        .send(
            Method::POST,
            "/agent/v1/uploads",
            Some(&format!("Bearer {}", school.agent)),
            Some(
                json!({ "contentLength": body.len() })
                    .to_string()
                    .into_bytes(),
            ),
        )
        .await
        .expect(StatusCode::CREATED);
    let url = grant["url"].as_str().unwrap();
    let aws = stack.aws.as_ref().unwrap();
    let endpoint = aws.settings.endpoint_url.as_deref().unwrap();
    assert!(url.starts_with(endpoint), "{url} is not the bucket's");
    let headers: Vec<(String, String)> = grant["headers"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(name, _)| *name != "content-length")
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
        .collect();
    let put = stack.put_to(url, &headers, body).await;
    assert_eq!(put.status, StatusCode::OK);

    let key = format!(
        "incoming/{OTHER}/{}.json",
        grant["uploadId"].as_str().unwrap()
    );
    let head = aws
        .objects
        .client()
        .head_object()
        .bucket(aws.objects.bucket())
        .key(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(
        head.server_side_encryption(),
        Some(&ServerSideEncryption::AwsKms)
    );

    let mut event: Value = serde_json::from_str(
        &std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("events/s3-object-created.json"),
        )
        .unwrap(),
    )
    .unwrap();
    event["Records"][0]["s3"]["object"]["key"] = json!(key);
    event["Records"][0]["s3"]["bucket"]["name"] = json!(aws.objects.bucket());
    let state = rollcall_ingest::IngestState::new(&stack.ports);
    let app = rollcall_http::app(
        rollcall_ingest::router(state.clone()),
        &rollcall_ingest::routes().paths(),
    );
    let outcome = rollcall_ingest::lambda::handle_event(
        &state,
        &app,
        lambda_runtime::LambdaEvent::new(event, lambda_runtime::Context::default()),
    )
    .await
    .unwrap();
    assert_eq!(outcome, json!(["stored"]));

    let status = stack
        .send(
            Method::GET,
            grant["statusUrl"].as_str().unwrap(),
            Some(&format!("Bearer {}", school.agent)),
            None,
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(status["status"], "stored", "{status}");
    assert_eq!(status["result"]["resultSets"]["Students"]["added"], 40);
    assert!(
        stack.staged_objects().await.is_empty(),
        "the staged extract was deleted from the bucket"
    );
}

/// KMS is asked for one data key per result set an upload stores, and a partner reading one
/// set a hundred times costs a few Decrypt calls, not one each (the serve function's key
/// cache).
#[tokio::test]
async fn uploads_and_reads_call_kms_a_bounded_number_of_times() {
    let Some((stack, keys)) = Stack::start_aws_counting_keys().await else {
        return;
    };
    let school = stack.school("9990201").await;
    let management = stack.partner("kms-partner", &["Student"]).await;
    let data = synthetic::school("9990201", 20, 1);
    stack
        .upload(&school.agent, &data.upload_body())
        .await
        .expect(StatusCode::OK);
    assert_eq!(keys.generated(), data.result_sets.len());
    stack
        .grant(&school, "kms-partner", &["Student"])
        .await
        .expect(StatusCode::OK);
    let token = stack.token("kms-partner", &management, "9990201").await;
    let before = keys.unwrapped();
    for _ in 0..100 {
        let path = "/api/v1/School/9990201/Students?pageSize=2";
        stack.read(&token, path).await.expect(StatusCode::OK);
    }
    let decrypts = keys.unwrapped() - before;
    assert!(
        (1..=5).contains(&decrypts),
        "100 reads made {decrypts} Decrypt calls"
    );
}
