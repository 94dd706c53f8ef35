//! `RUN --mount` and the `/etc` files without mount(2): each mount's content is put at its
//! target in the run's rootfs before the run and taken out after, so the diff never sees it.
//!
//! What the image had at a target (or the stub [`prepare`](crate::executor::prepare) made) is
//! renamed aside first, in the same filesystem, and renamed back after: same inode, so the
//! diff sees no change. Then:
//! - a bind source (a secret file, a context or stage path, a heredoc script, an `/etc` file)
//!   is copied in; "read-only" is not enforced, but the copy is thrown away after the run, so
//!   the source never changes;
//! - a writable bind (a cache mount) is copied in and, after the run, copied back over the
//!   source: parallel runs sharing one cache see each other's writes only at the end;
//! - a tmpfs is an empty dir (mode 1777);
//! - a socket (the ssh agent) is hard-linked, which needs the same filesystem.
//!
//! The target's parent is resolved in-root ([`crate::fsroot`]), and everything is done
//! through that directory's `/proc/self/fd` path: a symlink in the image never redirects it.

use super::tree::{Links, clear_dir, copy_tree, make_entry, remove_any};
use crate::executor::{ExecutorError, Mount, Result};
use crate::executor::{MountKind, fsutil, io_err};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// One mount put in place, to take out after the run.
#[derive(Debug)]
pub(super) struct Placed {
    /// The target's parent dir, held open (its `/proc/self/fd` path is used).
    _parent: OwnedFd,
    /// `/proc/self/fd/<parent>/<name>`.
    at: PathBuf,
    /// Where the original entry waits, if there was one.
    aside: Option<PathBuf>,
    /// A cache dir to copy the run's writes back to.
    write_back: Option<PathBuf>,
    /// In-root target, for errors.
    target: String,
}

/// Puts `mounts` in place in the rootfs `rfd` (shallow targets first), keeping originals in
/// `aside_dir` (same filesystem as the rootfs). Returns them in the order to undo (deepest
/// first). On an error, what was placed is taken out again.
pub(super) fn place_all(rfd: &OwnedFd, aside_dir: &Path, mounts: &[Mount]) -> Result<Vec<Placed>> {
    let mut order: Vec<&Mount> = mounts.iter().collect();
    order.sort_by_key(|m| fsutil::components(&m.target).len());
    let mut placed: Vec<Placed> = Vec::new();
    for (i, m) in order.into_iter().enumerate() {
        match place(rfd, &aside_dir.join(i.to_string()), m) {
            Ok(p) => placed.push(p),
            Err(e) => {
                placed.reverse();
                let _ = undo_all(placed);
                return Err(e);
            }
        }
    }
    placed.reverse();
    Ok(placed)
}

fn place(rfd: &OwnedFd, aside: &Path, m: &Mount) -> Result<Placed> {
    let comps = fsutil::components(&m.target);
    let bad =
        |what: &str| ExecutorError::InvalidSpec(format!("mount target {:?}: {what}", m.target));
    let (parent, name) = match crate::fsroot::open_parent(rfd, &comps) {
        Ok(Some((fd, name))) => (fd, std::ffi::OsStr::from_bytes(name).to_os_string()),
        Ok(None) => return Err(bad("the root cannot be a mount target here")),
        Err(e) => {
            return Err(ExecutorError::Io {
                path: m.target.clone().into(),
                source: e.into(),
            });
        }
    };
    let at = PathBuf::from(format!("/proc/self/fd/{}", parent.as_raw_fd())).join(&name);
    let had = std::fs::symlink_metadata(&at).is_ok();
    if had {
        std::fs::rename(&at, aside).map_err(io_err(aside))?;
    }
    let mut p = Placed {
        _parent: parent,
        at: at.clone(),
        aside: had.then(|| aside.to_path_buf()),
        write_back: None,
        target: m.target.clone(),
    };
    let r = match &m.kind {
        MountKind::Tmpfs { .. } => std::fs::create_dir(&at)
            .and_then(|()| std::fs::set_permissions(&at, std::fs::Permissions::from_mode(0o1777))),
        MountKind::Bind { source, readonly } => {
            if !*readonly && source.is_dir() {
                p.write_back = Some(source.clone());
            }
            put(source, &at)
        }
    };
    if let Err(e) = r {
        let _ = undo(&p);
        return Err(ExecutorError::Io {
            path: PathBuf::from(&m.target),
            source: std::io::Error::new(
                e.kind(),
                format!("putting the mount source in place (no mount(2) here): {e}"),
            ),
        });
    }
    Ok(p)
}

/// Copies (or, for a socket, links) `source` to `at`.
fn put(source: &Path, at: &Path) -> std::io::Result<()> {
    let m = std::fs::metadata(source)?;
    if m.is_dir() {
        copy_tree(source, at, &mut Links::new())
    } else if m.file_type().is_socket() {
        std::fs::hard_link(source, at)
    } else {
        make_entry(source, at, &m, &mut Links::new(), false)
    }
}

/// Takes every placed mount out again (writing caches back); the first error is returned
/// after all were tried.
pub(super) fn undo_all(placed: Vec<Placed>) -> Result<()> {
    let mut first = None;
    for p in &placed {
        if let Err(e) = undo(p) {
            first.get_or_insert(e);
        }
    }
    first.map_or(Ok(()), Err)
}

fn undo(p: &Placed) -> Result<()> {
    let err = |e: std::io::Error| ExecutorError::Io {
        path: PathBuf::from(&p.target),
        source: e,
    };
    if let Some(cache) = &p.write_back
        && std::fs::symlink_metadata(&p.at).is_ok_and(|m| m.is_dir())
    {
        // The cache gets what the run left at the target.
        clear_dir(cache).map_err(err)?;
        for e in std::fs::read_dir(&p.at).map_err(err)? {
            let e = e.map_err(err)?;
            put_entry(&e.path(), &cache.join(e.file_name())).map_err(err)?;
        }
    }
    remove_any(&p.at).map_err(err)?;
    if let Some(a) = &p.aside {
        std::fs::rename(a, &p.at).map_err(err)?;
    }
    Ok(())
}

fn put_entry(src: &Path, dst: &Path) -> std::io::Result<()> {
    let m = std::fs::symlink_metadata(src)?;
    if m.is_dir() {
        copy_tree(src, dst, &mut Links::new())
    } else {
        make_entry(src, dst, &m, &mut Links::new(), false)
    }
}
