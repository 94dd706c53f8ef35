//! Issue 13, "flags CI scripts pass": docker's `build` and `run` flags with docker's meaning,
//! through the real binary as root against the lab registry.
//! - build: `--add-host`, `--ulimit`, `--shm-size` reach every RUN (and its cache key);
//!   `--allow security.insecure` + `RUN --security=insecure` (refused without it), `RUN
//!   --network=host` needs `network.host`; `--annotation` lands in the manifest and index;
//!   `--call outline|targets` prints BuildKit's answers (text and `format=json`);
//! - run: `-v`, `--mount` (named volumes persist under the store), `--env-file`, `--rm`,
//!   `--name`, `-i`, `-t` with a real pty (`tty` prints a `/dev/pts` path);
//! - a docker flag hoist lacks fails naming it.

#![allow(clippy::print_stderr)]

mod common;

use common::lab::{LAB_BASE as BASE, Need, ready};
use common::{Hoist, hoist, text};
use std::io::Read;
use std::path::Path;
use std::process::Command;

fn can_run() -> bool {
    ready(&[Need::Root, Need::LabRegistry, Need::OciRuntime])
}

fn context(dockerfile: &str) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join("Dockerfile"), dockerfile).unwrap();
    d
}

/// `hoist build --progress plain FLAGS… CONTEXT`: (success, output).
fn build(root: &Path, dockerfile: &str, flags: &[&str]) -> (bool, String) {
    let c = context(dockerfile);
    let mut args = vec!["build", "--progress", "plain"];
    args.extend_from_slice(flags);
    let ctx = c.path().to_string_lossy().into_owned();
    args.push(&ctx);
    let o = hoist(root, &args);
    (o.status.success(), text(&o))
}

