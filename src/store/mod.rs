//! The local content-addressed store under the hoist root: blobs by digest (verified,
//! atomic writes), the image index (name:tag → manifest digest), unpacked layer snapshots,
//! scratch space, and locks so several hoist processes can share one root.

use crate::oci::Digest;
use std::path::{Path, PathBuf};

/// Errors from the store; each names the path or digest at fault.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("blob {0} is not in the store")]
    MissingBlob(Digest),
    #[error("digest mismatch: expected {expected}, got {actual}")]
    DigestMismatch { expected: Digest, actual: Digest },
    #[error("image {0} is not in the store")]
    UnknownImage(String),
}

/// Result alias for the store.
pub type Result<T> = std::result::Result<T, StoreError>;

/// A store rooted at a directory.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
}

impl Store {
    /// Opens (creating if needed) the store at `root`.
    pub fn open(root: &Path) -> Result<Store> {
        Ok(Store { root: root.to_path_buf() })
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where a blob lives (`blobs/sha256/<hex>`).
    pub fn blob_path(&self, d: &Digest) -> PathBuf {
        self.root.join("blobs").join("sha256").join(d.hex())
    }
}
