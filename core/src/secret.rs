//! Secrets rollcall issues (agent keys, admin keys, management secrets, per-school partner
//! secrets, tokens) and the hashes it keeps instead of them.
//!
//! Every secret is 256 random bits, so a single SHA-256 is enough to store it: there is no
//! low-entropy password to stretch.

use aws_lc_rs::{constant_time, digest, hmac, rand};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

/// What a secret is for; its prefix makes a leaked one easy to recognise and scan for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretKind {
    AgentKey,
    AdminKey,
    ManagementSecret,
    SchoolSecret,
    Token,
}

impl SecretKind {
    fn prefix(self) -> &'static str {
        match self {
            SecretKind::AgentKey => "rca_",
            SecretKind::AdminKey => "rcs_",
            SecretKind::ManagementSecret => "rcm_",
            SecretKind::SchoolSecret => "rcp_",
            SecretKind::Token => "rct_",
        }
    }
}

/// The SHA-256 of a secret, in hex: what the control store keeps.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct KeyHash(String);

impl KeyHash {
    pub fn of(secret: &[u8]) -> Self {
        Self(hex::encode(
            digest::digest(&digest::SHA256, secret).as_ref(),
        ))
    }

    pub fn of_secret(secret: &SecretString) -> Self {
        Self::of(secret.expose_secret().as_bytes())
    }

    pub fn from_hex(hex: String) -> Self {
        Self(hex)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Compares in constant time, so a timing side channel cannot reveal a stored hash.
    pub fn matches(&self, other: &KeyHash) -> bool {
        constant_time::verify_slices_are_equal(self.0.as_bytes(), other.0.as_bytes()).is_ok()
    }
}

/// A new secret: its kind's prefix and 256 random bits in hex.
pub fn new_secret(kind: SecretKind) -> SecretString {
    let bytes: [u8; 32] = random_bytes();
    SecretString::from(format!("{}{}", kind.prefix(), hex::encode(bytes)))
}

/// `N` random bytes in lower-case hex: ids of our own making (uploads, requests, names).
pub fn random_hex<const N: usize>() -> String {
    hex::encode(random_bytes::<N>())
}

pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut out = [0u8; N];
    rand::fill(&mut out).expect("the system random generator is available");
    out
}

/// A keyed hash (HMAC-SHA256).
pub fn keyed_hash_bytes(key: &[u8], data: &[u8]) -> [u8; 32] {
    let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), data);
    tag.as_ref()
        .try_into()
        .expect("an HMAC-SHA256 tag has 32 bytes")
}

/// An HMAC-SHA256 key prepared once, for hashing many messages under it.
#[derive(Debug)]
pub struct HashKey(hmac::Key);

impl HashKey {
    pub fn new(key: &[u8]) -> Self {
        Self(hmac::Key::new(hmac::HMAC_SHA256, key))
    }

    /// What tells this key from another without saying anything of it: its hash of a fixed
    /// text.
    pub fn fingerprint(&self) -> [u8; 32] {
        self.hash(b"rollcall: which key this is")
    }

    /// [`keyed_hash_bytes`] under this key.
    pub fn hash(&self, data: &[u8]) -> [u8; 32] {
        hmac::sign(&self.0, data)
            .as_ref()
            .try_into()
            .expect("an HMAC-SHA256 tag has 32 bytes")
    }
}

/// A keyed hash (HMAC-SHA256), in upper-case hex, cut to `len` characters.
pub fn keyed_hash_hex(key: &[u8], data: &[u8], len: usize) -> String {
    let mut text = hex::encode_upper(keyed_hash_bytes(key, data));
    text.truncate(len);
    text
}

/// Whether `tag_hex` is the full HMAC-SHA256 of `data` under `key`, compared in constant time.
pub fn keyed_hash_matches(key: &[u8], data: &[u8], tag_hex: &str) -> bool {
    let Ok(tag) = hex::decode(tag_hex) else {
        return false;
    };
    hmac::verify(&hmac::Key::new(hmac::HMAC_SHA256, key), data, &tag).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_prefixed_and_unique() {
        let a = new_secret(SecretKind::AgentKey);
        let b = new_secret(SecretKind::AgentKey);
        assert!(a.expose_secret().starts_with("rca_"));
        assert_eq!(a.expose_secret().len(), 4 + 64);
        assert_ne!(a.expose_secret(), b.expose_secret());
    }

    #[test]
    fn hash_matches_only_its_secret() {
        let secret = new_secret(SecretKind::Token);
        let other = new_secret(SecretKind::Token);
        assert!(KeyHash::of_secret(&secret).matches(&KeyHash::of_secret(&secret)));
        assert!(!KeyHash::of_secret(&secret).matches(&KeyHash::of_secret(&other)));
    }
}
