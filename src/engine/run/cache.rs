//! `RUN --mount=type=cache`: a directory in the store that outlives the build, keyed by its id
//! (and its seed, with `from=`), created or seeded race-free, optionally locked, optionally a
//! sub-path of it pinned in-root.

use super::in_root::open_in_root;
use super::{MountPart, abs_target};
use crate::engine::stage::{RootView, State};
use crate::engine::{Ctx, EngineError, Result, config};
use crate::executor::{Mount, MountKind};
use crate::parser::mounts::{CacheMount, CacheSharing};
use std::path::Path;

/// Prepares a cache mount; `seed` is the view of what `from=` names (and its identity).
pub(super) fn mount(
    ctx: &Ctx,
    st: &State,
    spec: CacheMount,
    seed: Option<(RootView, String)>,
) -> Result<MountPart> {
    use std::os::unix::fs::PermissionsExt;
    let CacheMount {
        target,
        id,
        sharing,
        from: from_name,
        source,
        mode,
        uid,
        gid,
        readonly,
    } = spec;
    let mut part = MountPart::default();
    let target = abs_target(st, &target);
    let id = id.unwrap_or_else(|| target.clone());
    // `from=` seeds a new cache. As in BuildKit, whose cache-dir key is the id plus
    // the seed ref's ID when there is a seed (and the id alone for none or scratch),
    // a seeded cache is a different cache from the unseeded one with the same id,
    // and a changed seed (new stage key or image digest) starts a new cache; the
    // same seed finds the cache with its own changes. With a seed, `source=` picks
    // what of the seed is copied. `from=scratch` is no seed: BuildKit gives a cache
    // without `from=` the empty image as its seed.
    let seed = seed.filter(|(_, tag)| tag != "scratch");
    let seed_tag = seed.as_ref().map(|(_, tag)| tag.clone());
    // Without a seed, `source=SUB` mounts the sub-path SUB of the cache dir itself,
    // as BuildKit does for every mount type (dockerfile2llb sets the mount's
    // selector, the executor opens it under the mount's root and fails the step
    // when it does not exist). It is resolved in-root within the cache dir and
    // pinned by fd below. Like BuildKit (which clears selectors from the exec
    // op's cache map), `source=` is not part of the step's key.
    let sub = match (&seed, source.as_deref()) {
        (None, Some(s)) => Some(config::clean_path(&format!("/{s}"))).filter(|s| s != "/"),
        _ => None,
    };
    // BuildKit applies mode=, uid= and gid= (by creating the mounted dir) only
    // when there is no `source=`.
    let (mode, uid, gid) = match sub {
        Some(_) => (None, None, None),
        None => (mode, uid, gid),
    };
    let store_id = match &seed_tag {
        Some(tag) => format!("{id}:{tag}"),
        None => id.clone(),
    };
    if matches!(sharing, CacheSharing::Locked | CacheSharing::Private) {
        part.lock = Some(ctx.store.lock(&format!("cache-mount:{store_id}"), true)?);
    }
    ctx.use_mount(&store_id);
    let dir = ctx.store.cache_mount_dir(&store_id)?;
    let data = dir.join("data");
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| EngineError::Io { path, source }
    };
    if !data.exists() {
        let seeded = match seed {
            Some((view, _)) => {
                let name = from_name.as_deref().unwrap_or("scratch");
                Some(seed_cache(
                    view.path(),
                    name,
                    source.as_deref(),
                    &dir,
                    &data,
                )?)
            }
            None => None,
        };
        match seeded {
            None => new_cache_dir(
                &dir,
                &data,
                mode.unwrap_or(0o755),
                (uid.unwrap_or(0), gid.unwrap_or(0)),
            )?,
            // A seeded root keeps the seed's mode and owner unless given explicitly.
            Some(true) if mode.is_some() || uid.is_some() || gid.is_some() => {
                if let Some(m) = mode {
                    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(m))
                        .map_err(io(&data))?;
                }
                crate::userns::io_chown_result(std::os::unix::fs::chown(&data, uid, gid))
                    .map_err(io(&data))?;
            }
            // Seeded as it is, or by a parallel run that got there first.
            Some(_) => {}
        }
    }
    match &seed_tag {
        Some(tag) => part.key = format!("cache {target} {tag}\n"),
        None => part.key = format!("cache {target}\n"),
    }
    let source = match &sub {
        None => data,
        Some(sub) => {
            // Opened in-root by one openat2 (a symlink at SUB or on the way
            // resolves inside the cache dir) and bind-mounted from that open
            // object: a parallel run swapping SUB for a symlink after this cannot
            // redirect the mount (BuildKit CVE-2024-23651).
            let pinned = open_in_root(&data, sub)?.ok_or_else(|| {
                EngineError::BadMount(format!(
                    "cache mount source {sub:?} not found in cache {id:?} \
                     (mount target {target})"
                ))
            })?;
            let is_dir = std::fs::metadata(&pinned.path).is_ok_and(|m| m.is_dir());
            let view = ctx.isolation.pin(&pinned.path, is_dir, readonly)?;
            let resolved = view.path().to_path_buf();
            part.hold.push(Box::new(view));
            part.hold.push(Box::new(pinned));
            resolved
        }
    };
    part.mount = Some(Mount {
        target,
        kind: MountKind::Bind { source, readonly },
    });
    Ok(part)
}

