//! `hoist build --call outline|targets`: what a Dockerfile offers, as BuildKit's frontend
//! subrequests `frontend.outline` and `frontend.targets` answer it (buildx `--call`), in
//! their JSON (`result.json`) and text (`result.txt`) forms.
//!
//! - targets: every stage, in file order: name, doc comment, base, `FROM --platform`, the FROM
//!   line; the last is the default;
//! - outline of the target (`--target`, else the last stage): its build args (the ARGs of the
//!   stage, of its base stages and of the stages it copies or mounts from, and the global ARGs
//!   their FROM lines use), secrets and SSH mounts, each with its line.
//!
//! A doc comment is BuildKit's: of the comment lines since the previous instruction (an
//! empty `#` starts over), the first that begins with the name and a space, without them
//! (`# VERSION sets the version` describes `ARG VERSION`).

use crate::parser::mounts::{MountSpec, parse_mount};
use crate::parser::{Dockerfile, Instruction, Node};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// A source position (BuildKit's `pb.Location` as JSON).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Location {
    pub ranges: Vec<Range>,
}

/// One line of a location.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Range {
    pub start: Position,
    pub end: Position,
}

/// A line (1-based); BuildKit leaves the character out when it is 0.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Position {
    pub line: usize,
}

/// A build arg of the outline.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Arg {
    pub name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub description: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub value: String,
    pub location: Location,
}

/// A secret or SSH mount of the outline.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Needed {
    pub name: String,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub required: bool,
    pub location: Location,
}

/// `frontend.outline`'s result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Outline {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub description: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<Arg>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<Needed>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ssh: Vec<Needed>,
    /// The Dockerfile, base64 (Go's `[]byte` in JSON).
    pub sources: Vec<String>,
}

/// One stage in `frontend.targets`' result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Target {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub default: bool,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub description: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub base: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub platform: String,
    pub location: Location,
}

/// `frontend.targets`' result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Targets {
    pub targets: Vec<Target>,
    pub sources: Vec<String>,
}

/// Errors: an unknown `--target`, or a Dockerfile without stages.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum OutlineError {
    #[error("target stage {0:?} could not be found")]
    NoTarget(String),
    #[error("the Dockerfile has no FROM: nothing to outline")]
    NoStages,
}

/// A stage as the outline sees it.
struct Stage<'a> {
    name: String,
    from: &'a Node,
    /// FROM's image (raw) and `--platform`.
    image: &'a str,
    platform: Option<&'a str>,
    nodes: Vec<&'a Node>,
}

fn location(n: &Node) -> Location {
    let end = n.span.end.max(n.span.start);
    Location {
        ranges: (n.span.start..=end)
            .map(|l| Range {
                start: Position { line: l },
                end: Position { line: l },
            })
            .collect(),
    }
}

/// The comment lines BuildKit keeps for the instruction starting at line `start` (1-based):
/// those after the previous instruction (ending at `prev_end`), from the last empty `#` on.
fn comments(lines: &[&str], prev_end: usize, start: usize) -> Vec<String> {
    let mut out = Vec::new();
    for l in lines.iter().take(start.saturating_sub(1)).skip(prev_end) {
        let t = l.trim_start();
        if let Some(c) = t.strip_prefix('#') {
            let c = c.trim();
            if c.is_empty() {
                out.clear();
            } else {
                out.push(c.to_string());
            }
        }
    }
    out
}

fn doc_comment(comments: &[String], name: &str) -> String {
    if name.is_empty() {
        return String::new();
    }
    let prefix = format!("{name} ");
    comments
        .iter()
        .find_map(|c| c.strip_prefix(&prefix).map(String::from))
        .unwrap_or_default()
}

/// Variable names `$X`/`${X…}` in `s`.
fn referenced(s: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'$' {
            let braced = b.get(i + 1) == Some(&b'{');
            let start = i + 1 + usize::from(braced);
            let mut j = start;
            while j < b.len() && (b[j].is_ascii_alphanumeric() || b[j] == b'_') {
                j += 1;
            }
            if j > start {
                out.insert(s[start..j].to_string());
            }
            i = j.max(i + 1);
        } else {
            i += 1;
        }
    }
    out
}

