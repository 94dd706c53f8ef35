//! The local content-addressed store under the hoist root: blobs by digest (verified, atomic
//! writes), the image index (name → manifest digest), unpacked layer snapshots, RUN cache-mount
//! directories, and scratch space, with file locks so several hoist processes can share a root.
//!
//! Layout:
//!
//! ```text
//! <root>/blobs/sha256/<hex>      read-only blobs, named by the sha256 of their bytes
//! <root>/images.json             {"docker.io/library/busybox:latest": "sha256:…"}, rewritten atomically
//! <root>/snapshots/<hex>         unpacked layers (overlay format), keyed by diffID
//! <root>/cache-mounts/<hex>      RUN --mount=type=cache dirs, keyed by sha256(id)
//! <root>/tmp/                    scratch (uppers, downloads); cleaned of stale entries at open
//! <root>/locks/                  flock files
//! ```

mod blob;
mod index;

pub use blob::BlobWriter;

use crate::oci::{Digest, ImageConfig, Manifest};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// Errors from the store; each names the path or digest at fault.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("blob {0} is not in the store")]
    MissingBlob(Digest),
    #[error(
        "digest mismatch: expected {expected}, got {actual} ({size} bytes); nothing was stored"
    )]
    DigestMismatch {
        expected: Digest,
        actual: Digest,
        size: u64,
    },
    #[error(
        "blob {digest} at {path} is corrupt (its bytes hash to {actual}); run `hoist fsck --repair`"
    )]
    CorruptBlob {
        digest: Digest,
        actual: Digest,
        path: PathBuf,
    },
    #[error("image {0} is not in the store")]
    UnknownImage(String),
    #[error("{path}: invalid JSON: {source}")]
    Json {
        path: String,
        source: serde_json::Error,
    },
}

/// Result alias for the store.
pub type Result<T> = std::result::Result<T, StoreError>;

pub(crate) fn io_err(path: &Path) -> impl FnOnce(io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// A store rooted at a directory.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
}

