//! Replays BuildKit's build-check findings (`tests/fixtures/lint/<case>/expected`, written by
//! `scripts/lint-oracle.sh` from BuildKit's lint request) against `hoist::lint`: every
//! warning block — rule, URL, message, line and excerpt — must be the same text. A case may
//! have a `.dockerignore`, an `args` file (`KEY=VALUE` build args) and a `bases` file (lines
//! `REFERENCE WANTED-PLATFORM IMAGE-PLATFORM ENV…`: what the registry serves); other base
//! images count as images with PATH alone in their env (the lab's busybox and scratch are).

use hoist::lint::{self, Ignore, Request, render};
use hoist::oci::Platform;
use hoist::parser::dockerignore::{Matcher, read_ignore_lines};
use std::collections::BTreeMap;
use std::path::Path;

fn replay(dir: &Path) -> Result<(), String> {
    let read = |f: &str| std::fs::read_to_string(dir.join(f)).ok();
    let text = read("Dockerfile").ok_or("no Dockerfile")?;
    let expected = read("expected").ok_or("no expected (run scripts/lint-oracle.sh)")?;
    let build_args: BTreeMap<String, String> = read("args")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let ignore = read(".dockerignore").map(|t| Ignore {
        matcher: Matcher::parse(&t).expect("fixture .dockerignore parses"),
        patterns: read_ignore_lines(&t),
    });
    let bases: BTreeMap<lint::BaseKey, lint::BaseConfig> = read("bases")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            let (r, want, have) = (w.next()?, w.next()?, w.next()?);
            Some((
                lint::base_key(r, &Platform::parse(want)?),
                lint::BaseConfig {
                    env: w.map(str::to_string).collect(),
                    shell: vec![],
                    platform: Platform::parse(have),
                },
            ))
        })
        .collect();
    let df = hoist::parser::parse(&text).map_err(|e| e.to_string())?;
    let platform = Platform::parse("linux/amd64").expect("platform");
    let report = lint::check(&Request {
        dockerfile: &df,
        text: &text,
        build_args: &build_args,
        target_platform: &platform,
        build_platform: &platform,
        target: None,
        stages: None,
        bases: &bases,
        ignore: ignore.as_ref(),
        bases_failed: false,
    })
    .map_err(|e| e.to_string())?;
    let got: String = report
        .findings
        .iter()
        .map(|f| render::warning(f, "Dockerfile", &text))
        .collect();
    if sorted_blocks(&got) == sorted_blocks(&expected) {
        Ok(())
    } else {
        Err(format!("--- BuildKit\n{expected}\n--- hoist\n{got}"))
    }
}

/// The warning blocks, sorted: BuildKit orders findings by line only (findings on one line
/// come in no fixed order).
fn sorted_blocks(s: &str) -> Vec<String> {
    let mut v: Vec<String> = s
        .split("\nWARNING: ")
        .filter(|b| !b.trim().is_empty())
        .map(str::to_string)
        .collect();
    v.sort();
    v
}

#[test]
fn buildkit_findings_replay() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/lint");
    let mut dirs: Vec<_> = std::fs::read_dir(&root)
        .expect("fixtures")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    assert!(
        dirs.len() >= 20,
        "fixtures missing under {}",
        root.display()
    );
    let failures: Vec<String> = dirs
        .iter()
        .filter_map(|d| {
            replay(d).err().map(|e| {
                format!(
                    "== {}\n{e}",
                    d.file_name().unwrap_or_default().to_string_lossy()
                )
            })
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} cases differ from BuildKit:\n{}",
        failures.len(),
        dirs.len(),
        failures.join("\n")
    );
}
