//! Image indexes in the store: a name may point to an index (a multi-platform build, see
//! `build::index`) rather than to one image's manifest.

use super::{MAX_MANIFEST_SIZE, Result, Store, StoreError};
use crate::oci::{Digest, Index};

impl Store {
    /// The image index (or Docker manifest list) stored as `digest`, or None when that blob
    /// is a single image's manifest.
    pub fn load_index(&self, digest: &Digest) -> Result<Option<Index>> {
        let bytes = self.read_blob_limited(digest, "manifest", MAX_MANIFEST_SIZE)?;
        let v: serde_json::Value =
            serde_json::from_slice(&bytes).map_err(|source| StoreError::Json {
                path: self.blob_path(digest),
                what: "manifest",
                source,
            })?;
        if v.get("manifests").is_none() {
            return Ok(None);
        }
        serde_json::from_value(v)
            .map(Some)
            .map_err(|source| StoreError::Json {
                path: self.blob_path(digest),
                what: "image index",
                source,
            })
    }
}
