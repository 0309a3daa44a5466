//! Envelope encryption of stored objects.
//!
//! Each object is sealed with AES-256-GCM under a data key from the key service. The data key is
//! bound to an encryption context `{school, result set}`; the object's associated data names the
//! school, result set, version and scope group, so an object moved or renamed fails to open. The
//! wrapped data key travels in the object's header, so an object is self-contained, and the
//! header is part of the associated data, so it cannot be changed either:
//!
//! ```text
//! "RC2\0" | u32 BE length of wrapped key | wrapped key | 12-byte nonce | ciphertext + 16-byte tag
//! ```
//!
//! Objects sealed before the header was authenticated (`RC1\0`, the same layout) still open,
//! under the object's associated data alone; a version's other objects must carry its index's
//! wrapped key ([`crate::vault`]), and they are all disposed of with their version. An `RC2`
//! object relabelled `RC1` does not open.

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use zeroize::Zeroizing;

use crate::model::Estab;
use crate::secret::random_bytes;

const MAGIC: &[u8; 4] = b"RC2\0";
/// The first layout, whose header was not authenticated: opened, never written.
const MAGIC_V1: &[u8; 4] = b"RC1\0";

/// A 256-bit data key in the clear; wiped from memory when dropped.
pub type PlainKey = Zeroizing<[u8; 32]>;

/// What a data key is bound to. The key service refuses to unwrap a key under another context,
/// so one school's key can never open another school's data.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KeyContext {
    pub school: String,
    pub result_set: String,
}

impl KeyContext {
    pub fn new(school: &Estab, result_set: &str) -> Self {
        Self {
            school: school.as_str().to_owned(),
            result_set: result_set.to_owned(),
        }
    }

    /// The context as KMS takes it.
    pub fn pairs(&self) -> [(&'static str, &str); 2] {
        [("school", &self.school), ("resultSet", &self.result_set)]
    }

    /// A byte string that differs for every context, for use as associated data.
    pub fn to_aad(&self) -> Vec<u8> {
        format!(
            "rollcall-key|school={}|resultSet={}",
            self.school, self.result_set
        )
        .into_bytes()
    }
}

/// A fresh data key: the key itself, and the same key wrapped by the key service.
pub struct DataKey {
    pub plaintext: PlainKey,
    pub wrapped: Vec<u8>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EnvelopeError {
    #[error("the object is not a rollcall envelope")]
    Malformed,
    #[error("the object does not authenticate: wrong key, context or associated data, or tampered")]
    Unauthentic,
    #[error("the object carries another data key than the rest of its version")]
    ForeignKey,
}

/// The associated data of one stored object.
pub fn object_aad(estab: &Estab, result_set: &str, version: u64, group: &str) -> Vec<u8> {
    format!("rollcall-object|{estab}|{result_set}|{version}|{group}").into_bytes()
}

/// Seals `plaintext` under `key` into a self-contained envelope carrying `wrapped_key`.
pub fn seal(key: &PlainKey, wrapped_key: &[u8], aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
    let wrapped_len = u32::try_from(wrapped_key.len()).expect("a wrapped key is small");
    let mut out = Vec::with_capacity(4 + 4 + wrapped_key.len() + NONCE_LEN + plaintext.len() + 16);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&wrapped_len.to_be_bytes());
    out.extend_from_slice(wrapped_key);
    let sealed = seal_raw(key, &header_and(&out, aad), plaintext);
    out.extend_from_slice(&sealed);
    out
}

/// The associated data an envelope is sealed under: its header, then the object's own.
fn header_and(header: &[u8], aad: &[u8]) -> Vec<u8> {
    [header, aad].concat()
}

/// The wrapped data key in an envelope's header, to unwrap before [`open`].
pub fn wrapped_key(envelope: &[u8]) -> Result<&[u8], EnvelopeError> {
    Ok(split(envelope)?.wrapped)
}

pub fn open(key: &PlainKey, aad: &[u8], envelope: &[u8]) -> Result<Vec<u8>, EnvelopeError> {
    let parts = split(envelope)?;
    if parts.authenticated_header {
        open_raw(key, &header_and(parts.header, aad), parts.sealed)
    } else {
        open_raw(key, aad, parts.sealed)
    }
}

/// AES-256-GCM with a random nonce: `nonce | ciphertext | tag`.
pub fn seal_raw(key: &PlainKey, aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
    let nonce_bytes: [u8; NONCE_LEN] = random_bytes();
    let mut out = Vec::with_capacity(NONCE_LEN + plaintext.len() + 16);
    out.extend_from_slice(&nonce_bytes);
    let mut body = plaintext.to_vec();
    less_safe_key(key)
        .seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce_bytes),
            Aad::from(aad),
            &mut body,
        )
        .expect("AES-GCM sealing of an in-memory buffer does not fail");
    out.extend_from_slice(&body);
    out
}

pub fn open_raw(key: &PlainKey, aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>, EnvelopeError> {
    if sealed.len() < NONCE_LEN + 16 {
        return Err(EnvelopeError::Malformed);
    }
    let (nonce, body) = sealed.split_at(NONCE_LEN);
    let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| EnvelopeError::Malformed)?;
    let mut body = body.to_vec();
    let plain_len = less_safe_key(key)
        .open_in_place(nonce, Aad::from(aad), &mut body)
        .map_err(|_| EnvelopeError::Unauthentic)?
        .len();
    body.truncate(plain_len);
    Ok(body)
}

