//! COPY/ADD against BuildKit's results: the conformance cases' COPY/ADD steps are applied
//! one layer at a time (each layer merged into a view, like the engine will), and the files
//! they produce are compared with the gold snapshots in ../shared/conformance/gold.
//! The kit lives outside the repository (`../shared`); absent, these tests skip loudly.

#![allow(clippy::print_stderr)]

use hoist::copy::{self, CopyRequest, CopySource, context};
use hoist::parser::dockerignore::Matcher;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The shared conformance kit: `$HOIST_CONFORMANCE_KIT`, else `../shared/conformance` beside
/// the repository. It is not part of this repository; where it is absent these tests say so
/// on stderr and pass, unless `HOIST_REQUIRE_KIT=1` makes its absence an error.
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

/// Copies a case into a writable context with the modes stage.sh gives.
fn stage(kit: &Path, case: &str, dst: &Path) {
    let st = Command::new("bash")
        .arg(kit.join("stage.sh"))
        .arg(case)
        .arg(dst)
        .output()
        .unwrap();
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );
}

fn gold(kit: &Path, case: &str) -> Map<String, Value> {
    let v: Value =
        serde_json::from_slice(&std::fs::read(kit.join(format!("gold/{case}.json"))).unwrap())
            .unwrap();
    v["fs"].as_object().unwrap().clone()
}

fn snapshot(root: &Path) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    for e in walkdir::WalkDir::new(root).min_depth(1) {
        let e = e.unwrap();
        let md = e.path().symlink_metadata().unwrap();
        let rel = format!("/{}", e.path().strip_prefix(root).unwrap().display());
        let mode = format!("0o{:o}", md.mode() & 0o7777);
        let mut v = json!({"mode": mode, "uid": md.uid(), "gid": md.gid()});
        let ft = md.file_type();
        if ft.is_dir() {
            v["type"] = json!("d");
        } else if ft.is_symlink() {
            v["type"] = json!("l");
            v["target"] = json!(std::fs::read_link(e.path()).unwrap().to_string_lossy());
            v["mode"] = json!("0o777");
        } else {
            let data = std::fs::read(e.path()).unwrap();
            v["type"] = json!("f");
            v["size"] = json!(data.len());
            v["sha256"] = json!(hex::encode(Sha256::digest(&data))[..16].to_string());
        }
        out.insert(rel, v);
    }
    out
}

/// Merges a layer dir into the view (no whiteouts are produced by COPY).
fn merge(layer: &Path, view: &Path) {
    let st = Command::new("cp")
        .arg("-a")
        .arg(format!("{}/.", layer.display()))
        .arg(view)
        .status()
        .unwrap();
    assert!(st.success());
}

struct Run {
    view: tempfile::TempDir,
    ctx: PathBuf,
    _tmp: tempfile::TempDir,
    ignore: Matcher,
}

impl Run {
    fn new(kit: &Path, case: &str) -> Run {
        let tmp = tempfile::tempdir().unwrap();
        let ctx = tmp.path().join("ctx");
        stage(kit, case, &ctx);
        let ignore = context::load_ignore(&ctx, &ctx.join("Dockerfile")).unwrap();
        Run {
            view: tempfile::tempdir().unwrap(),
            ctx,
            _tmp: tmp,
            ignore,
        }
    }

    fn step(&self, req: CopyRequest) {
        let layer = tempfile::tempdir().unwrap();
        let src = CopySource::Context {
            root: &self.ctx,
            ignore: &self.ignore,
        };
        copy::apply(&src, &req, self.view.path(), layer.path())
            .unwrap_or_else(|e| panic!("{req:?}: {e}"));
        merge(layer.path(), self.view.path());
    }

    /// Every gold entry under the given prefixes must match, and nothing else may appear.
    fn check(&self, gold: &Map<String, Value>, skip: &[&str]) {
        let got = snapshot(self.view.path());
        let keep = |p: &str| {
            !skip
                .iter()
                .any(|s| p == *s || p.starts_with(&format!("{s}/")))
        };
        let mut diffs = Vec::new();
        for (p, want) in gold.iter().filter(|(p, _)| keep(p)) {
            match got.get(p) {
                Some(g) if g == want => {}
                other => diffs.push(format!("{p}: want {want}, got {other:?}")),
            }
        }
        for p in got.keys().filter(|p| keep(p) && !gold.contains_key(*p)) {
            diffs.push(format!("{p}: unexpected"));
        }
        assert!(
            diffs.is_empty(),
            "{} differences:\n{}",
            diffs.len(),
            diffs.join("\n")
        );
    }
}

