//! Access-log cursors as a school's admin sees them: the store's position, sealed
//! (AES-256-GCM under a key derived from the school's row-hash key, the school as associated
//! data). A store's position may be a sequence shared by every school, which would tell one
//! school how many calls the others had; sealed, it says nothing, and continues only the
//! log of the school it was issued to.

use crate::envelope::{PlainKey, open_raw, seal_raw};
use crate::secret::keyed_hash_bytes;

/// The longest store position sealed.
const MAX_POSITION: usize = 200;

fn cursor_key(school_key: &[u8]) -> PlainKey {
    PlainKey::new(keyed_hash_bytes(school_key, b"access-log-cursor"))
}

/// The cursor an admin of `estab` is given for the store's `position`.
pub fn seal_cursor(school_key: &[u8], estab: &str, position: &str) -> String {
    hex::encode(seal_raw(
        &cursor_key(school_key),
        estab.as_bytes(),
        position.as_bytes(),
    ))
}

/// The store's position in `cursor`, if it was issued to `estab`.
pub fn open_cursor(school_key: &[u8], estab: &str, cursor: &str) -> Option<String> {
    if cursor.len() > 2 * (MAX_POSITION + 64) {
        return None;
    }
    let sealed = hex::decode(cursor.trim()).ok()?;
    let plain = open_raw(&cursor_key(school_key), estab.as_bytes(), &sealed).ok()?;
    String::from_utf8(plain).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_hides_its_position_and_opens_only_for_its_school() {
        let key = [5u8; 32];
        let cursor = seal_cursor(&key, "9990001", "80");
        assert_ne!(
            cursor,
            seal_cursor(&key, "9990001", "80"),
            "a fresh nonce each time"
        );
        assert_eq!(open_cursor(&key, "9990001", &cursor).as_deref(), Some("80"));
        assert_eq!(open_cursor(&key, "9990002", &cursor), None);
        assert_eq!(open_cursor(&[6u8; 32], "9990001", &cursor), None);
        for bad in ["", "zz", "80", &cursor[..cursor.len() - 2]] {
            assert_eq!(open_cursor(&key, "9990001", bad), None, "{bad}");
        }
    }
}
