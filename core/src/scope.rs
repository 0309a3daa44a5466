//! Consent scopes and the two shapes of scope expression the XoD catalogue uses.
//!
//! A field's expression is written `Student / StudentLite + Contact`: clauses joined by `+` must
//! all hold, and each clause holds when any of its `/`-separated scopes is granted (conjunctive
//! form). An endpoint's expression is written `Contact&Student,Contact&StudentLite`: alternatives
//! joined by `,`, each satisfied when all of its `&`-joined scopes are granted (disjunctive form).

use std::collections::BTreeSet;
use std::fmt;

/// The expression that any consent satisfies (health checks, public look-ups).
pub const ANY: &str = "*";

/// A set of granted (or requested) scope names.
pub type ScopeSet = BTreeSet<String>;

/// Why a scope expression could not be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("scope expression `{expr}` is not valid: {reason}")]
pub struct ScopeExprError {
    pub expr: String,
    pub reason: String,
}

/// A field's requirement: every clause must be satisfied; a clause is satisfied by any of its scopes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FieldScope {
    clauses: Vec<BTreeSet<String>>,
}

impl FieldScope {
    /// Reads `A / B + C`; `*` is satisfied by any consent.
    pub fn parse(expr: &str) -> Result<Self, ScopeExprError> {
        if expr.trim() == ANY {
            return Ok(Self { clauses: vec![] });
        }
        let clauses = split_expr(expr, '+', '/')?;
        Ok(Self { clauses })
    }

    pub fn is_satisfied_by(&self, granted: &ScopeSet) -> bool {
        self.clauses
            .iter()
            .all(|clause| clause.iter().any(|s| granted.contains(s)))
    }

    /// Every scope the expression mentions.
    pub fn scopes(&self) -> impl Iterator<Item = &str> {
        self.clauses.iter().flatten().map(String::as_str)
    }

    /// The alternatives that satisfy it, as minimal sets of scopes (disjunctive normal form), so
    /// two expressions can be compared whatever notation they were written in.
    pub fn alternatives(&self) -> BTreeSet<BTreeSet<String>> {
        let mut alternatives: BTreeSet<BTreeSet<String>> = BTreeSet::from([BTreeSet::new()]);
        for clause in &self.clauses {
            alternatives = alternatives
                .iter()
                .flat_map(|partial| {
                    clause.iter().map(move |scope| {
                        let mut next = partial.clone();
                        next.insert(scope.clone());
                        next
                    })
                })
                .collect();
        }
        minimal(alternatives)
    }

    /// A short name safe in object keys and file names, the same for equal expressions:
    /// `Contact+Student-StudentLite` for `Student / StudentLite + Contact`.
    pub fn group_id(&self) -> String {
        let mut clauses: Vec<String> = self
            .clauses
            .iter()
            .map(|c| c.iter().cloned().collect::<Vec<_>>().join("-"))
            .collect();
        clauses.sort();
        clauses.join("+")
    }
}

impl fmt::Display for FieldScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.clauses.is_empty() {
            return f.write_str(ANY);
        }
        let text: Vec<String> = self
            .clauses
            .iter()
            .map(|c| c.iter().cloned().collect::<Vec<_>>().join(" / "))
            .collect();
        f.write_str(&text.join(" + "))
    }
}

/// An endpoint's requirement: open when any one alternative is wholly granted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointScope {
    alternatives: Vec<BTreeSet<String>>,
}

impl EndpointScope {
    /// Reads `A&B,A&C`; `*` is open to any token of the school.
    pub fn parse(expr: &str) -> Result<Self, ScopeExprError> {
        if expr.trim() == ANY {
            return Ok(Self {
                alternatives: vec![BTreeSet::new()],
            });
        }
        let alternatives = split_expr(expr, ',', '&')?;
        Ok(Self { alternatives })
    }

    pub fn is_satisfied_by(&self, granted: &ScopeSet) -> bool {
        self.alternatives
            .iter()
            .any(|alt| alt.iter().all(|s| granted.contains(s)))
    }

    pub fn alternatives(&self) -> BTreeSet<BTreeSet<String>> {
        minimal(self.alternatives.iter().cloned().collect())
    }

