//! In-root path resolution and fd-based file operations on untrusted trees.
//!
//! Every path inside a build context, a rootfs view or the output layer is resolved here,
//! one component at a time from a directory fd opened `O_NOFOLLOW`: `..` stops at the root,
//! a symlink is read with `readlinkat` and its target re-walked from the root (absolute) or
//! from its directory (relative), so nothing outside the root is ever opened, stat'ed or
//! written, whatever the tree contains. Metadata calls never follow links.

use rustix::fs::{AtFlags, FileType, Mode, OFlags, Timespec, Timestamps};
use std::ffi::CString;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

/// Symlinks followed in one resolution before giving up (Linux's own limit).
const MAX_LINKS: usize = 40;

/// Kind of a filesystem entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Kind {
    File,
    Dir,
    Symlink,
    Fifo,
    Char,
    Block,
    Socket,
}

impl Kind {
    pub(crate) fn letter(self) -> char {
        match self {
            Kind::File => 'f',
            Kind::Dir => 'd',
            Kind::Symlink => 'l',
            Kind::Fifo => 'p',
            Kind::Char => 'c',
            Kind::Block => 'b',
            Kind::Socket => 's',
        }
    }
}

/// The metadata hoist cares about, from one `lstat`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Meta {
    pub kind: Kind,
    /// Permission bits incl. setuid/setgid/sticky (`& 0o7777`).
    pub perm: u32,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
    pub mtime: i64,
    pub mtime_nsec: u32,
    pub ctime: i64,
    pub ctime_nsec: u32,
    pub ino: u64,
    pub dev: u64,
    pub nlink: u64,
    pub rdev: u64,
}

impl Meta {
    pub(crate) fn from_stat(st: &rustix::fs::Stat) -> Meta {
        let kind = match FileType::from_raw_mode(st.st_mode as _) {
            FileType::Directory => Kind::Dir,
            FileType::Symlink => Kind::Symlink,
            FileType::Fifo => Kind::Fifo,
            FileType::CharacterDevice => Kind::Char,
            FileType::BlockDevice => Kind::Block,
            FileType::Socket => Kind::Socket,
            _ => Kind::File,
        };
        #[allow(clippy::unnecessary_cast)]
        Meta {
            kind,
            perm: (st.st_mode as u32) & 0o7777,
            uid: st.st_uid as u32,
            gid: st.st_gid as u32,
            size: st.st_size.max(0) as u64,
            mtime: st.st_mtime as i64,
            mtime_nsec: st.st_mtime_nsec as u32,
            ctime: st.st_ctime as i64,
            ctime_nsec: st.st_ctime_nsec as u32,
            ino: st.st_ino as u64,
            dev: st.st_dev as u64,
            nlink: st.st_nlink as u64,
            rdev: st.st_rdev as u64,
        }
    }
}

/// An open root directory that paths are resolved inside.
#[derive(Debug)]
pub(crate) struct Root {
    fd: OwnedFd,
}

/// The result of resolving a path in a root.
#[derive(Debug)]
pub(crate) struct Found {
    /// The directory holding the entry (`O_PATH`), or the entry itself when `name` is None.
    pub dir: OwnedFd,
    /// The final component, or None when the path resolved to the root itself.
    pub name: Option<String>,
    /// The canonical in-root path components of the entry.
    pub comps: Vec<String>,
    /// Its metadata (`lstat`), None when the last component does not exist.
    pub meta: Option<Meta>,
}

