//! `hoist run -v` and `--mount`, as `docker run` reads them, into the sandbox's extra mounts:
//!
//! - `-v HOST:CTR[:OPTS]`: a bind mount of an absolute (or `./`-relative) host path, created
//!   as a directory when missing (as docker does for `-v`); `-v NAME:CTR` a named volume;
//!   `-v CTR` an anonymous volume; OPTS `ro`, `rw` (comma-separated);
//! - `--mount type=bind|volume|tmpfs,source=…,target=…[,readonly][,tmpfs-size=…]`: a bind
//!   source must exist (as docker's `--mount`); a volume without a source is anonymous;
//!   `type` defaults to `volume` (docker's default).
//!
//! A named volume is a directory under the store, `<root>/volumes/<name>`, kept across runs;
//! an anonymous one lives in the run's scratch dir and goes with it (hoist run always
//! removes its container, as `--rm`). An empty volume is first filled with what the image
//! has at the target, as docker does ([`populate`]). Options docker has and hoist does not
//! yet (SELinux relabels, propagation, `volume-nocopy`, `tmpfs-mode`, volume drivers) are
//! refused by name.

use crate::executor::{Mount, MountKind, sandbox::parse_size};
use std::path::{Path, PathBuf};

/// Where volumes live: `<store>/volumes` and the run's scratch dir for anonymous ones.
pub struct VolumeDirs<'a> {
    pub named: &'a Path,
    pub anonymous: &'a Path,
}

fn usage(m: String) -> crate::Error {
    crate::Error::Usage(m)
}

/// docker's rule for a volume name.
fn valid_volume_name(n: &str) -> bool {
    let mut c = n.chars();
    c.next().is_some_and(|f| f.is_ascii_alphanumeric())
        && c.all(|ch| ch.is_ascii_alphanumeric() || "_.-".contains(ch))
}

fn clean_target(flag: &str, v: &str, t: &str) -> crate::Result<String> {
    if !t.starts_with('/') {
        return Err(usage(format!(
            "{flag} {v:?}: the container path {t:?} must be absolute"
        )));
    }
    if t == "/" {
        return Err(usage(format!("{flag} {v:?}: cannot mount over /")));
    }
    Ok(t.trim_end_matches('/').to_string())
}

fn mkdir(p: &Path) -> crate::Result<()> {
    std::fs::create_dir_all(p).map_err(|source| crate::Error::Io {
        path: p.to_path_buf(),
        source,
    })
}

/// The directory of a named volume (created on first use) or a new anonymous one.
fn volume(dirs: &VolumeDirs, name: Option<&str>, flag: &str, v: &str) -> crate::Result<PathBuf> {
    let dir = match name {
        Some(n) if !valid_volume_name(n) => {
            return Err(usage(format!(
                "{flag} {v:?}: {n:?} is not a valid volume name ([a-zA-Z0-9][a-zA-Z0-9_.-]*)"
            )));
        }
        Some(n) => dirs.named.join(n),
        None => {
            mkdir(dirs.anonymous)?;
            tempfile::Builder::new()
                .prefix("vol-")
                .tempdir_in(dirs.anonymous)
                .map_err(|source| crate::Error::Io {
                    path: dirs.anonymous.to_path_buf(),
                    source,
                })?
                .keep()
        }
    };
    mkdir(&dir)?;
    Ok(dir)
}

/// The mounts of `mounts` that are volumes (their source is under `dirs`).
pub fn volumes<'m>(mounts: &'m [Mount], dirs: &VolumeDirs) -> Vec<(&'m str, &'m Path)> {
    mounts
        .iter()
        .filter_map(|m| match &m.kind {
            MountKind::Bind { source, .. }
                if source.starts_with(dirs.named) || source.starts_with(dirs.anonymous) =>
            {
                Some((m.target.as_str(), source.as_path()))
            }
            _ => None,
        })
        .collect()
}