/// The Dockerfile's stages and its doc comments by node (the node's first line).
struct Parsed<'a> {
    globals: Vec<&'a Node>,
    stages: Vec<Stage<'a>>,
    docs: BTreeMap<usize, Vec<String>>,
}

fn split<'a>(df: &'a Dockerfile, text: &str) -> Parsed<'a> {
    let lines: Vec<&str> = text.lines().collect();
    let mut docs = BTreeMap::new();
    let mut prev_end = 0;
    let mut globals = Vec::new();
    let mut stages: Vec<Stage> = Vec::new();
    for n in &df.nodes {
        docs.insert(n.span.start, comments(&lines, prev_end, n.span.start));
        prev_end = n.span.end.max(n.span.start);
        match &n.instruction {
            Instruction::From {
                name,
                image,
                platform,
            } => stages.push(Stage {
                name: name.clone().unwrap_or_default().to_ascii_lowercase(),
                from: n,
                image,
                platform: platform.as_deref(),
                nodes: Vec::new(),
            }),
            _ => match stages.last_mut() {
                Some(s) => s.nodes.push(n),
                None => globals.push(n),
            },
        }
    }
    Parsed {
        globals,
        stages,
        docs,
    }
}

fn b64(text: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(text.as_bytes())
}

/// `frontend.targets` for the Dockerfile `df` (whose text is `text`).
pub fn targets(df: &Dockerfile, text: &str) -> Targets {
    let p = split(df, text);
    let last = p.stages.len().saturating_sub(1);
    let targets = p
        .stages
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let docs = p.docs.get(&s.from.span.start).cloned().unwrap_or_default();
            Target {
                name: s.name.clone(),
                default: i == last,
                description: doc_comment(&docs, &s.name),
                base: s.image.to_string(),
                platform: s.platform.unwrap_or_default().to_string(),
                location: location(s.from),
            }
        })
        .collect();
    Targets {
        targets,
        sources: vec![b64(text)],
    }
}

/// The stage a name or index refers to.
fn stage_ref(stages: &[Stage], r: &str) -> Option<usize> {
    let r = r.to_ascii_lowercase();
    stages
        .iter()
        .position(|s| !s.name.is_empty() && s.name == r)
        .or_else(|| r.parse::<usize>().ok().filter(|i| *i < stages.len()))
}

/// The stages `i` builds on: its base stage and those it copies or mounts from.
fn deps(stages: &[Stage], i: usize) -> Vec<usize> {
    let mut out = Vec::new();
    let s = &stages[i];
    if let Some(b) = stage_ref(&stages[..i], s.image) {
        out.push(b);
    }
    for n in &s.nodes {
        match &n.instruction {
            Instruction::Copy(c) | Instruction::Add(c) => {
                if let Some(d) = c.from.as_deref().and_then(|f| stage_ref(stages, f)) {
                    out.push(d);
                }
            }
            Instruction::Run { mounts, .. } => {
                for m in mounts {
                    let from = m.split(',').find_map(|kv| kv.trim().strip_prefix("from="));
                    if let Some(d) = from.and_then(|f| stage_ref(stages, f)) {
                        out.push(d);
                    }
                }
            }
            _ => {}
        }
    }
    out.retain(|d| *d != i);
    out
}

