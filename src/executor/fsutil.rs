//! In-root file operations on untrusted trees (a rootfs that came from an image): every path
//! is resolved by [`crate::fsroot`] (`openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)`), so
//! absolute symlinks and `..` are clamped inside the root and never reach the host.

use crate::fsroot::{self, fd_path, open_root};
use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use rustix::fs::{Mode, OFlags};
use std::ffi::OsStr;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path};

/// Opens `path` (absolute or relative, always inside `root`) with `flags`: [`fsroot::open`]
/// with an `io::Error`.
pub(crate) fn open_in_root(root: impl AsFd, path: &str, flags: OFlags) -> io::Result<OwnedFd> {
    Ok(fsroot::open(root, path, flags)?)
}

/// Normal components of an in-root path (`.` and leading `/` dropped; `..` kept).
pub(crate) fn components(path: &str) -> Vec<String> {
    Path::new(path)
        .components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_string_lossy().into_owned()),
            Component::ParentDir => Some("..".into()),
            _ => None,
        })
        .collect()
}

/// What [`ensure_in_root`] did for one path component.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Created {
    /// In-root path as given (e.g. `/etc/hosts`).
    pub path: String,
    pub dev: u64,
    pub ino: u64,
    pub is_dir: bool,
}

/// Makes sure `path` exists inside `root`: missing parent dirs are created (0755), and the
/// last component as a dir (`leaf_dir`) or an empty file (0644). Returns what it created,
/// parents first.
pub(crate) fn ensure_in_root(
    root: &OwnedFd,
    path: &str,
    leaf_dir: bool,
) -> io::Result<Vec<Created>> {
    let comps: Vec<Vec<u8>> = components(path)
        .into_iter()
        .map(String::into_bytes)
        .collect();
    let mut created = Vec::new();
    let mut create = |pfd: BorrowedFd<'_>, name: &[u8], last: bool| -> io::Result<()> {
        let c = OsStr::from_bytes(name);
        let is_dir = !last || leaf_dir;
        if is_dir {
            rustix::fs::mkdirat(pfd, c, Mode::from_raw_mode(0o755))?;
            // mkdir honours the umask: set the mode BuildKit's stubs have.
            let fd = rustix::fs::openat(
                pfd,
                c,
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            )?;
            rustix::fs::fchmod(&fd, Mode::from_raw_mode(0o755))?;
        } else {
            let fd = rustix::fs::openat(
                pfd,
                c,
                OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::WRONLY | OFlags::CLOEXEC,
                Mode::from_raw_mode(0o644),
            )?;
            rustix::fs::fchmod(&fd, Mode::from_raw_mode(0o644))?;
        }
        let st = rustix::fs::statat(pfd, c, rustix::fs::AtFlags::SYMLINK_NOFOLLOW)?;
        // Record the real in-root path (after symlinks), for the removal later.
        let real_parent = fd_path(pfd)?;
        let root_path = fd_path(root)?;
        let rel = real_parent
            .strip_prefix(&root_path)
            .unwrap_or(Path::new(""));
        let real = format!("/{}", rel.join(c).to_string_lossy().trim_start_matches('/'));
        created.push(Created {
            path: real,
            dev: st.st_dev,
            ino: st.st_ino,
            is_dir,
        });
        Ok(())
    };
    fsroot::mkdir_all(root.as_fd(), &comps, OFlags::PATH, &mut create)?;
    Ok(created)
}

/// An image symlink at a top-level kernel mount point (`/dev`, `/proc`, `/sys`), swapped for an
/// empty directory for the run: the OCI runtime fills `/dev` (`/dev/fd`, `/dev/ptmx`, …) through
/// host paths, so a `/dev -> /some/host/dir` link would lead it out of the rootfs.
#[derive(Debug, Clone)]
pub(crate) struct SwappedLink {
    pub name: String,
    pub target: std::ffi::OsString,
    pub uid: u32,
    pub gid: u32,
    pub stub: Created,
}

