//! Build checks (`hoist build --check`, and the warnings at the end of every build): BuildKit's
//! linter rules with their names, URLs and messages, reported at the same lines. Pure: the
//! caller gives the parsed Dockerfile, its text, the build args, the base images' env and
//! shell (`BaseConfig`, looked up by the expanded FROM reference) and the `.dockerignore`;
//! nothing here reads a file or the network.
//!
//! The rules run in BuildKit's order over BuildKit's view of the file: `source.rs` reads back
//! from the text what the AST normalises (keyword casing, comments, empty continuation
//! lines); `syntax.rs` has the rules BuildKit checks while parsing (casing, stage names,
//! MAINTAINER, empty continuations); `from.rs` the FROM line's ARG rules; `dispatch.rs`
//! walks each stage's instructions with its ARG/ENV scope as BuildKit's converter does
//! (undefined variables, legacy ENV/LABEL, CMD/ENTRYPOINT/HEALTHCHECK, WORKDIR, EXPOSE,
//! secrets, ignored COPY sources); `config.rs` the `# check=` settings; `render.rs` Docker's
//! output.

mod config;
mod dispatch;
mod from;
pub mod render;
pub mod rules;
pub mod secrets;
mod source;
mod syntax;

pub use config::CheckConfig;
pub use rules::Rule;

use crate::oci::Platform;
use crate::parser::dockerignore::Matcher;
use crate::parser::{Dockerfile, Span};
use std::collections::{BTreeMap, BTreeSet};

/// Errors from reading the check settings.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LintError {
    /// A `# check=` directive or `BUILDKIT_DOCKERFILE_CHECK` value that does not parse.
    #[error("failed to parse check options: invalid check option {option:?}: {reason}")]
    BadOption { option: String, reason: String },
}

/// The build-arg that replaces the Dockerfile's `# check=` directive.
pub const CHECK_BUILD_ARG: &str = "BUILDKIT_DOCKERFILE_CHECK";

/// What the checks need to know of a base image.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BaseConfig {
    /// `Config.Env` (`KEY=value` items).
    pub env: Vec<String>,
    /// `Config.Shell` (empty when unset).
    pub shell: Vec<String>,
    /// The platform the config says the image is for (`None` when it does not say).
    pub platform: Option<Platform>,
}

/// How [`Request::bases`] names a base image: its reference and the platform wanted.
pub type BaseKey = (String, String);

/// The key of `reference` wanted for `platform` (a stage's `--platform`, else the target's).
pub fn base_key(reference: &str, platform: &Platform) -> BaseKey {
    (
        reference.to_string(),
        platform.normalized().to_string_short(),
    )
}

/// The `.dockerignore` as CopyIgnoredFile reads it.
#[derive(Debug, Clone, Default)]
pub struct Ignore {
    pub matcher: Matcher,
    /// The patterns as cleaned lines (exceptions keep their `!`).
    pub patterns: Vec<String>,
}

/// Everything one run of the checks looks at.
pub struct Request<'a> {
    pub dockerfile: &'a Dockerfile,
    pub text: &'a str,
    /// `--build-arg` values (`BUILDKIT_DOCKERFILE_CHECK` among them replaces `# check=`).
    pub build_args: &'a BTreeMap<String, String>,
    pub target_platform: &'a Platform,
    pub build_platform: &'a Platform,
    /// `--target`; its name is `TARGETSTAGE`.
    pub target: Option<&'a str>,
    /// Indexes of the stages the build runs; `None` checks every stage (`--check`).
    pub stages: Option<&'a BTreeSet<usize>>,
    /// Base images by [`base_key`] (the reference their FROM expands to and the platform
    /// the stage is for); one missing counts as an image with no env but the default PATH.
    pub bases: &'a BTreeMap<BaseKey, BaseConfig>,
    pub ignore: Option<&'a Ignore>,
    /// A base image could not be resolved: BuildKit stops there, before it walks any
    /// stage's instructions, so only the parse-time and FROM rules report.
    pub bases_failed: bool,
}

/// One finding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub rule: &'static Rule,
    /// The message for this occurrence (BuildKit's "detail").
    pub detail: String,
    /// The lines it points at.
    pub span: Span,
}

