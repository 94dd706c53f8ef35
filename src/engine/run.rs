//! RUN: the argv (shell form, exec form, heredocs), its environment and user, `--mount`s
//! (cache, bind, tmpfs, secret, ssh), then the sandbox over the stage's layers. Secrets live in
//! a private tmpfs-backed file for the run only: never in a layer, history, log or cache key.

use super::stage::{RootView, State, heredoc_name, layer_step};
use super::{BuildEvent, Ctx, EngineError, Result, StageResult, config};
use crate::executor::{Limits, Mount, MountKind, Network, RunSpec};
use crate::graph::{Source, Step};
use crate::parser::expand::Lookup as _;
use crate::parser::mounts::{MountSpec, parse_mount};
use crate::parser::{Command, Heredoc, Instruction, expand};
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// argv for a RUN and, for a shebang heredoc, the script file to provide.
pub(crate) fn run_argv(
    shell: &[String],
    cmd: &Command,
    heredocs: &[Heredoc],
) -> (Vec<String>, Option<(String, String)>) {
    match cmd {
        Command::Exec(v) => (v.clone(), None),
        Command::Shell(s) if heredocs.is_empty() => {
            let mut v = shell.to_vec();
            v.push(s.clone());
            (v, None)
        }
        Command::Shell(s) => {
            let only = heredocs.len() == 1
                && heredoc_name(s.trim()).is_some_and(|n| n == heredocs[0].name);
            if only {
                let h = &heredocs[0];
                if h.content.starts_with("#!") {
                    let path = format!("/dev/pipes/{}", h.name);
                    return (vec![path.clone()], Some((path, h.content.clone())));
                }
                let mut v = shell.to_vec();
                v.push(h.content.clone());
                return (v, None);
            }
            // The shell reads the heredocs itself: the line, then each body and terminator.
            let mut script = s.clone();
            for h in heredocs {
                script.push('\n');
                script.push_str(&h.content);
                if !h.content.ends_with('\n') && !h.content.is_empty() {
                    script.push('\n');
                }
                script.push_str(&h.name);
            }
            let mut v = shell.to_vec();
            v.push(script);
            (v, None)
        }
    }
}

struct Prepared {
    mounts: Vec<Mount>,
    env: Vec<String>,
    key: String,
    /// Keeps temp files and views alive for the run.
    _hold: Vec<Box<dyn std::any::Any>>,
    _locks: Vec<crate::store::LockGuard>,
}

fn octal(m: Option<u32>, default: u32) -> u32 {
    m.unwrap_or(default)
}

