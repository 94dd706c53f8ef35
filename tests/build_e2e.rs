//! End-to-end: the real `hoist` binary builds, pushes, rebuilds from cache, fails clearly,
//! and runs images, against the local registry that `scripts/lab-setup.sh` starts on
//! localhost:5000 (with `busybox:latest`). Needs root (sandbox, overlayfs).

mod common;

use common::lab::{LAB_BASE as BASE, Need, ready};
use common::{hoist, text};
use std::process::{Command, Output};

fn context(files: &[(&str, &str)]) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    for (name, body) in files {
        let p = d.path().join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, body).unwrap();
    }
    d
}

fn registry_json(path: &str) -> serde_json::Value {
    let o = Command::new("curl")
        .args(["-sf", "-H", "Accept: application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json"])
        .arg(format!("http://localhost:5000/v2/{path}"))
        .output()
        .unwrap();
    assert!(o.status.success(), "GET {path} failed");
    serde_json::from_slice(&o.stdout).unwrap()
}

#[test]
fn builds_pushes_and_rebuilds_from_cache() {
    if !ready(&[Need::Root, Need::LabRegistry]) {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let ctx = context(&[
        (
            "Dockerfile",
            &format!(
                "FROM {BASE}\nENV APP=/srv/app GREETING=\"hello world\"\nWORKDIR $APP\nCOPY hello.txt .\nRUN echo \"$GREETING\" > greeting && cat hello.txt >> greeting\nEXPOSE 8080\nUSER app\nCMD [\"cat\", \"greeting\"]\n"
            ),
        ),
        ("hello.txt", "from the context\n"),
    ]);
    let tag = format!("localhost:5000/hoist-e2e/basic:{}", std::process::id());
    let o = hoist(
        root.path(),
        &[
            "build",
            "--progress",
            "plain",
            "-t",
            &tag,
            "--push",
            ctx.path().to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "{}", text(&o));

    let repo_tag = tag
        .trim_start_matches("localhost:5000/")
        .replacen(':', "/manifests/", 1);
    let manifest = registry_json(&repo_tag);
    let cfg_digest = manifest["config"]["digest"].as_str().unwrap().to_string();
    let repo = repo_tag.split("/manifests/").next().unwrap();
    let cfg = registry_json(&format!("{repo}/blobs/{cfg_digest}"));
    let c = &cfg["config"];
    assert_eq!(c["WorkingDir"], "/srv/app");
    assert_eq!(c["User"], "app");
    assert_eq!(c["Cmd"], serde_json::json!(["cat", "greeting"]));
    assert!(c["ExposedPorts"]["8080/tcp"].is_object());
    let env: Vec<String> = serde_json::from_value(c["Env"].clone()).unwrap();
    assert!(env.contains(&"GREETING=hello world".to_string()), "{env:?}");
    assert_eq!(
        cfg["rootfs"]["diff_ids"].as_array().unwrap().len(),
        manifest["layers"].as_array().unwrap().len()
    );

    // The image runs and shows what RUN wrote.
    let o = hoist(root.path(), &["run", &tag]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "hello world\nfrom the context\n"
    );

    // Unchanged rebuild: every step cached, the same image.
    let o2 = hoist(
        root.path(),
        &[
            "build",
            "--progress",
            "plain",
            "-t",
            &tag,
            ctx.path().to_str().unwrap(),
        ],
    );
    assert!(o2.status.success(), "{}", text(&o2));
    let out = text(&o2);
    assert_eq!(out.matches(" CACHED").count(), 3, "{out}");
    let manifest2 = registry_json(&repo_tag);
    assert_eq!(manifest, manifest2);
    let built = |o: &Output| {
        text(o)
            .lines()
            .find(|l| l.starts_with("built "))
            .map(str::to_string)
    };
    assert_eq!(built(&o), None); // `hoist run` printed no build line
    assert!(built(&o2).unwrap().contains(&cfg_digest), "{out}");

    // A changed source invalidates COPY and what follows, not what comes before.
    std::fs::write(ctx.path().join("hello.txt"), "changed\n").unwrap();
    let o3 = hoist(
        root.path(),
        &[
            "build",
            "--progress",
            "plain",
            "-t",
            &tag,
            ctx.path().to_str().unwrap(),
        ],
    );
    assert!(o3.status.success(), "{}", text(&o3));
    assert_eq!(text(&o3).matches(" CACHED").count(), 1, "{}", text(&o3));
}

#[test]
fn failing_run_names_the_line_and_exit_code() {
    if !ready(&[Need::Root, Need::LabRegistry]) {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let ctx = context(&[(
        "Dockerfile",
        &format!("FROM {BASE}\nRUN echo about to fail && exit 3\nRUN echo never\n"),
    )]);
    let o = hoist(
        root.path(),
        &["build", "--progress", "plain", ctx.path().to_str().unwrap()],
    );
    assert!(!o.status.success());
    let t = text(&o);
    assert!(t.contains("exit code: 3"), "{t}");
    assert!(t.contains("Dockerfile:2"), "{t}");
    assert!(t.contains("about to fail"), "{t}");
    assert!(!t.contains("never\n#"), "{t}");
}

#[test]
fn independent_stages_run_concurrently() {
    if !ready(&[Need::Root, Need::LabRegistry]) {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let mut df = String::new();
    for s in ["a", "b", "c"] {
        df.push_str(&format!(
            "FROM {BASE} AS {s}\nRUN sleep 2 && echo {s} > /{s}\n"
        ));
    }
    df.push_str(&format!(
        "FROM {BASE}\nCOPY --from=a /a /a\nCOPY --from=b /b /b\nCOPY --from=c /c /c\n"
    ));
    let ctx = context(&[("Dockerfile", &df)]);
    let o = hoist(
        root.path(),
        &[
            "build",
            "--no-cache",
            "--progress",
            "json",
            "-t",
            "hoist-e2e/parallel:latest",
            ctx.path().to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    // Concurrency shown by order, not by timing: every RUN starts before any RUN finishes.
    let events: Vec<serde_json::Value> = String::from_utf8_lossy(&o.stderr)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let run_ids: Vec<u64> = events
        .iter()
        .filter(|e| {
            e["event"] == "started"
                && e["name"]
                    .as_str()
                    .is_some_and(|n| n.contains("RUN sleep 2"))
        })
        .filter_map(|e| e["id"].as_u64())
        .collect();
    assert_eq!(run_ids.len(), 3, "{}", text(&o));
    let pos = |pred: &dyn Fn(&serde_json::Value) -> bool| events.iter().position(pred).unwrap();
    let last_start = run_ids
        .iter()
        .map(|id| pos(&|e| e["event"] == "started" && e["id"].as_u64() == Some(*id)))
        .max()
        .unwrap();
    let first_done = run_ids
        .iter()
        .map(|id| pos(&|e| e["event"] == "done" && e["id"].as_u64() == Some(*id)))
        .min()
        .unwrap();
    assert!(
        last_start < first_done,
        "a RUN finished before another started: stages ran one after another\n{}",
        text(&o)
    );
}

#[test]
fn unneeded_stages_never_run() {
    if !ready(&[Need::Root, Need::LabRegistry]) {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let ctx = context(&[(
        "Dockerfile",
        &format!("FROM {BASE} AS broken\nRUN exit 1\nFROM {BASE} AS good\nRUN echo ok > /ok\n"),
    )]);
    let o = hoist(
        root.path(),
        &["build", "--target", "good", ctx.path().to_str().unwrap()],
    );
    assert!(o.status.success(), "{}", text(&o));
}

#[test]
fn dry_run_plans_without_pulling() {
    let root = tempfile::tempdir().unwrap();
    let ctx = context(&[(
        "Dockerfile",
        "ARG V=1\nFROM nowhere.invalid/never:${V} AS a\nRUN make\nFROM scratch\nCOPY --from=a /out /out\n",
    )]);
    let o = hoist(
        root.path(),
        &["build", "--dry-run", ctx.path().to_str().unwrap()],
    );
    assert!(o.status.success(), "{}", text(&o));
    let t = text(&o);
    // The global ARG is expanded in FROM, the step and its --from dependency are shown.
    assert!(t.contains("from image nowhere.invalid/never:1"), "{t}");
    assert!(t.contains("RUN sh: make"), "{t}");
    assert!(t.contains("<- --from stage 0 (a)"), "{t}");
}

#[test]
fn parse_errors_name_file_and_line() {
    let root = tempfile::tempdir().unwrap();
    let ctx = context(&[("Dockerfile", "FROM scratch\nRUN true\nFOO bar\n")]);
    let o = hoist(root.path(), &["build", ctx.path().to_str().unwrap()]);
    assert!(!o.status.success());
    let t = text(&o);
    assert!(t.contains("Dockerfile:3"), "{t}");
    assert!(t.to_lowercase().contains("unknown instruction"), "{t}");
}

#[test]
fn identical_layers_in_a_stage_still_run() {
    // Two RUNs that change nothing make identical (empty) layers, stored as one snapshot dir:
    // the next RUN's overlay once got that dir twice and failed with ELOOP.
    if !ready(&[Need::Root, Need::LabRegistry]) {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let ctx = context(&[(
        "Dockerfile",
        &format!(
            "FROM {BASE}\nRUN echo a > /a\nRUN true\nRUN true && true\nRUN echo ran-$(cat /a)\n\
             FROM {BASE}\nCOPY --from=0 /a /copied\nRUN cat /copied\n"
        ),
    )]);
    let o = hoist(
        root.path(),
        &["build", "--progress", "plain", ctx.path().to_str().unwrap()],
    );
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert!(t.contains(" ran-a\n"), "{t}");
}

#[test]
fn cache_mount_source_mounts_a_sub_dir_of_the_cache() {
    // As in BuildKit, `source=SUB` without `from=` mounts the sub-dir SUB of the cache dir
    // itself: what one RUN writes under the cache's SUB is at the target of a later RUN, and
    // what that RUN writes there is in the cache. SUB resolves inside the cache (an absolute
    // symlink too), a read-only mount stays read-only, and a missing SUB fails the step with
    // an error naming the mount.
    if !ready(&[Need::Root, Need::LabRegistry]) {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let ctx = context(&[(
        "Dockerfile",
        &format!(
            "FROM {BASE}\n\
             RUN --mount=type=cache,id=sub-e2e,target=/c mkdir -p /c/sub \
             && echo under-sub > /c/sub/f && ln -s /sub /c/abs\n\
             RUN --mount=type=cache,id=sub-e2e,source=sub,target=/m \
             echo seen=$(cat /m/f) && echo back > /m/g && ls /m\n\
             RUN --mount=type=cache,id=sub-e2e,source=/abs/,target=/m echo via-link=$(cat /m/g)\n\
             RUN --mount=type=cache,id=sub-e2e,source=sub,target=/m,ro \
             if touch /m/h 2>/dev/null; then echo ro=writable; else echo ro=refused; fi\n\
             RUN --mount=type=cache,id=sub-e2e,target=/c echo root=$(ls /c | tr '\\n' ' ')\n"
        ),
    )]);
    let o = hoist(
        root.path(),
        &["build", "--progress", "plain", ctx.path().to_str().unwrap()],
    );
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert!(t.contains(" seen=under-sub\n"), "{t}");
    assert!(t.contains(" via-link=back\n"), "{t}");
    assert!(t.contains(" ro=refused\n"), "{t}");
    assert!(t.contains(" root=abs sub\n"), "{t}");

    let bad = context(&[(
        "Dockerfile",
        &format!("FROM {BASE}\nRUN --mount=type=cache,id=sub-e2e,source=nope,target=/m ls /m\n"),
    )]);
    let o = hoist(
        root.path(),
        &["build", "--progress", "plain", bad.path().to_str().unwrap()],
    );
    assert!(!o.status.success());
    let t = text(&o);
    assert!(t.contains("Dockerfile:2"), "{t}");
    assert!(
        t.contains("cache mount source \"/nope\" not found in cache \"sub-e2e\" (mount target /m)"),
        "{t}"
    );
}

#[test]
fn cache_mount_seeded_from_a_stage_then_persists() {
    if !ready(&[Need::Root, Need::LabRegistry]) {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let ctx = context(&[(
        "Dockerfile",
        &format!(
            "FROM {BASE} AS seed\n\
             RUN mkdir -p /data/sub && echo seeded > /data/sub/a && chown 1000:2000 /data/sub/a \
             && chmod 640 /data/sub/a && ln -s /etc/passwd /data/link && echo outside > /top\n\
             FROM {BASE}\n\
             ARG N\n\
             RUN --mount=type=cache,target=/c,from=seed,source=/data \
             echo entry-$N >> /c/log && cat /c/sub/a && stat -c 'st=%a %u:%g' /c/sub/a \
             && echo link=$(readlink /c/link) && ls /c && cat /c/log\n"
        ),
    )]);
    let build = |n: &str| {
        let o = hoist(
            root.path(),
            &[
                "build",
                "--progress",
                "plain",
                "--build-arg",
                &format!("N={n}"),
                ctx.path().to_str().unwrap(),
            ],
        );
        assert!(o.status.success(), "{}", text(&o));
        text(&o)
    };
    // A new cache starts as a copy of the seed's /data: contents, owner, mode, symlink as is.
    let t1 = build("1");
    assert!(t1.contains(" seeded\n"), "{t1}");
    assert!(t1.contains("st=640 1000:2000"), "{t1}");
    assert!(t1.contains("link=/etc/passwd"), "{t1}");
    assert!(!t1.contains(" top\n"), "only source= is copied: {t1}");
    assert_eq!(t1.matches(" entry-1\n").count(), 1, "{t1}");
    // The next build finds the cache with its own change, not a fresh seed.
    let t2 = build("2");
    assert!(t2.contains(" seeded\n"), "{t2}");
    let (e1, e2) = (t2.find(" entry-1\n"), t2.find(" entry-2\n"));
    assert!(e1.is_some() && e2.is_some() && e1 < e2, "{t2}");

    // A source the seed does not have is an error naming the Dockerfile line.
    let bad = context(&[(
        "Dockerfile",
        &format!(
            "FROM {BASE} AS seed\nRUN true\nFROM {BASE}\n\
             RUN --mount=type=cache,target=/c,from=seed,source=/nope ls /c\n"
        ),
    )]);
    let o = hoist(
        root.path(),
        &["build", "--progress", "plain", bad.path().to_str().unwrap()],
    );
    assert!(!o.status.success());
    let t = text(&o);
    assert!(t.contains("Dockerfile:4"), "{t}");
    assert!(t.contains("cache mount source \"/nope\" not found"), "{t}");
}

/// `hoist build --output type=local,dest=OUT [flags] -` with `stdin` as its standard input.
fn build_stdin(
    root: &std::path::Path,
    out: &std::path::Path,
    flags: &[&str],
    stdin: Vec<u8>,
) -> Output {
    use std::io::Write;
    let mut cmd = common::run::Hoist::new(root)
        .args(["build", "--progress", "plain", "--output"])
        .arg(format!("type=local,dest={}", out.display()))
        .args(flags)
        .arg("-")
        .command();
    cmd.stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let mut input = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || {
        let _ = input.write_all(&stdin);
    });
    let o = child.wait_with_output().unwrap();
    writer.join().unwrap();
    o
}

/// `docker build -`: stdin holds a context tar (the Dockerfile inside, `-f` naming another
/// file in it; plain or gzip) or a lone Dockerfile.
#[test]
fn stdin_context_is_a_tar_or_a_dockerfile() {
    if !ready(&[Need::Root, Need::LabRegistry]) {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let ctx = context(&[
        (
            "Dockerfile",
            &format!("FROM {BASE}\nCOPY data.txt /from-tar\n"),
        ),
        ("alt/Other", &format!("FROM {BASE}\nCOPY alt/note /note\n")),
        ("data.txt", "packed\n"),
        ("alt/note", "other dockerfile\n"),
    ]);
    let tar = |gzip: bool| -> Vec<u8> {
        let o = Command::new("tar")
            .arg(if gzip { "-czf" } else { "-cf" })
            .arg("-")
            .arg("-C")
            .arg(ctx.path())
            .arg(".")
            .output()
            .unwrap();
        assert!(o.status.success());
        o.stdout
    };
    let out = tempfile::tempdir().unwrap();
    let o = build_stdin(root.path(), &out.path().join("a"), &[], tar(false));
    assert!(o.status.success(), "{}", text(&o));
    let read = |p: &str| std::fs::read_to_string(out.path().join(p)).unwrap_or_default();
    assert_eq!(read("a/from-tar"), "packed\n");
    let o = build_stdin(
        root.path(),
        &out.path().join("b"),
        &["-f", "alt/Other"],
        tar(true),
    );
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(read("b/note"), "other dockerfile\n");
    // A plain Dockerfile: the context holds just that file.
    let df = format!("FROM {BASE}\nCOPY . /ctx/\nRUN ls /ctx > /listing\n");
    let o = build_stdin(root.path(), &out.path().join("c"), &[], df.into_bytes());
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(read("c/listing"), "Dockerfile\n");
}

/// BuildKit's RUN semantics in a real sandbox: a shebang heredoc is a script file run by its
/// interpreter (`$0` is its path), a heredoc fed to a command still reaches its stdin, ARGs
/// come through `FROM <stage>` and an ARG after an ENV of its name wins, the primary gid is
/// among the groups, and an octal `--chmod` gives created destination dirs its mode.
#[test]
fn run_heredoc_scripts_args_groups_and_chmod_dirs_like_buildkit() {
    if !ready(&[Need::Root, Need::LabRegistry]) {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let df = format!(
        "FROM {BASE} AS first\nARG FLAVOR=mild\n\
         FROM first\nENV MODE=env\nARG MODE=arg\n\
         RUN <<EOT\n#!/bin/sh -e\necho \"$0 $FLAVOR $MODE\" > /script\nstat -c %a \"$0\" > /script-mode\nEOT\n\
         RUN <<EOT\n#!/bin/awk -f\nBEGIN {{ print \"awk ran\" > \"/awk-out\" }}\nEOT\n\
         RUN <<EOT sh -c 'cat > /fed'\nthrough stdin\nEOT\n\
         RUN id > /id-root\n\
         COPY --link --chmod=700 data /made/deep/\n\
         ADD --chmod=600 data /single/\n"
    );
    let ctx = context(&[("Dockerfile", &df), ("data", "d\n")]);
    let out = tempfile::tempdir().unwrap();
    let o = hoist(
        root.path(),
        &[
            "build",
            "--progress",
            "plain",
            "--output",
            &format!("type=local,dest={}", out.path().display()),
            ctx.path().to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    let read = |p: &str| std::fs::read_to_string(out.path().join(p)).unwrap_or_default();
    assert_eq!(read("script"), "/dev/pipes/EOT mild arg\n");
    assert_eq!(read("script-mode"), "755\n");
    assert_eq!(read("awk-out"), "awk ran\n");
    assert_eq!(read("fed"), "through stdin\n");
    assert!(
        read("id-root").contains("groups=0(root)"),
        "{}",
        read("id-root")
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &str| {
        std::fs::symlink_metadata(out.path().join(p))
            .map(|m| m.permissions().mode() & 0o7777)
            .unwrap_or(0)
    };
    assert_eq!(
        (mode("made"), mode("made/deep"), mode("made/deep/data")),
        (0o700, 0o700, 0o700)
    );
    assert_eq!((mode("single"), mode("single/data")), (0o600, 0o600));
}