impl Root {
    /// Opens `path` (trusted: chosen by hoist, not by the tree) as a root.
    pub(crate) fn open(path: &Path) -> io::Result<Root> {
        let fd = rustix::fs::open(
            path,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        Ok(Root { fd })
    }

    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Resolves `path` (absolute or relative, any `..`) inside the root. Symlinks in
    /// intermediate components are always followed in-root; the last one only when
    /// `follow_last`. A missing last component is not an error (`meta` is None); a missing
    /// or non-directory intermediate one is (ENOENT / ENOTDIR).
    pub(crate) fn resolve(&self, path: &str, follow_last: bool) -> io::Result<Found> {
        self.walk(path, follow_last, false).map(|(f, _)| f)
    }

    /// The canonical in-root components of `path` (every symlink followed in-root), where
    /// a missing part and everything after it are kept as written (`..` clamped).
    pub(crate) fn canonical(&self, path: &str) -> io::Result<Vec<String>> {
        let (found, rest) = self.walk(path, true, true)?;
        let mut comps = found.comps;
        for c in rest {
            match c.as_str() {
                "." => {}
                ".." => {
                    comps.pop();
                }
                _ => comps.push(c),
            }
        }
        Ok(comps)
    }

    /// Opens the directory `path` (links followed in-root) as an `O_PATH` fd.
    pub(crate) fn open_dir(&self, path: &str) -> io::Result<OwnedFd> {
        let f = self.resolve(path, true)?;
        match (&f.name, f.meta) {
            (None, _) => Ok(f.dir),
            (Some(n), Some(m)) if m.kind == Kind::Dir => Ok(rustix::fs::openat(
                &f.dir,
                n.as_str(),
                OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            )?),
            (Some(_), Some(_)) => Err(rustix::io::Errno::NOTDIR.into()),
            (Some(_), None) => Err(rustix::io::Errno::NOENT.into()),
        }
    }

    /// The walk behind [`Root::resolve`]; with `missing_ok`, a missing component ends the
    /// walk and the unresolved rest is returned.
    fn walk(
        &self,
        path: &str,
        follow_last: bool,
        missing_ok: bool,
    ) -> io::Result<(Found, Vec<String>)> {
        let mut todo: Vec<String> = split(path).into_iter().rev().collect();
        // stack of (dir fd, name) below the root
        let mut stack: Vec<(OwnedFd, String)> = Vec::new();
        let mut links = 0usize;
        while let Some(comp) = todo.pop() {
            if comp == "." {
                continue;
            }
            if comp == ".." {
                stack.pop();
                continue;
            }
            let cur = stack
                .last()
                .map(|(fd, _)| fd.as_fd())
                .unwrap_or(self.fd.as_fd());
            let is_last = todo.iter().all(|c| c == ".");
            let st = match rustix::fs::statat(cur, comp.as_str(), AtFlags::SYMLINK_NOFOLLOW) {
                Ok(st) => Meta::from_stat(&st),
                Err(e) if e == rustix::io::Errno::NOENT && (is_last || missing_ok) => {
                    let dir = reopen_dir(cur)?;
                    let mut comps: Vec<String> = stack.iter().map(|(_, n)| n.clone()).collect();
                    comps.push(comp.clone());
                    let rest: Vec<String> = todo.into_iter().rev().collect();
                    return Ok((
                        Found {
                            dir,
                            name: Some(comp),
                            comps,
                            meta: None,
                        },
                        rest,
                    ));
                }
                Err(e) => return Err(e.into()),
            };
            if st.kind == Kind::Symlink && (!is_last || follow_last) {
                links += 1;
                if links > MAX_LINKS {
                    return Err(rustix::io::Errno::LOOP.into());
                }
                let target = rustix::fs::readlinkat(cur, comp.as_str(), Vec::new())?;
                let target = target.to_string_lossy().into_owned();
                if target.starts_with('/') {
                    stack.clear();
                }
                for c in split(&target).into_iter().rev() {
                    todo.push(c);
                }
                continue;
            }
            if is_last {
                let dir = reopen_dir(cur)?;
                let mut comps: Vec<String> = stack.iter().map(|(_, n)| n.clone()).collect();
                comps.push(comp.clone());
                return Ok((
                    Found {
                        dir,
                        name: Some(comp),
                        comps,
                        meta: Some(st),
                    },
                    Vec::new(),
                ));
            }
            if st.kind != Kind::Dir {
                return Err(rustix::io::Errno::NOTDIR.into());
            }
            let fd = rustix::fs::openat(
                cur,
                comp.as_str(),
                OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            )?;
            stack.push((fd, comp));
        }
        let comps: Vec<String> = stack.iter().map(|(_, n)| n.clone()).collect();
        let cur = stack
            .last()
            .map(|(fd, _)| fd.as_fd())
            .unwrap_or(self.fd.as_fd());
        let meta = Meta::from_stat(&rustix::fs::fstat(cur)?);
        Ok((
            Found {
                dir: reopen_dir(cur)?,
                name: None,
                comps,
                meta: Some(meta),
            },
            Vec::new(),
        ))
    }
}

/// Splits a path into its non-empty components (keeps `.` and `..`).
pub(crate) fn split(path: &str) -> Vec<String> {
    path.split('/')
        .filter(|c| !c.is_empty())
        .map(str::to_string)
        .collect()
}

fn reopen_dir(fd: BorrowedFd<'_>) -> io::Result<OwnedFd> {
    Ok(rustix::fs::openat(
        fd,
        ".",
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?)
}

impl Found {
    /// Opens the entry for reading: a directory (to list) or a regular file. Never follows a
    /// symlink; never blocks on a FIFO.
    pub(crate) fn open_read(&self) -> io::Result<OwnedFd> {
        let name = self.name.as_deref().unwrap_or(".");
        open_read_at(self.dir.as_fd(), name)
    }
}

/// Opens `name` in `dir` for reading without following a link at the last component.
pub(crate) fn open_read_at(dir: BorrowedFd<'_>, name: &str) -> io::Result<OwnedFd> {
    let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NONBLOCK;
    Ok(rustix::fs::openat(dir, name, flags, Mode::empty())?)
}

/// Lists a directory opened by [`open_read_at`], sorted by name (bytes), without `.`/`..`.
/// Names that are not UTF-8 are reported as an error naming the directory.
pub(crate) fn list_dir(fd: &OwnedFd) -> io::Result<Vec<String>> {
    let mut names = Vec::new();
    for ent in rustix::fs::Dir::read_from(fd)? {
        let ent = ent?;
        let b = ent.file_name().to_bytes();
        if b == b"." || b == b".." {
            continue;
        }
        match std::str::from_utf8(b) {
            Ok(s) => names.push(s.to_string()),
            Err(_) => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("file name is not UTF-8: {}", String::from_utf8_lossy(b)),
                ));
            }
        }
    }
    names.sort();
    Ok(names)
}