fn prepare_mounts(
    ctx: &Ctx,
    st: &State,
    step: &Step,
    raw: &[String],
    deps: &HashMap<usize, Arc<StageResult>>,
) -> Result<Prepared> {
    use std::os::unix::fs::PermissionsExt;
    let mut p = Prepared {
        mounts: vec![],
        env: vec![],
        key: String::new(),
        _hold: vec![],
        _locks: vec![],
    };
    for (i, m) in raw.iter().enumerate() {
        let expanded = expand::expand_word(m, &st.lookup(), '\\')?;
        let spec = parse_mount(&expanded).map_err(EngineError::BadMount)?;
        let from = step
            .mount_from
            .iter()
            .find(|(idx, _)| *idx == i)
            .map(|(_, s)| s.clone());
        let from_view = |ctx: &Ctx| -> Result<Option<(RootView, String)>> {
            Ok(match &from {
                None => None,
                Some(Source::Stage(s)) => {
                    let r = deps.get(s).ok_or(EngineError::Cancelled)?;
                    let lowers: Vec<PathBuf> =
                        r.layers.iter().map(|l| l.snapshot.clone()).collect();
                    Some((RootView::open(ctx, &lowers)?, r.key.to_string()))
                }
                Some(Source::Image(reference)) => {
                    let b = super::stage::load_image(ctx, reference)?;
                    let lowers: Vec<PathBuf> =
                        b.layers.iter().map(|l| l.snapshot.clone()).collect();
                    Some((RootView::open(ctx, &lowers)?, b.manifest_digest.to_string()))
                }
                Some(Source::Scratch) => Some((RootView::open(ctx, &[])?, "scratch".into())),
            })
        };
        match spec {
            MountSpec::Bind {
                target,
                source,
                readwrite,
                ..
            } => {
                let source = source.unwrap_or_default();
                let (root, tag) = match from_view(ctx)? {
                    Some((v, k)) => {
                        let path = v.path().to_path_buf();
                        p._hold.push(Box::new(v));
                        (path, k)
                    }
                    None => (ctx.req.context.clone(), "context".to_string()),
                };
                // Resolved and opened in-root in one step, then bind-mounted from that open
                // object: what the run sees is what was resolved, whatever changes after.
                let pinned = pin_in_root(&root, &source)?;
                let is_dir = std::fs::metadata(&pinned.path).is_ok_and(|m| m.is_dir());
                let view = ctx.isolation.pin(&pinned.path, is_dir, true)?;
                let resolved = view.path().to_path_buf();
                p._hold.push(Box::new(view));
                p._hold.push(Box::new(pinned));
                let content = if tag == "context" {
                    let ignore = &ctx.req.ignore;
                    let src = crate::copy::CopySource::Context {
                        root: &ctx.req.context,
                        ignore,
                    };
                    let req = crate::copy::CopyRequest {
                        sources: vec![source.clone()],
                        dest: "/m/".into(),
                        ..Default::default()
                    };
                    crate::copy::content_key(&src, &req, &ctx.hashes)
                        .map(|d| d.to_string())
                        .unwrap_or_default()
                } else {
                    tag
                };
                p.key
                    .push_str(&format!("bind {target} {source} {readwrite} {content}\n"));
                let target = abs_target(st, &target);
                if readwrite {
                    // Writes are discarded: give the run a private copy.
                    let tmp = ctx.store.tmp_dir()?;
                    let copy = tmp.path().join("rw");
                    copy_tree(&resolved, &copy)?;
                    p.mounts.push(Mount {
                        target,
                        kind: MountKind::Bind {
                            source: copy,
                            readonly: false,
                        },
                    });
                    p._hold.push(Box::new(tmp));
                } else {
                    p.mounts.push(Mount {
                        target,
                        kind: MountKind::Bind {
                            source: resolved,
                            readonly: true,
                        },
                    });
                }
            }
            MountSpec::Cache {
                target,
                id,
                sharing,
                from: from_name,
                source,
                mode,
                uid,
                gid,
                readonly,
            } => {
                let target = abs_target(st, &target);
                let id = id.unwrap_or_else(|| target.clone());
                // `from=` seeds a new cache. As in BuildKit, whose cache-dir key is the id plus
                // the seed ref's ID when there is a seed (and the id alone for none or scratch),
                // a seeded cache is a different cache from the unseeded one with the same id,
                // and a changed seed (new stage key or image digest) starts a new cache; the
                // same seed finds the cache with its own changes. With a seed, `source=` picks
                // what of the seed is copied. `from=scratch` is no seed: BuildKit gives a cache
                // without `from=` the empty image as its seed.
                let seed = from_view(ctx)?.filter(|(_, tag)| tag != "scratch");
                let seed_tag = seed.as_ref().map(|(_, tag)| tag.clone());
                // Without a seed, `source=SUB` mounts the sub-path SUB of the cache dir itself,
                // as BuildKit does for every mount type (dockerfile2llb sets the mount's
                // selector, the executor opens it under the mount's root and fails the step
                // when it does not exist). It is resolved in-root within the cache dir and
                // pinned by fd below. Like BuildKit (which clears selectors from the exec
                // op's cache map), `source=` is not part of the step's key.
                let sub = match (&seed, source.as_deref()) {
                    (None, Some(s)) => {
                        Some(config::clean_path(&format!("/{s}"))).filter(|s| s != "/")
                    }
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
                if matches!(
                    sharing,
                    crate::parser::mounts::CacheSharing::Locked
                        | crate::parser::mounts::CacheSharing::Private
                ) {
                    p._locks
                        .push(ctx.store.lock(&format!("cache-mount:{store_id}"), true)?);
                }
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
                            octal(mode, 0o755),
                            (uid.unwrap_or(0), gid.unwrap_or(0)),
                        )?,
                        // A seeded root keeps the seed's mode and owner unless given explicitly.
                        Some(true) if mode.is_some() || uid.is_some() || gid.is_some() => {
                            if let Some(m) = mode {
                                std::fs::set_permissions(&data, std::fs::Permissions::from_mode(m))
                                    .map_err(io(&data))?;
                            }
                            std::os::unix::fs::chown(&data, uid, gid).map_err(io(&data))?;
                        }
                        // Seeded as it is, or by a parallel run that got there first.
                        Some(_) => {}
                    }
                }
                match &seed_tag {
                    Some(tag) => p.key.push_str(&format!("cache {target} {tag}\n")),
                    None => p.key.push_str(&format!("cache {target}\n")),
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
                        p._hold.push(Box::new(view));
                        p._hold.push(Box::new(pinned));
                        resolved
                    }
                };
                p.mounts.push(Mount {
                    target,
                    kind: MountKind::Bind { source, readonly },
                });
            }
            MountSpec::Tmpfs { target, size } => {
                p.key.push_str(&format!("tmpfs {target}\n"));
                p.mounts.push(Mount {
                    target: abs_target(st, &target),
                    kind: MountKind::Tmpfs { size },
                });
            }
            MountSpec::Secret {
                id,
                target,
                env,
                required,
                mode,
                uid,
                gid,
            } => {
                let id = id.or_else(|| {
                    target.as_ref().and_then(|t| {
                        Path::new(t)
                            .file_name()
                            .map(|f| f.to_string_lossy().into_owned())
                    })
                });
                let Some(id) = id else {
                    return Err(EngineError::BadMount(
                        "secret mount needs id= or target=".into(),
                    ));
                };
                let Some(secret) = ctx.req.secrets.get(&id) else {
                    if required {
                        return Err(EngineError::MissingSecret { id });
                    }
                    continue;
                };
                // The key names the secret, never its value.
                p.key.push_str(&format!("secret {id} {target:?} {env:?}\n"));
                if let Some(var) = env {
                    p.env
                        .push(format!("{var}={}", String::from_utf8_lossy(&secret.0)));
                    if target.is_none() {
                        continue;
                    }
                }
                let file = secret_file(
                    &secret.0,
                    octal(mode, 0o400),
                    uid.unwrap_or(0),
                    gid.unwrap_or(0),
                )?;
                let target = target
                    .map(|t| abs_target(st, &t))
                    .unwrap_or_else(|| format!("/run/secrets/{id}"));
                p.mounts.push(Mount {
                    target,
                    kind: MountKind::Bind {
                        source: file.path().to_path_buf(),
                        readonly: true,
                    },
                });
                p._hold.push(Box::new(file));
            }
            MountSpec::Ssh {
                id,
                target,
                required,
                ..
            } => {
                let id = id.unwrap_or_else(|| "default".into());
                let sock = ctx.req.ssh.get(&id).cloned();
                let Some(sock) = sock else {
                    if required {
                        return Err(EngineError::BadMount(format!(
                            "ssh agent {id:?} is required but --ssh {id} was not given"
                        )));
                    }
                    continue;
                };
                let target = target.unwrap_or_else(|| "/run/buildkit/ssh_agent.0".into());
                p.key.push_str(&format!("ssh {id} {target}\n"));
                p.env.push(format!("SSH_AUTH_SOCK={target}"));
                p.mounts.push(Mount {
                    target,
                    kind: MountKind::Bind {
                        source: sock,
                        readonly: true,
                    },
                });
            }
        }
    }
    Ok(p)
}

