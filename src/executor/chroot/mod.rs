//! [`Chroot`]: the [`Isolation`] backend for a host where hoist can neither mount nor make
//! namespaces (a CI pod with Docker's default capabilities and seccomp profile: "mode 2" of
//! issue 15). It needs only `CAP_SYS_CHROOT` (runs), `CAP_MKNOD` (whiteouts) and the usual
//! file capabilities of root. `docs/isolation.md` argues the design.
//!
//! - [`view`](Isolation::view): the merged tree of the lowers, built once per distinct list of
//!   lowers and kept for the backend's life (`tree::merge`: hard links to the snapshots'
//!   files, overlay whiteouts and opaque dirs applied);
//! - [`pin`](Isolation::pin): the pinned object's own `/proc/self/fd` path; the run copies
//!   from it, so nothing is bound and a later swap of the path cannot redirect the copy;
//! - [`run`](Isolation::run): copies the merged tree into a private rootfs, readies it as
//!   every backend does ([`prepare`]), makes a minimal `/dev` (`devices`), puts the `/etc`
//!   files and `RUN --mount` contents in place (`mounts`), runs the command chrooted there through a re-executed helper
//!   (`helper`), takes the mounts out, and writes the diff of the merged tree against the
//!   rootfs into the spec's upper dir (`diff`).
//!
//! Not applied (there is nothing to apply them with): PID, UTS, IPC and network namespaces
//! (`--network none` gets the pod's network), cgroup limits, seccomp beyond the pod's own,
//! hoist's init, read-only mounts. The command runs as root of the pod when USER is root: a
//! chroot confines paths, not a root process; the pod is the security boundary.
//!
//! Layout, under the pool dir: `hoist-<pid>-…-trees/<n>/` (the merged trees, removed when the
//! backend drops) and one `hoist-<pid>-…/{rootfs/, aside/, hosts, resolv.conf, hostname}` per
//! run, removed after it; both are registered for cleanup before they exist.
//!
//! [`prepare`]: crate::executor::prepare

mod devices;
mod diff;
mod helper;
mod mounts;
mod tree;

pub use helper::entry as helper_entry;
pub(crate) use helper::{can_mount, mounts_tmpfs};

use super::cleanup::{self, Live};
use super::pool::{mkdir_private, unique_name};
use super::view::distinct_lowers;
use super::{
    ExecutorError, Isolation, Mount, MountKind, Network, Result, RunSpec, View, env, etc_files,
    io_err, prepare, user,
};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// One merged tree, built at most once.
type TreeSlot = Arc<Mutex<Option<PathBuf>>>;

/// The no-mount, no-namespace isolation.
#[derive(Debug)]
pub struct Chroot {
    pool: PathBuf,
    /// `<pool>/hoist-…-trees`, and its cleanup registration.
    trees_dir: PathBuf,
    trees_key: u64,
    trees: Mutex<HashMap<Vec<PathBuf>, TreeSlot>>,
    next: std::sync::atomic::AtomicU64,
}

impl Chroot {
    /// A backend working in `pool`.
    pub fn new(pool: PathBuf) -> Result<Chroot> {
        let trees_dir = pool.join(format!("{}-trees", unique_name()));
        let trees_key = cleanup::register(Live {
            container: None,
            mounts: Vec::new(),
            dirs: vec![trees_dir.clone()],
        });
        mkdir_private(&trees_dir)?;
        Ok(Chroot {
            pool,
            trees_dir,
            trees_key,
            trees: Mutex::new(HashMap::new()),
            next: std::sync::atomic::AtomicU64::new(0),
        })
    }

    /// The merged tree of `lowers` (already distinct), built on first use.
    fn tree(&self, lowers: &[PathBuf]) -> Result<PathBuf> {
        let slot = {
            let mut map = self.trees.lock().unwrap_or_else(|p| p.into_inner());
            map.entry(lowers.to_vec()).or_default().clone()
        };
        let mut slot = slot.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(p) = slot.as_ref() {
            return Ok(p.clone());
        }
        let n = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dst = self.trees_dir.join(n.to_string());
        if let Err(e) = tree::merge(lowers, &dst) {
            let _ = tree::remove_any(&dst);
            return Err(ExecutorError::Io {
                path: dst,
                source: std::io::Error::new(
                    e.kind(),
                    format!("merging the layers {}: {e}", describe(lowers)),
                ),
            });
        }
        *slot = Some(dst.clone());
        Ok(dst)
    }
}

impl Drop for Chroot {
    fn drop(&mut self) {
        if std::fs::remove_dir_all(&self.trees_dir).is_ok() {
            cleanup::deregister(self.trees_key);
        }
    }
}

fn describe(lowers: &[PathBuf]) -> String {
    match lowers {
        [] => "(none)".into(),
        [only] => only.display().to_string(),
        [first, .., last] => format!("{} … {}", first.display(), last.display()),
    }
}

