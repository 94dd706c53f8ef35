//! Nothing outlives hoist: a registry of live sandboxes and views, torn down on SIGINT/SIGTERM
//! (kill the container, unmount, remove temp dirs), and [`cleanup_stale`] for what a killed
//! hoist (kill -9) left in its pool.

use super::overlay::{mounts_under, remove_dir_safely, unmount_all_under};
use super::{ExecutorError, Result};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

/// A live sandbox or view: what to kill and tear down.
#[derive(Debug, Clone, Default)]
pub(crate) struct Live {
    /// Runtime binary, its `--root` state dir and the container id (sandboxes only).
    pub container: Option<(PathBuf, PathBuf, String)>,
    /// Mounted dirs, unmounted deepest first.
    pub mounts: Vec<PathBuf>,
    /// Temp dirs to remove after unmounting.
    pub dirs: Vec<PathBuf>,
}

static LIVE: OnceLock<Mutex<BTreeMap<u64, Live>>> = OnceLock::new();
static NEXT: AtomicU64 = AtomicU64::new(1);
static SHUTDOWN: AtomicBool = AtomicBool::new(false);

fn live() -> MutexGuard<'static, BTreeMap<u64, Live>> {
    let m = LIVE.get_or_init(|| Mutex::new(BTreeMap::new()));
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Registers a live sandbox/view; returns its key.
pub(crate) fn register(l: Live) -> u64 {
    let k = NEXT.fetch_add(1, Ordering::Relaxed);
    live().insert(k, l);
    k
}

/// Drops a registration after its owner cleaned up.
pub(crate) fn deregister(key: u64) {
    live().remove(&key);
}

/// Whether SIGINT/SIGTERM was received: new sandboxes refuse to start.
pub fn shutdown_requested() -> bool {
    SHUTDOWN.load(Ordering::SeqCst)
}

