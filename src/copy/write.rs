//! Writes selected sources into the empty layer directory `out`, with BuildKit's metadata
//! rules: `--chown` (or 0:0 from the context, kept from a rootfs), `--chmod`, modes and
//! mtimes kept, hardlinks kept, symlinks copied as links, parent directories mirrored from
//! the image (same mode/owner) or created 0755 (an octal `--chmod`'s mode when given, as
//! BuildKit). All writes are fd-based and in-root.

use super::chmod::Chmod;
use super::fsops::{self, Kind, Meta};
use super::select::{DirRole, Sink, SrcEntry};
use super::{CopyError, CopyRequest, CopySource, Result, add, io_err};
use crate::fsroot::{self, Root};
use crate::layers::{ExtraFile, ExtraFiles};
use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// The writing sink.
pub(crate) struct Writer {
    pub(crate) out: Root,
    pub(crate) out_path: PathBuf,
    image: Option<Root>,
    pub(crate) chown: Option<(u32, u32)>,
    chmod: Option<Chmod>,
    keep_owner: bool,
    epoch: Option<i64>,
    /// (dev, ino) of a source file with several links -> where its first copy landed.
    links: HashMap<(u64, u64), Vec<String>>,
    /// Directory mtimes to set last (children change them).
    dir_times: Vec<(Vec<String>, (i64, u32))>,
    /// The last directory of `out` resolved (siblings are written one after another).
    out_cache: RefCell<Option<(Vec<String>, OwnedFd)>>,
    /// The last parent directory looked up in the image (read-only, never stale).
    image_cache: RefCell<Option<(Vec<String>, Option<OwnedFd>)>>,
    /// With [`Writer::defer_files`]: plain context files not copied into `out` but archived
    /// from the context by the layer writer (no 2nd write and read of the data, no inode).
    deferred: Option<BTreeMap<Vec<String>, ExtraFile>>,
    /// The current source root is stable (the context), so files may be deferred.
    stable_root: bool,
    /// A symlink was written into `out`: later paths may lead through it, so no more files
    /// are deferred (a deferred path must name its real place in the layer).
    wrote_link: bool,
}

fn now() -> (i64, u32) {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    (d.as_secs() as i64, d.subsec_nanos())
}

impl Writer {
    pub(crate) fn new(
        _src: &CopySource,
        req: &CopyRequest,
        image_view: &Path,
        out: &Path,
    ) -> Result<Writer> {
        let chmod = match &req.chmod {
            Some(s) => {
                Some(Chmod::parse(s).ok_or_else(|| CopyError::BadChmod { spec: s.clone() })?)
            }
            None => None,
        };
        let image = if image_view.is_dir() {
            Some(Root::open(image_view).map_err(io_err(image_view))?)
        } else {
            None
        };
        Ok(Writer {
            out: Root::open(out).map_err(io_err(out))?,
            out_path: out.to_path_buf(),
            image,
            chown: req.chown,
            chmod,
            keep_owner: false,
            epoch: req.source_date_epoch,
            links: HashMap::new(),
            dir_times: Vec::new(),
            out_cache: RefCell::new(None),
            image_cache: RefCell::new(None),
            deferred: None,
            stable_root: false,
            wrote_link: false,
        })
    }

    /// A writer into `out` with no image below and a fixed owner (stdin contexts).
    pub(crate) fn for_dir(out: &Path, chown: Option<(u32, u32)>) -> Result<Writer> {
        Ok(Writer {
            out: Root::open(out).map_err(io_err(out))?,
            out_path: out.to_path_buf(),
            image: None,
            chown,
            chmod: None,
            keep_owner: false,
            epoch: None,
            links: HashMap::new(),
            dir_times: Vec::new(),
            out_cache: RefCell::new(None),
            image_cache: RefCell::new(None),
            deferred: None,
            stable_root: false,
            wrote_link: false,
        })
    }

    /// Lets context files be deferred (see [`Writer::take_deferred`]) instead of copied.
    pub(crate) fn defer_files(&mut self) {
        self.deferred = Some(BTreeMap::new());
    }

