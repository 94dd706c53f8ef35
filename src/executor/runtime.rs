//! [`OciRuntime`]: the [`Sandbox`] that runs a [`RunSpec`] with crun (or runc) on a bundle
//! hoist generates, over an overlay of the spec's layers.
//!
//! Layout of one run, under the pool dir (default `/run/hoist`):
//! `hoist-<pid>-<n>/{config.json, rootfs/, hosts, resolv.conf, hostname[, upper/, work/]}`, and
//! the runtime's state under `runtime-state/`. Everything is removed after the run.

use super::cleanup::{self, Live};
use super::fsutil::{self, Created};
use super::overlay::{mount_overlay, remove_dir_safely, unmount_all_under};
use super::spec::{self, SpecInputs};
use super::{
    ExecutorError, Isolation, MountKind, Result, RunSpec, View, fixup, init, io_err, user,
};
use std::io::Read;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};

/// Name of the runtime's state dir (`--root`) inside the pool.
pub(crate) const STATE_DIR: &str = "runtime-state";

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// The default pool dir for sandboxes and views: `$HOIST_RUN_DIR`, else `/run/hoist` as root,
/// else `$XDG_RUNTIME_DIR/hoist`, else `<tmp>/hoist-<uid>`.
pub fn default_pool_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("HOIST_RUN_DIR").filter(|v| !v.is_empty()) {
        return PathBuf::from(d);
    }
    let uid = rustix::process::geteuid();
    if uid.is_root() {
        return PathBuf::from("/run/hoist");
    }
    if let Some(d) = std::env::var_os("XDG_RUNTIME_DIR").filter(|v| !v.is_empty()) {
        return PathBuf::from(d).join("hoist");
    }
    std::env::temp_dir().join(format!("hoist-{}", uid.as_raw()))
}

/// A new unique name in the pool: `hoist-<pid>-<n>`.
pub(crate) fn unique_name() -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos() % 100_000)
        .unwrap_or(0);
    format!("hoist-{}-{n}-{t}", std::process::id())
}

/// An OCI runtime binary (crun or runc) plus the pool dir hoist works in.
#[derive(Debug, Clone)]
pub struct OciRuntime {
    binary: PathBuf,
    pool: PathBuf,
}

impl OciRuntime {
    /// Finds the runtime: `$HOIST_RUNTIME`, else `crun`, else `runc` on `PATH`. On a hybrid
    /// cgroup host whose v2 hierarchy holds controllers (which crun refuses), runc comes first.
    pub fn detect() -> Result<OciRuntime> {
        let pool = default_pool_dir();
        if let Some(p) = std::env::var_os("HOIST_RUNTIME").filter(|v| !v.is_empty()) {
            let p = PathBuf::from(p);
            return find_in_path(&p)
                .map(|binary| OciRuntime { binary, pool })
                .ok_or(ExecutorError::NoRuntime);
        }
        let order = if hybrid_with_v2_controllers() {
            ["runc", "crun"]
        } else {
            ["crun", "runc"]
        };
        order
            .iter()
            .find_map(|n| find_in_path(Path::new(n)))
            .map(|binary| OciRuntime { binary, pool })
            .ok_or(ExecutorError::NoRuntime)
    }

    /// Uses `pool` for bundles, mount points and runtime state.
    pub fn with_pool(mut self, pool: PathBuf) -> OciRuntime {
        self.pool = pool;
        self
    }

    /// The runtime binary.
    pub fn binary(&self) -> &Path {
        &self.binary
    }

    /// The pool dir.
    pub fn pool(&self) -> &Path {
        &self.pool
    }

    fn name(&self) -> String {
        self.binary
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "runtime".into())
    }
}

/// A cgroup v1 host (tmpfs on /sys/fs/cgroup) whose cgroup2 mount at `unified` has controllers.
fn hybrid_with_v2_controllers() -> bool {
    std::fs::read_to_string("/sys/fs/cgroup/unified/cgroup.controllers")
        .is_ok_and(|c| !c.trim().is_empty())
}

fn find_in_path(p: &Path) -> Option<PathBuf> {
    if p.components().count() > 1 {
        return p.is_file().then(|| p.to_path_buf());
    }
    let path = std::env::var_os("PATH")
        .unwrap_or_else(|| "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into());
    std::env::split_paths(&path)
        .map(|d| d.join(p))
        .find(|c| c.is_file())
}

/// Creates `dir` (and parents) with mode 0700.
fn mkdir_private(dir: &Path) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(io_err(dir))
}

