//! The embedded default: everything in one data directory, no AWS account, no Docker.
//!
//! ```text
//! {data dir}/control.sqlite3   control store (SQLite)
//! {data dir}/master.key        master key (mode 0600)
//! {data dir}/objects/          encrypted objects, {estab}/{result set}/{version}/{group};
//!                              staged extracts under incoming/ until ingested
//! ```
//!
//! Pre-signed upload URLs point at the local server itself ([`LOCAL_PUT_PATH`]), signed with a
//! key that lives only as long as the process.

mod control;

mod keys;
mod objects;
mod uploads;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use rollcall_core::ports::{Clock, ControlPorts, Ports};

pub use control::SqliteControlStore;
pub use keys::FileKeyService;
pub use objects::DiskObjectStore;
pub use uploads::{LOCAL_PUT_PATH, LocalPut, LocalPutError, LocalUploadSigner};

/// The local adapters of every port, opened on one data directory.
#[derive(Clone)]
pub struct LocalPorts {
    pub data_dir: PathBuf,
    pub control: Arc<SqliteControlStore>,
    pub objects: Arc<DiskObjectStore>,
    pub keys: Arc<FileKeyService>,
    pub upload_signer: Arc<LocalUploadSigner>,
}

impl LocalPorts {
    /// Opens the data directory, creating it, the database and the master key if absent.
    pub fn open(data_dir: &Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(data_dir)
            .with_context(|| format!("creating data directory {}", data_dir.display()))?;
        restrict_to_owner(data_dir);
        let control = SqliteControlStore::open(&data_dir.join("control.sqlite3"))
            .context("opening the control database")?;
        let keys = FileKeyService::open_or_create(&data_dir.join("master.key"))?;
        Ok(Self {
            data_dir: data_dir.to_path_buf(),
            control: Arc::new(control),
            objects: Arc::new(DiskObjectStore::new(data_dir.join("objects"))),
            keys: Arc::new(keys),
            upload_signer: Arc::new(LocalUploadSigner::new("")),
        })
    }

    /// Upload URLs name the local server at `url` (e.g. `http://127.0.0.1:8080`); without
    /// this they are relative to it.
    pub fn with_public_url(mut self, url: &str) -> Self {
        self.upload_signer = Arc::new(LocalUploadSigner::new(url));
        self
    }

    /// The ports over these adapters, with `clock` telling the time.
    pub fn ports(&self, clock: Arc<dyn Clock>) -> Ports {
        Ports {
            control: ControlPorts::over(self.control.clone()),
            objects: self.objects.clone(),
            key_generator: self.keys.clone(),
            key_unwrapper: self.keys.clone(),
            upload_signer: self.upload_signer.clone(),
            clock,
        }
    }
}

/// The data directory holds pupils' data (encrypted) and the key that opens it.
fn restrict_to_owner(dir: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
    }
}
