//! Read-only merged views of layer snapshots (for COPY --from and the like): an overlay of the
//! lowers mounted under the pool dir, unmounted and removed on `Drop`.

use super::cleanup::{self, Live};
use super::overlay::{mount_overlay, remove_dir_safely};
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

/// Mounts a read-only merged view of `lowers` (bottom first): an overlay, a read-only bind
/// mount for a single lower, an empty dir for none.
pub fn mount_view(lowers: &[PathBuf]) -> Result<View> {
    mount_view_in(&super::default_pool_dir(), lowers)
}

/// [`mount_view`] with an explicit pool dir.
pub fn mount_view_in(pool: &Path, lowers: &[PathBuf]) -> Result<View> {
    let dir = pool.join(super::runtime::unique_name());
    let merged = dir.join("merged");
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&merged)
        .map_err(io_err(&merged))?;
    let key = cleanup::register(Live {
        container: None,
        mounts: vec![merged.clone()],
        dirs: vec![dir.clone()],
    });
    let view = View {
        path: merged.clone(),
        owned: Some((dir, key)),
    };
    if lowers.is_empty() {
        std::fs::set_permissions(&merged, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .map_err(io_err(&merged))?;
        return Ok(view);
    }
    if let [only] = lowers {
        let err = |source: rustix::io::Errno| ExecutorError::Mount {
            what: format!("read-only bind of {}", only.display()),
            target: merged.clone(),
            source: source.into(),
        };
        rustix::mount::mount_bind(only.as_path(), &merged).map_err(err)?;
        rustix::mount::mount_remount(&merged, MountFlags::BIND | MountFlags::RDONLY, c"")
            .map_err(err)?;
        return Ok(view);
    }
    mount_overlay(lowers, None, &merged)?;
    Ok(view)
}
