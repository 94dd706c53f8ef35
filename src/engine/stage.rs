//! One stage: its base, then each step in order — expansion with the stage's env and ARGs,
//! the cache key, and on a miss the work (RUN, COPY/ADD, WORKDIR) or the config change.

use super::base::{self, BaseImage};
use super::{
    BuildEvent, Ctx, EngineError, Layer, Result, StageResult, config, history, run, stream,
};
use crate::cache::{self, CacheEntry, CachedLayer};
use crate::copy::{self, CopyRequest, CopySource};
use crate::graph::{Source, Stage, Step};
use crate::layers::{self, LayerOptions};
use crate::oci::{Descriptor, Digest, History, ImageConfig, RootFs, RunConfig};
use crate::parser::expand::{self, Lookup};
use crate::parser::{CopyArgs, Instruction, Node};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

/// The default PATH BuildKit gives an image without one (scratch).
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// What a stage carries from step to step.
pub(crate) struct State {
    pub config: ImageConfig,
    pub layers: Vec<Layer>,
    pub key: Digest,
    /// ARGs declared in this stage, in order, with their values (None: declared, unset).
    pub args: Vec<(String, Option<String>)>,
    /// CMD was set in this stage (ENTRYPOINT then keeps it).
    pub cmd_set: bool,
    /// `created` of the newest layer, used for config-only history entries so a cached
    /// rebuild is byte-identical.
    pub last_created: Option<String>,
    /// This is the target stage: its new layers are streamed to the push destination.
    pub stream: bool,
}

impl State {
    /// The variables expansion sees: ARG values, overridden by ENV.
    pub fn lookup(&self) -> impl Lookup + '_ {
        move |name: &str| -> Option<String> {
            if let Some(v) = self.config.config.env_get(name) {
                return Some(v.to_string());
            }
            self.args
                .iter()
                .rev()
                .find(|(n, _)| n == name)
                .and_then(|(_, v)| v.clone())
        }
    }

    /// RUN's environment: the image env plus ARG values not shadowed by ENV.
    pub fn run_env(&self) -> Vec<String> {
        let mut env = self.config.config.env.clone().unwrap_or_default();
        for (n, v) in &self.args {
            if let Some(v) = v
                && self.config.config.env_get(n).is_none()
                && !env
                    .iter()
                    .any(|e| e.split_once('=').is_some_and(|(k, _)| k == n))
            {
                env.push(format!("{n}={v}"));
            }
        }
        env
    }

    pub fn lowers(&self) -> Vec<PathBuf> {
        self.layers.iter().map(|l| l.snapshot.clone()).collect()
    }
}

fn now_rfc3339(sde: Option<i64>) -> String {
    let secs = sde.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0)
    });
    rfc3339(secs)
}

