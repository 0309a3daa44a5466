//! Registering schools (with the pointers that find them by key hash) and partners (by
//! management secret hash): the operator's commands.

use async_trait::async_trait;
use rollcall_core::model::{Partner, School};
use rollcall_core::ports::{Registry, StoreError};

use super::DynamoControlStore;
use super::codec::pointer;
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
