//! Shared helpers of the hardening tests (crash loop, concurrency, ENOSPC): run the real
//! `hoist` binary against the lab registry (through `tests/common`'s runner, with a fixed
//! SOURCE_DATE_EPOCH, and its prerequisite check), and look for what a build may leave behind
//! (mounts, processes, cgroups, runtime state, temp files).
#![allow(dead_code, clippy::print_stderr)]

#[path = "../common/mod.rs"]
pub mod common;

use common::lab::{Need, ready};
use common::run::Hoist;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The lab registry's base image.
pub const BASE: &str = common::lab::LAB_BASE;
/// Fixed so every build of the same inputs gives the same digest.
pub const EPOCH: &str = "1700000000";

/// True when the test can run: root and the lab registry. When either is missing the test
/// skips, or fails where the lab is required (`common::lab`).
pub fn can_run() -> bool {
    ready(&[Need::Root, Need::LabRegistry])
}

/// A `hoist --root ROOT ARGS…` command with a fixed SOURCE_DATE_EPOCH.
pub fn hoist_cmd(root: &Path, args: &[&str]) -> Command {
    hoist_run(root, args).command()
}

/// The runner behind [`hoist_cmd`], for a caller that wraps or adds to it.
pub fn hoist_run(root: &Path, args: &[&str]) -> Hoist {
    Hoist::new(root).args(args).epoch(EPOCH)
}

pub fn hoist(root: &Path, args: &[&str]) -> Output {
    hoist_run(root, args).output()
}

/// Asserts success and returns stdout + stderr.
pub fn ok(o: &Output, what: &str) -> String {
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(o.status.success(), "{what} failed ({}):\n{text}", o.status);
    text
}

/// The manifest digest from `built sha256:… (manifest sha256:…)`.
pub fn manifest_digest(out: &str) -> String {
    out.lines()
        .filter_map(|l| l.split("(manifest ").nth(1))
        .map(|r| r.trim_end_matches(')').to_string())
        .next_back()
        .unwrap_or_else(|| panic!("no `built … (manifest …)` line in:\n{out}"))
}

/// `hoist fsck` exits 0 and reports no problem.
pub fn assert_fsck_clean(root: &Path, when: &str) {
    let o = hoist(root, &["fsck"]);
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        o.status.success() && out.contains(": 0 problems"),
        "fsck {when}: {}\n{out}{}",
        o.status,
        String::from_utf8_lossy(&o.stderr)
    );
}

/// Mount points at or under `root` (this test shares hoist's mount namespace).
pub fn mounts_under(root: &Path) -> Vec<String> {
    let root = root.to_string_lossy().into_owned();
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|m| m.replace("\\040", " "))
        .filter(|m| m == &root || m.starts_with(&format!("{root}/")))
        .collect()
}

fn pids() -> Vec<u32> {
    std::fs::read_dir("/proc")
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| e.file_name().to_string_lossy().parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// Live processes (other than this one) whose command line mentions `needle` (like `pgrep -f`).
pub fn procs_mentioning(needle: &str) -> Vec<String> {
    let me = std::process::id();
    pids()
        .into_iter()
        .filter(|&p| p != me && !zombie(p))
        .filter_map(|p| {
            let raw = std::fs::read(format!("/proc/{p}/cmdline")).ok()?;
            let cmd = String::from_utf8_lossy(&raw).replace('\0', " ");
            cmd.contains(needle).then(|| format!("{p}: {cmd}"))
        })
        .collect()
}

/// True for a zombie (exited, waiting to be reaped by init): it runs nothing and holds no
/// mount, but `/proc/PID/cgroup` still names the cgroup it died in.
fn zombie(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(") ")
                .and_then(|(_, rest)| rest.chars().next())
        })
        .is_none_or(|c| c == 'Z' || c == 'X')
}

