//! The rules BuildKit checks while it parses: empty continuation lines, MAINTAINER, the
//! casing of stage names and of `AS`, description comments (experimental), duplicate and
//! reserved stage names, and keyword casing against the file's majority.

use super::source::NodeSource;
use super::{CheckConfig, Sink, StageNodes, rules};
use crate::parser::{Dockerfile, Instruction, Span};

fn is_lower(s: &str) -> bool {
    s == s.to_lowercase()
}

fn is_upper(s: &str) -> bool {
    s == s.to_uppercase()
}

/// Runs the parse-time rules; returns the stages.
pub(super) fn check(
    df: &Dockerfile,
    src: &[NodeSource],
    cfg: &CheckConfig,
    sink: &mut Sink,
) -> Vec<StageNodes> {
    for s in src {
        if let Some(line) = s.empty_continuation {
            let span = Span {
                start: line,
                end: line,
            };
            sink.report(
                cfg,
                &rules::NO_EMPTY_CONTINUATION,
                span,
                "Empty continuation line".into(),
            );
        }
    }

    let mut stages: Vec<StageNodes> = Vec::new();
    for (i, (node, s)) in df.nodes.iter().zip(src).enumerate() {
        let local = cfg.with_comments(&s.comments);
        match &node.instruction {
            Instruction::Maintainer(_) => sink.report(
                &local,
                &rules::MAINTAINER_DEPRECATED,
                node.span,
                "Maintainer instruction is deprecated in favor of using label".into(),
            ),
            Instruction::From { name, .. } => {
                if let [_, as_, stage] = s.words.as_slice() {
                    if !is_lower(stage) {
                        sink.report(
                            &local,
                            &rules::STAGE_NAME_CASING,
                            node.span,
                            format!("Stage name '{stage}' should be lowercase"),
                        );
                    }
                    let kw = &s.keyword;
                    let mismatch = (is_lower(kw) && !is_lower(as_))
                        || (!is_lower(kw) && is_upper(kw) && !is_upper(as_));
                    if mismatch {
                        sink.report(
                            &local,
                            &rules::FROM_AS_CASING,
                            node.span,
                            format!("'{as_}' and '{kw}' keywords' casing do not match"),
                        );
                    }
                }
                if let Some(n) = name {
                    describe(&local, sink, "FROM", &[n.as_str()], s, node.span);
                }
                stages.push(StageNodes {
                    from: i,
                    steps: vec![],
                    name: name.clone(),
                });
            }
            other => {
                if let Instruction::Arg(defs) = other {
                    let keys: Vec<&str> = defs.iter().map(|(k, _)| k.as_str()).collect();
                    describe(&local, sink, "ARG", &keys, s, node.span);
                }
                if let Some(st) = stages.last_mut() {
                    st.steps.push(i);
                }
            }
        }
    }

    // Stage names (the whole file's setting, as BuildKit).
    let mut seen = std::collections::BTreeSet::new();
    for st in &stages {
        let Some(name) = &st.name else { continue };
        let span = df.nodes[st.from].span;
        if name == "context" || name == "scratch" {
            sink.report(
                cfg,
                &rules::RESERVED_STAGE_NAME,
                span,
                format!("Stage name should not use the same name as reserved stage {name:?}"),
            );
        }
        if !seen.insert(name.clone()) {
            sink.report(
                cfg,
                &rules::DUPLICATE_STAGE_NAME,
                span,
                format!("Duplicate stage name {name:?}, stage names should be unique"),
            );
        }
    }

    // Keyword casing: instructions of stages only (global ARGs are not counted).
    let in_stages = || {
        stages
            .iter()
            .flat_map(|st| std::iter::once(st.from).chain(st.steps.iter().copied()))
    };
    let (mut lower, mut upper) = (0, 0);
    for i in in_stages() {
        let kw = &src[i].keyword;
        if is_lower(kw) {
            lower += 1;
        } else if is_upper(kw) {
            upper += 1;
        }
    }
    let majority_lower = lower > upper;
    for i in in_stages() {
        let kw = &src[i].keyword;
        let want = if majority_lower && !is_lower(kw) {
            "lowercase"
        } else if !majority_lower && !is_upper(kw) {
            "uppercase"
        } else {
            continue;
        };
        sink.report(
            cfg,
            &rules::CONSISTENT_INSTRUCTION_CASING,
            df.nodes[i].span,
            format!("Command '{kw}' should match the case of the command majority ({want})"),
        );
    }
    stages
}

/// InvalidDefinitionDescription (experimental): the last comment above `FROM … AS name` or
/// `ARG name` must start with the name.
fn describe(
    cfg: &CheckConfig,
    sink: &mut Sink,
    what: &str,
    keys: &[&str],
    s: &NodeSource,
    span: Span,
) {
    let (Some(last), Some(first)) = (s.comments.last(), keys.first()) else {
        return;
    };
    let word = last.split(' ').next().unwrap_or("");
    if keys.contains(&word) {
        return;
    }
    let example = if keys.len() > 1 { "<arg_key>" } else { first };
    sink.report(
        cfg,
        &rules::INVALID_DEFINITION_DESCRIPTION,
        span,
        format!("Comment for {what} should follow the format: `# {example} <description>`"),
    );
}