fn req(sources: &[&str], dest: &str) -> CopyRequest {
    CopyRequest {
        sources: sources.iter().map(|s| s.to_string()).collect(),
        dest: dest.into(),
        ..Default::default()
    }
}

#[test]
fn copysem_matches_buildkit() {
    let Some(kit) = kit() else { return };
    let r = Run::new(&kit, "copysem");
    // git cannot keep this symlink in the kit; the real case has it.
    std::fs::remove_file(r.ctx.join("link-to-a")).unwrap();
    std::os::unix::fs::symlink("a.txt", r.ctx.join("link-to-a")).unwrap();
    r.step(req(&["dir"], "/copied-dir-contents/"));
    r.step(req(&["dir/"], "/copied-dir-slash"));
    r.step(req(&["*.txt"], "/texts/"));
    r.step(req(&["a.txt", "b.txt"], "/two/"));
    r.step(req(&["a.txt"], "/renamed.txt"));
    r.step(req(&["a.txt"], "/newdir/sub/"));
    r.step(CopyRequest {
        chown: Some((1000, 50)),
        ..req(&["a.txt"], "/owned/a.txt")
    });
    r.step(CopyRequest {
        chown: Some((1000, 50)),
        ..req(&["b.txt"], "/owned/b.txt")
    });
    r.step(CopyRequest {
        chmod: Some("0755".into()),
        ..req(&["script.sh"], "/usr/local/bin/script")
    });
    r.step(CopyRequest {
        chmod: Some("640".into()),
        ..req(&["dir"], "/modes/")
    });
    r.step(req(&["link-to-a"], "/links/"));
    r.step(req(&["nested"], "/nested"));
    r.check(&gold(&kit, "copysem"), &[]);
}

#[test]
fn addtar_matches_buildkit() {
    let Some(kit) = kit() else { return };
    let r = Run::new(&kit, "addtar");
    r.step(CopyRequest {
        add: true,
        ..req(&["archive.tar.gz"], "/unpacked/")
    });
    r.step(CopyRequest {
        add: true,
        ..req(&["plain.txt"], "/added/plain.txt")
    });
    r.step(CopyRequest {
        add: true,
        chown: Some((1000, 1000)),
        ..req(&["dir"], "/added/dir")
    });
    r.step(req(&["archive.tar.gz"], "/not-unpacked/"));
    r.check(&gold(&kit, "addtar"), &[]);
}

#[test]
fn links_parents_exclude_match_buildkit() {
    let Some(kit) = kit() else { return };
    let r = Run::new(&kit, "links");
    r.step(req(&["a.txt"], "/linked/a.txt"));
    r.step(CopyRequest {
        parents: true,
        ..req(&["src/**/*.go"], "/parents/")
    });
    r.step(CopyRequest {
        exclude: vec!["*.tmp".into()],
        ..req(&["files/"], "/excluded/")
    });
    r.check(&gold(&kit, "links"), &["/l", "/dev", "/proc", "/sys"]);
}

#[test]
fn dockerignore_matches_buildkit() {
    let Some(kit) = kit() else { return };
    let r = Run::new(&kit, "dockerignore");
    r.step(req(&["."], "/ctx"));
    r.check(
        &gold(&kit, "dockerignore"),
        &["/ctx-listing", "/dev", "/proc", "/sys"],
    );
}

#[test]
fn scratch_matches_buildkit() {
    let Some(kit) = kit() else { return };
    let r = Run::new(&kit, "scratch");
    r.step(req(&["payload/"], "/"));
    r.check(&gold(&kit, "scratch"), &[]);
}

#[test]
fn heredoc_matches_buildkit() {
    let Some(kit) = kit() else { return };
    let r = Run::new(&kit, "heredoc");
    let hd = |name: &str, content: &str, dest: &str| CopyRequest {
        heredocs: vec![(name.into(), content.into())],
        ..req(&[name], dest)
    };
    std::fs::create_dir(r.view.path().join("hd")).unwrap(); // made by an earlier RUN
    r.step(hd("EOT", "key=value\nhome=\n", "/hd/c.conf"));
    r.step(hd("EOT", "literal=$HOME\n", "/hd/d.conf"));
    let g = gold(&kit, "heredoc");
    let want: Map<String, Value> = g
        .into_iter()
        .filter(|(p, _)| p.ends_with(".conf"))
        .collect();
    r.check(
        &want,
        &["/hd/a", "/hd/b", "/hd/e", "/hd", "/dev", "/proc", "/sys"],
    );
    let got = snapshot(r.view.path());
    for (p, w) in &want {
        assert_eq!(got.get(p), Some(w), "{p}");
    }
}
