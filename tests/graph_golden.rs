//! Golden tests of graph resolution and the dry-run plan.
//!
//! Each `tests/fixtures/graph/<case>/` has a `Dockerfile`, optional `args` (lines
//! `--build-arg K=V`, `--target T`, `--platform P`, `--build-context NAME=VALUE` (read as
//! names only: a directory or URL is content the graph does not open); the platform defaults
//! to linux/amd64) and
//! either `expected` (`graph::plan::render`) or `error`. `UPDATE_GOLDEN=1` rewrites them.
//! Also checks the conformance kit's Dockerfiles when the kit is present.
#![allow(clippy::print_stderr)] // the tests report counts and skips on stderr

#[path = "golden_util/mod.rs"]
mod common;

use hoist::graph::{self, GraphOptions};
use hoist::parser;
use std::path::{Path, PathBuf};

fn options(case: &Path) -> GraphOptions {
    let mut o = GraphOptions {
        platform: Some("linux/amd64".into()),
        ..GraphOptions::default()
    };
    let text = std::fs::read_to_string(case.join("args")).unwrap_or_default();
    for l in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let (flag, v) = l.split_once(' ').unwrap_or((l, ""));
        match flag {
            "--build-arg" => {
                let (k, val) = v.split_once('=').unwrap_or((v, ""));
                o.build_args.insert(k.into(), val.into());
            }
            "--target" => o.target = Some(v.into()),
            "--platform" => o.platform = Some(v.into()),
            "--build-context" => {
                use hoist::context::Spec;
                use hoist::graph::named::NamedRef;
                let (key, spec) = hoist::context::parse_build_context(v)
                    .unwrap_or_else(|e| panic!("{}: {e}", case.display()));
                let r = match spec {
                    Spec::Image(i) => NamedRef::Image(i),
                    Spec::Target(t) => NamedRef::Stage(t),
                    _ => NamedRef::Content,
                };
                o.contexts.insert(key, r);
            }
            _ => panic!("{}: unknown args line {l:?}", case.display()),
        }
    }
    o
}

fn plan(text: &str, opts: &GraphOptions) -> Result<String, String> {
    let df = parser::parse(text).map_err(|e| format!("parse: {e}"))?;
    let g = graph::build(&df, opts).map_err(|e| format!("graph: {e}"))?;
    Ok(graph::plan::render_with_escape(&g, df.directives.escape))
}

#[test]
fn graph_golden() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/graph");
    let n = common::run_all(&dir, |case| {
        let text = std::fs::read_to_string(case.join("Dockerfile"))
            .unwrap_or_else(|e| panic!("{}: {e}", case.display()));
        plan(&text, &options(case))
    });
    eprintln!("{n} graph golden cases");
}

/// The shared conformance kit: `$HOIST_CONFORMANCE_KIT`, else `../shared/conformance` beside
/// the repository. Absent: these tests say so on stderr and pass, unless `HOIST_REQUIRE_KIT=1`.
fn kit() -> Option<PathBuf> {
    let p = std::env::var_os("HOIST_CONFORMANCE_KIT")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/conformance"));
    if p.is_dir() {
        return Some(p);
    }
    assert!(
        std::env::var_os("HOIST_REQUIRE_KIT").is_none(),
        "conformance kit not found at {}",
        p.display()
    );
    eprintln!("SKIP: conformance kit not found at {}", p.display());
    None
}

#[test]
fn conformance_cases_parse_and_graph() {
    let Some(kit) = kit() else { return };
    let cases = common::cases(&kit.join("cases"));
    let mut n = 0;
    for c in cases {
        let Ok(text) = std::fs::read_to_string(c.join("Dockerfile")) else {
            continue;
        };
        n += 1;
        let out = plan(&text, &GraphOptions::default());
        assert!(out.is_ok(), "{}: {:?}", c.display(), out);
    }
    assert!(n > 0, "no Dockerfiles under {}/cases", kit.display());
}

#[test]
fn conformance_errors_name_the_line() {
    let Some(kit) = kit() else { return };
    for (case, line, word) in [
        ("unknown-instruction", 3, "unknown instruction"),
        ("unterminated-heredoc", 2, "heredoc"),
        ("self-copy", 2, "circular"),
    ] {
        let text = std::fs::read_to_string(kit.join("errors").join(case).join("Dockerfile"))
            .unwrap_or_else(|e| panic!("{case}: {e}"));
        let err = plan(&text, &GraphOptions::default()).expect_err(case);
        assert!(err.contains(&format!("line {line}:")), "{case}: {err}");
        assert!(err.contains(word), "{case}: {err}");
    }
}
