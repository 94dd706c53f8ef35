//! Build cache: pure, versioned step keys and the local cache index.
//!
//! A key is sha256 over a schema version, the parent step's key, and the parts of the step
//! that decide its result (the expanded instruction, the args/env it can see, the content key
//! of exactly the files it reads). Secrets never enter a key. The index keeps one small JSON
//! file per key (`<root>/cache/<hex>.json`, written by temp file + rename); an entry whose
//! layer blob is gone is a miss, never an error. Beside the entries, `inputs/` keeps what the
//! last run of each step place was keyed on, to explain the next miss (see [`explain`]).

pub mod explain;
mod key;
mod mount_parts;
pub mod mounts;
pub mod transfer;

pub use key::{StepKey, key};

use crate::oci::Digest;
use serde::{Deserialize, Serialize};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Bumped whenever what a key covers changes, so old entries simply stop matching.
const SCHEMA: &str = "hoist-cache-v1";

/// Errors from the cache index.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// Writing or unpacking a cache mount's blob failed.
    #[error("cache mount blob: {0}")]
    Layers(#[from] crate::layers::LayersError),
    /// A registry call of cache export/import failed.
    #[error("build cache at {reference}: {source}")]
    Remote {
        reference: String,
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A registry cache location was given but no registry client is available.
    #[error("build cache at {reference}: no registry client available")]
    NoRegistry { reference: String },
    /// The artifact at a cache location is something else.
    #[error(
        "{origin} is not a hoist build cache (config media type {media_type}); point --cache-from at a ref written by --cache-to"
    )]
    NotACache { origin: String, media_type: String },
    /// A blob in a local cache directory does not match its name.
    #[error("{path}: blob content does not match its digest; re-export the cache")]
    CorruptBlob { path: PathBuf },
}

/// Result alias for this module.
pub type Result<T> = std::result::Result<T, CacheError>;

/// The layer a cached step produced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CachedLayer {
    pub digest: Digest,
    pub diff_id: Digest,
    pub size: u64,
    pub media_type: String,
}

/// What a step produced: its layer and when it was made (its history `created`), so a cached
/// rebuild gives the very same config and image digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheEntry {
    pub layer: CachedLayer,
    #[serde(default)]
    pub created: Option<String>,
}

/// The local index under `<root>/cache`.
#[derive(Debug, Clone)]
pub struct CacheIndex {
    dir: PathBuf,
}

