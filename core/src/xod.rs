//! The XoD v1 wire format: the error body, the answer object and its `__pagination__` block.
//!
//! Every top-level value of an answer is an array of objects; result sets come first, then
//! `meta`, then `__pagination__`, because clients take the first array-valued key as the data.

use std::ops::Range;

use serde::Serialize;
use serde_json::{Value, json};

use crate::dataset::Row;
use crate::plan::AnsweredRow;

/// Without `pageSize`, answers are cut at this many rows (and say where the next page is).
/// Kept well under Lambda's 6 MB response limit for the widest result set.
pub const DEFAULT_PAGE_SIZE: u64 = 2000;
pub const MAX_PAGE_SIZE: u64 = 2000;

/// The XoD error body; clients detect an error by `ExceptionMessage`, whatever the status.
pub fn error_body(message: &str) -> Value {
    json!({
        "Message": null,
        "ExceptionType": null,
        "ExceptionMessage": message,
        "InnerException": null,
    })
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PageError {
    #[error("page must be 1 or more (pages are numbered from 1)")]
    PageZero,
    #[error("pageSize must be between 1 and {MAX_PAGE_SIZE}")]
    PageSize,
    #[error(
        "page {page} is past the last page of this answer ({last}); ask for a page from 1 to {last}"
    )]
    PastLastPage { page: u64, last: u64 },
}

/// One page of an answer: which rows, and the `__pagination__` entry that describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    pub rows: Range<usize>,
    pub block: Value,
}

/// Cuts `total` rows into pages of `size` and picks page `page` (1-based). An empty answer has
/// one empty page. `carry` (`&name=value...`) is appended to `NextPage`, so the next page is
/// asked of the same version, with the same parameters.
pub fn paginate(total: usize, page: u64, size: u64, carry: &str) -> Result<Page, PageError> {
    if page == 0 {
        return Err(PageError::PageZero);
    }
    if !(1..=MAX_PAGE_SIZE).contains(&size) {
        return Err(PageError::PageSize);
    }
    let total_u = total as u64;
    let page_count = total_u.div_ceil(size).max(1);
    if page > page_count {
        return Err(PageError::PastLastPage {
            page,
            last: page_count,
        });
    }
    let start = ((page - 1) * size).min(total_u) as usize;
    let end = (page * size).min(total_u) as usize;
    let next = (page < page_count).then(|| format!("?page={}&pageSize={size}{carry}", page + 1));
    Ok(Page {
        rows: start..end,
        block: json!({
            "PageSize": size,
            "PageNumber": page,
            "PageCount": page_count,
            "RowCount": total_u,
            "NextPage": next,
        }),
    })
}

/// One result set of an answer: rows as a read plan answered them, or rows rollcall made
/// itself (a `_deleted` set's `{"Id": ...}`).
#[derive(Debug, Clone)]
pub enum SetRows {
    Answered(Vec<AnsweredRow>),
    Made(Vec<Row>),
}

impl SetRows {
    pub fn len(&self) -> usize {
        match self {
            SetRows::Answered(rows) => rows.len(),
            SetRows::Made(rows) => rows.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn write(&self, out: &mut Vec<u8>) {
        match self {
            SetRows::Answered(rows) => {
                out.push(b'[');
                for (n, row) in rows.iter().enumerate() {
                    if n > 0 {
                        out.push(b',');
                    }
                    out.extend_from_slice(row.json());
                }
                out.push(b']');
            }
            SetRows::Made(rows) => write_json(out, rows),
        }
    }
}

/// The answer object: result sets in order, then `meta`, `__pagination__` and, for a
/// changeset read, `__changedRows__`. Written straight from the rows it is given.
#[derive(Debug, Clone)]
pub struct Answer {
    sets: Vec<(String, SetRows)>,
    meta: Value,
    pagination: Value,
    changed_rows: Option<Value>,
}

/// The answer object of `result_sets` (in the order given), `meta` and `pagination`.
pub fn answer(result_sets: Vec<(String, SetRows)>, meta: Value, pagination: Value) -> Answer {
    Answer {
        sets: result_sets,
        meta,
        pagination,
        changed_rows: None,
    }
}

impl Answer {
    /// Adds the `__changedRows__` block of a changeset read.
    pub fn with_changed_rows(mut self, block: Value) -> Self {
        self.changed_rows = Some(block);
        self
    }

    /// The answer as JSON bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let size: usize = self
            .sets
            .iter()
            .map(|(_, rows)| match rows {
                SetRows::Answered(rows) => rows.iter().map(|r| r.json().len() + 1).sum(),
                SetRows::Made(rows) => 32 * rows.len(),
            })
            .sum();
        let mut out = Vec::with_capacity(1024 + size);
        out.push(b'{');
        for (name, rows) in &self.sets {
            write_json(&mut out, name);
            out.push(b':');
            rows.write(&mut out);
            out.push(b',');
        }
        let blocks = [
            ("meta", Some(&self.meta)),
            ("__pagination__", Some(&self.pagination)),
            ("__changedRows__", self.changed_rows.as_ref()),
        ];
        for (n, (name, block)) in blocks.into_iter().enumerate() {
            let Some(block) = block else { continue };
            if n > 0 {
                out.push(b',');
            }
            write_json(&mut out, name);
            out.push(b':');
            write_json(&mut out, &[block]);
        }
        out.push(b'}');
        out
    }
}

fn write_json<T: Serialize + ?Sized>(out: &mut Vec<u8>, value: &T) {
    serde_json::to_writer(out, value).expect("JSON values serialise");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_cover_every_row_once() {
        let p1 = paginate(5, 1, 2, "").unwrap();
        let p3 = paginate(5, 3, 2, "").unwrap();
        assert_eq!(p1.rows, 0..2);
        assert_eq!(p1.block["NextPage"], "?page=2&pageSize=2");
        assert_eq!(p3.rows, 4..5);
        assert_eq!(p3.block["NextPage"], Value::Null);
        assert_eq!(p3.block["PageCount"], 3);
    }

    #[test]
    fn out_of_range_pages_are_refused() {
        assert_eq!(
            paginate(5, 4, 2, ""),
            Err(PageError::PastLastPage { page: 4, last: 3 })
        );
        assert_eq!(paginate(5, 0, 2, ""), Err(PageError::PageZero));
        assert_eq!(paginate(5, 1, 0, ""), Err(PageError::PageSize));
        assert_eq!(paginate(0, 1, 10, "").unwrap().rows, 0..0);
    }

    #[test]
    fn result_sets_come_before_meta_and_pagination() {
        let sets = vec![
            ("Students".into(), SetRows::Made(vec![])),
            ("Students_deleted".into(), SetRows::Made(vec![Row::new()])),
        ];
        let answer = answer(sets, json!({}), json!({})).with_changed_rows(json!({}));
        let value: Value = serde_json::from_slice(&answer.to_bytes()).unwrap();
        let keys: Vec<&String> = value.as_object().unwrap().keys().collect();
        assert_eq!(
            keys,
            [
                "Students",
                "Students_deleted",
                "meta",
                "__pagination__",
                "__changedRows__"
            ]
        );
        assert_eq!(value["Students_deleted"], json!([{}]));
        assert_eq!(value["meta"], json!([{}]));
    }
}