/// Replaces the symlink `/name` (top level of `root`) with an empty 0755 directory; `None` when
/// `/name` is not a symlink. [`restore_symlink`] puts the link back after the run.
pub(crate) fn swap_symlink_for_dir(root: &OwnedFd, name: &str) -> io::Result<Option<SwappedLink>> {
    use rustix::fs::{AtFlags, FileType};
    let st = match rustix::fs::statat(root, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) => st,
        Err(rustix::io::Errno::NOENT) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    if FileType::from_raw_mode(st.st_mode) != FileType::Symlink {
        return Ok(None);
    }
    let target = rustix::fs::readlinkat(root, name, Vec::new())?;
    let target: std::ffi::OsString = std::os::unix::ffi::OsStringExt::from_vec(target.into_bytes());
    rustix::fs::unlinkat(root, name, AtFlags::empty())?;
    rustix::fs::mkdirat(root, name, Mode::from_raw_mode(0o755))?;
    let fd = rustix::fs::openat(
        root,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    rustix::fs::fchmod(&fd, Mode::from_raw_mode(0o755))?;
    let stub = rustix::fs::fstat(&fd)?;
    Ok(Some(SwappedLink {
        name: name.to_string(),
        target,
        uid: st.st_uid,
        gid: st.st_gid,
        stub: Created {
            path: format!("/{name}"),
            dev: stub.st_dev,
            ino: stub.st_ino,
            is_dir: true,
        },
    }))
}

/// Puts back a link [`swap_symlink_for_dir`] replaced, when its stub is still the same empty
/// directory. Returns whether it did.
pub(crate) fn restore_symlink(root: &OwnedFd, s: &SwappedLink) -> io::Result<bool> {
    if !remove_if_stub(root, &s.stub)? {
        return Ok(false);
    }
    rustix::fs::symlinkat(s.target.as_os_str(), root, s.name.as_str())?;
    rustix::fs::chownat(
        root,
        s.name.as_str(),
        Some(rustix::fs::Uid::from_raw(s.uid)),
        Some(rustix::fs::Gid::from_raw(s.gid)),
        rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
    )?;
    Ok(true)
}

/// True when `path`, resolved in-root (symlinks followed, clamped), is the top-level `top`
/// directory or below it.
pub(crate) fn lands_in(root: &OwnedFd, path: &str, top: &str) -> io::Result<bool> {
    let fd = open_in_root(root, path, OFlags::PATH)?;
    let real = fd_path(&fd)?;
    let base = fd_path(root)?;
    Ok(real
        .strip_prefix(&base)
        .ok()
        .and_then(|rel| rel.components().next())
        .is_some_and(|c| c.as_os_str() == top))
}

/// Removes an entry that [`ensure_in_root`] created, only if it is still the same inode and
/// still empty (an empty file or an empty dir). Returns whether it was removed.
pub(crate) fn remove_if_stub(root: &OwnedFd, c: &Created) -> io::Result<bool> {
    let comps = components(&c.path);
    let (pfd, name) = match fsroot::open_parent(root, &comps) {
        Ok(Some((fd, name))) => (fd, OsStr::from_bytes(name)),
        Ok(None) | Err(rustix::io::Errno::NOENT) => return Ok(false),
        Err(e) => return Err(e.into()),
    };
    let st = match rustix::fs::statat(&pfd, name, rustix::fs::AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) => st,
        Err(rustix::io::Errno::NOENT) => return Ok(false),
        Err(e) => return Err(e.into()),
    };
    if st.st_ino != c.ino || st.st_dev != c.dev {
        return Ok(false);
    }
    let ft = rustix::fs::FileType::from_raw_mode(st.st_mode);
    if c.is_dir && ft == rustix::fs::FileType::Directory {
        match rustix::fs::unlinkat(&pfd, name, rustix::fs::AtFlags::REMOVEDIR) {
            Ok(()) => Ok(true),
            Err(rustix::io::Errno::NOTEMPTY) | Err(rustix::io::Errno::EXIST) => Ok(false),
            Err(e) => Err(e.into()),
        }
    } else if !c.is_dir && ft == rustix::fs::FileType::RegularFile && st.st_size == 0 {
        rustix::fs::unlinkat(&pfd, name, rustix::fs::AtFlags::empty())?;
        Ok(true)
    } else {
        Ok(false)
    }
}