impl CacheIndex {
    /// Opens (creating) the index directory.
    pub fn open(dir: &Path) -> Result<CacheIndex> {
        fs::create_dir_all(dir).map_err(|source| CacheError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        Ok(CacheIndex {
            dir: dir.to_path_buf(),
        })
    }

    fn path(&self, key: &Digest) -> PathBuf {
        self.dir.join(format!("{}.json", key.hex()))
    }

    /// The entry for `key`; unreadable or corrupt entries are misses. A hit refreshes the
    /// entry's mtime, which `trim` uses as its last-use time.
    pub fn get(&self, key: &Digest) -> Option<CacheEntry> {
        let p = self.path(key);
        let bytes = fs::read(&p).ok()?;
        let e = serde_json::from_slice(&bytes).ok()?;
        let _ = fs::File::options()
            .append(true)
            .open(&p)
            .and_then(|f| f.set_modified(std::time::SystemTime::now()));
        Some(e)
    }

    /// Records an entry atomically.
    pub fn put(&self, key: &Digest, entry: &CacheEntry) -> Result<()> {
        let p = self.path(key);
        let io = |source| CacheError::Io {
            path: p.clone(),
            source,
        };
        let mut tmp = tempfile::NamedTempFile::new_in(&self.dir).map_err(io)?;
        let body = serde_json::to_vec(entry).map_err(|e| io(e.into()))?;
        tmp.write_all(&body).map_err(io)?;
        tmp.persist(&p).map_err(|e| io(e.error))?;
        Ok(())
    }

    fn inputs_path(&self, identity: &Digest) -> PathBuf {
        self.dir
            .join("inputs")
            .join(format!("{}.json", identity.hex()))
    }

    /// The inputs record last written for the step place `identity`; unreadable or corrupt
    /// records are simply absent (the explanation then says no entry existed).
    pub fn get_inputs(&self, identity: &Digest) -> Option<explain::StepInputs> {
        let bytes = fs::read(self.inputs_path(identity)).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    /// Records the inputs of the step place `identity` atomically (replacing the last one).
    pub fn put_inputs(&self, identity: &Digest, inputs: &explain::StepInputs) -> Result<()> {
        let p = self.inputs_path(identity);
        let dir = self.dir.join("inputs");
        let io = |source| CacheError::Io {
            path: p.clone(),
            source,
        };
        fs::create_dir_all(&dir).map_err(io)?;
        let mut tmp = tempfile::NamedTempFile::new_in(&dir).map_err(io)?;
        let body = serde_json::to_vec(inputs).map_err(|e| io(e.into()))?;
        tmp.write_all(&body).map_err(io)?;
        tmp.persist(&p).map_err(|e| io(e.error))?;
        Ok(())
    }

    /// Drops the inputs records whose step's cache entry is gone (GC or prune removed it):
    /// a record only explains a miss against an entry that could have hit, so it lives as
    /// long as that entry and the records stay as many as the entries. Returns how many went.
    pub fn prune_inputs(&self) -> Result<usize> {
        let dir = self.dir.join("inputs");
        let Ok(rd) = fs::read_dir(&dir) else {
            return Ok(0);
        };
        let mut gone = 0;
        for e in rd.flatten() {
            let p = e.path();
            let live = fs::read(&p)
                .ok()
                .and_then(|b| serde_json::from_slice::<explain::StepInputs>(&b).ok())
                .and_then(|r| r.key.parse::<Digest>().ok())
                .is_some_and(|k| self.path(&k).is_file());
            if !live {
                match fs::remove_file(&p) {
                    Ok(()) => gone += 1,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(source) => return Err(CacheError::Io { path: p, source }),
                }
            }
        }
        Ok(gone)
    }

    /// Every readable entry (for `hoist prune`, which keeps what they name).
    pub fn entries(&self) -> Result<Vec<CacheEntry>> {
        let rd = fs::read_dir(&self.dir).map_err(|source| CacheError::Io {
            path: self.dir.clone(),
            source,
        })?;
        Ok(rd
            .flatten()
            .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
            .filter_map(|e| fs::read(e.path()).ok())
            .filter_map(|b| serde_json::from_slice(&b).ok())
            .collect())
    }

    /// Every readable entry with its key and last use (the file's mtime), for GC.
    pub fn entries_with_use(&self) -> Result<Vec<(Digest, CacheEntry, std::time::SystemTime)>> {
        let rd = fs::read_dir(&self.dir).map_err(|source| CacheError::Io {
            path: self.dir.clone(),
            source,
        })?;
        Ok(rd
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                let key = Digest::from_hex(name.strip_suffix(".json")?).ok()?;
                let used = e.metadata().ok()?.modified().ok()?;
                let entry = serde_json::from_slice(&fs::read(e.path()).ok()?).ok()?;
                Some((key, entry, used))
            })
            .collect())
    }

    /// Drops the entry for `key` (its blobs are left to the store's prune).
    pub fn remove(&self, key: &Digest) -> Result<()> {
        let p = self.path(key);
        match fs::remove_file(&p) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(CacheError::Io { path: p, source }),
        }
    }

    /// Removes least-recently-used entries until the layers they name total at most
    /// `keep_bytes`; returns how many entries went. Blobs are left to the store's prune.
    pub fn trim(&self, keep_bytes: u64) -> Result<usize> {
        let rd = fs::read_dir(&self.dir).map_err(|source| CacheError::Io {
            path: self.dir.clone(),
            source,
        })?;
        let mut entries: Vec<(std::time::SystemTime, PathBuf, u64)> = rd
            .flatten()
            .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
            .filter_map(|e| {
                let m = e.metadata().ok()?;
                let size = fs::read(e.path())
                    .ok()
                    .and_then(|b| serde_json::from_slice::<CacheEntry>(&b).ok())
                    .map(|c| c.layer.size)
                    .unwrap_or(0);
                Some((m.modified().ok()?, e.path(), size))
            })
            .collect();
        entries.sort_by_key(|e| std::cmp::Reverse(e.0));
        let mut total = 0u64;
        let mut removed = 0;
        for (_, p, size) in entries {
            total += size;
            if total > keep_bytes && fs::remove_file(&p).is_ok() {
                removed += 1;
            }
        }
        Ok(removed)
    }
}

/// `hoist prune --keep-storage SIZE`: trims the build cache under a store root to at most
/// `keep_bytes` of layers, least recently used first; returns how many entries went.
pub fn trim_store_cache(store_root: &Path, keep_bytes: u64) -> Result<usize> {
    CacheIndex::open(&store_root.join("cache"))?.trim(keep_bytes)
}

