//! Named build contexts (`--build-context NAME=VALUE`) and remote contexts (`hoist build
//! URL`), end to end with the real binary: local directories (with their own
//! `.dockerignore`, in cache keys as their content), `docker-image://` replacing a base
//! everywhere it is named, a stage replaced by a context, `target:`, `oci-layout://`, and git
//! (a `git daemon` on loopback) and http(s) (a small server on loopback) contexts, with the
//! hostile cases: a symlink out of the checkout, a tarball with `../` entries, tarballs over
//! the size limit, credentials in URLs.

mod common;

use common::http::{http_server, http_server_logged};
use common::lab::{LAB_BASE as BASE, Need, ready};
use common::{Hoist, text};
use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn write_files(dir: &Path, files: &[(&str, &str)]) {
    for (name, body) in files {
        let p = dir.join(name);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, body).unwrap();
    }
}

fn dir_with(files: &[(&str, &str)]) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    write_files(d.path(), files);
    d
}

fn build(root: &Path, args: &[&str]) -> Output {
    Hoist::new(root)
        .arg("build")
        .args(["--progress", "plain"])
        .args(args)
        .output()
}

fn ok(o: &Output) -> String {
    let t = text(o);
    assert!(o.status.success(), "{t}");
    t
}

fn read(p: impl AsRef<Path>) -> String {
    fs::read_to_string(p.as_ref()).unwrap_or_else(|e| panic!("{}: {e}", p.as_ref().display()))
}

/// The step lines of a plain-progress build that were cache hits, by step name.
fn cached(out: &str) -> Vec<String> {
    let mut names: HashMap<String, String> = HashMap::new();
    let mut hits = Vec::new();
    for l in out.lines() {
        let Some((id, rest)) = l.split_once(' ') else {
            continue;
        };
        if rest.starts_with('[') {
            names.insert(id.to_string(), rest.to_string());
        } else if rest == "CACHED" {
            hits.push(names.get(id).cloned().unwrap_or_default());
        }
    }
    hits
}

