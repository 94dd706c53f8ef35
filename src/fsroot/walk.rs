//! The clamping walk: resolves a path inside a root one component at a time from directory
//! fds, so a caller learns what `openat2` alone does not tell: the canonical in-root
//! components of what was found, the directory and name a dangling final symlink points at,
//! and the canonical form of a path whose tail does not exist yet.
//!
//! `..` stops at the root, a symlink is read with `readlinkat` and its target re-walked from
//! the root (absolute) or from its directory (relative): the same answers as
//! `RESOLVE_IN_ROOT`. Each directory is opened through [`super::open`] with `O_NOFOLLOW`, so
//! nothing outside the root is ever opened or stat'ed, whatever the tree contains.

use rustix::fs::{AtFlags, FileType, OFlags};
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
        Ok(Root {
            fd: super::open_root(path)?,
        })
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
            (Some(n), Some(m)) if m.kind == Kind::Dir => open_subdir(f.dir.as_fd(), n),
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
            let fd = open_subdir(cur, &comp)?;
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

/// A new `O_PATH` fd on the directory `fd`.
fn reopen_dir(fd: BorrowedFd<'_>) -> io::Result<OwnedFd> {
    Ok(super::open(fd, ".", OFlags::PATH | OFlags::DIRECTORY)?)
}

/// Opens the directory `name` (one component, never a link) in `dir` as an `O_PATH` fd.
fn open_subdir(dir: BorrowedFd<'_>, name: &str) -> io::Result<OwnedFd> {
    Ok(super::open(
        dir,
        name,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW,
    )?)
}

/// Opens the directory at canonical components `comps` below `root` as an `O_PATH` fd,
/// walking without following any link (the components are already canonical).
pub(crate) fn open_dir_nofollow(root: &Root, comps: &[String]) -> io::Result<OwnedFd> {
    let mut cur = reopen_dir(root.fd())?;
    for c in comps {
        cur = open_subdir(cur.as_fd(), c)?;
    }
    Ok(cur)
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
