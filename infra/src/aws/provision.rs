//! Creating the AWS resources rollcall expects, for an emulator (tests, `rollcall dev --aws`).
//! In AWS itself they come from `template.yaml`; this mirrors its table, bucket and key.

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, TimeToLiveSpecification,
};

use super::{AwsPorts, AwsSettings};

/// Creates a bucket, a table and a KMS key named `{label}-{random}-…` (fresh on every call,
/// so runs never share them), and connects to them.
pub async fn provision_emulator(
    endpoint_url: &str,
    region: &str,
    label: &str,
) -> anyhow::Result<AwsPorts> {
    let prefix = format!("{label}-{}", rollcall_core::secret::random_hex::<4>());
    let mut settings = AwsSettings {
        region: region.to_owned(),
        bucket: format!("{prefix}-objects"),
        table: format!("{prefix}-control"),
        key_id: String::new(),
        endpoint_url: Some(endpoint_url.to_owned()),
        static_credentials: Some(("testing".into(), "testing".into())),
    };
    let config = settings.sdk_config().await;
    let kms = aws_sdk_kms::Client::new(&config);
    let key = kms
        .create_key()
        .description(format!("{prefix} data keys"))
        .send()
        .await?;
    settings.key_id = key
        .key_metadata()
        .map(|m| m.key_id().to_owned())
        .ok_or_else(|| anyhow::anyhow!("the emulator made a key without an id"))?;

    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&config)
            .force_path_style(true)
            .build(),
    );
    let location = aws_sdk_s3::types::CreateBucketConfiguration::builder()
        .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::from(region))
        .build();
    s3.create_bucket()
        .bucket(&settings.bucket)
        .create_bucket_configuration(location)
        .send()
        .await?;

    create_table(&aws_sdk_dynamodb::Client::new(&config), &settings.table).await?;
    Ok(AwsPorts::connect(settings).await)
}

/// The control table: `pk`/`sk`, the `gsi1` index, TTL on `expires_at`.
pub async fn create_table(client: &aws_sdk_dynamodb::Client, name: &str) -> anyhow::Result<()> {
    let attribute = |name: &str| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(ScalarAttributeType::S)
            .build()
    };
    let key = |name: &str, kind: KeyType| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(kind)
            .build()
    };
    let index = GlobalSecondaryIndex::builder()
        .index_name("gsi1")
        .key_schema(key("gsi1pk", KeyType::Hash)?)
        .key_schema(key("gsi1sk", KeyType::Range)?)
        .projection(
            Projection::builder()
                .projection_type(ProjectionType::All)
                .build(),
        )
        .build()?;
    client
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(attribute("pk")?)
        .attribute_definitions(attribute("sk")?)
        .attribute_definitions(attribute("gsi1pk")?)
        .attribute_definitions(attribute("gsi1sk")?)
        .key_schema(key("pk", KeyType::Hash)?)
        .key_schema(key("sk", KeyType::Range)?)
        .global_secondary_indexes(index)
        .send()
        .await?;
    client
        .update_time_to_live()
        .table_name(name)
        .time_to_live_specification(
            TimeToLiveSpecification::builder()
                .attribute_name("expires_at")
                .enabled(true)
                .build()?,
        )
        .send()
        .await?;
    Ok(())
}
