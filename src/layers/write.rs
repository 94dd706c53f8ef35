//! `write_layer`: a directory (an overlayfs upper dir, or plain files) → a compressed OCI
//! layer, in one streaming pass.
//!
//! Order: depth first, each directory's names sorted bytewise (Go's `filepath.Walk` order, as
//! BuildKit). Names are relative with no leading `/`, directories end in `/`. Overlay
//! whiteouts (char device 0/0) become empty `.wh.NAME` files, and so does a whiteout marker file
//! (an empty root-owned `.wh.NAME` of mode 0, what the chroot isolation writes where the
//! filesystem refuses to make a 0/0 device), sorted where NAME sorts as the device would be;
//! opaque directories
//! (`trusted.overlay.opaque=y` or `user.overlay.opaque=y`) get a `DIR/.wh..wh..opq` entry right
//! after their own. Hardlinked files (same dev+inode) after the first become tar links.
//! `overlay.*` xattrs are never written; a `redirect`/`metacopy` one is an error because the
//! upper dir alone does not describe the change then. `security.selinux` labels are host
//! policy and are dropped; every other xattr is kept (BuildKit keeps only
//! `security.capability`; a superset loses nothing a RUN step set on purpose). Sockets are
//! skipped (tar has none).
//!
//! The tar bytes match Go's `archive/tar` as containerd drives it: the Go-written fixture in
//! `tests/layers.rs` is reproduced byte for byte, and so were (by hand, with the ignored
//! `real_layer…` test) the whole busybox and debian:bookworm layers of the lab registry, so
//! equal trees give equal diffIDs with Go-built images.

use super::compress::{Compression, compress_stream};
use super::tarfmt::{self, Entry, Kind};
use super::{LayersError, Result, io_err};
use crate::oci::Digest;
use std::collections::{BTreeMap, HashMap};
use std::ffi::{OsStr, OsString};
use std::fs::{self, File, Metadata};
use std::io::{Read, Write};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// How to write a layer.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LayerOptions {
    /// Blob compression.
    pub compression: Compression,
    /// When set, every timestamp later than this is clamped to it (reproducible builds).
    pub source_date_epoch: Option<i64>,
}

/// A written layer blob.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayerBlob {
    /// sha256 of the compressed blob (the manifest's layer digest).
    pub digest: Digest,
    /// sha256 of the uncompressed tar (the config's `rootfs.diff_ids` entry).
    pub diff_id: Digest,
    /// Size of the compressed blob in bytes.
    pub size: u64,
    /// The layer media type, from the compression.
    pub media_type: String,
}

const WHITEOUT_PREFIX: &[u8] = b".wh.";
const OPAQUE_MARKER: &[u8] = b".wh..wh..opq";

/// A regular file archived straight from where it lies (a COPY source) instead of from a
/// copy in the layer directory: the tar entry is the one the copy would have given (same
/// name, mode, owner, mtime, size; no xattrs, no other links), without writing the copy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExtraFile {
    /// The source's real host path (no symlink in it); it is opened with `O_NOFOLLOW` and
    /// must still be the inode `dev`/`ino` of `size` bytes, else the layer write fails.
    pub src: PathBuf,
    pub dev: u64,
    pub ino: u64,
    pub size: u64,
    /// Permission bits (including setuid/setgid/sticky); the type bits are added.
    pub perm: u32,
    pub uid: u32,
    pub gid: u32,
    /// Seconds since the epoch (clamped to `source_date_epoch` like every other entry).
    pub mtime: i64,
}

/// Extra regular files by path relative to the layer root (`a/b/c`, no leading `/`); each
/// path's parent directory must exist in the layer directory and the path itself must not.
pub type ExtraFiles = BTreeMap<Vec<u8>, ExtraFile>;

/// One path to archive, found by the walk.
struct Item<'a> {
    path: PathBuf,
    rel: Vec<u8>,
    src: Src<'a>,
    opaque: bool,
}

enum Src<'a> {
    Disk(Metadata),
    Extra(&'a ExtraFile),
}

/// Diffs `dir` into a layer written to `out`; see the module doc for the format.
///
/// The caller owns `out` (a store blob writer, a file): `let b = write_layer(dir, &o, &mut w)?;
/// w.commit(Some(&b.digest))?`. Nothing may write to `dir` meanwhile.
pub fn write_layer(dir: &Path, opts: &LayerOptions, out: &mut dyn Write) -> Result<LayerBlob> {
    write_layer_with(dir, &ExtraFiles::new(), opts, out)
}