/// One run's resources; `Drop` tears down whatever is still up.
struct RunState<'a> {
    rt: &'a OciRuntime,
    key: u64,
    id: String,
    dir: PathBuf,
    state: PathBuf,
    rootfs: PathBuf,
    work: PathBuf,
    mounted: bool,
    started: bool,
    done: bool,
}

impl RunState<'_> {
    fn delete_container(&mut self) -> Result<()> {
        if !self.started {
            return Ok(());
        }
        self.started = false;
        // A foreground `run` that ended normally has already destroyed its container (state
        // dir and cgroup; the PID namespace died with its init): no second runtime start,
        // which costs ~20 ms on every RUN.
        if !self.state.join(&self.id).exists() {
            return Ok(());
        }
        let out =
            cleanup::delete_container(&self.rt.binary, &self.state, &self.id).map_err(|e| {
                ExecutorError::Runtime {
                    runtime: self.rt.name(),
                    action: format!("delete {}", self.id),
                    detail: e.to_string(),
                }
            })?;
        if !out.status.success() && self.state.join(&self.id).exists() {
            return Err(ExecutorError::Runtime {
                runtime: self.rt.name(),
                action: format!("delete {}", self.id),
                detail: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            });
        }
        Ok(())
    }

    fn unmount(&mut self) -> Result<()> {
        if self.mounted {
            unmount_all_under(&self.rootfs)?;
            self.mounted = false;
        }
        Ok(())
    }

    fn remove_dirs(&mut self) -> Result<()> {
        remove_dir_safely(&self.work)?;
        remove_dir_safely(&self.dir)?;
        self.done = true;
        cleanup::deregister(self.key);
        Ok(())
    }
}

impl Drop for RunState<'_> {
    fn drop(&mut self) {
        if !self.done {
            let _ = self.delete_container();
            let _ = self.unmount();
            let _ = self.remove_dirs();
        }
    }
}

impl Isolation for OciRuntime {
    fn view(&self, lowers: &[PathBuf]) -> Result<View> {
        if cleanup::shutdown_requested() {
            return Err(ExecutorError::Interrupted);
        }
        super::view::mount_view_in(&self.pool, lowers)
    }

    fn pin(&self, source: &Path, is_dir: bool, readonly: bool) -> Result<View> {
        if cleanup::shutdown_requested() {
            return Err(ExecutorError::Interrupted);
        }
        super::view::pin_source_in(&self.pool, source, is_dir, readonly)
    }

    fn run(&self, spec: &RunSpec, out: &mut dyn FnMut(&[u8])) -> Result<i32> {
        if cleanup::shutdown_requested() {
            return Err(ExecutorError::Interrupted);
        }
        let r = self.run_inner(spec, out);
        if cleanup::shutdown_requested() {
            // This sandbox is torn down; the signal thread ends the process with 128+signal
            // once every other one is too. Returning would let the caller race it.
            loop {
                std::thread::park();
            }
        }
        r
    }
}

