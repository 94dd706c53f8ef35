//! Splits the AST into stages, resolves FROM with global ARGs, `--from` references to stages or
//! images, orders and prunes what the target needs, and rejects cycles.

use super::*;
use crate::oci::Platform;
use crate::parser::expand::expand_word;
use crate::parser::{Instruction, mounts};

fn invalid(line: usize, message: impl Into<String>) -> GraphError {
    GraphError::Invalid {
        line,
        message: message.into(),
    }
}

fn predefined(opts: &GraphOptions) -> BTreeMap<String, String> {
    let host = Platform::host();
    let target = opts
        .platform
        .as_deref()
        .and_then(Platform::parse)
        .unwrap_or_else(|| host.clone());
    let mut m = BTreeMap::new();
    for (prefix, p) in [("TARGET", &target), ("BUILD", &host)] {
        m.insert(format!("{prefix}PLATFORM"), p.to_string_short());
        m.insert(format!("{prefix}OS"), p.os.clone());
        m.insert(format!("{prefix}ARCH"), p.architecture.clone());
        m.insert(
            format!("{prefix}VARIANT"),
            p.variant.clone().unwrap_or_default(),
        );
    }
    m
}

/// Builds the graph.
pub fn build(df: &Dockerfile, opts: &GraphOptions) -> Result<BuildGraph, GraphError> {
    let escape = df.directives.escape;
    let mut build_args = predefined(opts);
    build_args.extend(opts.build_args.clone());

    // Global ARGs before the first FROM.
    let mut global_args: BTreeMap<String, Option<String>> = BTreeMap::new();
    let mut idx = 0;
    while idx < df.nodes.len() {
        let Instruction::Arg(defs) = &df.nodes[idx].instruction else {
            break;
        };
        for (n, d) in defs {
            let lookup = |k: &str| {
                global_args
                    .get(k)
                    .cloned()
                    .flatten()
                    .or_else(|| build_args.get(k).filter(|_| is_predefined(k)).cloned())
            };
            let d = d
                .as_ref()
                .map(|d| {
                    expand_word(d, &lookup, escape)
                        .map_err(|e| invalid(df.nodes[idx].span.start, e.to_string()))
                })
                .transpose()?;
            let v = opts.build_args.get(n).cloned().or(d);
            global_args.insert(n.clone(), v);
        }
        idx += 1;
    }
    let meta_lookup = |k: &str| {
        global_args
            .get(k)
            .cloned()
            .flatten()
            .or_else(|| build_args.get(k).filter(|_| is_predefined(k)).cloned())
    };

    // Stages.
    let mut stages: Vec<Stage> = Vec::new();
    for node in &df.nodes[idx..] {
        match &node.instruction {
            Instruction::From {
                image,
                name,
                platform,
            } => {
                let line = node.span.start;
                let image = expand_word(image, &meta_lookup, escape)
                    .map_err(|e| invalid(line, e.to_string()))?;
                if image.trim().is_empty() {
                    return Err(invalid(line, "base name (FROM) should not be blank"));
                }
                let platform = platform
                    .as_ref()
                    .map(|p| {
                        expand_word(p, &meta_lookup, escape)
                            .map_err(|e| invalid(line, e.to_string()))
                    })
                    .transpose()?;
                // Exact matches, as BuildKit: `FROM Builder` names an image, not stage `builder`.
                // A name used twice is allowed (BuildKit warns: DuplicateStageName): FROM
                // takes the latest stage so named before it.
                let base = if image == "scratch" {
                    Source::Scratch
                } else if let Some(s) = stages
                    .iter()
                    .rev()
                    .find(|s| s.name.as_deref() == Some(image.as_str()))
                {
                    Source::Stage(s.index)
                } else if let Some(s) = named_source(
                    opts,
                    &stages,
                    &image,
                    platform.as_deref().or(opts.platform.as_deref()),
                    line,
                )? {
                    s
                } else {
                    Source::Image(image)
                };
                stages.push(Stage {
                    index: stages.len(),
                    name: name.clone(),
                    base,
                    platform,
                    from_node: node.clone(),
                    steps: vec![],
                    deps: vec![],
                });
            }
            _ => {
                let Some(stage) = stages.last_mut() else {
                    return Err(invalid(
                        node.span.start,
                        "no build stage in current context",
                    ));
                };
                stage.steps.push(Step {
                    node: node.clone(),
                    from: None,
                    mount_from: vec![],
                });
            }
        }
    }
    if stages.is_empty() {
        return Err(invalid(0, "the Dockerfile has no FROM"));
    }

    // A stage whose name is a named context is that context instead (BuildKit drops its
    // FROM and its steps).
    for si in 0..stages.len() {
        let Some(n) = stages[si].name.clone() else {
            continue;
        };
        let line = stages[si].from_node.span.start;
        let platform = stages[si]
            .platform
            .clone()
            .or_else(|| opts.platform.clone());
        if let Some(s) = named_source(opts, &stages[..si], &n, platform.as_deref(), line)? {
            stages[si].base = s;
            stages[si].platform = None;
            stages[si].steps.clear();
        }
    }
    let stages_view = stages.clone();

    // Resolve --from references (by name, then index, else an image), with BuildKit's messages.
    let names: Vec<Option<String>> = stages.iter().map(|s| s.name.clone()).collect();
    let stage_label = |i: usize| names[i].clone().unwrap_or_else(|| format!("stage-{i}"));
    let resolve = |r: &str, line: usize, own: usize, copy: bool| -> Result<Source, GraphError> {
        let expanded = if copy {
            // COPY/ADD --from takes no variables: BuildKit refuses any word that expansion
            // would change, and suggests a stage as the workaround.
            let literal = expand_word(r, &|_: &str| None, escape).ok();
            if literal.as_deref() != Some(r) {
                return Err(invalid(
                    line,
                    "variable expansion is not supported for --from, define a new stage with \
                     FROM using ARG from global scope as a workaround",
                ));
            }
            r.to_string()
        } else {
            expand_word(r, &meta_lookup, escape).map_err(|e| invalid(line, e.to_string()))?
        };
        let lower = expanded.to_ascii_lowercase();
        // The last stage of that name, as BuildKit (even one defined later).
        let by_name = names
            .iter()
            .rposition(|n| n.as_deref() == Some(lower.as_str()));
        let by_index = if copy {
            expanded.parse::<usize>().ok()
        } else {
            None
        };
        let i = match (by_index, by_name) {
            (Some(i), _) if i >= names.len() => {
                return Err(invalid(line, format!("invalid stage index {i}")));
            }
            (Some(i), _) | (None, Some(i)) => i,
            (None, None) if lower == "scratch" => return Ok(Source::Scratch),
            (None, None) => match named_source(
                opts,
                &stages_view,
                &expanded,
                opts.platform.as_deref(),
                line,
            )? {
                // `target:STAGE` checks below like a stage named here.
                Some(Source::Stage(i)) => i,
                Some(s) => return Ok(s),
                None => return Ok(Source::Image(expanded)),
            },
        };
        if i == own {
            return Err(invalid(
                line,
                format!(
                    "circular dependency detected on stage: {}",
                    stage_label(own)
                ),
            ));
        }
        if i > own {
            return Err(invalid(
                line,
                format!(
                    "cannot copy from stage {:?}, it needs to be defined before current stage {:?}",
                    expanded,
                    stage_label(own)
                ),
            ));
        }
        Ok(Source::Stage(i))
    };
    // Indexes, not iterators: each stage's steps are updated while `names` is read.
    #[allow(clippy::needless_range_loop)]
    for si in 0..stages.len() {
        let mut deps = Vec::new();
        if let Source::Stage(b) = stages[si].base {
            deps.push(b);
        }
        for step_i in 0..stages[si].steps.len() {
            let node = stages[si].steps[step_i].node.clone();
            let line = node.span.start;
            match &node.instruction {
                Instruction::Copy(a) | Instruction::Add(a) => {
                    if let Some(f) = &a.from {
                        let s = resolve(f, line, si, true)?;
                        if let Source::Stage(d) = s {
                            deps.push(d);
                        }
                        stages[si].steps[step_i].from = Some(s);
                    }
                }
                Instruction::Run { mounts: ms, .. } => {
                    for (mi, raw) in ms.iter().enumerate() {
                        // Options are expanded with ARGs at build time; `from` is resolved now.
                        let Ok(spec) = mounts::parse_mount(raw) else {
                            continue;
                        };
                        let from = match spec {
                            mounts::MountSpec::Bind { from, .. }
                            | mounts::MountSpec::Cache(mounts::CacheMount { from, .. }) => from,
                            _ => None,
                        };
                        if let Some(f) = from {
                            let s = resolve(&f, line, si, false)?;
                            if let Source::Stage(d) = s {
                                deps.push(d);
                            }
                            stages[si].steps[step_i].mount_from.push((mi, s));
                        }
                    }
                }
                _ => {}
            }
        }
        deps.sort_unstable();
        deps.dedup();
        stages[si].deps = deps;
    }

    // Target and pruning.
    let target = match &opts.target {
        None => stages.len() - 1,
        Some(t) => {
            let lt = t.to_ascii_lowercase();
            stages
                .iter()
                .rposition(|s| s.name.as_deref() == Some(lt.as_str()))
                .ok_or_else(|| {
                    let known: Vec<String> = stages.iter().filter_map(|s| s.name.clone()).collect();
                    invalid(
                        0,
                        format!(
                            "target stage {t:?} could not be found (stages: {})",
                            known.join(", ")
                        ),
                    )
                })?
        }
    };
    let mut needed = vec![false; stages.len()];
    let mut stack = vec![target];
    while let Some(s) = stack.pop() {
        if needed[s] {
            continue;
        }
        needed[s] = true;
        stack.extend(stages[s].deps.iter().copied());
    }
    // Deps always point to earlier stages, so file order is a valid run order.
    let order: Vec<usize> = (0..stages.len()).filter(|&i| needed[i]).collect();
    Ok(BuildGraph {
        stages,
        target,
        order,
        global_args,
        build_args,
        escape,
    })
}

