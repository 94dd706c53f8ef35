//! Safe extraction of untrusted layer tars.
//!
//! Rules (issue 7): entry names are cleaned lexically with `..` clamped at the root (like
//! containerd's `filepath.Join("/", name)`); parents are resolved through the root fd with
//! `RESOLVE_IN_ROOT` (absolute symlinks such as `var/run -> /run` stay inside); the last
//! component is never followed: files are created `O_CREAT|O_EXCL|O_NOFOLLOW` after removing
//! whatever was there (OCI: a later entry replaces an earlier one; a directory over a
//! directory merges metadata); hardlinks must name a regular file this archive already
//! extracted; metadata is set without following links; directory times are set last, deepest
//! first. In [`ExtractMode::Layer`], `.wh.NAME` becomes an overlay whiteout (char 0/0) and
//! `.wh..wh..opq` sets `trusted.overlay.opaque=y` on its directory; `.wh.`, `.wh..`, `.wh...`,
//! an opaque marker for the root and `overlay.*` xattrs are rejected; the root never changes
//! type. Limits: see [`ExtractLimits`].

use super::compress::{DecompressHint, decompress};
use super::fsops::{self, Meta};
use super::tarfmt::{Entry, Kind, LimitHit, ReadLimits, Reader};
use super::{LayersError, Result};
use crate::fsroot;
use crate::oci::Digest;
use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use rustix::fs::{FileType, Mode, OFlags};
use rustix::io::Errno;
use std::collections::HashSet;
use std::ffi::OsStr;
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// What kind of tar is being extracted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExtractMode {
    /// An image layer into a snapshot dir: whiteouts become overlay whiteouts.
    Layer,
    /// `ADD x.tar`: a plain merge into `dest`; `.wh.` names are ordinary files.
    Archive,
}

/// Hard limits for one extraction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExtractLimits {
    /// Largest PAX extended header.
    pub max_pax_bytes: u64,
    /// Longest entry name or link target.
    pub max_path_len: usize,
    /// Most entries.
    pub max_entries: u64,
    /// Most uncompressed bytes (the tar stream, headers included).
    pub max_total_bytes: u64,
    /// For compressed input: most uncompressed bytes per compressed byte (counting at least
    /// 64 KiB of input), against decompression bombs. `None`: unchecked.
    pub max_ratio: Option<u64>,
}

impl Default for ExtractLimits {
    fn default() -> Self {
        ExtractLimits {
            max_pax_bytes: 1 << 20,
            max_path_len: 4096,
            max_entries: 4_000_000,
            max_total_bytes: 256 << 30,
            max_ratio: None,
        }
    }
}

/// What an extraction did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExtractStats {
    /// sha256 of the uncompressed tar exactly as read (to check against the config's diffID).
    pub diff_id: Digest,
    /// Bytes of uncompressed tar read.
    pub tar_bytes: u64,
    /// Entries in the archive (PAX/GNU extension headers not counted).
    pub entries: u64,
    /// Regular files created.
    pub files: u64,
    /// Directories created or merged (the root's own entry included).
    pub dirs: u64,
    /// Symlinks created.
    pub symlinks: u64,
    /// Hardlinks created.
    pub hardlinks: u64,
    /// Fifos and device nodes.
    pub specials: u64,
    /// Whiteouts and opaque markers applied (Layer mode).
    pub whiteouts: u64,
    /// File data bytes written.
    pub data_bytes: u64,
}

/// Extracts an uncompressed tar into `dest` (an existing directory) with default limits.
pub fn extract(
    uncompressed_tar: impl Read,
    dest: &Path,
    mode: ExtractMode,
) -> Result<ExtractStats> {
    extract_with_limits(uncompressed_tar, dest, mode, &ExtractLimits::default())
}

