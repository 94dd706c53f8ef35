//! The one in-root path resolver: every path under an untrusted root (a base-image rootfs, a
//! build context, a layer being extracted or written, a cache or bind-mount source) is opened
//! here, so `..` and absolute symlinks are clamped at the root and never reach the host.
//!
//! Two entry points, one syscall underneath:
//! - `open`: one `openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)` with the kernel's EAGAIN
//!   retry; `mkdir_all` builds missing directories on top of it. For callers that want the
//!   kernel to resolve a whole path at once (the extractor, the executor, RUN bind sources).
//! - `Root` (in `walk.rs`): a component-by-component walk for callers that need what `openat2`
//!   does not report: the canonical in-root path of what was found, the directory and name a
//!   dangling final symlink points at, and the canonical form of a path whose tail is missing
//!   (COPY/ADD). Each of its steps opens one component through `open`.

mod walk;

pub(crate) use walk::{Found, Kind, Meta, Root, open_dir_nofollow, split};

use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use rustix::fs::{AtFlags, FileType, Mode, OFlags, ResolveFlags};
use rustix::io::Errno;
use std::borrow::Cow;
use std::ffi::OsStr;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// How every lookup resolves: inside the root, and never through a `/proc` magic link (a
/// `/proc/self/fd/N` or `/proc/self/root` under a root would lead out of it).
const RESOLVE: ResolveFlags = ResolveFlags::IN_ROOT.union(ResolveFlags::NO_MAGICLINKS);

/// How often [`open`] retries an `openat2` the kernel answered with EAGAIN.
const EAGAIN_TRIES: usize = 64;

/// Symlinks [`mkdir_all`] splices while creating one path, as the kernel's own limit (ELOOP).
const MAX_LINK_HOPS: usize = 40;

