//! Replays the differential engine's findings (`scripts/differential/`, docs/differential.md)
//! with hoist alone: every case under `tests/fixtures/conformance/<case>/` holds a build
//! context (`context/`, with the Dockerfile) and BuildKit's result as data (`expected.json`:
//! `status` `ok`|`fails`, and for `ok` the normalized `snapshot`, taken against the lab's
//! busybox; `modes` restores the context file modes git does not keep). hoist builds the case,
//! pushes it to the lab registry, and its snapshot must equal BuildKit's; where BuildKit
//! failed, hoist must fail too. CI needs no BuildKit.
//!
//! A case with a `known-divergence` file (the reason, one paragraph) is a divergence not yet
//! fixed: `replay_known_divergences` (ignored by default; `cargo test --test conformance_replay
//! -- --ignored`) replays those and fails while they still differ, so fixing one shows up as
//! that test passing for it; then delete the file.
//!
//! `replay_matches_buildkit_rootless` builds the same cases as an ordinary user with a
//! subordinate range (issue 15's "the images are the same as a root build").

#![allow(clippy::print_stderr)]

mod common;
#[path = "replay_util/mod.rs"]
mod replay_util;

use common::lab::{LAB_BASE, Need};
use common::{Hoist, text};
use serde_json::Value;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

fn cases() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/conformance");
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("tests/fixtures/conformance")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.join("expected.json").is_file())
        .collect();
    v.sort();
    v
}

fn copy_tree(from: &Path, to: &Path) {
    for e in walkdir::WalkDir::new(from) {
        let e = e.expect("walk fixture");
        let rel = e.path().strip_prefix(from).expect("under fixture");
        let dst = to.join(rel);
        if e.file_type().is_dir() {
            std::fs::create_dir_all(&dst).expect("mkdir");
        } else if e.file_type().is_symlink() {
            // Kept as a link (the generator's contexts hold dangling and absolute ones).
            let target = std::fs::read_link(e.path()).expect("read fixture link");
            std::os::unix::fs::symlink(target, &dst).expect("fixture link");
        } else {
            std::fs::copy(e.path(), &dst).expect("copy fixture file");
        }
    }
}

/// Who runs hoist: root with a store, or an ordinary user (rootless mode 1, issue 15) with a
/// home of its own that the case's context is staged in.
enum Builder<'a> {
    Root(&'a Path),
    User(&'a common::rootless::User, &'a Path),
}

/// Builds one case with hoist; `Err` says how it differs from BuildKit's result.
fn replay(case: &Path, who: &Builder, base: &replay_util::Snapshot) -> Result<(), String> {
    let name = case
        .file_name()
        .expect("name")
        .to_string_lossy()
        .into_owned();
    let exp: Value =
        serde_json::from_slice(&std::fs::read(case.join("expected.json")).expect("read"))
            .expect("expected.json");
    let tmp = tempfile::tempdir().expect("tempdir");
    let ctx = match who {
        Builder::Root(_) => tmp.path().join("ctx"),
        Builder::User(_, home) => home.join("cases").join(&name),
    };
    copy_tree(&case.join("context"), &ctx);
    if let Some(modes) = exp["modes"].as_object() {
        for (p, m) in modes {
            let mode = u32::from_str_radix(m.as_str().expect("mode").trim_start_matches("0o"), 8)
                .expect("octal mode");
            std::fs::set_permissions(ctx.join(p), std::fs::Permissions::from_mode(mode))
                .expect("chmod context file");
        }
    }
    let (hoist, repo) = match who {
        Builder::Root(root) => (Hoist::new(root), "replay"),
        Builder::User(u, home) => {
            let o = std::process::Command::new("chown")
                .arg("-R")
                .arg(format!("{}:{}", u.uid, u.gid))
                .arg(home.join("cases"))
                .output()
                .expect("chown");
            assert!(o.status.success(), "chown the staged case");
            (common::rootless::as_user(u, home), "replay-rootless")
        }
    };
    let image = format!("{}/{repo}/{name}:1", common::lab::LAB_REGISTRY);
    let out = hoist
        .args(["build", "-t", &image, "--push"])
        .arg(&ctx)
        .output();
    let want_ok = exp["status"] == "ok";
    if out.status.success() != want_ok {
        return Err(format!(
            "BuildKit {}, hoist {}: {}",
            if want_ok { "builds it" } else { "fails" },
            if out.status.success() {
                "builds it"
            } else {
                "fails"
            },
            text(&out)
                .lines()
                .rev()
                .take(3)
                .collect::<Vec<_>>()
                .join(" | ")
        ));
    }
    if !want_ok {
        return Ok(());
    }
    let got = replay_util::load(&image).against(base);
    let d = got.diff(&exp["snapshot"]);
    if d.is_empty() {
        Ok(())
    } else {
        Err(d.join("\n    "))
    }
}

fn run(known: bool, rootless: bool) {
    if !common::ready(&[Need::Root, Need::LabRegistry, Need::OciRuntime]) {
        return;
    }
    if rootless && !common::rootless::ready() {
        return;
    }
    let root = tempfile::tempdir().expect("root");
    let u = rootless.then(|| common::rootless::user("hoist-rl", Some((400000, 65536))));
    let home = u.as_ref().map(|u| common::rootless::home(u, &[]));
    let who = match (&u, &home) {
        (Some(u), Some(h)) => Builder::User(u, h.path()),
        _ => Builder::Root(root.path()),
    };
    let base = replay_util::load(LAB_BASE);
    let mut failed = Vec::new();
    let mut n = 0;
    for case in cases() {
        if case.join("known-divergence").exists() != known {
            continue;
        }
        n += 1;
        if let Err(e) = replay(&case, &who, &base) {
            failed.push(format!("{}:\n    {e}", case.display()));
        }
    }
    eprintln!("{} of {n} cases match BuildKit", n - failed.len());
    assert!(
        failed.is_empty(),
        "differ from BuildKit:\n{}",
        failed.join("\n")
    );
}

#[test]
fn replay_matches_buildkit() {
    run(false, false);
}

/// The same cases built by an ordinary user with a subordinate range (rootless mode 1): the
/// images must be BuildKit's too.
#[test]
fn replay_matches_buildkit_rootless() {
    run(false, true);
}

#[test]
#[ignore = "known divergences, each explained in its case's known-divergence file"]
fn replay_known_divergences() {
    run(true, false);
}