/// Seconds since the epoch → `YYYY-MM-DDTHH:MM:SSZ` (UTC), by hand to avoid a date crate.
pub fn rfc3339(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

fn location(ctx: &Ctx, node: &Node) -> String {
    format!("{}:{}", ctx.req.dockerfile_name, node.span.start)
}

fn at(ctx: &Ctx, node: &Node, e: impl Into<EngineError>) -> EngineError {
    let e = e.into();
    if matches!(e, EngineError::Step { .. } | EngineError::Cancelled) {
        return e;
    }
    EngineError::Step {
        location: location(ctx, node),
        instruction: node.original.clone(),
        error: Box::new(e),
    }
}

fn scratch_config(ctx: &Ctx) -> ImageConfig {
    let p = &ctx.req.platform;
    ImageConfig {
        architecture: p.architecture.clone(),
        os: p.os.clone(),
        variant: p.variant.clone(),
        config: RunConfig {
            env: Some(vec![format!("PATH={DEFAULT_PATH}")]),
            working_dir: Some("/".into()),
            ..Default::default()
        },
        rootfs: RootFs::default(),
        ..Default::default()
    }
}

/// Loads an image for FROM or `--from`, reporting it as a step.
pub(crate) fn load_image(ctx: &Ctx, reference: &str) -> Result<BaseImage> {
    let slot = ctx
        .bases
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .entry(reference.to_string())
        .or_default()
        .clone();
    // Holding the slot serialises loads of one reference; others proceed in parallel.
    let mut slot = slot.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(b) = slot.as_ref() {
        return Ok(b.clone());
    }
    let b = load_image_once(ctx, reference)?;
    *slot = Some(b.clone());
    Ok(b)
}

fn load_image_once(ctx: &Ctx, reference: &str) -> Result<BaseImage> {
    let id = ctx.new_id();
    let t = Instant::now();
    ctx.reporter.event(BuildEvent::Started {
        id,
        // BuildKit names the normalized reference: docker.io/library/busybox:latest.
        name: format!(
            "[internal] load metadata for {}",
            crate::registry::ImageRef::parse(reference)
                .map(|r| r.to_string())
                .unwrap_or_else(|_| crate::registry::auth::redact_credentials(reference))
        ),
    });
    let warn = |message: String| ctx.reporter.event(BuildEvent::Warning { message });
    match base::load(
        ctx.store,
        ctx.registry,
        reference,
        &ctx.req.platform,
        if ctx.req.pull {
            base::Policy::Always
        } else {
            base::Policy::Check
        },
        &warn,
    ) {
        Ok(b) => {
            ctx.reporter.event(BuildEvent::Done {
                id,
                secs: t.elapsed().as_secs_f64(),
            });
            Ok(b)
        }
        Err(e) => {
            ctx.reporter.event(BuildEvent::Failed {
                id,
                message: e.to_string(),
            });
            Err(EngineError::BaseImage {
                reference: reference.to_string(),
                error: Box::new(e),
            })
        }
    }
}

pub(crate) fn run_stage(
    ctx: &Ctx,
    stage: &Stage,
    deps: &HashMap<usize, Arc<StageResult>>,
    cancelled: &dyn Fn() -> bool,
) -> Result<StageResult> {
    // BuildKit's FROM vertex names the resolved image: `docker.io/library/busybox:latest@sha256:…`.
    let mut from_name = None;
    let stream = stage.index == ctx.req.graph.target;
    let mut st = match &stage.base {
        Source::Scratch => State {
            config: scratch_config(ctx),
            layers: vec![],
            key: cache::key(
                &Digest::of(b""),
                &["scratch", &ctx.req.platform.to_string_short()],
            ),
            args: vec![],
            cmd_set: false,
            last_created: None,
            stream,
        },
        Source::Stage(i) => {
            let r = deps.get(i).ok_or(EngineError::Cancelled)?;
            State {
                config: r.config.clone(),
                layers: r.layers.clone(),
                key: r.key.clone(),
                args: vec![],
                cmd_set: false,
                last_created: r.config.created.clone(),
                stream,
            }
        }
        Source::Image(reference) => {
            let b = load_image(ctx, reference).map_err(|e| at(ctx, &stage.from_node, e))?;
            from_name = Some(match crate::registry::ImageRef::parse(reference) {
                Ok(r) if r.digest.is_some() => r.to_string(),
                Ok(r) => format!("{r}@{}", b.manifest_digest),
                Err(_) => crate::registry::auth::redact_credentials(reference),
            });
            let key = cache::key(&Digest::of(b""), &["image", &b.manifest_digest.to_string()]);
            let mut config = b.config;
            if config
                .config
                .working_dir
                .as_deref()
                .unwrap_or("")
                .is_empty()
            {
                config.config.working_dir = None;
            }
            let last_created = config.created.clone();
            State {
                config,
                layers: b.layers,
                key,
                args: vec![],
                cmd_set: false,
                last_created,
                stream,
            }
        }
    };
    // A stage's config is the image's, minus what only the parent stage's build knew.
    let no_cache = ctx.req.no_cache
        || stage.name.as_ref().is_some_and(|n| {
            ctx.req
                .no_cache_filter
                .iter()
                .any(|f| f.eq_ignore_ascii_case(n))
        });

    // ONBUILD triggers of the base image run first, then are cleared. Like BuildKit, a
    // trigger's errors point at the FROM line that pulled it in.
    let mut steps: Vec<Step> = Vec::new();
    let mut triggers_n = 0;
    if let Some(triggers) = st.config.config.on_build.take() {
        for t in triggers {
            let mut node = crate::parser::parse_instruction(&t, '\\').map_err(|e| {
                at(
                    ctx,
                    &stage.from_node,
                    EngineError::BadValue {
                        what: "ONBUILD trigger",
                        value: t.clone(),
                        reason: e.to_string(),
                    },
                )
            })?;
            node.span = stage.from_node.span;
            let from = trigger_copy_from(ctx, stage, &node, deps)?;
            steps.push(Step {
                node,
                from,
                mount_from: vec![],
            });
            triggers_n += 1;
        }
    }
    steps.extend(stage.steps.iter().cloned());

    let mut namer = StepNamer::new(ctx, stage, &steps);
    if let Some(f) = from_name {
        let id = ctx.new_id();
        ctx.reporter.event(BuildEvent::Started {
            id,
            name: namer.from(&f),
        });
        ctx.reporter.event(BuildEvent::Done { id, secs: 0.0 });
    }
    for (n, step) in steps.iter().enumerate() {
        if cancelled() {
            return Err(EngineError::Cancelled);
        }
        let name = namer.name(&step.node, n < triggers_n);
        run_step(ctx, &mut st, step, deps, &name, no_cache).map_err(|e| at(ctx, &step.node, e))?;
    }
    if let Some(c) = &st.last_created {
        st.config.created = Some(c.clone());
    }
    Ok(StageResult {
        config: st.config,
        layers: st.layers,
        key: st.key,
    })
}

/// Resolves a trigger's `COPY --from`/`ADD --from`: a stage this stage already depends on, or
/// else an image reference. A stage that is not built before this one cannot be used (the
/// graph was planned before the trigger was known) and says so.
fn trigger_copy_from(
    ctx: &Ctx,
    stage: &Stage,
    node: &crate::parser::ast::Node,
    deps: &HashMap<usize, Arc<StageResult>>,
) -> Result<Option<Source>> {
    let (Instruction::Copy(a) | Instruction::Add(a)) = &node.instruction else {
        return Ok(None);
    };
    let Some(from) = &a.from else {
        return Ok(None);
    };
    let stages = &ctx.req.graph.stages;
    let named = stages.iter().position(|s| {
        s.name
            .as_deref()
            .is_some_and(|n| n.eq_ignore_ascii_case(from))
            || from.parse::<usize>().is_ok_and(|i| i == s.index)
    });
    match named {
        Some(i) if deps.contains_key(&i) => Ok(Some(Source::Stage(i))),
        Some(_) => Err(at(
            ctx,
            &stage.from_node,
            EngineError::BadValue {
                what: "ONBUILD trigger",
                value: node.original.clone(),
                reason: format!(
                    "--from={from} names a stage this stage does not already depend on; \
                     copy from an image, or from a stage this one is built FROM or copies from"
                ),
            },
        )),
        None => Ok(Some(Source::Image(from.clone()))),
    }
}

/// Names progress lines as BuildKit does: only steps that make a vertex are numbered (FROM an
/// image, RUN, COPY, ADD, WORKDIR other than `/`, the base's ONBUILD triggers), the index is
/// padded to the total's width, the stage name appears only when the file has several stages,
/// and triggers say `ONBUILD`.
struct StepNamer {
    prefix: String,
    total: usize,
    index: usize,
}

impl StepNamer {
    fn new(ctx: &Ctx, stage: &Stage, steps: &[Step]) -> StepNamer {
        let from_image = matches!(stage.base, Source::Image(_));
        let total = usize::from(from_image) + steps.iter().filter(|s| counts(&s.node)).count();
        let prefix = if ctx.req.graph.stages.len() > 1 {
            let name = stage.name.clone();
            format!(
                "{} ",
                name.unwrap_or_else(|| format!("stage-{}", stage.index))
            )
        } else {
            String::new()
        };
        StepNamer {
            prefix,
            total,
            index: usize::from(from_image),
        }
    }

    /// The name of the FROM vertex (always step 1).
    fn from(&self, image: &str) -> String {
        let width = self.total.max(1).to_string().len();
        format!("[{}{:>width$}/{}] FROM {image}", self.prefix, 1, self.total)
    }

    /// The name of `node`'s progress line; steps that make no vertex keep the index.
    fn name(&mut self, node: &crate::parser::ast::Node, onbuild: bool) -> String {
        let text = uppercase_first_word(&node.original);
        if !counts(node) || is_root_workdir(node) {
            return text;
        }
        self.index += 1;
        let width = self.total.max(1).to_string().len();
        format!(
            "[{}{:>width$}/{}] {}{text}",
            self.prefix,
            self.index,
            self.total,
            if onbuild { "ONBUILD " } else { "" },
        )
    }
}

fn counts(node: &crate::parser::ast::Node) -> bool {
    matches!(
        node.instruction,
        Instruction::Run { .. }
            | Instruction::Copy(_)
            | Instruction::Add(_)
            | Instruction::Workdir(_)
    )
}

/// `WORKDIR /` creates nothing, so BuildKit makes no vertex for it (it still counts in the total).
fn is_root_workdir(node: &crate::parser::ast::Node) -> bool {
    matches!(&node.instruction, Instruction::Workdir(w) if w.trim() == "/")
}

fn uppercase_first_word(s: &str) -> String {
    match s.split_once(' ') {
        Some((a, b)) => format!("{} {b}", a.to_ascii_uppercase()),
        None => s.to_ascii_uppercase(),
    }
}

fn rc(st: &mut State) -> &mut RunConfig {
    &mut st.config.config
}

fn history(st: &mut State, created_by: String, empty_layer: bool, created: Option<String>) {
    st.config.history.push(History {
        created: created.or_else(|| st.last_created.clone()),
        created_by: Some(created_by),
        comment: Some("buildkit.dockerfile.v0".into()),
        empty_layer,
        ..Default::default()
    });
}

fn run_step(
    ctx: &Ctx,
    st: &mut State,
    step: &Step,
    deps: &HashMap<usize, Arc<StageResult>>,
    name: &str,
    no_cache: bool,
) -> Result<()> {
    let escape = '\\';
    let node = &step.node;
    let ex = |st: &State, w: &str| -> Result<String> {
        Ok(expand::expand_word(w, &st.lookup(), escape)?)
    };
    // Config-only steps leave the cache chain alone, as in BuildKit: every layer step's key
    // already holds what it depends on (RUN: argv with SHELL, env, user, cwd; COPY: expanded
    // words; WORKDIR: path and user), so a LABEL or CMD change rebuilds nothing.
    let config_only = |st: &mut State, desc: String| {
        history(st, desc, true, None);
    };
    match &node.instruction {
        Instruction::From { .. } => Ok(()),
        Instruction::Env(pairs) => {
            // One value per instruction: every pair sees the env from before it.
            let mut out = Vec::new();
            for (k, v) in pairs {
                out.push((ex(st, k)?, ex(st, v)?));
            }
            for (k, v) in &out {
                rc(st).env_set(k, v);
            }
            let desc = format!(
                "ENV {}",
                out.iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            );
            config_only(st, desc);
            Ok(())
        }
        Instruction::Arg(defs) => {
            for (n, def) in defs {
                let def = def.as_ref().map(|d| ex(st, d)).transpose()?;
                let v = crate::graph::args::stage_arg_value(&ctx.req.graph, n, def);
                st.args.push((n.clone(), v));
            }
            let shown: Vec<String> = st.args[st.args.len() - defs.len()..]
                .iter()
                .map(|(n, v)| super::history::arg_shown(n, v.as_deref()))
                .collect();
            history(st, format!("ARG {}", shown.join(" ")), true, None);
            // Like BuildKit, an ARG alone invalidates nothing: RUN keys include the env it
            // sees (ARG values included), and other steps key on their expanded words.
            Ok(())
        }
        Instruction::Label(pairs) => {
            let mut out = Vec::new();
            for (k, v) in pairs {
                out.push((ex(st, k)?, ex(st, v)?));
            }
            config::labels(rc(st), &out);
            config_only(
                st,
                format!(
                    "LABEL {}",
                    out.iter()
                        .map(|(k, v)| format!("{k}={v}"))
                        .collect::<Vec<_>>()
                        .join(" ")
                ),
            );
            Ok(())
        }
        Instruction::Maintainer(m) => {
            st.config.author = Some(m.clone());
            config_only(st, format!("MAINTAINER {m}"));
            Ok(())
        }
        Instruction::Expose(ports) => {
            let mut all = Vec::new();
            for p in ports {
                all.extend(expand::expand_words(p, &st.lookup(), escape)?);
            }
            let ports = config::expose(rc(st), &all)?;
            config_only(st, format!("EXPOSE {}", history::go_list(&ports)));
            Ok(())
        }
        Instruction::Volume(paths) => {
            let mut all = Vec::new();
            for p in paths {
                all.push(ex(st, p)?);
            }
            config::volume(rc(st), &all)?;
            config_only(st, format!("VOLUME {}", history::go_list(&all)));
            Ok(())
        }
        Instruction::User(u) => {
            let u = ex(st, u)?;
            rc(st).user = Some(u.clone());
            config_only(st, format!("USER {u}"));
            Ok(())
        }
        Instruction::StopSignal(s) => {
            let s = ex(st, s)?;
            rc(st).stop_signal = Some(s.clone());
            config_only(st, format!("STOPSIGNAL {s}"));
            Ok(())
        }
        Instruction::Shell(sh) => {
            rc(st).shell = Some(sh.clone());
            config_only(st, format!("SHELL {}", history::go_list(sh)));
            Ok(())
        }
        Instruction::Cmd(c) => {
            config::set_cmd(rc(st), c);
            st.cmd_set = true;
            let v = st.config.config.cmd.clone().unwrap_or_default();
            config_only(st, format!("CMD {}", history::go_quote_list(&v)));
            Ok(())
        }
        Instruction::Entrypoint(c) => {
            let cmd_set = st.cmd_set;
            config::set_entrypoint(rc(st), c, cmd_set);
            let v = st.config.config.entrypoint.clone().unwrap_or_default();
            config_only(st, format!("ENTRYPOINT {}", history::go_quote_list(&v)));
            Ok(())
        }
        Instruction::Healthcheck(h) => {
            config::healthcheck(rc(st), h.as_ref())?;
            let hc = st.config.config.healthcheck.clone().unwrap_or_default();
            config_only(st, history::healthcheck(&hc));
            Ok(())
        }
        Instruction::Onbuild(inner) => {
            let text = inner.original.clone();
            // BuildKit records the trigger in the config only, with no history entry.
            rc(st).on_build.get_or_insert_with(Vec::new).push(text);
            Ok(())
        }
        Instruction::Workdir(w) => {
            let w = ex(st, w)?;
            let dir = config::workdir(rc(st), &w);
            layer_step(
                ctx,
                st,
                name,
                no_cache,
                &[
                    "WORKDIR",
                    &dir,
                    st.config.config.user.clone().unwrap_or_default().as_str(),
                ],
                format!("WORKDIR {dir}"),
                |st, out, _| make_workdir(ctx, st, &dir, out),
            )
        }
        Instruction::Run { .. } => {
            // RUN --mount=from=<stage> mounts that stage's snapshots.
            for (_, from) in &step.mount_from {
                if let Source::Stage(i) = from
                    && let Some(r) = deps.get(i)
                {
                    materialize(ctx, &r.layers)?;
                }
            }
            run::run_step(ctx, st, step, deps, name, no_cache)
        }
        Instruction::Copy(a) | Instruction::Add(a) => {
            let add = matches!(node.instruction, Instruction::Add(_));
            copy_step(ctx, st, step, a, add, deps, name, no_cache)
        }
    }
}

/// Runs a layer-producing step through the cache: on a hit the cached layer is reused, on a
/// miss `work` fills an empty dir that becomes the layer. `work` returning false means
/// "nothing to do": no layer, a config-only history entry.
pub(crate) fn layer_step(
    ctx: &Ctx,
    st: &mut State,
    name: &str,
    no_cache: bool,
    key_parts: &[&str],
    created_by: String,
    work: impl FnOnce(&State, &Path, usize) -> Result<bool>,
) -> Result<()> {
    layer_step_with(
        ctx,
        st,
        name,
        no_cache,
        key_parts,
        created_by,
        |st, out, id| {
            Ok(if work(st, out, id)? {
                Some(layers::ExtraFiles::new())
            } else {
                None
            })
        },
    )
}

/// [`layer_step`] whose work may leave files outside `out` to archive with it (COPY from the
/// context, see [`copy::apply_deferred`]): `None` means nothing to do.
pub(crate) fn layer_step_with(
    ctx: &Ctx,
    st: &mut State,
    name: &str,
    no_cache: bool,
    key_parts: &[&str],
    created_by: String,
    work: impl FnOnce(&State, &Path, usize) -> Result<Option<layers::ExtraFiles>>,
) -> Result<()> {
    let key = cache::key(&st.key, key_parts);
    let id = ctx.new_id();
    let t = Instant::now();
    ctx.reporter.event(BuildEvent::Started {
        id,
        name: name.to_string(),
    });
    if !no_cache && let Some(hit) = cached_layer(ctx, &key) {
        ctx.reporter.event(BuildEvent::Cached { id });
        ctx.use_key(&key);
        let created = hit.1.clone();
        st.layers.push(hit.0);
        st.key = key;
        st.last_created = created.clone();
        history(st, created_by, false, created);
        return Ok(());
    }
    let tmp = ctx.store.tmp_dir()?;
    let out = tmp.path().join("layer");
    std::fs::create_dir(&out).map_err(|source| EngineError::Io {
        path: out.clone(),
        source,
    })?;
    let produced = match materialize(ctx, &st.layers).and_then(|()| work(st, &out, id)) {
        Ok(p) => p,
        Err(e) => {
            ctx.reporter.event(BuildEvent::Failed {
                id,
                message: e.to_string(),
            });
            return Err(e);
        }
    };
    st.key = key.clone();
    let Some(extra) = produced else {
        history(st, created_by, true, None);
        ctx.reporter.event(BuildEvent::Done {
            id,
            secs: t.elapsed().as_secs_f64(),
        });
        return Ok(());
    };
    let layer = commit_layer_with(ctx, &out, &extra, st.stream)?;
    let created = now_rfc3339(ctx.req.source_date_epoch);
    ctx.cache.put(
        &key,
        &CacheEntry {
            layer: CachedLayer {
                digest: layer.desc.digest.clone(),
                diff_id: layer.diff_id.clone(),
                size: layer.desc.size,
                media_type: layer.desc.media_type.clone(),
            },
            created: Some(created.clone()),
        },
    )?;
    ctx.use_key(&key);
    st.layers.push(layer);
    st.last_created = Some(created.clone());
    history(st, created_by, false, Some(created));
    ctx.reporter.event(BuildEvent::Done {
        id,
        secs: t.elapsed().as_secs_f64(),
    });
    Ok(())
}

fn cached_layer(ctx: &Ctx, key: &Digest) -> Option<(Layer, Option<String>)> {
    let e = ctx.cache.get(key)?;
    // A missing or truncated blob makes the entry a miss (full re-hashing would cost a warm
    // build a read of every layer; snapshots are checked against their diffID on unpack).
    let len = std::fs::metadata(ctx.store.blob_path(&e.layer.digest))
        .ok()?
        .len();
    if len != e.layer.size {
        return None;
    }
    let desc = Descriptor::new(&e.layer.media_type, e.layer.digest.clone(), e.layer.size);
    // Unpacked only when a later step needs it (see [`materialize`]).
    let snapshot = ctx.store.snapshot_path(&e.layer.diff_id);
    Some((
        Layer {
            desc,
            diff_id: e.layer.diff_id,
            snapshot,
        },
        e.created,
    ))
}

/// Turns a filled dir into a stored layer blob and moves it into place as its snapshot.
/// With `extra` files the dir is not the layer's content: no snapshot is made now;
/// [`materialize`] unpacks the blob if a step needs it. With `stream` (a layer of the target
/// stage) and `--push`, the blob is uploaded while it is written (see [`stream`]).
fn commit_layer_with(
    ctx: &Ctx,
    dir: &Path,
    extra: &layers::ExtraFiles,
    stream: bool,
) -> Result<Layer> {
    let opts = LayerOptions {
        compression: ctx.req.compression,
        source_date_epoch: ctx.req.source_date_epoch,
    };
    // The layer writer hashes what it emits (the blob digest): no second hash in the store.
    let mut w = ctx.store.blob_writer_hashed_by_producer()?;
    let dest = if stream {
        stream::destination(ctx)
    } else {
        None
    };
    let b = match dest {
        None => {
            let b = layers::write_layer_with(dir, extra, &opts, &mut w)?;
            w.commit_sized(&b.digest, b.size)?;
            b
        }
        Some((client, dest)) => std::thread::scope(|s| -> Result<layers::LayerBlob> {
            let progress = std::sync::Arc::new(stream::Progress::default());
            let follow = stream::Follow::new(w.reopen()?, progress.clone());
            let uploader = s.spawn(move || stream::upload(client, dest, follow));
            let written = layers::write_layer_with(
                dir,
                extra,
                &opts,
                &mut stream::Tracked::new(&mut w, progress.clone()),
            );
            // The upload's tail goes out while the blob is fsynced and committed.
            match &written {
                Ok(b) => progress.complete(b.digest.clone()),
                Err(_) => progress.fail(),
            }
            let committed = written.map_err(EngineError::from).and_then(|b| {
                w.commit_sized(&b.digest, b.size)?;
                Ok(b)
            });
            if committed.is_err() {
                progress.fail();
            }
            match uploader.join() {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => stream::failed(ctx, dest, &e.to_string()),
                Err(_) => stream::failed(ctx, dest, "the upload thread panicked"),
            }
            committed
        })?,
    };
    let snapshot = if extra.is_empty() {
        ctx.store.commit_snapshot(&b.diff_id, dir)?
    } else {
        ctx.store.snapshot_path(&b.diff_id)
    };
    Ok(Layer {
        desc: Descriptor::new(&b.media_type, b.digest, b.size),
        diff_id: b.diff_id,
        snapshot,
    })
}

/// Unpacks the snapshots of `layers` that are not there yet (layers reused from the cache, or
/// written from deferred COPY files, get theirs only when a step mounts them).
pub(crate) fn materialize(ctx: &Ctx, layers: &[Layer]) -> Result<()> {
    for l in layers {
        if !l.snapshot.is_dir() {
            base::ensure_snapshot(ctx.store, "build cache", &l.desc, &l.diff_id).map_err(|e| {
                EngineError::BaseImage {
                    reference: format!(
                        "layer {} (unpacking it from the store failed; rebuild with --no-cache)",
                        l.desc.digest
                    ),
                    error: Box::new(e),
                }
            })?;
        }
    }
    Ok(())
}

/// A read-only merged view of a stage's layers (an empty dir for scratch).
pub(crate) enum RootView {
    Mounted(crate::executor::View),
    Empty(tempfile::TempDir),
}

impl RootView {
    pub fn open(ctx: &Ctx, lowers: &[PathBuf]) -> Result<RootView> {
        if lowers.is_empty() {
            return Ok(RootView::Empty(ctx.store.tmp_dir()?));
        }
        Ok(RootView::Mounted(ctx.isolation.view(lowers)?))
    }
    pub fn path(&self) -> &Path {
        match self {
            RootView::Mounted(v) => v.path(),
            RootView::Empty(t) => t.path(),
        }
    }
}

/// WORKDIR: create the missing components of `dir` in `out` (owned by the current USER), with
/// existing parents copied from the image so the layer does not change their metadata.
fn make_workdir(ctx: &Ctx, st: &State, dir: &str, out: &Path) -> Result<bool> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let lowers = st.lowers();
    let view = if lowers.is_empty() {
        None
    } else {
        Some(ctx.isolation.view(&lowers)?)
    };
    let user = st.config.config.user.clone().unwrap_or_default();
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
            Some(m) if m.file_type().is_symlink() || !m.is_dir() => {
                // Following an image symlink here could leave the root; BuildKit resolves it
                // in-root. The directory exists in some form: nothing to create.
                return Ok(created_any);
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
                std::os::unix::fs::lchown(&target, Some(m.uid()), Some(m.gid())).map_err(
                    |source| EngineError::Io {
                        path: target.clone(),
                        source,
                    },
                )?;
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
                std::os::unix::fs::lchown(&target, Some(owner.0), Some(owner.1)).map_err(
                    |source| EngineError::Io {
                        path: target.clone(),
                        source,
                    },
                )?;
                created_any = true;
            }
        }
    }
    // Parent dir mtimes were reset by creating children; restore them for the copied ones.
    Ok(created_any)
}

