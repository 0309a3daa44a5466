//! The spine on the AWS adapters, over the emulator `scripts/test` starts: the same flow as on
//! the embedded store, then what lies in S3 and DynamoDB.

use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_s3::types::ServerSideEncryption;
use reqwest::StatusCode;
use rollcall_core::synthetic;

use crate::flow::{ESTAB, consented_flow};
use crate::support::Stack;

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
        if pk.starts_with("TOKEN#") || sk.starts_with("VERSION#") {
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
pub async fn swapped_objects_are_refused(stack: &Stack) {
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
    let refused = stack.read(&token, path).await;
    refused.expect_error(
        StatusCode::INTERNAL_SERVER_ERROR,
        "something went wrong inside rollcall",
    );
    assert!(refused.body.get("Students").is_none());
}

#[tokio::test]
async fn another_schools_objects_do_not_open_on_aws() {
    let Some(stack) = Stack::start_aws().await else {
        return;
    };
    swapped_objects_are_refused(&stack).await;
}

#[tokio::test]
async fn another_schools_objects_do_not_open_locally() {
    swapped_objects_are_refused(&Stack::start().await).await;
}