/// Creates the empty cache dir `data` with its mode and owner, race-free: two steps of
/// parallel stages often mount a new cache at the same moment (see [`publish_cache_dir`]).
fn new_cache_dir(dir: &Path, data: &Path, mode: u32, owner: (u32, u32)) -> Result<()> {
    publish_cache_dir(dir, data, |tmp| {
        use std::os::unix::fs::PermissionsExt;
        std::fs::create_dir(tmp)
            .and_then(|()| std::fs::set_permissions(tmp, std::fs::Permissions::from_mode(mode)))
            .and_then(|()| {
                crate::userns::io_chown_result(std::os::unix::fs::chown(
                    tmp,
                    Some(owner.0),
                    Some(owner.1),
                ))
            })
            .map_err(|source| EngineError::Io {
                path: tmp.to_path_buf(),
                source,
            })
    })
    .map(|_| ())
}

/// Makes the cache dir `data` by `fill`ing a temp dir beside it (in the cache's own `dir`)
/// and renaming that into place without replacing: a plain rename would replace an empty
/// cache dir that a parallel run has already mounted, and a killed build never leaves a
/// half-made one. Returns false when another run made `data` first (its dir is used).
fn publish_cache_dir(
    dir: &Path,
    data: &Path,
    fill: impl FnOnce(&Path) -> Result<()>,
) -> Result<bool> {
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = dir.join(format!(".new-{}-{n}", std::process::id()));
    let made = fill(&tmp).and_then(|()| {
        rustix::fs::renameat_with(
            rustix::fs::CWD,
            &tmp,
            rustix::fs::CWD,
            data,
            rustix::fs::RenameFlags::NOREPLACE,
        )
        .map_err(|e| EngineError::Io {
            path: data.to_path_buf(),
            source: e.into(),
        })
    });
    match made {
        Ok(()) => Ok(true),
        Err(e) => {
            let _ = std::fs::remove_dir_all(&tmp);
            if data.is_dir() { Ok(false) } else { Err(e) }
        }
    }
}

/// Fills the new cache dir `data` (in the cache's own `dir`) with a copy of `source` (default
/// `/`) of the seed root `root`, the stage or image `from` names. `source` is resolved in-root
/// like a bind mount's; the copy keeps modes, owners and symlinks and never follows a symlink.
/// The copy is made beside `data` and published by [`publish_cache_dir`], so a concurrent run
/// or a killed build never leaves a half-seeded cache. Returns false when another run created
/// `data` first.
fn seed_cache(
    root: &Path,
    from: &str,
    source: Option<&str>,
    dir: &Path,
    data: &Path,
) -> Result<bool> {
    let rel = source.unwrap_or("/");
    let resolved = match crate::copy::resolve_in_root(root, rel) {
        Ok(Some(p)) => p,
        Ok(None) => {
            return Err(EngineError::BadMount(format!(
                "cache mount source {rel:?} not found in {from:?}"
            )));
        }
        Err(source) => {
            return Err(EngineError::Io {
                path: root.join(rel.trim_start_matches('/')),
                source,
            });
        }
    };
    let is_dir = std::fs::symlink_metadata(&resolved)
        .map(|m| m.is_dir())
        .map_err(|source| EngineError::Io {
            path: resolved.clone(),
            source,
        })?;
    if !is_dir {
        return Err(EngineError::BadMount(format!(
            "cache mount source {rel:?} in {from:?} is not a directory"
        )));
    }
    publish_cache_dir(dir, data, |tmp| copy_tree(&resolved, tmp))
}

/// Copies `from` to `to` as `cp -a` does (modes, owners, symlinks kept).
pub(super) fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    let status = std::process::Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .map_err(|source| EngineError::Io {
            path: from.to_path_buf(),
            source,
        })?;
    if !status.success() {
        return Err(EngineError::Io {
            path: from.to_path_buf(),
            source: std::io::Error::other("cp -a failed"),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parallel_runs_creating_one_cache_dir_all_get_it() {
        use std::os::unix::fs::PermissionsExt;
        let t = tempfile::tempdir().unwrap();
        let data = t.path().join("data");
        // Before: the second of two parallel stages mounting a new cache failed with EEXIST.
        std::thread::scope(|s| {
            let runs: Vec<_> = (0..8)
                .map(|_| s.spawn(|| new_cache_dir(t.path(), &data, 0o750, (0, 0))))
                .collect();
            for r in runs {
                r.join().unwrap().unwrap();
            }
        });
        let m = std::fs::metadata(&data).unwrap();
        assert!(m.is_dir());
        assert_eq!(m.permissions().mode() & 0o7777, 0o750);
        // Only `data` is left: every loser's temp dir is gone.
        let names: Vec<_> = std::fs::read_dir(t.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["data"]);
        // A file written into it survives a late creator (never replaced).
        std::fs::write(data.join("kept"), b"1").unwrap();
        new_cache_dir(t.path(), &data, 0o755, (0, 0)).unwrap();
        assert!(data.join("kept").exists());
    }
}
