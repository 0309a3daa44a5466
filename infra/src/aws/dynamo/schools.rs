//! Schools, and the pointer items that find them by agent or admin key hash.

use async_trait::async_trait;
use rollcall_core::model::{Estab, School};
use rollcall_core::ports::{SchoolStore, StoreError};
use rollcall_core::secret::KeyHash;

use super::DynamoControlStore;
use super::codec::{Item, b, bytes, id, key_item, n, s, school_pk, text, time};

pub(super) fn school_item(school: &School) -> Item {
    let mut item = key_item(school_pk(&school.estab), "#SCHOOL");
    item.insert("gsi1pk".into(), s("SCHOOLS"));
    item.insert("gsi1sk".into(), s(school.estab.as_str()));
    item.insert("estab".into(), s(school.estab.as_str()));
    item.insert("name".into(), s(&school.name));
    item.insert("agent_key_hash".into(), s(school.agent_key_hash.as_str()));
    item.insert("admin_key_hash".into(), s(school.admin_key_hash.as_str()));
    item.insert("row_hash_key".into(), b(&school.row_hash_key));
    item.insert("created_at".into(), n(school.created_at.millis()));
    item
}

pub(super) fn school_from(item: &Item) -> Result<School, StoreError> {
    Ok(School {
        estab: id(Estab::parse(&text(item, "estab")?), "estab")?,
        name: text(item, "name")?,
        agent_key_hash: KeyHash::from_hex(text(item, "agent_key_hash")?),
        admin_key_hash: KeyHash::from_hex(text(item, "admin_key_hash")?),
        row_hash_key: bytes(item, "row_hash_key")?,
        created_at: time(item, "created_at")?,
    })
}

#[async_trait]
impl SchoolStore for DynamoControlStore {
    async fn school(&self, estab: &Estab) -> Result<Option<School>, StoreError> {
        self.get(school_pk(estab), "#SCHOOL")
            .await?
            .map(|item| school_from(&item))
            .transpose()
    }

    async fn school_by_agent_key(&self, hash: &KeyHash) -> Result<Option<School>, StoreError> {
        self.school_by_pointer(format!("AGENTKEY#{}", hash.as_str()))
            .await
    }

    async fn school_by_admin_key(&self, hash: &KeyHash) -> Result<Option<School>, StoreError> {
        self.school_by_pointer(format!("ADMINKEY#{}", hash.as_str()))
            .await
    }

    async fn schools(&self) -> Result<Vec<School>, StoreError> {
        // The index is eventually consistent: a school registered a moment ago may be missing.
        self.query_index("SCHOOLS", None)
            .await?
            .iter()
            .map(school_from)
            .collect()
    }
}

impl DynamoControlStore {
    async fn school_by_pointer(&self, pk: String) -> Result<Option<School>, StoreError> {
        let Some(item) = self.get(pk, "#KEY").await? else {
            return Ok(None);
        };
        let estab = id(Estab::parse(&text(&item, "target")?), "target")?;
        self.school(&estab).await
    }
}