/// Reads a regular file inside `root` of at most `max` bytes; `Ok(None)` when it is missing.
pub(crate) fn read_regular_in_root(
    root: &Path,
    path: &str,
    max: u64,
) -> Result<Option<Vec<u8>>, String> {
    use std::io::Read;
    let rfd = open_root(root).map_err(|e| e.to_string())?;
    let fd = match open_in_root(&rfd, path, OFlags::RDONLY | OFlags::NONBLOCK) {
        Ok(fd) => fd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.to_string()),
    };
    let st = rustix::fs::fstat(&fd).map_err(|e| e.to_string())?;
    if rustix::fs::FileType::from_raw_mode(st.st_mode) != rustix::fs::FileType::RegularFile {
        return Err("not a regular file".into());
    }
    if st.st_size as u64 > max {
        return Err(format!("larger than {max} bytes"));
    }
    let mut buf = Vec::new();
    std::fs::File::from(fd)
        .take(max + 1)
        .read_to_end(&mut buf)
        .map_err(|e| e.to_string())?;
    if buf.len() as u64 > max {
        return Err(format!("larger than {max} bytes"));
    }
    Ok(Some(buf))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ensure_stays_in_root_and_removes_only_stubs() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("root");
        let outside = t.path().join("outside");
        std::fs::create_dir_all(root.join("etc")).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        // An absolute symlink that would escape if followed on the host.
        std::os::unix::fs::symlink(&outside, root.join("esc")).unwrap();
        let rfd = open_root(&root).unwrap();
        let made = ensure_in_root(&rfd, "/esc/a/b", true).unwrap();
        assert!(
            root.join(outside.strip_prefix("/").unwrap())
                .join("a/b")
                .is_dir()
        );
        assert!(!outside.join("a").exists(), "escaped the root");
        // Every missing component of <outside>, then a and b, created in-root (clamped).
        assert_eq!(made.len(), outside.components().count() - 1 + 2);
        assert!(made.iter().all(|c| c.is_dir));

        let made = ensure_in_root(&rfd, "/etc/hosts", false).unwrap();
        assert_eq!(made.len(), 1);
        std::fs::write(root.join("etc/hosts"), "x").unwrap();
        assert!(
            !remove_if_stub(&rfd, &made[0]).unwrap(),
            "non-empty file removed"
        );
        std::fs::write(root.join("etc/hosts"), "").unwrap();
        assert!(remove_if_stub(&rfd, &made[0]).unwrap());
        assert!(!root.join("etc/hosts").exists());
    }

    #[test]
    fn lands_in_follows_symlinks_in_root() {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(t.path().join("proc/self/fd/3")).unwrap();
        std::fs::create_dir_all(t.path().join("work")).unwrap();
        std::os::unix::fs::symlink("/proc/self/fd", t.path().join("fdlink")).unwrap();
        std::os::unix::fs::symlink("../../proc", t.path().join("work/up")).unwrap();
        let root = open_root(t.path()).unwrap();
        assert!(lands_in(&root, "/fdlink/3", "proc").unwrap());
        assert!(lands_in(&root, "/work/up/self", "proc").unwrap());
        assert!(lands_in(&root, "/proc", "proc").unwrap());
        assert!(!lands_in(&root, "/work", "proc").unwrap());
        assert!(!lands_in(&root, "/", "proc").unwrap());
    }

    #[test]
    fn reads_only_regular_small_files() {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(t.path().join("etc")).unwrap();
        std::fs::write(t.path().join("etc/passwd"), "root:x:0:0::/root:/bin/sh\n").unwrap();
        std::os::unix::fs::symlink("/etc/shadow", t.path().join("etc/group")).unwrap();
        assert!(
            read_regular_in_root(t.path(), "/etc/passwd", 100)
                .unwrap()
                .is_some()
        );
        assert!(read_regular_in_root(t.path(), "/etc/passwd", 5).is_err());
        // The symlink is clamped in-root: /etc/shadow inside the root does not exist.
        assert_eq!(
            read_regular_in_root(t.path(), "/etc/group", 100).unwrap(),
            None
        );
        assert!(read_regular_in_root(t.path(), "/etc", 100).is_err());
    }
}
