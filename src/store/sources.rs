//! Which repositories of which registries are known to hold a blob, for cross-repository
//! mounts on push: one small JSON record per blob (`meta/sources/<hex>`), so a pull or push
//! reads and writes what it touches, never a store-wide map; prune forgets a removed blob's.

use super::{Result, Store, io_err};
use crate::oci::Digest;
use std::fs;
use std::path::{Path, PathBuf};

impl Store {
    /// The record of the repositories known to hold one blob: one small file per blob, so
    /// a push or pull reads and writes what it touches, never a store-wide map.
    fn sources_path(&self, digest: &Digest) -> PathBuf {
        self.root.join("meta").join("sources").join(digest.hex())
    }

    /// Remembers that `digest` exists in `registry/repository` (for cross-repository mounts).
    pub fn record_blob_source(
        &self,
        registry: &str,
        repository: &str,
        digest: &Digest,
    ) -> Result<()> {
        self.record_blob_sources(registry, repository, std::slice::from_ref(digest))
    }

    /// [`Store::record_blob_source`] for several blobs at once.
    pub fn record_blob_sources(
        &self,
        registry: &str,
        repository: &str,
        digests: &[Digest],
    ) -> Result<()> {
        let _g = self.lock("sources", true)?;
        let entry = format!("{registry}/{repository}");
        for d in digests {
            let path = self.sources_path(d);
            let mut v = Self::read_sources(&path);
            if v.contains(&entry) {
                continue;
            }
            v.push(entry.clone());
            // Keep the record small: the most recent few repositories.
            if v.len() > 8 {
                v.remove(0);
            }
            if let Some(dir) = path.parent() {
                fs::create_dir_all(dir).map_err(io_err(dir))?;
            }
            Self::write_json(&path, "blob sources", &v)?;
        }
        Ok(())
    }

    /// One blob's sources; a missing or unreadable record is empty (it is only a hint).
    fn read_sources(path: &Path) -> Vec<String> {
        fs::read(path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    /// Repositories of `registry` where `digest` is known to exist (most recent last).
    pub fn blob_sources(&self, registry: &str, digest: &Digest) -> Result<Vec<String>> {
        let _g = self.lock("sources", false)?;
        let prefix = format!("{registry}/");
        Ok(Self::read_sources(&self.sources_path(digest))
            .iter()
            .filter_map(|s| s.strip_prefix(&prefix).map(str::to_string))
            .collect())
    }

    /// Forgets the sources of a blob that is gone.
    pub(crate) fn forget_blob_sources(&self, digest: &Digest) {
        let _ = fs::remove_file(self.sources_path(digest));
    }
}