/// Kills a container through its runtime (all processes, SIGKILL).
pub(crate) fn kill_container(runtime: &Path, state: &Path, id: &str) {
    let _ = Command::new(runtime)
        .arg("--root")
        .arg(state)
        .args(["kill", "--all", id, "KILL"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// Deletes a container (force: kills what is left), which also removes its cgroup.
pub(crate) fn delete_container(
    runtime: &Path,
    state: &Path,
    id: &str,
) -> std::io::Result<std::process::Output> {
    Command::new(runtime)
        .arg("--root")
        .arg(state)
        .args(["delete", "-f", id])
        .stdin(Stdio::null())
        .output()
}

fn teardown(l: &Live) {
    if let Some((rt, state, id)) = &l.container {
        kill_container(rt, state, id);
        let _ = delete_container(rt, state, id);
    }
    for m in &l.mounts {
        let _ = unmount_all_under(m);
    }
    for d in &l.dirs {
        let _ = remove_dir_safely(d);
    }
}

/// Installs SIGINT/SIGTERM handling for the whole process: on a signal, every live sandbox is
/// killed, its owner gets `grace` to clean up normally, then whatever is left is torn down and
/// the process exits with 128+signal (130 / 143). `on_signal` runs first (e.g. to tell the
/// user); it must not block.
pub fn install_signal_handlers(grace: Duration, on_signal: fn(i32)) -> Result<()> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let mut signals =
        signal_hook::iterator::Signals::new([SIGINT, SIGTERM]).map_err(|e| ExecutorError::Io {
            path: PathBuf::from("signal handlers"),
            source: e,
        })?;
    std::thread::Builder::new()
        .name("hoist-signals".into())
        .spawn(move || {
            if let Some(sig) = signals.forever().next() {
                on_signal(sig);
                SHUTDOWN.store(true, Ordering::SeqCst);
                let deadline = Instant::now() + grace;
                loop {
                    let snapshot: Vec<Live> = live().values().cloned().collect();
                    if snapshot.iter().all(|l| l.container.is_none()) || Instant::now() >= deadline
                    {
                        break;
                    }
                    for l in &snapshot {
                        if let Some((rt, state, id)) = &l.container {
                            kill_container(rt, state, id);
                        }
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
                let rest: Vec<Live> = std::mem::take(&mut *live()).into_values().collect();
                for l in &rest {
                    teardown(l);
                }
                std::process::exit(128 + sig);
            }
        })
        .map_err(|e| ExecutorError::Io {
            path: PathBuf::from("signal thread"),
            source: e,
        })?;
    Ok(())
}

/// Removes what an earlier hoist process (no longer running) left in the pool `root_tmp`:
/// its containers (killed and deleted, cgroups with them), mounts and temp dirs. Entries of
/// live processes are left alone. Returns how many entries were removed.
pub fn cleanup_stale(root_tmp: &Path) -> Result<usize> {
    let rd = match std::fs::read_dir(root_tmp) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => {
            return Err(ExecutorError::Io {
                path: root_tmp.into(),
                source: e,
            });
        }
    };
    let state = root_tmp.join(super::oci::STATE_DIR);
    let runtime = super::OciRuntime::detect().ok();
    let mut removed = 0;
    for ent in rd.flatten() {
        let name = ent.file_name().to_string_lossy().into_owned();
        let Some(pid) = owner_pid(&name) else {
            continue;
        };
        if pid_alive(pid) {
            continue;
        }
        // The dead hoist's runtime may still be creating the container (its state dir not
        // written yet, so `runc kill` cannot find it): kill it first so nothing new starts,
        // then everything in the container's cgroups, then let the runtime forget it.
        kill_procs_naming(&ent.path());
        kill_cgroup_procs(&name);
        if let Some(rt) = &runtime
            && state.join(&name).exists()
        {
            kill_container(rt.binary(), &state, &name);
            let _ = delete_container(rt.binary(), &state, &name);
        }
        remove_stale_cgroups(&name);
        remove_dir_safely(&ent.path())?;
        removed += 1;
    }
    // Mounts whose dirs were already removed from under them (detached leftovers).
    for m in mounts_under(root_tmp) {
        if let Some(name) = m
            .strip_prefix(root_tmp)
            .ok()
            .and_then(|r| r.components().next())
        {
            let name = name.as_os_str().to_string_lossy();
            if owner_pid(&name).is_some_and(|p| !pid_alive(p)) {
                let _ = super::overlay::unmount(&m);
            }
        }
    }
    Ok(removed)
}

/// Pool entries are named `hoist-<pid>-<n>`.
pub(crate) fn owner_pid(name: &str) -> Option<i32> {
    name.strip_prefix("hoist-")?.split('-').next()?.parse().ok()
}

fn pid_alive(pid: i32) -> bool {
    pid == std::process::id() as i32 || Path::new(&format!("/proc/{pid}")).exists()
}

/// `hoist/<id>` cgroup dirs of a container under every hierarchy (v2 and v1).
fn cgroup_dirs(id: &str) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/sys/fs/cgroup")
        .map(|rd| {
            rd.flatten()
                .map(|e| e.path().join("hoist").join(id))
                .collect()
        })
        .unwrap_or_default();
    dirs.push(PathBuf::from("/sys/fs/cgroup/hoist").join(id));
    dirs.retain(|d| d.is_dir());
    dirs
}

fn sigkill(pid: i32) {
    if let Some(p) = rustix::process::Pid::from_raw(pid)
        && pid != std::process::id() as i32
    {
        let _ = rustix::process::kill_process(p, rustix::process::Signal::KILL);
    }
}

/// SIGKILLs live processes whose command line names `path` (the runtime of a dead hoist,
/// `runc run --bundle <path> …`, still running or still creating its container).
fn kill_procs_naming(path: &Path) {
    let needle = path.as_os_str().as_encoded_bytes();
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return;
    };
    for e in rd.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else {
            continue;
        };
        let Ok(cmd) = std::fs::read(e.path().join("cmdline")) else {
            continue;
        };
        if cmd.windows(needle.len()).any(|w| w == needle) {
            sigkill(pid);
        }
    }
}

/// SIGKILLs every process in a dead container's cgroups until they are empty (bounded wait):
/// this works whatever the runtime's state says.
fn kill_cgroup_procs(id: &str) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let mut any = false;
        for d in cgroup_dirs(id) {
            let procs = std::fs::read_to_string(d.join("cgroup.procs")).unwrap_or_default();
            for pid in procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
                any = true;
                sigkill(pid);
            }
        }
        if !any || Instant::now() >= deadline {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Removes `hoist/<id>` cgroups of a dead container under every hierarchy (an rmdir fails
/// while a killed process is still being reaped: retried briefly).
fn remove_stale_cgroups(id: &str) {
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let left: Vec<PathBuf> = cgroup_dirs(id)
            .into_iter()
            .filter(|d| std::fs::remove_dir(d).is_err())
            .collect();
        if left.is_empty() || Instant::now() >= deadline {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_names() {
        assert_eq!(owner_pid("hoist-123-4"), Some(123));
        assert_eq!(owner_pid("hoist-x-4"), None);
        assert_eq!(owner_pid("crun"), None);
    }

    #[test]
    fn stale_entries_of_dead_pids_are_removed() {
        let t = tempfile::tempdir().unwrap();
        // pid 0x7ffffffe is never a live process here.
        let dead = t.path().join("hoist-2147483646-1");
        std::fs::create_dir_all(dead.join("rootfs/x")).unwrap();
        let mine = t.path().join(format!("hoist-{}-1", std::process::id()));
        std::fs::create_dir_all(&mine).unwrap();
        std::fs::create_dir_all(t.path().join("other")).unwrap();
        assert_eq!(cleanup_stale(t.path()).unwrap(), 1);
        assert!(!dead.exists());
        assert!(mine.exists() && t.path().join("other").exists());
    }
}
