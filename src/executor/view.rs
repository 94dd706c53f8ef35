//! Read-only merged views of layer snapshots (for COPY --from and the like): an overlay of the
//! lowers mounted under the pool dir, unmounted and removed on `Drop`.

use super::cleanup::{self, Live};
use super::overlay::{mount_overlay, remove_dir_safely};
use super::pool::{mkdir_private, unique_name};
use super::{ExecutorError, Result, io_err};
use rustix::mount::MountFlags;
use std::path::{Path, PathBuf};

/// A read-only merged rootfs.
#[derive(Debug)]
pub struct View {
    path: PathBuf,
    /// The pool entry to unmount and remove, and its registration.
    owned: Option<(PathBuf, u64)>,
}

impl View {
    /// A view of a path some other owner keeps (a backend's cached tree, a pinned object's
    /// own path): nothing to remove when it drops.
    pub(crate) fn borrowed(path: PathBuf) -> View {
        View { path, owned: None }
    }

    /// The merged root.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for View {
    fn drop(&mut self) {
        if let Some((dir, key)) = self.owned.take()
            && remove_dir_safely(&dir).is_ok()
        {
            cleanup::deregister(key);
        }
    }
}

/// `lowers` (bottom first) with repeats dropped, each kept at its topmost place. Snapshots are
/// stored by diffID, so identical layers (two RUNs that change nothing, an image repeating a
/// layer) are one dir, and overlayfs refuses a lower dir given twice (ELOOP). The merged view
/// is the same: the topmost copy provides everything the lower one does, above it.
pub(crate) fn distinct_lowers(lowers: &[PathBuf]) -> Vec<PathBuf> {
    let mut seen = std::collections::HashSet::new();
    let mut out: Vec<PathBuf> = lowers
        .iter()
        .rev()
        .filter(|l| seen.insert(l.as_path()))
        .cloned()
        .collect();
    out.reverse();
    out
}

/// Mounts a read-only merged view of `lowers` (bottom first) under `pool`: an overlay, a
/// read-only bind mount for a single lower, an empty dir for none.
pub(crate) fn mount_view_in(pool: &Path, lowers: &[PathBuf]) -> Result<View> {
    use std::os::unix::fs::DirBuilderExt;
    let lowers = &distinct_lowers(lowers)[..];
    let view = pool_entry(pool, "merged")?;
    let merged = view.path.clone();
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&merged)
        .map_err(io_err(&merged))?;
    match lowers {
        [] => {
            std::fs::set_permissions(&merged, std::os::unix::fs::PermissionsExt::from_mode(0o755))
                .map_err(io_err(&merged))?;
        }
        [only] => bind(only, &merged, true, || {
            format!("read-only bind of {}", only.display())
        })?,
        _ => mount_overlay(lowers, None, &merged)?,
    }
    Ok(view)
}

/// A new entry `<pool>/<unique>/` (mode 0700), registered for cleanup with `<leaf>` in it as
/// its mount point; the returned view's path is that mount point (not created here).
fn pool_entry(pool: &Path, leaf: &str) -> Result<View> {
    let dir = pool.join(unique_name());
    mkdir_private(&dir)?;
    let path = dir.join(leaf);
    let key = cleanup::register(Live {
        container: None,
        mounts: vec![path.clone()],
        dirs: vec![dir.clone()],
    });
    Ok(View {
        path,
        owned: Some((dir, key)),
    })
}

/// Bind-mounts `source` on `target`, read-only when asked (a second, remounting step).
fn bind(source: &Path, target: &Path, readonly: bool, what: impl Fn() -> String) -> Result<()> {
    let err = |e: rustix::io::Errno| ExecutorError::Mount {
        what: what(),
        target: target.to_path_buf(),
        source: e.into(),
    };
    rustix::mount::mount_bind(source, target).map_err(err)?;
    if readonly {
        rustix::mount::mount_remount(target, MountFlags::BIND | MountFlags::RDONLY, c"")
            .map_err(err)?;
    }
    Ok(())
}

/// Pins a RUN bind-mount source: `source` names an object hoist already holds open (its
/// `/proc/self/fd/N` magic link, resolved in-root by one `openat2`). The runtime resolves mount
/// sources by path in its own mount namespace, where that magic link cannot be bound, so the
/// object is bind-mounted read-only onto a pool entry here, in hoist's namespace, and the
/// runtime binds the pool entry: a component swapped for a symlink after resolution (the
/// BuildKit CVE-2024-23651 race) cannot redirect the mount. Bind sources are pinned read-only;
/// a cache mount's `source=` sub-dir is pinned writable unless the mount is read-only. Either
/// way the pool entry is removed only once nothing is mounted on it any more
/// (`remove_dir_safely`), so a failed unmount never lets the removal delete through it.
pub(crate) fn pin_source_in(
    pool: &Path,
    source: &Path,
    is_dir: bool,
    readonly: bool,
) -> Result<View> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    let view = pool_entry(pool, "source")?;
    let stub = view.path.clone();
    if is_dir {
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&stub)
            .map_err(io_err(&stub))?;
    } else {
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&stub)
            .map_err(io_err(&stub))?;
    }
    bind(source, &stub, readonly, || {
        format!("pinned mount source {}", source.display())
    })?;
    Ok(view)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_lowers_are_kept_at_their_topmost_place() {
        let p = |s: &str| PathBuf::from(s);
        let got = distinct_lowers(&[p("/a"), p("/e"), p("/b"), p("/e"), p("/c"), p("/a")]);
        assert_eq!(got, [p("/b"), p("/e"), p("/c"), p("/a")]);
        assert!(distinct_lowers(&[]).is_empty());
    }
}