/// [`write_layer`] of `dir` plus `extra` files merged into it (in the walk's order, as if
/// they were in `dir`).
pub fn write_layer_with(
    dir: &Path,
    extra: &ExtraFiles,
    opts: &LayerOptions,
    out: &mut dyn Write,
) -> Result<LayerBlob> {
    let mut by_dir: HashMap<&[u8], Vec<(&[u8], &ExtraFile)>> = HashMap::new();
    for (rel, f) in extra {
        let (parent, name) = split_rel(rel);
        let parent = parent.strip_suffix(b"/").unwrap_or(parent);
        by_dir.entry(parent).or_default().push((name, f));
    }
    let mut items = Vec::new();
    walk(dir, &[], &by_dir, &mut items)?;
    let placed = items
        .iter()
        .filter(|i| matches!(i.src, Src::Extra(_)))
        .count();
    if placed != extra.len() {
        return Err(LayersError::Io {
            path: dir.to_path_buf(),
            source: std::io::Error::other(format!(
                "{} of {} files to archive from their sources have no parent directory in the layer",
                extra.len() - placed,
                extra.len()
            )),
        });
    }
    let content: u64 = items
        .iter()
        .map(|i| match &i.src {
            Src::Disk(m) if m.file_type().is_file() => m.len(),
            Src::Disk(_) => 0,
            Src::Extra(f) => f.size,
        })
        .sum();
    let sde = opts.source_date_epoch;
    let sums = compress_stream(opts.compression, content, out, move |w| {
        write_items(&items, sde, w)
    })?;
    Ok(LayerBlob {
        digest: sums.digest,
        diff_id: sums.diff_id,
        size: sums.size,
        media_type: opts.compression.media_type().to_string(),
    })
}

type ExtraByDir<'a> = HashMap<&'a [u8], Vec<(&'a [u8], &'a ExtraFile)>>;