/// The source a named context gives `word` resolved for `platform`, if one is named so: an
/// image, a stage (of those before, `earlier`: `target:STAGE` must name one defined above its
/// use), or content.
fn named_source(
    opts: &GraphOptions,
    earlier: &[Stage],
    word: &str,
    platform: Option<&str>,
    line: usize,
) -> Result<Option<Source>, GraphError> {
    let Some((key, r)) = super::named::lookup(&opts.contexts, word, platform) else {
        return Ok(None);
    };
    Ok(Some(match r {
        super::named::NamedRef::Image(i) => Source::Image(i.clone()),
        super::named::NamedRef::Content => Source::Context(key),
        super::named::NamedRef::Stage(t) => {
            let lt = t.to_ascii_lowercase();
            let i = earlier
                .iter()
                .position(|s| s.name.as_deref() == Some(lt.as_str()))
                .ok_or_else(|| {
                    invalid(
                        line,
                        format!(
                            "--build-context {key}=target:{t}: no stage {t:?} is defined before \
                             this line"
                        ),
                    )
                })?;
            Source::Stage(i)
        }
    }))
}

fn is_predefined(k: &str) -> bool {
    matches!(
        k,
        "TARGETPLATFORM"
            | "TARGETOS"
            | "TARGETARCH"
            | "TARGETVARIANT"
            | "BUILDPLATFORM"
            | "BUILDOS"
            | "BUILDARCH"
            | "BUILDVARIANT"
    )
}