fn less_safe_key(key: &PlainKey) -> LessSafeKey {
    // LessSafeKey only because we manage nonces ourselves: a fresh random 96-bit nonce per
    // object, and far fewer than 2^32 objects per data key (a data key seals one version).
    LessSafeKey::new(UnboundKey::new(&AES_256_GCM, key.as_ref()).expect("32-byte key"))
}

/// An envelope's parts.
struct Parts<'a> {
    /// The magic, length and wrapped key.
    header: &'a [u8],
    wrapped: &'a [u8],
    /// Nonce, ciphertext and tag.
    sealed: &'a [u8],
    /// Whether the header is in the associated data (`RC2`).
    authenticated_header: bool,
}

fn split(envelope: &[u8]) -> Result<Parts<'_>, EnvelopeError> {
    let magic = envelope.get(..4).ok_or(EnvelopeError::Malformed)?;
    let authenticated_header = match magic {
        m if m == MAGIC => true,
        m if m == MAGIC_V1 => false,
        _ => return Err(EnvelopeError::Malformed),
    };
    let len = envelope.get(4..8).ok_or(EnvelopeError::Malformed)?;
    let len = u32::from_be_bytes(len.try_into().expect("4 bytes")) as usize;
    let end = 8usize.checked_add(len).ok_or(EnvelopeError::Malformed)?;
    if envelope.len() < end {
        return Err(EnvelopeError::Malformed);
    }
    Ok(Parts {
        header: &envelope[..end],
        wrapped: &envelope[8..end],
        sealed: &envelope[end..],
        authenticated_header,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn key(byte: u8) -> PlainKey {
        Zeroizing::new([byte; 32])
    }

    proptest! {
        #[test]
        fn envelope_round_trips(plain in proptest::collection::vec(any::<u8>(), 0..2048),
                                wrapped in proptest::collection::vec(any::<u8>(), 0..300),
                                aad in proptest::collection::vec(any::<u8>(), 0..64)) {
            let sealed = seal(&key(7), &wrapped, &aad, &plain);
            prop_assert_eq!(wrapped_key(&sealed).unwrap(), &wrapped[..]);
            prop_assert_eq!(open(&key(7), &aad, &sealed).unwrap(), plain);
        }

        #[test]
        fn any_flipped_bit_is_detected(plain in proptest::collection::vec(any::<u8>(), 1..256), bit in 0usize..4096) {
            // Anywhere: the header (magic, length, wrapped key) as well as the sealed body.
            let mut sealed = seal(&key(7), b"wrapped", b"aad", &plain);
            let position = bit / 8 % sealed.len();
            sealed[position] ^= 1 << (bit % 8);
            prop_assert!(open(&key(7), b"aad", &sealed).is_err());
        }
    }

    #[test]
    fn other_associated_data_does_not_open() {
        let estab = Estab::parse("1").unwrap();
        let sealed = seal(
            &key(1),
            b"w",
            &object_aad(&estab, "Students", 1, "g"),
            b"rows",
        );
        let other = object_aad(&estab, "Students", 2, "g");
        assert_eq!(
            open(&key(1), &other, &sealed),
            Err(EnvelopeError::Unauthentic)
        );
        assert_eq!(
            open(&key(2), &object_aad(&estab, "Students", 1, "g"), &sealed),
            Err(EnvelopeError::Unauthentic)
        );
    }

    /// An object as the first layout sealed it: the header outside the associated data.
    fn seal_v1(key: &PlainKey, wrapped_key: &[u8], aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
        let len = u32::try_from(wrapped_key.len()).unwrap().to_be_bytes();
        [
            MAGIC_V1,
            &len[..],
            wrapped_key,
            &seal_raw(key, aad, plaintext),
        ]
        .concat()
    }

    #[test]
    fn an_object_of_the_first_layout_opens_and_a_relabelled_one_does_not() {
        let old = seal_v1(&key(3), b"wrapped", b"aad", b"rows");
        assert_eq!(wrapped_key(&old).unwrap(), b"wrapped");
        assert_eq!(open(&key(3), b"aad", &old).unwrap(), b"rows");
        let mut relabelled = seal(&key(3), b"wrapped", b"aad", b"rows");
        relabelled[..4].copy_from_slice(MAGIC_V1);
        assert_eq!(
            open(&key(3), b"aad", &relabelled),
            Err(EnvelopeError::Unauthentic)
        );
    }

    #[test]
    fn another_wrapped_key_in_the_header_does_not_open() {
        let sealed = seal(&key(3), b"wrapped-1", b"aad", b"rows");
        let mut swapped = sealed.clone();
        swapped[8..17].copy_from_slice(b"wrapped-2");
        assert_eq!(
            open(&key(3), b"aad", &swapped),
            Err(EnvelopeError::Unauthentic)
        );
        assert_eq!(open(&key(3), b"aad", &sealed).unwrap(), b"rows");
    }

    #[test]
    fn garbage_is_malformed() {
        assert_eq!(
            open(&key(1), b"", b"not an envelope"),
            Err(EnvelopeError::Malformed)
        );
    }
}