impl Isolation for Chroot {
    fn view(&self, lowers: &[PathBuf]) -> Result<View> {
        if cleanup::shutdown_requested() {
            return Err(ExecutorError::Interrupted);
        }
        let tree = self.tree(&distinct_lowers(lowers))?;
        Ok(View::borrowed(tree))
    }

    fn pin(&self, source: &Path, _is_dir: bool, _readonly: bool) -> Result<View> {
        if cleanup::shutdown_requested() {
            return Err(ExecutorError::Interrupted);
        }
        // The run copies from the open object itself; nothing is bound.
        Ok(View::borrowed(source.to_path_buf()))
    }

    fn run(&self, spec: &RunSpec, out: &mut dyn FnMut(&[u8])) -> Result<i32> {
        if cleanup::shutdown_requested() {
            return Err(ExecutorError::Interrupted);
        }
        let r = self.run_inner(spec, out);
        if cleanup::shutdown_requested() {
            // The signal thread ends the process with 128+signal; do not race it.
            loop {
                std::thread::park();
            }
        }
        r
    }
}

/// A run's private dir, removed (and deregistered) on drop.
struct RunDir {
    dir: PathBuf,
    key: u64,
}

impl Drop for RunDir {
    fn drop(&mut self) {
        if std::fs::remove_dir_all(&self.dir).is_ok() {
            cleanup::deregister(self.key);
        }
    }
}

/// What this backend cannot give a run, refused by name rather than ignored: it has no mount
/// for `/dev/shm`, no rlimit or capability setup of its own, and no pty relay. (`--add-host`
/// works: the shared `/etc/hosts` writer applies it.)
fn refuse_unsupported(spec: &RunSpec) -> Result<()> {
    let unsupported = |what| {
        Err(ExecutorError::Unsupported {
            backend: "chroot",
            what,
        })
    };
    if !spec.sandbox.ulimits.is_empty() {
        return unsupported("--ulimit");
    }
    if spec.sandbox.shm_size.is_some() {
        return unsupported("--shm-size");
    }
    if spec.security.insecure {
        return unsupported("RUN --security=insecure");
    }
    if spec.sandbox.stdio.tty {
        return unsupported("a terminal (-t)");
    }
    if spec.sandbox.stdio.stdin {
        return unsupported("stdin (-i)");
    }
    Ok(())
}

impl Chroot {
    fn run_inner(&self, spec: &RunSpec, out: &mut dyn FnMut(&[u8])) -> Result<i32> {
        prepare::validate(spec)?;
        refuse_unsupported(spec)?;
        let lowers = distinct_lowers(&spec.lowers);
        let before = self.tree(&lowers)?;
        let dir = self.pool.join(unique_name());
        let run = RunDir {
            key: cleanup::register(Live {
                container: None,
                mounts: Vec::new(),
                dirs: vec![dir.clone()],
            }),
            dir,
        };
        mkdir_private(&run.dir)?;
        let rootfs = run.dir.join("rootfs");
        tree::copy_tree(&before, &rootfs, &mut tree::Links::new()).map_err(io_err(&rootfs))?;
        // Every file the run changes has a ctime not before this one.
        let mark = run.dir.join("mark");
        std::fs::write(&mark, b"").map_err(io_err(&mark))?;
        let since = diff::ctime_of(&mark).map_err(io_err(&mark))?;

        let prepared = prepare::prepare(&rootfs, spec)?;
        let who = user::resolve(&rootfs, &spec.user)?;
        let mut all: Vec<Mount> = etc_files::write(&run.dir, spec)?
            .into_iter()
            .map(|(target, source)| Mount {
                target,
                kind: MountKind::Bind {
                    source,
                    readonly: true,
                },
            })
            .collect();
        all.extend(spec.mounts.iter().cloned());
        let aside = run.dir.join("aside");
        mkdir_private(&aside)?;
        let rfd = crate::fsroot::open_root(&rootfs).map_err(io_err(&rootfs))?;
        let dev = devices::populate(&rfd)?;
        let placed = match mounts::place_all(&rfd, &aside, &all) {
            Ok(p) => p,
            Err(e) => {
                let _ = dev.remove();
                return Err(e);
            }
        };
        if spec.network == Network::None {
            out(b"hoist: note: chroot isolation: --network=none is not applied (no network namespace)\n");
        }
        let env = env::final_env(&spec.env, who.home.as_deref());
        let code = helper::run(&rootfs, &spec.cwd, &who, &env, &spec.argv, out);
        let undone = mounts::undo_all(placed);
        let removed = dev.remove();
        let code = code?;
        undone?;
        removed?;
        prepared.undo()?;
        if let Some(upper) = &spec.upper {
            diff::diff(&before, &rootfs, upper, since).map_err(io_err(upper))?;
        }
        drop(run);
        Ok(code)
    }
}
