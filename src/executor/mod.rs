//! Runs one process in an isolated sandbox over a writable rootfs of image layers, with RUN's
//! extra mounts, records what it changed, and cleans up every mount and process after.
//!
//! The engine holds one [`Isolation`] backend, chosen at start-up; it owns the whole rootfs
//! life (read-only views, pinned bind sources, the run and its diff), so the engine never
//! mounts anything itself. The first backend is [`OciRuntime`] (`oci`): as root, an overlay
//! of the layers (the kernel's new mount API and `lowerdir+`, so any number of layers fits)
//! run by an OCI runtime (crun or runc) in the foreground as a child process, from a typed
//! runtime spec with Docker's default hardening. Rootless runs use the same backend: hoist is
//! then root of its own user namespace ([`crate::userns`]), the overlays use `userxattr`, and
//! the spec gets a rootless transform (`oci/rootless.rs`). Where hoist can neither mount nor
//! make namespaces (a pod with Docker's default privileges), [`Chroot`] (`chroot`) copies
//! trees, runs the command chrooted and diffs by comparing trees. `select` picks one at
//! start-up (`HOIST_ISOLATION=oci|chroot` overrides the probe).
//!
//! Design: hoist never forks from its own (multi-threaded) process. What every backend
//! shares lives here, not in `oci`: the pool dir (`pool`), readying a rootfs for a run and
//! undoing it (`prepare`: symlink swap, stubs for mount targets), the `/etc` files
//! (`etc_files`), the process environment (`env`), USER resolution ([`user`]), the
//! upper-dir fixup that makes a diff hold exactly the changes BuildKit would record
//! (`fixup`), in-root file operations (`fsutil`), the seccomp filter ([`seccomp`]: Docker's
//! default profile, evaluated for the sandbox), and hoist's own static init (`init`, built by
//! `build.rs`), which `docker run --init` puts in front of the command to reap orphans and
//! forward signals. By default the sandbox is set up as BuildKit sets up a RUN ([`Security`]):
//! the command is PID 1, `no_new_privs` is off, the default seccomp profile applies. Live
//! sandboxes and views are kept in a registry so a SIGINT/SIGTERM kills and unmounts them
//! (`cleanup`): the runtime's kill of the whole container, not PID 1, ends a run.

mod chroot;
mod cleanup;
mod env;
mod etc_files;
mod fixup;
mod fsutil;
mod init;
mod oci;
mod overlay;
mod pool;
mod prepare;
pub mod sandbox;
pub mod seccomp;
mod select;
pub mod user;
mod view;

pub use chroot::{Chroot, helper_entry};
pub use cleanup::{cleanup_stale, install_signal_handlers, shutdown_requested};
pub use oci::{OciRuntime, limits_note};
pub use pool::default_pool_dir;
pub use sandbox::{ExtraHost, SandboxOptions, Stdio, Ulimit};
pub use seccomp::Seccomp;
pub use select::{CHROOT_NOTE, ISOLATION_ENV, IsolationKind, Selected, select};
pub use user::ResolvedUser;
pub use view::View;

use std::path::{Path, PathBuf};

/// The sandbox's network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Network {
    /// The host's network namespace (what `docker build` gives RUN by default).
    #[default]
    Host,
    /// A fresh network namespace with only loopback up.
    None,
}

/// What an extra mount is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MountKind {
    /// A bind mount of a host path.
    Bind { source: PathBuf, readonly: bool },
    /// A fresh tmpfs, optionally size-limited (bytes).
    Tmpfs { size: Option<u64> },
}

/// An extra mount inside the sandbox (`RUN --mount`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// Absolute path inside the sandbox.
    pub target: String,
    pub kind: MountKind,
}

/// Resource limits, applied through cgroups.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Limits {
    /// Memory limit in bytes (swap is limited to the same total).
    pub memory: Option<u64>,
    /// CPU quota in CPUs (1.5 = one and a half cores).
    pub cpus: Option<f64>,
    /// Maximum number of processes.
    pub pids: Option<i64>,
}

