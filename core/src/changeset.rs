//! Changesets (`changedRows`): a partner starts one with `changedRows=*` and gets a hash; on its
//! next call `changedRows=<hash>` answers only the rows added or changed since that snapshot,
//! and the ids deleted since. The hash is stateless: the snapshot time and a keyed MAC (under
//! the school's row-hash key) over who asked what, so a read never writes, and a hash used by
//! another partner, school, endpoint, options or filters is refused.

use crate::secret::{keyed_hash_hex, keyed_hash_matches};
use crate::timestamp::Timestamp;

/// What a changeset (or a page pin, [`crate::walk`]) is bound to: a partner's view of one
/// endpoint with its options and filters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangesetScope {
    pub partner: String,
    pub estab: String,
    pub endpoint: String,
    /// Options and filters, in a canonical order (`name=value`, sorted, names lower-case).
    pub parameters: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChangesetError {
    #[error(
        "`changedRows={0}` is not a changeset hash rollcall issued; start a changeset with changedRows=*"
    )]
    Malformed(String),
    #[error(
        "this changedRows hash was issued for another partner, school, endpoint, options or filters, \
         or before the school changed what it shares with you (scopes or opt-outs); a changeset \
         only continues with the call that started it; start a new one with changedRows=*"
    )]
    Mismatch,
}

/// Hex digits of the snapshot time, then of the MAC.
const TIME_HEX: usize = 16;
const MAC_HEX: usize = 64;

impl ChangesetScope {
    /// The binding as bytes to sign or seal for `purpose` (each purpose its own, so a value
    /// issued for one never passes as another).
    pub fn bound_text(&self, purpose: &str) -> Vec<u8> {
        format!(
            "{purpose}\n{}\n{}\n{}\n{}",
            self.partner,
            self.estab,
            self.endpoint.to_ascii_lowercase(),
            self.parameters.join("&"),
        )
        .into_bytes()
    }

    fn signed_text(&self, snapshot: Timestamp) -> Vec<u8> {
        let mut text = self.bound_text("changeset");
        text.extend_from_slice(format!("\n{}", snapshot.millis()).as_bytes());
        text
    }

    /// The hash that continues this changeset from `snapshot`.
    pub fn issue(&self, key: &[u8], snapshot: Timestamp) -> String {
        let time = format!("{:016x}", snapshot.millis());
        let mac = keyed_hash_hex(key, &self.signed_text(snapshot), MAC_HEX).to_ascii_lowercase();
        format!("{time}{mac}")
    }

    /// The snapshot time `hash` continues from, if this scope issued it.
    pub fn verify(&self, key: &[u8], hash: &str) -> Result<Timestamp, ChangesetError> {
        let malformed = || ChangesetError::Malformed(hash.chars().take(96).collect());
        if hash.len() != TIME_HEX + MAC_HEX || !hash.is_char_boundary(TIME_HEX) {
            return Err(malformed());
        }
        let (time, mac) = hash.split_at(TIME_HEX);
        let millis = i64::from_str_radix(time, 16).map_err(|_| malformed())?;
        let snapshot = Timestamp::from_millis(millis);
        if keyed_hash_matches(key, &self.signed_text(snapshot), mac) {
            Ok(snapshot)
        } else {
            Err(ChangesetError::Mismatch)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope() -> ChangesetScope {
        ChangesetScope {
            partner: "acme".into(),
            estab: "9990001".into(),
            endpoint: "Students".into(),
            parameters: vec!["options=includegroupids".into()],
        }
    }

    #[test]
    fn a_hash_continues_only_the_changeset_that_issued_it() {
        let key = [7u8; 32];
        let at = Timestamp::from_millis(1_790_000_000_123);
        let hash = scope().issue(&key, at);
        assert_eq!(hash.len(), 80);
        assert!(hash.chars().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(scope().verify(&key, &hash), Ok(at));
        let case_of_path = ChangesetScope {
            endpoint: "students".into(),
            ..scope()
        };
        assert_eq!(case_of_path.verify(&key, &hash), Ok(at));

        let others = [
            ChangesetScope {
                partner: "other".into(),
                ..scope()
            },
            ChangesetScope {
                estab: "9990002".into(),
                ..scope()
            },
            ChangesetScope {
                endpoint: "Staff".into(),
                ..scope()
            },
            ChangesetScope {
                parameters: vec![],
                ..scope()
            },
        ];
        for other in others {
            assert_eq!(other.verify(&key, &hash), Err(ChangesetError::Mismatch));
        }
        assert_eq!(
            scope().verify(&[8u8; 32], &hash),
            Err(ChangesetError::Mismatch)
        );
        let later = format!("{:016x}{}", at.millis() + 1, &hash[16..]);
        assert_eq!(scope().verify(&key, &later), Err(ChangesetError::Mismatch));
        for bad in ["*", "", "zz", &hash[..79], "é".repeat(40).as_str()] {
            assert!(matches!(
                scope().verify(&key, bad),
                Err(ChangesetError::Malformed(_))
            ));
        }
    }
}