/// `lstat` of `name` in `dir`.
pub(crate) fn lstat_at(dir: BorrowedFd<'_>, name: &str) -> io::Result<Meta> {
    Ok(Meta::from_stat(&rustix::fs::statat(
        dir,
        name,
        AtFlags::SYMLINK_NOFOLLOW,
    )?))
}

/// `readlinkat` as a string.
pub(crate) fn readlink_at(dir: BorrowedFd<'_>, name: &str) -> io::Result<String> {
    let t: CString = rustix::fs::readlinkat(dir, name, Vec::new())?;
    Ok(t.to_string_lossy().into_owned())
}

/// Copies all of `src` into `dst` (both regular files), with `copy_file_range` (reflink or
/// in-kernel copy) first and a read/write loop when the kernel or filesystems refuse.
pub(crate) fn copy_contents(src: &OwnedFd, dst: &OwnedFd, size: u64) -> io::Result<()> {
    let mut left = size;
    let mut kernel_ok = true;
    while left > 0 && kernel_ok {
        let chunk = left.min(1 << 30) as usize;
        match rustix::fs::copy_file_range(src, None, dst, None, chunk) {
            Ok(0) => break, // file shrank: copy what is there
            Ok(n) => left -= n as u64,
            Err(e)
                if e == rustix::io::Errno::XDEV
                    || e == rustix::io::Errno::NOSYS
                    || e == rustix::io::Errno::INVAL
                    || e == rustix::io::Errno::OPNOTSUPP =>
            {
                kernel_ok = false
            }
            Err(e) => return Err(e.into()),
        }
    }
    if !kernel_ok {
        use std::io::Write;
        let mut r = std::fs::File::from(src.try_clone()?);
        let mut w = std::fs::File::from(dst.try_clone()?);
        std::io::copy(&mut r, &mut w)?;
        w.flush()?;
    }
    Ok(())
}

