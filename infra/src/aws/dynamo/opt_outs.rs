//! A school's opt-outs of people, per partner.

use async_trait::async_trait;
use rollcall_core::model::{Estab, PartnerId};
use rollcall_core::optout::{OptOutRecord, OptOuts};
use rollcall_core::ports::{OptOutStore, StoreError};

use super::DynamoControlStore;
use super::codec::{conditional, json, key_item, n, number, parsed, school_pk, time};

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
            // Written before opt-outs were versioned: the first version.
            version: match item.get("version") {
                Some(_) => number(&item, "version")? as u64,
                None => 1,
            },
        }))
    }

    async fn put_opt_outs(
        &self,
        record: &OptOutRecord,
        expected: Option<u64>,
    ) -> Result<(), StoreError> {
        let mut item = key_item(
            school_pk(&record.estab),
            &format!("OPTOUT#{}", record.partner),
        );
        item.insert("students".into(), json(&record.people.students));
        item.insert("staff".into(), json(&record.people.staff));
        item.insert("contacts".into(), json(&record.people.contacts));
        item.insert("updated_at".into(), n(record.updated_at.millis()));
        item.insert("version".into(), n(record.version));
        let request = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item));
        let request = match expected {
            None => request.condition_expression("attribute_not_exists(pk)"),
            // A record written before opt-outs were versioned is version 1.
            Some(1) => request
                .condition_expression("attribute_not_exists(version) OR version = :expected")
                .expression_attribute_values(":expected", n(1)),
            Some(version) => request
                .condition_expression("version = :expected")
                .expression_attribute_values(":expected", n(version)),
        };
        request
            .send()
            .await
            .map_err(|e| conditional(e, "the opt-outs changed meanwhile"))?;
        Ok(())
    }
}
