//! Key service on a local master key file: a 256-bit key created on first use (mode 0600) that
//! wraps per-version data keys with AES-256-GCM, the encryption context as associated data. As
//! with KMS, a wrapped key only unwraps under the context it was made for.

use std::io::Write;
use std::path::Path;

use async_trait::async_trait;
use rollcall_core::envelope::{DataKey, KeyContext, PlainKey, open_raw, seal_raw};
use rollcall_core::ports::{DataKeyGenerator, DataKeyUnwrapper, KeyError};
use rollcall_core::secret::random_bytes;
use zeroize::Zeroizing;

pub struct FileKeyService {
    master: PlainKey,
}

impl FileKeyService {
    /// Opens the master key at `path`, creating it (readable by its owner only) if absent.
    pub fn open_or_create(path: &Path) -> anyhow::Result<Self> {
        match std::fs::read(path) {
            Ok(bytes) => {
                let key: [u8; 32] = bytes.try_into().map_err(|_| {
                    anyhow::anyhow!("{} is not a 32-byte master key", path.display())
                })?;
                warn_if_readable_by_others(path);
                Ok(Self {
                    master: Zeroizing::new(key),
                })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Self::create(path),
            Err(e) => {
                Err(anyhow::Error::new(e).context(format!("reading master key {}", path.display())))
            }
        }
    }

    fn create(path: &Path) -> anyhow::Result<Self> {
        let key: Zeroizing<[u8; 32]> = Zeroizing::new(random_bytes());
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(path).map_err(|e| {
            anyhow::Error::new(e).context(format!("creating master key {}", path.display()))
        })?;
        file.write_all(key.as_ref())?;
        file.sync_all()?;
        Ok(Self { master: key })
    }
}

fn warn_if_readable_by_others(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = std::fs::metadata(path)
            && meta.permissions().mode() & 0o077 != 0
        {
            tracing::warn!(path = %path.display(), "master key file is readable by other users; chmod 600 it");
        }
    }
}

#[async_trait]
impl DataKeyGenerator for FileKeyService {
    async fn generate(&self, context: &KeyContext) -> Result<DataKey, KeyError> {
        let plaintext: PlainKey = Zeroizing::new(random_bytes());
        let wrapped = seal_raw(&self.master, &context.to_aad(), plaintext.as_ref());
        Ok(DataKey { plaintext, wrapped })
    }
}

#[async_trait]
impl DataKeyUnwrapper for FileKeyService {
    async fn unwrap(&self, context: &KeyContext, wrapped: &[u8]) -> Result<PlainKey, KeyError> {
        let plain = Zeroizing::new(
            open_raw(&self.master, &context.to_aad(), wrapped).map_err(|_| KeyError::Denied)?,
        );
        let key: [u8; 32] = plain.as_slice().try_into().map_err(|_| KeyError::Denied)?;
        Ok(Zeroizing::new(key))
    }
}
