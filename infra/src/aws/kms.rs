//! Key service on KMS: `GenerateDataKey` (AES-256) and `Decrypt`, both with the encryption
//! context {school, result set}, so KMS itself refuses to unwrap one school's key for
//! another. Unwrapped keys are cached for a few minutes (bounded, wiped on eviction) so reads
//! do not call KMS every time.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use aws_sdk_kms::Client;
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::DataKeySpec;
use rollcall_core::envelope::{DataKey, KeyContext, PlainKey};
use rollcall_core::ports::{DataKeyGenerator, DataKeyUnwrapper, KeyError};
use zeroize::Zeroizing;

const CACHE_ENTRIES: usize = 512;
const CACHE_TTL: Duration = Duration::from_secs(300);

pub struct KmsKeyService {
    client: Client,
    key_id: String,
    cache: Mutex<KeyCache>,
}

impl KmsKeyService {
    pub fn new(client: Client, key_id: String) -> Self {
        Self {
            client,
            key_id,
            cache: Mutex::new(KeyCache::default()),
        }
    }

    fn context(context: &KeyContext) -> HashMap<String, String> {
        context
            .pairs()
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }
}

fn to_key(bytes: &[u8]) -> Result<PlainKey, KeyError> {
    let key: [u8; 32] = bytes
        .try_into()
        .map_err(|_| KeyError::Unavailable("KMS returned a key that is not 256 bits".into()))?;
    Ok(Zeroizing::new(key))
}

#[async_trait]
impl DataKeyGenerator for KmsKeyService {
    async fn generate(&self, context: &KeyContext) -> Result<DataKey, KeyError> {
        let output = self
            .client
            .generate_data_key()
            .key_id(&self.key_id)
            .key_spec(DataKeySpec::Aes256)
            .set_encryption_context(Some(Self::context(context)))
            .send()
            .await
            .map_err(|e| KeyError::Unavailable(e.into()))?;
        let plaintext = output
            .plaintext()
            .ok_or_else(|| KeyError::Unavailable("KMS returned no plaintext key".into()))?;
        let wrapped = output
            .ciphertext_blob()
            .ok_or_else(|| KeyError::Unavailable("KMS returned no wrapped key".into()))?;
        Ok(DataKey {
            plaintext: to_key(plaintext.as_ref())?,
            wrapped: wrapped.as_ref().to_vec(),
        })
    }
}

#[async_trait]
impl DataKeyUnwrapper for KmsKeyService {
    async fn unwrap(&self, context: &KeyContext, wrapped: &[u8]) -> Result<PlainKey, KeyError> {
        let cache_key = (context.clone(), wrapped.to_vec());
        if let Some(key) = self.cache.lock().expect("cache lock").get(&cache_key) {
            return Ok(key);
        }
        let output = self
            .client
            .decrypt()
            .key_id(&self.key_id)
            .ciphertext_blob(Blob::new(wrapped))
            .set_encryption_context(Some(Self::context(context)))
            .send()
            .await
            .map_err(|error| match error.as_service_error() {
                Some(e)
                    if e.is_invalid_ciphertext_exception() || e.is_incorrect_key_exception() =>
                {
                    KeyError::Denied
                }
                _ => KeyError::Unavailable(error.into()),
            })?;
        let plaintext = output
            .plaintext()
            .ok_or_else(|| KeyError::Unavailable("KMS returned no plaintext key".into()))?;
        let key = to_key(plaintext.as_ref())?;
        self.cache
            .lock()
            .expect("cache lock")
            .insert(cache_key, key.clone());
        Ok(key)
    }
}

/// Unwrapped data keys by (context, wrapped key), for [`CACHE_TTL`], at most
/// [`CACHE_ENTRIES`]; the oldest goes first. Keys are zeroized when dropped.
#[derive(Default)]
struct KeyCache {
    entries: HashMap<(KeyContext, Vec<u8>), (Instant, PlainKey)>,
}

impl KeyCache {
    fn get(&mut self, key: &(KeyContext, Vec<u8>)) -> Option<PlainKey> {
        let fresh = self
            .entries
            .get(key)
            .is_some_and(|(at, _)| at.elapsed() < CACHE_TTL);
        if !fresh {
            self.entries.remove(key);
            return None;
        }
        self.entries.get(key).map(|(_, k)| k.clone())
    }

    fn insert(&mut self, key: (KeyContext, Vec<u8>), value: PlainKey) {
        self.entries.retain(|_, (at, _)| at.elapsed() < CACHE_TTL);
        if self.entries.len() >= CACHE_ENTRIES
            && let Some(oldest) = self
                .entries
                .iter()
                .min_by_key(|(_, (at, _))| *at)
                .map(|(k, _)| k.clone())
        {
            self.entries.remove(&oldest);
        }
        self.entries.insert(key, (Instant::now(), value));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn context(school: &str) -> KeyContext {
        KeyContext {
            school: school.into(),
            result_set: "Students".into(),
        }
    }

    #[test]
    fn the_cache_is_bounded_and_keyed_by_context() {
        let mut cache = KeyCache::default();
        for i in 0..(CACHE_ENTRIES + 10) {
            cache.insert(
                (context("1"), vec![i as u8, (i >> 8) as u8]),
                Zeroizing::new([1; 32]),
            );
        }
        assert_eq!(cache.entries.len(), CACHE_ENTRIES);
        cache.insert((context("1"), vec![7]), Zeroizing::new([2; 32]));
        assert!(cache.get(&(context("1"), vec![7])).is_some());
        assert!(
            cache.get(&(context("2"), vec![7])).is_none(),
            "another school's context misses"
        );
    }
}
