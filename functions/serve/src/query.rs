//! The query parameters of a data call, read once: paging, options, `select`, `updatedSince`,
//! `changedRows`, `onlyGetDbStatus`, and `version` (which `NextPage` carries so a paginated
//! walk stays on the version it started with). Names match without regard to case.

use std::collections::BTreeSet;

use rollcall_core::catalogue::Endpoint;
use rollcall_core::timestamp::Timestamp;
use rollcall_core::xod::{DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, PageError};
use rollcall_http::ApiError;
use rollcall_http::request::QueryParams;

use crate::filter::Filters;

/// How a call takes part in a changeset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ChangedRows {
    /// `changedRows=*`: everything, and a hash to continue from.
    Start,
    /// `changedRows=<hash>`: what changed since the hash's snapshot.
    Since(String),
}

#[derive(Debug, Clone)]
pub(crate) struct ReadQuery {
    pub page: u64,
    pub page_size: u64,
    pub options: BTreeSet<String>,
    pub select: Option<Vec<String>>,
    pub updated_since: Option<Timestamp>,
    pub changed_rows: Option<ChangedRows>,
    pub only_db_status: bool,
    /// The page pin of a walk's later pages ([`rollcall_core::walk`]).
    pub version: Option<String>,
    pub params: QueryParams,
}

impl ReadQuery {
    pub fn parse(endpoint: &Endpoint, raw: Option<&str>) -> Result<Self, ApiError> {
        let params = QueryParams::parse(raw)?;
        let options = options(endpoint, &params)?;
        let select: Option<Vec<String>> = params.get("select").map(|list| {
            list.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()
        });
        let updated_since = params
            .get("updatedSince")
            .map(|text| {
                Timestamp::parse_given(text).map_err(|e| {
                    ApiError::BadRequest(format!(
                        "updatedSince: {e}; rows changed after it are answered"
                    ))
                })
            })
            .transpose()?;
        let changed_rows = params.get("changedRows").map(|text| match text.trim() {
            "*" => ChangedRows::Start,
            hash => ChangedRows::Since(hash.to_owned()),
        });
        let only_db_status = match params.get("onlyGetDbStatus") {
            None => false,
            Some(v) if v.eq_ignore_ascii_case("true") => true,
            Some(v) if v.eq_ignore_ascii_case("false") => false,
            Some(_) => {
                return Err(ApiError::BadRequest(
                    "onlyGetDbStatus must be true or false".to_owned(),
                ));
            }
        };
        let page = params.number("page")?.unwrap_or(1);
        let page_size = params.number("pageSize")?.unwrap_or(DEFAULT_PAGE_SIZE);
        // Checked here as well as where a page is cut, so a call that cuts none
        // (`onlyGetDbStatus=true`) refuses the same out-of-range values.
        if page == 0 {
            return Err(PageError::PageZero.into());
        }
        if !(1..=MAX_PAGE_SIZE).contains(&page_size) {
            return Err(PageError::PageSize.into());
        }
        Ok(Self {
            page,
            page_size,
            options,
            select,
            updated_since,
            changed_rows,
            only_db_status,
            version: params.get("version").map(str::to_owned),
            params,
        })
    }

    /// What shapes the answer besides paging, as `name=value` (names lower-case, sorted): a
    /// changeset is bound to it.
    pub fn binding(&self, filters: &Filters) -> Vec<String> {
        let mut binding: Vec<String> = self
            .options
            .iter()
            .map(|o| format!("option={}", o.to_ascii_lowercase()))
            .collect();
        if let Some(fields) = &self.select {
            binding.push(format!("select={}", fields.join(",").to_ascii_lowercase()));
        }
        if let Some(since) = self.updated_since {
            binding.push(format!("updatedsince={}", since.millis()));
        }
        for (name, value) in &filters.given {
            binding.push(format!("{name}={value}"));
        }
        binding.sort();
        binding
    }