    /// The deferred files, by path relative to `out`.
    pub(crate) fn take_deferred(&mut self) -> ExtraFiles {
        self.deferred
            .take()
            .unwrap_or_default()
            .into_iter()
            .map(|(comps, f)| (comps.join("/").into_bytes(), f))
            .collect()
    }

    /// Forgets a deferred file at `comps` (it is being replaced); true when there was one.
    fn undefer(&mut self, comps: &[String]) -> bool {
        self.deferred
            .as_mut()
            .is_some_and(|d| d.remove(comps).is_some())
    }

    fn is_deferred(&self, comps: &[String]) -> bool {
        self.deferred
            .as_ref()
            .is_some_and(|d| d.contains_key(comps))
    }

    /// Writes a deferred file at `comps` into `out` after all (something needs it there).
    fn materialize(&mut self, comps: &[String]) -> Result<()> {
        let Some(f) = self.deferred.as_mut().and_then(|d| d.remove(comps)) else {
            return Ok(());
        };
        let Some((name, parent)) = comps.split_last() else {
            return Ok(());
        };
        let path = self.path_of(comps);
        let dir = self.out_dir(parent)?;
        let src = std::fs::File::options()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
            .open(&f.src)
            .map_err(io_err(&f.src))?;
        let src = OwnedFd::from(src);
        let sm = Meta::from_stat(&rustix::fs::fstat(&src).map_err(|x| io_err(&f.src)(x.into()))?);
        if sm.kind != Kind::File || sm.ino != f.ino || sm.dev != f.dev {
            return Err(io_err(&f.src)(std::io::Error::other(
                "source changed while it was being copied",
            )));
        }
        let dst = fsops::create_file_at(dir.as_fd(), name).map_err(io_err(&path))?;
        fsops::copy_contents(&src, &dst, f.size).map_err(io_err(&path))?;
        fsops::set_meta_at(
            dir.as_fd(),
            name,
            Kind::File,
            f.uid,
            f.gid,
            f.perm,
            (f.mtime, 0),
        )
        .map_err(io_err(&path))
    }

    /// Records `e` (a regular file) as deferred when that gives the same layer entry as a
    /// copy: a stable root, one link, no xattrs, running as root (the copy's chown works).
    fn try_defer(
        &mut self,
        e: &SrcEntry,
        dest: &[String],
        perm: u32,
        owner: (u32, u32),
        t: (i64, u32),
    ) -> Result<bool> {
        if self.deferred.is_none()
            || !self.stable_root
            || self.wrote_link
            || e.meta.nlink != 1
            || !rustix::process::geteuid().is_root()
        {
            return Ok(false);
        }
        let path = self.path_of(dest);
        let src = fsops::open_read_at(e.dir, e.name).map_err(io_err(&path))?;
        let sm = Meta::from_stat(&rustix::fs::fstat(&src).map_err(|x| io_err(&path)(x.into()))?);
        if sm.kind != Kind::File || sm.ino != e.meta.ino || sm.nlink != 1 {
            return Ok(false);
        }
        match rustix::fs::flistxattr_query(&src) {
            Ok(0) | Err(rustix::io::Errno::NOTSUP) => {}
            _ => return Ok(false),
        }
        // The real path of the file, through no symlink: reopened with O_NOFOLLOW and checked
        // against dev/ino when the layer is written.
        let Ok(real) = std::fs::read_link(format!("/proc/self/fd/{}", src.as_raw_fd())) else {
            return Ok(false);
        };
        if !real.is_absolute() || real.to_string_lossy().ends_with(" (deleted)") {
            return Ok(false);
        }
        // Same time precision as the tar header: seconds (a copy keeps nanoseconds, which the
        // header drops).
        let f = ExtraFile {
            src: real,
            dev: sm.dev,
            ino: sm.ino,
            size: sm.size,
            perm: perm & 0o7777,
            uid: owner.0,
            gid: owner.1,
            mtime: t.0,
        };
        if let Some(d) = self.deferred.as_mut() {
            d.insert(dest.to_vec(), f);
        }
        Ok(true)
    }

