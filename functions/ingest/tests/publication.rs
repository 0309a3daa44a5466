//! An upload of more result sets than one atomic step publishes chunk by chunk. When a later
//! chunk loses a race, the ingest removes the objects of the versions that were never
//! published, and keeps those of every version that was, even one another upload has replaced
//! since: a superseded version is still read by walks pinned to it until the purge takes it.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use rollcall_core::catalogue::Catalogue;
use rollcall_core::dataset::parse_upload;
use rollcall_core::model::{Estab, School, VersionRecord};
use rollcall_core::ports::{ManualClock, PUBLICATION_CHUNK, Publication, StoreError, VersionStore};
use rollcall_core::secret::KeyHash;
use rollcall_core::timestamp::Timestamp;
use rollcall_infra::local::LocalPorts;
use rollcall_ingest::{IngestState, ingest};
use serde_json::{Map, Value, json};

const ESTAB: &str = "9990071";
const T0: Timestamp = Timestamp::from_millis(1_790_000_000_000);

/// The version store, but when the upload's second chunk arrives, another upload first
/// publishes `raced` (replacing the first chunk's version of it) and every set of that second
/// chunk, so the chunk fails as in a real race.
struct Racing {
    inner: Arc<dyn VersionStore>,
    raced: String,
    chunks: AtomicUsize,
}

/// Another upload's version of a set, replacing `replaces`.
fn theirs(record: &VersionRecord, replaces: Option<u64>) -> Publication {
    Publication {
        record: VersionRecord {
            version: replaces.map_or(1, |v| v + 1),
            upload: "other".into(),
            ..record.clone()
        },
        replaces,
    }
}

#[async_trait]
impl VersionStore for Racing {
    async fn current_version(
        &self,
        estab: &Estab,
        result_set: &str,
    ) -> Result<Option<VersionRecord>, StoreError> {
        self.inner.current_version(estab, result_set).await
    }

    async fn version_record(
        &self,
        estab: &Estab,
        result_set: &str,
        version: u64,
    ) -> Result<Option<VersionRecord>, StoreError> {
        self.inner.version_record(estab, result_set, version).await
    }

    async fn current_versions(&self, estab: &Estab) -> Result<Vec<VersionRecord>, StoreError> {
        self.inner.current_versions(estab).await
    }

    async fn publish_chunk(
        &self,
        publications: &[Publication],
        now: Timestamp,
    ) -> Result<(), StoreError> {
        if self.chunks.fetch_add(1, Ordering::SeqCst) == 1 {
            let estab = &publications[0].record.estab;
            let ours = self
                .inner
                .current_version(estab, &self.raced)
                .await?
                .expect("the first chunk published it");
            let mut other = vec![theirs(&ours, Some(ours.version))];
            other.extend(publications.iter().map(|p| theirs(&p.record, None)));
            self.inner.publish_chunk(&other, now).await?;
        }
        self.inner.publish_chunk(publications, now).await
    }

    async fn confirm_version(
        &self,
        estab: &Estab,
        result_set: &str,
        version: u64,
        confirmed_at: Timestamp,
        valid_until: Timestamp,
    ) -> Result<(), StoreError> {
        self.inner
            .confirm_version(estab, result_set, version, confirmed_at, valid_until)
            .await
    }
}

#[tokio::test]
async fn a_lost_race_removes_only_what_was_never_published() {
    // Arrange: a school, and an upload of one more result set than a chunk holds.
    let dir = tempfile::tempdir().unwrap();
    let local = LocalPorts::open(dir.path()).unwrap();
    let mut ports = local.ports(Arc::new(ManualClock::new(T0)));
    let school = School {
        estab: Estab::parse(ESTAB).unwrap(),
        name: "Race School".into(),
        agent_key_hash: KeyHash::of(b"agent"),
        admin_key_hash: KeyHash::of(b"admin"),
        row_hash_key: vec![5; 32],
        created_at: T0,
    };
    ports.control.registry.insert_school(&school).await.unwrap();
    let names: Vec<String> = Catalogue::get()
        .stored_sets()
        .map(|rs| rs.name.clone())
        .take(PUBLICATION_CHUNK + 1)
        .collect();
    assert_eq!(names.len(), PUBLICATION_CHUNK + 1, "enough stored sets");
    let sets: Map<String, Value> = names
        .iter()
        .map(|name| (name.clone(), json!([{"Id": "1"}])))
        .collect();
    let body = json!({ "resultSets": sets }).to_string();
    let upload = parse_upload(Catalogue::get(), body.as_bytes()).unwrap();
    let raced = upload.result_sets[0].0.clone();
    let unpublished = upload.result_sets[PUBLICATION_CHUNK].0.clone();
    ports.control.versions = Arc::new(Racing {
        inner: ports.control.versions.clone(),
        raced: raced.clone(),
        chunks: AtomicUsize::new(0),
    });
    let state = IngestState::new(&ports);

    // Act
    let outcome = ingest(&state, &school, upload).await;

    // Assert: refused as a conflict to send again.
    let error = outcome.expect_err("the second chunk lost the race");
    assert_eq!(error.status().as_u16(), 409, "{error}");
    // The raced set's version from this upload is superseded, and keeps its objects.
    let ours = ports
        .control
        .versions
        .version_record(&school.estab, &raced, 1)
        .await
        .unwrap()
        .expect("the published version's record stays");
    assert!(ours.superseded_at.is_some());
    assert!(
        !ports
            .objects
            .list(&ours.object_prefix())
            .await
            .unwrap()
            .is_empty(),
        "{raced}"
    );
    // A set of the first chunk nobody raced is current, with its objects.
    let kept = ports
        .control
        .versions
        .current_version(&school.estab, &names[1])
        .await
        .unwrap()
        .expect("published");
    assert!(
        !ports
            .objects
            .list(&kept.object_prefix())
            .await
            .unwrap()
            .is_empty()
    );
    // The second chunk's set is the other upload's; this upload's objects of it are gone.
    let current = ports
        .control
        .versions
        .current_version(&school.estab, &unpublished)
        .await
        .unwrap()
        .expect("the other upload's");
    assert_eq!(current.upload, "other");
    let prefix = format!("{ESTAB}/{unpublished}/");
    assert_eq!(
        ports.objects.list(&prefix).await.unwrap(),
        Vec::<String>::new()
    );
}
