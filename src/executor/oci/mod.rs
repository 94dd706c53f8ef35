//! [`OciRuntime`]: the first [`Isolation`] backend. It runs a [`RunSpec`] with crun (or runc)
//! on a bundle hoist generates, over an overlay of the spec's layers, as root.
//!
//! One run, in phases (each in its own file):
//! 1. [`run_state`]: the bundle dir in the pool, the upper/work/rootfs dirs and the container,
//!    registered for cleanup before they exist and torn down on `Drop`;
//! 2. [`rootfs`]: the writable overlay, readied by the shared [`prepare`] (symlink swap,
//!    stubs); the shared [`etc_files`] and the user ([`user::resolve`]) read or written;
//! 3. [`bundle`]: the runtime's `config.json` (the typed `oci-spec` runtime spec), changed by
//!    [`rootless`] when hoist runs in its own user namespace ([`crate::userns`]);
//! 4. [`spawn`]: `runtime run` in the foreground, its output streamed;
//! 5. teardown: delete the container, undo the stubs, unmount, tidy the upper dir
//!    ([`fixup`]), remove the bundle.
//!
//! Layout of one run, under the pool dir (default `/run/hoist`):
//! `hoist-<pid>-<n>-<t>/{config.json, rootfs/, hosts, resolv.conf, hostname[, upper/, work/]}`,
//! and the runtime's state under `runtime-state/`. Everything is removed after the run.
//!
//! [`prepare`]: crate::executor::prepare
//! [`etc_files`]: crate::executor::etc_files
//! [`user::resolve`]: crate::executor::user::resolve
//! [`fixup`]: crate::executor::fixup

mod bundle;
mod insecure;
mod rootfs;
mod rootless;
mod run_state;
mod spawn;

use super::pool::default_pool_dir;
use super::{
    ExecutorError, Isolation, Result, RunSpec, View, cleanup, env, etc_files, init, prepare,
    seccomp, user,
};
use bundle::SpecInputs;
pub use rootless::limits_note;
use run_state::RunState;
use std::path::{Path, PathBuf};

/// Name of the runtime's state dir (`--root`) inside the pool.
pub(crate) const STATE_DIR: &str = "runtime-state";

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
    /// One run, phase by phase. On an error, `Drop` of the readied root (its in-root handle)
    /// and then of the run state tears down whatever is up.
    fn run_inner(&self, spec: &RunSpec, out: &mut dyn FnMut(&[u8])) -> Result<i32> {
        prepare::validate(spec)?;
        let mut st = RunState::new(self, spec)?;
        let root = rootfs::mount(&mut st, spec)?;
        let who = user::resolve(&st.rootfs, &spec.user)?;
        let etc_files = etc_files::write(&st.dir, spec)?;
        // The command is PID 1, as in BuildKit; with `--init`, hoist's init (a memfd on fd 3)
        // is, and runs the command as its child.
        let argv = if spec.security.init {
            init::wrap_argv(&spec.argv)
        } else {
            spec.argv.clone()
        };
        // Insecure mode runs without a filter, as BuildKit's.
        let seccomp = if spec.security.insecure {
            None
        } else {
            seccomp::for_run(
                &spec.security.seccomp,
                &bundle::default_cap_names(),
                &self.binary,
                out,
            )?
        };
        let config = bundle::config(&SpecInputs {
            rootfs: st.rootfs.clone(),
            argv: &argv,
            env: env::final_env(&spec.env, who.home.as_deref()),
            cwd: &spec.cwd,
            user: &who,
            hostname: etc_files::hostname(spec),
            network: spec.network,
            etc_files,
            mounts: &spec.mounts,
            limits: spec.limits,
            cgroups_path: format!("/hoist/{}", st.id),
            no_new_privileges: spec.security.no_new_privileges,
            seccomp,
            ulimits: &spec.sandbox.ulimits,
            shm_size: spec.sandbox.shm_size,
            insecure: spec.security.insecure,
            terminal: spec.sandbox.stdio.tty,
        })
        .map_err(ExecutorError::RuntimeConfig)?;
        let mut config = config;
        if let Some(mapping) = crate::userns::current() {
            rootless::transform(&mut config, mapping, crate::userns::cgroups_writable())?;
        }
        bundle::write(&st.dir, &config)?;

        let code = spawn::run(self, &mut st, spec.security.init, spec.sandbox.stdio, out)?;

        st.delete_container()?;
        root.finish(&mut st)?;
        st.remove_dirs()?;
        Ok(code)
    }
}
