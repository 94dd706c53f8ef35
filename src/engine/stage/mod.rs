//! One stage: its base, then each step in order (see [`dispatch`]), with the stage's state
//! (config, layers, cache key, ARGs) threaded from step to step.

mod clock;
mod config_step;
mod copy_step;
mod dispatch;
mod explain;
mod heredoc;
mod images;
mod layer_step;
mod named;
mod naming;
mod view;
mod workdir;

pub use clock::{parse_rfc3339, rfc3339};
pub(crate) use heredoc::heredoc_name;
pub(crate) use images::load_image;
pub(crate) use layer_step::{commit_layer_with, layer_step, materialize};
pub(crate) use named::{Named, named};
pub(crate) use view::RootView;

use super::{Ctx, EngineError, Layer, Result, StageResult};
use crate::cache::StepKey;
use crate::graph::{Source, Stage, Step};
use crate::oci::{Digest, History, ImageConfig, Platform, RootFs, RunConfig};
use crate::parser::expand::Lookup;
use crate::parser::{Instruction, Node};
use naming::StepNamer;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

/// The default PATH BuildKit gives an image without one (scratch).
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// What a stage carries from step to step.
pub(crate) struct State {
    pub config: ImageConfig,
    pub layers: Vec<Layer>,
    pub key: Digest,
    /// ARGs declared in this stage (and, through `FROM <stage>`, in the stages it is built
    /// on), in order, with their values (None: declared, unset).
    pub args: Vec<(String, Option<String>)>,
    /// ARG values that shadow the image env, as in BuildKit's state: an ARG with a value
    /// sets its variable for expansion and RUN until a later ENV of the same name.
    pub arg_env: Vec<(String, String)>,
    /// CMD was set in this stage (ENTRYPOINT then keeps it).
    pub cmd_set: bool,
    /// `created` of the newest layer, used for config-only history entries so a cached
    /// rebuild is byte-identical.
    pub last_created: Option<String>,
    /// This is the target stage: its new layers are streamed to the push destination.
    pub stream: bool,
    /// Where the current step is, for cache-miss explanations.
    pub at: explain::StepAt,
}

impl State {
    /// The variables expansion sees: the image env, with the ARG values declared after
    /// the last ENV of their name on top (the later of ENV and ARG wins, as in BuildKit).
    pub fn lookup(&self) -> impl Lookup + '_ {
        move |name: &str| -> Option<String> {
            if let Some((_, v)) = self.arg_env.iter().rev().find(|(n, _)| n == name) {
                return Some(v.clone());
            }
            self.config.config.env_get(name).map(str::to_string)
        }
    }

    /// RUN's environment: the image env with the ARG values of [`State::arg_env`] over it
    /// (replacing a variable in place, else appended).
    pub fn run_env(&self) -> Vec<String> {
        let mut env = self.config.config.env.clone().unwrap_or_default();
        for (n, v) in &self.arg_env {
            let entry = format!("{n}={v}");
            match env
                .iter_mut()
                .find(|e| e.split_once('=').map_or(e.as_str(), |(k, _)| k) == n)
            {
                Some(e) => *e = entry,
                None => env.push(entry),
            }
        }
        env
    }

    /// ARG `name` declared with `value`: recorded, and a value shadows the env from here on.
    pub fn declare_arg(&mut self, name: &str, value: Option<String>) {
        if let Some(v) = &value {
            self.arg_env.retain(|(n, _)| n != name);
            self.arg_env.push((name.to_string(), v.clone()));
        }
        self.args.push((name.to_string(), value));
    }

    /// ENV `name=value`: set in the image config; it now wins over an earlier ARG.
    pub fn set_env(&mut self, name: &str, value: &str) {
        self.arg_env.retain(|(n, _)| n != name);
        self.config.config.env_set(name, value);
    }

    /// The snapshot dirs of the stage's layers, lowest first (the overlay lowers).
    pub fn lowers(&self) -> Vec<PathBuf> {
        self.layers.iter().map(|l| l.snapshot.clone()).collect()
    }

    /// Appends the history entry of a step; without `created`, the newest layer's time.
    pub fn push_history(&mut self, created_by: String, empty_layer: bool, created: Option<String>) {
        self.config.history.push(History {
            created: created.or_else(|| self.last_created.clone()),
            created_by: Some(created_by),
            comment: Some("buildkit.dockerfile.v0".into()),
            empty_layer,
            ..Default::default()
        });
    }
}