fn abs_target(st: &State, t: &str) -> String {
    if t.starts_with('/') {
        config::clean_path(t)
    } else {
        let wd = st
            .config
            .config
            .working_dir
            .clone()
            .unwrap_or_else(|| "/".into());
        config::clean_path(&format!("{wd}/{t}"))
    }
}

/// A bind source opened in-root with one `openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)`
/// (no window between resolving and opening) and held open while the run lasts; `path` is its
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
fn open_in_root(root: &Path, rel: &str) -> Result<Option<PinnedSource>> {
    use rustix::fd::AsRawFd;
    use rustix::fs::{Mode, OFlags, ResolveFlags};
    let io = |path: PathBuf| {
        move |e: rustix::io::Errno| EngineError::Io {
            path,
            source: e.into(),
        }
    };
    let root_fd = rustix::fs::open(
        root,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(io(root.to_path_buf()))?;
    let name = match rel.trim_start_matches('/') {
        "" => ".",
        r => r,
    };
    // The kernel answers EAGAIN when a rename anywhere raced a `..` of the walk (it cannot
    // then vouch for staying in the root); the walk is safe to retry.
    let mut tries = 0;
    let opened = loop {
        let r = rustix::fs::openat2(
            &root_fd,
            name,
            OFlags::PATH | OFlags::CLOEXEC,
            Mode::empty(),
            ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
        );
        tries += 1;
        match r {
            Err(rustix::io::Errno::AGAIN) if tries < 64 => continue,
            r => break r,
        }
    };
    let fd = match opened {
        Ok(fd) => fd,
        Err(rustix::io::Errno::NOENT) => return Ok(None),
        Err(e) => return Err(io(root.join(name))(e)),
    };
    let path = PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()));
    Ok(Some(PinnedSource { _fd: fd, path }))
}