/// `frontend.outline` of `target` (else the last stage), with `build_args` overriding defaults.
pub fn outline(
    df: &Dockerfile,
    text: &str,
    target: Option<&str>,
    build_args: &BTreeMap<String, String>,
) -> Result<Outline, OutlineError> {
    let p = split(df, text);
    if p.stages.is_empty() {
        return Err(OutlineError::NoStages);
    }
    let t = match target {
        Some(t) => stage_ref(&p.stages, t).ok_or_else(|| OutlineError::NoTarget(t.into()))?,
        None => p.stages.len() - 1,
    };
    // The target first, then what it builds on (depth first), each stage once.
    let mut order = Vec::new();
    let mut todo = vec![t];
    while let Some(i) = todo.pop() {
        if order.contains(&i) {
            continue;
        }
        order.push(i);
        let mut d = deps(&p.stages, i);
        d.reverse();
        todo.extend(d);
    }
    let escape = df.directives.escape;
    // A default as BuildKit shows it: expanded with the values known at that point.
    let expand = |word: &str, known: &BTreeMap<String, String>| {
        let lookup = |k: &str| known.get(k).cloned();
        crate::parser::expand::expand_word(word, &lookup, escape).unwrap_or_else(|_| word.into())
    };
    // Global ARGs: their node and value (a build arg, else the expanded default).
    let mut globals: BTreeMap<String, (&Node, String)> = BTreeMap::new();
    let mut known = BTreeMap::new();
    for n in &p.globals {
        if let Instruction::Arg(kv) = &n.instruction {
            for (k, v) in kv {
                let value = match (build_args.get(k), v) {
                    (Some(b), _) => b.clone(),
                    (None, Some(d)) => expand(d, &known),
                    (None, None) => String::new(),
                };
                known.insert(k.clone(), value.clone());
                globals.insert(k.clone(), (*n, value));
            }
        }
    }
    let doc_of = |n: &Node, name: &str| {
        doc_comment(
            p.docs.get(&n.span.start).map_or(&[][..], |v| v.as_slice()),
            name,
        )
    };
    let mut args: Vec<Arg> = Vec::new();
    let mut secrets: Vec<Needed> = Vec::new();
    let mut ssh: Vec<Needed> = Vec::new();
    let mut seen = BTreeSet::new();
    let mut push_arg = |name: &str, n: &Node, value: String, args: &mut Vec<Arg>| {
        if seen.insert(name.to_string()) {
            args.push(Arg {
                name: name.to_string(),
                description: doc_of(n, name),
                value,
                location: location(n),
            });
        }
    };
    for &i in &order {
        let s = &p.stages[i];
        // Global ARGs the FROM line uses.
        let used = referenced(&format!("{} {}", s.image, s.platform.unwrap_or("")));
        for name in used {
            if let Some((n, v)) = globals.get(&name) {
                push_arg(&name, n, v.clone(), &mut args);
            }
        }
        let mut stage_known: BTreeMap<String, String> = BTreeMap::new();
        for n in &s.nodes {
            match &n.instruction {
                Instruction::Arg(kv) => {
                    for (k, v) in kv {
                        let global = globals.get(k);
                        let (node, value) = match (build_args.get(k), v, global) {
                            // A redeclared global ARG is the global one (its line, its value).
                            (b, None, Some((g, gv))) => (*g, b.cloned().unwrap_or(gv.clone())),
                            (Some(b), _, _) => (*n, b.clone()),
                            (None, Some(d), _) => (*n, expand(d, &stage_known)),
                            (None, None, None) => (*n, String::new()),
                        };
                        stage_known.insert(k.clone(), value.clone());
                        push_arg(k, node, value, &mut args);
                    }
                }
                Instruction::Run { mounts, .. } => {
                    for m in mounts {
                        match parse_mount(m) {
                            Ok(MountSpec::Secret {
                                id,
                                target,
                                required,
                                ..
                            }) => {
                                // BuildKit: the id defaults to the target's base name.
                                let name = id
                                    .or_else(|| {
                                        target.and_then(|t| t.rsplit('/').next().map(String::from))
                                    })
                                    .unwrap_or_default();
                                if !secrets.iter().any(|s| s.name == name) {
                                    secrets.push(Needed {
                                        name,
                                        required,
                                        location: location(n),
                                    });
                                }
                            }
                            Ok(MountSpec::Ssh { id, required, .. }) => {
                                let name = id.unwrap_or_else(|| "default".into());
                                if !ssh.iter().any(|s| s.name == name) {
                                    ssh.push(Needed {
                                        name,
                                        required,
                                        location: location(n),
                                    });
                                }
                            }
                            _ => {}
                        }
                    }
                }
                _ => {}
            }
        }
    }
    let line = |l: &Location| l.ranges.first().map_or(0, |r| r.start.line);
    args.sort_by_key(|a| line(&a.location));
    secrets.sort_by_key(|a| line(&a.location));
    ssh.sort_by_key(|a| line(&a.location));
    let s = &p.stages[t];
    Ok(Outline {
        name: s.name.clone(),
        description: doc_of(s.from, &s.name),
        args,
        secrets,
        ssh,
        sources: vec![b64(text)],
    })
}

