//! Sessions of a school's data protection lead on the consent page: signed in with the admin
//! key, then a cookie holding the session sealed (AES-256-GCM under a key derived from the
//! school's row-hash key and its admin key's hash, the school as associated data). Nothing is
//! stored server-side: a session opens only for its school, until it expires (8 hours), and
//! no longer once the school's admin key is replaced.
//!
//! Every form carries the session's CSRF token, a keyed hash of the session id: a form posted
//! from another session, or without the token, is refused.

use aws_lc_rs::constant_time;
use serde::{Deserialize, Serialize};

use crate::envelope::{PlainKey, open_raw, seal_raw};
use crate::model::School;
use crate::secret::{keyed_hash_bytes, keyed_hash_hex, random_hex};
use crate::timestamp::{Duration, Timestamp};

/// How long a session lasts after sign-in.
pub const SESSION_LIFETIME: Duration = Duration::hours(8);
/// The longest cookie value opened.
const MAX_COOKIE: usize = 512;

/// A signed-in session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// Random, 128 bits in hex; the CSRF token is bound to it.
    pub id: String,
    pub expires_at: Timestamp,
}

fn session_key(school: &School) -> PlainKey {
    let mut context = b"admin-session|".to_vec();
    context.extend_from_slice(school.admin_key_hash.as_str().as_bytes());
    PlainKey::new(keyed_hash_bytes(&school.row_hash_key, &context))
}

fn aad(school: &School) -> Vec<u8> {
    format!("admin-session|{}", school.estab).into_bytes()
}

impl Session {
    /// A new session for `school` at `now`, and its cookie value (`{estab}.{sealed hex}`).
    pub fn start(school: &School, now: Timestamp) -> (Self, String) {
        let session = Self {
            id: random_hex::<16>(),
            expires_at: now.plus(SESSION_LIFETIME),
        };
        let plain = serde_json::to_vec(&session).expect("a session serialises");
        let sealed = seal_raw(&session_key(school), &aad(school), &plain);
        let cookie = format!("{}.{}", school.estab, hex::encode(sealed));
        (session, cookie)
    }

    /// The school a cookie value names, to look it up before [`Session::open`].
    pub fn school_of(cookie: &str) -> Option<&str> {
        cookie.split_once('.').map(|(estab, _)| estab)
    }

    /// The session a cookie holds, if it was issued to `school`, under its current admin
    /// key, and has not expired at `now`.
    pub fn open(school: &School, cookie: &str, now: Timestamp) -> Option<Self> {
        if cookie.len() > MAX_COOKIE {
            return None;
        }
        let (estab, sealed) = cookie.split_once('.')?;
        if estab != school.estab.as_str() {
            return None;
        }
        let sealed = hex::decode(sealed).ok()?;
        let plain = open_raw(&session_key(school), &aad(school), &sealed).ok()?;
        let session: Self = serde_json::from_slice(&plain).ok()?;
        (now < session.expires_at).then_some(session)
    }

    /// The CSRF token every form of this session carries.
    pub fn csrf_token(&self, school: &School) -> String {
        let key = keyed_hash_bytes(&school.row_hash_key, b"admin-session-csrf");
        keyed_hash_hex(&key, self.id.as_bytes(), 32)
    }

    /// Whether `token` is this session's CSRF token (compared in constant time).
    pub fn csrf_matches(&self, school: &School, token: &str) -> bool {
        let expected = self.csrf_token(school);
        constant_time::verify_slices_are_equal(expected.as_bytes(), token.as_bytes()).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Estab;
    use crate::secret::KeyHash;

    fn school(estab: &str, admin: &str) -> School {
        School {
            estab: Estab::parse(estab).unwrap(),
            name: "Test".into(),
            agent_key_hash: KeyHash::of(b"agent"),
            admin_key_hash: KeyHash::of(admin.as_bytes()),
            row_hash_key: vec![7; 32],
            created_at: Timestamp::from_millis(0),
        }
    }

    #[test]
    fn a_session_opens_for_its_school_until_it_expires_or_the_key_changes() {
        let now = Timestamp::from_millis(1_800_000_000_000);
        let a = school("9990001", "key-a");
        let (session, cookie) = Session::start(&a, now);
        assert_eq!(Session::school_of(&cookie), Some("9990001"));
        assert_eq!(Session::open(&a, &cookie, now), Some(session.clone()));
        let later = now.plus(SESSION_LIFETIME);
        assert_eq!(Session::open(&a, &cookie, later), None, "expired");
        let b = school("9990002", "key-a");
        let moved = cookie.replacen("9990001", "9990002", 1);
        assert_eq!(Session::open(&b, &moved, now), None, "another school");
        let rotated = school("9990001", "key-a2");
        assert_eq!(
            Session::open(&rotated, &cookie, now),
            None,
            "a new admin key"
        );
        assert_eq!(Session::open(&a, &cookie[..cookie.len() - 2], now), None);
    }

    #[test]
    fn a_csrf_token_belongs_to_one_session() {
        let now = Timestamp::from_millis(0);
        let a = school("9990001", "key-a");
        let (one, _) = Session::start(&a, now);
        let (two, _) = Session::start(&a, now);
        assert!(one.csrf_matches(&a, &one.csrf_token(&a)));
        assert!(!one.csrf_matches(&a, &two.csrf_token(&a)));
        assert!(!one.csrf_matches(&a, ""));
    }
}
