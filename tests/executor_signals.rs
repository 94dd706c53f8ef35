//! SIGTERM/SIGINT and kill -9 leave no mount, process, container or temp dir behind.
//! The test binary re-runs itself as the hoist-like child (`HOIST_TEST_CHILD=1`).

#![allow(clippy::print_stderr)]

mod common;

use common::lab::{Need, ready};
use hoist::executor::{Isolation, Limits, Network, OciRuntime, RunSpec};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Root, /bin/busybox and crun or runc; skips or fails as `common::lab` says.
fn can_run() -> bool {
    ready(&[Need::Root, Need::Busybox, Need::OciRuntime])
}

fn busybox_rootfs(dir: &Path) {
    std::fs::create_dir_all(dir.join("bin")).unwrap();
    std::fs::copy("/bin/busybox", dir.join("bin/busybox")).unwrap();
    for a in ["sh", "sleep", "touch"] {
        std::os::unix::fs::symlink("busybox", dir.join("bin").join(a)).unwrap();
    }
}

/// The child: installs hoist's signal handling and runs a long sandbox. Only acts when the
/// parent test started it.
#[test]
#[ignore = "helper: the signal tests run it as their child process"]
fn child_process() {
    let (Ok(pool), Ok(lower)) = (
        std::env::var("HOIST_TEST_POOL"),
        std::env::var("HOIST_TEST_LOWER"),
    ) else {
        return;
    };
    hoist::executor::install_signal_handlers(Duration::from_secs(5), |_| {}).unwrap();
    let rt = OciRuntime::detect().unwrap().with_pool(PathBuf::from(pool));
    let spec = RunSpec {
        lowers: vec![PathBuf::from(lower)],
        upper: None,
        // Ignores SIGTERM and SIGINT, as a stubborn build step would.
        argv: vec![
            "/bin/sh".into(),
            "-c".into(),
            "trap '' TERM INT; touch /started; sleep 1000 & sleep 1000; wait".into(),
        ],
        env: vec![],
        cwd: "/".into(),
        user: String::new(),
        hostname: "x".into(),
        network: Network::Host,
        mounts: vec![],
        limits: Limits::default(),
        security: Default::default(),
        sandbox: Default::default(),
    };
    let _ = rt.run(&spec, &mut |_| {});
    // Not reached when a signal ends the process.
    std::process::exit(99);
}

fn mountinfo() -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .map(|l| l.split(' ').nth(4).unwrap_or("").to_string())
        .collect();
    v.sort();
    v
}

/// Processes in the cgroups of sandboxes that hoist process `owner` started.
fn sandbox_procs(owner: u32) -> Vec<String> {
    let tag = format!("/hoist/hoist-{owner}-");
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .chars()
                .all(|c| c.is_ascii_digit())
        })
        .filter(|e| {
            std::fs::read_to_string(e.path().join("cgroup")).is_ok_and(|c| c.contains(&tag))
        })
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect()
}

/// Kills the child and cleans its pool even when an assertion fails.
struct ChildGuard(std::process::Child, PathBuf);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
        let _ = hoist::executor::cleanup_stale(&self.1);
    }
}

fn start_child(pool: &Path, lower: &Path) -> std::process::Child {
    Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_process",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("HOIST_TEST_POOL", pool)
        .env("HOIST_TEST_LOWER", lower)
        .spawn()
        .unwrap()
}

/// Waits until the sandbox wrote /started into its (pool) upper dir.
fn wait_started(pool: &Path) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let started = walkdir::WalkDir::new(pool)
            .max_depth(3)
            .into_iter()
            .flatten()
            .any(|e| {
                e.file_name() == "started"
                    && e.path().parent().is_some_and(|p| p.ends_with("upper"))
            });
        if started {
            return;
        }
        assert!(Instant::now() < deadline, "sandbox did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn setup() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let t = tempfile::Builder::new()
        .prefix("hoist-sig-test")
        .tempdir_in("/var/tmp")
        .unwrap();
    let lower = t.path().join("lower");
    busybox_rootfs(&lower);
    let pool = t.path().join("pool");
    (t, pool, lower)
}

fn assert_clean(owner: u32, pool: &Path, before: &[String]) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !sandbox_procs(owner).is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        sandbox_procs(owner).is_empty(),
        "sandbox processes left: {:?}",
        sandbox_procs(owner)
    );
    assert_eq!(mountinfo(), before, "mounts left");
    let left: Vec<_> = std::fs::read_dir(pool)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(left, ["runtime-state"], "pool entries left");
    assert_eq!(
        std::fs::read_dir(pool.join("runtime-state"))
            .unwrap()
            .count(),
        0,
        "containers left"
    );
}

#[test]
fn sigterm_and_sigint_kill_and_clean_up() {
    let _g = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    if !can_run() {
        return;
    }
    for (sig, code) in [
        (rustix::process::Signal::TERM, 143),
        (rustix::process::Signal::INT, 130),
    ] {
        let (_t, pool, lower) = setup();
        let before = mountinfo();
        let mut child = ChildGuard(start_child(&pool, &lower), pool.clone());
        let owner = child.0.id();
        wait_started(&pool);
        assert!(!sandbox_procs(owner).is_empty());
        let pid = rustix::process::Pid::from_raw(owner as i32).unwrap();
        rustix::process::kill_process(pid, sig).unwrap();
        let status = child.0.wait().unwrap();
        assert_eq!(status.code(), Some(code));
        assert_clean(owner, &pool, &before);
    }
}

#[test]
fn kill_9_leftovers_removed_by_cleanup_stale() {
    let _g = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    if !can_run() {
        return;
    }
    let (_t, pool, lower) = setup();
    let before = mountinfo();
    let mut child = ChildGuard(start_child(&pool, &lower), pool.clone());
    let owner = child.0.id();
    wait_started(&pool);
    child.0.kill().unwrap();
    child.0.wait().unwrap();
    // hoist is gone, its sandbox and mount are not.
    assert!(!sandbox_procs(owner).is_empty());
    assert_ne!(mountinfo(), before);
    let removed = hoist::executor::cleanup_stale(&pool).unwrap();
    assert_eq!(removed, 1);
    assert_clean(owner, &pool, &before);
}
