//! Sealed objects as the vault opens them: the envelope's wrapped key and AES-GCM body, the
//! row index and a scope group's rows decoded from what opened. Byte 0 picks the case:
//! the input taken as a stored object (which must never open: nothing here knows the key),
//! a valid object with the input XORed over it (which opens only if unchanged), or the input
//! as the plaintext of an index or of a group's rows, sealed and opened again.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rollcall_core::dataset::{Row, RowIndex};
use rollcall_core::envelope::{self, PlainKey};

const WRAPPED: &[u8] = b"wrapped-data-key-of-version-3";

fuzz_target!(|data: &[u8]| {
    let [case, input @ ..] = data else {
        return;
    };
    let key = PlainKey::new([7; 32]);
    let aad = b"9990001/Students/3/core";
    match case % 4 {
        0 => {
            let _ = envelope::wrapped_key(input);
            assert!(envelope::open(&key, aad, input).is_err(), "a forged object opened");
        }
        1 => {
            let sealed = envelope::seal(&key, WRAPPED, aad, b"[{\"Id\":\"1\"}]");
            let mut mutated = sealed.clone();
            for (byte, mask) in mutated.iter_mut().zip(input.iter().cycle()) {
                *byte ^= mask;
            }
            let opened = envelope::open(&key, aad, &mutated);
            assert_eq!(opened.is_ok(), mutated == sealed, "a changed object opened");
            if mutated != sealed {
                return;
            }
            assert_eq!(envelope::wrapped_key(&mutated).ok(), Some(WRAPPED));
        }
        2 => {
            let sealed = envelope::seal(&key, WRAPPED, aad, input);
            let plain = envelope::open(&key, aad, &sealed).expect("what was sealed opens");
            assert_eq!(plain, input);
            let _ = serde_json::from_slice::<RowIndex>(&plain);
        }
        _ => {
            let _ = serde_json::from_slice::<Vec<Row>>(input);
        }
    }
});