    fn path_of(&self, comps: &[String]) -> PathBuf {
        let mut p = self.out_path.clone();
        p.extend(comps);
        p
    }

    /// The directory `comps` in `out` (O_PATH), links clamped in-root.
    pub(crate) fn out_dir(&self, comps: &[String]) -> Result<OwnedFd> {
        if let Some((c, fd)) = &*self.out_cache.borrow()
            && c == comps
        {
            return fd.try_clone().map_err(io_err(self.path_of(comps)));
        }
        let fd = self
            .out
            .open_dir(&comps.join("/"))
            .map_err(io_err(self.path_of(comps)))?;
        let keep = fd.try_clone().map_err(io_err(self.path_of(comps)))?;
        *self.out_cache.borrow_mut() = Some((comps.to_vec(), keep));
        Ok(fd)
    }

    /// Forgets the cached directory fd: called whenever an entry of `out` is replaced, which
    /// could change where a cached path resolves.
    fn invalidate(&self) {
        *self.out_cache.borrow_mut() = None;
    }

    fn image_meta(&self, comps: &[String]) -> Option<Meta> {
        let img = self.image.as_ref()?;
        let (last, parent) = comps.split_last()?;
        let mut cache = self.image_cache.borrow_mut();
        if cache.as_ref().is_none_or(|(c, _)| c != parent) {
            *cache = Some((parent.to_vec(), fsroot::open_dir_nofollow(img, parent).ok()));
        }
        let dir = cache.as_ref()?.1.as_ref()?;
        fsops::lstat_at(dir.as_fd(), last).ok()
    }

    fn clamp(&self, t: (i64, u32)) -> (i64, u32) {
        match self.epoch {
            Some(e) if t.0 > e => (e, 0),
            _ => t,
        }
    }

    fn owner(&self, m: &Meta) -> (u32, u32) {
        self.chown.unwrap_or(if self.keep_owner {
            (m.uid, m.gid)
        } else {
            (0, 0)
        })
    }

    fn mode(&self, m: &Meta) -> u32 {
        match &self.chmod {
            Some(c) => c.apply(m.perm, m.kind == Kind::Dir),
            None => m.perm,
        }
    }

    /// The mode of a directory created for the destination: an octal `--chmod` (its
    /// permission bits) as BuildKit's copy gives its MkdirAll, else 0755 (a symbolic
    /// `--chmod` applies to the copied entries only).
    fn created_dir_mode(&self) -> u32 {
        match &self.chmod {
            Some(Chmod::Octal(m)) => m & 0o777,
            _ => 0o755,
        }
    }

    /// Makes directory `comps` in `out` with the given metadata unless it is there.
    fn mkdir_with(
        &mut self,
        comps: &[String],
        owner: (u32, u32),
        perm: u32,
        t: (i64, u32),
    ) -> Result<bool> {
        let Some((name, parent)) = comps.split_last() else {
            return Ok(false);
        };
        let dir = self.out_dir(parent)?;
        self.undefer(comps);
        let created = fsops::mkdir_at(dir.as_fd(), name).map_err(io_err(self.path_of(comps)))?;
        self.invalidate();
        if created {
            fsops::set_meta_at(dir.as_fd(), name, Kind::Dir, owner.0, owner.1, perm, t)
                .map_err(io_err(self.path_of(comps)))?;
            self.dir_times.push((comps.to_vec(), t));
        }
        Ok(created)
    }

    /// Creates the parents an archive entry needs (0755 root, or mirrored from the image).
    pub(crate) fn mkdir_all_plain(&mut self, comps: &[String]) -> Result<()> {
        let saved = (self.chown, self.chmod.take());
        self.chown = None;
        let r = self.mkdir_all(comps);
        (self.chown, self.chmod) = saved;
        r
    }

