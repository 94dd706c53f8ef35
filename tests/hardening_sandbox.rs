//! Issue 7 gaps found by the security matrix (docs/security-matrix.md), checked end to end with
//! the real binary as root against the lab registry:
//! - `/etc/passwd` / `/etc/group` in the base image as a FIFO, a symlink to `/dev/zero`, or a
//!   20 MiB file: USER and `COPY --chown` fail at once with an error naming the file;
//! - `RUN --mount=type=bind` sources from a context given as a relative path, through symlinks
//!   and `..`, stay inside the context (and work at all: they once resolved against the
//!   runtime's bundle directory);
//! - an image whose `/dev` is a symlink to a host directory: the sandbox's /dev is its own, the
//!   host directory is untouched and nothing is mounted on it;
//! - the sandbox cannot reach hoist's store or binary;
//! - a `--build-arg` named like a secret never reaches a layer, the config, history, the cache
//!   index or the progress output, while the SecretsUsedInArgOrEnv warning is shown.

#[path = "hardening_util/mod.rs"]
mod util;

use std::path::Path;
use std::time::{Duration, Instant};
use util::*;

fn text(o: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn ctx(files: &[(&str, &str)]) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    for (name, body) in files {
        let p = d.path().join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, body).unwrap();
    }
    d
}

/// Every regular file under `dir` whose bytes contain `needle`.
fn files_containing(dir: &Path, needle: &[u8]) -> Vec<String> {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .flatten()
        .filter(|e| e.file_type().is_file())
        .filter(|e| {
            std::fs::read(e.path())
                .map(|b| b.windows(needle.len()).any(|w| w == needle))
                .unwrap_or(false)
        })
        .map(|e| e.path().display().to_string())
        .collect()
}

/// Every blob under `blobs` holding `needle`, raw or gunzipped.
fn blobs_containing(blobs: &Path, needle: &[u8]) -> Vec<String> {
    let mut hits = files_containing(blobs, needle);
    for e in walkdir::WalkDir::new(blobs)
        .into_iter()
        .flatten()
        .filter(|e| e.file_type().is_file())
    {
        let Ok(raw) = std::fs::read(e.path()) else {
            continue;
        };
        let mut out = Vec::new();
        if std::io::Read::read_to_end(&mut flate2::read::MultiGzDecoder::new(&raw[..]), &mut out)
            .is_ok()
            && out.windows(needle.len()).any(|w| w == needle)
        {
            hits.push(format!("{} (gunzipped)", e.path().display()));
        }
    }
    hits
}

#[test]
fn special_passwd_and_group_files_fail_fast_with_a_clear_error() {
    if !can_run() {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let cases = [
        (
            "fifo-user",
            "RUN rm /etc/passwd && mkfifo /etc/passwd\nUSER nobody\nRUN true\n",
            "/etc/passwd of the image: not a regular file",
        ),
        (
            "fifo-chown",
            "RUN rm /etc/passwd && mkfifo /etc/passwd\nCOPY --chown=nobody Dockerfile /x\n",
            "/etc/passwd of the image: not a regular file",
        ),
        (
            "zero-user",
            "RUN rm /etc/passwd && ln -s /dev/zero /etc/passwd\nUSER nobody\nRUN true\n",
            "unable to find user nobody",
        ),
        (
            "zero-group",
            // RUN's USER, not --chown: a file operation falls back to the user's gid for a
            // group it cannot find, as in BuildKit.
            "RUN rm /etc/group && ln -s /dev/zero /etc/group\nUSER 0:nogroup\nRUN true\n",
            "unable to find group nogroup",
        ),
        (
            "big-user",
            "RUN head -c 20971520 /dev/zero > /etc/passwd\nUSER nobody\nRUN true\n",
            "/etc/passwd of the image: larger than 10485760 bytes",
        ),
        (
            "big-group-chown",
            "RUN head -c 20971520 /dev/zero > /etc/group\nCOPY --chown=0:nogroup Dockerfile /x\n",
            "/etc/group of the image: larger than 10485760 bytes",
        ),
    ];
    for (name, steps, want) in cases {
        let c = ctx(&[("Dockerfile", &format!("FROM {BASE}\n{steps}"))]);
        let start = Instant::now();
        let o = hoist(
            root.path(),
            &["build", "--progress", "plain", &c.path().to_string_lossy()],
        );
        let t = text(&o);
        assert!(!o.status.success(), "{name}: must fail\n{t}");
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{name}: no hang ({:?})",
            start.elapsed()
        );
        let err = t
            .lines()
            .filter(|l| l.starts_with("error:"))
            .collect::<String>();
        assert!(err.contains(want), "{name}: want {want:?} in:\n{t}");
        assert!(!t.contains("panicked"), "{name}:\n{t}");
    }
    assert_fsck_clean(root.path(), "after the passwd cases");
}