    pub fn scopes(&self) -> impl Iterator<Item = &str> {
        self.alternatives.iter().flatten().map(String::as_str)
    }

    /// What is missing, said for a partner: for each alternative, the scopes not granted.
    pub fn describe_missing(&self, granted: &ScopeSet) -> String {
        let options: Vec<String> = self
            .alternatives
            .iter()
            .map(|alt| {
                let missing: Vec<&str> = alt
                    .iter()
                    .filter(|s| !granted.contains(*s))
                    .map(String::as_str)
                    .collect();
                missing.join(" and ")
            })
            .collect();
        options.join(", or ")
    }
}

impl fmt::Display for EndpointScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.alternatives.iter().all(BTreeSet::is_empty) {
            return f.write_str(ANY);
        }
        let text: Vec<String> = self
            .alternatives
            .iter()
            .map(|a| a.iter().cloned().collect::<Vec<_>>().join("&"))
            .collect();
        f.write_str(&text.join(","))
    }
}

fn split_expr(
    expr: &str,
    outer: char,
    inner: char,
) -> Result<Vec<BTreeSet<String>>, ScopeExprError> {
    let error = |reason: &str| ScopeExprError {
        expr: expr.to_owned(),
        reason: reason.to_owned(),
    };
    let mut groups = Vec::new();
    for part in expr.split(outer) {
        let mut group = BTreeSet::new();
        for name in part.split(inner) {
            let name = name.trim();
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric()) {
                return Err(error("every scope must be a non-empty alphanumeric name"));
            }
            group.insert(name.to_owned());
        }
        groups.push(group);
    }
    Ok(groups)
}

/// Drops every alternative that is a strict superset of another: `{A}` already covers `{A, B}`.
fn minimal(alternatives: BTreeSet<BTreeSet<String>>) -> BTreeSet<BTreeSet<String>> {
    alternatives
        .iter()
        .filter(|alt| {
            !alternatives
                .iter()
                .any(|other| other != *alt && other.is_subset(alt))
        })
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(names: &[&str]) -> ScopeSet {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn field_scope_needs_every_clause() {
        let expr = FieldScope::parse("Student / StudentLite + Contact").unwrap();
        assert!(expr.is_satisfied_by(&set(&["StudentLite", "Contact"])));
        assert!(!expr.is_satisfied_by(&set(&["Student", "StudentLite"])));
        assert!(!expr.is_satisfied_by(&set(&["Contact"])));
    }

    #[test]
    fn both_notations_of_the_same_rule_have_the_same_alternatives() {
        let field = FieldScope::parse("Student/StudentLite + Contact").unwrap();
        let endpoint = EndpointScope::parse("Contact&Student,Contact&StudentLite").unwrap();
        assert_eq!(field.alternatives(), endpoint.alternatives());
    }

    #[test]
    fn endpoint_scope_describes_what_is_missing() {
        let endpoint = EndpointScope::parse("Contact&Student,Contact&StudentLite").unwrap();
        assert_eq!(
            endpoint.describe_missing(&set(&["Student"])),
            "Contact, or Contact and StudentLite"
        );
    }

    #[test]
    fn group_id_is_the_same_for_equal_expressions() {
        let a = FieldScope::parse("StudentLite / Student + Contact").unwrap();
        let b = FieldScope::parse("Contact + Student / StudentLite").unwrap();
        assert_eq!(a.group_id(), b.group_id());
        assert_eq!(a.group_id(), "Contact+Student-StudentLite");
    }

    #[test]
    fn malformed_expressions_are_refused() {
        assert!(FieldScope::parse("Student / + Contact").is_err());
        assert!(EndpointScope::parse("").is_err());
    }

    #[test]
    fn any_is_satisfied_by_every_consent() {
        let endpoint = EndpointScope::parse("*").unwrap();
        assert!(endpoint.is_satisfied_by(&set(&[])));
        assert_eq!(endpoint.to_string(), "*");
        assert!(
            FieldScope::parse("*")
                .unwrap()
                .is_satisfied_by(&set(&["Student"]))
        );
    }
}
