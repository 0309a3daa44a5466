//! Page pins: the `version` parameter `NextPage` carries, so a paginated walk reads the
//! version it started on while a new upload lands. A pin is sealed (AES-256-GCM under a key
//! derived from the school's row-hash key), with the walk's binding (partner, school,
//! endpoint, options, filters, `select`) as associated data, so it is opaque (it reveals no
//! version number, which would count the school's uploads, changes to ungranted fields
//! included) and only continues the walk that started it. A walk may read its version for
//! [`WALK_GRACE`] from its first page, whether or not a newer upload replaced it: the limit
//! is the read path's, the same for every walk, and says nothing of the school's uploads.

use crate::changeset::ChangesetScope;
use crate::envelope::{PlainKey, open_raw, seal_raw};
use crate::secret::keyed_hash_bytes;
use crate::timestamp::{Duration, Timestamp};

/// How long a walk may read the version it started on. Superseded versions are kept at least
/// this long after they are replaced, so a walk never finds its version gone before then.
pub const WALK_GRACE: Duration = Duration::hours(1);

/// What a pin holds: the stored version a walk reads and when its first page was answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WalkPin {
    pub version: u64,
    pub started: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PinError {
    #[error(
        "`version` is not a page pin rollcall issued for this call; follow NextPage as it is \
         (same endpoint, options, filters and select), or start again from page 1 without \
         `version` (as after the school changes what it shares with you)"
    )]
    Unknown,
    #[error(
        "this paginated walk started over an hour ago and its pages are no longer served; \
         start again from page 1 without `version`"
    )]
    Expired,
}

const PLAIN_LEN: usize = 16;

fn pin_key(school_key: &[u8]) -> PlainKey {
    PlainKey::new(keyed_hash_bytes(school_key, b"walk-pin"))
}

fn aad(binding: &ChangesetScope) -> Vec<u8> {
    binding.bound_text("walk")
}

impl WalkPin {
    /// The `version` value that continues this walk.
    pub fn issue(&self, school_key: &[u8], binding: &ChangesetScope) -> String {
        let mut plain = [0u8; PLAIN_LEN];
        plain[..8].copy_from_slice(&self.version.to_be_bytes());
        plain[8..].copy_from_slice(&self.started.millis().to_be_bytes());
        hex::encode(seal_raw(&pin_key(school_key), &aad(binding), &plain))
    }

    /// The walk `text` continues, if it was issued for `binding` and is within its grace.
    pub fn verify(
        school_key: &[u8],
        binding: &ChangesetScope,
        text: &str,
        now: Timestamp,
    ) -> Result<Self, PinError> {
        let sealed = hex::decode(text.trim()).map_err(|_| PinError::Unknown)?;
        let plain = open_raw(&pin_key(school_key), &aad(binding), &sealed)
            .map_err(|_| PinError::Unknown)?;
        let plain: [u8; PLAIN_LEN] = plain.try_into().map_err(|_| PinError::Unknown)?;
        let pin = Self {
            version: u64::from_be_bytes(plain[..8].try_into().expect("8 bytes")),
            started: Timestamp::from_millis(i64::from_be_bytes(
                plain[8..].try_into().expect("8 bytes"),
            )),
        };
        if now >= pin.started.plus(WALK_GRACE) {
            return Err(PinError::Expired);
        }
        Ok(pin)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binding() -> ChangesetScope {
        ChangesetScope {
            partner: "acme".into(),
            estab: "9990001".into(),
            endpoint: "Students".into(),
            parameters: vec!["select=id".into()],
        }
    }

    #[test]
    fn a_pin_continues_only_its_walk_and_only_within_the_grace() {
        let key = [3u8; 32];
        let start = Timestamp::from_millis(1_790_000_000_000);
        let pin = WalkPin {
            version: 7,
            started: start,
        };
        let text = pin.issue(&key, &binding());
        assert_eq!(text.len(), 88, "nonce, 16 sealed bytes and the tag, in hex");
        assert_ne!(text, pin.issue(&key, &binding()), "a fresh nonce each time");
        let later = start.plus(Duration::minutes(59));
        assert_eq!(WalkPin::verify(&key, &binding(), &text, later), Ok(pin));

        let other = ChangesetScope {
            parameters: vec![],
            ..binding()
        };
        assert_eq!(
            WalkPin::verify(&key, &other, &text, later),
            Err(PinError::Unknown)
        );
        assert_eq!(
            WalkPin::verify(&[4u8; 32], &binding(), &text, later),
            Err(PinError::Unknown)
        );
        for bad in ["1", "", "zz", &text[..86]] {
            assert_eq!(
                WalkPin::verify(&key, &binding(), bad, later),
                Err(PinError::Unknown)
            );
        }
        let after = start.plus(WALK_GRACE);
        assert_eq!(
            WalkPin::verify(&key, &binding(), &text, after),
            Err(PinError::Expired)
        );
    }
}
