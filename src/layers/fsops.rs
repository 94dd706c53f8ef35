//! In-root filesystem operations for the extractor: every lookup goes through a root
//! directory fd with [`crate::fsroot`] (`openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)`),
//! so `..` and absolute symlinks are clamped at the root; every change is made relative to a
//! resolved parent fd with a single-component name and never follows a final symlink;
//! metadata is set through an `O_PATH | O_NOFOLLOW` fd (via its `/proc/self/fd/N` handle) or
//! an `AT_SYMLINK_NOFOLLOW` call.

use crate::fsroot;
use rustix::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use rustix::fs::{AtFlags, Mode, OFlags, Timespec, Timestamps};
use rustix::io::Errno;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;

fn os(b: &[u8]) -> &OsStr {
    OsStr::from_bytes(b)
}

/// Resolves a directory inside the root (symlinks followed, clamped in the root).
pub(crate) fn resolve_dir(root: BorrowedFd<'_>, comps: &[Vec<u8>]) -> Result<OwnedFd, Errno> {
    fsroot::open(root, fsroot::join(comps), OFlags::PATH | OFlags::DIRECTORY)
}

/// Resolves a path inside the root without following its last component.
pub(crate) fn resolve_nofollow(root: BorrowedFd<'_>, comps: &[Vec<u8>]) -> Result<OwnedFd, Errno> {
    fsroot::open(root, fsroot::join(comps), OFlags::PATH | OFlags::NOFOLLOW)
}

/// Resolves a directory inside the root, creating missing components (mode 0755, root-owned,
/// as containerd does for parents a layer does not list); a dangling symlink on the way gets
/// its target created in-root (see [`fsroot::mkdir_all`]).
pub(crate) fn ensure_dir(root: BorrowedFd<'_>, comps: &[Vec<u8>]) -> Result<OwnedFd, Errno> {
    fsroot::mkdir_all(
        root,
        comps,
        OFlags::PATH | OFlags::DIRECTORY,
        &mut |dir, name, _| match rustix::fs::mkdirat(dir, os(name), Mode::from_raw_mode(0o755)) {
            Ok(()) | Err(Errno::EXIST) => Ok(()),
            Err(e) => Err(e),
        },
    )
}

/// `lstat` of `name` in `dir`, `None` when absent.
pub(crate) fn lstat(dir: BorrowedFd<'_>, name: &[u8]) -> Result<Option<rustix::fs::Stat>, Errno> {
    match rustix::fs::statat(dir, os(name), AtFlags::SYMLINK_NOFOLLOW) {
        Ok(s) => Ok(Some(s)),
        Err(Errno::NOENT) => Ok(None),
        Err(e) => Err(e),
    }
}

pub(crate) fn is_dir(st: &rustix::fs::Stat) -> bool {
    rustix::fs::FileType::from_raw_mode(st.st_mode) == rustix::fs::FileType::Directory
}

pub(crate) fn is_reg(st: &rustix::fs::Stat) -> bool {
    rustix::fs::FileType::from_raw_mode(st.st_mode) == rustix::fs::FileType::RegularFile
}

/// Removes `name` in `dir` whatever it is, never following a symlink.
pub(crate) fn remove_all(dir: BorrowedFd<'_>, name: &[u8]) -> Result<(), Errno> {
    let Some(st) = lstat(dir, name)? else {
        return Ok(());
    };
    if !is_dir(&st) {
        return rustix::fs::unlinkat(dir, os(name), AtFlags::empty());
    }
    let sub = rustix::fs::openat(
        dir,
        os(name),
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    loop {
        // Re-read after each batch of removals: a directory iterator is not stable under unlink.
        let mut names = Vec::new();
        let mut it = rustix::fs::Dir::read_from(&sub)?;
        while let Some(ent) = it.read() {
            let ent = ent?;
            let n = ent.file_name().to_bytes();
            if n != b"." && n != b".." {
                names.push(n.to_vec());
            }
            if names.len() >= 1024 {
                break;
            }
        }
        if names.is_empty() {
            break;
        }
        for n in names {
            remove_all(sub.as_fd(), &n)?;
        }
    }
    drop(sub);
    rustix::fs::unlinkat(dir, os(name), AtFlags::REMOVEDIR)
}

fn proc_path(fd: BorrowedFd<'_>) -> String {
    format!("/proc/self/fd/{}", fd.as_raw_fd())
}

fn proc_child(dir: BorrowedFd<'_>, name: &[u8]) -> Vec<u8> {
    let mut p = proc_path(dir).into_bytes();
    p.push(b'/');
    p.extend_from_slice(name);
    p
}

/// Metadata to set on one extracted inode.
pub(crate) struct Meta<'a> {
    pub uid: u32,
    pub gid: u32,
    pub mode: u32,
    pub xattrs: &'a [(Vec<u8>, Vec<u8>)],
}