#[test]
fn sandbox_flags_reach_run_and_its_key() {
    if !can_run() {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let df = format!(
        "FROM {BASE}\nRUN tail -n 2 /etc/hosts; echo n=$(ulimit -n) hn=$(ulimit -Hn); \
         df -k /dev/shm | tail -1\n"
    );
    let flags = [
        "--add-host",
        "db.local:10.1.2.3",
        "--add-host",
        "V6:::1",
        "--ulimit",
        "nofile=1024:2048",
        "--shm-size",
        "128m",
        // Accepted as docker build with BuildKit accepts them.
        "--rm",
        "--force-rm",
    ];
    let (ok, t) = build(root.path(), &df, &flags);
    assert!(ok, "{t}");
    // BuildKit's lines (buildctl with add-hosts, ulimit, shm-size gives the same).
    assert!(t.contains("10.1.2.3\tdb.local"), "{t}");
    assert!(t.contains("::1\tv6"), "host names are lowercased: {t}");
    assert!(t.contains("n=1024 hn=2048"), "{t}");
    assert!(t.contains(" 131072 "), "/dev/shm is 128 MiB: {t}");
    // Another --add-host is another RUN: not a cache hit.
    let (ok, t) = build(root.path(), &df, &["--add-host", "db.local:10.9.9.9"]);
    assert!(ok, "{t}");
    assert!(t.contains("10.9.9.9\tdb.local"), "{t}");
    let (ok, t) = build(root.path(), &df, &["--ulimit", "nofile=x"]);
    assert!(!ok && t.contains("--ulimit \"nofile=x\""), "{t}");
}

#[test]
fn insecure_and_host_network_need_entitlements() {
    if !can_run() {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let df = format!(
        "FROM {BASE}\nRUN echo RAN_BEFORE\nRUN --security=insecure grep -E '^(CapEff|Seccomp):' \
         /proc/self/status && mkdir -p /m && mount -t tmpfs none /m && echo MOUNTED && \
         test -c /dev/loop-control && test -b /dev/loop0 && echo DEVICES\n"
    );
    let (ok, t) = build(root.path(), &df, &[]);
    assert!(!ok, "{t}");
    // Refused before anything runs, as BuildKit refuses the whole LLB.
    assert!(
        !t.lines()
            .any(|l| l.starts_with('#') && l.ends_with(" RAN_BEFORE")),
        "{t}"
    );
    assert!(
        t.contains("Dockerfile:3: RUN --security=insecure is not allowed")
            && t.contains("--allow security.insecure"),
        "{t}"
    );
    let (ok, t) = build(root.path(), &df, &["--allow", "security.insecure"]);
    assert!(ok, "{t}");
    assert!(t.contains("Seccomp:\t0") && t.contains("MOUNTED"), "{t}");
    assert!(
        t.contains("DEVICES"),
        "BuildKit's insecure-mode devices: {t}"
    );
    // A plain RUN keeps the default sandbox.
    let (ok, t) = build(
        root.path(),
        &format!("FROM {BASE}\nRUN grep Seccomp: /proc/self/status\n"),
        &["--allow", "security.insecure"],
    );
    assert!(ok && t.contains("Seccomp:\t2"), "{t}");

    let df = format!("FROM {BASE}\nRUN --network=host echo NET_OK\n");
    let (ok, t) = build(root.path(), &df, &[]);
    assert!(
        !ok && t.contains("needs the network.host entitlement"),
        "{t}"
    );
    let (ok, t) = build(root.path(), &df, &["--allow", "network.host"]);
    assert!(ok && t.contains("NET_OK"), "{t}");
    let (ok, t) = build(root.path(), &df, &["--network", "host", "--no-cache"]);
    assert!(ok && t.contains("NET_OK"), "{t}");
}

/// The BuildKit answers for this Dockerfile come from buildctl against a real buildkitd
/// (`--opt requestid=frontend.outline|frontend.targets`, result.txt).
const CALL_DF: &str = "ARG GLOBAL=g1\n\n# base stage: the shared base\nFROM busybox AS base\n\
# VERSION is the version to build\nARG VERSION=1.0\nARG OTHER\n\
RUN --mount=type=secret,id=tok --mount=type=ssh,required=true echo $VERSION\n\n\
FROM base AS final\nARG FINAL=x\nRUN echo $FINAL\n";

#[test]
fn call_outline_and_targets() {
    // Pure: no lab needed.
    let root = tempfile::tempdir().unwrap();
    let (ok, t) = build(root.path(), CALL_DF, &["--call", "outline"]);
    assert!(ok, "{t}");
    assert_eq!(
        t,
        "TARGET: final\n\nBUILD ARG   VALUE   DESCRIPTION\nVERSION     1.0     is the version to build\n\
         OTHER               \nFINAL       x       \n\nSECRET   REQUIRED\ntok      \n\n\
         SSH       REQUIRED\ndefault   true\n\n"
    );
    let (ok, t) = build(root.path(), CALL_DF, &["--call", "targets"]);
    assert!(ok, "{t}");
    assert_eq!(
        t,
        "TARGET          DESCRIPTION\nbase            stage: the shared base\nfinal (default) \n"
    );
    let (ok, t) = build(
        root.path(),
        CALL_DF,
        &[
            "--call",
            "outline,format=json",
            "--target",
            "base",
            "--build-arg",
            "OTHER=o",
        ],
    );
    assert!(ok, "{t}");
    let j: serde_json::Value = serde_json::from_str(&t).unwrap();
    assert_eq!(j["name"], "base");
    assert_eq!(j["description"], "stage: the shared base");
    assert_eq!(
        j["args"][1],
        serde_json::json!({"name": "OTHER", "value": "o",
        "location": {"ranges": [{"start": {"line": 7}, "end": {"line": 7}}]}})
    );
    assert_eq!(j["ssh"][0]["required"], true);
    let (ok, t) = build(root.path(), CALL_DF, &["--call", "targets,format=json"]);
    assert!(ok, "{t}");
    let j: serde_json::Value = serde_json::from_str(&t).unwrap();
    assert_eq!(j["targets"][1]["name"], "final");
    assert_eq!(j["targets"][1]["default"], true);
    let (ok, t) = build(root.path(), CALL_DF, &["--call", "lint"]);
    assert!(!ok && t.contains("--call \"lint\""), "{t}");
}

/// The OCI layout tar's `index.json` entry, and the blobs it holds by digest.
fn read_layout(
    path: &Path,
) -> (
    serde_json::Value,
    std::collections::HashMap<String, Vec<u8>>,
) {
    let mut blobs = std::collections::HashMap::new();
    let mut index = serde_json::Value::Null;
    let mut a = tar::Archive::new(std::fs::File::open(path).unwrap());
    for e in a.entries().unwrap() {
        let mut e = e.unwrap();
        let name = e.path().unwrap().to_string_lossy().into_owned();
        let mut data = Vec::new();
        e.read_to_end(&mut data).unwrap();
        if name == "index.json" {
            index = serde_json::from_slice(&data).unwrap();
        } else if let Some(hex) = name.strip_prefix("blobs/sha256/") {
            blobs.insert(format!("sha256:{hex}"), data);
        }
    }
    (index, blobs)
}

fn blob(
    blobs: &std::collections::HashMap<String, Vec<u8>>,
    d: &serde_json::Value,
) -> serde_json::Value {
    serde_json::from_slice(&blobs[d.as_str().unwrap()]).unwrap()
}

#[test]
fn annotations_on_manifest_and_index() {
    if !ready(&[Need::Root, Need::LabRegistry]) {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let tar = out.path().join("one.tar");
    let (ok, t) = build(
        root.path(),
        &format!("FROM {BASE}\nLABEL a=b\n"),
        &[
            "--annotation",
            "org.opencontainers.image.title=one",
            "--annotation",
            "manifest:k=v=w",
            "--annotation",
            "manifest-descriptor:in.layout=yes",
            "-t",
            "localhost:5000/flags/one:1",
            "--output",
            &format!("type=oci,dest={}", tar.display()),
        ],
    );
    assert!(ok, "{t}");
    let (index, blobs) = read_layout(&tar);
    let m = blob(&blobs, &index["manifests"][0]["digest"]);
    assert_eq!(m["annotations"]["org.opencontainers.image.title"], "one");
    assert_eq!(m["annotations"]["k"], "v=w");
    assert!(m["annotations"].get("in.layout").is_none(), "{m}");
    // A single image's descriptor is the layout's index.json entry, beside its name.
    let entry = &index["manifests"][0]["annotations"];
    assert_eq!(entry["in.layout"], "yes", "{index}");
    assert_eq!(
        entry["io.containerd.image.name"],
        "localhost:5000/flags/one:1"
    );
    // As BuildKit: no index on a single-platform build to annotate.
    let (ok, t) = build(
        root.path(),
        &format!("FROM {BASE}\n"),
        &["--annotation", "index:x=y"],
    );
    assert!(
        !ok && t.contains("index annotations need a multi-platform build"),
        "{t}"
    );

    let multi = "localhost:5000/multi/busybox:latest";
    let tar = out.path().join("multi.tar");
    let (ok, t) = build(
        root.path(),
        &format!("FROM {multi}\nLABEL a=b\n"),
        &[
            "--platform",
            "linux/amd64,linux/arm64",
            "--annotation",
            "index,manifest:both=1",
            "--annotation",
            "manifest[linux/arm64]:arm=only",
            "--annotation",
            "manifest-descriptor:desc=d",
            "--annotation",
            "index-descriptor:top=t",
            "--output",
            &format!("type=oci,dest={}", tar.display()),
        ],
    );
    assert!(ok, "{t}");
    let (layout, blobs) = read_layout(&tar);
    let index = blob(&blobs, &layout["manifests"][0]["digest"]);
    assert_eq!(
        layout["manifests"][0]["annotations"],
        serde_json::json!({"top": "t"})
    );
    // The entry's fields in BuildKit's (the image-spec's) order.
    let raw = String::from_utf8_lossy(&blobs[layout["manifests"][0]["digest"].as_str().unwrap()])
        .into_owned();
    assert!(
        raw.contains(r#""annotations":{"desc":"d"},"platform""#),
        "{raw}"
    );
    assert_eq!(index["annotations"], serde_json::json!({"both": "1"}));
    for (i, arch) in ["amd64", "arm64"].iter().enumerate() {
        let d = &index["manifests"][i];
        assert_eq!(d["platform"]["architecture"], *arch);
        assert_eq!(d["annotations"], serde_json::json!({"desc": "d"}));
        let m = blob(&blobs, &d["digest"]);
        assert_eq!(m["annotations"]["both"], "1");
        assert_eq!(
            m["annotations"].get("arm").is_some(),
            *arch == "arm64",
            "{m}"
        );
    }
}

/// `hoist run FLAGS… BASE sh -c SCRIPT`: (exit code, output).
fn run(root: &Path, flags: &[&str], script: &str) -> (i32, String) {
    let mut args = vec!["run"];
    args.extend_from_slice(flags);
    args.extend_from_slice(&[BASE, "sh", "-c", script]);
    let o = hoist(root, &args);
    (o.status.code().unwrap_or(-1), text(&o))
}

#[test]
fn run_volumes_mounts_and_env_file() {
    if !can_run() {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let host = tempfile::tempdir().unwrap();
    std::fs::write(host.path().join("f"), "hostfile\n").unwrap();
    let env = host.path().join("env");
    std::fs::write(&env, "# comment\nA=1\nB=from file\n").unwrap();
    let bind = format!("{}:/h:ro", host.path().display());
    let envf = env.display().to_string();
    let (code, t) = run(
        root.path(),
        &[
            "--rm",
            "--name",
            "web",
            "-h",
            "myhost",
            "-m",
            "64m",
            "-v",
            &bind,
            "-v",
            "vol1:/v",
            "--mount",
            "type=tmpfs,target=/t,tmpfs-size=1m",
            "--env-file",
            &envf,
            "-e",
            "B=override",
        ],
        "hostname; cat /h/f; echo A=$A B=$B; echo kept > /v/d; df -k /t | tail -1; \
         touch /h/x 2>/dev/null || echo READONLY",
    );
    assert_eq!(code, 0, "{t}");
    assert!(
        t.starts_with("myhost\n"),
        "-h is docker run's --hostname: {t}"
    );
    assert!(
        t.contains("hostfile") && t.contains("A=1 B=override"),
        "{t}"
    );
    assert!(t.contains(" 1024 ") && t.contains("READONLY"), "{t}");
    // A named volume is a directory under the store, kept for the next run.
    assert_eq!(
        std::fs::read_to_string(root.path().join("volumes/vol1/d")).unwrap(),
        "kept\n"
    );
    let (code, t) = run(
        root.path(),
        &["--mount", "type=volume,source=vol1,target=/again"],
        "cat /again/d",
    );
    assert_eq!((code, t.trim()), (0, "kept"));
    // An empty volume starts with the image's files at its target, as docker's; a volume
    // with files is left as it is.
    let (code, t) = run(root.path(), &["-v", "etcvol:/etc"], "head -1 /etc/passwd");
    assert_eq!(code, 0, "{t}");
    assert!(t.starts_with("root:"), "{t}");
    assert!(root.path().join("volumes/etcvol/passwd").is_file());
    std::fs::write(root.path().join("volumes/vol1/extra"), "x").unwrap();
    let (code, t) = run(root.path(), &["-v", "vol1:/etc"], "ls /etc");
    assert_eq!(code, 0, "{t}");
    assert!(!t.contains("passwd") && t.contains("extra"), "{t}");
    // --entrypoint replaces the image's and drops its Cmd; the arguments follow the image.
    let o = hoist(
        root.path(),
        &[
            "run",
            "--rm",
            "--entrypoint",
            "/bin/echo",
            BASE,
            "via",
            "entrypoint",
        ],
    );
    assert_eq!(text(&o).trim(), "via entrypoint");
    // A bind source that does not exist is an error with --mount, as docker's.
    let (code, t) = run(
        root.path(),
        &["--mount", "type=bind,source=/no/such/dir,target=/x"],
        "true",
    );
    assert!(
        code != 0 && t.contains("bind source path does not exist"),
        "{t}"
    );
}

#[test]
fn run_with_a_pty_and_stdin() {
    if !can_run() || Command::new("python3").arg("-V").output().is_err() {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    // python's pty.spawn gives hoist a real terminal as stdin/stdout, as a shell would.
    let mut cmd = Command::new("python3");
    cmd.args([
        "-c",
        "import pty, sys; sys.exit(pty.spawn(sys.argv[1:]) >> 8)",
        common::run::BIN,
        "--root",
    ])
    .arg(root.path())
    .args([
        "run",
        "-it",
        BASE,
        "sh",
        "-c",
        "tty; test -t 1 && echo STDOUT_TTY",
    ]);
    for v in common::run::AMBIENT {
        cmd.env_remove(v);
    }
    let o = cmd.output().unwrap();
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert!(t.contains("/dev/pts/") && t.contains("STDOUT_TTY"), "{t}");
    // Without -t the command has no terminal.
    let (code, t) = run(root.path(), &[], "tty || true");
    assert_eq!(code, 0);
    assert!(t.contains("not a tty"), "{t}");
    // -i: the command reads hoist's stdin.
    let mut child = Hoist::new(root.path())
        .args(["run", "-i", BASE, "sh", "-c", "read l; echo got=$l"])
        .command();
    child
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped());
    let mut child = child.spawn().unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(b"hello\n").unwrap();
    let o = child.wait_with_output().unwrap();
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "got=hello");
}

#[test]
fn docker_flags_hoist_lacks_are_named() {
    let root = tempfile::tempdir().unwrap();
    let o = hoist(root.path(), &["build", "--load", "."]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o).contains("hoist build: --load is not supported yet"),
        "{}",
        text(&o)
    );
    let o = hoist(root.path(), &["run", "--privileged", BASE, "true"]);
    assert!(
        text(&o).contains("hoist run: --privileged is not supported yet"),
        "{}",
        text(&o)
    );
    let o = hoist(root.path(), &["run", "-p", "80:80", BASE]);
    assert!(
        text(&o).contains("hoist run: -p is not supported yet"),
        "{}",
        text(&o)
    );
    // As docker: -it needs a terminal on stdin (the runner's is /dev/null).
    let o = hoist(root.path(), &["run", "-it", BASE, "true"]);
    assert!(
        !o.status.success() && text(&o).contains("the input device is not a TTY"),
        "{}",
        text(&o)
    );
    // A flag docker does not have either keeps clap's message.
    let o = hoist(root.path(), &["build", "--frobnicate", "."]);
    assert!(!text(&o).contains("not supported yet"), "{}", text(&o));
}

/// The chroot isolation gives what it can (`--add-host`) and refuses the rest by name.
#[test]
fn chroot_isolation_refuses_what_it_cannot_give() {
    if !ready(&[Need::Root, Need::LabRegistry]) {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let c = context(&format!("FROM {BASE}\nRUN tail -n 1 /etc/hosts\n"));
    let ctx = c.path().to_string_lossy().into_owned();
    let chroot = |flags: &[&str]| {
        let o = Hoist::new(root.path())
            .env("HOIST_ISOLATION", "chroot")
            .args(["build", "--progress", "plain", "--no-cache"])
            .args(flags)
            .arg(&ctx)
            .output();
        (o.status.success(), text(&o))
    };
    let (ok, t) = chroot(&["--add-host", "db:10.1.2.3"]);
    assert!(ok && t.contains("10.1.2.3\tdb"), "{t}");
    for (flag, value) in [("--ulimit", "nofile=64"), ("--shm-size", "1m")] {
        let (ok, t) = chroot(&[flag, value]);
        assert!(!ok, "{t}");
        assert!(
            t.contains(&format!("{flag} is not supported by the chroot isolation")),
            "{t}"
        );
    }
}