fn walk<'a>(
    dir: &Path,
    rel: &[u8],
    extra: &ExtraByDir<'a>,
    items: &mut Vec<Item<'a>>,
) -> Result<()> {
    let mut names: Vec<(OsString, Option<&'a ExtraFile>)> = fs::read_dir(dir)
        .map_err(io_err(dir))?
        .map(|e| e.map(|e| (e.file_name(), None)))
        .collect::<std::io::Result<_>>()
        .map_err(io_err(dir))?;
    if let Some(more) = extra.get(rel) {
        for (name, f) in more {
            let name = OsStr::from_bytes(name);
            // The layer dir should not have it; if it does, the extra file replaces it.
            names.retain(|(n, _)| n != name);
            names.push((name.to_os_string(), Some(*f)));
        }
    }
    // A whiteout marker file sorts under the name it deletes, as the 0/0 device it stands for.
    let key = |n: &OsStr| -> Vec<u8> {
        let b = n.as_bytes();
        match b.strip_prefix(WHITEOUT_PREFIX) {
            Some(rest) if b != OPAQUE_MARKER && is_whiteout_marker(&dir.join(n)) => rest.to_vec(),
            _ => b.to_vec(),
        }
    };
    names.sort_by_cached_key(|(n, _)| (key(n), n.as_bytes().to_vec()));
    for (name, extra_file) in names {
        let path = dir.join(&name);
        let mut child_rel = rel.to_vec();
        if !child_rel.is_empty() {
            child_rel.push(b'/');
        }
        child_rel.extend_from_slice(name.as_bytes());
        if let Some(f) = extra_file {
            items.push(Item {
                path: f.src.clone(),
                rel: child_rel,
                src: Src::Extra(f),
                opaque: false,
            });
            continue;
        }
        let meta = fs::symlink_metadata(&path).map_err(io_err(&path))?;
        let ft = meta.file_type();
        if ft.is_socket() {
            continue;
        }
        let opaque = ft.is_dir() && is_opaque(&path)?;
        let is_dir = ft.is_dir();
        items.push(Item {
            path: path.clone(),
            rel: child_rel.clone(),
            src: Src::Disk(meta),
            opaque,
        });
        if is_dir {
            walk(&path, &child_rel, extra, items)?;
        }
    }
    Ok(())
}

fn get_xattr(path: &Path, name: &OsStr) -> Result<Option<Vec<u8>>> {
    let mut buf = vec![0u8; 256];
    loop {
        match rustix::fs::lgetxattr(path, name, &mut buf[..]) {
            Ok(n) => {
                buf.truncate(n);
                return Ok(Some(buf));
            }
            Err(rustix::io::Errno::NODATA | rustix::io::Errno::NOTSUP) => return Ok(None),
            Err(rustix::io::Errno::RANGE) if buf.len() < 1 << 20 => buf.resize(buf.len() * 4, 0),
            Err(e) => {
                return Err(LayersError::Io {
                    path: path.to_path_buf(),
                    source: e.into(),
                });
            }
        }
    }
}

/// An empty regular file of mode 0 owned by root named `.wh.NAME`: the whiteout marker the
/// chroot isolation writes where a 0/0 device cannot be made (`executor::chroot`).
pub(super) fn is_whiteout_marker(path: &Path) -> bool {
    let is_marker_name = path.file_name().is_some_and(|n| {
        let b = n.as_bytes();
        b.starts_with(WHITEOUT_PREFIX) && b != OPAQUE_MARKER && b.len() > WHITEOUT_PREFIX.len()
    });
    is_marker_name
        && fs::symlink_metadata(path).is_ok_and(|m| {
            m.file_type().is_file()
                && m.len() == 0
                && m.mode() & 0o7777 == 0
                && m.uid() == 0
                && m.gid() == 0
        })
}

pub(super) fn is_opaque(path: &Path) -> Result<bool> {
    for name in ["trusted.overlay.opaque", "user.overlay.opaque"] {
        if get_xattr(path, OsStr::new(name))?.as_deref() == Some(b"y") {
            return Ok(true);
        }
    }
    Ok(false)
}

/// The xattrs to archive, sorted by name; overlayfs' own are dropped.
pub(super) fn xattrs(path: &Path) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
    let mut buf = vec![0u8; 1024];
    let n = loop {
        match rustix::fs::llistxattr(path, &mut buf[..]) {
            Ok(n) => break n,
            Err(rustix::io::Errno::NOTSUP) => return Ok(Vec::new()),
            Err(rustix::io::Errno::RANGE) if buf.len() < 1 << 20 => buf.resize(buf.len() * 4, 0),
            Err(e) => {
                return Err(LayersError::Io {
                    path: path.to_path_buf(),
                    source: e.into(),
                });
            }
        }
    };
    let mut out = Vec::new();
    for name in buf[..n].split(|b| *b == 0).filter(|n| !n.is_empty()) {
        let overlay = name.starts_with(b"trusted.overlay.") || name.starts_with(b"user.overlay.");
        if overlay {
            let rest = name.splitn(3, |b| *b == b'.').nth(2).unwrap_or_default();
            if rest == b"redirect" || rest == b"metacopy" {
                return Err(LayersError::OverlayFeature {
                    path: path.to_path_buf(),
                    xattr: String::from_utf8_lossy(name).into_owned(),
                });
            }
            continue;
        }
        if name == b"security.selinux" {
            // A host policy label, not content (BuildKit does not record it either).
            continue;
        }
        if let Some(v) = get_xattr(path, OsStr::from_bytes(name))? {
            out.push((name.to_vec(), v));
        }
    }
    out.sort();
    Ok(out)
}

fn clamp(t: i64, sde: Option<i64>) -> i64 {
    match sde {
        Some(s) if t > s => s,
        _ => t,
    }
}

fn out_err(e: std::io::Error) -> LayersError {
    LayersError::Output(e)
}