/// Creates the empty cache dir `data` with its mode and owner, race-free: two steps of
/// parallel stages often mount a new cache at the same moment (see [`publish_cache_dir`]).
fn new_cache_dir(dir: &Path, data: &Path, mode: u32, owner: (u32, u32)) -> Result<()> {
    publish_cache_dir(dir, data, |tmp| {
        use std::os::unix::fs::PermissionsExt;
        std::fs::create_dir(tmp)
            .and_then(|()| std::fs::set_permissions(tmp, std::fs::Permissions::from_mode(mode)))
            .and_then(|()| std::os::unix::fs::chown(tmp, Some(owner.0), Some(owner.1)))
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

fn copy_tree(from: &Path, to: &Path) -> Result<()> {
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

/// A secret in a file on /dev/shm (memory, not disk) when available.
fn secret_file(data: &[u8], mode: u32, uid: u32, gid: u32) -> Result<tempfile::NamedTempFile> {
    use std::os::unix::fs::PermissionsExt;
    let dir = if Path::new("/dev/shm").is_dir() {
        PathBuf::from("/dev/shm")
    } else {
        std::env::temp_dir()
    };
    let mut f = tempfile::Builder::new()
        .prefix("hoist-secret-")
        .tempfile_in(&dir)
        .map_err(|source| EngineError::Io {
            path: dir.clone(),
            source,
        })?;
    f.write_all(data).map_err(|source| EngineError::Io {
        path: f.path().to_path_buf(),
        source,
    })?;
    std::fs::set_permissions(f.path(), std::fs::Permissions::from_mode(mode)).map_err(
        |source| EngineError::Io {
            path: f.path().to_path_buf(),
            source,
        },
    )?;
    std::os::unix::fs::chown(f.path(), Some(uid), Some(gid)).map_err(|source| EngineError::Io {
        path: f.path().to_path_buf(),
        source,
    })?;
    Ok(f)
}

pub(crate) fn run_step(
    ctx: &Ctx,
    st: &mut State,
    step: &Step,
    deps: &HashMap<usize, Arc<StageResult>>,
    name: &str,
    no_cache: bool,
) -> Result<()> {
    let Instruction::Run {
        cmd,
        heredocs,
        mounts,
        network,
        ..
    } = &step.node.instruction
    else {
        return Ok(());
    };
    let shell = config::shell_of(&st.config.config);
    let (argv, script) = run_argv(&shell, cmd, heredocs);
    let prepared = prepare_mounts(ctx, st, step, mounts, deps)?;
    let net = match network.as_deref() {
        Some("none") => Network::None,
        Some("host") | Some("default") => Network::Host,
        Some(other) => {
            return Err(EngineError::BadValue {
                what: "RUN --network",
                value: other.into(),
                reason: "expected default, none or host".into(),
            });
        }
        None => ctx.req.network,
    };
    let mut env = st.run_env();
    let user = st.config.config.user.clone().unwrap_or_default();
    let cwd = st
        .config
        .config
        .working_dir
        .clone()
        .unwrap_or_else(|| "/".into());
    let heredoc_key: String = heredocs
        .iter()
        .map(|h| format!("{}\n{}", h.name, h.content))
        .collect();
    let key_parts = [
        "RUN".to_string(),
        serde_json::to_string(&argv).unwrap_or_default(),
        heredoc_key,
        env.join("\n"),
        user.clone(),
        cwd.clone(),
        prepared.key.clone(),
        format!("{net:?}"),
    ];
    let key_refs: Vec<&str> = key_parts.iter().map(|s| s.as_str()).collect();
    let shown_args: Vec<(String, String)> = {
        let lookup = st.lookup();
        st.args
            .iter()
            .map(|(n, _)| (n.clone(), lookup.get(n).unwrap_or_default()))
            .collect()
    };
    let created_by = super::history::run(&shown_args, &argv);
    env.extend(prepared.env.iter().cloned());
    let mut mounts = prepared.mounts.clone();
    let lowers = st.lowers();
    let script_file = match &script {
        Some((target, content)) => {
            use std::os::unix::fs::PermissionsExt;
            let f = tempfile::NamedTempFile::new().map_err(|source| EngineError::Io {
                path: std::env::temp_dir(),
                source,
            })?;
            std::fs::write(f.path(), content).map_err(|source| EngineError::Io {
                path: f.path().to_path_buf(),
                source,
            })?;
            std::fs::set_permissions(f.path(), std::fs::Permissions::from_mode(0o755)).map_err(
                |source| EngineError::Io {
                    path: f.path().to_path_buf(),
                    source,
                },
            )?;
            mounts.push(Mount {
                target: target.clone(),
                kind: MountKind::Bind {
                    source: f.path().to_path_buf(),
                    readonly: true,
                },
            });
            Some(f)
        }
        None => None,
    };
    let command_text = match cmd {
        Command::Shell(s) => format!("{} {s}", shell.join(" ")),
        Command::Exec(v) => v.join(" "),
    };
    let result = layer_step(
        ctx,
        st,
        name,
        no_cache,
        &key_refs,
        created_by,
        |_st, out, id| {
            let spec = RunSpec {
                lowers,
                upper: Some(out.to_path_buf()),
                argv,
                env,
                cwd,
                user,
                hostname: "buildkitsandbox".into(),
                network: net,
                mounts,
                limits: Limits::default(),
            };
            let mut tail: Vec<u8> = Vec::new();
            let reporter = ctx.reporter;
            let code = ctx.isolation.run(&spec, &mut |chunk: &[u8]| {
                tail.extend_from_slice(chunk);
                if tail.len() > 64 * 1024 {
                    tail.drain(..tail.len() - 32 * 1024);
                }
                reporter.event(BuildEvent::Output {
                    id,
                    data: chunk.to_vec(),
                });
            })?;
            if code != 0 {
                let text = String::from_utf8_lossy(&tail);
                let lines: Vec<&str> = text.lines().collect();
                let tail = lines[lines.len().saturating_sub(10)..].join("\n");
                return Err(EngineError::RunFailed {
                    command: command_text,
                    code,
                    tail,
                });
            }
            Ok(true)
        },
    );
    drop(script_file);
    drop(prepared);
    result
}

#[cfg(test)]
mod tests {

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

    use super::*;

    fn sh() -> Vec<String> {
        vec!["/bin/sh".into(), "-c".into()]
    }

    fn hd(name: &str, content: &str) -> Heredoc {
        Heredoc {
            name: name.into(),
            content: content.into(),
            expand: true,
        }
    }

    #[test]
    fn single_heredoc_is_the_script() {
        let (argv, file) = run_argv(
            &sh(),
            &Command::Shell("<<EOT".into()),
            &[hd("EOT", "set -e\necho hi\n")],
        );
        assert_eq!(argv, vec!["/bin/sh", "-c", "set -e\necho hi\n"]);
        assert!(file.is_none());
    }

    #[test]
    fn shebang_heredoc_runs_as_a_file() {
        let (argv, file) = run_argv(
            &sh(),
            &Command::Shell("<<EOF".into()),
            &[hd("EOF", "#!/usr/bin/env python3\nprint(1)\n")],
        );
        assert_eq!(argv, vec!["/dev/pipes/EOF"]);
        assert_eq!(file.unwrap().1, "#!/usr/bin/env python3\nprint(1)\n");
    }

    #[test]
    fn heredocs_with_a_command_go_to_the_shell() {
        let (argv, _) = run_argv(
            &sh(),
            &Command::Shell("<<ONE cat /dev/stdin > /e && <<TWO cat >> /e".into()),
            &[hd("ONE", "first\n"), hd("TWO", "second\n")],
        );
        assert_eq!(
            argv[2],
            "<<ONE cat /dev/stdin > /e && <<TWO cat >> /e\nfirst\nONE\nsecond\nTWO"
        );
    }

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