/// The platform `stage` builds for: its `FROM --platform` when that parses, else the build's.
fn stage_platform(ctx: &Ctx, stage: &Stage) -> Platform {
    stage
        .platform
        .as_deref()
        .and_then(Platform::parse)
        .unwrap_or_else(|| ctx.req.platform.clone())
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

fn scratch_config(p: &Platform) -> ImageConfig {
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

/// Builds `stage` on the results of the stages it needs (`deps`), stopping between steps
/// once `cancelled` says another stage failed.
pub(crate) fn run_stage(
    ctx: &Ctx,
    stage: &Stage,
    deps: &HashMap<usize, Arc<StageResult>>,
    cancelled: &dyn Fn() -> bool,
) -> Result<StageResult> {
    // BuildKit's FROM vertex names the resolved image: `docker.io/library/busybox:latest@sha256:…`.
    let mut from_name = None;
    // FROM a named directory: its files, copied as the stage's first step.
    let mut context_layer: Option<Step> = None;
    let stream = stage.index == ctx.req.graph.target;
    let platform = stage_platform(ctx, stage);
    let mut st = match &stage.base {
        Source::Scratch => scratch_state(&platform, stream),
        Source::Stage(i) => {
            let r = deps.get(i).ok_or(EngineError::Cancelled)?;
            State {
                config: r.config.clone(),
                layers: r.layers.clone(),
                key: r.key.clone(),
                // A stage built on a stage starts with its ARGs (BuildKit's state carries them),
                // but below the env of the image it starts from: an inherited ARG no longer
                // shadows an ENV of its name (BuildKit: `ENV P=env`, `ARG P=arg`, then
                // `FROM that-stage` sees "env").
                args: r.args.clone(),
                arg_env: r
                    .arg_env
                    .iter()
                    .filter(|(n, _)| r.config.config.env_get(n).is_none())
                    .cloned()
                    .collect(),
                cmd_set: false,
                last_created: r.config.created.clone(),
                stream,
                at: Default::default(),
            }
        }
        Source::Image(reference) => {
            let b =
                load_image(ctx, reference, &platform).map_err(|e| at(ctx, &stage.from_node, e))?;
            from_name = Some(match crate::registry::ImageRef::parse(reference) {
                Ok(r) if r.digest.is_some() => r.to_string(),
                Ok(r) => format!("{r}@{}", b.manifest_digest),
                Err(_) => crate::registry::auth::redact_credentials(reference),
            });
            image_state(b, &platform, stream)
        }
        // A named context: an OCI layout's image is a base like any image; a directory is
        // scratch with the directory's files as its first layer (below, as a COPY).
        Source::Context(k) => {
            match named(ctx, k, &platform).map_err(|e| at(ctx, &stage.from_node, e))? {
                Named::Image(b) => {
                    from_name = Some(format!("{}@{}", b.reference, b.manifest_digest));
                    image_state(*b, &platform, stream)
                }
                Named::Dir { .. } => {
                    let mut node =
                        crate::parser::parse_instruction(&format!("COPY --from={k} . /"), '\\')
                            .map_err(|e| {
                                at(
                                    ctx,
                                    &stage.from_node,
                                    EngineError::BadValue {
                                        what: "build context",
                                        value: k.clone(),
                                        reason: e.to_string(),
                                    },
                                )
                            })?;
                    node.span = stage.from_node.span;
                    context_layer = Some(Step {
                        node,
                        from: Some(Source::Context(k.clone())),
                        mount_from: vec![],
                    });
                    scratch_state(&platform, stream)
                }
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
    // trigger's errors point at the FROM line that pulled it in. Triggers are parsed with the
    // default escape, as BuildKit does (they come from an image, not this Dockerfile).
    let mut steps: Vec<Step> = context_layer.into_iter().collect();
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
    let (base_layers, base_history) = (st.layers.len(), st.config.history.len());

    st.at.stage = format!(
        "{}@{}",
        stage
            .name
            .clone()
            .unwrap_or_else(|| stage.index.to_string()),
        platform.to_string_short()
    );
    let mut namer = StepNamer::new(ctx, stage, &steps);
    if let Some(f) = from_name {
        let id = ctx.new_id();
        ctx.reporter.event(super::BuildEvent::Started {
            id,
            name: namer.from(&f),
        });
        ctx.reporter
            .event(super::BuildEvent::Done { id, secs: 0.0 });
    }
    for (n, step) in steps.iter().enumerate() {
        if cancelled() {
            return Err(EngineError::Cancelled);
        }
        let name = namer.name(&step.node, n < triggers_n);
        st.at.index = n;
        st.at.text = step.node.original.clone();
        let before = st.layers.len();
        dispatch::run_step(ctx, &mut st, step, deps, &name, no_cache)
            .map_err(|e| at(ctx, &step.node, e))?;
        ctx.trace.step(crate::engine::trace::StepRecord {
            stage: stage.index,
            text: step.node.original.clone(),
            lines: (step.node.span.start, step.node.span.end),
            layer: st
                .layers
                .get(before..)
                .and_then(|l| l.last())
                .map(|l| l.desc.clone()),
            from_stages: step
                .from
                .iter()
                .chain(step.mount_from.iter().map(|(_, s)| s))
                .filter_map(|s| match s {
                    Source::Stage(i) => Some(*i),
                    _ => None,
                })
                .collect(),
        });
    }
    ctx.trace.stage(crate::engine::trace::StageRecord {
        index: stage.index,
        name: stage.name.clone(),
        line: stage.from_node.span.start,
        base: match &stage.base {
            Source::Scratch => "scratch".to_string(),
            Source::Stage(i) => format!("stage {i}"),
            Source::Image(r) | Source::Context(r) => r.clone(),
        },
        layers: st.layers.iter().map(|l| l.desc.clone()).collect(),
    });
    if let Some(c) = &st.last_created {
        st.config.created = Some(c.clone());
    }
    Ok(StageResult {
        config: st.config,
        layers: st.layers,
        key: st.key,
        args: st.args,
        arg_env: st.arg_env,
        base_layers,
        base_history,
    })
}

/// The state a stage starts with on image `b` (FROM an image or an OCI layout).
/// An empty stage (`FROM scratch`, or the start of a named directory's files).
fn scratch_state(platform: &Platform, stream: bool) -> State {
    State {
        config: scratch_config(platform),
        layers: vec![],
        key: StepKey::new("scratch")
            .part("platform", platform.to_string_short())
            .root(),
        args: vec![],
        arg_env: vec![],
        cmd_set: false,
        last_created: None,
        stream,
        at: Default::default(),
    }
}

fn image_state(b: crate::engine::base::BaseImage, platform: &Platform, stream: bool) -> State {
    // The platform too: a single-platform base serves every platform it is asked for.
    let key = StepKey::new("image")
        .part("manifest", b.manifest_digest.to_string())
        .part("platform", platform.to_string_short())
        .root();
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
        arg_env: vec![],
        cmd_set: false,
        last_created,
        stream,
        at: explain::StepAt {
            base: Some(b.manifest_digest.to_string()),
            ..Default::default()
        },
    }
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
