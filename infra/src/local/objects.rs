//! Object store on the local disk: one file per object under a root directory, the key being
//! the relative path. Writes go to a temporary file first and are renamed into place, so a
//! reader never sees half an object.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use rollcall_core::ports::{ObjectStore, StoreError};

pub struct DiskObjectStore {
    root: PathBuf,
}

impl DiskObjectStore {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The file for a key; keys are `/`-separated names without `.`/`..` segments, so no key
    /// can reach outside the root.
    fn path(&self, key: &str) -> Result<PathBuf, StoreError> {
        let valid = !key.is_empty()
            && key.split('/').all(|s| {
                !s.is_empty()
                    && s != "."
                    && s != ".."
                    && !s.contains('\\')
                    && !s.starts_with(".tmp-")
            });
        if !valid {
            return Err(StoreError::unavailable(format!(
                "invalid object key {key:?}"
            )));
        }
        Ok(self.root.join(key))
    }
}

#[async_trait]
impl ObjectStore for DiskObjectStore {
    async fn put(&self, key: &str, bytes: Vec<u8>) -> Result<(), StoreError> {
        let path = self.path(key)?;
        let parent = path
            .parent()
            .expect("an object path has a parent")
            .to_path_buf();
        tokio::fs::create_dir_all(&parent)
            .await
            .map_err(StoreError::unavailable)?;
        let name = path
            .file_name()
            .expect("an object path has a name")
            .to_string_lossy();
        let temp = parent.join(format!(".tmp-{name}-{}", std::process::id()));
        tokio::fs::write(&temp, bytes)
            .await
            .map_err(StoreError::unavailable)?;
        tokio::fs::rename(&temp, &path)
            .await
            .map_err(StoreError::unavailable)
    }

    async fn get(&self, key: &str) -> Result<Vec<u8>, StoreError> {
        match tokio::fs::read(self.path(key)?).await {
            Ok(bytes) => Ok(bytes),
            Err(e) if e.kind() == ErrorKind::NotFound => Err(StoreError::NotFound(key.to_owned())),
            Err(e) => Err(StoreError::unavailable(e)),
        }
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        let path = self.path(key)?;
        match tokio::fs::remove_file(&path).await {
            Ok(()) => {
                remove_empty_parents(&self.root, &path).await;
                Ok(())
            }
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
            Err(e) => Err(StoreError::unavailable(e)),
        }
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        let root = self.root.clone();
        let prefix = prefix.to_owned();
        tokio::task::spawn_blocking(move || {
            let mut keys = Vec::new();
            collect_keys(&root, &root, &prefix, &mut keys)?;
            keys.sort();
            Ok(keys)
        })
        .await
        .map_err(StoreError::unavailable)?
    }
}

/// Removes directories left empty by a delete, up to (not including) the root, so a disposed
/// school leaves no trace of its result-set names on disk.
async fn remove_empty_parents(root: &Path, file: &Path) {
    let mut dir = file.parent();
    while let Some(d) = dir {
        if d == root || tokio::fs::remove_dir(d).await.is_err() {
            break;
        }
        dir = d.parent();
    }
}

fn collect_keys(
    root: &Path,
    dir: &Path,
    prefix: &str,
    out: &mut Vec<String>,
) -> Result<(), StoreError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(StoreError::unavailable(e)),
    };
    for entry in entries {
        let entry = entry.map_err(StoreError::unavailable)?;
        let path = entry.path();
        let relative = path
            .strip_prefix(root)
            .expect("under root")
            .to_string_lossy()
            .replace('\\', "/");
        if entry.file_type().map_err(StoreError::unavailable)?.is_dir() {
            // Only descend where a key under this directory could still match the prefix.
            let dir_key = format!("{relative}/");
            if dir_key.starts_with(prefix) || prefix.starts_with(&dir_key) {
                collect_keys(root, &path, prefix, out)?;
            }
        } else if relative.starts_with(prefix)
            && !entry.file_name().to_string_lossy().starts_with(".tmp-")
        {
            out.push(relative);
        }
    }
    Ok(())
}