    /// Writes an archive member (ADD of a local tar): regular file contents from `data`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn write_member(
        &mut self,
        comps: &[String],
        kind: Kind,
        perm: u32,
        owner: (u32, u32),
        mtime: i64,
        link: Option<&str>,
        rdev: u64,
        data: &mut dyn std::io::Read,
    ) -> Result<()> {
        let Some((name, parent)) = comps.split_last() else {
            return Ok(());
        };
        let path = self.path_of(comps);
        let dir = self.out_dir(parent)?;
        let t = self.clamp((mtime, 0));
        self.undefer(comps);
        if kind == Kind::Dir {
            let created = fsops::mkdir_at(dir.as_fd(), name).map_err(io_err(&path))?;
            self.invalidate();
            let _ = created;
            fsops::set_meta_at(dir.as_fd(), name, Kind::Dir, owner.0, owner.1, perm, t)
                .map_err(io_err(&path))?;
            self.dir_times.push((comps.to_vec(), t));
            return Ok(());
        }
        if let Ok(m) = fsops::lstat_at(dir.as_fd(), name)
            && m.kind == Kind::Dir
        {
            return Err(CopyError::ReplaceDir {
                path: format!("/{}", comps.join("/")),
            });
        }
        if fsops::remove_nondir_at(dir.as_fd(), name).map_err(io_err(&path))? {
            self.invalidate();
        }
        match kind {
            Kind::File => {
                let fd = fsops::create_file_at(dir.as_fd(), name).map_err(io_err(&path))?;
                let mut f = std::fs::File::from(fd);
                std::io::copy(data, &mut f).map_err(io_err(&path))?;
            }
            Kind::Symlink => {
                self.wrote_link = true;
                rustix::fs::symlinkat(link.unwrap_or(""), dir.as_fd(), name.as_str())
                    .map_err(|e| io_err(&path)(e.into()))?;
            }
            _ => {
                let m = Meta {
                    kind,
                    perm,
                    uid: owner.0,
                    gid: owner.1,
                    size: 0,
                    mtime,
                    mtime_nsec: 0,
                    ctime: 0,
                    ctime_nsec: 0,
                    ino: 0,
                    dev: 0,
                    nlink: 1,
                    rdev,
                };
                fsops::mknod_at(dir.as_fd(), name, &m).map_err(io_err(&path))?;
            }
        }
        fsops::set_meta_at(dir.as_fd(), name, kind, owner.0, owner.1, perm, t)
            .map_err(io_err(&path))
    }

    /// A hardlink inside an archive: `target` (already extracted, in-root of `out`).
    pub(crate) fn write_hardlink(&mut self, comps: &[String], target: &[String]) -> Result<()> {
        let (Some((name, parent)), Some((tname, tparent))) =
            (comps.split_last(), target.split_last())
        else {
            return Ok(());
        };
        let path = self.path_of(comps);
        self.materialize(target)?;
        self.undefer(comps);
        let dir = self.out_dir(parent)?;
        let tdir = self.out_dir(tparent)?;
        let tm = fsops::lstat_at(tdir.as_fd(), tname).map_err(io_err(self.path_of(target)))?;
        if tm.kind == Kind::Dir {
            return Err(CopyError::Archive {
                path: format!("/{}", comps.join("/")),
                reason: "hard link to a directory".into(),
            });
        }
        if fsops::remove_nondir_at(dir.as_fd(), name).map_err(io_err(&path))? {
            self.invalidate();
        }
        rustix::fs::linkat(
            tdir.as_fd(),
            tname.as_str(),
            dir.as_fd(),
            name.as_str(),
            rustix::fs::AtFlags::empty(),
        )
        .map_err(|e| io_err(&path)(e.into()))
    }

    /// Sets the recorded directory times, deepest first.
    pub(crate) fn finish(mut self) -> Result<()> {
        let times = std::mem::take(&mut self.dir_times);
        for (comps, t) in times.iter().rev() {
            let Some((name, parent)) = comps.split_last() else {
                continue;
            };
            let dir = self.out_dir(parent)?;
            let ts = rustix::fs::Timestamps {
                last_access: rustix::fs::Timespec {
                    tv_sec: t.0,
                    tv_nsec: t.1 as _,
                },
                last_modification: rustix::fs::Timespec {
                    tv_sec: t.0,
                    tv_nsec: t.1 as _,
                },
            };
            rustix::fs::utimensat(
                dir.as_fd(),
                name.as_str(),
                &ts,
                rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
            )
            .map_err(|e| io_err(self.path_of(comps))(e.into()))?;
        }
        Ok(())
    }
}