/// Opens `path` (trusted: chosen by hoist, not by the tree) as a root to resolve paths in.
pub(crate) fn open_root(path: &Path) -> io::Result<OwnedFd> {
    Ok(rustix::fs::open(
        path,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?)
}

/// Opens `path` inside the root `dir` with `flags` (`O_CLOEXEC` added): absolute or relative,
/// `..` and absolute symlinks clamped at `dir`, magic links refused (ELOOP), the last
/// component followed unless `flags` has `O_NOFOLLOW`. An empty path (or `/`) is `dir` itself.
///
/// Every in-root open in hoist goes through here.
pub(crate) fn open(
    dir: impl AsFd,
    path: impl AsRef<[u8]>,
    flags: OFlags,
) -> Result<OwnedFd, Errno> {
    let rel = path.as_ref();
    let start = rel.iter().position(|b| *b != b'/').unwrap_or(rel.len());
    let rel = match &rel[start..] {
        b"" => b".".as_slice(),
        r => r,
    };
    // The kernel answers EAGAIN when a rename or mount anywhere raced a `..` of the walk (it
    // cannot then vouch for staying in the root); the walk is safe to retry.
    let mut tries = 0;
    loop {
        let r = rustix::fs::openat2(
            dir.as_fd(),
            OsStr::from_bytes(rel),
            flags | OFlags::CLOEXEC,
            Mode::empty(),
            RESOLVE,
        );
        tries += 1;
        match r {
            Err(Errno::AGAIN) if tries < EAGAIN_TRIES => continue,
            r => return r,
        }
    }
}

/// Opens the directory holding the last of `comps` inside `root` (resolved like [`open`],
/// links followed in-root) and returns it with that last name, left unresolved for `*at`
/// calls that do not follow it; `None` for no components (the root has no parent in it).
pub(crate) fn open_parent<C: AsRef<[u8]>>(
    root: impl AsFd,
    comps: &[C],
) -> Result<Option<(OwnedFd, &[u8])>, Errno> {
    let Some((name, parents)) = comps.split_last() else {
        return Ok(None);
    };
    let dir = open(root, join(parents), OFlags::PATH | OFlags::DIRECTORY)?;
    Ok(Some((dir, name.as_ref())))
}

/// Joins components with `/`; `.` for none.
pub(crate) fn join(comps: &[impl AsRef<[u8]>]) -> Vec<u8> {
    if comps.is_empty() {
        return b".".to_vec();
    }
    let mut out = Vec::new();
    for (i, c) in comps.iter().enumerate() {
        if i > 0 {
            out.push(b'/');
        }
        out.extend_from_slice(c.as_ref());
    }
    out
}

/// The host path behind an fd (via `/proc/self/fd`), for telling which real directory an
/// in-root path landed on.
pub(crate) fn fd_path(fd: impl AsFd) -> io::Result<PathBuf> {
    let p = format!(
        "/proc/self/fd/{}",
        rustix::fd::AsRawFd::as_raw_fd(&fd.as_fd())
    );
    std::fs::read_link(p)
}

/// Opens `comps` inside `root` with `flags`, creating what is missing on the way: for each
/// missing component, `create(parent, name, is_last)` makes it (the caller chooses what: a
/// directory, or a file for the last one). A component that is a dangling symlink gets its
/// target created in-root instead, as containerd's extractor does (`var/run -> /run` with no
/// `/run` yet still takes `var/run/x`); resolution stays in-root, so this only ever creates
/// entries under the root. Intermediate components are opened as directories.
pub(crate) fn mkdir_all<E: From<Errno>>(
    root: BorrowedFd<'_>,
    comps: &[Vec<u8>],
    flags: OFlags,
    create: &mut impl FnMut(BorrowedFd<'_>, &[u8], bool) -> Result<(), E>,
) -> Result<OwnedFd, E> {
    let mut comps = Cow::Borrowed(comps);
    let mut hops = 0;
    'splice: loop {
        match open(root, join(&comps), flags) {
            Err(Errno::NOENT) => {}
            other => return Ok(other?),
        }
        let dir_flags = OFlags::PATH | OFlags::DIRECTORY;
        let mut fd = open(root, ".", dir_flags)?;
        for i in 0..comps.len() {
            let name = OsStr::from_bytes(&comps[i]);
            let last = i + 1 == comps.len();
            let want = if last { flags } else { dir_flags };
            match open(root, join(&comps[..=i]), want) {
                Ok(next) => {
                    fd = next;
                    continue;
                }
                Err(Errno::NOENT) => {}
                Err(e) => return Err(e.into()),
            }
            let st = match rustix::fs::statat(&fd, name, AtFlags::SYMLINK_NOFOLLOW) {
                Ok(st) => Some(st),
                Err(Errno::NOENT) => None,
                Err(e) => return Err(e.into()),
            };
            if st.is_some_and(|st| FileType::from_raw_mode(st.st_mode) == FileType::Symlink) {
                if hops >= MAX_LINK_HOPS {
                    return Err(Errno::LOOP.into());
                }
                hops += 1;
                // Splice the link's target in place of the link and start over: absolute
                // targets restart at the root, relative ones at the link's directory (`..` is
                // resolved by `open`).
                let target = rustix::fs::readlinkat(&fd, name, Vec::new())?;
                let target = target.as_bytes();
                let mut next: Vec<Vec<u8>> = if target.starts_with(b"/") {
                    Vec::new()
                } else {
                    comps[..i].to_vec()
                };
                next.extend(
                    target
                        .split(|b| *b == b'/')
                        .filter(|c| !c.is_empty() && *c != b".")
                        .map(<[u8]>::to_vec),
                );
                next.extend(comps[i + 1..].iter().cloned());
                comps = Cow::Owned(next);
                continue 'splice;
            }
            create(fd.as_fd(), &comps[i], last)?;
            fd = open(root, join(&comps[..=i]), want)?;
        }
        return Ok(fd);
    }
}

#[cfg(test)]
mod tests;
