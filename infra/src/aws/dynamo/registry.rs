//! Registering schools (with the pointers that find them by key hash) and partners (by
//! management secret hash): the operator's commands.

use async_trait::async_trait;
use rollcall_core::model::{Partner, School};
use rollcall_core::ports::{Registry, StoreError};

use super::DynamoControlStore;
use aws_sdk_dynamodb::types::{Delete, Put, TransactWriteItem};
use rollcall_core::secret::KeyHash;

use super::codec::{pointer, s};
use super::partners::partner_item;
use super::schools::school_item;

#[async_trait]
impl Registry for DynamoControlStore {
    async fn insert_school(&self, school: &School) -> Result<(), StoreError> {
        let estab = school.estab.as_str();
        let new = "attribute_not_exists(pk)";
        let actions = vec![
            self.put(school_item(school), new)?,
            self.put(
                pointer(
                    format!("AGENTKEY#{}", school.agent_key_hash.as_str()),
                    estab,
                ),
                new,
            )?,
            self.put(
                pointer(
                    format!("ADMINKEY#{}", school.admin_key_hash.as_str()),
                    estab,
                ),
                new,
            )?,
        ];
        self.transact(actions, "the school exists").await
    }

    async fn replace_admin_key(&self, school: &School, old: &KeyHash) -> Result<(), StoreError> {
        let estab = school.estab.as_str();
        let build = |e: aws_sdk_dynamodb::error::BuildError| StoreError::unavailable(e);
        let replace_school = Put::builder()
            .table_name(&self.table)
            .set_item(Some(school_item(school)))
            .condition_expression("admin_key_hash = :old")
            .expression_attribute_values(":old", s(old.as_str()))
            .build()
            .map_err(build)?;
        let old_pointer = Delete::builder()
            .table_name(&self.table)
            .key("pk", s(format!("ADMINKEY#{}", old.as_str())))
            .key("sk", s("#KEY"))
            .condition_expression("attribute_exists(pk)")
            .build()
            .map_err(build)?;
        let new_pointer = pointer(
            format!("ADMINKEY#{}", school.admin_key_hash.as_str()),
            estab,
        );
        let actions = vec![
            TransactWriteItem::builder().put(replace_school).build(),
            TransactWriteItem::builder().delete(old_pointer).build(),
            self.put(new_pointer, "attribute_not_exists(pk)")?,
        ];
        self.transact(actions, "the school's admin key changed meanwhile")
            .await
    }

    async fn insert_partner(&self, partner: &Partner) -> Result<(), StoreError> {
        let new = "attribute_not_exists(pk)";
        let actions = vec![
            self.put(partner_item(partner), new)?,
            self.put(
                pointer(
                    format!("MGMTKEY#{}", partner.management_secret_hash.as_str()),
                    partner.id.as_str(),
                ),
                new,
            )?,
        ];
        self.transact(actions, "the partner exists").await
    }
}