/// Creates a new regular file `name` in `dir` (`O_CREAT|O_EXCL|O_NOFOLLOW`), mode 0600 until
/// metadata is applied.
pub(crate) fn create_file_at(dir: BorrowedFd<'_>, name: &str) -> io::Result<OwnedFd> {
    Ok(rustix::fs::openat(
        dir,
        name,
        OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o600),
    )?)
}

/// Removes a non-directory entry if present (to be replaced); true when one was removed.
pub(crate) fn remove_nondir_at(dir: BorrowedFd<'_>, name: &str) -> io::Result<bool> {
    match rustix::fs::unlinkat(dir, name, AtFlags::empty()) {
        Ok(()) => Ok(true),
        Err(e) if e == rustix::io::Errno::NOENT => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Sets owner, permission bits and mtime on `name` in `dir` without following a symlink.
/// Symlinks get owner and time only.
pub(crate) fn set_meta_at(
    dir: BorrowedFd<'_>,
    name: &str,
    kind: Kind,
    uid: u32,
    gid: u32,
    perm: u32,
    mtime: (i64, u32),
) -> io::Result<()> {
    let uid = rustix::fs::Uid::from_raw(uid);
    let gid = rustix::fs::Gid::from_raw(gid);
    let times = Timestamps {
        last_access: Timespec {
            tv_sec: mtime.0,
            tv_nsec: mtime.1 as _,
        },
        last_modification: Timespec {
            tv_sec: mtime.0,
            tv_nsec: mtime.1 as _,
        },
    };
    match kind {
        Kind::Symlink => {
            rustix::fs::chownat(dir, name, Some(uid), Some(gid), AtFlags::SYMLINK_NOFOLLOW)?;
        }
        Kind::File | Kind::Dir => {
            let fd = rustix::fs::openat(
                dir,
                name,
                OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NONBLOCK,
                Mode::empty(),
            )?;
            rustix::fs::fchown(&fd, Some(uid), Some(gid))?;
            rustix::fs::fchmod(&fd, Mode::from_raw_mode(perm as _))?;
        }
        _ => {
            // FIFOs and devices: never opened (that could block or touch hardware); the
            // entry was just created by us and is not a symlink.
            rustix::fs::chownat(dir, name, Some(uid), Some(gid), AtFlags::SYMLINK_NOFOLLOW)?;
            rustix::fs::chmodat(dir, name, Mode::from_raw_mode(perm as _), AtFlags::empty())?;
        }
    }
    rustix::fs::utimensat(dir, name, &times, AtFlags::SYMLINK_NOFOLLOW)?;
    Ok(())
}

/// Makes a directory `name` in `dir` (mode 0700 until metadata is applied); Ok(false) when a
/// directory is already there.
pub(crate) fn mkdir_at(dir: BorrowedFd<'_>, name: &str) -> io::Result<bool> {
    match rustix::fs::mkdirat(dir, name, Mode::from_raw_mode(0o700)) {
        Ok(()) => Ok(true),
        Err(e) if e == rustix::io::Errno::EXIST => {
            let m = lstat_at(dir, name)?;
            if m.kind == Kind::Dir {
                Ok(false)
            } else {
                // a file or link we wrote earlier in this layer: a directory replaces it
                rustix::fs::unlinkat(dir, name, AtFlags::empty())?;
                rustix::fs::mkdirat(dir, name, Mode::from_raw_mode(0o700))?;
                Ok(true)
            }
        }
        Err(e) => Err(e.into()),
    }
}

/// Creates a device node or FIFO.
pub(crate) fn mknod_at(dir: BorrowedFd<'_>, name: &str, m: &Meta) -> io::Result<()> {
    let ft = match m.kind {
        Kind::Fifo => FileType::Fifo,
        Kind::Char => FileType::CharacterDevice,
        Kind::Block => FileType::BlockDevice,
        _ => {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "not a special file",
            ));
        }
    };
    rustix::fs::mknodat(dir, name, ft, Mode::from_raw_mode(m.perm as _), m.rdev as _)?;
    Ok(())
}

