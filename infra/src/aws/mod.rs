//! The AWS adapters: objects on S3 (SSE-KMS over the envelope), control data on DynamoDB
//! (one table, conditional writes, TTL), data keys from KMS (bound to an encryption context,
//! cached briefly once unwrapped).
//!
//! Every adapter takes its SDK client from one [`AwsSettings`], so a test or `rollcall dev
//! --aws` can point them all at an emulator's endpoint.

mod dynamo;
mod kms;
mod provision;
mod s3;

use std::sync::Arc;

use aws_config::{BehaviorVersion, Region};
use rollcall_core::ports::{Clock, ControlPorts, Ports};

pub use dynamo::DynamoControlStore;
pub use kms::KmsKeyService;
pub use provision::{create_table, provision_emulator};
pub use s3::S3ObjectStore;

/// Where the AWS resources are. In Lambda they come from the environment the SAM template
/// sets; an endpoint URL points every client at an emulator instead of AWS.
#[derive(Debug, Clone)]
pub struct AwsSettings {
    pub region: String,
    pub bucket: String,
    pub table: String,
    /// The KMS key (id, ARN or alias) that wraps data keys and encrypts the bucket.
    pub key_id: String,
    pub endpoint_url: Option<String>,
    /// Fixed credentials, for an emulator; otherwise the default chain (the Lambda role).
    pub static_credentials: Option<(String, String)>,
}

pub const REGION_VAR: &str = "AWS_REGION";
pub const BUCKET_VAR: &str = "ROLLCALL_BUCKET";
pub const TABLE_VAR: &str = "ROLLCALL_TABLE";
pub const KEY_VAR: &str = "ROLLCALL_KEY_ID";
pub const ENDPOINT_VAR: &str = "ROLLCALL_AWS_ENDPOINT_URL";

impl AwsSettings {
    /// From `AWS_REGION`, `ROLLCALL_BUCKET`, `ROLLCALL_TABLE`, `ROLLCALL_KEY_ID` and, for an
    /// emulator, `ROLLCALL_AWS_ENDPOINT_URL`.
    pub fn from_env() -> anyhow::Result<Self> {
        let var = |name: &str| {
            std::env::var(name).map_err(|_| anyhow::anyhow!("set {name} (see template.yaml)"))
        };
        Ok(Self {
            region: var(REGION_VAR)?,
            bucket: var(BUCKET_VAR)?,
            table: var(TABLE_VAR)?,
            key_id: var(KEY_VAR)?,
            endpoint_url: std::env::var(ENDPOINT_VAR).ok(),
            static_credentials: None,
        })
    }

    pub async fn sdk_config(&self) -> aws_config::SdkConfig {
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new(self.region.clone()));
        if let Some(url) = &self.endpoint_url {
            loader = loader.endpoint_url(url);
        }
        if let Some((id, secret)) = &self.static_credentials {
            loader = loader.credentials_provider(aws_sdk_s3::config::Credentials::new(
                id,
                secret,
                None,
                None,
                "rollcall-static",
            ));
        }
        loader.load().await
    }
}

/// The AWS adapters of every port.
#[derive(Clone)]
pub struct AwsPorts {
    pub settings: AwsSettings,
    pub control: Arc<DynamoControlStore>,
    pub objects: Arc<S3ObjectStore>,
    pub keys: Arc<KmsKeyService>,
}

impl AwsPorts {
    pub async fn connect(settings: AwsSettings) -> Self {
        let config = settings.sdk_config().await;
        let s3_config = aws_sdk_s3::config::Builder::from(&config)
            .force_path_style(settings.endpoint_url.is_some())
            .build();
        Self {
            control: Arc::new(DynamoControlStore::new(
                aws_sdk_dynamodb::Client::new(&config),
                settings.table.clone(),
            )),
            objects: Arc::new(S3ObjectStore::new(
                aws_sdk_s3::Client::from_conf(s3_config),
                settings.bucket.clone(),
                settings.key_id.clone(),
            )),
            keys: Arc::new(KmsKeyService::new(
                aws_sdk_kms::Client::new(&config),
                settings.key_id.clone(),
            )),
            settings,
        }
    }

    pub fn ports(&self, clock: Arc<dyn Clock>) -> Ports {
        Ports {
            control: ControlPorts::over(self.control.clone()),
            objects: self.objects.clone(),
            key_generator: self.keys.clone(),
            key_unwrapper: self.keys.clone(),
            upload_signer: self.objects.clone(),
            clock,
        }
    }
}