impl Sink for Writer {
    fn set_keep_owner(&mut self, keep: bool) {
        self.keep_owner = keep;
    }

    fn set_root(&mut self, _root: &Path, stable: bool) {
        self.stable_root = stable;
    }

    fn canon(&mut self, dest: &str) -> Result<Vec<String>> {
        match &self.image {
            Some(img) => img.canonical(dest).map_err(|e| {
                if e.raw_os_error() == Some(libc::ENOTDIR) {
                    CopyError::NotADirectory {
                        dest: dest.to_string(),
                        path: dest.to_string(),
                    }
                } else {
                    io_err(dest)(e)
                }
            }),
            None => {
                let c = crate::parser::dockerignore::go_clean(&format!("/{dest}"));
                Ok(fsroot::split(&c))
            }
        }
    }

    fn is_dir(&mut self, dest: &[String]) -> Result<bool> {
        if dest.is_empty() {
            return Ok(true);
        }
        if self.is_deferred(dest) {
            return Ok(false);
        }
        if let Ok(f) = self.out.resolve(&dest.join("/"), true)
            && let Some(m) = f.meta
        {
            return Ok(m.kind == Kind::Dir);
        }
        Ok(self.image_meta(dest).is_some_and(|m| m.kind == Kind::Dir))
    }

    fn mkdir_all(&mut self, dest: &[String]) -> Result<()> {
        for i in 1..=dest.len() {
            let comps = &dest[..i];
            if self.is_deferred(comps) {
                return Err(CopyError::NotADirectory {
                    dest: format!("/{}", dest.join("/")),
                    path: format!("/{}", comps.join("/")),
                });
            }
            let dir = self.out_dir(&comps[..i - 1])?;
            if let Ok(m) = fsops::lstat_at(dir.as_fd(), &comps[i - 1]) {
                if m.kind == Kind::Dir {
                    continue;
                }
                if m.kind == Kind::Symlink {
                    continue; // followed in-root by out_dir
                }
                return Err(CopyError::NotADirectory {
                    dest: format!("/{}", dest.join("/")),
                    path: format!("/{}", comps.join("/")),
                });
            }
            match self.image_meta(comps) {
                Some(m) if m.kind == Kind::Dir => {
                    self.mkdir_with(comps, (m.uid, m.gid), m.perm, (m.mtime, m.mtime_nsec))?;
                }
                Some(_) => {
                    return Err(CopyError::NotADirectory {
                        dest: format!("/{}", dest.join("/")),
                        path: format!("/{}", comps.join("/")),
                    });
                }
                None => {
                    let owner = self.chown.unwrap_or((0, 0));
                    let t = self.epoch.map(|e| (e, 0)).unwrap_or_else(now);
                    self.mkdir_with(comps, owner, self.created_dir_mode(), t)?;
                }
            }
        }
        Ok(())
    }

