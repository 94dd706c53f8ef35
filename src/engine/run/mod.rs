//! RUN: the argv (shell form, exec form, heredocs), its environment and user, `--mount`s
//! (one module per kind: bind, cache, tmpfs, secret, ssh), then the sandbox over the stage's
//! layers. Secrets live in a private tmpfs-backed file for the run only: never in a layer,
//! history, log or cache key.

mod argv;
mod bind;
mod cache;
mod in_root;
mod secret;
mod ssh;
mod tmpfs;

pub(crate) use argv::run_argv;

use super::stage::{RootView, State, layer_step, load_image};
use super::{BuildEvent, Ctx, EngineError, Result, StageResult, config};
use crate::cache::StepKey;
use crate::executor::{Limits, Mount, MountKind, Network, RunSpec};
use crate::graph::{Source, Step};
use crate::parser::expand::Lookup as _;
use crate::parser::mounts::{MountSpec, parse_mount};
use crate::parser::{Command, Instruction, expand};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

/// One `--mount` made ready for the run.
#[derive(Default)]
struct MountPart {
    /// What the run sees (none for a secret given only as an environment variable).
    mount: Option<Mount>,
    /// Its line of the step's cache key.
    key: String,
    /// The variable it sets (a secret's `env=`, ssh's `SSH_AUTH_SOCK`).
    env: Option<String>,
    /// Views, pinned sources and temp files the mount needs until the run ends.
    hold: Vec<Box<dyn std::any::Any>>,
    /// A `sharing=locked|private` cache mount's lock.
    lock: Option<crate::store::LockGuard>,
}

/// Every `--mount` of a RUN, ready.
struct Prepared {
    mounts: Vec<Mount>,
    env: Vec<String>,
    key: String,
    /// Keeps temp files and views alive for the run (dropped before the locks).
    _hold: Vec<Box<dyn std::any::Any>>,
    _locks: Vec<crate::store::LockGuard>,
}

impl Prepared {
    fn add(&mut self, part: MountPart) {
        self.mounts.extend(part.mount);
        self.env.extend(part.env);
        self.key.push_str(&part.key);
        self._hold.extend(part.hold);
        self._locks.extend(part.lock);
    }
}

/// A read-only view of what a mount's `from=` names (a stage, or an image loaded for the
/// build's platform as BuildKit loads an implicit stage), with its identity for the key: the
/// stage's key or the image digest.
fn source_view(
    ctx: &Ctx,
    from: Option<&Source>,
    deps: &HashMap<usize, Arc<StageResult>>,
) -> Result<Option<(RootView, String)>> {
    Ok(match from {
        None => None,
        Some(Source::Stage(s)) => {
            let r = deps.get(s).ok_or(EngineError::Cancelled)?;
            let lowers: Vec<PathBuf> = r.layers.iter().map(|l| l.snapshot.clone()).collect();
            Some((RootView::open(ctx, &lowers)?, r.key.to_string()))
        }
        Some(Source::Image(reference)) => {
            let b = load_image(ctx, reference, &ctx.req.platform)?;
            let lowers: Vec<PathBuf> = b.layers.iter().map(|l| l.snapshot.clone()).collect();
            Some((RootView::open(ctx, &lowers)?, b.manifest_digest.to_string()))
        }
        Some(Source::Scratch) => Some((RootView::open(ctx, &[])?, "scratch".into())),
    })
}

fn prepare_mounts(
    ctx: &Ctx,
    st: &State,
    step: &Step,
    raw: &[String],
    deps: &HashMap<usize, Arc<StageResult>>,
) -> Result<Prepared> {
    let mut p = Prepared {
        mounts: vec![],
        env: vec![],
        key: String::new(),
        _hold: vec![],
        _locks: vec![],
    };
    for (i, m) in raw.iter().enumerate() {
        let expanded = expand::expand_word(m, &st.lookup(), ctx.req.graph.escape)?;
        let spec = parse_mount(&expanded).map_err(EngineError::BadMount)?;
        let from = step
            .mount_from
            .iter()
            .find(|(idx, _)| *idx == i)
            .map(|(_, s)| s);
        let part = match spec {
            MountSpec::Bind {
                target,
                source,
                readwrite,
                ..
            } => {
                let from = source_view(ctx, from, deps)?;
                Some(bind::mount(ctx, st, target, source, readwrite, from)?)
            }
            MountSpec::Cache(spec) => {
                let seed = source_view(ctx, from, deps)?;
                Some(cache::mount(ctx, st, spec, seed)?)
            }
            MountSpec::Tmpfs { target, size } => Some(tmpfs::mount(st, target, size)),
            MountSpec::Secret {
                id,
                target,
                env,
                required,
                mode,
                uid,
                gid,
            } => secret::mount(
                ctx,
                st,
                secret::SecretSpec {
                    id,
                    target,
                    env,
                    required,
                    mode,
                    uid,
                    gid,
                },
            )?,
            MountSpec::Ssh {
                id,
                target,
                required,
                ..
            } => ssh::mount(ctx, id, target, required)?,
        };
        if let Some(part) = part {
            p.add(part);
        }
    }
    Ok(p)
}

/// A mount target made absolute against the stage's WORKDIR.
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

/// RUN as a layer step: argv, environment, mounts and network make the key; on a miss the
/// isolation backend runs it over the stage's layers with an empty upper dir as the layer.
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
        security,
        ..
    } = &step.node.instruction
    else {
        return Ok(());
    };
    let shell = config::shell_of(&st.config.config);
    let (argv, script) = run_argv(&shell, cmd, heredocs);
    let prepared = prepare_mounts(ctx, st, step, mounts, deps)?;
    // BuildKit refuses these unless the build grants the entitlement (`--allow`).
    let ent = ctx.req.entitlements;
    if network.as_deref() == Some("host") && !ent.network_host {
        return Err(EngineError::NotEntitled {
            what: "RUN --network=host",
            entitlement: "network.host",
        });
    }
    if security.as_deref() == Some("insecure") && !ent.security_insecure {
        return Err(EngineError::NotEntitled {
            what: "RUN --security=insecure",
            entitlement: "security.insecure",
        });
    }
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
    let key = StepKey::new("RUN")
        .part("argv", serde_json::to_string(&argv).unwrap_or_default())
        .part("heredocs", heredoc_key)
        .part("env", env.join("\n"))
        .part("user", user.as_str())
        .part("cwd", cwd.as_str())
        .part("mounts", prepared.key.as_str())
        .network(net);
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
            // Close our write handle, keeping the path: exec fails with ETXTBSY while any
            // process holds the script open for writing.
            let f = f.into_temp_path();
            mounts.push(Mount {
                target: target.clone(),
                kind: MountKind::Bind {
                    source: f.to_path_buf(),
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
    let result = layer_step(ctx, st, name, no_cache, key, created_by, |_st, out, id| {
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
            security: Default::default(),
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
    });
    drop(script_file);
    drop(prepared);
    result
}
