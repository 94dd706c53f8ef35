//! WORKDIR's layer: the missing directories of the path, owned like BuildKit's mkdir.

use super::State;
use crate::engine::{Ctx, EngineError, Result};
use std::path::{Path, PathBuf};

/// WORKDIR: create the missing components of `dir` in `out` (owned by the current USER), with
/// existing parents copied from the image so the layer does not change their metadata.
pub(super) fn make_workdir(ctx: &Ctx, st: &State, dir: &str, out: &Path) -> Result<bool> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let lowers = st.lowers();
    let view = if lowers.is_empty() {
        None
    } else {
        Some(ctx.isolation.view(&lowers)?)
    };
    let user = st.config.config.user.clone().unwrap_or_default();
    if view.is_none() && !user.is_empty() && crate::executor::user::names_an_id(&user) {
        return Err(EngineError::NameWithoutFilesystem {
            what: "USER",
            spec: user,
            why: "WORKDIR creates its directory on an empty stage (FROM scratch, nothing added yet)",
        });
    }
    // The owner as BuildKit's mkdir resolves USER (N is N:N; an unknown name is root).
    let owner = match (&view, user.is_empty()) {
        (_, true) => (0, 0),
        (Some(v), false) => {
            let (p, g) = crate::executor::user::read_dbs(v.path())?;
            crate::executor::user::file_op_owner(&user, &p, &g)
        }
        (None, false) => crate::executor::user::file_op_owner(&user, &[], &[]),
    };
    let mut rel = PathBuf::new();
    let mut created_any = false;
    for comp in dir.split('/').filter(|c| !c.is_empty()) {
        rel.push(comp);
        let target = out.join(&rel);
        let existing = view
            .as_ref()
            .and_then(|v| std::fs::symlink_metadata(v.path().join(&rel)).ok());
        match existing {
            Some(m) if m.file_type().is_symlink() => {
                // Following an image symlink here could leave the root; BuildKit resolves it
                // in-root. The directory exists in some form: nothing to create.
                return Ok(created_any);
            }
            Some(m) if !m.is_dir() => {
                // BuildKit's MkdirAll stops at a file: the build fails.
                return Err(EngineError::WorkdirNotDir {
                    path: format!("/{}", rel.display()),
                });
            }
            Some(m) => {
                std::fs::create_dir(&target).map_err(|source| EngineError::Io {
                    path: target.clone(),
                    source,
                })?;
                std::fs::set_permissions(
                    &target,
                    std::fs::Permissions::from_mode(m.mode() & 0o7777),
                )
                .map_err(|source| EngineError::Io {
                    path: target.clone(),
                    source,
                })?;
                crate::userns::io_chown_result(std::os::unix::fs::lchown(
                    &target,
                    Some(m.uid()),
                    Some(m.gid()),
                ))
                .map_err(|source| EngineError::Io {
                    path: target.clone(),
                    source,
                })?;
                let mtime = std::time::UNIX_EPOCH
                    + std::time::Duration::new(
                        m.mtime().max(0) as u64,
                        m.mtime_nsec().max(0) as u32,
                    );
                let _ = std::fs::File::open(&target).and_then(|f| f.set_modified(mtime));
            }
            None => {
                std::fs::create_dir(&target).map_err(|source| EngineError::Io {
                    path: target.clone(),
                    source,
                })?;
                std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o755)).map_err(
                    |source| EngineError::Io {
                        path: target.clone(),
                        source,
                    },
                )?;
                crate::userns::io_chown_result(std::os::unix::fs::lchown(
                    &target,
                    Some(owner.0),
                    Some(owner.1),
                ))
                .map_err(|source| EngineError::Io {
                    path: target.clone(),
                    source,
                })?;
                created_any = true;
            }
        }
    }
    // Parent dir mtimes were reset by creating children; restore them for the copied ones.
    Ok(created_any)
}