impl Store {
    /// Opens (creating if needed) the store at `root`, and removes stale scratch entries left by
    /// killed processes (entries whose owner lock is free).
    pub fn open(root: &Path) -> Result<Store> {
        for sub in ["blobs/sha256", "snapshots", "cache-mounts", "tmp", "locks"] {
            let p = root.join(sub);
            fs::create_dir_all(&p).map_err(io_err(&p))?;
        }
        let store = Store {
            root: root.to_path_buf(),
        };
        store.clean_stale_tmp();
        Ok(store)
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where a blob lives (`blobs/sha256/<hex>`).
    pub fn blob_path(&self, d: &Digest) -> PathBuf {
        self.root.join("blobs").join("sha256").join(d.hex())
    }

    /// True when the blob is present (not verified; see `read_blob`/`fsck`).
    pub fn has_blob(&self, d: &Digest) -> bool {
        self.blob_path(d).is_file()
    }

    /// A writer for a new blob; nothing is visible until `BlobWriter::commit`.
    pub fn blob_writer(&self) -> Result<BlobWriter> {
        BlobWriter::new(self)
    }

    /// Stores bytes; returns their digest.
    pub fn put_blob(&self, bytes: &[u8]) -> Result<Digest> {
        let d = Digest::of(bytes);
        if self.has_blob(&d) {
            return Ok(d);
        }
        let mut w = self.blob_writer()?;
        io::Write::write_all(&mut w, bytes).map_err(io_err(&self.blob_path(&d)))?;
        w.commit(Some(&d)).map(|(d, _)| d)
    }

    /// Reads a whole blob and checks it against its digest.
    pub fn read_blob(&self, d: &Digest) -> Result<Vec<u8>> {
        let path = self.blob_path(d);
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(StoreError::MissingBlob(d.clone()));
            }
            Err(e) => return Err(StoreError::Io { path, source: e }),
        };
        let actual = Digest::of(&bytes);
        if &actual != d {
            return Err(StoreError::CorruptBlob {
                digest: d.clone(),
                actual,
                path,
            });
        }
        Ok(bytes)
    }

    /// Opens a blob for streaming (the caller verifies while reading when it matters).
    pub fn open_blob(&self, d: &Digest) -> Result<fs::File> {
        let path = self.blob_path(d);
        fs::File::open(&path).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => StoreError::MissingBlob(d.clone()),
            _ => StoreError::Io { path, source: e },
        })
    }

    /// A fresh scratch directory under `<root>/tmp`, removed on drop.
    pub fn tmp_dir(&self) -> Result<tempfile::TempDir> {
        let p = self.root.join("tmp");
        tempfile::Builder::new()
            .prefix(&format!("t{}-", std::process::id()))
            .tempdir_in(&p)
            .map_err(io_err(&p))
    }

    /// Names `manifest` as `name` (a normalized reference).
    pub fn set_image(&self, name: &str, manifest: &Digest) -> Result<()> {
        index::update(self, |m| {
            m.insert(name.to_string(), manifest.to_string());
        })
    }

    /// The manifest digest named `name`.
    pub fn get_image(&self, name: &str) -> Result<Option<Digest>> {
        let m = index::read(self)?;
        Ok(m.get(name).and_then(|d| d.parse().ok()))
    }

    /// Every named image, sorted by name.
    pub fn list_images(&self) -> Result<Vec<(String, Digest)>> {
        let m = index::read(self)?;
        Ok(m.into_iter()
            .filter_map(|(k, v)| v.parse().ok().map(|d| (k, d)))
            .collect())
    }

    /// Removes a name; true when it existed.
    pub fn remove_image(&self, name: &str) -> Result<bool> {
        let mut existed = false;
        index::update(self, |m| existed = m.remove(name).is_some())?;
        Ok(existed)
    }

    /// Reads a manifest and its config from the store, both verified.
    pub fn load_image(&self, manifest: &Digest) -> Result<(Manifest, ImageConfig)> {
        let bytes = self.read_blob(manifest)?;
        let m: Manifest = serde_json::from_slice(&bytes).map_err(|source| StoreError::Json {
            path: format!("manifest {manifest}"),
            source,
        })?;
        let cbytes = self.read_blob(&m.config.digest)?;
        let c: ImageConfig =
            serde_json::from_slice(&cbytes).map_err(|source| StoreError::Json {
                path: format!("config {}", m.config.digest),
                source,
            })?;
        Ok((m, c))
    }

    /// Where the unpacked layer with this diffID lives.
    pub fn snapshot_path(&self, diff_id: &Digest) -> PathBuf {
        self.root.join("snapshots").join(diff_id.hex())
    }

    /// True when the layer is unpacked.
    pub fn has_snapshot(&self, diff_id: &Digest) -> bool {
        self.snapshot_path(diff_id).is_dir()
    }

    /// Moves a filled directory (under `tmp`) into place as the snapshot of `diff_id`. When
    /// another process got there first, `filled_dir` is discarded and theirs is used.
    pub fn commit_snapshot(&self, diff_id: &Digest, filled_dir: &Path) -> Result<PathBuf> {
        let dest = self.snapshot_path(diff_id);
        if dest.is_dir() {
            let _ = fs::remove_dir_all(filled_dir);
            return Ok(dest);
        }
        match fs::rename(filled_dir, &dest) {
            Ok(()) => Ok(dest),
            Err(_) if dest.is_dir() => {
                let _ = fs::remove_dir_all(filled_dir);
                Ok(dest)
            }
            Err(e) => Err(StoreError::Io {
                path: dest,
                source: e,
            }),
        }
    }

    /// The directory for `RUN --mount=type=cache,id=ID`: the id is hashed, never used as a path.
    pub fn cache_mount_dir(&self, id: &str) -> Result<PathBuf> {
        let p = self
            .root
            .join("cache-mounts")
            .join(Digest::of(id.as_bytes()).hex());
        fs::create_dir_all(&p).map_err(io_err(&p))?;
        Ok(p)
    }

    /// An exclusive advisory lock on `<root>/locks/<name>`, held until the file is dropped.
    pub fn lock(&self, name: &str) -> Result<fs::File> {
        let p = self
            .root
            .join("locks")
            .join(Digest::of(name.as_bytes()).hex());
        let f = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&p)
            .map_err(io_err(&p))?;
        rustix::fs::flock(&f, rustix::fs::FlockOperation::LockExclusive).map_err(|e| {
            StoreError::Io {
                path: p.clone(),
                source: e.into(),
            }
        })?;
        Ok(f)
    }

    /// Removes scratch entries whose creating process is gone (names start `t<pid>-`).
    fn clean_stale_tmp(&self) {
        let tmp = self.root.join("tmp");
        let Ok(rd) = fs::read_dir(&tmp) else { return };
        for e in rd.flatten() {
            let name = e.file_name();
            let name = name.to_string_lossy();
            let pid = name
                .strip_prefix('t')
                .and_then(|r| r.split('-').next())
                .and_then(|p| p.parse::<i32>().ok());
            let alive = pid.is_some_and(|p| Path::new(&format!("/proc/{p}")).exists());
            if !alive {
                let p = e.path();
                // A stale overlay or bind mount below would make removal fail; leave it for the
                // executor's cleanup and `hoist prune` instead of crossing into it.
                let _ = if p.is_dir() {
                    fs::remove_dir_all(&p)
                } else {
                    fs::remove_file(&p)
                };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blobs_round_trip_and_are_verified() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        let d = s.put_blob(b"hello").unwrap();
        assert_eq!(d, Digest::of(b"hello"));
        assert_eq!(s.read_blob(&d).unwrap(), b"hello");
        // Corrupt it behind the store's back: reads must refuse it.
        let p = s.blob_path(&d);
        let mut perm = fs::metadata(&p).unwrap().permissions();
        #[allow(clippy::permissions_set_readonly_false)]
        perm.set_readonly(false);
        fs::set_permissions(&p, perm).unwrap();
        fs::write(&p, b"hellO").unwrap();
        assert!(matches!(
            s.read_blob(&d),
            Err(StoreError::CorruptBlob { .. })
        ));
    }

    #[test]
    fn writer_refuses_a_wrong_digest_and_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        let mut w = s.blob_writer().unwrap();
        io::Write::write_all(&mut w, b"abc").unwrap();
        let wrong = Digest::of(b"xyz");
        assert!(matches!(
            w.commit(Some(&wrong)),
            Err(StoreError::DigestMismatch { .. })
        ));
        assert!(!s.has_blob(&wrong));
        assert!(!s.has_blob(&Digest::of(b"abc")));
        assert_eq!(fs::read_dir(dir.path().join("tmp")).unwrap().count(), 0);
    }

    #[test]
    fn image_index_set_get_list_remove() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        let d = Digest::of(b"m");
        s.set_image("localhost:5000/a:latest", &d).unwrap();
        s.set_image("docker.io/library/b:1", &d).unwrap();
        assert_eq!(
            s.get_image("localhost:5000/a:latest").unwrap(),
            Some(d.clone())
        );
        assert_eq!(s.list_images().unwrap().len(), 2);
        assert!(s.remove_image("docker.io/library/b:1").unwrap());
        assert!(!s.remove_image("docker.io/library/b:1").unwrap());
        assert_eq!(s.get_image("docker.io/library/b:1").unwrap(), None);
    }

    #[test]
    fn cache_mount_ids_never_become_paths() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        let p = s.cache_mount_dir("../../../etc").unwrap();
        assert!(p.starts_with(dir.path().join("cache-mounts")));
    }
}