/// Copies what the image at `rootfs` holds at `target` into the volume `dir` when the volume
/// is empty and the target is a directory there, as docker fills a new volume (contents,
/// owners, modes, the directory's own too). `target` is resolved inside `rootfs` (a symlink
/// in the image cannot point the copy at the host).
pub fn populate(rootfs: &Path, target: &str, dir: &Path) -> crate::Result<()> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source: std::io::Error| crate::Error::Io { path, source }
    };
    if std::fs::read_dir(dir).map_err(io(dir))?.next().is_some() {
        return Ok(());
    }
    let root = crate::fsroot::open_root(rootfs).map_err(io(rootfs))?;
    let flags = rustix::fs::OFlags::PATH | rustix::fs::OFlags::DIRECTORY;
    let Ok(src) = crate::fsroot::open(&root, target, flags) else {
        // Nothing (or no directory) there in the image: the volume starts empty.
        return Ok(());
    };
    // `cp` reaches the resolved directory through this process's descriptor.
    let from = PathBuf::from(format!(
        "/proc/{}/fd/{}/.",
        std::process::id(),
        std::os::fd::AsRawFd::as_raw_fd(&src)
    ));
    let status = std::process::Command::new("cp")
        .args(["-a", "--"])
        .arg(&from)
        .arg(dir)
        .status()
        .map_err(io(dir))?;
    if !status.success() {
        return Err(crate::Error::Io {
            path: dir.to_path_buf(),
            source: std::io::Error::other(format!(
                "filling the volume with the image's {target} (cp -a) failed"
            )),
        });
    }
    Ok(())
}

/// A host path of `-v`/`--mount`: absolute, `./` and `../` made absolute.
fn host_path(p: &str) -> crate::Result<PathBuf> {
    std::path::absolute(p).map_err(|source| crate::Error::Io {
        path: p.into(),
        source,
    })
}

/// One `-v`/`--volume` value.
pub fn parse_volume(v: &str, dirs: &VolumeDirs) -> crate::Result<Mount> {
    let flag = "-v";
    let parts: Vec<&str> = v.split(':').collect();
    let (src, target, opts) = match parts.as_slice() {
        [t] => (None, *t, None),
        ["", t] => (None, *t, None),
        [s, t] => (Some(*s), *t, None),
        [s, t, o] => (Some(*s).filter(|s| !s.is_empty()), *t, Some(*o)),
        _ => {
            return Err(usage(format!(
                "{flag} {v:?}: expected [HOST-DIR|NAME:]CONTAINER-DIR[:OPTIONS]"
            )));
        }
    };
    let target = clean_target(flag, v, target)?;
    let mut readonly = false;
    for o in opts.into_iter().flat_map(|o| o.split(',')) {
        match o {
            "ro" | "readonly" => readonly = true,
            "rw" => readonly = false,
            "" => {}
            other => {
                return Err(usage(format!(
                    "{flag} {v:?}: option {other:?} is not supported yet (hoist takes ro and rw)"
                )));
            }
        }
    }
    let source = match src {
        Some(s) if s.starts_with('/') || s.starts_with('.') => {
            let p = host_path(s)?;
            // `-v` creates a missing host directory, as docker does.
            if !p.exists() {
                mkdir(&p)?;
            }
            p
        }
        Some(name) => volume(dirs, Some(name), flag, v)?,
        None => volume(dirs, None, flag, v)?,
    };
    Ok(Mount {
        target,
        kind: MountKind::Bind { source, readonly },
    })
}

