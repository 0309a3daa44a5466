//! Versions of a result set at rest: one encrypted object per scope group plus the row index,
//! all sealed under one data key bound to {school, result set}, each with the version and
//! group as associated data; read back group by group, so a read decrypts only what it needs.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use zeroize::Zeroizing;

use crate::catalogue::ResultSet;
use crate::dataset::{Row, RowIndex, split_groups};
use crate::envelope::{self, DataKey, EnvelopeError, KeyContext, PlainKey, object_aad};
use crate::model::{Estab, INDEX_GROUP, VersionRecord, version_prefix};
use crate::ports::{DataKeyUnwrapper, KeyError, ObjectStore, StoreError};
use crate::read_cache::{Rows, RowsKey, VersionCache, VersionKey};

#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error("stored object {key} does not open: {source}")]
    Envelope {
        key: String,
        #[source]
        source: EnvelopeError,
    },
    #[error("stored object {0} is not the JSON rollcall wrote")]
    Corrupt(String),
}

/// A version's objects, sealed and ready to put.
pub struct SealedVersion {
    /// (object key, envelope), the index last.
    pub objects: Vec<(String, Vec<u8>)>,
    /// The ids of the scope groups stored, in catalogue order.
    pub groups: Vec<String>,
}

/// Seals `rows` (split into `rs`'s scope groups) and their index as version `version`.
pub fn seal_version(
    key: &DataKey,
    estab: &Estab,
    rs: &ResultSet,
    version: u64,
    upload: &str,
    rows: &[Row],
    index: &RowIndex,
) -> SealedVersion {
    let prefix = version_prefix(estab, &rs.name, version, upload);
    let seal_one = |group: &str, plaintext: Vec<u8>| {
        let aad = object_aad(estab, &rs.name, version, group);
        let sealed = envelope::seal(&key.plaintext, &key.wrapped, &aad, &plaintext);
        (format!("{prefix}{group}"), sealed)
    };
    let mut objects = Vec::with_capacity(rs.groups.len() + 1);
    for (group, group_rows) in rs.groups.iter().zip(split_groups(rs, rows)) {
        let json = serde_json::to_vec(&group_rows).expect("rows serialise");
        objects.push(seal_one(&group.id, json));
    }
    let json = serde_json::to_vec(index).expect("the index serialises");
    objects.push(seal_one(INDEX_GROUP, json));
    SealedVersion {
        objects,
        groups: rs.groups.iter().map(|g| g.id.clone()).collect(),
    }
}

/// Puts every object of a sealed version; on failure, removes the ones already put.
pub async fn put_version(
    objects: &dyn ObjectStore,
    sealed: SealedVersion,
) -> Result<(), StoreError> {
    let keys: Vec<String> = sealed.objects.iter().map(|(k, _)| k.clone()).collect();
    for (key, bytes) in sealed.objects {
        if let Err(error) = objects.put(&key, bytes).await {
            remove_objects(objects, &keys).await;
            return Err(error);
        }
    }
    Ok(())
}

/// Best-effort removal of objects that will never be published.
pub async fn remove_objects(objects: &dyn ObjectStore, keys: &[String]) {
    for key in keys {
        if let Err(error) = objects.delete(key).await {
            tracing::warn!(%error, "could not remove an unpublished object; the purge will");
        }
    }
}

/// A stored version opened for reading: its data key unwrapped once, its index read. The
/// index and key are shared with [`ReadCache`]'s copy when it came from there.
pub struct OpenVersion {
    pub record: VersionRecord,
    pub index: Arc<RowIndex>,
    key: Arc<PlainKey>,
    /// The data key as the index's envelope carries it wrapped: every object of the version
    /// must carry the same.
    wrapped: Arc<[u8]>,
}

/// What a reading function keeps of opened versions between calls ([`crate::read_cache`]).
pub type ReadCache = VersionCache<(Arc<RowIndex>, Arc<PlainKey>, Arc<[u8]>)>;

impl OpenVersion {
    pub async fn open(
        objects: &dyn ObjectStore,
        unwrapper: &dyn DataKeyUnwrapper,
        record: VersionRecord,
    ) -> Result<Self, VaultError> {
        Ok(Self::open_sized(objects, unwrapper, record).await?.0)
    }

    /// [`OpenVersion::open`], and the size of the index's JSON.
    async fn open_sized(
        objects: &dyn ObjectStore,
        unwrapper: &dyn DataKeyUnwrapper,
        record: VersionRecord,
    ) -> Result<(Self, usize), VaultError> {
        let object_key = record.object_key(INDEX_GROUP);
        let sealed = objects.get(&object_key).await?;
        let wrapped = envelope::wrapped_key(&sealed).map_err(|source| VaultError::Envelope {
            key: object_key.clone(),
            source,
        })?;
        let context = KeyContext::new(&record.estab, &record.result_set);
        let key = unwrapper.unwrap(&context, wrapped).await?;
        let plaintext = Zeroizing::new(open_object(
            &key,
            &record,
            INDEX_GROUP,
            &object_key,
            &sealed,
        )?);
        let index = serde_json::from_slice(&plaintext)
            .map_err(|_| VaultError::Corrupt(object_key.clone()))?;
        let opened = Self {
            record,
            index: Arc::new(index),
            key: Arc::new(key),
            wrapped: Arc::from(wrapped),
        };
        Ok((opened, plaintext.len()))
    }

