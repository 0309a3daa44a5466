//! The port contracts, run against the local adapters in a temporary directory.

mod contract;

use rollcall_infra::local::{DiskObjectStore, FileKeyService, LocalPorts, SqliteControlStore};

#[tokio::test]
async fn disk_object_store_meets_the_contract() {
    let dir = tempfile::tempdir().unwrap();
    contract::object_store(&DiskObjectStore::new(dir.path().join("objects"))).await;
}

#[tokio::test]
async fn file_key_service_meets_the_contract() {
    let dir = tempfile::tempdir().unwrap();
    let keys = FileKeyService::open_or_create(&dir.path().join("master.key")).unwrap();
    contract::key_service(&keys, &keys).await;
}

#[tokio::test]
async fn sqlite_control_store_meets_the_contract() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteControlStore::open(&dir.path().join("control.sqlite3")).unwrap();
    contract::control_store_schools_and_partners(&store).await;
    contract::control_store_consents_and_tokens(&store).await;
    contract::control_store_versions(&store).await;
    contract::control_store_staged_uploads(&store).await;
    contract::control_store_tasks(&store).await;
    contract::control_store_opt_outs(&store).await;
}

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
    contract::control_store_schools_and_partners(&SqliteControlStore::open(&path).unwrap()).await;
    let reopened = SqliteControlStore::open(&path).unwrap();
    use rollcall_core::ports::PartnerStore;
    assert_eq!(reopened.partners().await.unwrap().len(), 1);
}
