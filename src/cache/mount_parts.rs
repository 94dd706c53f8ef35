//! A cache mount's dir as one or more blobs ("parts"), cut where the content says, so a small
//! change to a large mount re-sends a small part.
//!
//! The dir is walked in a fixed order (names sorted bytewise, links never followed, sockets
//! skipped) and every entry goes into the current part as a tar entry with its mode, owner
//! and mtime. A part ends after an entry once it holds at least [`Split::min`] bytes of file
//! data and the hash of that entry's path hits the [`Split::mask`], or at [`Split::max`]
//! bytes. Because the cut points depend on path names, not on offsets, a changed or added
//! file changes only its own part (a forced cut at `max` shifts the parts after it only up to
//! the next path-chosen cut). Parts are gzip tars written deterministically, so equal
//! contents give equal digests and an unchanged part is never uploaded again. A single file
//! is never split: a changed file larger than `max` is its own whole part.
//!
//! What parts lose against an image layer: xattrs, and hardlinks (each link is stored as its
//! own file). Directories are in the part of their first entry, before their children, and
//! parts are extracted in order into one tree.

use super::{CacheError, Result};
use crate::oci::Digest;
use crate::store::Store;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// Where parts are cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Split {
    /// Bytes of file data a part holds before a path-chosen cut may end it.
    pub min: u64,
    /// Bytes of file data after which a part ends anyway.
    pub max: u64,
    /// A cut is chosen after an entry whose path hash has these bits all zero.
    pub mask: u64,
}

/// The split exports use: parts of 8 to 64 MiB, a path-chosen cut about every 8 entries past
/// the minimum.
pub const DEFAULT_SPLIT: Split = Split {
    min: 8 << 20,
    max: 64 << 20,
    mask: 7,
};

/// A written part: its blob digest and size.
pub type Part = (Digest, u64);

/// Writes `dir` as parts (gzip tars) into the store.
pub fn write_parts(store: &Store, dir: &Path, split: &Split) -> Result<Vec<Part>> {
    let mut groups: Vec<Vec<(PathBuf, PathBuf)>> = vec![Vec::new()];
    let mut bytes = 0u64;
    for e in walkdir::WalkDir::new(dir)
        .min_depth(1)
        .follow_links(false)
        .sort_by(|a, b| a.file_name().as_bytes().cmp(b.file_name().as_bytes()))
    {
        let e = e.map_err(|e| walk_err(dir, e))?;
        let ft = e.file_type();
        if std::os::unix::fs::FileTypeExt::is_socket(&ft) {
            continue;
        }
        let rel = e.path().strip_prefix(dir).unwrap_or(e.path()).to_path_buf();
        if ft.is_file() {
            bytes += e.metadata().map_err(|e| walk_err(dir, e))?.len();
        }
        let cut = bytes >= split.max || (bytes >= split.min && path_hash(&rel) & split.mask == 0);
        if let Some(g) = groups.last_mut() {
            g.push((e.path().to_path_buf(), rel));
        }
        if cut {
            groups.push(Vec::new());
            bytes = 0;
        }
    }
    groups.retain(|g| !g.is_empty());
    groups.iter().map(|g| write_part(store, g)).collect()
}

fn path_hash(rel: &Path) -> u64 {
    let d = Digest::of(rel.as_os_str().as_bytes());
    u64::from_str_radix(&d.hex()[..16], 16).unwrap_or(0)
}

fn write_part(store: &Store, entries: &[(PathBuf, PathBuf)]) -> Result<Part> {
    let w = store.blob_writer()?;
    let gz = flate2::write::GzEncoder::new(w, flate2::Compression::default());
    let mut tar = tar::Builder::new(gz);
    tar.follow_symlinks(false);
    tar.mode(tar::HeaderMode::Complete);
    for (path, rel) in entries {
        tar.append_path_with_name(path, rel).map_err(io(path))?;
    }
    let gz = tar
        .into_inner()
        .map_err(io(Path::new("cache mount part")))?;
    let mut w = gz.finish().map_err(io(Path::new("cache mount part")))?;
    w.flush().map_err(io(Path::new("cache mount part")))?;
    Ok(w.commit(None)?)
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> CacheError + '_ {
    move |source| CacheError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn walk_err(dir: &Path, e: walkdir::Error) -> CacheError {
    let path = e.path().unwrap_or(dir).to_path_buf();
    CacheError::Io {
        path,
        source: e.into(),
    }
}