    /// [`OpenVersion::open`], or the copy `cache` kept of the same version. `record` is the
    /// control store's, read for this call: only the immutable objects are cached.
    pub async fn open_cached(
        objects: &dyn ObjectStore,
        unwrapper: &dyn DataKeyUnwrapper,
        cache: &ReadCache,
        record: VersionRecord,
    ) -> Result<Self, VaultError> {
        let key = VersionKey {
            estab: record.estab.clone(),
            object: record.object_key(INDEX_GROUP),
        };
        if let Some((index, data_key, wrapped)) = cache.version(&key) {
            return Ok(Self {
                record,
                index,
                key: data_key,
                wrapped,
            });
        }
        let (opened, bytes) = Self::open_sized(objects, unwrapper, record).await?;
        let kept = (
            opened.index.clone(),
            opened.key.clone(),
            opened.wrapped.clone(),
        );
        cache.keep_version(key, kept, bytes);
        Ok(opened)
    }

    /// The rows of one scope group, in index order, and the size of their JSON.
    async fn group_sized(
        &self,
        objects: &dyn ObjectStore,
        group: &str,
    ) -> Result<(Vec<Row>, usize), VaultError> {
        let object_key = self.record.object_key(group);
        let sealed = objects.get(&object_key).await?;
        // The key opens the object only if it is the version's; an object carrying another
        // wrapped key (another school's or version's) is refused even so.
        let carried = envelope::wrapped_key(&sealed).map_err(|source| VaultError::Envelope {
            key: object_key.clone(),
            source,
        })?;
        if carried != &*self.wrapped {
            return Err(VaultError::Envelope {
                key: object_key,
                source: EnvelopeError::ForeignKey,
            });
        }
        let plaintext = Zeroizing::new(open_object(
            &self.key,
            &self.record,
            group,
            &object_key,
            &sealed,
        )?);
        let rows: Vec<Row> = serde_json::from_slice(&plaintext)
            .map_err(|_| VaultError::Corrupt(object_key.clone()))?;
        if rows.len() != self.index.rows.len() {
            return Err(VaultError::Corrupt(object_key));
        }
        Ok((rows, plaintext.len()))
    }

    /// The rows of one scope group, in index order.
    pub async fn group(
        &self,
        objects: &dyn ObjectStore,
        group: &str,
    ) -> Result<Vec<Row>, VaultError> {
        Ok(self.group_sized(objects, group).await?.0)
    }

    /// The rows with the fields of `groups` (and nothing else), in index order.
    pub async fn rows(
        &self,
        objects: &dyn ObjectStore,
        groups: &[&str],
    ) -> Result<Vec<Row>, VaultError> {
        Ok(self.rows_sized(objects, groups).await?.0)
    }

    async fn rows_sized(
        &self,
        objects: &dyn ObjectStore,
        groups: &[&str],
    ) -> Result<(Vec<Row>, usize), VaultError> {
        let mut rows: Vec<Row> = vec![Row::new(); self.index.rows.len()];
        let mut bytes = 0;
        for group in groups {
            let (parts, size) = self.group_sized(objects, group).await?;
            bytes += size;
            if groups.len() == 1 {
                return Ok((parts, bytes));
            }
            for (row, part) in rows.iter_mut().zip(parts) {
                row.extend(part);
            }
        }
        Ok((rows, bytes))
    }

    /// [`OpenVersion::rows`], or the copy `cache` kept of the same groups of this version.
    pub async fn rows_cached(
        &self,
        objects: &dyn ObjectStore,
        cache: &ReadCache,
        groups: &[&str],
    ) -> Result<Arc<Rows>, VaultError> {
        let key = RowsKey {
            estab: self.record.estab.clone(),
            object: self.record.object_key(INDEX_GROUP),
            groups: groups.iter().map(|g| (*g).to_owned()).collect(),
        };
        if let Some(rows) = cache.rows(&key) {
            return Ok(rows);
        }
        let (rows, bytes) = self.rows_sized(objects, groups).await?;
        let rows = Arc::new(Rows::new(rows));
        cache.keep_rows(key, rows.clone(), bytes);
        Ok(rows)
    }

    /// What the rows `ids` hold of `fields`, by id: read from the groups holding those
    /// fields only. Kept as the tombstones of rows an upload deleted.
    pub async fn tombstones(
        &self,
        objects: &dyn ObjectStore,
        rs: &ResultSet,
        fields: &BTreeSet<&str>,
        ids: &BTreeSet<&str>,
    ) -> Result<HashMap<String, Row>, VaultError> {
        let positions: Vec<(usize, &str)> = self
            .index
            .rows
            .iter()
            .enumerate()
            .filter(|(_, entry)| ids.contains(entry.id.as_str()))
            .map(|(position, entry)| (position, entry.id.as_str()))
            .collect();
        let mut kept: HashMap<String, Row> = positions
            .iter()
            .map(|(_, id)| ((*id).to_owned(), Row::new()))
            .collect();
        for group in &rs.groups {
            let wanted = group.fields.iter().any(|f| fields.contains(f.as_str()));
            if !wanted || !self.record.groups.contains(&group.id) {
                continue;
            }
            let rows = self.group(objects, &group.id).await?;
            for (position, id) in &positions {
                let row = kept.get_mut(*id).expect("every id has a row");
                for (name, value) in &rows[*position] {
                    if fields.contains(name.as_str()) {
                        row.insert(name.clone(), value.clone());
                    }
                }
            }
        }
        Ok(kept)
    }
}

fn open_object(
    key: &PlainKey,
    record: &VersionRecord,
    group: &str,
    object_key: &str,
    sealed: &[u8],
) -> Result<Vec<u8>, VaultError> {
    let aad = object_aad(&record.estab, &record.result_set, record.version, group);
    envelope::open(key, &aad, sealed).map_err(|source| VaultError::Envelope {
        key: object_key.to_owned(),
        source,
    })
}
