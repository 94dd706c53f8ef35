//! Multi-platform builds end to end (issue 14): `--platform linux/amd64,linux/arm64` builds
//! one image per platform from the lab's two-platform busybox index, runs the arm64 RUN
//! through qemu's binfmt_misc handler, computes a `FROM --platform=$BUILDPLATFORM` stage once
//! for both, pushes one OCI image index, and writes one directory per platform for
//! `--output type=local`. Needs root, the lab registry with `multi/busybox:latest` (amd64 +
//! arm64), an arm64 binfmt_misc entry and skopeo.

mod common;

use common::lab::{Need, lab_required, ready};
use common::{hoist, text};
use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;
use std::process::Command;

const MULTI_BASE: &str = "localhost:5000/multi/busybox:latest";

/// The lab's multi-platform base, skopeo and an arm64 emulator: present, or skip (fail where
/// the lab is required).
fn multi_lab() -> bool {
    if !ready(&[Need::Root, Need::LabRegistry, Need::OciRuntime]) {
        return false;
    }
    let base = Command::new("skopeo")
        .args(["inspect", "--raw", "--tls-verify=false"])
        .arg(format!("docker://{MULTI_BASE}"))
        .output()
        .is_ok_and(|o| o.status.success());
    let arm64 = hoist::platform::can_run(&hoist::platform::Platform::parse("linux/arm64").unwrap());
    if base && arm64 {
        return true;
    }
    let why = format!(
        "needs skopeo, {MULTI_BASE} (scripts/lab-setup.sh) and qemu-user-static's arm64 \
         binfmt_misc entry (base present: {base}, arm64 runnable: {arm64})"
    );
    assert!(!lab_required(), "{why}");
    // The same note `lab::ready` prints for a skipped test.
    #[allow(clippy::print_stderr)]
    {
        eprintln!("skipped: {why}");
    }
    false
}

const DOCKERFILE: &str = r#"FROM --platform=$BUILDPLATFORM localhost:5000/multi/busybox:latest AS tools
RUN echo ran-tools-$((6*7)) && echo "built on $(uname -m)" > /tool
FROM localhost:5000/multi/busybox:latest
ARG TARGETARCH
COPY --from=tools /tool /tool
RUN uname -m > /uname && echo "$TARGETARCH" > /targetarch
"#;

fn get(url: &str, accept: &str) -> Vec<u8> {
    let resp = reqwest::blocking::Client::new()
        .get(url)
        .header("Accept", accept)
        .send()
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    assert!(resp.status().is_success(), "GET {url}: {}", resp.status());
    resp.bytes().unwrap().to_vec()
}

/// The regular files of the image `manifest` of `repo` on the lab registry, by path, with
/// later layers overriding earlier ones.
fn image_files(repo: &str, manifest: &str) -> BTreeMap<String, String> {
    let base = format!("http://localhost:5000/v2/{repo}");
    let m: serde_json::Value = serde_json::from_slice(&get(
        &format!("{base}/manifests/{manifest}"),
        "application/vnd.oci.image.manifest.v1+json",
    ))
    .unwrap();
    let mut files = BTreeMap::new();
    for layer in m["layers"].as_array().unwrap() {
        let blob = get(
            &format!("{base}/blobs/{}", layer["digest"].as_str().unwrap()),
            "*/*",
        );
        let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(blob.as_slice()));
        for e in tar.entries().unwrap() {
            let mut e = e.unwrap();
            if e.header().entry_type() != tar::EntryType::Regular {
                continue;
            }
            let path = e.path().unwrap().to_string_lossy().into_owned();
            let mut s = String::new();
            if e.read_to_string(&mut s).is_ok() {
                files.insert(path, s);
            }
        }
    }
    files
}

