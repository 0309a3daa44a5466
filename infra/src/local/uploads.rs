//! The local stand-in for S3 pre-signed PUTs: URLs to the local server's own
//! `PUT /local/v1/objects/{key}` route, signed with a key that lives only in this process.
//! The signature covers the key, the exact length, the content type and the expiry.

use async_trait::async_trait;
use rollcall_core::ports::{PresignedPut, StoreError, UploadUrlSigner};
use rollcall_core::secret::{keyed_hash_hex, keyed_hash_matches, random_bytes};
use rollcall_core::timestamp::{Duration, Timestamp};

/// The path of the local object PUT route, followed by the object key.
pub const LOCAL_PUT_PATH: &str = "/local/v1/objects/";

pub struct LocalUploadSigner {
    key: [u8; 32],
    public_url: String,
}

/// What the local PUT route checks a request against: the query of the signed URL and the
/// request's own headers.
#[derive(Debug, Clone)]
pub struct LocalPut<'a> {
    pub key: &'a str,
    pub expires: i64,
    pub length: u64,
    pub signature: &'a str,
    pub content_type: Option<&'a str>,
    pub content_length: Option<u64>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LocalPutError {
    #[error(
        "the upload URL's signature does not match; ask for a new one with POST /agent/v1/uploads"
    )]
    BadSignature,
    #[error("the upload URL expired; ask for a new one with POST /agent/v1/uploads")]
    Expired,
    #[error(
        "this URL takes exactly {expected} bytes of application/json; send the extract it was issued for with Content-Length: {expected}"
    )]
    WrongBody { expected: u64 },
}

impl LocalUploadSigner {
    /// A signer whose URLs start with `public_url` (e.g. `http://127.0.0.1:8080`).
    pub fn new(public_url: &str) -> Self {
        Self {
            key: random_bytes(),
            public_url: public_url.trim_end_matches('/').to_owned(),
        }
    }

    fn signed_text(key: &str, expires: i64, length: u64, content_type: &str) -> Vec<u8> {
        format!("PUT\n{key}\n{expires}\n{length}\n{content_type}").into_bytes()
    }

    /// Checks a PUT against its URL: signature, expiry, then the exact type and length.
    pub fn verify(&self, put: &LocalPut<'_>, now: Timestamp) -> Result<(), LocalPutError> {
        let content_type = put.content_type.unwrap_or_default();
        let text = Self::signed_text(put.key, put.expires, put.length, content_type);
        if !keyed_hash_matches(&self.key, &text, put.signature) {
            return Err(LocalPutError::BadSignature);
        }
        if now.millis() >= put.expires {
            return Err(LocalPutError::Expired);
        }
        if put.content_length != Some(put.length) {
            return Err(LocalPutError::WrongBody {
                expected: put.length,
            });
        }
        Ok(())
    }
}

#[async_trait]
impl UploadUrlSigner for LocalUploadSigner {
    async fn presign_put(
        &self,
        key: &str,
        content_length: u64,
        content_type: &str,
        now: Timestamp,
        expires_in: Duration,
    ) -> Result<PresignedPut, StoreError> {
        let expires = now.plus(expires_in).millis();
        let text = Self::signed_text(key, expires, content_length, content_type);
        let signature = keyed_hash_hex(&self.key, &text, 64);
        Ok(PresignedPut {
            url: format!(
                "{}{LOCAL_PUT_PATH}{key}?expires={expires}&length={content_length}&signature={signature}",
                self.public_url
            ),
            headers: vec![
                ("content-length".into(), content_length.to_string()),
                ("content-type".into(), content_type.to_owned()),
            ],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(url: &str, name: &str) -> String {
        let query = url.split_once('?').unwrap().1;
        query
            .split('&')
            .find_map(|pair| pair.strip_prefix(&format!("{name}=")))
            .unwrap()
            .to_owned()
    }

    #[tokio::test]
    async fn only_the_exact_signed_put_before_expiry_passes() {
        let signer = LocalUploadSigner::new("http://127.0.0.1:1/");
        let now = Timestamp::from_millis(1_000_000);
        let key = "incoming/1/ab.json";
        let put = signer
            .presign_put(key, 42, "application/json", now, Duration::minutes(15))
            .await
            .unwrap();
        assert!(
            put.url
                .starts_with("http://127.0.0.1:1/local/v1/objects/incoming/1/ab.json?")
        );
        let signature = query(&put.url, "signature");
        let good = LocalPut {
            key,
            expires: query(&put.url, "expires").parse().unwrap(),
            length: 42,
            signature: &signature,
            content_type: Some("application/json"),
            content_length: Some(42),
        };
        assert_eq!(signer.verify(&good, now), Ok(()));
        let later = now.plus(Duration::minutes(15));
        assert_eq!(signer.verify(&good, later), Err(LocalPutError::Expired));
        let refusals = [
            LocalPut {
                key: "incoming/2/ab.json",
                ..good.clone()
            },
            LocalPut {
                length: 43,
                content_length: Some(43),
                ..good.clone()
            },
            LocalPut {
                expires: good.expires + 1,
                ..good.clone()
            },
            LocalPut {
                content_type: Some("text/plain"),
                ..good.clone()
            },
            LocalPut {
                signature: "00",
                ..good.clone()
            },
        ];
        for put in refusals {
            assert_eq!(
                signer.verify(&put, now),
                Err(LocalPutError::BadSignature),
                "{put:?}"
            );
        }
        let short = LocalPut {
            content_length: Some(41),
            ..good.clone()
        };
        assert_eq!(
            signer.verify(&short, now),
            Err(LocalPutError::WrongBody { expected: 42 })
        );
        let other_process = LocalUploadSigner::new("http://127.0.0.1:1");
        assert_eq!(
            other_process.verify(&good, now),
            Err(LocalPutError::BadSignature)
        );
    }
}