    fn dir_begin(
        &mut self,
        meta: &Meta,
        _rel: &str,
        dest: &[String],
        role: DirRole,
    ) -> Result<bool> {
        let Some((name, parent)) = dest.split_last() else {
            return Ok(false); // the root of the layer: never re-moded
        };
        let not_dir = || CopyError::NotADirectory {
            dest: format!("/{}", dest.join("/")),
            path: format!("/{}", dest.join("/")),
        };
        // An earlier source of this COPY wrote a file there (BuildKit: "cannot copy to
        // non-directory").
        let onto_file = || CopyError::DirOntoEarlierFile {
            path: format!("/{}", dest.join("/")),
        };
        if self.is_deferred(dest) {
            return Err(onto_file());
        }
        let dir = self.out_dir(parent)?;
        if let Ok(m) = fsops::lstat_at(dir.as_fd(), name) {
            if m.kind != Kind::Dir {
                return Err(onto_file());
            }
            return match role {
                DirRole::Top => Ok(false),
                DirRole::Child => Ok(true),
                DirRole::Parent => {
                    rustix::fs::chmodat(
                        dir.as_fd(),
                        name.as_str(),
                        rustix::fs::Mode::from_raw_mode(meta.perm),
                        rustix::fs::AtFlags::empty(),
                    )
                    .map_err(|e| io_err(self.path_of(dest))(e.into()))?;
                    Ok(false)
                }
            };
        }
        match (self.image_meta(dest), role) {
            // An existing image directory as the destination keeps its own metadata.
            (Some(m), DirRole::Top) if m.kind == Kind::Dir => {
                self.mkdir_with(dest, (m.uid, m.gid), m.perm, (m.mtime, m.mtime_nsec))?;
                return Ok(false);
            }
            (Some(m), DirRole::Parent) if m.kind == Kind::Dir => {
                self.mkdir_with(dest, (m.uid, m.gid), meta.perm, (m.mtime, m.mtime_nsec))?;
                return Ok(false);
            }
            (Some(m), _) if m.kind != Kind::Dir => return Err(not_dir()),
            _ => {}
        }
        if role == DirRole::Top {
            // Made like the destination's other new directories; only the time is the
            // source directory's.
            let owner = self.chown.unwrap_or((0, 0));
            let t = self.clamp((meta.mtime, meta.mtime_nsec));
            self.mkdir_with(dest, owner, self.created_dir_mode(), t)?;
            return Ok(false);
        }
        let path = self.path_of(dest);
        self.undefer(dest);
        fsops::mkdir_at(dir.as_fd(), name).map_err(io_err(&path))?;
        self.invalidate();
        Ok(true)
    }

    fn redirect(&mut self, dest: Vec<String>) -> Result<Vec<String>> {
        match (&self.image, self.image_meta(&dest)) {
            (Some(img), Some(m)) if m.kind == Kind::Symlink => {
                let c = img
                    .canonical(&dest.join("/"))
                    .map_err(io_err(self.path_of(&dest)))?;
                let target_is_dir = self.image_meta(&c).is_some_and(|m| m.kind == Kind::Dir);
                Ok(if target_is_dir { c } else { dest })
            }
            _ => Ok(dest),
        }
    }

    fn dir_end(&mut self, meta: &Meta, _rel: &str, dest: &[String], apply: bool) -> Result<()> {
        if !apply {
            return Ok(());
        }
        let Some((name, parent)) = dest.split_last() else {
            return Ok(());
        };
        let dir = self.out_dir(parent)?;
        let (uid, gid) = self.owner(meta);
        let t = self.clamp((meta.mtime, meta.mtime_nsec));
        fsops::set_meta_at(dir.as_fd(), name, Kind::Dir, uid, gid, self.mode(meta), t)
            .map_err(io_err(self.path_of(dest)))?;
        self.dir_times.push((dest.to_vec(), t));
        Ok(())
    }