/// What the checks found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// Findings by line (BuildKit's order within a line).
    pub findings: Vec<Finding>,
    /// With `error=true` and a finding: `lint violation found for rules: A, B`.
    pub error: Option<String>,
}

/// Collects findings under a check setting.
#[derive(Default)]
struct Sink {
    findings: Vec<Finding>,
}

impl Sink {
    fn report(&mut self, cfg: &CheckConfig, rule: &'static Rule, span: Span, detail: String) {
        if cfg.enabled(rule) {
            self.findings.push(Finding { rule, detail, span });
        }
    }
}

/// Variables in scope, in the order of their last assignment (a variable set again moves to
/// the end, as in BuildKit's env list): suggestions scan them in this order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Env(Vec<(String, String)>);

impl Env {
    fn get(&self, k: &str) -> Option<String> {
        self.0.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
    }

    fn set(&mut self, k: &str, v: &str) {
        self.0.retain(|(n, _)| n != k);
        self.0.push((k.to_string(), v.to_string()));
    }

    fn keys(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|(k, _)| k.as_str())
    }
}

/// A word expanded against `lookup`, with the names it found and did not find.
pub(crate) struct Expanded {
    /// `None` when the word does not expand (a bad substitution): BuildKit fails there.
    pub value: Option<String>,
    pub matched: BTreeSet<String>,
    pub unmatched: BTreeSet<String>,
}

pub(crate) fn expand_tracked(
    word: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    escape: char,
) -> Expanded {
    let matched = std::cell::RefCell::new(BTreeSet::new());
    let unmatched = std::cell::RefCell::new(BTreeSet::new());
    let track = |k: &str| {
        let v = lookup(k);
        match &v {
            Some(_) => matched.borrow_mut().insert(k.to_string()),
            None => unmatched.borrow_mut().insert(k.to_string()),
        };
        v
    };
    let value = crate::parser::expand::expand_word(word, &track, escape).ok();
    Expanded {
        value,
        matched: matched.into_inner(),
        unmatched: unmatched.into_inner(),
    }
}

/// BuildKit's "did you mean": the option closest to `val` by edit distance, if under 3 and
/// not `val` itself (an exact match means there is nothing to suggest). An empty name can be
/// the closest (`ENV $UNSET=v` sets one): then nothing is suggested, as in BuildKit.
pub(crate) fn suggest<'a>(val: &str, options: impl IntoIterator<Item = &'a str>) -> Option<String> {
    let mut best = None;
    let mut min = 3;
    for opt in options {
        if opt == val {
            return None;
        }
        let d = crate::parser::levenshtein(val, opt);
        if d < min {
            min = d;
            best = Some(opt.to_string());
        }
    }
    best.filter(|b| !b.is_empty())
}

/// Runs every check over `req`.
pub fn check(req: &Request) -> Result<Report, LintError> {
    let cfg = match req.build_args.get(CHECK_BUILD_ARG) {
        Some(v) => CheckConfig::parse(v)?,
        None => CheckConfig::parse(req.dockerfile.directives.check.as_deref().unwrap_or(""))?,
    };
    let sources = source::read(req.dockerfile, req.text);
    let mut sink = Sink::default();
    let stages = syntax::check(req.dockerfile, &sources, &cfg, &mut sink);
    let meta = from::check(req, &stages, &sources, &cfg, &mut sink);
    if !req.bases_failed {
        dispatch::check(req, &stages, &sources, &meta, &cfg, &mut sink);
    }

    let mut findings = sink.findings;
    findings.sort_by_key(|f| f.span.start);
    let error = (cfg.error && !findings.is_empty()).then(|| {
        let rules: BTreeSet<&str> = findings.iter().map(|f| f.rule.name).collect();
        format!(
            "lint violation found for rules: {}",
            rules.into_iter().collect::<Vec<_>>().join(", ")
        )
    });
    Ok(Report { findings, error })
}

/// A stage as the checks see it: its FROM node and instruction nodes, by AST index.
#[derive(Debug, Clone)]
pub(crate) struct StageNodes {
    pub from: usize,
    pub steps: Vec<usize>,
    /// `AS name` lower-cased, as BuildKit keeps it.
    pub name: Option<String>,
}

#[cfg(test)]
mod tests;