/// Live (non-zombie) processes in the cgroup of a sandbox that hoist process `owner`
/// started (`/hoist/hoist-<owner>-…`).
pub fn sandbox_procs(owner: u32) -> Vec<String> {
    let tag = format!("/hoist/hoist-{owner}-");
    pids()
        .into_iter()
        .filter(|&p| !zombie(p))
        .filter(|p| {
            std::fs::read_to_string(format!("/proc/{p}/cgroup")).is_ok_and(|c| c.contains(&tag))
        })
        .map(|p| p.to_string())
        .collect()
}

/// Cgroup dirs of sandboxes of hoist process `owner` still present.
pub fn sandbox_cgroups(owner: u32) -> Vec<PathBuf> {
    let prefix = format!("hoist-{owner}-");
    let mut out = Vec::new();
    let mut bases = vec![PathBuf::from("/sys/fs/cgroup/hoist")];
    if let Ok(rd) = std::fs::read_dir("/sys/fs/cgroup") {
        bases.extend(rd.flatten().map(|e| e.path().join("hoist")));
    }
    for b in bases {
        if let Ok(rd) = std::fs::read_dir(&b) {
            out.extend(
                rd.flatten()
                    .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
                    .map(|e| e.path()),
            );
        }
    }
    out
}

/// Everything a dead hoist process `owner` may have left: mounts under the store, processes
/// naming the store, sandbox processes and cgroups, entries of the sandbox pool.
pub fn leftovers(root: &Path, owner: u32) -> Vec<String> {
    let mut out: Vec<String> = mounts_under(root)
        .into_iter()
        .map(|m| format!("mount {m}"))
        .collect();
    out.extend(
        procs_mentioning(&root.to_string_lossy())
            .into_iter()
            .map(|p| format!("process {p}")),
    );
    out.extend(
        sandbox_procs(owner)
            .into_iter()
            .map(|p| format!("sandbox process {p}")),
    );
    out.extend(
        sandbox_cgroups(owner)
            .into_iter()
            .map(|c| format!("cgroup {}", c.display())),
    );
    let pool = root.join("tmp/sandbox");
    let prefix = format!("hoist-{owner}-");
    for dir in [pool.clone(), pool.join("runtime-state")] {
        if let Ok(rd) = std::fs::read_dir(&dir) {
            out.extend(
                rd.flatten()
                    .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
                    .map(|e| format!("pool entry {}", e.path().display())),
            );
        }
    }
    out
}

/// Files under `<root>/tmp` (scratch that should be gone once no hoist runs), except the
/// pool dir and its runtime-state dir themselves.
pub fn scratch_files(root: &Path) -> Vec<PathBuf> {
    walkdir::WalkDir::new(root.join("tmp"))
        .min_depth(1)
        .into_iter()
        .flatten()
        .map(|e| e.path().to_path_buf())
        .filter(|p| {
            let rel = p.strip_prefix(root.join("tmp")).unwrap_or(p);
            rel != Path::new("sandbox") && rel != Path::new("sandbox/runtime-state")
        })
        .collect()
}

/// A unique repository name in the lab registry.
pub fn fresh_repo(what: &str) -> String {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!(
        "localhost:5000/hoist-harden/{what}-{}-{t}",
        std::process::id()
    )
}

/// The digest the lab registry serves for `repo:tag` (`Docker-Content-Digest`).
pub fn registry_digest(reference: &str) -> String {
    let rest = reference
        .strip_prefix("localhost:5000/")
        .expect("lab registry reference");
    let (repo, tag) = rest.rsplit_once(':').expect("tag");
    let o = Command::new("curl")
        .args([
            "-sfI",
            "-H",
            "Accept: application/vnd.oci.image.manifest.v1+json",
            "-H",
            "Accept: application/vnd.docker.distribution.manifest.v2+json",
        ])
        .arg(format!("http://localhost:5000/v2/{repo}/manifests/{tag}"))
        .output()
        .expect("curl");
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("docker-content-digest")
                .then(|| v.trim().to_string())
        })
        .unwrap_or_else(|| panic!("{reference} is not in the registry"))
}
