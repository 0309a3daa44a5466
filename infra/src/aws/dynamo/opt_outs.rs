//! A school's opt-outs of people, per partner.

use async_trait::async_trait;
use rollcall_core::model::{Estab, PartnerId};
use rollcall_core::optout::{OptOutRecord, OptOuts};
use rollcall_core::ports::{OptOutStore, StoreError};

use super::DynamoControlStore;
use super::codec::{json, key_item, n, parsed, school_pk, time};

#[async_trait]
impl OptOutStore for DynamoControlStore {
    async fn opt_outs(
        &self,
        estab: &Estab,
        partner: &PartnerId,
    ) -> Result<Option<OptOutRecord>, StoreError> {
        let Some(item) = self
            .get(school_pk(estab), &format!("OPTOUT#{partner}"))
            .await?
        else {
            return Ok(None);
        };
        Ok(Some(OptOutRecord {
            estab: estab.clone(),
            partner: partner.clone(),
            people: OptOuts {
                students: parsed(&item, "students")?,
                staff: parsed(&item, "staff")?,
                contacts: parsed(&item, "contacts")?,
            },
            updated_at: time(&item, "updated_at")?,
        }))
    }

    async fn put_opt_outs(&self, record: &OptOutRecord) -> Result<(), StoreError> {
        let mut item = key_item(
            school_pk(&record.estab),
            &format!("OPTOUT#{}", record.partner),
        );
        item.insert("students".into(), json(&record.people.students));
        item.insert("staff".into(), json(&record.people.staff));
        item.insert("contacts".into(), json(&record.people.contacts));
        item.insert("updated_at".into(), n(record.updated_at.millis()));
        self.put_item(item).await
    }
}