#[test]
fn bind_sources_from_a_relative_context_stay_inside_it() {
    if !can_run() {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let host = tempfile::tempdir().unwrap();
    std::fs::write(host.path().join("s.txt"), "HOST-ONLY-SECRET").unwrap();
    let hostdir = host.path().to_string_lossy().into_owned();
    let inside = hostdir.trim_start_matches('/');
    let c = ctx(&[
        ("plain/s.txt", "PLAIN-IN-CONTEXT"),
        (&format!("{inside}/s.txt"), "CLAMPED-IN-CONTEXT"),
    ]);
    std::os::unix::fs::symlink(&hostdir, c.path().join("abs")).unwrap();
    std::os::unix::fs::symlink(format!("../../../../../..{hostdir}"), c.path().join("up")).unwrap();
    // (source, what the RUN must print, or the error it must fail with)
    let cases: Vec<(String, &str)> = vec![
        ("plain".into(), "PLAIN-IN-CONTEXT"),
        ("abs".into(), "CLAMPED-IN-CONTEXT"),
        ("up".into(), "CLAMPED-IN-CONTEXT"),
        (format!("../../../..{hostdir}"), "CLAMPED-IN-CONTEXT"),
        ("../../../../etc".into(), "not found"),
    ];
    for (source, want) in cases {
        std::fs::write(
            c.path().join("Dockerfile"),
            format!("FROM {BASE}\nRUN --mount=type=bind,source={source},target=/m cat /m/s.txt\n"),
        )
        .unwrap();
        // The context as `.`, the way people type it.
        let o = hoist_cmd(
            root.path(),
            &["build", "--no-cache", "--progress", "plain", "."],
        )
        .current_dir(c.path())
        .output()
        .unwrap();
        let t = text(&o);
        assert!(t.contains(want), "source={source}: want {want:?} in:\n{t}");
        assert!(
            !t.contains("HOST-ONLY-SECRET"),
            "source={source} escaped:\n{t}"
        );
        if want == "not found" {
            assert!(!o.status.success(), "{t}");
        } else {
            assert!(o.status.success(), "source={source}:\n{t}");
        }
    }
}

#[test]
fn an_image_dev_symlink_is_not_followed_by_the_sandbox() {
    if !can_run() {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let canary = tempfile::tempdir().unwrap();
    std::fs::write(canary.path().join("keep"), "canary").unwrap();
    let c = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(c.path().join("bin")).unwrap();
    std::fs::copy("/bin/busybox", c.path().join("bin/busybox")).unwrap();
    std::os::unix::fs::symlink("busybox", c.path().join("bin/sh")).unwrap();
    std::os::unix::fs::symlink(canary.path(), c.path().join("dev")).unwrap();
    std::fs::write(
        c.path().join("Dockerfile"),
        "FROM scratch\nCOPY . /\nRUN [\"/bin/busybox\", \"sh\", \"-c\", \
         \"test -c /dev/null && echo DEV-IS-OURS; /bin/busybox ls /dev/keep || echo NO-CANARY; \
         echo x > /dev/null\"]\n",
    )
    .unwrap();
    let o = hoist(
        root.path(),
        &["build", "--progress", "plain", &c.path().to_string_lossy()],
    );
    let t = ok(&o, "build with a /dev symlink");
    assert!(t.contains("DEV-IS-OURS") && t.contains("NO-CANARY"), "{t}");
    let names: Vec<String> = std::fs::read_dir(canary.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        ["keep"],
        "the host directory was written through /dev"
    );
    let mi = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mi.contains(&*canary.path().to_string_lossy()),
        "something was mounted on the /dev target:\n{mi}"
    );
    // The RUN's layer records no change to /dev: the image keeps its link.
    let md = manifest_digest(&t);
    let blob = |d: &str| {
        std::fs::read(
            root.path()
                .join("blobs/sha256")
                .join(d.trim_start_matches("sha256:")),
        )
        .unwrap()
    };
    let m: serde_json::Value = serde_json::from_slice(&blob(&md)).unwrap();
    let layers = m["layers"].as_array().unwrap();
    let last = blob(layers[layers.len() - 1]["digest"].as_str().unwrap());
    let mut ar = tar::Archive::new(flate2::read::MultiGzDecoder::new(&last[..]));
    let names: Vec<String> = ar
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
        .collect();
    assert!(
        !names.iter().any(|n| n.trim_end_matches('/') == "dev"),
        "{names:?}"
    );
}

#[test]
fn relative_root_and_context_paths_work() {
    if !can_run() {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    std::fs::create_dir(work.path().join("ctx")).unwrap();
    std::fs::write(work.path().join("ctx/f"), "from-context").unwrap();
    std::fs::write(
        work.path().join("ctx/Dockerfile"),
        format!("FROM {BASE}\nRUN --mount=type=bind,target=/m cat /m/f\n"),
    )
    .unwrap();
    let o = common::run::Hoist::new(Path::new("store"))
        .args(["build", "--progress", "plain", "ctx"])
        .command()
        .current_dir(work.path())
        .output()
        .unwrap();
    let t = ok(&o, "build with --root store ctx");
    assert!(t.contains("from-context"), "{t}");
    assert_fsck_clean(&work.path().join("store"), "relative root");
}

#[test]
fn the_sandbox_cannot_reach_the_store_or_the_binary() {
    if !can_run() {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let store = root.path().to_string_lossy().into_owned();
    let bin = env!("CARGO_BIN_EXE_hoist");
    let script = format!(
        "for p in {store}/blobs {store}/snapshots {store}/meta {bin} /proc/1/root{store} \
         /proc/1/root{bin}; do test -e $p && echo REACHED:$p; done; \
         readlink /proc/1/exe; ls /proc/1/root/ | tr '\\n' ' '; echo; \
         for f in /proc/[0-9]*/exe; do readlink $f; done | sort -u; \
         ls /proc/self/fd | tr '\\n' ' '; echo END"
    );
    let c = ctx(&[("Dockerfile", &format!("FROM {BASE}\nRUN {script}\n"))]);
    let o = hoist(
        root.path(),
        &["build", "--progress", "plain", &c.path().to_string_lossy()],
    );
    let t = ok(&o, "probe build");
    assert!(!t.contains("REACHED:/"), "{t}");
    assert!(t.contains("END"), "{t}");
    // Every process in the sandbox runs an image binary: PID 1 is the RUN's shell, as in
    // BuildKit (no init of hoist's, no file of the host).
    let output: Vec<&str> = t
        .lines()
        .filter(|l| l.starts_with("#3 0.") || l.starts_with("#3 1."))
        .collect();
    assert!(output.iter().all(|l| !l.contains(bin)), "{t}");
    assert!(
        output
            .iter()
            .all(|l| !l.contains("memfd:") && !l.ends_with("(deleted)")),
        "{t}"
    );
    assert!(
        output
            .iter()
            .any(|l| l.ends_with(" /bin/busybox") || l.ends_with(" /bin/sh")),
        "pid 1 is the image's shell:\n{t}"
    );
    assert!(
        output.iter().any(|l| l.ends_with(" 0 1 2 3 END")),
        "only stdio (and ls's own dir fd) are open:\n{t}"
    );
}

const SECRET: &str = "Sup3r-S3cret-Value-8472";

/// Builds with `--build-arg PASSWORD=SECRET` (plain, then json progress); returns the output of
/// both builds and the image's `hoist inspect` JSON.
fn build_with_secret_arg(root: &Path) -> (String, serde_json::Value) {
    let c = ctx(&[(
        "Dockerfile",
        &format!(
            "FROM {BASE}\nARG PASSWORD\nARG API_TOKEN=default-token\n\
             RUN test ${{#PASSWORD}} = {} && echo len=${{#PASSWORD}} > /len\n\
             RUN --mount=type=cache,target=/c test -n \"$PASSWORD\" && touch /c/seen\n",
            SECRET.len()
        ),
    )]);
    let mut outputs = String::new();
    for progress in ["plain", "json"] {
        let o = hoist(
            root,
            &[
                "build",
                "--progress",
                progress,
                "--build-arg",
                &format!("PASSWORD={SECRET}"),
                "-t",
                "local/secret-arg:1",
                &c.path().to_string_lossy(),
            ],
        );
        outputs.push_str(&ok(&o, &format!("build --progress {progress}")));
    }
    let o = hoist(root, &["inspect", "local/secret-arg:1"]);
    let inspect = serde_json::from_str(&ok(&o, "inspect")).unwrap();
    (outputs, inspect)
}

#[test]
fn secret_named_build_args_never_reach_layers_run_history_cache_or_logs() {
    if !can_run() {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let (outputs, inspect) = build_with_secret_arg(root.path());
    assert!(
        outputs.contains("SecretsUsedInArgOrEnv") && outputs.contains("(ARG \"PASSWORD\")"),
        "{outputs}"
    );
    assert!(
        !outputs.contains(SECRET),
        "the value was logged:\n{outputs}"
    );
    let config = inspect[0]["Manifest"]["config"]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let text = inspect.to_string();
    let runs: Vec<&str> = inspect[0]["Config"]["history"]
        .as_array()
        .unwrap_or_else(|| panic!("no history in {text}"))
        .iter()
        .filter_map(|h| h["created_by"].as_str())
        .filter(|c| c.starts_with("RUN "))
        .collect();
    assert_eq!(runs.len(), 2, "{text}");
    for r in &runs {
        assert!(
            r.starts_with("RUN |2 PASSWORD=<redacted> API_TOKEN=<redacted> "),
            "{r}"
        );
    }
    // The RUN saw the value: its layer holds the length.
    let len = format!("len={}", SECRET.len());
    assert!(
        !blobs_containing(&root.path().join("blobs"), len.as_bytes()).is_empty(),
        "the RUN did not see the build arg"
    );
    let hits: Vec<String> = blobs_containing(&root.path().join("blobs"), SECRET.as_bytes())
        .into_iter()
        .filter(|h| !h.contains(config.trim_start_matches("sha256:")))
        .collect();
    assert!(hits.is_empty(), "the value reached stored blobs: {hits:?}");
    let meta: Vec<String> = ["meta", "cache", "cache-mounts", "snapshots"]
        .iter()
        .flat_map(|d| files_containing(&root.path().join(d), SECRET.as_bytes()))
        .collect();
    assert!(
        meta.is_empty(),
        "the value reached the store's metadata: {meta:?}"
    );
}

/// The `ARG PASSWORD=…` history entry shows the key only, as RUN's `|N K=V` prefix does.
#[test]
fn secret_named_build_args_never_reach_the_config() {
    if !can_run() {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let (_, inspect) = build_with_secret_arg(root.path());
    let text = inspect.to_string();
    assert!(!text.contains(SECRET), "{text}");
    let hits = blobs_containing(&root.path().join("blobs"), SECRET.as_bytes());
    assert!(hits.is_empty(), "the value reached stored blobs: {hits:?}");
}

#[test]
fn workdir_and_mount_targets_through_symlinks_into_proc_are_refused() {
    if !can_run() {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let cases = [
        ("WORKDIR /proc/self/fd/7\nRUN pwd\n", "is inside /proc"),
        (
            "RUN ln -s /proc/self/fd /fdlink\nWORKDIR /fdlink/3\nRUN pwd\n",
            "resolves into /proc",
        ),
        (
            "RUN mkdir /w && ln -s ../proc/self /w/up\nWORKDIR /w/up/cwd\nRUN pwd\n",
            "resolves into /proc",
        ),
        (
            "RUN ln -s /proc/self /plink\nRUN --mount=type=tmpfs,target=/plink/fd/9 true\n",
            "resolves into /proc",
        ),
    ];
    for (steps, want) in cases {
        let c = ctx(&[("Dockerfile", &format!("FROM {BASE}\n{steps}"))]);
        let o = hoist(
            root.path(),
            &["build", "--progress", "plain", &c.path().to_string_lossy()],
        );
        let t = text(&o);
        assert!(!o.status.success(), "{steps}: must fail\n{t}");
        let err: String = t.lines().filter(|l| l.starts_with("error:")).collect();
        assert!(err.contains(want), "{steps}: want {want:?}:\n{t}");
    }
    assert_fsck_clean(root.path(), "after the /proc cases");
    assert!(mounts_under(root.path()).is_empty());
}

#[test]
fn cache_ids_are_opaque_keys_never_paths() {
    if !can_run() {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let host = tempfile::tempdir().unwrap();
    let target = host.path().join("escape");
    let t = target.to_string_lossy().into_owned();
    let ids = [
        format!("../../../../../../..{t}"),
        t.clone(),
        "../cache-mounts/../blobs".to_string(),
        "/".to_string(),
    ];
    for (i, id) in ids.iter().enumerate() {
        let c = ctx(&[(
            "Dockerfile",
            &format!(
                "FROM {BASE}\nRUN --mount=type=cache,id={id},target=/c \
                 touch /c/marker-{i} && ls /c\n"
            ),
        )]);
        let o = hoist(
            root.path(),
            &["build", "--progress", "plain", &c.path().to_string_lossy()],
        );
        ok(&o, &format!("cache id {id}"));
        assert!(!target.exists(), "id {id} became a host path");
        let marker = format!("marker-{i}");
        let found: Vec<String> = walkdir::WalkDir::new(root.path())
            .into_iter()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy() == marker)
            .map(|e| e.path().display().to_string())
            .collect();
        assert_eq!(found.len(), 1, "id {id}: {found:?}");
        let under = root.path().join("cache-mounts");
        assert!(
            found[0].starts_with(&*under.to_string_lossy()),
            "id {id}: the cache lives outside cache-mounts: {found:?}"
        );
    }
    assert!(std::fs::read_dir(host.path()).unwrap().next().is_none());
    assert_fsck_clean(root.path(), "after the cache ids");
}