/// One `--mount` value.
pub fn parse_mount(v: &str, dirs: &VolumeDirs) -> crate::Result<Mount> {
    let flag = "--mount";
    let mut typ = "volume".to_string();
    let (mut source, mut target, mut readonly, mut size) = (None, None, false, None);
    for field in v.split(',').map(str::trim).filter(|f| !f.is_empty()) {
        let (k, val) = match field.split_once('=') {
            Some((k, val)) => (k.trim(), Some(val.trim())),
            None => (field, None),
        };
        match (k, val) {
            ("type", Some(t)) => typ = t.to_string(),
            ("source" | "src", Some(s)) => source = Some(s.to_string()),
            ("target" | "destination" | "dst", Some(t)) => target = Some(t.to_string()),
            ("readonly" | "ro", None | Some("true" | "1")) => readonly = true,
            ("readonly" | "ro", Some("false" | "0")) => readonly = false,
            ("tmpfs-size", Some(s)) => {
                size = Some(parse_size("--mount tmpfs-size", s).map_err(|e| usage(e.to_string()))?)
            }
            // Docker ignores it on Linux too.
            ("consistency", Some(_)) => {}
            (
                "bind-propagation" | "bind-recursive" | "bind-nonrecursive" | "volume-nocopy"
                | "volume-driver" | "volume-opt" | "volume-label" | "volume-subpath" | "tmpfs-mode"
                | "image-subpath",
                _,
            ) => {
                return Err(usage(format!("{flag} {v:?}: {k} is not supported yet")));
            }
            _ => {
                return Err(usage(format!(
                    "{flag} {v:?}: unexpected key {field:?} (type, source, target, readonly, \
                     tmpfs-size)"
                )));
            }
        }
    }
    let target = target.ok_or_else(|| usage(format!("{flag} {v:?}: target= is required")))?;
    let target = clean_target(flag, v, &target)?;
    if size.is_some() && typ != "tmpfs" {
        return Err(usage(format!(
            "{flag} {v:?}: tmpfs-size applies to type=tmpfs only"
        )));
    }
    let kind = match typ.as_str() {
        "bind" => {
            let s = source.ok_or_else(|| usage(format!("{flag} {v:?}: source= is required")))?;
            let p = host_path(&s)?;
            // `--mount` does not create it (docker: "bind source path does not exist").
            if !p.exists() {
                return Err(usage(format!(
                    "{flag} {v:?}: bind source path does not exist: {}",
                    p.display()
                )));
            }
            MountKind::Bind {
                source: p,
                readonly,
            }
        }
        "volume" => MountKind::Bind {
            source: volume(dirs, source.as_deref(), flag, v)?,
            readonly,
        },
        "tmpfs" => {
            if source.is_some() {
                return Err(usage(format!(
                    "{flag} {v:?}: a tmpfs mount takes no source"
                )));
            }
            MountKind::Tmpfs { size }
        }
        other => {
            return Err(usage(format!(
                "{flag} {v:?}: type {other:?} is not supported (bind, volume or tmpfs)"
            )));
        }
    };
    Ok(Mount { target, kind })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dirs(t: &Path) -> (PathBuf, PathBuf) {
        (t.join("volumes"), t.join("scratch"))
    }

    #[test]
    fn volume_flag_forms() {
        let t = tempfile::tempdir().unwrap();
        let (named, anonymous) = dirs(t.path());
        let d = VolumeDirs {
            named: &named,
            anonymous: &anonymous,
        };
        let host = t.path().join("h");
        let m = parse_volume(&format!("{}:/data:ro", host.display()), &d).unwrap();
        assert_eq!(m.target, "/data");
        assert_eq!(
            m.kind,
            MountKind::Bind {
                source: host.clone(),
                readonly: true
            }
        );
        assert!(host.is_dir(), "-v creates a missing host dir");
        let m = parse_volume("cache:/c/", &d).unwrap();
        assert_eq!(m.target, "/c");
        assert!(
            matches!(m.kind, MountKind::Bind { ref source, readonly: false } if source == &named.join("cache"))
        );
        let m = parse_volume("/anon", &d).unwrap();
        assert!(
            matches!(m.kind, MountKind::Bind { ref source, .. } if source.starts_with(&anonymous))
        );
        for bad in ["rel/path", "x:/a:z", "bad name:/a", "a:b:c:d", "/h:rel"] {
            assert!(parse_volume(bad, &d).is_err(), "{bad}");
        }
        let e = parse_volume("/h:/a:Z", &d).unwrap_err().to_string();
        assert!(e.contains("\"Z\" is not supported yet"), "{e}");
    }

    #[test]
    fn mount_flag_forms() {
        let t = tempfile::tempdir().unwrap();
        let (named, anonymous) = dirs(t.path());
        let d = VolumeDirs {
            named: &named,
            anonymous: &anonymous,
        };
        let src = t.path().display().to_string();
        let m = parse_mount(&format!("type=bind,src={src},dst=/s,readonly"), &d).unwrap();
        assert!(matches!(m.kind, MountKind::Bind { readonly: true, .. }));
        let m = parse_mount("type=tmpfs,target=/t,tmpfs-size=1m", &d).unwrap();
        assert_eq!(
            m.kind,
            MountKind::Tmpfs {
                size: Some(1 << 20)
            }
        );
        let m = parse_mount("source=v1,target=/v", &d).unwrap();
        assert!(
            matches!(m.kind, MountKind::Bind { ref source, .. } if source == &named.join("v1"))
        );
        let missing = format!("type=bind,src={src}/nope,target=/x");
        assert!(
            parse_mount(&missing, &d)
                .unwrap_err()
                .to_string()
                .contains("does not exist")
        );
        for bad in [
            "type=bind,target=/x",
            "type=tmpfs,src=a,target=/x",
            "type=npipe,target=/x",
            "type=volume,target=/x,bind-propagation=shared",
            "type=tmpfs,target=/x,tmpfs-mode=1700",
            "type=volume",
            "type=volume,target=/x,tmpfs-size=1m",
            "type=volume,target=/x,foo=bar",
        ] {
            assert!(parse_mount(bad, &d).is_err(), "{bad}");
        }
    }
}
