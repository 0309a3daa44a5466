//! Who a partner's answer included: per kind of person, the ids of the people its rows were
//! about or named. The access log keeps it beside each answered call (ids only, never their
//! data), so a subject access export can list the calls that returned a person, and it is
//! disposed of with the entry.
//!
//! The record is kept small: ids are sorted, and runs of consecutive whole numbers (MIS ids
//! mostly are) are kept as ranges, so a page of 500 pupils in id order is a few bytes.
//! The text form is `s:1001~1500,1502;t:ABC;c:7` (`s` pupils, `t` staff, `c` contacts); an id
//! that is not a plain number is kept as it is, with `%`, `,`, `;`, `~` and `:` escaped.

use std::collections::{BTreeMap, BTreeSet};

use crate::catalogue::PersonKind;

/// The people an answer included, gathered while it is built.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Included(BTreeMap<PersonKind, BTreeSet<String>>);

impl Included {
    /// Notes person `id` of `kind` (surrounding spaces dropped, as opt-outs compare ids).
    pub fn add(&mut self, kind: PersonKind, id: &str) {
        let id = id.trim();
        if !id.is_empty() {
            self.0.entry(kind).or_default().insert(id.to_owned());
        }
    }

    /// Notes everyone `parts` included: at once, which for many is quicker than one by one.
    pub fn add_all<'a>(&mut self, parts: impl IntoIterator<Item = &'a Included>) {
        let mut noted: Vec<(PersonKind, &str)> = (parts.into_iter())
            .flat_map(|part| part.0.iter())
            .flat_map(|(kind, ids)| ids.iter().map(move |id| (*kind, id.as_str())))
            .collect();
        noted.sort_unstable();
        noted.dedup();
        for run in noted.chunk_by(|a, b| a.0 == b.0) {
            let ids = run.iter().map(|(_, id)| (*id).to_owned());
            let kind = run[0].0;
            match self.0.get_mut(&kind) {
                Some(mine) => mine.extend(ids),
                // From sorted ids, the set is built in one pass.
                None => {
                    self.0.insert(kind, ids.collect());
                }
            }
        }
    }

    /// About how many bytes it takes in memory.
    pub fn size(&self) -> usize {
        let per_id = std::mem::size_of::<String>() + 32;
        (self.0.values().flatten())
            .map(|id| id.len() + per_id)
            .sum()
    }

    pub fn is_empty(&self) -> bool {
        self.0.values().all(BTreeSet::is_empty)
    }

    /// The compact text form kept in the access log.
    pub fn encode(&self) -> String {
        let mut parts = Vec::new();
        for (kind, ids) in &self.0 {
            if ids.is_empty() {
                continue;
            }
            parts.push(format!("{}:{}", letter(*kind), encode_ids(ids)));
        }
        parts.join(";")
    }
}

/// Whether the access-log record `encoded` (from [`Included::encode`]) includes person `id`
/// of `kind`. Reads the record without expanding its ranges.
pub fn includes(encoded: &str, kind: PersonKind, id: &str) -> bool {
    let id = id.trim();
    let number = plain_number(id);
    encoded
        .split(';')
        .filter_map(|part| part.split_once(':'))
        .filter(|(k, _)| *k == letter(kind))
        .flat_map(|(_, ids)| ids.split(','))
        .any(|token| match (token.split_once('~'), number) {
            (Some((low, high)), Some(n)) => match (low.parse::<u64>(), high.parse::<u64>()) {
                (Ok(low), Ok(high)) => (low..=high).contains(&n),
                _ => false,
            },
            (Some(_), None) => false,
            (None, _) => unescape(token) == id,
        })
}

fn letter(kind: PersonKind) -> &'static str {
    match kind {
        PersonKind::Student => "s",
        PersonKind::Staff => "t",
        PersonKind::Contact => "c",
    }
}

