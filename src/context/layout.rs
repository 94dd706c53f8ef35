//! `oci-layout://DIR[:TAG|@DIGEST]`: the image an OCI layout directory holds, copied into
//! the store as verified blobs (a manifest, or an index with every manifest the layout has
//! for it), so the engine loads it like any stored image for the platform it builds.
//!
//! The tag is matched against `org.opencontainers.image.ref.name` (or a containerd image
//! name ending in `:TAG`) in `index.json`; without a tag or digest, `latest`, or the one
//! image of a single-image layout. Files are opened in-root, blobs checked against their
//! digests as they are copied.

use super::{ContextError, Result};
use crate::oci::layout::{ANNOTATION_REF_NAME, INDEX_FILE, entry_name};
use crate::oci::{Descriptor, Digest, Index, Manifest, media};
use crate::store::Store;
use rustix::fs::OFlags;
use std::os::fd::OwnedFd;
use std::path::Path;

/// Which image of the layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selector {
    /// `:TAG`.
    Tag(String),
    /// `@sha256:…`: a manifest or index the layout holds.
    Digest(Digest),
    /// Neither: `latest`, or the only image.
    Default,
}

/// Largest `index.json`, manifest or index read.
const MAX_JSON: u64 = 4 << 20;

/// Copies the selected image of the layout at `dir` into `store`; returns its manifest or
/// index digest.
pub fn import(store: &Store, dir: &Path, selector: &Selector) -> Result<Digest> {
    let bad = |reason: String| ContextError::Layout {
        dir: dir.to_path_buf(),
        reason,
    };
    let root = crate::fsroot::open_root(dir).map_err(|e| bad(e.to_string()))?;
    let index: Index = serde_json::from_slice(&read_small(&root, INDEX_FILE, dir)?)
        .map_err(|e| bad(format!("{INDEX_FILE}: {e}")))?;
    let top: Descriptor = match selector {
        Selector::Digest(d) => index
            .manifests
            .iter()
            .find(|m| &m.digest == d)
            .cloned()
            .unwrap_or_else(|| Descriptor::new(media::OCI_MANIFEST, d.clone(), 0)),
        Selector::Tag(t) => find_tag(&index, t)
            .ok_or_else(|| bad(format!("no image tagged {t:?} in {INDEX_FILE}")))?,
        Selector::Default => match find_tag(&index, "latest") {
            Some(d) => d,
            None if index.manifests.len() == 1 => index.manifests[0].clone(),
            None => {
                return Err(bad(format!(
                    "{} images and none tagged latest: name one with :TAG or @DIGEST",
                    index.manifests.len()
                )));
            }
        },
    };
    copy_blob(store, &root, dir, &top.digest)?;
    let bytes = store.read_blob_limited(&top.digest, "manifest", MAX_JSON)?;
    let kind = serde_json::from_slice::<serde_json::Value>(&bytes)
        .map_err(|e| bad(format!("{}: {e}", top.digest)))?;
    let is_index = kind.get("manifests").is_some()
        || kind
            .get("mediaType")
            .and_then(|m| m.as_str())
            .is_some_and(media::is_index);
    if is_index {
        let idx: Index =
            serde_json::from_slice(&bytes).map_err(|e| bad(format!("{}: {e}", top.digest)))?;
        for m in &idx.manifests {
            // An index may list platforms the layout does not hold; those are skipped and
            // the build fails only if it needs one.
            if has_blob(&root, &m.digest) {
                import_manifest(store, &root, dir, &m.digest)?;
            }
        }
    } else {
        import_manifest(store, &root, dir, &top.digest)?;
    }
    Ok(top.digest)
}

fn find_tag(index: &Index, tag: &str) -> Option<Descriptor> {
    index
        .manifests
        .iter()
        .find(|m| {
            let ref_name = m
                .annotations
                .as_ref()
                .and_then(|a| a.get(ANNOTATION_REF_NAME));
            ref_name.is_some_and(|r| r == tag)
                || entry_name(m).is_some_and(|n| n.ends_with(&format!(":{tag}")))
        })
        .cloned()
}

fn import_manifest(store: &Store, root: &OwnedFd, dir: &Path, d: &Digest) -> Result<()> {
    copy_blob(store, root, dir, d)?;
    let bytes = store.read_blob_limited(d, "manifest", MAX_JSON)?;
    let m: Manifest = serde_json::from_slice(&bytes).map_err(|e| ContextError::Layout {
        dir: dir.to_path_buf(),
        reason: format!("manifest {d}: {e}"),
    })?;
    copy_blob(store, root, dir, &m.config.digest)?;
    for l in &m.layers {
        copy_blob(store, root, dir, &l.digest)?;
    }
    Ok(())
}

fn blob_rel(d: &Digest) -> String {
    format!("blobs/{}/{}", d.algorithm(), d.hex())
}

fn has_blob(root: &OwnedFd, d: &Digest) -> bool {
    crate::fsroot::open(root, blob_rel(d), OFlags::PATH).is_ok()
}

/// Copies blob `d` of the layout into the store, verified, unless the store has it.
fn copy_blob(store: &Store, root: &OwnedFd, dir: &Path, d: &Digest) -> Result<()> {
    if store.has_blob(d) {
        return Ok(());
    }
    let rel = blob_rel(d);
    let fd = crate::fsroot::open(root, &rel, OFlags::RDONLY).map_err(|e| ContextError::Layout {
        dir: dir.to_path_buf(),
        reason: format!("{rel}: {e}"),
    })?;
    let mut f = std::fs::File::from(fd);
    let mut w = store.blob_writer()?;
    std::io::copy(&mut f, &mut w).map_err(super::io_err(dir.join(&rel)))?;
    w.commit(Some(d))?;
    Ok(())
}

fn read_small(root: &OwnedFd, rel: &str, dir: &Path) -> Result<Vec<u8>> {
    use std::io::Read;
    let fd = crate::fsroot::open(root, rel, OFlags::RDONLY).map_err(|e| ContextError::Layout {
        dir: dir.to_path_buf(),
        reason: format!("{rel}: {e}"),
    })?;
    let mut buf = Vec::new();
    std::fs::File::from(fd)
        .take(MAX_JSON + 1)
        .read_to_end(&mut buf)
        .map_err(super::io_err(dir.join(rel)))?;
    if buf.len() as u64 > MAX_JSON {
        return Err(ContextError::Layout {
            dir: dir.to_path_buf(),
            reason: format!("{rel} is larger than {MAX_JSON} bytes"),
        });
    }
    Ok(buf)
}