#[allow(clippy::too_many_arguments)]
fn copy_step(
    ctx: &Ctx,
    st: &mut State,
    step: &Step,
    a: &CopyArgs,
    add: bool,
    deps: &HashMap<usize, Arc<StageResult>>,
    name: &str,
    no_cache: bool,
) -> Result<()> {
    let escape = '\\';
    let ex = |w: &str| -> Result<String> { Ok(expand::expand_word(w, &st.lookup(), escape)?) };
    let mut sources = Vec::new();
    let mut heredocs = Vec::new();
    for s in &a.sources {
        if let Some(h) = a
            .heredocs
            .iter()
            .find(|h| heredoc_name(s).is_some_and(|n| n == h.name))
        {
            let content = if h.expand {
                expand_heredoc(&h.content, &st.lookup())
            } else {
                h.content.clone()
            };
            heredocs.push((s.clone(), content));
            sources.push(s.clone());
        } else {
            sources.push(ex(s)?);
        }
    }
    let dest_raw = ex(&a.dest)?;
    let wd = st
        .config
        .config
        .working_dir
        .clone()
        .unwrap_or_else(|| "/".into());
    let dest = if dest_raw.starts_with('/') {
        dest_raw.clone()
    } else {
        let trailing = dest_raw.ends_with('/') || dest_raw == "." || dest_raw.is_empty();
        let mut d = config::clean_path(&format!("{wd}/{dest_raw}"));
        if trailing && !d.ends_with('/') {
            d.push('/');
        }
        d
    };
    let chmod = a.chmod.as_deref().map(ex).transpose()?;
    let chown_spec = a.chown.as_deref().map(ex).transpose()?;
    let mut exclude = Vec::new();
    for e in &a.exclude {
        exclude.push(ex(e)?);
    }
    let checksum = a.checksum.as_deref().map(ex).transpose()?;

    // The source: the context, a stage's result, or an image.
    let from_layers: Option<(Vec<PathBuf>, String)> = match &step.from {
        None => None,
        Some(Source::Stage(i)) => {
            let r = deps.get(i).ok_or(EngineError::Cancelled)?;
            Some((
                r.layers.iter().map(|l| l.snapshot.clone()).collect(),
                r.key.to_string(),
            ))
        }
        Some(Source::Image(reference)) => {
            let b = load_image(ctx, &ex(reference)?)?;
            Some((
                b.layers.iter().map(|l| l.snapshot.clone()).collect(),
                b.manifest_digest.to_string(),
            ))
        }
        Some(Source::Scratch) => Some((vec![], "scratch".into())),
    };

    let mut req = CopyRequest {
        sources,
        dest: dest.clone(),
        chown: None,
        chmod,
        parents: a.parents,
        exclude,
        add,
        unpack: a.unpack,
        checksum,
        keep_git_dir: a.keep_git_dir,
        heredocs,
        source_date_epoch: ctx.req.source_date_epoch,
    };
    // The key needs no mounted view: the context's content key, or the source stage/image's
    // identity. Views are opened (and --chown names resolved) only when the step runs.
    let content = match &from_layers {
        Some((_, k)) => format!("from:{k}"),
        None => {
            let src = CopySource::Context {
                root: &ctx.req.context,
                ignore: &ctx.req.ignore,
            };
            copy::content_key(&src, &req, &ctx.hashes)?.to_string()
        }
    };
    let kw = if add { "ADD" } else { "COPY" };
    let flags = format!(
        "chown={:?} chmod={:?} parents={} exclude={:?} unpack={:?} checksum={:?} keepgit={} link={}",
        chown_spec,
        req.chmod,
        req.parents,
        req.exclude,
        req.unpack,
        req.checksum,
        req.keep_git_dir,
        a.link
    );
    let srcs = req.sources.join("\u{0}");
    let mut created_by = String::from(if add { "ADD" } else { "COPY" });
    if a.parents {
        created_by.push_str(" --parents");
    }
    if let Some(c) = &chown_spec {
        created_by.push_str(&format!(" --chown={c}"));
    }
    if let Some(c) = &req.chmod {
        created_by.push_str(&format!(" --chmod={c}"));
    }
    for s in req.sources.iter().filter(|s| heredoc_name(s).is_none()) {
        created_by.push(' ');
        created_by.push_str(s);
    }
    for (name, _) in &req.heredocs {
        created_by.push_str(&format!(" <<{}", heredoc_name(name).unwrap_or_default()));
    }
    created_by.push_str(&format!(" {dest_raw} # buildkit"));
    // `--link` (BuildKit applies it when there is no --chmod): the files are copied onto an
    // empty tree, so the layer holds fresh parent dirs and never looks at the image below, and
    // its cache entry does not depend on the layers below either (a changed base still reuses
    // it). A --chown by name reads the image's passwd, so that one stays keyed on the chain.
    let link = a.link && req.chmod.is_none();
    let independent = link
        && chown_spec
            .as_deref()
            .is_none_or(|c| c.split(':').all(|p| p.parse::<u32>().is_ok()));
    let chain_key = st.key.clone();
    if independent {
        st.key = cache::key(&Digest::of(b""), &["link"]);
    }
    let r = layer_step_with(
        ctx,
        st,
        name,
        no_cache,
        &[kw, &srcs, &dest, &flags, &content],
        created_by,
        |st, out, _| {
            // --chown names resolve in the destination image's passwd/group.
            let image_view = RootView::open(ctx, &st.lowers())?;
            let empty_dest = if link {
                Some(ctx.store.tmp_dir()?)
            } else {
                None
            };
            let dest_root = empty_dest
                .as_ref()
                .map_or_else(|| image_view.path(), |t| t.path());
            if let Some(spec) = &chown_spec {
                req.chown = Some(crate::executor::user::resolve_chown(
                    image_view.path(),
                    spec,
                )?);
            }
            let src_view = match &from_layers {
                Some((lowers, _)) => {
                    match &step.from {
                        Some(Source::Stage(i)) => {
                            if let Some(r) = deps.get(i) {
                                materialize(ctx, &r.layers)?;
                            }
                        }
                        Some(Source::Image(_)) | Some(Source::Scratch) | None => {}
                    }
                    Some(RootView::open(ctx, lowers)?)
                }
                None => None,
            };
            let src = match &src_view {
                Some(v) => CopySource::Rootfs(v.path()),
                None => CopySource::Context {
                    root: &ctx.req.context,
                    ignore: &ctx.req.ignore,
                },
            };
            Ok(Some(copy::apply_deferred(&src, &req, dest_root, out)?))
        },
    );
    if independent {
        // Later steps still build on everything below.
        st.key = cache::key(&chain_key, &["link", &st.key.to_string()]);
    }
    r
}

