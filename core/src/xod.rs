//! The XoD v1 wire format: the error body, the answer object and its `__pagination__` block.
//!
//! Every top-level value of an answer is an array of objects; result sets come first, then
//! `meta`, then `__pagination__`, because clients take the first array-valued key as the data.

use std::ops::Range;

use serde_json::{Value, json};

use crate::dataset::Row;

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

/// The answer object: result sets in order, then `meta` and `__pagination__`.
pub fn answer(result_sets: Vec<(String, Vec<Row>)>, meta: Value, pagination: Value) -> Value {
    let mut out = serde_json::Map::new();
    for (name, rows) in result_sets {
        out.insert(
            name,
            Value::Array(rows.into_iter().map(Value::Object).collect()),
        );
    }
    out.insert("meta".into(), Value::Array(vec![meta]));
    out.insert("__pagination__".into(), Value::Array(vec![pagination]));
    Value::Object(out)
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
        let value = answer(vec![("Students".into(), vec![])], json!({}), json!({}));
        let keys: Vec<&String> = value.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["Students", "meta", "__pagination__"]);
    }
}
