//! fd-based file operations for COPY/ADD on untrusted trees: listing, reading, creating and
//! setting metadata on one entry named in a directory fd, never following a link at it.
//!
//! Paths are resolved in-root by [`crate::fsroot::Root`] (the clamping walk); what is here
//! works on the directory fd and name that walk hands back. Metadata calls never follow links.

pub(crate) use crate::fsroot::{Kind, Meta};

use crate::fsroot::Found;
use rustix::fs::{AtFlags, FileType, Mode, OFlags, Timespec, Timestamps};
use std::ffi::CString;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

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
            crate::userns::chown_result(rustix::fs::chownat(
                dir,
                name,
                Some(uid),
                Some(gid),
                AtFlags::SYMLINK_NOFOLLOW,
            ))?;
        }
        Kind::File | Kind::Dir => {
            let fd = rustix::fs::openat(
                dir,
                name,
                OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NONBLOCK,
                Mode::empty(),
            )?;
            crate::userns::chown_result(rustix::fs::fchown(&fd, Some(uid), Some(gid)))?;
            rustix::fs::fchmod(&fd, Mode::from_raw_mode(perm as _))?;
        }
        _ => {
            // FIFOs and devices: never opened (that could block or touch hardware); the
            // entry was just created by us and is not a symlink.
            crate::userns::chown_result(rustix::fs::chownat(
                dir,
                name,
                Some(uid),
                Some(gid),
                AtFlags::SYMLINK_NOFOLLOW,
            ))?;
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