/// `<<EOF`, `<<-EOF`, `<<"EOF"` → `EOF`.
pub(crate) fn heredoc_name(word: &str) -> Option<String> {
    let w = word.strip_prefix("<<")?;
    let w = w.strip_prefix('-').unwrap_or(w);
    let w = w.trim_matches(|c| c == '"' || c == '\'');
    (!w.is_empty()).then(|| w.to_string())
}

/// Variable expansion in a heredoc body the way BuildKit does it for COPY/ADD: `$V`, `${V}`
/// and `${V:-w}`-style forms are expanded, quotes are left alone.
pub(crate) fn expand_heredoc(body: &str, env: &dyn Lookup) -> String {
    let mut out = String::with_capacity(body.len());
    let chars: Vec<char> = body.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\\' && i + 1 < chars.len() && chars[i + 1] == '$' {
            out.push('$');
            i += 2;
            continue;
        }
        if c != '$' || i + 1 >= chars.len() {
            out.push(c);
            i += 1;
            continue;
        }
        if chars[i + 1] == '{' {
            if let Some(end) = chars[i + 2..].iter().position(|&c| c == '}') {
                let inner: String = chars[i + 2..i + 2 + end].iter().collect();
                let word: String = format!("${{{inner}}}");
                match expand::expand_word(&word, env, '\\') {
                    Ok(v) => out.push_str(&v),
                    Err(_) => out.push_str(&word),
                }
                i += 3 + end;
                continue;
            }
            out.push(c);
            i += 1;
            continue;
        }
        let start = i + 1;
        let mut j = start;
        while j < chars.len() && (chars[j].is_ascii_alphanumeric() || chars[j] == '_') {
            j += 1;
        }
        if j == start {
            out.push(c);
            i += 1;
            continue;
        }
        let name: String = chars[start..j].iter().collect();
        out.push_str(&env.get(&name).unwrap_or_default());
        i = j;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn heredoc_names() {
        assert_eq!(heredoc_name("<<EOF").as_deref(), Some("EOF"));
        assert_eq!(heredoc_name("<<-EOT").as_deref(), Some("EOT"));
        assert_eq!(heredoc_name("<<'EOT'").as_deref(), Some("EOT"));
        assert_eq!(heredoc_name("file.txt"), None);
    }
}
