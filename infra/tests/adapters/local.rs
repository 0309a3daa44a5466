//! What only the embedded adapters have: the master key file, and a database that outlives
//! its process.

use rollcall_infra::local::{FileKeyService, LocalPorts, SqliteControlStore};

#[tokio::test]
async fn master_key_is_created_once_and_private() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("master.key");
    FileKeyService::open_or_create(&path).unwrap();
    let first = std::fs::read(&path).unwrap();
    FileKeyService::open_or_create(&path).unwrap();
    assert_eq!(
        std::fs::read(&path).unwrap(),
        first,
        "an existing key is kept"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
}

#[tokio::test]
async fn a_wrapped_key_from_another_master_key_is_refused() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let ports_a = LocalPorts::open(a.path()).unwrap();
    let ports_b = LocalPorts::open(b.path()).unwrap();
    let context = rollcall_core::envelope::KeyContext::new(
        &rollcall_core::model::Estab::parse("1").unwrap(),
        "Students",
    );
    use rollcall_core::ports::{DataKeyGenerator, DataKeyUnwrapper};
    let key = ports_a.keys.generate(&context).await.unwrap();
    assert!(ports_b.keys.unwrap(&context, &key.wrapped).await.is_err());
}

#[tokio::test]
async fn reopening_a_database_keeps_its_data() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("control.sqlite3");
    let first = std::sync::Arc::new(SqliteControlStore::open(&path).unwrap());
    let adapters = rollcall_infra::contract::Adapters {
        control: first,
        objects: std::sync::Arc::new(rollcall_infra::local::DiskObjectStore::new(
            dir.path().join("objects"),
        )),
        key_generator: std::sync::Arc::new(
            FileKeyService::open_or_create(&dir.path().join("master.key")).unwrap(),
        ),
        key_unwrapper: std::sync::Arc::new(
            FileKeyService::open_or_create(&dir.path().join("master.key")).unwrap(),
        ),
    };
    rollcall_infra::contract::partners(&adapters).await;
    drop(adapters);
    let reopened = SqliteControlStore::open(&path).unwrap();
    use rollcall_core::ports::PartnerStore;
    assert_eq!(reopened.partners().await.unwrap().len(), 1);
}