/// Parses a size like Docker's `--keep-storage`: `512`, `10MB`, `1.5GB`, `2GiB` (decimal
/// and binary units, case-insensitive; `B` optional). `None` when it does not parse.
pub fn parse_size(s: &str) -> Option<u64> {
    let t = s.trim().to_ascii_lowercase();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num.parse().ok()?;
    let mult: f64 = match unit.trim() {
        "" | "b" => 1.0,
        "k" | "kb" => 1e3,
        "m" | "mb" => 1e6,
        "g" | "gb" => 1e9,
        "t" | "tb" => 1e12,
        "ki" | "kib" => 1024.0,
        "mi" | "mib" => 1024.0 * 1024.0,
        "gi" | "gib" => 1024.0 * 1024.0 * 1024.0,
        "ti" | "tib" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        _ => return None,
    };
    let v = n * mult;
    (v.is_finite() && v >= 0.0 && v < u64::MAX as f64).then_some(v as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_round_trip_and_corrupt_entry_is_a_miss() {
        let dir = tempfile::tempdir().unwrap();
        let idx = CacheIndex::open(dir.path()).unwrap();
        let k = Digest::of(b"k");
        assert!(idx.get(&k).is_none());
        let layer = CachedLayer {
            digest: Digest::of(b"l"),
            diff_id: Digest::of(b"d"),
            size: 3,
            media_type: "m".into(),
        };
        let e = CacheEntry {
            layer,
            created: Some("2024-01-01T00:00:00Z".into()),
        };
        idx.put(&k, &e).unwrap();
        assert_eq!(idx.get(&k), Some(e));
        fs::write(dir.path().join(format!("{}.json", k.hex())), b"{not json").unwrap();
        assert!(idx.get(&k).is_none());
    }

    #[test]
    fn inputs_records_go_with_their_cache_entries() {
        let dir = tempfile::tempdir().unwrap();
        let idx = CacheIndex::open(dir.path()).unwrap();
        let record = |key: &Digest| explain::StepInputs {
            key: key.to_string(),
            parent: String::new(),
            text: "RUN x".into(),
            base: None,
            args: vec![],
            parts: vec![],
            files: None,
        };
        let (live, dead) = (Digest::of(b"live"), Digest::of(b"dead"));
        let entry = CacheEntry {
            layer: CachedLayer {
                digest: Digest::of(b"l"),
                diff_id: Digest::of(b"d"),
                size: 1,
                media_type: "m".into(),
            },
            created: None,
        };
        idx.put(&live, &entry).unwrap();
        idx.put_inputs(&Digest::of(b"place1"), &record(&live))
            .unwrap();
        idx.put_inputs(&Digest::of(b"place2"), &record(&dead))
            .unwrap();
        assert_eq!(idx.prune_inputs().unwrap(), 1);
        assert!(idx.get_inputs(&Digest::of(b"place1")).is_some());
        assert!(idx.get_inputs(&Digest::of(b"place2")).is_none());
        idx.remove(&live).unwrap();
        assert_eq!(idx.prune_inputs().unwrap(), 1);
    }

    #[test]
    fn sizes_like_docker() {
        assert_eq!(parse_size("512"), Some(512));
        assert_eq!(parse_size("10MB"), Some(10_000_000));
        assert_eq!(parse_size("1.5gb"), Some(1_500_000_000));
        assert_eq!(parse_size("2GiB"), Some(2 * 1024 * 1024 * 1024));
        assert_eq!(parse_size("ten"), None);
        assert_eq!(parse_size("5XB"), None);
    }

    #[test]
    fn trim_drops_least_recently_used_first() {
        let dir = tempfile::tempdir().unwrap();
        let idx = CacheIndex::open(&dir.path().join("cache")).unwrap();
        let entry = |n: u8| CacheEntry {
            layer: CachedLayer {
                digest: Digest::of(&[n]),
                diff_id: Digest::of(&[n, n]),
                size: 100,
                media_type: "m".into(),
            },
            created: None,
        };
        let keys: Vec<Digest> = (0..3u8).map(|n| Digest::of(&[b'k', n])).collect();
        for (i, k) in keys.iter().enumerate() {
            idx.put(k, &entry(i as u8)).unwrap();
            let t = std::time::SystemTime::UNIX_EPOCH
                + std::time::Duration::from_secs(1_000_000 + i as u64 * 10);
            fs::File::options()
                .append(true)
                .open(idx.path(k))
                .unwrap()
                .set_modified(t)
                .unwrap();
        }
        // Using the oldest makes it the most recent.
        assert!(idx.get(&keys[0]).is_some());
        assert_eq!(trim_store_cache(dir.path(), 150).unwrap(), 2);
        assert!(idx.get(&keys[0]).is_some());
        assert!(idx.get(&keys[1]).is_none());
        assert!(idx.get(&keys[2]).is_none());
    }
}