/// Sets owner, mode and xattrs of `name` in `dir` (never through a symlink; symlinks get
/// owner and xattrs only). Order matters: chown clears setuid bits and file capabilities, so
/// mode and `security.capability` come after it.
pub(crate) fn set_meta(
    dir: BorrowedFd<'_>,
    name: &[u8],
    symlink: bool,
    m: &Meta<'_>,
) -> Result<(), Errno> {
    let uid = Some(rustix::fs::Uid::from_raw(m.uid));
    let gid = Some(rustix::fs::Gid::from_raw(m.gid));
    if symlink {
        crate::userns::chown_result(rustix::fs::chownat(
            dir,
            os(name),
            uid,
            gid,
            AtFlags::SYMLINK_NOFOLLOW,
        ))?;
        let p = proc_child(dir, name);
        for (k, v) in m.xattrs {
            // Symlinks take only trusted.*/security.* xattrs; like containerd, what the
            // filesystem cannot store on a link is skipped rather than failing the layer.
            match rustix::fs::lsetxattr(os(&p), os(k), v, rustix::fs::XattrFlags::empty()) {
                Ok(()) | Err(Errno::NOTSUP | Errno::PERM) => {}
                Err(e) => return Err(e),
            }
        }
        return Ok(());
    }
    let fd = rustix::fs::openat(
        dir,
        os(name),
        OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let st = rustix::fs::fstat(&fd)?;
    if rustix::fs::FileType::from_raw_mode(st.st_mode) == rustix::fs::FileType::Symlink {
        return Err(Errno::LOOP);
    }
    set_meta_fd(fd.as_fd(), m)
}

/// Like [`set_meta`], on an `O_PATH` fd of a non-symlink.
pub(crate) fn set_meta_fd(fd: BorrowedFd<'_>, m: &Meta<'_>) -> Result<(), Errno> {
    crate::userns::chown_result(rustix::fs::chownat(
        fd,
        "",
        Some(rustix::fs::Uid::from_raw(m.uid)),
        Some(rustix::fs::Gid::from_raw(m.gid)),
        AtFlags::EMPTY_PATH,
    ))?;
    let p = proc_path(fd);
    rustix::fs::chmod(p.as_str(), Mode::from_raw_mode(m.mode & 0o7777))?;
    for (k, v) in m.xattrs {
        // A filesystem without xattr support (ENOTSUP) loses them, as with containerd.
        match rustix::fs::setxattr(p.as_str(), os(k), v, rustix::fs::XattrFlags::empty()) {
            Ok(()) | Err(Errno::NOTSUP) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Owner, mode, xattrs and times of a regular file through the fd it was written with
/// (no path lookups at all).
pub(crate) fn set_meta_open_file(
    fd: BorrowedFd<'_>,
    m: &Meta<'_>,
    sec: i64,
    nsec: u32,
) -> Result<(), Errno> {
    crate::userns::chown_result(rustix::fs::fchown(
        fd,
        Some(rustix::fs::Uid::from_raw(m.uid)),
        Some(rustix::fs::Gid::from_raw(m.gid)),
    ))?;
    rustix::fs::fchmod(fd, Mode::from_raw_mode(m.mode & 0o7777))?;
    for (k, v) in m.xattrs {
        match rustix::fs::fsetxattr(fd, os(k), v, rustix::fs::XattrFlags::empty()) {
            Ok(()) | Err(Errno::NOTSUP) => {}
            Err(e) => return Err(e),
        }
    }
    rustix::fs::futimens(fd, &times(sec, nsec))
}

fn times(sec: i64, nsec: u32) -> Timestamps {
    let t = Timespec {
        tv_sec: sec,
        tv_nsec: i64::from(nsec),
    };
    Timestamps {
        last_access: t,
        last_modification: t,
    }
}

/// Sets atime and mtime of `name` in `dir` without following it.
pub(crate) fn set_times(
    dir: BorrowedFd<'_>,
    name: &[u8],
    sec: i64,
    nsec: u32,
) -> Result<(), Errno> {
    rustix::fs::utimensat(dir, os(name), &times(sec, nsec), AtFlags::SYMLINK_NOFOLLOW)
}

/// Sets atime and mtime through an `O_PATH` fd.
pub(crate) fn set_times_fd(fd: BorrowedFd<'_>, sec: i64, nsec: u32) -> Result<(), Errno> {
    rustix::fs::utimensat(
        rustix::fs::CWD,
        proc_path(fd).as_str(),
        &times(sec, nsec),
        AtFlags::empty(),
    )
}

/// Sets one xattr through an `O_PATH` fd.
pub(crate) fn set_xattr_fd(fd: BorrowedFd<'_>, name: &str, value: &[u8]) -> Result<(), Errno> {
    rustix::fs::setxattr(
        proc_path(fd).as_str(),
        name,
        value,
        rustix::fs::XattrFlags::empty(),
    )
}
