//! `hoist build --dry-run` output: the stages the target needs in run order, each with its base
//! and every step with its line, its arguments expanded where the values are known at plan time
//! (global ARGs, build args, ARG defaults and ENV values written in the Dockerfile), and what
//! it depends on. A variable whose value only the base image knows is shown as `${NAME}`.
//! Deterministic: the same graph always renders the same text.

use super::{BuildGraph, Source, Stage};
use crate::parser::expand::{expand_word, expand_words};
use crate::parser::{Command, CopyArgs, Instruction, Node};
use std::collections::BTreeMap;
use std::fmt::Write;

/// Variables known at plan time in one stage: `Some(None)` is declared but unset.
#[derive(Clone, Default)]
struct Scope {
    env: BTreeMap<String, String>,
    args: BTreeMap<String, Option<String>>,
    /// ARG values declared after the last ENV of their name: they win over the env, as in
    /// BuildKit (the later of ENV and ARG wins).
    arg_env: BTreeMap<String, String>,
    /// True when the base is an image whose config (env) is unknown here.
    image_env: bool,
}

impl Scope {
    fn get(&self, k: &str) -> Option<String> {
        if let Some(v) = self.arg_env.get(k).or_else(|| self.env.get(k)) {
            return Some(v.clone());
        }
        match self.args.get(k) {
            Some(v) => v.clone(),
            None if self.image_env => Some(format!("${{{k}}}")),
            None => None,
        }
    }
    fn word(&self, w: &str, escape: char) -> String {
        let look = |k: &str| self.get(k);
        expand_word(w, &look, escape).unwrap_or_else(|e| format!("{w} (cannot expand: {e})"))
    }
    fn words(&self, w: &[String], escape: char) -> String {
        let v: Vec<String> = w.iter().map(|x| self.word(x, escape)).collect();
        format!("{v:?}")
    }
}

fn stage_label(g: &BuildGraph, i: usize) -> String {
    match g.stages.get(i).and_then(|s| s.name.as_deref()) {
        Some(n) => format!("stage {i} ({n})"),
        None => format!("stage {i}"),
    }
}

fn source(g: &BuildGraph, s: &Source) -> String {
    match s {
        Source::Scratch => "scratch".into(),
        Source::Stage(i) => stage_label(g, *i),
        Source::Image(r) => format!("image {r}"),
        Source::Context(n) => format!("context {n}"),
    }
}

fn command(c: &Command) -> String {
    match c {
        Command::Exec(v) => format!("{v:?}"),
        Command::Shell(s) => format!("sh: {s}"),
    }
}

fn copy(scope: &Scope, a: &CopyArgs, escape: char) -> String {
    let mut s = String::new();
    for (k, v) in [("chown", &a.chown), ("chmod", &a.chmod)] {
        if let Some(v) = v {
            let _ = write!(s, "--{k}={} ", scope.word(v, escape));
        }
    }
    if a.link {
        s.push_str("--link ");
    }
    if a.parents {
        s.push_str("--parents ");
    }
    for e in &a.exclude {
        let _ = write!(s, "--exclude={} ", scope.word(e, escape));
    }
    let _ = write!(
        s,
        "{} -> {:?}",
        scope.words(&a.sources, escape),
        scope.word(&a.dest, escape)
    );
    for h in &a.heredocs {
        let _ = write!(s, " [heredoc {} {} bytes]", h.name, h.content.len());
    }
    s
}