    fn leaf(&mut self, e: &SrcEntry, dest: &[String]) -> Result<()> {
        let Some((name, parent)) = dest.split_last() else {
            return Err(CopyError::ReplaceDir { path: "/".into() });
        };
        let path = self.path_of(dest);
        let dir = self.out_dir(parent)?;
        let existing = fsops::lstat_at(dir.as_fd(), name).ok();
        if existing.is_some_and(|m| m.kind == Kind::Dir)
            || (existing.is_none() && self.image_meta(dest).is_some_and(|m| m.kind == Kind::Dir))
        {
            return Err(CopyError::ReplaceDir {
                path: format!("/{}", dest.join("/")),
            });
        }
        if fsops::remove_nondir_at(dir.as_fd(), name).map_err(io_err(&path))? {
            self.invalidate();
        }
        self.undefer(dest);
        let m = e.meta;
        let (uid, gid) = self.owner(&m);
        let t = self.clamp((m.mtime, m.mtime_nsec));
        match m.kind {
            Kind::File => {
                if self.try_defer(e, dest, self.mode(&m), (uid, gid), t)? {
                    return Ok(());
                }
                if m.nlink > 1
                    && let Some(first) = self.links.get(&(m.dev, m.ino))
                {
                    let first = first.clone();
                    let (fname, fparent) = first.split_last().unwrap_or((name, parent));
                    let fdir = self.out_dir(fparent)?;
                    if rustix::fs::linkat(
                        fdir.as_fd(),
                        fname.as_str(),
                        dir.as_fd(),
                        name.as_str(),
                        rustix::fs::AtFlags::empty(),
                    )
                    .is_ok()
                    {
                        return Ok(());
                    }
                }
                let src = fsops::open_read_at(e.dir, e.name).map_err(io_err(&path))?;
                let sm =
                    Meta::from_stat(&rustix::fs::fstat(&src).map_err(|x| io_err(&path)(x.into()))?);
                if sm.kind != Kind::File || sm.ino != m.ino {
                    return Err(io_err(&path)(std::io::Error::other(
                        "source changed while it was being copied",
                    )));
                }
                let dst = fsops::create_file_at(dir.as_fd(), name).map_err(io_err(&path))?;
                fsops::copy_contents(&src, &dst, sm.size).map_err(io_err(&path))?;
                if m.nlink > 1 {
                    self.links.insert((m.dev, m.ino), dest.to_vec());
                }
                fsops::set_meta_at(dir.as_fd(), name, m.kind, uid, gid, self.mode(&m), t)
                    .map_err(io_err(&path))?;
                return fsops::copy_xattrs(&src, &dst).map_err(io_err(&path));
            }
            Kind::Symlink => {
                self.wrote_link = true;
                let target = fsops::readlink_at(e.dir, e.name).map_err(io_err(&path))?;
                rustix::fs::symlinkat(target.as_str(), dir.as_fd(), name.as_str())
                    .map_err(|x| io_err(&path)(x.into()))?;
            }
            Kind::Fifo | Kind::Char | Kind::Block => {
                fsops::mknod_at(dir.as_fd(), name, &m).map_err(io_err(&path))?;
            }
            Kind::Socket | Kind::Dir => return Ok(()),
        }
        fsops::set_meta_at(dir.as_fd(), name, m.kind, uid, gid, self.mode(&m), t)
            .map_err(io_err(&path))
    }

    fn archive(&mut self, e: &SrcEntry, dest: &[String]) -> Result<()> {
        // BuildKit unpacks into a 0755 directory (owned per `--chown`), whatever `--chmod`.
        let chmod = self.chmod.take();
        let made = self.mkdir_all(dest);
        self.chmod = chmod;
        made?;
        let src = fsops::open_read_at(e.dir, e.name).map_err(io_err(e.rel))?;
        add::extract_archive(std::fs::File::from(src), e.rel, self, dest)
    }

    fn heredoc(&mut self, _name: &str, content: &str, dest: &[String]) -> Result<()> {
        let Some((name, parent)) = dest.split_last() else {
            return Err(CopyError::ReplaceDir { path: "/".into() });
        };
        let path = self.path_of(dest);
        let dir = self.out_dir(parent)?;
        if fsops::lstat_at(dir.as_fd(), name).is_ok_and(|m| m.kind == Kind::Dir) {
            return Err(CopyError::ReplaceDir {
                path: format!("/{}", dest.join("/")),
            });
        }
        if fsops::remove_nondir_at(dir.as_fd(), name).map_err(io_err(&path))? {
            self.invalidate();
        }
        self.undefer(dest);
        let fd = fsops::create_file_at(dir.as_fd(), name).map_err(io_err(&path))?;
        let mut f = std::fs::File::from(fd);
        f.write_all(content.as_bytes()).map_err(io_err(&path))?;
        drop(f);
        let perm = self
            .chmod
            .as_ref()
            .map(|c| c.apply(0o644, false))
            .unwrap_or(0o644);
        let (uid, gid) = self.chown.unwrap_or((0, 0));
        let t = self.epoch.map(|e| (e, 0)).unwrap_or_else(now);
        fsops::set_meta_at(dir.as_fd(), name, Kind::File, uid, gid, perm, t).map_err(io_err(&path))
    }
}