/// Go's `text/tabwriter` with `padding` and no flags: every cell but a line's last is padded
/// to its column's widest cell plus `padding`.
fn tabulate(rows: &[Vec<String>], padding: usize) -> String {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let mut width = vec![0; cols];
    for r in rows {
        for (i, c) in r.iter().enumerate().take(r.len().saturating_sub(1)) {
            width[i] = width[i].max(c.chars().count());
        }
    }
    let mut out = String::new();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            out.push_str(c);
            if i + 1 < r.len() {
                out.push_str(&" ".repeat(width[i] + padding - c.chars().count()));
            }
        }
        out.push('\n');
    }
    out
}

/// The outline as BuildKit's `result.txt`.
pub fn outline_text(o: &Outline) -> String {
    let mut out = String::new();
    if !o.name.is_empty() || !o.description.is_empty() {
        let name = if o.name.is_empty() {
            "(default)".to_string()
        } else {
            o.name.clone()
        };
        let mut rows = vec![vec!["TARGET:".to_string(), name]];
        if !o.description.is_empty() {
            rows.push(vec!["DESCRIPTION:".into(), o.description.clone()]);
        }
        out.push_str(&tabulate(&rows, 1));
        out.push('\n');
    }
    if !o.args.is_empty() {
        let mut rows = vec![vec![
            "BUILD ARG".into(),
            "VALUE".into(),
            "DESCRIPTION".into(),
        ]];
        rows.extend(
            o.args
                .iter()
                .map(|a| vec![a.name.clone(), a.value.clone(), a.description.clone()]),
        );
        out.push_str(&tabulate(&rows, 3));
        out.push('\n');
    }
    for (title, list) in [("SECRET", &o.secrets), ("SSH", &o.ssh)] {
        if !list.is_empty() {
            let mut rows = vec![vec![title.to_string(), "REQUIRED".into()]];
            rows.extend(list.iter().map(|s| {
                vec![
                    s.name.clone(),
                    if s.required {
                        "true".into()
                    } else {
                        String::new()
                    },
                ]
            }));
            out.push_str(&tabulate(&rows, 3));
            out.push('\n');
        }
    }
    out
}

/// The targets as BuildKit's `result.txt`.
pub fn targets_text(t: &Targets) -> String {
    let mut rows = vec![vec!["TARGET".to_string(), "DESCRIPTION".to_string()]];
    for t in &t.targets {
        let name = match (t.name.is_empty(), t.default) {
            (true, true) => "(default)".to_string(),
            (false, true) => format!("{} (default)", t.name),
            _ => t.name.clone(),
        };
        rows.push(vec![name, t.description.clone()]);
    }
    tabulate(&rows, 1)
}

/// JSON as BuildKit writes `result.json`: two-space indent, and Go's escaping of `<`, `>`,
/// `&`, U+2028 and U+2029 (those characters occur only inside strings here).
pub fn to_json<T: Serialize>(v: &T) -> String {
    serde_json::to_string_pretty(v)
        .unwrap_or_default()
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
        .replace('\u{2028}', "\\u2028")
        .replace('\u{2029}', "\\u2029")
}

#[cfg(test)]
mod tests {
    use super::*;

    const DF: &str = "ARG GLOBAL=g1\nARG NODEF\n\n# base stage: the shared base\nFROM localhost:5000/busybox:latest AS base\n# VERSION is the version to build\nARG VERSION=1.0\nARG OTHER\nRUN --mount=type=secret,id=tok --mount=type=ssh,required=true --mount=type=cache,target=/c,id=cc echo $VERSION\n\nFROM base AS final\nARG FINAL=x\nRUN echo $FINAL\n";