fn write_items(items: &[Item], sde: Option<i64>, w: &mut dyn Write) -> Result<()> {
    let mut links: HashMap<(u64, u64), Vec<u8>> = HashMap::new();
    let mut buf = vec![0u8; 256 * 1024];
    for item in items {
        let m = match &item.src {
            Src::Disk(m) => m,
            Src::Extra(f) => {
                let mut e = Entry::new(item.rel.clone(), Kind::Regular);
                e.mode = 0o100000 | (f.perm & 0o7777);
                e.uid = u64::from(f.uid);
                e.gid = u64::from(f.gid);
                e.mtime = clamp(f.mtime, sde);
                e.size = f.size;
                tarfmt::write_header(w, &e).map_err(out_err)?;
                copy_exact(&item.path, e.size, Some((f.dev, f.ino)), w, &mut buf)?;
                tarfmt::write_padding(w, e.size).map_err(out_err)?;
                continue;
            }
        };
        let ft = m.file_type();
        let mtime = clamp(m.mtime(), sde);
        let marker = ft.is_file() && m.len() == 0 && is_whiteout_marker(&item.path);
        if (ft.is_char_device() && m.rdev() == 0) || marker {
            // Overlay whiteout → `.wh.NAME` (a marker file already has that name).
            let name = if marker {
                item.rel.clone()
            } else {
                let (dir, base) = split_rel(&item.rel);
                let mut name = dir.to_vec();
                name.extend_from_slice(WHITEOUT_PREFIX);
                name.extend_from_slice(base);
                name
            };
            let mut e = Entry::new(name, Kind::Regular);
            e.mtime = mtime;
            tarfmt::write_header(w, &e).map_err(out_err)?;
            continue;
        }
        let mut e = Entry::new(item.rel.clone(), Kind::Regular);
        // Go's FileInfoHeader keeps the S_IF* type bits in the mode field; so do we.
        e.mode = m.mode();
        e.uid = u64::from(m.uid());
        e.gid = u64::from(m.gid());
        e.mtime = mtime;
        if ft.is_dir() {
            e.kind = Kind::Dir;
        } else if ft.is_symlink() {
            e.kind = Kind::Symlink;
            e.link = fs::read_link(&item.path)
                .map_err(io_err(&item.path))?
                .into_os_string()
                .into_vec();
        } else if ft.is_fifo() {
            e.kind = Kind::Fifo;
        } else if ft.is_char_device() || ft.is_block_device() {
            e.kind = if ft.is_char_device() {
                Kind::Char
            } else {
                Kind::Block
            };
            e.devmajor = rustix::fs::major(m.rdev());
            e.devminor = rustix::fs::minor(m.rdev());
        } else if ft.is_file() {
            if m.nlink() > 1 {
                let key = (m.dev(), m.ino());
                if let Some(first) = links.get(&key) {
                    e.kind = Kind::Link;
                    e.link = first.clone();
                    // A link carries no data and no xattrs of its own.
                    tarfmt::write_header(w, &e).map_err(out_err)?;
                    continue;
                }
                links.insert(key, item.rel.clone());
            }
            e.size = m.len();
        }
        e.xattrs = xattrs(&item.path)?;
        tarfmt::write_header(w, &e).map_err(out_err)?;
        if e.kind == Kind::Regular {
            copy_exact(&item.path, e.size, None, w, &mut buf)?;
            tarfmt::write_padding(w, e.size).map_err(out_err)?;
        }
        if item.opaque {
            let mut name = item.rel.clone();
            name.push(b'/');
            name.extend_from_slice(OPAQUE_MARKER);
            // Like Docker's archive code: the marker takes the directory's owner and
            // permissions, no type bits.
            let mut o = Entry::new(name, Kind::Regular);
            o.mode = m.mode() & 0o777;
            o.uid = e.uid;
            o.gid = e.gid;
            o.mtime = mtime;
            tarfmt::write_header(w, &o).map_err(out_err)?;
        }
    }
    tarfmt::write_end(w).map_err(out_err)
}

fn split_rel(rel: &[u8]) -> (&[u8], &[u8]) {
    match rel.iter().rposition(|b| *b == b'/') {
        Some(i) => (&rel[..=i], &rel[i + 1..]),
        None => (&[], rel),
    }
}

fn copy_exact(
    path: &Path,
    size: u64,
    inode: Option<(u64, u64)>,
    w: &mut dyn Write,
    buf: &mut [u8],
) -> Result<()> {
    let mut f = File::options()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .map_err(io_err(path))?;
    if let Some((dev, ino)) = inode {
        let m = f.metadata().map_err(io_err(path))?;
        if !m.file_type().is_file() || m.dev() != dev || m.ino() != ino {
            return Err(LayersError::FileChanged {
                path: path.to_path_buf(),
                expected: size,
            });
        }
    }
    let mut left = size;
    while left > 0 {
        let k = (buf.len() as u64).min(left) as usize;
        let n = f.read(&mut buf[..k]).map_err(io_err(path))?;
        if n == 0 {
            return Err(LayersError::FileChanged {
                path: path.to_path_buf(),
                expected: size,
            });
        }
        w.write_all(&buf[..n]).map_err(out_err)?;
        left -= n as u64;
    }
    if f.read(&mut buf[..1]).map_err(io_err(path))? != 0 {
        return Err(LayersError::FileChanged {
            path: path.to_path_buf(),
            expected: size,
        });
    }
    Ok(())
}