/// A whole number written the one way (no sign, no leading zero), so its range form gives
/// back exactly the id.
fn plain_number(id: &str) -> Option<u64> {
    let canonical = !id.is_empty()
        && id.len() <= 18
        && id.bytes().all(|b| b.is_ascii_digit())
        && (id == "0" || !id.starts_with('0'));
    canonical.then(|| id.parse().ok()).flatten()
}

fn encode_ids(ids: &BTreeSet<String>) -> String {
    let mut numbers: Vec<u64> = ids.iter().filter_map(|id| plain_number(id)).collect();
    numbers.sort_unstable();
    let mut tokens: Vec<String> = Vec::new();
    let mut run: Option<(u64, u64)> = None;
    for n in numbers {
        run = match run {
            Some((low, high)) if n == high + 1 => Some((low, n)),
            Some(done) => {
                tokens.push(range(done));
                Some((n, n))
            }
            None => Some((n, n)),
        };
    }
    tokens.extend(run.map(range));
    tokens.extend(
        ids.iter()
            .filter(|id| plain_number(id).is_none())
            .map(|id| escape(id)),
    );
    tokens.join(",")
}

fn range((low, high): (u64, u64)) -> String {
    if low == high {
        low.to_string()
    } else {
        format!("{low}~{high}")
    }
}

const ESCAPED: [char; 5] = ['%', ',', ';', '~', ':'];

fn escape(id: &str) -> String {
    let mut out = String::with_capacity(id.len());
    for c in id.chars() {
        if ESCAPED.contains(&c) {
            out.push_str(&format!("%{:02X}", c as u32));
        } else {
            out.push(c);
        }
    }
    out
}

fn unescape(token: &str) -> String {
    let mut out = String::with_capacity(token.len());
    let mut rest = token;
    while let Some(at) = rest.find('%') {
        out.push_str(&rest[..at]);
        let code = rest
            .get(at + 1..at + 3)
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match code {
            Some(byte) => {
                out.push(char::from(byte));
                rest = &rest[at + 3..];
            }
            None => {
                out.push('%');
                rest = &rest[at + 1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(kind: PersonKind, ids: &[&str]) -> Included {
        let mut included = Included::default();
        for id in ids {
            included.add(kind, id);
        }
        included
    }

    #[test]
    fn consecutive_numbers_are_kept_as_ranges() {
        let ids: Vec<String> = (1001..=1500).map(|n| n.to_string()).collect();
        let mut refs: Vec<&str> = ids.iter().map(String::as_str).collect();
        refs.push("1502");
        let encoded = of(PersonKind::Student, &refs).encode();
        assert_eq!(encoded, "s:1001~1500,1502");
        assert!(includes(&encoded, PersonKind::Student, "1250"));
        assert!(includes(&encoded, PersonKind::Student, " 1502 "));
        assert!(!includes(&encoded, PersonKind::Student, "1501"));
        assert!(!includes(&encoded, PersonKind::Staff, "1250"));
    }

    #[test]
    fn ids_that_are_not_plain_numbers_are_kept_exactly() {
        let odd = ["007", "A,B", "x~y", "50%", "s:1", "-3"];
        let mut included = of(PersonKind::Contact, &odd);
        included.add(PersonKind::Staff, "ABC");
        let encoded = included.encode();
        for id in odd {
            assert!(
                includes(&encoded, PersonKind::Contact, id),
                "{id} in {encoded}"
            );
        }
        assert!(
            !includes(&encoded, PersonKind::Contact, "7"),
            "007 is not 7"
        );
        assert!(!includes(&encoded, PersonKind::Contact, "A"));
        assert!(!includes(&encoded, PersonKind::Contact, "1"));
        assert!(includes(&encoded, PersonKind::Staff, "ABC"));
        assert!(!includes(&encoded, PersonKind::Student, "ABC"));
    }

    #[test]
    fn an_answer_of_nobody_is_recorded_empty() {
        assert_eq!(Included::default().encode(), "");
        assert!(of(PersonKind::Student, &["  "]).is_empty());
        assert!(!includes("", PersonKind::Student, "1"));
    }
}
