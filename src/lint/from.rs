//! The FROM line's rules, with the global ARG scope as BuildKit builds it: the predefined
//! platform args (`BUILDPLATFORM` … `TARGETSTAGE`, build args overriding them), then the
//! ARGs before the first FROM. UndefinedArgInFrom, RedundantTargetPlatform and
//! FromPlatformFlagConstDisallowed look at the real values; InvalidDefaultArgInFrom expands
//! each FROM with the ARGs' defaults alone, as if no build arg were given.

use super::source::NodeSource;
use super::{CheckConfig, Env, Request, Sink, StageNodes, expand_tracked, rules, suggest};
use crate::oci::Platform;
use crate::parser::Instruction;
use std::collections::BTreeSet;

/// The global scope and each stage's expanded FROM.
pub(super) struct Meta {
    /// Predefined args and global ARGs that have a value.
    pub global: Env,
    /// Each stage's base name after expansion (`None` when it does not expand).
    pub bases: Vec<Option<String>>,
    /// Each stage's `--platform` after expansion and parsing.
    pub platforms: Vec<Option<Platform>>,
}

fn predefined(req: &Request) -> Env {
    let (b, t) = (req.build_platform, req.target_platform);
    let variant = |p: &Platform| p.variant.clone().unwrap_or_default();
    let os_version = |p: &Platform| p.os_version.clone().unwrap_or_default();
    let mut env = Env::default();
    for (k, v) in [
        ("BUILDPLATFORM", b.to_string_short()),
        ("BUILDOS", b.os.clone()),
        ("BUILDOSVERSION", os_version(b)),
        ("BUILDARCH", b.architecture.clone()),
        ("BUILDVARIANT", variant(b)),
        ("TARGETPLATFORM", t.to_string_short()),
        ("TARGETOS", t.os.clone()),
        ("TARGETOSVERSION", os_version(t)),
        ("TARGETARCH", t.architecture.clone()),
        ("TARGETVARIANT", variant(t)),
        ("TARGETSTAGE", req.target.unwrap_or("default").to_string()),
    ] {
        let v = req.build_args.get(k).cloned().unwrap_or(v);
        env.set(k, &v);
    }
    env
}

/// The global ARGs over `env`: a build arg's value, else the default expanded against the
/// args before it. `None` when a default does not expand.
fn meta_args(
    req: &Request,
    mut env: Env,
    with_build_args: bool,
) -> Option<(Env, BTreeSet<String>)> {
    let escape = req.dockerfile.directives.escape;
    let mut declared = BTreeSet::new();
    for node in &req.dockerfile.nodes {
        let Instruction::Arg(defs) = &node.instruction else {
            break;
        };
        for (k, d) in defs {
            declared.insert(k.clone());
            let given = with_build_args.then(|| req.build_args.get(k)).flatten();
            let v = match (given, d) {
                (Some(v), _) => Some(v.clone()),
                (None, Some(d)) => Some(expand_tracked(d, &|n| env.get(n), escape).value?),
                (None, None) => None,
            };
            if let Some(v) = v {
                env.set(k, &v);
            }
        }
    }
    Some((env, declared))
}

/// Runs the FROM rules; returns the scope the stages start from.
pub(super) fn check(
    req: &Request,
    stages: &[StageNodes],
    src: &[NodeSource],
    cfg: &CheckConfig,
    sink: &mut Sink,
) -> Meta {
    let escape = req.dockerfile.directives.escape;
    let nodes = &req.dockerfile.nodes;
    let from_of = |st: &StageNodes| match &nodes[st.from].instruction {
        Instruction::From {
            image, platform, ..
        } => (image.clone(), platform.clone()),
        _ => (String::new(), None),
    };

    // InvalidDefaultArgInFrom: defaults only (build args still set the predefined ones).
    if let Some((defaults, _)) = meta_args(req, predefined(req), false) {
        for st in stages {
            let (image, _) = from_of(st);
            let Some(v) = expand_tracked(&image, &|n| defaults.get(n), escape).value else {
                break;
            };
            if crate::registry::ImageRef::parse(&v).is_err() && v != "scratch" {
                sink.report(
                    cfg,
                    &rules::INVALID_DEFAULT_ARG_IN_FROM,
                    nodes[st.from].span,
                    format!(
                        "Default value for ARG {image} results in empty or invalid base image name"
                    ),
                );
            }
        }
    }

    let (global, declared) =
        meta_args(req, predefined(req), true).unwrap_or_else(|| (predefined(req), BTreeSet::new()));
    let mut keys: BTreeSet<String> = declared;
    keys.extend(global.keys().map(str::to_string));
    let undefined =
        |sink: &mut Sink, local: &CheckConfig, unmatched: &BTreeSet<String>, st: &StageNodes| {
            for arg in unmatched.iter().filter(|a| !keys.contains(*a)) {
                let detail = match suggest(arg, keys.iter().map(String::as_str)) {
                    Some(s) => format!("FROM argument '{arg}' is not declared (did you mean {s}?)"),
                    None => format!("FROM argument '{arg}' is not declared"),
                };
                sink.report(
                    local,
                    &rules::UNDEFINED_ARG_IN_FROM,
                    nodes[st.from].span,
                    detail,
                );
            }
        };

    let mut bases = Vec::with_capacity(stages.len());
    let mut platforms = vec![None; stages.len()];
    for (i, st) in stages.iter().enumerate() {
        let local = cfg.with_comments(&src[st.from].comments);
        let span = nodes[st.from].span;
        let (image, platform) = from_of(st);
        let name = expand_tracked(&image, &|n| global.get(n), escape);
        undefined(sink, &local, &name.unmatched, st);
        bases.push(name.value);
        let Some(raw) = platform else { continue };
        let p = expand_tracked(&raw, &|n| global.get(n), escape);
        undefined(sink, &local, &p.unmatched, st);
        let Some(value) = p.value else { continue };
        platforms[i] = Platform::parse(&value);
        if p.matched.len() == 1
            && p.unmatched.is_empty()
            && p.matched.contains("TARGETPLATFORM")
            && global.get("TARGETPLATFORM").as_deref() == Some(value.as_str())
        {
            sink.report(
                &local,
                &rules::REDUNDANT_TARGET_PLATFORM,
                span,
                format!("Setting platform to predefined {raw} in FROM is redundant as this is the default behavior"),
            );
        }
        if p.matched.is_empty() && p.unmatched.is_empty() {
            let stage = st.name.as_deref().unwrap_or("");
            if let Some(parsed) = Platform::parse(&value)
                && !stage.contains(parsed.os.as_str())
                && !stage.contains(parsed.architecture.as_str())
            {
                sink.report(
                    &local,
                    &rules::FROM_PLATFORM_FLAG_CONST_DISALLOWED,
                    span,
                    format!("FROM --platform flag should not use constant value {value:?}"),
                );
            }
        }
    }
    Meta {
        global,
        bases,
        platforms,
    }
}