/// One step's expanded arguments, updating the scope for ARG and ENV.
fn step(
    scope: &mut Scope,
    node: &Node,
    escape: char,
    build_args: &BTreeMap<String, String>,
    global: &BTreeMap<String, Option<String>>,
) -> String {
    match &node.instruction {
        Instruction::Run {
            cmd,
            heredocs,
            mounts,
            network,
            security,
            devices,
        } => {
            let mut s = String::new();
            for m in mounts {
                let _ = write!(s, "--mount={} ", scope.word(m, escape));
            }
            if let Some(n) = network {
                let _ = write!(s, "--network={n} ");
            }
            if let Some(n) = security {
                let _ = write!(s, "--security={n} ");
            }
            for d in devices {
                let _ = write!(s, "--device={d} ");
            }
            s.push_str(&command(cmd));
            for h in heredocs {
                let _ = write!(s, " [heredoc {} {} bytes]", h.name, h.content.len());
            }
            s
        }
        Instruction::Cmd(c) | Instruction::Entrypoint(c) => command(c),
        Instruction::Healthcheck(None) => "NONE".into(),
        Instruction::Healthcheck(Some(h)) => h.cmd.as_ref().map(command).unwrap_or_default(),
        Instruction::Env(pairs) => {
            // Every value sees the environment from before the instruction.
            let vals: Vec<(String, String)> = pairs
                .iter()
                .map(|(k, v)| (scope.word(k, escape), scope.word(v, escape)))
                .collect();
            let out = vals
                .iter()
                .map(|(k, v)| format!("{k}={v:?}"))
                .collect::<Vec<_>>()
                .join(" ");
            for (k, _) in &vals {
                scope.arg_env.remove(k);
            }
            scope.env.extend(vals);
            out
        }
        Instruction::Arg(defs) => {
            let vals: Vec<(String, Option<String>)> = defs
                .iter()
                .map(|(k, d)| {
                    let d = d.as_ref().map(|d| scope.word(d, escape));
                    let v = build_args
                        .get(k)
                        .cloned()
                        .or(d)
                        .or_else(|| global.get(k).cloned().flatten());
                    (k.clone(), v)
                })
                .collect();
            let out = vals
                .iter()
                .map(|(k, v)| match v {
                    Some(v) => format!("{k}={v:?}"),
                    None => format!("{k} (unset)"),
                })
                .collect::<Vec<_>>()
                .join(" ");
            for (k, v) in &vals {
                if let Some(v) = v {
                    scope.arg_env.insert(k.clone(), v.clone());
                }
            }
            scope.args.extend(vals);
            out
        }
        Instruction::Label(pairs) => pairs
            .iter()
            .map(|(k, v)| format!("{}={:?}", scope.word(k, escape), scope.word(v, escape)))
            .collect::<Vec<_>>()
            .join(" "),
        Instruction::Add(a) | Instruction::Copy(a) => copy(scope, a, escape),
        Instruction::Expose(v) | Instruction::Volume(v) => {
            let look = |k: &str| scope.get(k);
            let mut out = Vec::new();
            for w in v {
                match expand_words(w, &look, escape) {
                    Ok(ws) => out.extend(ws),
                    Err(_) => out.push(w.clone()),
                }
            }
            format!("{out:?}")
        }
        Instruction::User(s) | Instruction::Workdir(s) | Instruction::StopSignal(s) => {
            scope.word(s, escape)
        }
        Instruction::Maintainer(s) => s.clone(),
        Instruction::Shell(v) => format!("{v:?}"),
        Instruction::Onbuild(inner) => inner.original.clone(),
        Instruction::From { .. } => node.original.clone(),
    }
}

/// Renders the plan, expanding with the Dockerfile's own escape character.
pub fn render(g: &BuildGraph) -> String {
    render_with_escape(g, g.escape)
}

/// Renders the plan for a Dockerfile whose escape character is `escape`.
pub fn render_with_escape(g: &BuildGraph, escape: char) -> String {
    let mut s = format!("target: {}\n", stage_label(g, g.target));
    let mut scopes: BTreeMap<usize, Scope> = BTreeMap::new();
    for &i in &g.order {
        let Some(st) = g.stages.get(i) else { continue };
        let mut scope = match &st.base {
            Source::Stage(b) => scopes.get(b).cloned().unwrap_or_default(),
            Source::Image(_) | Source::Context(_) => Scope {
                image_env: true,
                ..Scope::default()
            },
            Source::Scratch => Scope::default(),
        };
        // A stage built on a stage inherits its ENV and its ARGs (BuildKit's state).
        render_stage(&mut s, g, st, &mut scope, escape);
        scopes.insert(i, scope);
    }
    let pruned: Vec<String> = (0..g.stages.len())
        .filter(|i| !g.order.contains(i))
        .map(|i| stage_label(g, i))
        .collect();
    if !pruned.is_empty() {
        let _ = writeln!(
            s,
            "pruned (not needed by the target): {}",
            pruned.join(", ")
        );
    }
    s
}

fn render_stage(s: &mut String, g: &BuildGraph, st: &Stage, scope: &mut Scope, escape: char) {
    let _ = write!(
        s,
        "{} from {} (line {})",
        stage_label(g, st.index),
        source(g, &st.base),
        st.from_node.span.start
    );
    if let Some(p) = &st.platform {
        let _ = write!(s, " platform {p}");
    }
    s.push('\n');
    for stp in &st.steps {
        let args = step(scope, &stp.node, escape, &g.build_args, &g.global_args);
        let _ = write!(
            s,
            "  {:>3} {} {}",
            stp.node.span.start,
            stp.node.instruction.keyword(),
            args
        );
        let mut deps = Vec::new();
        if let Some(f) = &stp.from {
            deps.push(format!("--from {}", source(g, f)));
        }
        for (mi, src) in &stp.mount_from {
            deps.push(format!("mount {mi} from {}", source(g, src)));
        }
        if !deps.is_empty() {
            let _ = write!(s, "  <- {}", deps.join(", "));
        }
        s.push('\n');
    }
}