/// How a sandbox is confined beyond its namespaces and capabilities. The default is what
/// BuildKit gives a RUN (and `docker run` a container): the command is PID 1, `no_new_privs`
/// is off (setuid programs such as `sudo` work), Docker's default seccomp profile applies.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Security {
    /// hoist's init as PID 1, reaping orphans and forwarding signals to the command
    /// (`docker run --init`).
    pub init: bool,
    /// Sets `no_new_privs`: setuid and file capabilities no longer raise privileges
    /// (`--security-opt no-new-privileges`).
    pub no_new_privileges: bool,
    /// The seccomp filter (`--security-opt seccomp=…`).
    pub seccomp: Seccomp,
    /// BuildKit's insecure mode (`RUN --security=insecure`, allowed by `--allow
    /// security.insecure`): every capability, no seccomp filter, no masked or read-only
    /// `/proc` paths, all devices allowed, `/sys` and the cgroup fs writable.
    pub insecure: bool,
}

/// One process to run in a sandbox.
#[derive(Debug, Clone, PartialEq)]
pub struct RunSpec {
    /// Unpacked layer snapshots, bottom first.
    pub lowers: Vec<PathBuf>,
    /// Where the changes go (an empty dir on the store's filesystem); `None` discards them.
    pub upper: Option<PathBuf>,
    pub argv: Vec<String>,
    /// `KEY=VALUE` entries.
    pub env: Vec<String>,
    /// Working directory inside the sandbox (created if missing).
    pub cwd: String,
    /// As Dockerfile `USER`: `name`, `uid`, `name:group`, `uid:gid`; `""` = root.
    pub user: String,
    pub hostname: String,
    pub network: Network,
    pub mounts: Vec<Mount>,
    pub limits: Limits,
    /// PID 1, `no_new_privs`, seccomp and insecure mode.
    pub security: Security,
    /// Extra hosts, rlimits, `/dev/shm` size, stdin and terminal.
    pub sandbox: SandboxOptions,
}

/// An isolation backend: it owns the whole life of a build's root filesystems, so that the
/// engine never mounts anything itself and a new isolation mode (rootless user namespaces, no
/// namespaces at all) is one new implementation, chosen once at start-up.
///
/// What a backend provides:
/// - [`view`](Isolation::view): a read-only merged rootfs of unpacked layers (COPY --from,
///   WORKDIR's owner lookup, `RUN --mount=from=`, `--output type=local`);
/// - [`pin`](Isolation::pin): a bind source fixed to an object hoist already holds open, so a
///   path swapped after resolution cannot redirect the mount;
/// - [`run`](Isolation::run): one process over a writable rootfs, leaving the changes it made
///   as a diff in `RunSpec::upper` (the overlay upper-dir format `layers` reads: whiteouts as
///   0/0 character devices, opaque dirs marked with `trusted.overlay.opaque`).
///
/// Shutdown contract: every mount, process and pool dir a backend creates is registered with
/// `cleanup` before it exists, and released when its guard ([`View`]) drops or its run
/// returns. After SIGINT/SIGTERM ([`install_signal_handlers`]) `view`, `pin` and `run` refuse
/// to start ([`ExecutorError::Interrupted`]), a running `run` kills its process and never
/// returns (the signal thread tears every registered resource down and exits 128+signal), and
/// [`cleanup_stale`] removes what a killed hoist left behind.
pub trait Isolation: Send + Sync {
    /// A read-only merged view of `lowers` (bottom first; none gives an empty dir). Unmounted
    /// and removed when the [`View`] drops.
    fn view(&self, lowers: &[PathBuf]) -> Result<View>;
    /// Pins a mount source: `source` names an object hoist holds open (its
    /// `/proc/self/fd/N` link); the returned [`View`]'s path can be given as a bind source in
    /// a [`RunSpec`] and stays that object until the view drops.
    fn pin(&self, source: &Path, is_dir: bool, readonly: bool) -> Result<View>;
    /// Runs `spec`, streaming the process's stdout and stderr (interleaved) to `out`. Returns
    /// the exit code (128+signal when killed). Afterwards the upper dir holds exactly the
    /// changes BuildKit would record.
    fn run(&self, spec: &RunSpec, out: &mut dyn FnMut(&[u8])) -> Result<i32>;
}

