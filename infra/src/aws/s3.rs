//! Object store on S3: one object per key, each put with SSE-KMS under the bucket's key as a
//! second layer over the envelope. Also signs the agents' large-upload PUTs: the pre-signed
//! URL binds the key, exact length, content type and the same SSE-KMS headers.

use async_trait::async_trait;
use aws_sdk_s3::Client;
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::ServerSideEncryption;
use rollcall_core::ports::{ObjectStore, PresignedPut, StoreError, UploadUrlSigner};
use rollcall_core::timestamp::{Duration, Timestamp};

pub struct S3ObjectStore {
    client: Client,
    bucket: String,
    key_id: String,
}

impl S3ObjectStore {
    pub fn new(client: Client, bucket: String, key_id: String) -> Self {
        Self {
            client,
            bucket,
            key_id,
        }
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }
}

#[async_trait]
impl ObjectStore for S3ObjectStore {
    async fn put(&self, key: &str, bytes: Vec<u8>) -> Result<(), StoreError> {
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .body(ByteStream::from(bytes))
            .server_side_encryption(ServerSideEncryption::AwsKms)
            .ssekms_key_id(&self.key_id)
            .bucket_key_enabled(true)
            .send()
            .await
            .map_err(StoreError::unavailable)?;
        Ok(())
    }

    async fn get(&self, key: &str) -> Result<Vec<u8>, StoreError> {
        let output = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|error| match error.as_service_error() {
                Some(e) if e.is_no_such_key() => StoreError::NotFound(key.to_owned()),
                _ => StoreError::unavailable(error),
            })?;
        let bytes = output
            .body
            .collect()
            .await
            .map_err(StoreError::unavailable)?;
        Ok(bytes.into_bytes().to_vec())
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        // S3 answers a delete of a missing key with success, as the port wants.
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(StoreError::unavailable)?;
        Ok(())
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        let mut keys = Vec::new();
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(prefix)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(StoreError::unavailable)?;
            keys.extend(
                page.contents()
                    .iter()
                    .filter_map(|o| o.key().map(str::to_owned)),
            );
        }
        keys.sort();
        Ok(keys)
    }
}

#[async_trait]
impl UploadUrlSigner for S3ObjectStore {
    async fn presign_put(
        &self,
        key: &str,
        content_length: u64,
        content_type: &str,
        now: Timestamp,
        expires_in: Duration,
    ) -> Result<PresignedPut, StoreError> {
        let start = std::time::UNIX_EPOCH + std::time::Duration::from_millis(now.millis() as u64);
        let config = PresigningConfig::builder()
            .start_time(start)
            .expires_in(std::time::Duration::from_secs(
                expires_in.as_seconds() as u64
            ))
            .build()
            .map_err(StoreError::unavailable)?;
        let request = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_length(content_length as i64)
            .content_type(content_type)
            .server_side_encryption(ServerSideEncryption::AwsKms)
            .ssekms_key_id(&self.key_id)
            .bucket_key_enabled(true)
            .presigned(config)
            .await
            .map_err(StoreError::unavailable)?;
        Ok(PresignedPut {
            url: request.uri().to_owned(),
            headers: request
                .headers()
                .map(|(name, value)| (name.to_owned(), value.to_owned()))
                .collect(),
        })
    }
}