    /// The parameters `NextPage` carries: the pin of the version this walk reads (for stored
    /// result sets), what shaped it, and the changeset it reads.
    pub fn carry(&self, pin: Option<&str>, filters: &Filters) -> String {
        let mut pairs: Vec<(&str, String)> = Vec::new();
        if let Some(pin) = pin {
            pairs.push(("version", pin.to_owned()));
        }
        pairs.extend(self.shaping(filters));
        if let Some(ChangedRows::Since(hash)) = &self.changed_rows {
            pairs.push(("changedRows", hash.clone()));
        }
        then_encoded(&pairs)
    }

    /// The `NextUrl` of a changeset that continues from `next`: its first page, shaped as
    /// this call was (a changeset is bound to its shape, so a continuation without it would
    /// be refused). The hash travels unescaped, as XoD writes it.
    pub fn next_changes_url(&self, next: &str, filters: &Filters) -> String {
        let shaping = then_encoded(&self.shaping(filters));
        format!(
            "?changedRows={next}&page=1&pageSize={}{shaping}",
            self.page_size
        )
    }

    /// What shaped the call, which a later page or changeset repeats: its filters, options,
    /// `select` and `updatedSince`.
    fn shaping<'f>(&self, filters: &'f Filters) -> Vec<(&'f str, String)> {
        let mut pairs: Vec<(&str, String)> = Vec::new();
        for (name, value) in &filters.given {
            pairs.push((name.as_str(), value.clone()));
        }
        if !self.options.is_empty() {
            let list: Vec<&str> = self.options.iter().map(String::as_str).collect();
            pairs.push(("options", list.join(",")));
        }
        if let Some(fields) = &self.select {
            pairs.push(("select", fields.join(",")));
        }
        if let Some(since) = self.updated_since {
            pairs.push(("updatedSince", since.to_rfc3339()));
        }
        pairs
    }
}

/// `pairs` encoded as a query string's continuation (`&a=1&b=2`), or nothing.
fn then_encoded(pairs: &[(&str, String)]) -> String {
    if pairs.is_empty() {
        return String::new();
    }
    let encoded = serde_urlencoded::to_string(pairs).expect("strings encode");
    format!("&{encoded}")
}

/// The endpoint's options named in `options=a,b` (matched without regard to case).
fn options(endpoint: &Endpoint, params: &QueryParams) -> Result<BTreeSet<String>, ApiError> {
    let Some(list) = params.get("options") else {
        return Ok(BTreeSet::new());
    };
    let mut chosen = BTreeSet::new();
    for asked in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let known = endpoint
            .options
            .keys()
            .find(|name| name.eq_ignore_ascii_case(asked))
            .ok_or_else(|| {
                let valid: Vec<&str> = endpoint.options.keys().map(String::as_str).collect();
                let valid = if valid.is_empty() {
                    "it takes none".to_owned()
                } else {
                    format!("valid options: {}", valid.join(", "))
                };
                ApiError::BadRequest(format!(
                    "`{}` is not an option of {}; {valid}",
                    asked.chars().take(64).collect::<String>(),
                    endpoint.path
                ))
            })?;
        chosen.insert(known.clone());
    }
    Ok(chosen)
}

#[cfg(test)]
mod tests {
    use rollcall_core::catalogue::Catalogue;

    use super::*;

    fn parse(query: &str) -> Result<ReadQuery, ApiError> {
        let students = Catalogue::get().endpoint_by_path("Students").unwrap();
        ReadQuery::parse(students, Some(query))
    }

    #[test]
    fn out_of_range_paging_is_refused_even_when_no_page_is_cut() {
        for query in [
            "pageSize=0",
            "pageSize=2001",
            "page=0",
            "pageSize=7099&onlyGetDbStatus=true",
            "page=0&onlyGetDbStatus=true",
        ] {
            let error = parse(query)
                .err()
                .unwrap_or_else(|| panic!("{query} was taken"));
            assert!(
                matches!(error, ApiError::BadRequest(_)),
                "{query}: {error:?}"
            );
        }
        let query = parse("page=3&pageSize=2000&onlyGetDbStatus=true").unwrap();
        assert_eq!((query.page, query.page_size), (3, 2000));
        assert!(query.only_db_status);
    }
}
