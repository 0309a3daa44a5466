//! One consent per school and partner, changed only from the version last read.

use async_trait::async_trait;
use rollcall_core::model::{Consent, Estab, PartnerId};
use rollcall_core::ports::{ConsentStore, StoreError};
use rollcall_core::secret::KeyHash;
use rollcall_core::timestamp::Timestamp;

use super::DynamoControlStore;
use super::codec::{
    Item, b, bytes, conditional, id, json, key_item, n, number, optional_number, parsed, s,
    school_pk, text, time,
};

pub(super) fn consent_item(c: &Consent) -> Item {
    let mut item = key_item(school_pk(&c.estab), &format!("CONSENT#{}", c.partner));
    item.insert("gsi1pk".into(), s(format!("PARTNER#{}", c.partner)));
    item.insert("gsi1sk".into(), s(format!("CONSENT#{}", c.estab)));
    item.insert("estab".into(), s(c.estab.as_str()));
    item.insert("partner".into(), s(c.partner.as_str()));
    item.insert("scopes".into(), json(&c.scopes));
    item.insert("version".into(), n(c.version));
    item.insert("granted_at".into(), n(c.granted_at.millis()));
    item.insert("updated_at".into(), n(c.updated_at.millis()));
    if let Some(end) = c.end_date {
        item.insert("end_date".into(), n(end.millis()));
    }
    item.insert("secret_hash".into(), s(c.secret_hash.as_str()));
    item.insert("secret_sealed".into(), b(&c.secret_sealed));
    item.insert("secret_generation".into(), n(c.secret_generation));
    item
}

pub(super) fn consent_from(item: &Item) -> Result<Consent, StoreError> {
    Ok(Consent {
        estab: id(Estab::parse(&text(item, "estab")?), "estab")?,
        partner: id(PartnerId::parse(&text(item, "partner")?), "partner")?,
        scopes: parsed(item, "scopes")?,
        version: number(item, "version")? as u64,
        granted_at: time(item, "granted_at")?,
        updated_at: time(item, "updated_at")?,
        end_date: optional_number(item, "end_date")?.map(Timestamp::from_millis),
        secret_hash: KeyHash::from_hex(text(item, "secret_hash")?),
        secret_sealed: bytes(item, "secret_sealed")?,
        secret_generation: number(item, "secret_generation")? as u64,
    })
}

#[async_trait]
impl ConsentStore for DynamoControlStore {
    async fn consent(
        &self,
        estab: &Estab,
        partner: &PartnerId,
    ) -> Result<Option<Consent>, StoreError> {
        self.get(school_pk(estab), &format!("CONSENT#{partner}"))
            .await?
            .map(|item| consent_from(&item))
            .transpose()
    }

    async fn consents_of_school(&self, estab: &Estab) -> Result<Vec<Consent>, StoreError> {
        self.query_prefix(school_pk(estab), "CONSENT#", true, None)
            .await?
            .iter()
            .map(consent_from)
            .collect()
    }

    async fn consents_of_partner(&self, partner: &PartnerId) -> Result<Vec<Consent>, StoreError> {
        self.query_index(&format!("PARTNER#{partner}"), None)
            .await?
            .iter()
            .map(consent_from)
            .collect()
    }

    async fn put_consent(
        &self,
        consent: &Consent,
        expected: Option<u64>,
    ) -> Result<(), StoreError> {
        let mut request = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(consent_item(consent)));
        request = match expected {
            None => request.condition_expression("attribute_not_exists(pk)"),
            Some(version) => request
                .condition_expression("version = :expected")
                .expression_attribute_values(":expected", n(version)),
        };
        request
            .send()
            .await
            .map_err(|e| conditional(e, "the consent changed meanwhile"))?;
        Ok(())
    }
}
