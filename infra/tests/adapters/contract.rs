//! Every contract case ([`rollcall_infra::contract`]) on every adapter set, from the one list.

use std::sync::Arc;

use rollcall_infra::contract::Adapters;
use rollcall_infra::contract_tests;
use rollcall_infra::local::{DiskObjectStore, FileKeyService, SqliteControlStore};

/// An adapter set and what keeps it alive for the test.
pub struct Backend {
    pub adapters: Adapters,
    _dir: Option<tempfile::TempDir>,
}

/// The embedded adapters in a fresh temporary directory.
async fn sqlite() -> Option<Backend> {
    let dir = tempfile::tempdir().unwrap();
    let keys = Arc::new(FileKeyService::open_or_create(&dir.path().join("master.key")).unwrap());
    let adapters = Adapters {
        control: Arc::new(SqliteControlStore::open(&dir.path().join("control.sqlite3")).unwrap()),
        objects: Arc::new(DiskObjectStore::new(dir.path().join("objects"))),
        key_generator: keys.clone(),
        key_unwrapper: keys,
    };
    Some(Backend {
        adapters,
        _dir: Some(dir),
    })
}

/// DynamoDB, S3 and KMS on the emulator, each fresh.
async fn aws() -> Option<Backend> {
    let aws = crate::emulator().await?;
    let adapters = Adapters {
        control: aws.control.clone(),
        objects: aws.objects.clone(),
        key_generator: aws.keys.clone(),
        key_unwrapper: aws.keys.clone(),
    };
    Some(Backend {
        adapters,
        _dir: None,
    })
}

contract_tests!(sqlite, aws);