    /// BuildKit's `result.txt` for [`DF`] (buildctl against a real buildkitd).
    #[test]
    fn outline_matches_buildkit_text() {
        let df = crate::parser::parse(DF).unwrap();
        let o = outline(&df, DF, None, &BTreeMap::new()).unwrap();
        assert_eq!(
            outline_text(&o),
            "TARGET: final\n\nBUILD ARG   VALUE   DESCRIPTION\nVERSION     1.0     is the version to build\nOTHER               \nFINAL       x       \n\nSECRET   REQUIRED\ntok      \n\nSSH       REQUIRED\ndefault   true\n\n"
        );
        let o = outline(&df, DF, Some("base"), &BTreeMap::new()).unwrap();
        assert!(outline_text(&o).starts_with(
            "TARGET:      base\nDESCRIPTION: stage: the shared base\n\nBUILD ARG   VALUE   DESCRIPTION\nVERSION     1.0     is the version to build\nOTHER               \n\n"
        ));
        assert_eq!(
            outline(&df, DF, Some("nope"), &BTreeMap::new()),
            Err(OutlineError::NoTarget("nope".into()))
        );
    }

    #[test]
    fn targets_match_buildkit_text() {
        let df = crate::parser::parse(DF).unwrap();
        let t = targets(&df, DF);
        assert_eq!(
            targets_text(&t),
            "TARGET          DESCRIPTION\nbase            stage: the shared base\nfinal (default) \n"
        );
        let j: serde_json::Value = serde_json::from_str(&to_json(&t)).unwrap();
        assert_eq!(j["targets"][1]["base"], "base");
        assert_eq!(j["targets"][1]["default"], true);
        assert!(j["targets"][0].get("default").is_none());
        assert_eq!(
            j["targets"][0]["location"],
            serde_json::json!({"ranges": [{"start": {"line": 5}, "end": {"line": 5}}]})
        );
    }

    #[test]
    fn json_escapes_as_go() {
        let t = Target {
            name: "a".into(),
            default: true,
            description: "x <y> & z".into(),
            base: String::new(),
            platform: String::new(),
            location: Location { ranges: vec![] },
        };
        let j = to_json(&t);
        assert!(j.contains(r#""x \u003cy\u003e \u0026 z""#), "{j}");
        let back: serde_json::Value = serde_json::from_str(&j).unwrap();
        assert_eq!(back["description"], "x <y> & z");
    }

    #[test]
    fn outline_json_and_global_args() {
        let text = "ARG BASE=localhost:5000/busybox\n# BASE is unused here\nARG UNUSED=u\nFROM $BASE AS one\nARG X\n";
        let df = crate::parser::parse(text).unwrap();
        let args = BTreeMap::from([("X".to_string(), "given".to_string())]);
        let o = outline(&df, text, None, &args).unwrap();
        let j: serde_json::Value = serde_json::from_str(&to_json(&o)).unwrap();
        assert_eq!(j["name"], "one");
        assert_eq!(j["args"][0]["name"], "BASE");
        assert_eq!(j["args"][0]["value"], "localhost:5000/busybox");
        assert_eq!(j["args"][1]["name"], "X");
        assert_eq!(j["args"][1]["value"], "given");
        assert_eq!(j["args"].as_array().unwrap().len(), 2);
        assert!(j.get("secrets").is_none());
        assert_eq!(j["sources"].as_array().unwrap().len(), 1);
    }

    /// BuildKit's `result.txt` (buildctl, `target=a`, `build-arg:X=5`): global ARGs used in
    /// FROM and redeclared ones at their global line, defaults expanded, dependency stages'
    /// ARGs, a secret named after its target.
    #[test]
    fn outline_follows_buildkit_for_globals_and_deps() {
        let text = "ARG REG=localhost:5000\nARG UNUSED=u\nARG TAG=latest\nFROM localhost:5000/busybox:latest AS b\n# Z zed\nARG Z=zz\n\nFROM ${REG}/busybox:$TAG AS a\nARG X=1\nARG Y=${X}-2\nARG UNUSED\nARG NEW\nRUN --mount=type=secret,target=/run/s/abc cat /run/s/abc\nCOPY --from=b /x /x\n";
        let df = crate::parser::parse(text).unwrap();
        let args = BTreeMap::from([("X".to_string(), "5".to_string())]);
        let o = outline(&df, text, Some("a"), &args).unwrap();
        assert_eq!(
            outline_text(&o),
            "TARGET: a\n\nBUILD ARG   VALUE            DESCRIPTION\nREG         localhost:5000   \nUNUSED      u                \nTAG         latest           \nZ           zz               zed\nX           5                \nY           5-2              \nNEW                          \n\nSECRET   REQUIRED\nabc      \n\n"
        );
    }
}
