//! The access log: appended on every partner call, read newest first.

use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use rollcall_core::model::{AccessEntry, Estab, PartnerId, Refused};
use rollcall_core::ports::{AccessLog, LogPage, LogQuery, StoreError};
use rollcall_core::secret::random_hex;
use rollcall_core::timestamp::Timestamp;

use super::DynamoControlStore;
use super::codec::{
    Item, id, json, key_item, n, number, optional_number, parsed, s, school_pk, text, time,
};

pub(super) static ACCESS_SEQUENCE: AtomicU64 = AtomicU64::new(0);

pub(super) fn access_from(item: &Item) -> Result<AccessEntry, StoreError> {
    Ok(AccessEntry {
        estab: id(Estab::parse(&text(item, "estab")?), "estab")?,
        partner: id(PartnerId::parse(&text(item, "partner")?), "partner")?,
        at: time(item, "at")?,
        endpoint: text(item, "endpoint")?,
        scopes_used: parsed(item, "scopes_used")?,
        rows: number(item, "rows")? as u64,
        refused: match optional_number(item, "refused_status")? {
            Some(status) => Some(Refused {
                status: status as u16,
                reason: text(item, "refused_reason")?,
            }),
            None => None,
        },
        people: match item.get("people") {
            Some(_) => text(item, "people")?,
            None => String::new(),
        },
    })
}

#[async_trait]
impl AccessLog for DynamoControlStore {
    async fn append_access(&self, entry: &AccessEntry) -> Result<(), StoreError> {
        // Entries of the same millisecond keep this process's order (the sequence), and
        // never collide with another process's (the random part).
        let sequence = ACCESS_SEQUENCE.fetch_add(1, Ordering::Relaxed);
        let sk = format!(
            "ACCESS#{:015}#{sequence:020}#{}",
            entry.at.millis(),
            random_hex::<4>()
        );
        let mut item = key_item(school_pk(&entry.estab), &sk);
        item.insert("estab".into(), s(entry.estab.as_str()));
        item.insert("partner".into(), s(entry.partner.as_str()));
        item.insert("at".into(), n(entry.at.millis()));
        item.insert("endpoint".into(), s(&entry.endpoint));
        item.insert("scopes_used".into(), json(&entry.scopes_used));
        item.insert("rows".into(), n(entry.rows));
        if let Some(refused) = &entry.refused {
            item.insert("refused_status".into(), n(refused.status));
            item.insert("refused_reason".into(), s(&refused.reason));
        }
        if !entry.people.is_empty() {
            item.insert("people".into(), s(&entry.people));
        }
        self.put_item(item).await
    }

    async fn access_log(&self, estab: &Estab, query: &LogQuery) -> Result<LogPage, StoreError> {
        let lower = query.from.map_or_else(
            || "ACCESS#".to_owned(),
            |from| format!("ACCESS#{:015}", from.millis()),
        );
        // An entry of the millisecond `to` sorts after `ACCESS#<to>`, so `to` is excluded.
        let mut upper = query.to.map_or_else(
            || "ACCESS#~".to_owned(),
            |to| format!("ACCESS#{:015}", to.millis()),
        );
        if let Some(cursor) = &query.cursor {
            if !cursor.starts_with("ACCESS#") || cursor.len() > 80 {
                return Err(StoreError::NotFound(format!(
                    "access-log cursor `{cursor}`"
                )));
            }
            upper = upper.min(cursor.clone());
        }
        let mut request = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND sk BETWEEN :lo AND :hi")
            .expression_attribute_values(":pk", s(school_pk(estab)))
            .expression_attribute_values(":lo", s(lower))
            .expression_attribute_values(":hi", s(upper))
            .consistent_read(true)
            .scan_index_forward(false);
        if let Some(partner) = &query.partner {
            request = request
                .filter_expression("partner = :partner")
                .expression_attribute_values(":partner", s(partner.as_str()));
        }
        let mut found: Vec<(String, AccessEntry)> = Vec::new();
        let mut pages = request.into_paginator().send();
        'pages: while let Some(page) = pages.next().await {
            let page = page.map_err(StoreError::unavailable)?;
            for item in page.items.unwrap_or_default() {
                let sk = text(&item, "sk")?;
                // BETWEEN includes the cursor's own entry, which the last page answered.
                if query.cursor.as_ref() == Some(&sk) {
                    continue;
                }
                let entry = access_from(&item)?;
                let endpoint_matches = query
                    .endpoint
                    .as_ref()
                    .is_none_or(|e| e.eq_ignore_ascii_case(&entry.endpoint));
                if endpoint_matches {
                    found.push((sk, entry));
                    if found.len() > query.limit {
                        break 'pages;
                    }
                }
            }
        }
        let more = found.len() > query.limit;
        found.truncate(query.limit);
        let next = more
            .then(|| found.last().map(|(sk, _)| sk.clone()))
            .flatten();
        Ok(LogPage {
            entries: found.into_iter().map(|(_, entry)| entry).collect(),
            next,
        })
    }

    async fn partner_access(
        &self,
        estab: &Estab,
        partner: &PartnerId,
        since: Timestamp,
        limit: usize,
    ) -> Result<Vec<AccessEntry>, StoreError> {
        let request = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND sk BETWEEN :from AND :to")
            .filter_expression("partner = :partner")
            .expression_attribute_values(":pk", s(school_pk(estab)))
            .expression_attribute_values(":from", s(format!("ACCESS#{:015}", since.millis())))
            .expression_attribute_values(":to", s("ACCESS#~"))
            .expression_attribute_values(":partner", s(partner.as_str()))
            .consistent_read(true)
            .scan_index_forward(false);
        let mut entries = Vec::new();
        let mut pages = request.into_paginator().send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(StoreError::unavailable)?;
            for item in page.items.unwrap_or_default() {
                entries.push(access_from(&item)?);
            }
            if entries.len() >= limit {
                break;
            }
        }
        entries.truncate(limit);
        Ok(entries)
    }
}