/// Opens the directory at canonical components `comps` below `root` as an `O_PATH` fd,
/// walking without following any link (the components are already canonical).
pub(crate) fn open_dir_nofollow(root: &Root, comps: &[String]) -> io::Result<OwnedFd> {
    let mut cur = reopen_dir(root.fd())?;
    for c in comps {
        cur = rustix::fs::openat(
            &cur,
            c.as_str(),
            OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
    }
    Ok(cur)
}

/// Copies extended attributes from `src` to `dst` (both open files), after ownership is set
/// (a chown clears `security.capability`). Overlay-private (`trusted.overlay.*`) and SELinux
/// labels are never copied; a filesystem without xattr support is not an error.
pub(crate) fn copy_xattrs(src: &OwnedFd, dst: &OwnedFd) -> io::Result<()> {
    let unsupported = |e: rustix::io::Errno| {
        e == rustix::io::Errno::NOTSUP
            || e == rustix::io::Errno::PERM
            || e == rustix::io::Errno::NODATA
    };
    let n = match rustix::fs::flistxattr_query(src) {
        Ok(0) => return Ok(()),
        Ok(n) => n,
        Err(e) if unsupported(e) => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    let mut list = vec![0u8; n];
    let len = rustix::fs::flistxattr(src, &mut list[..])?;
    for name in list[..len.min(n)]
        .split(|b| *b == 0)
        .filter(|n| !n.is_empty())
    {
        let Ok(name) = std::str::from_utf8(name) else {
            continue;
        };
        if name.starts_with("trusted.overlay.") || name == "security.selinux" {
            continue;
        }
        let vn = match rustix::fs::fgetxattr_query(src, name) {
            Ok(v) => v,
            Err(e) if unsupported(e) => continue,
            Err(e) => return Err(e.into()),
        };
        let mut v = vec![0u8; vn];
        let l = rustix::fs::fgetxattr(src, name, &mut v[..])?;
        match rustix::fs::fsetxattr(dst, name, &v[..l.min(vn)], rustix::fs::XattrFlags::empty()) {
            Ok(()) => {}
            Err(e) if unsupported(e) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn resolve_clamps_and_rejects_loops() {
        let t = tempfile::tempdir().unwrap();
        let r = t.path().join("root");
        std::fs::create_dir_all(r.join("a/b")).unwrap();
        std::fs::write(r.join("a/b/f"), "f").unwrap();
        symlink("/a", r.join("abs")).unwrap();
        symlink("../../../../a/b", r.join("a/rel")).unwrap();
        symlink("loop2", r.join("loop1")).unwrap();
        symlink("loop1", r.join("loop2")).unwrap();
        let root = Root::open(&r).unwrap();
        let f = root.resolve("../../abs/b/f", true).unwrap();
        assert_eq!(f.comps, ["a", "b", "f"]);
        let f = root.resolve("a/rel/f", true).unwrap();
        assert_eq!(f.comps, ["a", "b", "f"]);
        let f = root.resolve("abs", false).unwrap();
        assert_eq!(f.meta.map(|m| m.kind), Some(Kind::Symlink));
        let e = root.resolve("loop1", true).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ELOOP));
        let e = root.resolve("a/b/f/x", true).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ENOTDIR));
        assert_eq!(root.canonical("/abs/new/../x/y").unwrap(), ["a", "x", "y"]);
        assert_eq!(root.canonical("/..").unwrap(), Vec::<String>::new());
        let f = root.resolve("", true).unwrap();
        assert!(f.name.is_none() && f.comps.is_empty());
    }
}
