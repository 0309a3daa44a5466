//! Partners, and the pointer items that find them by management secret hash.

use async_trait::async_trait;
use rollcall_core::model::{Partner, PartnerId};
use rollcall_core::ports::{PartnerStore, StoreError};
use rollcall_core::scope::ScopeSet;
use rollcall_core::secret::KeyHash;

use super::DynamoControlStore;
use super::codec::{Item, id, json, key_item, n, parsed, s, text, time};

pub(super) fn partner_item(partner: &Partner) -> Item {
    let mut item = key_item("PARTNERS".into(), &format!("PARTNER#{}", partner.id));
    item.insert("id".into(), s(partner.id.as_str()));
    item.insert("name".into(), s(&partner.name));
    item.insert("requested_scopes".into(), json(&partner.requested_scopes));
    item.insert(
        "management_secret_hash".into(),
        s(partner.management_secret_hash.as_str()),
    );
    item.insert("created_at".into(), n(partner.created_at.millis()));
    item
}

pub(super) fn partner_from(item: &Item) -> Result<Partner, StoreError> {
    Ok(Partner {
        id: id(PartnerId::parse(&text(item, "id")?), "id")?,
        name: text(item, "name")?,
        requested_scopes: parsed::<ScopeSet>(item, "requested_scopes")?,
        management_secret_hash: KeyHash::from_hex(text(item, "management_secret_hash")?),
        created_at: time(item, "created_at")?,
    })
}

#[async_trait]
impl PartnerStore for DynamoControlStore {
    async fn partner(&self, id: &PartnerId) -> Result<Option<Partner>, StoreError> {
        self.get("PARTNERS".into(), &format!("PARTNER#{id}"))
            .await?
            .map(|item| partner_from(&item))
            .transpose()
    }

    async fn partner_by_management_secret(
        &self,
        hash: &KeyHash,
    ) -> Result<Option<Partner>, StoreError> {
        let Some(item) = self
            .get(format!("MGMTKEY#{}", hash.as_str()), "#KEY")
            .await?
        else {
            return Ok(None);
        };
        let id = id(PartnerId::parse(&text(&item, "target")?), "target")?;
        self.partner(&id).await
    }

    async fn partners(&self) -> Result<Vec<Partner>, StoreError> {
        self.query_prefix("PARTNERS".into(), "PARTNER#", true, None)
            .await?
            .iter()
            .map(partner_from)
            .collect()
    }
}