impl OciRuntime {
    fn run_inner(&self, spec: &RunSpec, out: &mut dyn FnMut(&[u8])) -> Result<i32> {
        validate(spec)?;
        let id = unique_name();
        let dir = self.pool.join(&id);
        let state = self.pool.join(STATE_DIR);
        mkdir_private(&self.pool)?;
        mkdir_private(&state)?;
        mkdir_private(&dir)?;
        let (upper, work) = match &spec.upper {
            Some(u) => {
                let parent = u.parent().ok_or_else(|| {
                    ExecutorError::InvalidSpec(format!("upper dir {} has no parent", u.display()))
                })?;
                (u.clone(), parent.join(format!(".{id}.work")))
            }
            None => (dir.join("upper"), dir.join("work")),
        };
        let rootfs = dir.join("rootfs");
        let key = cleanup::register(Live {
            container: Some((self.binary.clone(), state.clone(), id.clone())),
            mounts: vec![rootfs.clone()],
            dirs: vec![work.clone(), dir.clone()],
        });
        let mut st = RunState {
            rt: self,
            key,
            id: id.clone(),
            dir: dir.clone(),
            state: state.clone(),
            rootfs: rootfs.clone(),
            work: work.clone(),
            mounted: false,
            started: false,
            done: false,
        };
        for d in [&upper, &work, &rootfs] {
            mkdir_private(d)?;
        }
        // The upper's root must look like the image root (0755), not like a private temp dir.
        std::fs::set_permissions(&upper, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .map_err(io_err(&upper))?;
        let before = fixup::upper_dirs(&upper);

        let lowers = if spec.lowers.is_empty() {
            // An empty rootfs (FROM scratch): one empty lower.
            let empty = dir.join("empty");
            mkdir_private(&empty)?;
            vec![empty]
        } else {
            super::view::distinct_lowers(&spec.lowers)
        };
        mount_overlay(&lowers, Some((&upper, &work)), &rootfs)?;
        st.mounted = true;

        let rfd = crate::fsroot::open_root(&rootfs).map_err(io_err(&rootfs))?;
        let ensure = |p: &str, is_dir: bool| -> Result<Vec<Created>> {
            fsutil::ensure_in_root(&rfd, p, is_dir)
                .map_err(io_err(rootfs.join(p.trim_start_matches('/'))))
        };
        // An image's `/dev`, `/proc` or `/sys` symlink is never followed: it becomes an empty
        // dir for the run and is put back afterwards.
        let mut swapped = Vec::new();
        for name in ["dev", "proc", "sys"] {
            if let Some(s) =
                fsutil::swap_symlink_for_dir(&rfd, name).map_err(io_err(rootfs.join(name)))?
            {
                swapped.push(s);
            }
        }
        // Kept in the layer, as BuildKit leaves them.
        for p in ["/dev", "/proc", "/sys"] {
            ensure(p, true)?;
        }
        ensure(&spec.cwd, true)?;
        // The literal check (`validate`) misses symlinks: `/fdlink/3` with `fdlink ->
        // /proc/self/fd` lands in /proc once the runtime mounts it (runc CVE-2024-21626).
        if fsutil::lands_in(&rfd, &spec.cwd, "proc")
            .map_err(io_err(rootfs.join(spec.cwd.trim_start_matches('/'))))?
        {
            return Err(ExecutorError::InvalidSpec(format!(
                "working dir {:?} resolves into /proc through a symlink of the image; use a \
                 directory of the image",
                spec.cwd
            )));
        }
        // Removed after the run.
        let mut stubs = Vec::new();
        for p in ["/etc/resolv.conf", "/etc/hosts", "/etc/hostname"] {
            stubs.extend(ensure(p, false)?);
        }
        for m in &spec.mounts {
            let is_dir = match &m.kind {
                MountKind::Bind { source, .. } => source.is_dir(),
                MountKind::Tmpfs { .. } => true,
            };
            stubs.extend(ensure(&m.target, is_dir)?);
            if fsutil::lands_in(&rfd, &m.target, "proc")
                .map_err(io_err(rootfs.join(m.target.trim_start_matches('/'))))?
            {
                return Err(ExecutorError::InvalidSpec(format!(
                    "mount target {:?} resolves into /proc through a symlink of the image",
                    m.target
                )));
            }
        }

        let who = user::resolve(&rootfs, &spec.user)?;
        let hostname = if spec.hostname.is_empty() {
            "hoist"
        } else {
            spec.hostname.as_str()
        };
        let files = [
            (
                "/etc/resolv.conf",
                dir.join("resolv.conf"),
                spec::resolv_conf(
                    std::fs::read_to_string("/etc/resolv.conf").ok().as_deref(),
                    spec.network,
                ),
            ),
            ("/etc/hosts", dir.join("hosts"), spec::hosts_file(hostname)),
            (
                "/etc/hostname",
                dir.join("hostname"),
                format!("{hostname}\n"),
            ),
        ];
        let mut etc_files = Vec::new();
        for (dest, path, text) in files {
            std::fs::write(&path, text).map_err(io_err(&path))?;
            std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o644))
                .map_err(io_err(&path))?;
            etc_files.push((dest.to_string(), path));
        }
        // PID 1 is hoist's init (a memfd on fd 3), which runs the user's argv as its child.
        let argv = init::wrap_argv(&spec.argv);
        let config = spec::config(&SpecInputs {
            rootfs: rootfs.clone(),
            argv: &argv,
            env: spec::final_env(&spec.env, who.home.as_deref()),
            cwd: &spec.cwd,
            user: &who,
            hostname,
            network: spec.network,
            etc_files,
            mounts: &spec.mounts,
            limits: spec.limits,
            cgroups_path: format!("/hoist/{id}"),
        });
        let cfg_path = dir.join("config.json");
        std::fs::write(&cfg_path, config.to_string()).map_err(io_err(&cfg_path))?;

