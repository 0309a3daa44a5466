//! The access log: appended on every partner call, read newest first.

use super::codec::Cached;
use async_trait::async_trait;
use rollcall_core::model::{AccessEntry, Estab, PartnerId, Refused};
use rollcall_core::ports::{AccessLog, LogPage, LogQuery, StoreError};
use rollcall_core::timestamp::Timestamp;
use rusqlite::{Row, params};

use super::SqliteControlStore;
use super::codec::{parse_col, scopes_from_text, scopes_to_text};

pub(super) fn access_from_row(row: &Row<'_>) -> rusqlite::Result<AccessEntry> {
    Ok(AccessEntry {
        estab: parse_col(Estab::parse(&row.get::<_, String>(0)?))?,
        partner: parse_col(PartnerId::parse(&row.get::<_, String>(1)?))?,
        at: Timestamp::from_millis(row.get(2)?),
        endpoint: row.get(3)?,
        scopes_used: scopes_from_text(row.get(4)?)?,
        rows: row.get::<_, i64>(5)? as u64,
        refused: match (
            row.get::<_, Option<i64>>(6)?,
            row.get::<_, Option<String>>(7)?,
        ) {
            (Some(status), Some(reason)) => Some(Refused {
                status: status as u16,
                reason,
            }),
            _ => None,
        },
        people: row.get(8)?,
    })
}

#[async_trait]
impl AccessLog for SqliteControlStore {
    async fn append_access(&self, entry: &AccessEntry) -> Result<(), StoreError> {
        let e = entry.clone();
        self.call(move |c| {
            c.execute_cached(
                "INSERT INTO access_log (estab, partner, at, endpoint, scopes, rows, refused_status, refused_reason, people)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                params![
                    e.estab.as_str(),
                    e.partner.as_str(),
                    e.at.millis(),
                    e.endpoint,
                    scopes_to_text(&e.scopes_used),
                    e.rows as i64,
                    e.refused.as_ref().map(|r| i64::from(r.status)),
                    e.refused.as_ref().map(|r| r.reason.clone()),
                    e.people,
                ],
            )?;
            Ok(())
        })
        .await
    }

    async fn access_log(&self, estab: &Estab, query: &LogQuery) -> Result<LogPage, StoreError> {
        let cursor = match &query.cursor {
            Some(text) => Some(
                text.parse::<i64>()
                    .map_err(|_| StoreError::NotFound(format!("access-log cursor `{text}`")))?,
            ),
            None => None,
        };
        let (estab, query) = (estab.clone(), query.clone());
        self.call(move |c| {
            let mut stmt = c.prepare_cached(
                "SELECT estab, partner, at, endpoint, scopes, rows, refused_status, refused_reason, people, seq
                 FROM access_log
                 WHERE estab = ?1
                   AND (?2 IS NULL OR partner = ?2)
                   AND (?3 IS NULL OR endpoint = ?3 COLLATE NOCASE)
                   AND (?4 IS NULL OR at >= ?4)
                   AND (?5 IS NULL OR at < ?5)
                   AND (?6 IS NULL OR seq < ?6)
                 ORDER BY seq DESC LIMIT ?7",
            )?;
            let mut rows = stmt
                .query_map(
                    params![
                        estab.as_str(),
                        query.partner.as_ref().map(PartnerId::as_str),
                        query.endpoint,
                        query.from.map(Timestamp::millis),
                        query.to.map(Timestamp::millis),
                        cursor,
                        query.limit as i64 + 1,
                    ],
                    |row| Ok((access_from_row(row)?, row.get::<_, i64>(9)?)),
                )?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            let more = rows.len() > query.limit;
            rows.truncate(query.limit);
            let next = more
                .then(|| rows.last().map(|(_, seq)| seq.to_string()))
                .flatten();
            Ok(LogPage {
                entries: rows.into_iter().map(|(entry, _)| entry).collect(),
                next,
            })
        })
        .await
    }

    async fn partner_access(
        &self,
        estab: &Estab,
        partner: &PartnerId,
        since: Timestamp,
        limit: usize,
    ) -> Result<Vec<AccessEntry>, StoreError> {
        let (estab, partner) = (estab.clone(), partner.clone());
        self.call(move |c| {
            let mut stmt = c.prepare_cached(
                "SELECT estab, partner, at, endpoint, scopes, rows, refused_status, refused_reason, people FROM access_log
                 WHERE estab = ?1 AND partner = ?2 AND at >= ?3 ORDER BY seq DESC LIMIT ?4",
            )?;
            let rows = stmt
                .query_map(
                    params![
                        estab.as_str(),
                        partner.as_str(),
                        since.millis(),
                        limit as i64
                    ],
                    access_from_row,
                )?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(rows)
        })
        .await
    }
}