/// Errors from this module.
#[derive(Debug, thiserror::Error)]
pub enum ExecutorError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// Neither crun nor runc is installed.
    #[error(
        "no OCI runtime found: install crun (preferred) or runc (e.g. `apt-get install crun`), \
         or set HOIST_RUNTIME to its path"
    )]
    NoRuntime,
    /// The OCI runtime could not be started or failed outside the container.
    #[error("{runtime} {action} failed: {detail}")]
    Runtime {
        runtime: String,
        action: String,
        detail: String,
    },
    /// Mounting (overlay, bind) failed.
    #[error("mounting {what} on {target}: {source}")]
    Mount {
        what: String,
        target: PathBuf,
        source: std::io::Error,
    },
    /// The kernel refused an overlay mount in hoist's user namespace (rootless).
    #[error(
        "mounting an overlay on {target} in a user namespace: {source}; rootless builds need \
         Linux 5.11 or newer with overlayfs allowed in user namespaces (`uname -r`), or run \
         hoist as root"
    )]
    RootlessOverlay {
        target: PathBuf,
        source: std::io::Error,
    },
    /// A RUN as a user other than root when hoist's user namespace maps only the user.
    #[error(
        "cannot run as uid {uid} (gid {gid}): rootless hoist maps only your own id (as root); \
         a USER other than root needs a range for your user in /etc/subuid and /etc/subgid \
         (and Debian's uidmap package)"
    )]
    UnmappedUser { uid: u32, gid: u32 },
    /// `oci-spec` refused to build the runtime config from the run's values.
    #[error("building the OCI runtime config: {0}")]
    RuntimeConfig(oci_spec::OciSpecError),
    /// The run spec is unusable (empty argv, relative paths, …).
    #[error("invalid run spec: {0}")]
    InvalidSpec(String),
    /// A USER/--chown name that /etc/passwd does not have.
    #[error("unable to find user {name}: no matching entries in /etc/passwd")]
    UnknownUser { name: String, rootfs: PathBuf },
    /// A group name that /etc/group does not have.
    #[error("unable to find group {name}: no matching entries in /etc/group")]
    UnknownGroup { name: String, rootfs: PathBuf },
    /// /etc/passwd or /etc/group (`path`, in the image) is not a regular file or is too large.
    #[error(
        "{path} of the image: {reason}; USER and --chown read it only as a regular file of at \
         most 10 MiB (replace it in an earlier step)"
    )]
    BadUserDb { path: PathBuf, reason: String },
    /// A seccomp profile is unusable, or cannot be applied here.
    #[error(transparent)]
    Seccomp(#[from] seccomp::SeccompError),
    /// The backend cannot give the sandbox something the run asks for.
    #[error(
        "{what} is not supported by the {backend} isolation; run hoist where it can use an \
         OCI runtime (as root, or rootless with user namespaces), or leave {what} out"
    )]
    Unsupported {
        backend: &'static str,
        what: &'static str,
    },
    /// hoist is shutting down after SIGINT/SIGTERM.
    #[error("interrupted: hoist is shutting down")]
    Interrupted,
}

/// Result alias for this module.
pub type Result<T> = std::result::Result<T, ExecutorError>;

/// Streams a started sandbox process's output (`reader`, the read end of its stdout/stderr
/// pipe) to `out` until the pipe closes, waits for `child` (`what` names it in errors) and
/// returns its exit code (128+signal if killed); a shutdown request makes it `Interrupted`.
/// Shared by the OCI runtime and chroot backends.
pub(crate) fn drain_and_wait(
    reader: &mut impl std::io::Read,
    mut child: std::process::Child,
    out: &mut dyn FnMut(&[u8]),
    what: impl Into<PathBuf>,
) -> Result<i32> {
    use std::os::unix::process::ExitStatusExt;
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
    let status = child.wait().map_err(io_err(what))?;
    if cleanup::shutdown_requested() {
        return Err(ExecutorError::Interrupted);
    }
    Ok(match (status.code(), status.signal()) {
        (Some(c), _) => c,
        (None, Some(s)) => 128 + s,
        _ => 255,
    })
}

pub(crate) fn io_err(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> ExecutorError {
    let path = path.into();
    move |source| ExecutorError::Io { path, source }
}