        let code = self.spawn_and_stream(&mut st, out)?;

        st.delete_container()?;
        // Stubs go through the merged view: overlay removes upper-only entries without whiteouts.
        let mut removed = Vec::new();
        for s in stubs.iter().rev() {
            if fsutil::remove_if_stub(&rfd, s)
                .map_err(io_err(rootfs.join(s.path.trim_start_matches('/'))))?
            {
                removed.push(s.clone());
            }
        }
        let mut restored = Vec::new();
        for s in &swapped {
            if fsutil::restore_symlink(&rfd, s).map_err(io_err(rootfs.join(&s.name)))? {
                restored.push(s.clone());
            }
        }
        drop(rfd);
        st.unmount()?;
        fixup::drop_copied_up_parents(&upper, &lowers, &before, &removed);
        fixup::drop_restored_links(&upper, &lowers, &restored);
        st.remove_dirs()?;
        Ok(code)
    }
}

impl OciRuntime {
    fn spawn_and_stream(&self, st: &mut RunState, out: &mut dyn FnMut(&[u8])) -> Result<i32> {
        let (mut reader, writer) = std::io::pipe().map_err(io_err("pipe"))?;
        let writer2 = writer.try_clone().map_err(io_err("pipe"))?;
        let mut cmd = Command::new(&self.binary);
        cmd.arg("--root")
            .arg(&st.state)
            .args(["run", "--preserve-fds", "1", "--bundle"])
            .arg(&st.dir)
            .arg(&st.id)
            .stdin(Stdio::null())
            .stdout(writer)
            .stderr(writer2)
            // Own process group: a terminal's Ctrl-C reaches hoist, which kills the sandbox.
            .process_group(0);
        init::pass_init_fd(&mut cmd)?;
        st.started = true;
        let mut child = cmd.spawn().map_err(|e| ExecutorError::Runtime {
            runtime: self.name(),
            action: "run".into(),
            detail: format!("cannot start {}: {e}", self.binary.display()),
        })?;
        // The parent's copies of the write ends must close, or the read never ends.
        drop(cmd);
        if cleanup::shutdown_requested() {
            cleanup::kill_container(&self.binary, &st.state, &st.id);
        }
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => out(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(ExecutorError::Io {
                        path: "sandbox output pipe".into(),
                        source: e,
                    });
                }
            }
        }
        let status = child.wait().map_err(io_err(&self.binary))?;
        if cleanup::shutdown_requested() {
            return Err(ExecutorError::Interrupted);
        }
        Ok(match (status.code(), status.signal()) {
            (Some(c), _) => c,
            (None, Some(s)) => 128 + s,
            _ => 255,
        })
    }
}

fn validate(spec: &RunSpec) -> Result<()> {
    if spec.argv.is_empty() {
        return Err(ExecutorError::InvalidSpec(
            "no command to run (empty argv)".into(),
        ));
    }
    if !spec.cwd.starts_with('/') {
        return Err(ExecutorError::InvalidSpec(format!(
            "working dir {:?} is not absolute",
            spec.cwd
        )));
    }
    for l in &spec.lowers {
        if !l.is_absolute() {
            return Err(ExecutorError::InvalidSpec(format!(
                "layer dir {} is not absolute",
                l.display()
            )));
        }
    }
    if let Some(u) = &spec.upper
        && !u.is_absolute()
    {
        return Err(ExecutorError::InvalidSpec(format!(
            "upper dir {} is not absolute",
            u.display()
        )));
    }
    // A working dir or mount target inside the sandbox's /proc (e.g. /proc/self/fd/N, the
    // runc CVE-2024-21626 vector) would reach host file descriptors.
    let in_proc = |p: &str| fsutil::components(p).first().is_some_and(|c| c == "proc");
    if in_proc(&spec.cwd) {
        return Err(ExecutorError::InvalidSpec(format!(
            "working dir {:?} is inside /proc; use a directory of the image",
            spec.cwd
        )));
    }
    for m in &spec.mounts {
        if in_proc(&m.target) {
            return Err(ExecutorError::InvalidSpec(format!(
                "mount target {:?} is inside /proc",
                m.target
            )));
        }
        if !m.target.starts_with('/') {
            return Err(ExecutorError::InvalidSpec(format!(
                "mount target {:?} is not absolute",
                m.target
            )));
        }
    }
    Ok(())
}