#[test]
fn two_platforms_build_into_one_pushed_index() {
    if !multi_lab() {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let ctx = tempfile::tempdir().unwrap();
    std::fs::write(ctx.path().join("Dockerfile"), DOCKERFILE).unwrap();
    let out_dir = tempfile::tempdir().unwrap();
    let local = out_dir.path().join("local");
    let repo = format!("hoist-e2e/multi-{}", std::process::id());
    let tag = format!("localhost:5000/{repo}:latest");
    let o = hoist(
        root.path(),
        &[
            "build",
            "--progress",
            "plain",
            "--platform",
            "linux/amd64,linux/arm64",
            "-t",
            &tag,
            "--push",
            "--output",
            &format!("type=local,dest={}", local.display()),
            ctx.path().to_str().unwrap(),
        ],
    );
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    // The build-platform stage ran once for both platforms: its output printed once.
    let ran = out.lines().filter(|l| l.ends_with(" ran-tools-42")).count();
    assert_eq!(ran, 1, "the $BUILDPLATFORM stage must run once:\n{out}");
    assert!(out.contains("[linux/arm64 stage-1 3/3] RUN"), "{out}");

    // The registry holds one OCI index naming both platforms.
    let raw = Command::new("skopeo")
        .args(["inspect", "--raw", "--tls-verify=false"])
        .arg(format!("docker://{tag}"))
        .output()
        .unwrap();
    assert!(
        raw.status.success(),
        "{}",
        String::from_utf8_lossy(&raw.stderr)
    );
    let index: serde_json::Value = serde_json::from_slice(&raw.stdout).unwrap();
    assert_eq!(
        index["mediaType"], "application/vnd.oci.image.index.v1+json",
        "{index}"
    );
    let entries = index["manifests"].as_array().unwrap();
    let platforms: Vec<String> = entries
        .iter()
        .map(|e| {
            format!("{}/{}", e["platform"]["os"], e["platform"]["architecture"]).replace('"', "")
        })
        .collect();
    assert_eq!(platforms, ["linux/amd64", "linux/arm64"], "{index}");

    // Each image: its own uname (arm64 ran through qemu), its TARGETARCH, and the tool built
    // once on the build platform.
    for (entry, (arch, uname)) in entries
        .iter()
        .zip([("amd64", "x86_64"), ("arm64", "aarch64")])
    {
        let files = image_files(&repo, entry["digest"].as_str().unwrap());
        assert_eq!(
            files.get("uname").map(String::as_str),
            Some(&*format!("{uname}\n")),
            "{arch}"
        );
        assert_eq!(
            files.get("targetarch").map(String::as_str),
            Some(&*format!("{arch}\n"))
        );
        assert_eq!(
            files.get("tool").map(String::as_str),
            Some("built on x86_64\n"),
            "{arch}"
        );
        // `--output type=local`: one os_arch dir per platform, as BuildKit writes it.
        let dir = local.join(format!("linux_{arch}"));
        assert_eq!(
            std::fs::read_to_string(dir.join("uname")).unwrap(),
            format!("{uname}\n")
        );
    }

    // The store names the index; `images` shows its platforms.
    let o = hoist(root.path(), &["images"]);
    let listing = text(&o);
    assert!(
        listing.contains("└ linux/amd64") && listing.contains("└ linux/arm64"),
        "{listing}"
    );
}

#[test]
fn a_docker_archive_of_two_platforms_is_refused_before_building() {
    if !multi_lab() {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let ctx = tempfile::tempdir().unwrap();
    std::fs::write(ctx.path().join("Dockerfile"), DOCKERFILE).unwrap();
    let dest = ctx.path().join("img.tar");
    let o = hoist(
        root.path(),
        &[
            "build",
            "--platform",
            "linux/amd64,linux/arm64",
            "--output",
            &format!("type=docker,dest={}", dest.display()),
            ctx.path().to_str().unwrap(),
        ],
    );
    let out = text(&o);
    assert!(!o.status.success(), "{out}");
    assert!(
        out.contains("type=docker cannot hold a multi-platform image"),
        "{out}"
    );
    assert!(!out.contains("ran-tools"), "nothing may run: {out}");
    assert!(!Path::new(&dest).exists());
}

#[test]
fn a_failing_platform_fails_the_build_with_its_own_error() {
    if !multi_lab() {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let ctx = tempfile::tempdir().unwrap();
    std::fs::write(
        ctx.path().join("Dockerfile"),
        format!("FROM {MULTI_BASE}\nRUN test \"$(uname -m)\" = x86_64\nRUN echo after\n"),
    )
    .unwrap();
    let o = hoist(
        root.path(),
        &[
            "build",
            "--progress",
            "plain",
            "--platform",
            "linux/amd64,linux/arm64",
            ctx.path().to_str().unwrap(),
        ],
    );
    let out = text(&o);
    assert!(!o.status.success(), "{out}");
    let last = out.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("error: Dockerfile:2: [linux/arm64] RUN") && last.contains("exit code: 1"),
        "the arm64 RUN's failure, not a cancellation: {out}"
    );
}

#[test]
fn docker_default_platform_is_the_default_and_bad_platforms_are_named() {
    // Planning only: no root, registry or emulator needed.
    let root = tempfile::tempdir().unwrap();
    let ctx = tempfile::tempdir().unwrap();
    std::fs::write(ctx.path().join("Dockerfile"), DOCKERFILE).unwrap();
    let dir = ctx.path().to_str().unwrap();
    let o = common::Hoist::new(root.path())
        .args(["build", "--dry-run", dir])
        .env("DOCKER_DEFAULT_PLATFORM", "linux/arm64/v8,linux/amd64")
        .output();
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    let a = out.find("# platform linux/arm64\n").expect(&out);
    let b = out.find("# platform linux/amd64\n").expect(&out);
    assert!(a < b, "in the order given: {out}");
    // --platform wins over the variable.
    let o = common::Hoist::new(root.path())
        .args(["build", "--dry-run", "--platform", "linux/amd64", dir])
        .env("DOCKER_DEFAULT_PLATFORM", "linux/arm64,linux/amd64")
        .output();
    assert!(!text(&o).contains("# platform"), "{}", text(&o));
    let o = hoist(
        root.path(),
        &[
            "build",
            "--dry-run",
            "--platform",
            "linux/amd64,linux/",
            dir,
        ],
    );
    let out = text(&o);
    assert!(!o.status.success());
    assert!(
        out.contains("--platform \"linux/\": expected os/arch[/variant]"),
        "{out}"
    );
}