/// Decompresses a layer blob of `media_type` and extracts it (Layer mode) into `dest`.
pub fn unpack(compressed: impl Read + Send, media_type: &str, dest: &Path) -> Result<ExtractStats> {
    unpack_with_limits(
        compressed,
        DecompressHint::MediaType(media_type),
        dest,
        ExtractMode::Layer,
        &ExtractLimits::default(),
    )
}

/// [`unpack`] with explicit hint, mode and limits (`ADD x.tar.gz`: `Sniff`, `Archive`, and a
/// `max_ratio`).
pub fn unpack_with_limits(
    compressed: impl Read + Send,
    hint: DecompressHint<'_>,
    dest: &Path,
    mode: ExtractMode,
    limits: &ExtractLimits,
) -> Result<ExtractStats> {
    let read_in = Arc::new(AtomicU64::new(0));
    let counted = Counting {
        inner: compressed,
        n: read_in.clone(),
    };
    let plain = decompress(counted, hint)?;
    match limits.max_ratio {
        Some(ratio) => extract_with_limits(
            RatioGuard {
                inner: plain,
                read_in,
                out: 0,
                ratio,
            },
            dest,
            mode,
            limits,
        ),
        None => extract_with_limits(plain, dest, mode, limits),
    }
}

struct Counting<R> {
    inner: R,
    n: Arc<AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let k = self.inner.read(buf)?;
        self.n.fetch_add(k as u64, Ordering::Relaxed);
        Ok(k)
    }
}

struct RatioGuard<R> {
    inner: R,
    read_in: Arc<AtomicU64>,
    out: u64,
    ratio: u64,
}

impl<R: Read> Read for RatioGuard<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let k = self.inner.read(buf)?;
        self.out += k as u64;
        let allowed = self
            .read_in
            .load(Ordering::Relaxed)
            .max(64 << 10)
            .saturating_mul(self.ratio);
        if self.out > allowed {
            return Err(io::Error::other(LimitHit {
                what: "decompression ratio (uncompressed bytes per compressed byte; a decompression bomb?)",
                limit: self.ratio,
            }));
        }
        Ok(k)
    }
}

/// [`extract`] with explicit limits.
pub fn extract_with_limits(
    uncompressed_tar: impl Read,
    dest: &Path,
    mode: ExtractMode,
    limits: &ExtractLimits,
) -> Result<ExtractStats> {
    let root = fsroot::open_root(dest).map_err(super::io_err(dest))?;
    let reader = Reader::new(
        uncompressed_tar,
        ReadLimits {
            max_pax: limits.max_pax_bytes,
            max_path: limits.max_path_len,
            max_entries: limits.max_entries,
            max_total: limits.max_total_bytes,
        },
    );
    let mut x = Extractor {
        dest,
        root,
        mode,
        reader,
        stats: Counts::default(),
        files: HashSet::new(),
        dir_bytes: 0,
        dir_times: Vec::new(),
        cache: None,
    };
    while let Some(e) = x.reader.next_entry()? {
        x.entry(e)?;
    }
    x.finish_dirs()?;
    let Extractor { reader, stats, .. } = x;
    let (diff_id, tar_bytes) = reader.finish()?;
    Ok(ExtractStats {
        diff_id,
        tar_bytes,
        entries: stats.entries,
        files: stats.files,
        dirs: stats.dirs,
        symlinks: stats.symlinks,
        hardlinks: stats.hardlinks,
        specials: stats.specials,
        whiteouts: stats.whiteouts,
        data_bytes: stats.data_bytes,
    })
}

#[derive(Default)]
struct Counts {
    entries: u64,
    files: u64,
    dirs: u64,
    symlinks: u64,
    hardlinks: u64,
    specials: u64,
    whiteouts: u64,
    data_bytes: u64,
}