#[test]
fn named_directory_serves_copy_mount_and_from_and_keys_on_its_content() {
    if !ready(&[Need::Root, Need::LabRegistry]) {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let named = dir_with(&[
        ("a.txt", "from named\n"),
        ("skip.txt", "ignored\n"),
        (".dockerignore", "skip.txt\n"),
    ]);
    let main = dir_with(&[(
        "Dockerfile",
        &format!(
            "FROM {BASE}\nCOPY --from=src a.txt /copied.txt\nRUN --mount=from=src,target=/m cat /m/a.txt > /mounted.txt && ls -an /m > /listed.txt\nFROM src AS tree\nFROM scratch\nCOPY --from=tree / /tree/\nCOPY --from=0 /copied.txt /mounted.txt /listed.txt /\n"
        ),
    )]);
    let out = tempfile::tempdir().unwrap();
    let ctx_flag = format!("src={}", named.path().display());
    let dest = out.path().join("o");
    let args = [
        "--build-context",
        &ctx_flag,
        "-o",
        dest.to_str().unwrap(),
        main.path().to_str().unwrap(),
    ];
    ok(&build(root.path(), &args));
    assert_eq!(read(dest.join("copied.txt")), "from named\n");
    assert_eq!(read(dest.join("mounted.txt")), "from named\n");
    assert_eq!(read(dest.join("tree/a.txt")), "from named\n");
    // Its own .dockerignore applies to it, in COPY and in mounts, whose files are root's.
    assert!(!dest.join("tree/skip.txt").exists());
    let listed = read(dest.join("listed.txt"));
    assert!(
        listed.contains("a.txt") && !listed.contains("skip.txt"),
        "{listed}"
    );
    assert!(
        listed
            .lines()
            .filter(|l| l.ends_with("a.txt"))
            .all(|l| l.split_whitespace().nth(2) == Some("0")),
        "{listed}"
    );

    // Same content: every layer step hits. An ignored file changing changes nothing.
    fs::write(named.path().join("skip.txt"), "changed but ignored\n").unwrap();
    let again = ok(&build(root.path(), &args));
    let hits = cached(&again);
    assert_eq!(hits.len(), 5, "{again}");

    // A changed file misses every step that reads the context, as the main context would.
    fs::write(named.path().join("a.txt"), "changed\n").unwrap();
    let changed = ok(&build(root.path(), &args));
    assert!(cached(&changed).is_empty(), "{changed}");
    assert_eq!(read(dest.join("mounted.txt")), "changed\n");
}

#[test]
fn docker_image_context_replaces_the_base_everywhere_it_is_named() {
    if !ready(&[Need::Root, Need::LabRegistry]) {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    // `alpine:3.20` is never pulled: the context names the lab's busybox instead.
    let main = dir_with(&[(
        "Dockerfile",
        "FROM alpine:3.20\nRUN echo ran > /ran\nFROM docker.io/library/alpine:3.20 AS again\nFROM scratch\nCOPY --from=alpine:3.20 /bin/busybox /bb\nCOPY --from=0 /ran /\nCOPY --from=again /bin/busybox /bb2\n",
    )]);
    let dest = main.path().join("out");
    let flag = format!("alpine:3.20=docker-image://{BASE}");
    let o = build(
        root.path(),
        &[
            "--build-context",
            &flag,
            "-o",
            dest.to_str().unwrap(),
            main.path().to_str().unwrap(),
        ],
    );
    let t = ok(&o);
    assert!(!t.contains("docker.io/library/alpine"), "{t}");
    assert_eq!(read(dest.join("ran")), "ran\n");
    assert!(dest.join("bb").is_file() && dest.join("bb2").is_file());
}

#[test]
fn a_context_named_like_a_stage_replaces_it_and_target_names_a_stage() {
    if !ready(&[Need::Root, Need::LabRegistry]) {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let named = dir_with(&[("built/app", "prebuilt\n")]);
    // The `builder` stage would fail; the context stands in for it, so it never runs.
    let main = dir_with(&[(
        "Dockerfile",
        &format!(
            "FROM {BASE} AS builder\nRUN false\nFROM {BASE} AS other\nRUN echo other > /o\nFROM scratch\nCOPY --from=builder /built/app /app\nCOPY --from=alias /o /o\n"
        ),
    )]);
    let dest = main.path().join("out");
    let n = format!("builder={}", named.path().display());
    ok(&build(
        root.path(),
        &[
            "--build-context",
            &n,
            "--build-context",
            "alias=target:other",
            "-o",
            dest.to_str().unwrap(),
            main.path().to_str().unwrap(),
        ],
    ));
    assert_eq!(read(dest.join("app")), "prebuilt\n");
    assert_eq!(read(dest.join("o")), "other\n");
}

#[test]
fn oci_layout_context_is_a_base_image() {
    if !ready(&[Need::Root, Need::LabRegistry]) {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let first = dir_with(&[(
        "Dockerfile",
        &format!("FROM {BASE}\nRUN echo layout > /from-layout\n"),
    )]);
    let tar = first.path().join("img.tar");
    ok(&build(
        root.path(),
        &[
            "-o",
            &format!("type=oci,dest={}", tar.display()),
            first.path().to_str().unwrap(),
        ],
    ));
    let layout = first.path().join("layout");
    fs::create_dir(&layout).unwrap();
    let st = Command::new("tar")
        .arg("-xf")
        .arg(&tar)
        .arg("-C")
        .arg(&layout)
        .status()
        .unwrap();
    assert!(st.success());
    // A second store, so nothing comes from the first build's images.
    let root2 = tempfile::tempdir().unwrap();
    let main = dir_with(&[("Dockerfile", "FROM base\nRUN cat /from-layout > /seen\n")]);
    let dest = main.path().join("out");
    let flag = format!("base=oci-layout://{}", layout.display());
    ok(&build(
        root2.path(),
        &[
            "--build-context",
            &flag,
            "-o",
            dest.to_str().unwrap(),
            main.path().to_str().unwrap(),
        ],
    ));
    assert_eq!(read(dest.join("seen")), "layout\n");
    // A tag the layout does not have is an error naming it.
    let bad = format!("base=oci-layout://{}:nope", layout.display());
    let o = build(
        root2.path(),
        &["--build-context", &bad, main.path().to_str().unwrap()],
    );
    assert!(!o.status.success());
    assert!(
        text(&o).contains("no image tagged \"nope\""),
        "{}",
        text(&o)
    );
}

// ---- git ------------------------------------------------------------------------------

use common::git::serve_repo as git_server;

#[test]
fn git_context_ref_subdir_and_keep_git_dir() {
    if !ready(&[Need::Root, Need::LabRegistry]) {
        return;
    }
    let srv = git_server(|w| {
        write_files(
            w,
            &[
                ("app/Dockerfile", "FROM scratch\nCOPY . /ctx/\n"),
                ("app/hello.txt", "from git\n"),
                ("top.txt", "outside the subdir\n"),
            ],
        );
    });
    let root = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let dest = out.path().join("a");
    ok(&build(
        root.path(),
        &["-o", dest.to_str().unwrap(), &format!("{}#v1:app", srv.url)],
    ));
    assert_eq!(read(dest.join("ctx/hello.txt")), "from git\n");
    assert!(!dest.join("ctx/top.txt").exists());
    assert!(!dest.join("ctx/.git").exists());

    // The whole repository at a branch, `.git` kept on request, `-f` inside the checkout.
    let dest = out.path().join("b");
    ok(&build(
        root.path(),
        &[
            "--build-arg",
            "BUILDKIT_CONTEXT_KEEP_GIT_DIR=1",
            "-f",
            "app/Dockerfile",
            "-o",
            dest.to_str().unwrap(),
            &format!("{}#main", srv.url),
        ],
    ));
    assert_eq!(read(dest.join("ctx/top.txt")), "outside the subdir\n");
    assert!(dest.join("ctx/.git").is_dir());

    // As a named context.
    let main = dir_with(&[("Dockerfile", "FROM scratch\nCOPY --from=src hello.txt /h\n")]);
    let dest = out.path().join("c");
    let flag = format!("src={}#main:app", srv.url);
    ok(&build(
        root.path(),
        &[
            "--build-context",
            &flag,
            "-o",
            dest.to_str().unwrap(),
            main.path().to_str().unwrap(),
        ],
    ));
    assert_eq!(read(dest.join("h")), "from git\n");

    // REF may be a commit id.
    let ls = Command::new("git")
        .args(["ls-remote", &srv.url, "refs/heads/main"])
        .output()
        .unwrap();
    let commit = String::from_utf8_lossy(&ls.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    let dest = out.path().join("d");
    ok(&build(
        root.path(),
        &[
            "-o",
            dest.to_str().unwrap(),
            &format!("{}#{commit}:app", srv.url),
        ],
    ));
    assert_eq!(read(dest.join("ctx/hello.txt")), "from git\n");

    // BuildKit's query form, and a checksum the commit must match.
    let dest = out.path().join("e");
    ok(&build(
        root.path(),
        &[
            "-o",
            dest.to_str().unwrap(),
            &format!("{}?tag=v1&subdir=app&checksum={}", srv.url, &commit[..12]),
        ],
    ));
    assert_eq!(read(dest.join("ctx/hello.txt")), "from git\n");
    let o = build(
        root.path(),
        &[&format!(
            "{}?branch=main&subdir=app&checksum=0000000",
            srv.url
        )],
    );
    assert!(!o.status.success());
    assert!(
        text(&o).contains("expected checksum to match 0000000"),
        "{}",
        text(&o)
    );
}

#[test]
fn git_checkout_symlinks_never_reach_the_host() {
    if !ready(&[Need::Root, Need::LabRegistry]) {
        return;
    }
    let srv = git_server(|w| {
        write_files(
            w,
            &[
                ("Dockerfile", "FROM scratch\nCOPY esc/hostname /leak\n"),
                (
                    "up/Dockerfile",
                    "FROM scratch\nCOPY up/etc/hostname /leak\n",
                ),
            ],
        );
        std::os::unix::fs::symlink("/etc", w.join("esc")).unwrap();
        std::os::unix::fs::symlink("../../../../../../..", w.join("up/up")).unwrap();
        fs::create_dir_all(w.join("linked")).unwrap();
        std::os::unix::fs::symlink("/etc/hostname", w.join("linked/Dockerfile")).unwrap();
        std::os::unix::fs::symlink("/etc", w.join("outdir")).unwrap();
    });
    let root = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    for (src, what) in [
        (format!("{}#main", srv.url), "absolute symlink"),
        (format!("{}#main:up", srv.url), "../ symlink"),
    ] {
        let dest = out.path().join("o");
        let o = build(root.path(), &["-o", dest.to_str().unwrap(), &src]);
        assert!(!o.status.success(), "{what}: {}", text(&o));
        assert!(!dest.join("leak").exists(), "{what}");
    }
    // A Dockerfile that is a symlink to a host file is looked up inside the checkout.
    let o = build(root.path(), &[&format!("{}#main:linked", srv.url)]);
    assert!(!o.status.success());
    let host = fs::read_to_string("/etc/hostname").unwrap_or_default();
    assert!(
        host.trim().is_empty() || !text(&o).contains(host.trim()),
        "{}",
        text(&o)
    );
    // A subdir that is a symlink out of the checkout is refused or clamped, never the host's.
    let o = build(root.path(), &[&format!("{}#main:outdir", srv.url)]);
    assert!(!o.status.success(), "{}", text(&o));
}

// ---- http -----------------------------------------------------------------------------

/// A tar of `(name, body)` entries, names written raw (so `../x` stays in the archive).
fn tar_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, body) in entries {
        let mut h = [0u8; 512];
        h[..name.len()].copy_from_slice(name.as_bytes());
        h[100..107].copy_from_slice(b"0000644");
        h[108..115].copy_from_slice(b"0000000");
        h[116..123].copy_from_slice(b"0000000");
        let size = format!("{:011o}", body.len());
        h[124..135].copy_from_slice(size.as_bytes());
        h[136..147].copy_from_slice(b"00000000000");
        h[156] = b'0';
        h[257..263].copy_from_slice(b"ustar\0");
        h[263..265].copy_from_slice(b"00");
        h[148..156].copy_from_slice(b"        ");
        let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
        h[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
        out.extend_from_slice(&h);
        out.extend_from_slice(body);
        out.resize(out.len().div_ceil(512) * 512, 0);
    }
    out.resize(out.len() + 1024, 0);
    out
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

#[test]
fn http_tarball_and_plain_dockerfile_contexts() {
    if !ready(&[Need::Root, Need::LabRegistry]) {
        return;
    }
    let ctx = tar_of(&[
        ("Dockerfile", b"FROM scratch\nCOPY . /ctx/\n"),
        ("sub/file.txt", b"from the tarball\n"),
    ]);
    let mut files = HashMap::new();
    files.insert("/ctx.tar.gz".to_string(), gzip(&ctx));
    files.insert("/ctx.tar".to_string(), ctx.clone());
    files.insert(
        "/Dockerfile".to_string(),
        b"FROM scratch\nLABEL from=url\n".to_vec(),
    );
    let base = http_server(files);
    let root = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    for name in ["ctx.tar.gz", "ctx.tar"] {
        let dest = out.path().join(name);
        ok(&build(
            root.path(),
            &["-o", dest.to_str().unwrap(), &format!("{base}/{name}")],
        ));
        assert_eq!(read(dest.join("ctx/sub/file.txt")), "from the tarball\n");
    }
    // Plain text is the Dockerfile alone.
    let o = Hoist::new(root.path())
        .args(["build", "-q", "-t", "fromurl"])
        .arg(format!("{base}/Dockerfile"))
        .output();
    ok(&o);
    let o = Hoist::new(root.path())
        .args(["inspect", "fromurl"])
        .output();
    assert!(ok(&o).contains("\"from\": \"url\""), "{}", text(&o));
    // As a named context, as BuildKit: the download is one file named `context`, mode 0600.
    let main = dir_with(&[("Dockerfile", "FROM scratch\nCOPY --from=t context /f\n")]);
    let dest = out.path().join("named");
    let flag = format!("t={base}/ctx.tar.gz");
    ok(&build(
        root.path(),
        &[
            "--build-context",
            &flag,
            "-o",
            dest.to_str().unwrap(),
            main.path().to_str().unwrap(),
        ],
    ));
    assert_eq!(fs::read(dest.join("f")).unwrap(), gzip(&ctx));
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        fs::metadata(dest.join("f")).unwrap().permissions().mode() & 0o7777,
        0o600
    );
    // A missing URL says which and how.
    let o = build(root.path(), &[&format!("{base}/nope.tar")]);
    assert!(!o.status.success());
    assert!(text(&o).contains("404"), "{}", text(&o));
}

#[test]
fn hostile_tarballs_stay_in_root_and_under_the_size_limit() {
    if !ready(&[Need::Root, Need::LabRegistry]) {
        return;
    }
    let evil = tar_of(&[
        ("Dockerfile", b"FROM scratch\nCOPY . /ctx/\n"),
        ("../../../../escape.txt", b"clamped\n"),
    ]);
    let zeros = vec![0u8; 4 << 20];
    let bomb = gzip(&tar_of(&[
        ("Dockerfile", b"FROM scratch\n"),
        ("big", &zeros),
    ]));
    assert!(bomb.len() < 64 << 10);
    let mut files = HashMap::new();
    files.insert("/evil.tar".to_string(), evil);
    files.insert("/bomb.tar.gz".to_string(), bomb);
    files.insert("/big.tar".to_string(), vec![0u8; 2 << 20]);
    let base = http_server(files);
    let root = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let dest = out.path().join("evil");
    ok(&build(
        root.path(),
        &["-o", dest.to_str().unwrap(), &format!("{base}/evil.tar")],
    ));
    assert_eq!(read(dest.join("ctx/escape.txt")), "clamped\n");
    let stray: Vec<PathBuf> = walk(root.path())
        .into_iter()
        // The image's own copy (a snapshot's `ctx/escape.txt`) is where it belongs.
        .filter(|p| p.ends_with("escape.txt") && !p.parent().is_some_and(|d| d.ends_with("ctx")))
        .collect();
    assert!(stray.is_empty(), "{stray:?}");

    // 1 MiB limit: a 4 MiB tar in a small gzip is refused while unpacking; a 2 MiB
    // download is refused while downloading. Each names the limit and the variable.
    for name in ["bomb.tar.gz", "big.tar"] {
        let o = Hoist::new(root.path())
            .env("HOIST_REMOTE_CONTEXT_MAX", (1u64 << 20).to_string())
            .args(["build", &format!("{base}/{name}")])
            .output();
        assert!(!o.status.success(), "{name}");
        let t = text(&o);
        assert!(
            t.contains("larger than 1048576 bytes") && t.contains("HOIST_REMOTE_CONTEXT_MAX"),
            "{name}: {t}"
        );
    }
}

#[test]
fn credentials_in_context_urls_never_reach_the_output() {
    if !ready(&[Need::Root, Need::LabRegistry]) {
        return;
    }
    let (base, heads) = http_server_logged(HashMap::new());
    let with_creds = base.replace("http://", "http://user:s3cr3tpw@");
    let root = tempfile::tempdir().unwrap();
    for url in [
        format!("{with_creds}/repo.git#main"),
        format!("{with_creds}/ctx.tar"),
    ] {
        let o = build(root.path(), &[&url]);
        assert!(!o.status.success(), "{url}");
        assert!(!text(&o).contains("s3cr3tpw"), "{}", text(&o));
    }
    // A token given as a secret is not echoed either.
    let o = Hoist::new(root.path())
        .env("TOK", "t0k3nvalue")
        .args([
            "build",
            "--progress",
            "plain",
            "--secret",
            "id=GIT_AUTH_TOKEN,env=TOK",
        ])
        .arg(format!("{base}/repo.git"))
        .output();
    assert!(!o.status.success());
    assert!(!text(&o).contains("t0k3nvalue"), "{}", text(&o));
    // ... but git sent it to the remote, as BuildKit does: basic x-access-token:TOKEN.
    let sent = heads.lock().unwrap().join("\n").to_ascii_lowercase();
    assert!(
        sent.contains("authorization: basic ec1hy2nlc3mtdg9rzw46ddbrm252ywx1zq=="),
        "{sent}"
    );
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = fs::read_dir(&d) else { continue };
        for e in rd.flatten() {
            let p = e.path();
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(p.clone());
            }
            out.push(p);
        }
    }
    out
}

#[test]
fn a_context_given_for_one_platform_serves_that_platform() {
    if !ready(&[Need::Root, Need::LabRegistry]) {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let arm = dir_with(&[("f", "arm64\n")]);
    let any = dir_with(&[("f", "any\n")]);
    let main = dir_with(&[("Dockerfile", "FROM scratch\nCOPY --from=src f /f\n")]);
    let dest = main.path().join("out");
    let a = format!("src::linux/arm64={}", arm.path().display());
    let b = format!("src={}", any.path().display());
    ok(&build(
        root.path(),
        &[
            "--platform",
            "linux/amd64,linux/arm64",
            "--build-context",
            &a,
            "--build-context",
            &b,
            "-o",
            dest.to_str().unwrap(),
            main.path().to_str().unwrap(),
        ],
    ));
    assert_eq!(read(dest.join("linux_arm64/f")), "arm64\n");
    assert_eq!(read(dest.join("linux_amd64/f")), "any\n");
}
