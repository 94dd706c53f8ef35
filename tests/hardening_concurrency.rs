//! Concurrency (issue 7): 4 `hoist build`s at once on one store, with `hoist prune` looping
//! beside them. The four Dockerfiles share the base image and a
//! `RUN --mount=type=cache,id=shared,sharing=locked` step that appends one line to a file of
//! the shared cache in ten pieces with pauses: `locked` must serialise them, so the file ends
//! with exactly 4 whole lines, one per build, never interleaved. Every build must succeed,
//! `hoist fsck` must find the store intact, each image must equal the one a serial build on
//! a separate store gives, and `hoist push` of each must work afterwards (so prune never
//! removed a blob a build was using or had just made).

#![allow(clippy::print_stderr)]

#[path = "hardening_util/mod.rs"]
mod util;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Instant;
use util::*;

const BUILDS: usize = 4;

fn contexts(dir: &Path) -> Vec<PathBuf> {
    (0..BUILDS)
        .map(|n| {
            let d = dir.join(format!("ctx{n}"));
            std::fs::create_dir_all(&d).unwrap();
            std::fs::write(
                d.join("Dockerfile"),
                format!(
                    "FROM {BASE}\n\
                     RUN --mount=type=cache,id=shared,sharing=locked,target=/cache \\\n    \
                     for i in 1 2 3 4 5 6 7 8 9 10; do printf 'b{n}-%s ' $i >> /cache/log; sleep 0.05; done; echo >> /cache/log\n\
                     RUN echo {n} > /who && yes b{n} | head -c 200000 > /pad\n\
                     COPY marker /marker\n"
                ),
            )
            .unwrap();
            std::fs::write(d.join("marker"), format!("build {n}\n")).unwrap();
            d
        })
        .collect()
}

fn tag(n: usize) -> String {
    format!("localhost:5000/hoist-harden/concurrent-{n}:latest")
}

#[test]
fn four_builds_and_prune_on_one_store() {
    if !can_run() {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let ctxs = contexts(work.path());
    let root = work.path().join("store");
    let start = Instant::now();

    let done = Arc::new(AtomicBool::new(false));
    let prunes = Arc::new(AtomicUsize::new(0));
    let pruner = {
        let (root, done, prunes) = (root.clone(), done.clone(), prunes.clone());
        std::thread::spawn(move || {
            while !done.load(Ordering::SeqCst) {
                let o = hoist(&root, &["prune"]);
                ok(&o, "prune during builds");
                prunes.fetch_add(1, Ordering::SeqCst);
            }
        })
    };
    let builders: Vec<_> = ctxs
        .iter()
        .enumerate()
        .map(|(n, ctx)| {
            let (root, ctx) = (root.clone(), ctx.clone());
            std::thread::spawn(move || {
                hoist(
                    &root,
                    &[
                        "build",
                        "--progress=plain",
                        "-t",
                        &tag(n),
                        ctx.to_str().unwrap(),
                    ],
                )
            })
        })
        .collect();
    let outs: Vec<String> = builders
        .into_iter()
        .enumerate()
        .map(|(n, b)| ok(&b.join().unwrap(), &format!("concurrent build {n}")))
        .collect();
    done.store(true, Ordering::SeqCst);
    pruner.join().unwrap();
    let concurrent_secs = start.elapsed().as_secs_f64();

    // `sharing=locked`: whole lines, one per build.
    let log = walkdir::WalkDir::new(root.join("cache-mounts"))
        .into_iter()
        .flatten()
        .find(|e| e.file_name() == "log")
        .map(|e| std::fs::read_to_string(e.path()).unwrap())
        .expect("the shared cache mount holds the log");
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines.len(), BUILDS, "one line per build:\n{log}");
    let mut who: Vec<usize> = Vec::new();
    for l in &lines {
        let n: usize = l[1..2].parse().unwrap_or(99);
        let whole: String = (1..=10).map(|i| format!("b{n}-{i} ")).collect();
        assert_eq!(*l, whole, "interleaved writes under sharing=locked:\n{log}");
        who.push(n);
    }
    who.sort();
    assert_eq!(who, (0..BUILDS).collect::<Vec<_>>(), "{log}");

    // Nothing a build made was pruned: the store is intact, one more prune keeps the images.
    ok(&hoist(&root, &["prune"]), "prune after builds");
    assert_fsck_clean(&root, "after concurrent builds and prunes");

    // Same images as serial builds on a separate store.
    let serial_root = work.path().join("serial");
    for (n, ctx) in ctxs.iter().enumerate() {
        let o = hoist(
            &serial_root,
            &[
                "build",
                "--progress=plain",
                "-t",
                &tag(n),
                ctx.to_str().unwrap(),
            ],
        );
        let serial = manifest_digest(&ok(&o, &format!("serial build {n}")));
        assert_eq!(manifest_digest(&outs[n]), serial, "build {n}");
    }

    // Every image pushes from the shared store.
    let repo = fresh_repo("concurrent");
    for (n, out) in outs.iter().enumerate() {
        let dest = format!("{repo}-{n}:latest");
        ok(&hoist(&root, &["tag", &tag(n), &dest]), "tag");
        ok(&hoist(&root, &["push", &dest]), &format!("push {n}"));
        assert_eq!(registry_digest(&dest), manifest_digest(out), "pushed {n}");
    }
    assert!(mounts_under(work.path()).is_empty());
    assert!(
        scratch_files(&root).is_empty(),
        "{:?}",
        scratch_files(&root)
    );
    eprintln!(
        "{BUILDS} concurrent builds with {} prunes beside them in {concurrent_secs:.1}s",
        prunes.load(Ordering::SeqCst)
    );
}