struct Extractor<'d, R> {
    dest: &'d Path,
    root: OwnedFd,
    mode: ExtractMode,
    reader: Reader<R>,
    stats: Counts,
    /// Regular files extracted so far (128-bit hashes of joined clean paths, so memory stays
    /// 16 bytes per file whatever the name length): the only valid hardlink targets.
    files: HashSet<u128>,
    /// Bytes of paths held in `dir_times`, capped by [`DIR_BOOKKEEPING`].
    dir_bytes: u64,
    /// Directories whose times are set at the end.
    dir_times: Vec<(Vec<Vec<u8>>, i64, u32)>,
    /// The last parent directory resolved, reused while nothing could have replaced it.
    cache: Option<(Vec<Vec<u8>>, OwnedFd)>,
}

/// Lexically cleans a tar name: components, `.` dropped, `..` clamped at the root.
fn clean(name: &[u8]) -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = Vec::new();
    for c in name.split(|b| *b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => {
                out.pop();
            }
            c => out.push(c.to_vec()),
        }
    }
    out
}

/// Most bytes of directory paths remembered for setting directory times at the end.
const DIR_BOOKKEEPING: u64 = 256 << 20;

fn path_key(comps: &[Vec<u8>]) -> u128 {
    use sha2::Digest as _;
    let h = sha2::Sha256::digest(fsroot::join(comps));
    let mut b = [0u8; 16];
    b.copy_from_slice(&h[..16]);
    u128::from_le_bytes(b)
}

fn is_overlay_xattr(k: &[u8]) -> bool {
    k.starts_with(b"trusted.overlay.") || k.starts_with(b"user.overlay.")
}

