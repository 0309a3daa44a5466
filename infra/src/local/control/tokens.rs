//! Partner tokens, by the hash of the token.

use super::codec::Cached;
use async_trait::async_trait;
use rollcall_core::model::{Estab, PartnerId, Token};
use rollcall_core::ports::{StoreError, TokenStore};
use rollcall_core::secret::KeyHash;
use rollcall_core::timestamp::Timestamp;
use rusqlite::{OptionalExtension, params};

use super::SqliteControlStore;
use super::codec::parse_col;

#[async_trait]
impl TokenStore for SqliteControlStore {
    async fn insert_token(&self, token: &Token) -> Result<(), StoreError> {
        let t = token.clone();
        self.call(move |c| {
            c.execute_cached(
                "INSERT INTO tokens (hash, partner, estab, secret_generation, issued_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![t.hash.as_str(), t.partner.as_str(), t.estab.as_str(), t.secret_generation as i64, t.issued_at.millis(), t.expires_at.millis()],
            )?;
            Ok(())
        })
        .await
    }

    async fn token(&self, hash: &KeyHash) -> Result<Option<Token>, StoreError> {
        let hash = hash.clone();
        self.call(move |c| {
            Ok(c.query_row_cached(
                "SELECT hash, partner, estab, secret_generation, issued_at, expires_at FROM tokens WHERE hash = ?1",
                [hash.as_str()],
                |row| {
                    Ok(Token {
                        hash: KeyHash::from_hex(row.get(0)?),
                        partner: parse_col(PartnerId::parse(&row.get::<_, String>(1)?))?,
                        estab: parse_col(Estab::parse(&row.get::<_, String>(2)?))?,
                        secret_generation: row.get::<_, i64>(3)? as u64,
                        issued_at: Timestamp::from_millis(row.get(4)?),
                        expires_at: Timestamp::from_millis(row.get(5)?),
                    })
                },
            )
            .optional()?)
        })
        .await
    }
}
