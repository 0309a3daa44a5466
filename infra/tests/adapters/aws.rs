//! What only the AWS adapters have: objects encrypted at rest under the stack's key, upload
//! URLs that bind what S3 checks, a key cache that keeps contexts apart.

use aws_sdk_s3::types::ServerSideEncryption;
use rollcall_core::envelope::KeyContext;
use rollcall_core::model::Estab;
use rollcall_core::ports::{
    Clock, DataKeyGenerator, DataKeyUnwrapper, ObjectStore, SystemClock, UploadUrlSigner,
};
use rollcall_core::timestamp::Duration;
use rollcall_infra::aws::AwsPorts;

use crate::emulator;

#[tokio::test]
async fn every_object_is_put_with_sse_kms_under_the_key() {
    let Some(aws) = emulator().await else { return };
    aws.objects
        .put("1/Students/1-a/b", b"sealed".to_vec())
        .await
        .unwrap();
    assert_encrypted_under_the_key(&aws, "1/Students/1-a/b").await;
}

/// The object at `key` is stored SSE-KMS under the stack's key.
async fn assert_encrypted_under_the_key(aws: &AwsPorts, key: &str) {
    let head = aws
        .objects
        .client()
        .head_object()
        .bucket(aws.objects.bucket())
        .key(key)
        .send()
        .await
        .unwrap();
    assert_eq!(
        head.server_side_encryption(),
        Some(&ServerSideEncryption::AwsKms),
        "{key}"
    );
    assert!(head.ssekms_key_id().unwrap().contains(&aws.settings.key_id));
}

#[tokio::test]
async fn a_cached_key_is_not_served_under_another_context() {
    let Some(aws) = emulator().await else { return };
    let school = KeyContext::new(&Estab::parse("1").unwrap(), "Students");
    let other = KeyContext::new(&Estab::parse("2").unwrap(), "Students");
    let key = aws.keys.generate(&school).await.unwrap();
    aws.keys.unwrap(&school, &key.wrapped).await.unwrap();
    assert!(aws.keys.unwrap(&other, &key.wrapped).await.is_err());
}

/// The emulator takes any signature, so what S3 would check is asserted on the URL itself:
/// which headers the signature covers, and for how long it is valid.
#[tokio::test]
async fn upload_urls_bind_length_type_encryption_and_expiry() {
    let Some(aws) = emulator().await else { return };
    let key = "incoming/1/0abc.json";
    let body = br#"{"resultSets": {}}"#.to_vec();
    let put = aws
        .objects
        .presign_put(
            key,
            body.len() as u64,
            "application/json",
            SystemClock.now(),
            Duration::minutes(15),
        )
        .await
        .unwrap();

    let query: Vec<(String, String)> = query_pairs(put.url.split_once('?').expect("a query").1);
    let param = |name: &str| {
        query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("no {name} in {}", put.url))
    };
    assert_eq!(param("X-Amz-Expires"), "900");
    let signed = param("X-Amz-SignedHeaders");
    for header in [
        "content-length",
        "content-type",
        "host",
        "x-amz-server-side-encryption",
        "x-amz-server-side-encryption-aws-kms-key-id",
        "x-amz-server-side-encryption-bucket-key-enabled",
    ] {
        assert!(
            signed.split(';').any(|h| h == header),
            "{header} is not signed: {signed}"
        );
        assert!(
            header == "host" || put.headers.iter().any(|(name, _)| name == header),
            "the agent is not told to send {header}: {:?}",
            put.headers
        );
    }
    assert!(
        put.url
            .contains(&format!("/{}/{key}?", aws.objects.bucket()))
    );

    // The PUT, sent as the agent sends it, lands encrypted under the key.
    let client = reqwest::Client::new();
    let mut request = client.put(&put.url).body(body);
    for (name, value) in &put.headers {
        if name != "content-length" {
            request = request.header(name, value);
        }
    }
    let response = request.send().await.unwrap();
    assert!(
        response.status().is_success(),
        "{:?}",
        response.text().await
    );
    assert_encrypted_under_the_key(&aws, key).await;
}

fn query_pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.replace("%3B", ";")))
        .collect()
}