impl<R: Read> Extractor<'_, R> {
    fn path_of(&self, comps: &[Vec<u8>]) -> PathBuf {
        self.dest.join(OsStr::from_bytes(&fsroot::join(comps)))
    }

    fn fs_err(&self, comps: &[Vec<u8>], e: Errno) -> LayersError {
        LayersError::Io {
            path: self.path_of(comps),
            source: e.into(),
        }
    }

    fn reject(&self, e: &Entry, reason: impl Into<String>) -> LayersError {
        LayersError::Rejected {
            name: String::from_utf8_lossy(&e.name).into_owned(),
            reason: reason.into(),
        }
    }

    fn parent(&mut self, comps: &[Vec<u8>]) -> Result<BorrowedFd<'_>> {
        let hit = matches!(&self.cache, Some((c, _)) if c.as_slice() == comps);
        if !hit {
            let fd = match fsops::ensure_dir(self.root.as_fd(), comps) {
                Ok(fd) => fd,
                Err(Errno::NOTDIR) => {
                    return Err(LayersError::Rejected {
                        name: String::from_utf8_lossy(&fsroot::join(comps)).into_owned(),
                        reason: "a parent of an entry is not a directory".into(),
                    });
                }
                Err(e) => return Err(self.fs_err(comps, e)),
            };
            self.cache = Some((comps.to_vec(), fd));
        }
        match &self.cache {
            Some((_, fd)) => Ok(fd.as_fd()),
            None => Err(self.fs_err(comps, Errno::NOENT)),
        }
    }

    fn entry(&mut self, e: Entry) -> Result<()> {
        self.stats.entries += 1;
        if let Some((k, _)) = e.xattrs.iter().find(|(k, _)| is_overlay_xattr(k)) {
            return Err(self.reject(
                &e,
                format!("reserved overlay xattr {}", String::from_utf8_lossy(k)),
            ));
        }
        let comps = clean(&e.name);
        let Some((base, parent)) = comps.split_last() else {
            return self.root_entry(&e);
        };
        let (base, parent) = (base.clone(), parent.to_vec());
        if self.mode == ExtractMode::Layer && base.starts_with(b".wh.") {
            return self.whiteout(&e, &parent, &base);
        }
        if matches!(e.kind, Kind::Dir | Kind::Symlink) {
            self.cache = None;
        }
        match e.kind {
            Kind::Dir => self.dir(&e, &comps, &parent, &base),
            Kind::Regular => self.file(&e, &comps, &parent, &base),
            Kind::Link => self.hardlink(&e, &comps, &parent, &base),
            Kind::Symlink => self.symlink(&e, &comps, &parent, &base),
            Kind::Fifo | Kind::Char | Kind::Block => self.special(&e, &comps, &parent, &base),
        }
    }

    fn meta<'e>(&self, e: &'e Entry) -> Meta<'e> {
        // The reader caps uid/gid at u32::MAX.
        Meta {
            uid: e.uid as u32,
            gid: e.gid as u32,
            mode: e.mode,
            xattrs: &e.xattrs,
        }
    }

    fn remember_dir(&mut self, comps: Vec<Vec<u8>>, e: &Entry) -> Result<()> {
        self.dir_bytes += comps.iter().map(|c| c.len() as u64 + 24).sum::<u64>() + 48;
        if self.dir_bytes > DIR_BOOKKEEPING {
            return Err(LayersError::Limit {
                what: "directory bookkeeping (bytes of directory paths)",
                limit: DIR_BOOKKEEPING,
                offset: self.reader.offset(),
            });
        }
        self.dir_times.push((comps, e.mtime, e.mtime_nsec));
        Ok(())
    }

    fn root_entry(&mut self, e: &Entry) -> Result<()> {
        if e.kind != Kind::Dir {
            return Err(self.reject(e, "the root of a layer must stay a directory"));
        }
        let m = self.meta(e);
        let fd = fsops::resolve_dir(self.root.as_fd(), &[]).map_err(|x| self.fs_err(&[], x))?;
        fsops::set_meta_fd(fd.as_fd(), &m).map_err(|x| self.fs_err(&[], x))?;
        self.remember_dir(Vec::new(), e)?;
        self.stats.dirs += 1;
        Ok(())
    }

    /// Removes what is at `parent/base` unless it is a directory and `keep_dir`.
    /// Returns true when a directory was kept.
    fn clear(
        &mut self,
        comps: &[Vec<u8>],
        parent: &[Vec<u8>],
        base: &[u8],
        keep_dir: bool,
    ) -> Result<bool> {
        let pfd = self.parent(parent)?;
        let st = fsops::lstat(pfd, base).map_err(|x| LayersError::Io {
            path: PathBuf::from(OsStr::from_bytes(base)),
            source: x.into(),
        })?;
        match st {
            None => Ok(false),
            Some(st) if fsops::is_dir(&st) && keep_dir => Ok(true),
            Some(st) => {
                let was_dir = fsops::is_dir(&st);
                let r = fsops::remove_all(pfd, base);
                if was_dir {
                    self.cache = None;
                }
                r.map_err(|x| self.fs_err(comps, x))?;
                Ok(false)
            }
        }
    }

    fn dir(&mut self, e: &Entry, comps: &[Vec<u8>], parent: &[Vec<u8>], base: &[u8]) -> Result<()> {
        let existed = self.clear(comps, parent, base, true)?;
        let pfd = self.parent(parent)?;
        if !existed {
            rustix::fs::mkdirat(pfd, OsStr::from_bytes(base), Mode::from_raw_mode(0o700)).map_err(
                |x| LayersError::Io {
                    path: PathBuf::from(OsStr::from_bytes(base)),
                    source: x.into(),
                },
            )?;
        }
        let m = self.meta(e);
        let pfd = self.parent(parent)?;
        let r = fsops::set_meta(pfd, base, false, &m);
        r.map_err(|x| self.fs_err(comps, x))?;
        self.remember_dir(comps.to_vec(), e)?;
        self.stats.dirs += 1;
        Ok(())
    }

    fn file(
        &mut self,
        e: &Entry,
        comps: &[Vec<u8>],
        parent: &[Vec<u8>],
        base: &[u8],
    ) -> Result<()> {
        self.clear(comps, parent, base, false)?;
        let pfd = self.parent(parent)?;
        let created = rustix::fs::openat(
            pfd,
            OsStr::from_bytes(base),
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o600),
        );
        let fd = created.map_err(|x| self.fs_err(comps, x))?;
        let path = self.path_of(comps);
        let mut f = std::fs::File::from(fd);
        let n = self.reader.copy_data(&mut f, &path)?;
        self.stats.data_bytes += n;
        let m = self.meta(e);
        let r = fsops::set_meta_open_file(f.as_fd(), &m, e.mtime, e.mtime_nsec);
        r.map_err(|x| self.fs_err(comps, x))?;
        drop(f);
        self.files.insert(path_key(comps));
        self.stats.files += 1;
        Ok(())
    }

    fn hardlink(
        &mut self,
        e: &Entry,
        comps: &[Vec<u8>],
        parent: &[Vec<u8>],
        base: &[u8],
    ) -> Result<()> {
        let target = clean(&e.link);
        let Some((tbase, tparent)) = target.split_last() else {
            return Err(self.reject(e, "hardlink to the root"));
        };
        if target == comps {
            return Err(self.reject(e, "hardlink to itself"));
        }
        if !self.files.contains(&path_key(&target)) {
            return Err(self.reject(
                e,
                format!(
                    "hardlink target {:?} is not a file extracted earlier from this archive",
                    String::from_utf8_lossy(&e.link)
                ),
            ));
        }
        let tfd =
            fsops::resolve_dir(self.root.as_fd(), tparent).map_err(|x| self.fs_err(tparent, x))?;
        match fsops::lstat(tfd.as_fd(), tbase).map_err(|x| self.fs_err(&target, x))? {
            Some(st) if fsops::is_reg(&st) => {}
            _ => return Err(self.reject(e, "hardlink target is no longer a regular file")),
        }
        self.clear(comps, parent, base, false)?;
        let pfd = self.parent(parent)?;
        let r = rustix::fs::linkat(
            tfd.as_fd(),
            OsStr::from_bytes(tbase),
            pfd,
            OsStr::from_bytes(base),
            rustix::fs::AtFlags::empty(),
        );
        r.map_err(|x| self.fs_err(comps, x))?;
        self.files.insert(path_key(comps));
        self.stats.hardlinks += 1;
        Ok(())
    }

    fn symlink(
        &mut self,
        e: &Entry,
        comps: &[Vec<u8>],
        parent: &[Vec<u8>],
        base: &[u8],
    ) -> Result<()> {
        self.clear(comps, parent, base, false)?;
        let pfd = self.parent(parent)?;
        let r = rustix::fs::symlinkat(OsStr::from_bytes(&e.link), pfd, OsStr::from_bytes(base));
        r.map_err(|x| self.fs_err(comps, x))?;
        let m = self.meta(e);
        let pfd = self.parent(parent)?;
        let r = fsops::set_meta(pfd, base, true, &m)
            .and_then(|()| fsops::set_times(pfd, base, e.mtime, e.mtime_nsec));
        r.map_err(|x| self.fs_err(comps, x))?;
        self.stats.symlinks += 1;
        Ok(())
    }

    fn special(
        &mut self,
        e: &Entry,
        comps: &[Vec<u8>],
        parent: &[Vec<u8>],
        base: &[u8],
    ) -> Result<()> {
        self.clear(comps, parent, base, false)?;
        let pfd = self.parent(parent)?;
        let (ft, dev) = match e.kind {
            Kind::Char => (
                FileType::CharacterDevice,
                rustix::fs::makedev(e.devmajor, e.devminor),
            ),
            Kind::Block => (
                FileType::BlockDevice,
                rustix::fs::makedev(e.devmajor, e.devminor),
            ),
            _ => (FileType::Fifo, 0),
        };
        let r = rustix::fs::mknodat(
            pfd,
            OsStr::from_bytes(base),
            ft,
            Mode::from_raw_mode(0o600),
            dev,
        );
        // In hoist's user namespace (rootless) the kernel never lets a device node be made;
        // as containerd does there, a base layer's device (debian's /dev/console) is left
        // out: a sandbox gets its own /dev, and layers hoist writes never come from here.
        if r == Err(rustix::io::Errno::PERM)
            && e.kind != Kind::Fifo
            && crate::userns::current().is_some()
        {
            return Ok(());
        }
        r.map_err(|x| self.fs_err(comps, x))?;
        let m = self.meta(e);
        let pfd = self.parent(parent)?;
        let r = fsops::set_meta(pfd, base, false, &m)
            .and_then(|()| fsops::set_times(pfd, base, e.mtime, e.mtime_nsec));
        r.map_err(|x| self.fs_err(comps, x))?;
        self.stats.specials += 1;
        Ok(())
    }

    fn whiteout(&mut self, e: &Entry, parent: &[Vec<u8>], base: &[u8]) -> Result<()> {
        self.cache = None;
        if e.kind != Kind::Regular && e.kind != Kind::Link {
            return Err(self.reject(e, "a whiteout must be a plain file entry"));
        }
        if base == b".wh..wh..opq" {
            if parent.is_empty() {
                return Err(self.reject(e, "opaque whiteout of the layer root"));
            }
            let pfd =
                fsops::ensure_dir(self.root.as_fd(), parent).map_err(|x| self.fs_err(parent, x))?;
            fsops::set_xattr_fd(pfd.as_fd(), crate::userns::opaque_xattr(), b"y")
                .map_err(|x| self.fs_err(parent, x))?;
            self.stats.whiteouts += 1;
            return Ok(());
        }
        if base.starts_with(b".wh..wh.") {
            // Other AUFS metadata (.wh..wh.plnk, .wh..wh.aufs): ignored, as containerd does.
            return Ok(());
        }
        let target = &base[4..];
        if target.is_empty() || target == b"." || target == b".." {
            return Err(self.reject(e, "whiteout of an empty name, '.' or '..'"));
        }
        let mut comps = parent.to_vec();
        comps.push(target.to_vec());
        self.clear(&comps, parent, target, false)?;
        let pfd = self.parent(parent)?;
        let r = rustix::fs::mknodat(
            pfd,
            OsStr::from_bytes(target),
            FileType::CharacterDevice,
            Mode::empty(),
            rustix::fs::makedev(0, 0),
        );
        r.map_err(|x| self.fs_err(&comps, x))?;
        self.stats.whiteouts += 1;
        Ok(())
    }

    fn finish_dirs(&mut self) -> Result<()> {
        let list = std::mem::take(&mut self.dir_times);
        for (comps, sec, nsec) in list.iter().rev() {
            let fd = match fsops::resolve_nofollow(self.root.as_fd(), comps) {
                Ok(fd) => fd,
                Err(Errno::NOENT) => continue,
                Err(x) => return Err(self.fs_err(comps, x)),
            };
            let st = rustix::fs::fstat(&fd).map_err(|x| self.fs_err(comps, x))?;
            if FileType::from_raw_mode(st.st_mode) != FileType::Directory {
                continue; // replaced by a later entry
            }
            fsops::set_times_fd(fd.as_fd(), *sec, *nsec).map_err(|x| self.fs_err(comps, x))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::clean;

    #[test]
    fn clean_clamps_dotdot_at_the_root() {
        let c = |s: &str| {
            clean(s.as_bytes())
                .iter()
                .map(|c| String::from_utf8(c.clone()).unwrap())
                .collect::<Vec<_>>()
                .join("/")
        };
        assert_eq!(c("../../etc/passwd"), "etc/passwd");
        assert_eq!(c("/abs/./x/"), "abs/x");
        assert_eq!(c("a/b/../../../c"), "c");
        assert_eq!(c("./"), "");
        assert_eq!(c(".."), "");
    }
}
