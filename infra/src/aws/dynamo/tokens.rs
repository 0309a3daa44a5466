//! Partner tokens, by the hash of the token.

use async_trait::async_trait;
use rollcall_core::model::{Estab, PartnerId, Token};
use rollcall_core::ports::{StoreError, TokenStore};
use rollcall_core::secret::KeyHash;

use super::DynamoControlStore;
use super::codec::{Item, id, key_item, n, number, s, text, time};

pub(super) fn token_item(t: &Token) -> Item {
    let mut item = key_item(format!("TOKEN#{}", t.hash.as_str()), "#TOKEN");
    item.insert("gsi1pk".into(), s("TOKENS"));
    item.insert("gsi1sk".into(), s(format!("{:015}", t.expires_at.millis())));
    item.insert("hash".into(), s(t.hash.as_str()));
    item.insert("partner".into(), s(t.partner.as_str()));
    item.insert("estab".into(), s(t.estab.as_str()));
    item.insert("secret_generation".into(), n(t.secret_generation));
    item.insert("issued_at".into(), n(t.issued_at.millis()));
    item.insert("expires_at_ms".into(), n(t.expires_at.millis()));
    item.insert("expires_at".into(), n(t.expires_at.seconds()));
    item
}

pub(super) fn token_from(item: &Item) -> Result<Token, StoreError> {
    Ok(Token {
        hash: KeyHash::from_hex(text(item, "hash")?),
        partner: id(PartnerId::parse(&text(item, "partner")?), "partner")?,
        estab: id(Estab::parse(&text(item, "estab")?), "estab")?,
        secret_generation: number(item, "secret_generation")? as u64,
        issued_at: time(item, "issued_at")?,
        expires_at: time(item, "expires_at_ms")?,
    })
}

#[async_trait]
impl TokenStore for DynamoControlStore {
    async fn insert_token(&self, token: &Token) -> Result<(), StoreError> {
        self.put_new(token_item(token), "the token exists").await
    }

    async fn token(&self, hash: &KeyHash) -> Result<Option<Token>, StoreError> {
        self.get(format!("TOKEN#{}", hash.as_str()), "#TOKEN")
            .await?
            .map(|item| token_from(&item))
            .transpose()
    }
}
