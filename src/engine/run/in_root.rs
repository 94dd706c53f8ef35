//! The in-root opener for RUN mount sources: a path under an untrusted root, resolved and
//! opened in one in-root `openat2` (`fsroot::open`) so the mount is made from exactly what
//! was resolved.

use crate::engine::{EngineError, Result};
use std::path::{Path, PathBuf};

/// A bind source opened in-root with one `openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)`
/// through `fsroot::open` (no window between resolving and opening) and held open while the run lasts; `path` is its
/// `/proc/self/fd/N` magic link, valid in this process's mount namespace.
pub(crate) struct PinnedSource {
    _fd: rustix::fd::OwnedFd,
    pub path: PathBuf,
}

pub(crate) fn pin_in_root(root: &Path, rel: &str) -> Result<PinnedSource> {
    open_in_root(root, rel)?
        .ok_or_else(|| EngineError::BadMount(format!("bind source {rel:?} not found")))
}

/// [`pin_in_root`], with `None` for a source that does not exist.
pub(super) fn open_in_root(root: &Path, rel: &str) -> Result<Option<PinnedSource>> {
    use rustix::fd::AsRawFd;
    use rustix::fs::OFlags;
    let root_fd = crate::fsroot::open_root(root).map_err(|source| EngineError::Io {
        path: root.to_path_buf(),
        source,
    })?;
    let name = match rel.trim_start_matches('/') {
        "" => ".",
        r => r,
    };
    let opened = crate::fsroot::open(&root_fd, name, OFlags::PATH);
    let fd = match opened {
        Ok(fd) => fd,
        Err(rustix::io::Errno::NOENT) => return Ok(None),
        Err(e) => {
            return Err(EngineError::Io {
                path: root.join(name),
                source: e.into(),
            });
        }
    };
    let path = PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()));
    Ok(Some(PinnedSource { _fd: fd, path }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bind_sources_stay_in_root() {
        let root = tempfile::tempdir().unwrap();
        std::fs::write(root.path().join("f"), b"x").unwrap();
        std::os::unix::fs::symlink("/etc/hostname", root.path().join("escape")).unwrap();
        std::os::unix::fs::symlink("../../f", root.path().join("up")).unwrap();
        for rel in ["../../f", "up", "/f"] {
            let p = pin_in_root(root.path(), rel).unwrap();
            assert_eq!(std::fs::read(&p.path).unwrap(), b"x", "{rel}");
        }
        // /etc/hostname re-rooted inside the root does not exist there.
        assert!(matches!(
            pin_in_root(root.path(), "escape"),
            Err(EngineError::BadMount(_))
        ));
    }

    #[test]
    fn pinned_bind_sources_survive_a_swap_for_a_symlink() {
        // Pin `dir`, then swap it for a symlink to a directory outside the root (the race of
        // BuildKit CVE-2024-23651): the pinned object is still the original directory.
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("ctx");
        std::fs::create_dir_all(root.join("dir")).unwrap();
        std::fs::write(root.join("dir/inside"), b"in").unwrap();
        std::fs::create_dir(t.path().join("outside")).unwrap();
        std::fs::write(t.path().join("outside/secret"), b"s").unwrap();
        let pinned = pin_in_root(&root, "dir").unwrap();
        std::fs::rename(root.join("dir"), root.join("moved")).unwrap();
        std::os::unix::fs::symlink(t.path().join("outside"), root.join("dir")).unwrap();
        let names: Vec<_> = std::fs::read_dir(&pinned.path)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["inside"]);
    }
}
